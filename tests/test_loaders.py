"""Loader tests on fixtures built in tmp_path from the bundled real reports.

Every file a test reads is written by the test itself (encodings, HTML pages, PDFs made with
reportlab, .docx made with python-docx), so nothing is fetched and nothing binary is shipped.
"""

from __future__ import annotations

import codecs
import io
import random
import re
import sys
import types
import zipfile
from html import escape
from pathlib import Path

import pytest

from rag.ingest.cleaning import clean
from rag.ingest.errors import EmptyDocument, IngestError, UnreadableDocument, UnsupportedFormat
from rag.ingest.loaders import SUPPORTED_SUFFIXES, LoadedDocument, decode_text, load_document
from rag.text.normalize import matching_form, normalise_stored

REPORTS = Path(__file__).resolve().parents[1] / "data" / "reports"


def report_text(name: str) -> str:
    return (REPORTS / name).read_text(encoding="utf-8")


def body_lines(name: str) -> list[str]:
    """The non-blank lines of a bundled report, stripped (the nbsp-only spacer lines dropped)."""
    return [line.strip() for line in report_text(name).split("\n") if line.strip()]


def no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --------------------------------------------------------------------------------------------
# 1. Encodings
# --------------------------------------------------------------------------------------------

# (report, codec used to write it, canonical names of the encodings the loader may report)
ENCODING_CASES = [
    ("taiyuan-2024.txt", "gbk", {"gbk", "gb18030"}),
    ("shijiazhuang-2024.txt", "gbk", {"gbk", "gb18030"}),
    ("taicang-2024.txt", "gbk", {"gbk", "gb18030"}),
    ("houma-2023.txt", "gb18030", {"gb18030"}),
    ("taiyuan-2024.txt", "gb18030", {"gb18030"}),
    ("mianyang-2024.txt", "gb18030", {"gb18030"}),
    ("taiyuan-2024.txt", "utf-8-sig", {"utf-8-sig"}),
    ("houma-2023.txt", "utf-8-sig", {"utf-8-sig"}),
    ("taiyuan-2024.txt", "utf-16", {"utf-16"}),
    ("houma-2023.txt", "utf-16", {"utf-16"}),
    ("taicang-2024.txt", "utf-16", {"utf-16"}),
    ("taicang-2024.txt", "big5", {"big5", "big5hkscs", "cp950"}),
    ("mianyang-2024.txt", "utf-8", {"utf-8"}),
]


def _encodable(text: str, codec: str) -> str:
    """The report text as it can be written in ``codec``.

    taiyuan has one spacer line made of a no-break space, which GBK lacks; it becomes a plain
    space. Everything else must encode strictly, so the comparison below is against real text.
    """
    if codec == "gbk":
        text = text.replace("\xa0", " ")
    text.encode(codec, errors="strict")  # raises if a fixture silently loses characters
    return text


@pytest.mark.parametrize(("report", "codec", "expected"), ENCODING_CASES,
                         ids=[f"{r.split('-')[0]}-{c}" for r, c, _ in ENCODING_CASES])
def test_text_file_in_any_encoding_round_trips_exactly(tmp_path, report, codec, expected):
    original = _encodable(report_text(report), codec)
    data = original.encode(codec)
    assert len(data) > 4000  # a few KB of real report text
    if codec == "utf-16":
        assert data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    if codec == "utf-8-sig":
        assert data.startswith(codecs.BOM_UTF8)
    path = tmp_path / f"{Path(report).stem}-{codec}.txt"
    path.write_bytes(data)

    document = load_document(path)

    assert document.format == "txt"
    assert document.text == original  # exact: no mojibake, no BOM, nothing lost
    assert "\ufeff" not in document.text and "\ufffd" not in document.text
    assert codecs.lookup(document.encoding).name in expected


def test_big5_traditional_report_keeps_traditional_characters(tmp_path):
    original = report_text("taicang-2024.txt")
    path = tmp_path / "taicang-big5.txt"
    path.write_bytes(original.encode("big5", errors="strict"))
    document = load_document(path)
    assert document.text == original
    for word in ("太倉市", "法治政府建設", "行政復議", "糾紛"):
        assert word in document.text


def test_gbk_file_with_windows_line_ends(tmp_path):
    original = report_text("shijiazhuang-2024.txt")
    path = tmp_path / "shijiazhuang-crlf.txt"
    path.write_bytes(original.replace("\n", "\r\n").encode("gbk"))
    document = load_document(path)
    assert document.text.replace("\r\n", "\n") == original
    assert normalise_stored(document.text) == normalise_stored(original)
    assert codecs.lookup(document.encoding).name in {"gbk", "gb18030"}


def test_gb18030_only_characters_survive(tmp_path):
    # houma carries a "©" (not in GBK): the loader must decode as GB18030, not GBK/GB2312.
    original = report_text("houma-2023.txt")
    with pytest.raises(UnicodeEncodeError):
        original.encode("gbk")
    path = tmp_path / "houma-gb18030.txt"
    path.write_bytes(original.encode("gb18030"))
    document = load_document(path)
    assert "© 版权所有" in document.text
    assert document.text == original


def test_decode_text_directly_reports_encoding():
    text = report_text("taiyuan-2024.txt")
    decoded, encoding = decode_text(text.encode("utf-16"))
    assert decoded == text and codecs.lookup(encoding).name == "utf-16"
    decoded, encoding = decode_text(codecs.BOM_UTF8 + text.encode("utf-8"))
    assert decoded == text and encoding == "utf_8_sig"
    with pytest.raises(EmptyDocument):
        decode_text(b" \r\n\t ")


class _FakeMatch:
    def __init__(self, encoding):
        self.encoding = encoding


@pytest.mark.parametrize("detected", ["gb2312", "gbk", "hz"])
def test_gbk_family_detection_decodes_as_gb18030(monkeypatch, detected):
    # charset-normalizer sometimes names GBK text gb2312 (or gbk); decoding with that name would
    # turn the characters outside GB2312 (traditional 臺, rare 堃/喆/镕) into U+FFFD.
    import charset_normalizer

    class _FakeResult:
        def best(self):
            return _FakeMatch(detected)

    monkeypatch.setattr(charset_normalizer, "from_bytes", lambda data: _FakeResult())
    text = report_text("shijiazhuang-2024.txt").replace("石家庄市", "石家庄市(堃喆镕臺)", 1)
    with pytest.raises(UnicodeDecodeError):
        text.encode("gbk").decode("gb2312")
    decoded, encoding = decode_text(text.encode("gbk"))
    assert encoding == "gb18030"
    assert decoded == text


# --------------------------------------------------------------------------------------------
# 2. HTML
# --------------------------------------------------------------------------------------------

HTML_TITLE = "石家庄市2024年法治政府建设情况报告"
NAV_WORDS = ["互动交流", "政务公开", "办事服务"]
FOOTER_WORDS = ["版权所有", "ICP备", "网站标识码", "主办:", "承办:"]


def _html_page(lines: list[str], charset: str) -> str:
    paragraphs = "\n".join(f"<p>{escape(line)}</p>" for line in lines)
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="{charset}">
<title>{HTML_TITLE}_石家庄市人民政府</title>
<style>.content p {{ text-indent: 2em; }}</style>
<script>var _hmt = _hmt || [];</script>
</head>
<body>
<nav class="top-nav">
  <ul>
    <li><a href="/">首页</a></li>
    <li><a href="/zwgk/">政务公开</a></li>
    <li><a href="/bsfw/">办事服务</a></li>
    <li><a href="/hdjl/">互动交流</a></li>
  </ul>
  <div class="breadcrumb">当前位置:<a href="/">首页</a> &gt; <a href="/zwgk/">政务公开</a> &gt; 通知公告</div>
</nav>
<div class="location">您当前的位置: 首页 &gt; 政务公开 &gt; 通知公告</div>
<div class="content">
  <h1>{HTML_TITLE}</h1>
  <div class="info">发布日期: 2025-03-20 来源: 石家庄市司法局</div>
  <div class="tools">字号:[ 大 中 小 ]</div>
  {paragraphs}
  <div class="qr">扫一扫在手机打开当前页</div>
  <div class="related">
    <h3>相关信息</h3>
    <ul>
      <li><a href="/a.html">石家庄市2023年法治政府建设情况报告</a></li>
      <li><a href="/b.html">关于开展2025年度行政执法案卷评查工作的通知</a></li>
    </ul>
  </div>
</div>
<footer>
  <p>主办:石家庄市人民政府办公室 版权所有</p>
  <p>承办:石家庄市大数据中心 冀ICP备05012345号 网站标识码:1301000001</p>
</footer>
</body>
</html>
"""


# The HTML loader first asks trafilatura for the article and falls back to BeautifulSoup's
# visible text (nav, header, footer, script and style dropped) when trafilatura finds none.
# Every HTML test runs both branches: real trafilatura, and a trafilatura whose extract()
# finds no article (the fallback branch of _load_html).
@pytest.fixture(params=["trafilatura", "bs4-fallback"])
def html_fallback(request, monkeypatch):
    if request.param == "bs4-fallback":
        stub = types.ModuleType("trafilatura")
        stub.extract = lambda *args, **kwargs: None
        monkeypatch.setitem(sys.modules, "trafilatura", stub)
    return request.param


SJZ_SENTENCES = [
    "全市共受理申请类、通知类法律援助案件1.26万余件",
    "依法废止12件政府规章",
    "全年办理各级人大代表建议591件、各级政协提案558件",
    "一、加强组织领导,法治政府建设更加有力",
]


@pytest.mark.parametrize("charset,codec", [("utf-8", "utf-8"), ("gbk", "gbk")])
def test_html_page_keeps_the_report_and_drops_the_page_furniture(
        tmp_path, html_fallback, charset, codec):
    lines = body_lines("shijiazhuang-2024.txt")
    path = tmp_path / f"report-{charset}.html"
    path.write_bytes(_html_page(lines, charset).encode(codec))

    document = load_document(path)

    assert document.format == "html"
    assert document.html_title == HTML_TITLE  # the <h1>, not the site-suffixed <title>
    assert "\ufffd" not in document.text
    if charset == "gbk":
        assert codecs.lookup(document.encoding).name in {"gbk", "gb18030"}
    for sentence in SJZ_SENTENCES:
        assert sentence in document.text
    # The loader drops <nav>, <footer>, <script> and <style> itself.
    for word in NAV_WORDS[2:] + ["主办:", "网站标识码", "_hmt", "text-indent"]:
        assert word not in document.text

    cleaned = clean(document)

    for line in lines:
        assert line in cleaned.text  # every paragraph of the report survives, whole
    form = matching_form(cleaned.text)
    for debris in ["当前位置", "您当前的位置", "字号", "扫一扫", "相关信息", "发布日期",
                   "2023年法治政府建设情况报告", "案卷评查工作的通知"]:
        assert matching_form(debris) not in form
    for word in NAV_WORDS + FOOTER_WORDS:
        assert matching_form(word) not in form
    assert cleaned.text.rstrip().endswith(lines[-1])


def test_html_page_information_line_is_handed_on_for_metadata(tmp_path, html_fallback):
    path = tmp_path / "report.html"
    path.write_bytes(_html_page(body_lines("shijiazhuang-2024.txt"), "utf-8").encode("utf-8"))
    cleaned = clean(load_document(path))
    assert "发布日期" not in cleaned.text
    assert cleaned.info_lines == ["发布日期: 2025-03-20 来源: 石家庄市司法局"]


def test_gbk_html_page_decodes_without_mojibake(tmp_path, html_fallback):
    # taiyuan has no-break spaces (not in GBK) inside two lines; a GBK page would hold spaces.
    lines = [line.replace("\xa0", " ") for line in body_lines("taiyuan-2024.txt")]
    page = _html_page(lines, "gbk").replace(HTML_TITLE, "太原市2024年法治政府建设年度报告")
    path = tmp_path / "taiyuan.htm"
    path.write_bytes(page.encode("gbk"))
    assert b"<meta charset=\"gbk\">" in path.read_bytes()

    document = load_document(path)

    assert document.format == "html"
    assert codecs.lookup(document.encoding).name in {"gbk", "gb18030"}
    assert "市政府行政复议局全年新收行政复议案件1274件,同比增长204%。" in document.text
    assert "太原市2024年法治政府建设年度报告" in clean(document).text


# --------------------------------------------------------------------------------------------
# 3. PDF
# --------------------------------------------------------------------------------------------

CHARS_PER_LINE = 30
_LINES_PER_PAGE = 40


def _cid_font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


def _write_pdf(path: Path, paragraphs: list[str]) -> list[tuple[str, int, int, list[str]]]:
    """Print paragraphs wrapped at CHARS_PER_LINE characters, 40 lines a page.

    Returns, for each paragraph, (paragraph, first page, last page, its printed lines).
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    font = _cid_font()
    pdf = canvas.Canvas(str(path), pagesize=A4)
    _, height = A4
    page, row = 1, 0
    layout = []
    for paragraph in paragraphs:
        printed = [paragraph[i:i + CHARS_PER_LINE] for i in range(0, len(paragraph), CHARS_PER_LINE)]
        first = page
        for line in printed:
            if row == _LINES_PER_PAGE:
                pdf.showPage()
                page, row = page + 1, 0
            pdf.setFont(font, 12)
            pdf.drawString(50, height - 60 - 18 * row, line)
            row += 1
        layout.append((paragraph, first, page, printed))
    pdf.save()
    return layout


def _page_top_lines(layout) -> dict[int, str]:
    """The first line printed on each page, from the layout _write_pdf returns."""
    tops, row, page = {}, 0, 1
    for _, _, _, printed in layout:
        for line in printed:
            if row == _LINES_PER_PAGE:
                page, row = page + 1, 0
            if row == 0:
                tops[page] = line
            row += 1
    return tops


@pytest.fixture
def taiyuan_pdf(tmp_path):
    paragraphs = [line for line in body_lines("taiyuan-2024.txt")
                  if not line.startswith(("当前位置", "时间:"))][1:]  # the title once
    path = tmp_path / "太原市2024年法治政府建设年度报告.pdf"
    layout = _write_pdf(path, paragraphs)
    return path, layout


def _printable(text: str) -> str:
    """The text as the fixture PDFs hold it: reportlab's STSong-Light prints "·" and the
    no-break space with no glyph and no width, so a layout reader (pdfplumber) never sees them."""
    return text.replace("·", "").replace("\xa0", "")


def test_pdf_text_comes_back_page_by_page(taiyuan_pdf):
    path, layout = taiyuan_pdf
    pages = layout[-1][2]
    assert 2 <= pages <= 3

    document = load_document(path)

    assert document.format == "pdf"
    starts = document.page_starts
    assert starts is not None and len(starts) == pages
    assert starts[0] == 0
    assert all(a < b for a, b in zip(starts, starts[1:]))
    assert starts[-1] < len(document.text)
    # A paragraph belongs to the page it starts on (one that runs over a page break is joined
    # there); each page's text starts on a fresh line with the first paragraph printed on it.
    for page, start in enumerate(starts, 1):
        assert start == 0 or document.text[start - 1] == "\n"
        first = next(p for p, first_page, *_ in layout if first_page == page)
        assert document.text[start:].startswith(_printable(first)[:20]), page
    # Every paragraph is found, whole, within the text of the page it starts on.
    bounds = starts + [len(document.text)]
    for paragraph, page, *_ in layout:
        page_text = document.text[bounds[page - 1]:bounds[page]]
        assert no_space(_printable(paragraph)) in no_space(page_text), paragraph[:20]
    assert no_space(_printable("".join(p for p, *_ in layout))) == no_space(document.text)


def test_pdf_sentence_on_page_two_lies_after_page_two_start(taiyuan_pdf):
    path, layout = taiyuan_pdf
    sentence = "市政府行政复议局全年新收行政复议案件1274件,同比增长204%。"
    (paragraph, first, last, _), = [item for item in layout if sentence in item[0]]
    assert first == last == 2  # the fixture puts it on page 2

    document = load_document(path)
    position = document.text.find(sentence)

    assert position >= 0
    assert position >= document.page_starts[1]
    if len(document.page_starts) > 2:
        assert position < document.page_starts[2]
    first_page_sentence = "市长主持召开市政府常务会议研究审议"
    assert 0 <= document.text.find(first_page_sentence) < document.page_starts[1]


def test_pdf_reflow_joins_the_printed_lines_of_a_paragraph(taiyuan_pdf):
    from rag.ingest.chunking import HEADING

    path, layout = taiyuan_pdf
    document = load_document(path)
    printed_lines = sum(len(printed) for *_, printed in layout)
    # Far fewer text lines than printed lines: the 30-character lines were joined back.
    assert document.text.count("\n") + 1 < printed_lines / 2
    # A paragraph whose printed lines never end on a sentence end (so the loader has no reason
    # to keep a break) comes back as one unbroken run of text.
    joinable = [p for p, first, last, printed in layout
                if first == last and len(printed) >= 3
                and not any(line.endswith(tuple("。！？；：!?;:”」』）)")) for line in printed[:-1])
                and not any(HEADING.match(matching_form(line)) for line in printed[1:])]
    assert len(joinable) >= 3
    for paragraph in joinable:
        assert _printable(paragraph) in document.text, paragraph[:20]


def test_pdf_page_starts_survive_cleaning(taiyuan_pdf):
    path, layout = taiyuan_pdf
    document = load_document(path)
    cleaned = clean(document)
    assert cleaned.page_starts is not None
    assert len(cleaned.page_starts) == len(document.page_starts)
    bounds = cleaned.page_starts + [len(cleaned.text)]
    for paragraph, first, last, _ in layout:  # on the page it starts on, as loaded
        page_text = cleaned.text[bounds[first - 1]:bounds[first]]
        assert no_space(_printable(paragraph)) in no_space(page_text), paragraph[:20]


# --------------------------------------------------------------------------------------------
# 4. DOCX
# --------------------------------------------------------------------------------------------

HOUMA_TABLE = [("事项", "数量"), ("行政复议案件", "68件"), ("行政应诉案件", "21件"),
               ("法律援助案件", "150件")]


def test_docx_paragraphs_headings_and_table_come_back(tmp_path):
    import docx

    lines = [line for line in body_lines("houma-2023.txt")
             if not line.startswith(("主办", "承办", "晋ICP", "涉密", "侯马市人民政府门户网站"))]
    document = docx.Document()
    document.add_heading("侯马市2023年法治政府建设年度报告", level=0)
    for line in lines:
        if re.match(r"^[一二三四五六七八九十]+、", line):
            document.add_heading(line, level=1)
        elif line.startswith("("):
            document.add_heading(line, level=2)
        else:
            document.add_paragraph(line)
    table = document.add_table(rows=len(HOUMA_TABLE), cols=2)
    for r, row in enumerate(HOUMA_TABLE):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    path = tmp_path / "侯马市 2023 年度报告.docx"
    document.save(str(path))

    loaded = load_document(path)

    assert loaded.format == "docx"
    text_lines = loaded.text.split("\n")
    assert text_lines[0] == "侯马市2023年法治政府建设年度报告"
    assert text_lines[1:1 + len(lines)] == lines  # every paragraph, in order, unchanged
    for left, right in HOUMA_TABLE:
        assert f"{left}\t{right}" in text_lines
    cleaned = clean(loaded)
    assert "全年共办理行政复议案件68件" in cleaned.text
    assert "行政复议案件 68件" in cleaned.text  # clean() turns the tab into one space


# --------------------------------------------------------------------------------------------
# 5. Markdown
# --------------------------------------------------------------------------------------------

def test_markdown_marks_are_stripped_to_plain_text(tmp_path):
    source = (
        "# 太原市2024年法治政府建设年度报告\n\n"
        "## 一、坚持党的全面领导\n\n"
        "### (一)持续提升行政效能\n\n"
        "全面推进落实[《法治政府建设实施纲要(2021—2025年)》](https://www.gov.cn/zhengce/2021-08/11/content_5630802.htm),"
        "市政府行政复议局全年新收**行政复议案件1274件**,同比增长__204%__。\n\n"
        "![二维码](qrcode.png)\n"
        "> 自觉接受人大监督和民主监督。\n"
    )
    path = tmp_path / "taiyuan.md"
    path.write_text(source, encoding="utf-8")

    document = load_document(path)

    assert document.format == "md"
    lines = [line for line in document.text.split("\n") if line.strip()]
    assert lines[0] == "太原市2024年法治政府建设年度报告"
    assert lines[1] == "一、坚持党的全面领导"
    assert lines[2] == "(一)持续提升行政效能"
    assert ("全面推进落实《法治政府建设实施纲要(2021—2025年)》,"
            "市政府行政复议局全年新收行政复议案件1274件,同比增长204%。") in lines
    assert "自觉接受人大监督和民主监督。" in lines
    for mark in ("#", "**", "__", "](", "http", "![", "qrcode.png", ">"):
        assert mark not in document.text


# --------------------------------------------------------------------------------------------
# 6. Errors and odd names
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,data", [
    ("empty.txt", b""),
    ("blank.txt", b" \n\r\n\t  \n"),
    ("bom-only.txt", codecs.BOM_UTF8),
    ("empty.md", b""),
    ("empty.pdf", b""),
    ("empty.docx", b""),
    ("empty.html", b""),
])
def test_empty_files_raise_empty_document(tmp_path, html_fallback, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(EmptyDocument) as info:
        load_document(path)
    assert str(info.value)


def test_docx_without_text_is_empty(tmp_path):
    import docx

    path = tmp_path / "blank.docx"
    docx.Document().save(str(path))
    with pytest.raises(EmptyDocument, match="no text"):
        load_document(path)


def _junk(size: int = 4096) -> bytes:
    return random.Random(20240324).randbytes(size)


@pytest.mark.parametrize("name,data,word", [
    ("junk.pdf", _junk(), "PDF"),
    ("header-only.pdf", b"%PDF-1.7\n" + _junk(), "PDF"),
    ("junk.docx", _junk(), ".docx"),
    ("png-renamed.docx", b"\x89PNG\r\n\x1a\n" + _junk(), ".docx"),
    ("junk.txt", _junk(), "text"),
])
def test_binary_junk_is_unreadable_with_a_readable_message(tmp_path, name, data, word):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UnreadableDocument) as info:
        load_document(path)
    message = str(info.value)
    assert word in message
    assert message.isprintable() and len(message) < 300


def test_zip_that_is_not_a_docx_is_unreadable(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("report.txt", report_text("taiyuan-2024.txt"))
    path = tmp_path / "not-word.docx"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(UnreadableDocument, match=r"\.docx"):
        load_document(path)


def test_truncated_pdf_is_unreadable(tmp_path, taiyuan_pdf):
    path, _ = taiyuan_pdf
    data = path.read_bytes()
    broken = tmp_path / "truncated.pdf"
    broken.write_bytes(data[: len(data) // 3])
    with pytest.raises(UnreadableDocument, match="PDF"):
        load_document(broken)


def _encrypted_copy(path, target, user_password):
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(path))
    writer.encrypt(user_password=user_password, owner_password="owner-2024")
    with open(target, "wb") as handle:
        writer.write(handle)
    return target


def test_encrypted_pdf_is_unreadable(tmp_path, taiyuan_pdf):
    locked = _encrypted_copy(taiyuan_pdf[0], tmp_path / "locked.pdf", "fzzf2024")
    with pytest.raises(UnreadableDocument, match="encrypted"):
        load_document(locked)


def test_pdf_encrypted_with_empty_user_password_still_loads(tmp_path, taiyuan_pdf):
    restricted = _encrypted_copy(taiyuan_pdf[0], tmp_path / "restricted.pdf", "")

    document = load_document(restricted)
    assert document.text == load_document(taiyuan_pdf[0]).text


@pytest.mark.slow  # OCR of two pages: several seconds
def test_pdf_without_text_layer_or_readable_content_is_unreadable(tmp_path):
    # Pages without a text layer are OCR'd (tests/test_ocr.py); shapes alone read as nothing
    # (the empty square as a lone "口"), and the message says so.
    from reportlab.pdfgen import canvas

    path = tmp_path / "scan.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.rect(72, 72, 300, 500, stroke=1, fill=1)
    pdf.showPage()
    pdf.rect(100, 100, 50, 50, stroke=1, fill=0)
    pdf.save()
    with pytest.raises(UnreadableDocument, match="no text layer, and OCR found no text on its 2 page"):
        load_document(path)


def test_old_word_doc_with_junk_after_its_signature_is_unreadable(tmp_path):
    # Real Word 97 files are read (tests/test_word97.py); junk behind the OLE2 signature is named.
    path = tmp_path / "report.doc"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + _junk(1024))
    with pytest.raises(UnreadableDocument, match=r"\.doc file: damaged OLE2 container"):
        load_document(path)
    with pytest.raises(UnreadableDocument, match="cannot read"):
        load_document(tmp_path / "REPORT.DOC")  # upper case is a .doc too


@pytest.mark.parametrize("name", ["report.xyz", "report.rtf", "report"])
def test_unknown_suffix_is_unsupported(tmp_path, name):
    path = tmp_path / name
    path.write_text(report_text("taiyuan-2024.txt"), encoding="utf-8")
    with pytest.raises(UnsupportedFormat) as info:
        load_document(path)
    for suffix in SUPPORTED_SUFFIXES:
        assert suffix in str(info.value)


def test_missing_file_is_unreadable(tmp_path):
    with pytest.raises(UnreadableDocument, match="cannot read"):
        load_document(tmp_path / "nowhere.txt")
    with pytest.raises(IngestError):
        load_document(tmp_path)  # a folder is not a report either (no suffix)


@pytest.mark.parametrize("name", [
    "太原市 2024 年 法治政府建设年度报告 (终稿).txt",
    "太原市2024年法治政府建设年度报告.TXT",
    "report.v2.final.txt",
    "a" * 196 + ".txt",  # a 200-character name
    "报" * 80 + ".txt",  # 84 characters, 244 bytes: near the file-system limit
    "#1 report & notes, 'draft'.md",
])
def test_odd_file_names_load(tmp_path, name):
    original = report_text("taiyuan-2024.txt")
    path = tmp_path / name
    path.write_text(original, encoding="utf-8")
    document = load_document(path)
    assert document.text == original
    assert document.path == path


def test_loaded_document_is_a_plain_record(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("市政府行政复议局全年新收行政复议案件1274件。", encoding="utf-8")
    document = load_document(path)
    assert isinstance(document, LoadedDocument)
    assert document.page_starts is None and document.html_title is None
    assert document.encoding == "utf_8"
