"""Cleaning tests: the bundled real reports, and small synthetic pages built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.ingest.cleaning import CleanedText, clean, is_debris, is_info_line
from rag.ingest.loaders import LoadedDocument, load_document
from rag.text.normalize import matching_form, normalise_stored

REPORTS = Path(__file__).resolve().parents[1] / "data" / "reports"
REPORT_FILES = sorted(REPORTS.glob("*.txt"))

DEBRIS = ["当前位置", "您当前的位置", "字号", "字体:", "扫一扫", "主办:", "承办:", "icp备",
          "网站标识码", "版权所有", "涉密文件严禁上网", "浏览器", "相关信息", "发布日期"]

# Real sentences from the middle of each report (grep'd from data/reports).
KEPT = {
    "houma-2023.txt": [
        "全年共办理行政复议案件68件。",
        "2023年,全市各级各类人民调解组织调处各类纠纷案件943件,调解成功率100%。",
        "2023年,我市监管行为录入量33158条,监管行为覆盖度76.59%",
        "(五)坚持多措并举,全面有效化解社会矛盾纠纷",
        "中共侯马市委 侯马市人民政府",
    ],
    "mianyang-2024.txt": [
        "在公积金、不动产领域调用3500余次。",
        "开展涉企案件超标查控财产清理专项整治,解除限制消费措施8229人次。",
        "加强行政复议主渠道建设,全年新收行政复议案件1472件,同比增长146.57%。",
        "绵阳市人民政府2024年度法治政府建设工作情况",
        "(五)聚焦矛盾纠纷化解,维护社会和谐稳定。",
    ],
    "shijiazhuang-2024.txt": [
        "全市共受理申请类、通知类法律援助案件1.26万余件",
        "组织开展地方性法规、政府规章清理工作,依法废止12件政府规章。",
        "全年办理各级人大代表建议591件、各级政协提案558件",
        "四、加强监督协调,行政执法质效显著提升",
    ],
    "taicang-2024.txt": [
        "2024年新收行政復議申請325件,依法辦結272件,制發行政復議建議書9份。",
        "全年完成案件公證506件,視頻公證898件。",
        "壓縮審批時限72%,減少申請材料74%。",
        "四、聚焦糾紛化解,全力維護社會大局穩定",
        "太倉市人民政府",
    ],
    "taiyuan-2024.txt": [
        "市政府行政复议局全年新收行政复议案件1274件,同比增长204%。",
        "健全审计管理制度,全年共开展审计项目37个,移送处理事项46项,提出建议55条。",
        "市级45个执法主体共梳理6143项执法事项",
        "太原市2024年法治政府建设年度报告",
        "(六)依法有效化解社会矛盾纠纷",
    ],
}


@pytest.fixture(scope="module")
def cleaned_reports() -> dict[str, tuple[str, CleanedText]]:
    out = {}
    for path in REPORT_FILES:
        out[path.name] = (path.read_text(encoding="utf-8"), clean(load_document(path)))
    return out


def test_every_bundled_report_is_covered():
    assert {p.name for p in REPORT_FILES} == set(KEPT)


# --------------------------------------------------------------------------------------------
# 1. No debris in the bundled reports
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(KEPT))
def test_bundled_report_has_no_debris_after_cleaning(cleaned_reports, name):
    raw, cleaned = cleaned_reports[name]
    form = matching_form(cleaned.text)
    for debris in DEBRIS:
        assert matching_form(debris) not in form, debris
    for line in cleaned.text.split("\n"):
        assert line.strip(), "no blank lines are left"
        assert not is_debris(line), line
        assert not is_info_line(line), line


def test_the_debris_in_the_files_is_really_there_before_cleaning(cleaned_reports):
    # Guard against a vacuous test 1: the raw files do carry the debris that clean() removes.
    raw_forms = {name: matching_form(raw) for name, (raw, _) in cleaned_reports.items()}
    assert "当前位置" in raw_forms["taiyuan-2024.txt"] and "字号" in raw_forms["taiyuan-2024.txt"]
    assert "您当前的位置" in raw_forms["mianyang-2024.txt"]
    assert "发布日期" in raw_forms["mianyang-2024.txt"]
    assert "相关信息" in raw_forms["mianyang-2024.txt"]
    for word in ["主办:", "承办:", "icp备", "网站标识码", "版权所有", "涉密文件严禁上网", "浏览器"]:
        assert word in raw_forms["houma-2023.txt"], word
    assert "扫一扫" in raw_forms["taicang-2024.txt"]
    assert "掃一掃在手機打開當前頁" in cleaned_reports["taicang-2024.txt"][1].removed


def test_page_information_lines_are_handed_on(cleaned_reports):
    _, mianyang = cleaned_reports["mianyang-2024.txt"]
    assert len(mianyang.info_lines) == 1
    assert "来源:绵阳市司法局" in mianyang.info_lines[0]
    assert "2025-03-11" in mianyang.info_lines[0]
    _, taiyuan = cleaned_reports["taiyuan-2024.txt"]
    assert len(taiyuan.info_lines) == 1 and "太原市司法局" in taiyuan.info_lines[0]


# --------------------------------------------------------------------------------------------
# 2. The body is kept
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(KEPT))
def test_bundled_report_body_is_kept(cleaned_reports, name):
    raw, cleaned = cleaned_reports[name]
    for sentence in KEPT[name]:
        assert sentence in raw, f"fixture sentence not in {name}: {sentence}"
        assert sentence in cleaned.text, sentence
    removed_chars = sum(len(line) + 1 for line in cleaned.removed)
    assert len(cleaned.text) >= 0.85 * (len(raw) - removed_chars)
    # Nothing that is not in the file appears: every cleaned line is a normalised raw line.
    raw_lines = set(normalise_stored(raw).split("\n"))
    for line in cleaned.text.split("\n"):
        assert line in raw_lines


def test_each_body_paragraph_of_taiyuan_survives(cleaned_reports):
    raw, cleaned = cleaned_reports["taiyuan-2024.txt"]
    kept_lines = cleaned.text.split("\n")
    paragraphs = [normalise_stored(line) for line in raw.split("\n") if len(line.strip()) > 60]
    paragraphs = [p for p in paragraphs if not p.startswith("时间:")]
    assert len(paragraphs) >= 15
    for paragraph in paragraphs:
        assert paragraph in kept_lines, paragraph[:20]


def test_duplicate_title_in_taiyuan_is_kept_once(cleaned_reports):
    raw, cleaned = cleaned_reports["taiyuan-2024.txt"]
    assert raw.count("太原市2024年法治政府建设年度报告") == 2
    assert cleaned.text.count("太原市2024年法治政府建设年度报告") == 1
    assert cleaned.text.startswith("太原市2024年法治政府建设年度报告\n2024年,我市深入学习贯彻")


# --------------------------------------------------------------------------------------------
# 3. Traditional stays traditional
# --------------------------------------------------------------------------------------------

def test_traditional_report_stays_traditional(cleaned_reports):
    raw, cleaned = cleaned_reports["taicang-2024.txt"]
    assert cleaned.text.startswith("太倉市2024年度法治政府建設工作情況報告")
    for word in ("太倉市", "法治政府建設", "行政復議", "糾紛", "報告"):
        assert word in cleaned.text
    for simplified in ("太仓市", "法治政府建设", "行政复议", "纠纷"):
        assert simplified not in cleaned.text
    # Only the QR-code hint and the rule line went; the traditional body is intact.
    assert cleaned.removed == ["-", "掃一掃在手機打開當前頁"]


# --------------------------------------------------------------------------------------------
# 4. Widths and spaces
# --------------------------------------------------------------------------------------------

def _doc(text: str, page_starts: list[int] | None = None, fmt: str = "txt") -> LoadedDocument:
    return LoadedDocument(path=Path(f"synthetic.{fmt}"), text=text, format=fmt,
                          page_starts=page_starts)


def test_full_width_alphanumerics_become_half_width_and_punctuation_stays():
    text = ("\u3000\u3000太原市２０２４年法治政府建设年度报告\n"
            "\u3000\u3000２０２４年，我市ＡＢＣ持续巩固深化\u3000\u3000“全国法治政府建设示范市”创建成果。\n"
            "（一）持续提升行政效能：市县两级承接事项３８项；全年新收行政复议案件１２７４件！\n")
    cleaned = clean(_doc(text))
    lines = cleaned.text.split("\n")
    assert lines[0] == "太原市2024年法治政府建设年度报告"
    assert lines[1] == "2024年，我市ABC持续巩固深化 “全国法治政府建设示范市”创建成果。"
    assert lines[2] == "（一）持续提升行政效能：市县两级承接事项38项；全年新收行政复议案件1274件！"
    for mark in "，。：；！（）“”":
        assert mark in cleaned.text
    for wide in "２０ＡＢＣ\u3000":
        assert wide not in cleaned.text


def test_space_runs_collapse_and_line_ends_are_normalised():
    text = "一、坚持党的全面领导 \t \r\n市委  市政府\u00a0\u00a0高度重视。\r\n\r\n\r\n二、存在的不足\r"
    cleaned = clean(_doc(text))
    assert cleaned.text == "一、坚持党的全面领导\n市委 市政府 高度重视。\n二、存在的不足"


# --------------------------------------------------------------------------------------------
# 5. Repeated frames, doubled titles, link tails
# --------------------------------------------------------------------------------------------

# taiyuan's lines as clean() stores them (one holds a no-break space), from the second title on.
TAIYUAN_BODY = [line for line in
                normalise_stored((REPORTS / "taiyuan-2024.txt").read_text(encoding="utf-8")).split("\n")
                if line][3:]

# A site frame that no single-line rule recognises: only its repetition marks it as debris.
FRAME = ["太原市人民政府门户网站", "太原市人民政府办公厅 主管", "地址:太原市府西街69号 邮编:030002",
         "联系电话:0351-4222525"]


def test_frame_lines_are_not_caught_by_the_line_rules():
    for line in FRAME:
        assert not is_debris(line) and not is_info_line(line), line


def test_footer_repeated_at_top_and_bottom_is_removed_from_both():
    lines = FRAME + TAIYUAN_BODY + FRAME
    assert len(TAIYUAN_BODY) > 24
    cleaned = clean(_doc("\n".join(lines)))
    for line in FRAME:
        assert line not in cleaned.text
    assert cleaned.text == "\n".join(TAIYUAN_BODY)
    assert cleaned.removed.count(FRAME[0]) == 2


def test_frame_rule_keeps_a_short_page_whole():
    # With 24 lines or fewer the frame rule is off: a short line at both ends is kept.
    body = TAIYUAN_BODY[:10]
    lines = [FRAME[0]] + body + [FRAME[0]]
    cleaned = clean(_doc("\n".join(lines)))
    assert cleaned.text.split("\n") == lines


def test_title_printed_twice_in_a_row_is_kept_once():
    title = "太原市2024年法治政府建设年度报告"
    text = "\n".join([title, "", title, "时间:2025-03-24 来源: 太原市司法局", title] + TAIYUAN_BODY[1:6])
    cleaned = clean(_doc(text))
    assert cleaned.text.count(title) == 1
    assert cleaned.text.split("\n")[0] == title
    assert cleaned.text.split("\n")[1:] == TAIYUAN_BODY[1:6]


def test_repeated_long_paragraph_is_not_collapsed():
    # Only short lines (titles) are deduplicated; a repeated long paragraph is report text.
    paragraph = TAIYUAN_BODY[1]
    assert len(paragraph) > 80
    cleaned = clean(_doc("\n".join([paragraph, paragraph])))
    assert cleaned.text == f"{paragraph}\n{paragraph}"


def test_related_links_tail_is_cut():
    tail = ["相关信息", "太原市2023年法治政府建设年度报告", "太原市2022年法治政府建设年度报告",
            "关于公布2025年度重大行政决策事项目录的通告", "【打印】 【关闭】"]
    cleaned = clean(_doc("\n".join(TAIYUAN_BODY + tail)))
    assert cleaned.text == "\n".join(TAIYUAN_BODY)
    assert "2023年法治政府建设年度报告" not in cleaned.text
    assert cleaned.removed == tail


@pytest.mark.parametrize("heading", ["相关链接", "相关文章:", "延伸阅读", "附件下载"])
def test_other_link_tail_headings_cut_too(heading):
    cleaned = clean(_doc("\n".join(TAIYUAN_BODY + [heading, "上一篇:太原市2023年报告"])))
    assert cleaned.text == "\n".join(TAIYUAN_BODY)


def test_related_heading_in_the_first_half_does_not_cut_the_report():
    lines = TAIYUAN_BODY[:2] + ["相关信息"] + TAIYUAN_BODY[2:]
    cleaned = clean(_doc("\n".join(lines)))
    for line in TAIYUAN_BODY:
        assert line in cleaned.text
    assert cleaned.text.split("\n")[-1] == TAIYUAN_BODY[-1]


@pytest.mark.parametrize("line", [
    "当前位置:首页 > 政府信息公开 > 通告公示",
    "您当前的位置: 首页>通知公告",
    "首页 > 政务公开 > 通知公告",
    "字号:[ 大 中 小 ]",
    "【大】【中】【小】",
    "扫一扫在手机打开当前页",
    "掃一掃在手機打開當前頁",
    "主办:山西省侯马市人民政府办公室 © 版权所有",
    "承办單位:侯馬市人民政府辦公室",
    "晋ICP备11001650-1号 网站标识码:1410810005",
    "冀公网安备 13010202000123号",
    "Copyright © 2025 www.taiyuan.gov.cn All Rights Reserved",
    "涉密文件严禁上网",
    "使用大于1366*768分辨率/IE10.0或以上浏览器可以获得最佳浏览效果!",
    "【打印】 【关闭】",
    "打印本页 关闭窗口",
    "上一篇:太原市2023年法治政府建设年度报告",
    "责任编辑:王某",
    "浏览次数:1024次",
    "------",
    "网站地图 | 联系我们",
])
def test_web_furniture_lines_are_debris(line):
    assert is_debris(line)
    cleaned = clean(_doc("\n".join(TAIYUAN_BODY[:3] + [line] + TAIYUAN_BODY[3:6])))
    assert cleaned.text == "\n".join(TAIYUAN_BODY[:6])


@pytest.mark.parametrize("line", [
    "一、坚持党的全面领导,确保法治政府建设始终沿着正确方向推进",
    "(一)持续提升行政效能",
    "2024年1月19日",
    "中共侯马市委 侯马市人民政府",
    "特此報告。",
    "1.全面加強黨的領導。",
    "意见建议:一是加强顶层设计,增加法治机构人员编制,配齐配强法治工作人员。",
])
def test_report_lines_are_not_debris(line):
    assert not is_debris(line)
    assert not is_info_line(line)


def test_clean_docstring_example():
    document = LoadedDocument(Path("a.txt"), "当前位置:首页 > 通告\n正文。\n版权所有", "txt")
    assert clean(document).text == "正文。"


# --------------------------------------------------------------------------------------------
# 6. PDF page starts after removed lines
# --------------------------------------------------------------------------------------------

def _paged(pages: list[list[str]]) -> tuple[str, list[int]]:
    """Join pages the way the PDF loader does: lines with "\\n", pages with "\\n"."""
    texts = ["\n".join(lines) for lines in pages]
    starts, offset = [], 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + 1
    return "\n".join(texts), starts


def test_page_starts_shift_when_debris_lines_are_removed():
    body = TAIYUAN_BODY
    pages = [
        ["当前位置:首页 > 政府信息公开 > 通告公示", body[0], body[1], body[2]],
        ["涉密文件严禁上网", "字号:[ 大 中 小 ]", body[3], body[4]],
        ["主办:太原市人民政府办公厅", "晋ICP备05000123号 网站标识码:1401000001"],  # all debris
        [body[5], "扫一扫在手机打开当前页", body[6], body[7]],
    ]
    text, starts = _paged(pages)
    document = _doc(text, starts, fmt="pdf")
    # The fixture is built like the loader's output.
    for page, start in zip(pages, starts):
        assert text[start:].startswith(page[0])

    cleaned = clean(document)

    assert cleaned.text == "\n".join(body[:8])
    new = cleaned.page_starts
    assert new is not None and len(new) == len(starts)
    assert new[0] == 0
    assert cleaned.text[new[1]:].startswith(body[3])
    assert new[2] == new[3]  # the all-debris page is empty, and pages after it keep their number
    assert cleaned.text[new[3]:].startswith(body[5])
    assert all(a <= b for a, b in zip(new, new[1:]))
    # Each page's cleaned text is exactly its kept lines.
    bounds = new + [len(cleaned.text) + 1]
    assert cleaned.text[bounds[0]:bounds[1] - 1] == "\n".join(body[0:3])
    assert cleaned.text[bounds[1]:bounds[2] - 1] == "\n".join(body[3:5])
    assert cleaned.text[bounds[3]:] == "\n".join([body[5], body[6], body[7]])


def test_page_starts_when_a_page_begins_with_a_blank_line_and_a_doubled_title():
    title = "太原市2024年法治政府建设年度报告"
    pages = [[title, TAIYUAN_BODY[1]], ["", title, TAIYUAN_BODY[2], TAIYUAN_BODY[3]]]
    text, starts = _paged(pages)
    cleaned = clean(_doc(text, starts, fmt="pdf"))
    # The second page's repeated title is not a repeat in a row (body text in between): kept.
    assert cleaned.text.count(title) == 2
    assert cleaned.text[cleaned.page_starts[1]:].startswith(title + "\n" + TAIYUAN_BODY[2])


def test_text_without_pages_has_no_page_starts():
    assert clean(_doc("\n".join(TAIYUAN_BODY[:3]))).page_starts is None


def test_trailing_all_debris_page_keeps_its_page_start():
    pages = [[TAIYUAN_BODY[0], TAIYUAN_BODY[1]], [TAIYUAN_BODY[2]],
             ["主办:太原市人民政府办公厅 版权所有", "晋ICP备05000123号", "涉密文件严禁上网"]]
    text, starts = _paged(pages)
    cleaned = clean(_doc(text, starts, fmt="pdf"))
    assert cleaned.text == "\n".join(TAIYUAN_BODY[:3])
    assert len(cleaned.page_starts) == 3
    assert cleaned.text[cleaned.page_starts[1]:] == TAIYUAN_BODY[2]
    assert cleaned.page_starts[2] >= len(cleaned.text)  # an empty last page, after all text


# --- regressions found in review -----------------------------------------------------------

def test_page_starts_are_measured_before_whitespace_is_normalised():
    from pathlib import Path

    from rag.ingest.loaders import LoadedDocument

    text = "一、主要工作\n市委  市政府   高度重视法治政府建设工作。\n第二页的第一句话。\n第二页的第二句话。"
    cleaned = clean(LoadedDocument(Path("a.pdf"), text, "pdf", page_starts=[0, text.index("第二页的第一句话")]))
    assert cleaned.text[cleaned.page_starts[1]:].startswith("第二页的第一句话。")


@pytest.mark.parametrize("line", [
    "市场监管局推行企业扫描二维码登记,全年办理登记3000余件,实现全程网办。",
    "全年办理人大代表建议195件,数据显示办结率100%。",
    "市司法局查处侵犯版权所有人合法权益案件12件,有力保护了知识产权。",
    "严格落实涉密信息严禁上网规定,全年开展保密检查20次。",
    "无障碍环境建设法实施后,全市完成无障碍改造项目50个。",
    "开展“字号(名称)登记”改革,企业名称自主申报率达到98%。",
])
def test_report_sentences_that_mention_page_words_are_kept(line):
    assert not is_debris(line)


@pytest.mark.parametrize("line", ["【打印本页】【关闭窗口】", "[ 打印 ] [ 关闭 ]", "【关闭窗口】",
                                  "【返回顶部】", "分享到:"])
def test_print_close_share_widgets_are_debris(line):
    assert is_debris(line)


def test_pdf_reflow_keeps_headings_on_their_own_lines():
    from rag.ingest.loaders import _reflow_pdf_lines

    page = "(一)持续提升行政效能\n对照《山西省6类依申请行政权力\n事项清单》,逐项梳理确认。\n二、存在的不足\n部分领导干部"
    assert _reflow_pdf_lines(page).split("\n") == [
        "(一)持续提升行政效能", "对照《山西省6类依申请行政权力事项清单》,逐项梳理确认。", "二、存在的不足", "部分领导干部"]
