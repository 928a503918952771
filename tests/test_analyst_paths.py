"""The analyst answer paths: everyday words read as the reports' terms, the report's parts,
and section summaries (rag.text.synonyms, rag.text.parts, rag.answer.summary)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document

from rag.answer.summary import SummaryAnswer, _items, asks_summary
from rag.ingest.chunking import Chunker
from rag.ingest.cleaning import clean
from rag.ingest.loaders import load_document
from rag.retrieve.query import QueryAnalyzer
from rag.text.parts import Paragraph, ReportParts
from rag.text.synonyms import Synonyms
from rag.types import ReportRecord

REPORTS = Path(__file__).resolve().parent.parent / "data" / "reports"


def test_everyday_words_become_the_reports_terms():
    synonyms = Synonyms.default()
    assert synonyms.rewrite("行政复议的案子跟前一年比涨了多少")[0] == "行政复议的案件跟前一年比增长多少"
    assert synonyms.rewrite("老百姓上访的总量降了多少")[0] == "群众信访的总量下降多少"
    # The report's own term is never rewritten inside itself (发布会 in 新闻发布会).
    assert synonyms.rewrite("新闻发布会开了几场")[0] == "新闻发布会开了几场"
    # A word two terms claim is a group of alternatives.
    text, groups = Synonyms({"下降": ["少了"], "减少": ["少了"]}).rewrite("少了多少")
    assert text == "下降多少" and groups == [[["下降"], ["减少"]]]


def test_the_analyzer_reads_everyday_words_as_terms():
    analyzer = QueryAnalyzer([ReportRecord(doc_id="t", version="v", source="t.txt", content_sha="s",
                                           region="太原市", year=2024)])
    analysis = analyzer.run("太原市政府2024年打官司赢了多少场？")
    assert "行政诉讼" in analysis.topic and "胜诉" in analysis.terms


def test_a_plans_question_for_next_year_reads_this_years_report():
    analyzer = QueryAnalyzer([ReportRecord(doc_id="m", version="v", source="m.txt", content_sha="s",
                                           region="绵阳市", year=2024)])
    plans = analyzer.run("绵阳市2025年法治政府建设的主要安排是什么？")
    assert plans.filter_years == [2024] and not plans.missing_years and plans.refusal_reason is None
    figure = analyzer.run("绵阳市2025年新收行政复议案件多少件？")  # not a plans question: no report
    assert figure.missing_years == [2025] and figure.refusal_reason == "year"


def test_parts_of_headings_openings_and_questions():
    parts = ReportParts.default()
    assert parts.of_heading("二、存在不足及意见建议") == "shortcomings"
    assert parts.of_heading("三、下一年度工作计划") == "plans"
    assert parts.of_heading("六、2025年法治政府建设主要工作安排") == "plans"
    assert parts.of_heading("2.压实法治建设第一责任。") == "leaders"
    assert parts.of_heading("(四)深化体制改革,全面推进严格规范公正文明执法") is None
    assert parts.opened_by("下一步,我市将继续深入贯彻落实党的二十大精神。") == "plans"
    assert parts.asked("侯马市2023年报告提出了哪些意见建议？") == "suggestions"
    assert parts.asked("太仓市2024年法治政府建设存在哪些薄弱环节和不足？") == "shortcomings"
    assert parts.asked("太原市2024年新收行政复议案件多少件？") is None


def test_tag_follows_headings_and_the_openings_of_the_last_section():
    parts = ReportParts.default()
    body = ("一、主要工作", "(一)依法行政")
    last = ("三、存在的不足和下一步工作打算",)
    paragraphs = [Paragraph("现将有关情况报告如下。"),
                  Paragraph("针对存在的问题,开展专项整治。", body),  # in the body: opens nothing
                  Paragraph(last[0], last, is_heading=True),
                  Paragraph("取得了一定成绩,但面临新的挑战。部分干部依法行政意识不强。", last),
                  Paragraph("下一步,我市将持续推进法治政府建设。", last),
                  Paragraph("一是持续紧抓关键少数。", last)]
    assert parts.tag(paragraphs) == ["preamble", "measures", "shortcomings", "shortcomings", "plans", "plans"]


def test_items_split_at_their_markers_or_into_sentences():
    got = _items("意见建议:一是加强顶层设计,配齐人员;二是积极对接上级,加强指导;三是加大培训力度。")
    assert got == ["一是加强顶层设计,配齐人员;", "二是积极对接上级,加强指导;", "三是加大培训力度。"]
    assert _items("全年共接访599次。推动解决问题119件。") == ["全年共接访599次。", "推动解决问题119件。"]


class _Index:
    """The one report's chunks, as ReportIndex.chunks gives them (a unit-test stand-in)."""

    def __init__(self, name: str):
        text = clean(load_document(REPORTS / name)).text
        self.docs = [Document(page_content=c.text, id=f"r:{i}",
                              metadata={"char_start": c.start, "section_path": c.section_path, "section": c.section,
                                        "doc_id": "r", "region": "侯马市", "year": 2023, "chunk_index": i})
                     for i, c in enumerate(Chunker().run(text))]

    def chunks(self, doc_id):
        return self.docs


class _Keywords:
    def __len__(self):
        return 100

    def idf(self, term):
        return 1.0


HOUMA = ReportRecord(doc_id="r", version="v", source="houma.txt", content_sha="s", region="侯马市", year=2023)


@pytest.fixture(scope="module")
def houma_summary():
    return SummaryAnswer(_Index("houma-2023.txt"), _Keywords())


def _ask(summary: SummaryAnswer, question: str):
    analysis = QueryAnalyzer([HOUMA]).run(question)
    assert asks_summary(analysis), question
    return summary.run(question, analysis, [HOUMA], "extractive")


def test_a_shortcomings_question_lists_the_parts_points_each_cited(houma_summary):
    result = _ask(houma_summary, "侯马市2023年法治政府建设存在哪些不足？")
    lines = result.answer.splitlines()
    assert lines[0] == "侯马市（2023年）报告「存在的不足」要点："
    for term in ("法治思维", "法治专业队伍", "执法规范化"):
        assert term in result.answer
    assert "意见建议" not in result.answer and "2024年,我市将" not in result.answer
    for citation in result.citations:  # every point is the cited passage's own text
        assert any(line.split(". ", 1)[1].rsplit("[", 1)[0] in citation.text for line in lines[1:]
                   if f"[{citation.n}]" in line)
    assert result.notes[-1].code == "section_summary"


def test_a_suggestions_and_a_plans_question_read_their_own_part(houma_summary):
    suggestions = _ask(houma_summary, "侯马市2023年报告提出了哪些意见建议？")
    assert "加强顶层设计" in suggestions.answer and "法治思维能力有待提高" not in suggestions.answer
    plans = _ask(houma_summary, "侯马市2023年度报告对下一年度法治政府建设作了哪些工作计划？")
    assert "强化法治队伍建设" in plans.answer and "「下一步工作安排」" in plans.answer


def test_a_body_topic_is_read_from_the_section_that_matches_it(houma_summary):
    result = _ask(houma_summary, "概括侯马市2023年在化解社会矛盾纠纷方面的工作和成效。")
    assert "(五)坚持多措并举,全面有效化解社会矛盾纠纷" in result.answer.splitlines()[0]
    assert "68件" in result.answer or "行政复议" in result.answer


class _TextIndex(_Index):
    """The chunks of a report text written in the test."""

    def __init__(self, text: str):
        self.docs = [Document(page_content=c.text, id=f"r:{i}",
                              metadata={"char_start": c.start, "section_path": c.section_path, "section": c.section,
                                        "doc_id": "r", "region": "侯马市", "year": 2023, "chunk_index": i})
                     for i, c in enumerate(Chunker().run(text))]


_LEADERS = ("侯马市2023年法治政府建设情况的报告\n一、主要举措和成效\n(一)加强党的领导\n"
            "深入学习贯彻习近平法治思想,市政府党组理论学习中心组专题学习法治思想学习纲要。"
            "主要领导认真履行推进法治政府建设第一责任人职责,主持召开市政府常务会议、全市法治政府建设工作会议等,"
            "专门研究、安排部署地方立法、行政执法、涉企文件清理等重点工作。"
            "常态化开展市政府常务会议会前学法,落实重大决策前专题学法,各级党政主要负责人年度述法工作实现全覆盖。\n"
            "(二)优化营商环境\n"
            "一是深化改革。全面推行证照联办,办理时限压缩一半以上,惠及各类市场主体。"
            "二是切实履行推进法治建设第一责任人职责。市委常委会专题听取法治政府建设情况汇报,组织召开市委全面依法治市委员会会议,"
            "专题部署法治政府建设相关工作。市政府常务会议多次研究法治政府建设相关议题,围绕问题困难和工作谋划全力抓重点、补短板、强弱项,"
            "推动工作落细落实。深化落实学法、考法、述法制度,组织主要负责同志开展“年初谈法”活动。"
            "常态化组织市政府领导干部法律知识闭卷考试,着力提升领导干部的法治素养。三是强化监督。开展执法检查。\n")


def test_few_points_are_shown_whole_and_a_plain_paragraph_goes_on_after_the_sentence_naming_the_topic():
    question = "侯马市2023年主要领导是怎样履行推进法治建设第一责任人职责的？"
    summary = SummaryAnswer(_TextIndex(_LEADERS), _Keywords())
    answer = _ask(summary, question).answer
    # The sentences after the one naming the duty go on with it (会前学法, 年度述法) ...
    assert "年度述法" in answer
    # ... and an item of few is shown to its end (年初谈法, 闭卷考试), not cut at 160 characters.
    assert "年初谈法" in answer and "闭卷考试" in answer and "开展执法检查" not in answer
    summary.max_block_chars = 0  # each point at most max_point_chars again: the long item is cut
    assert "闭卷考试" not in _ask(summary, question).answer


_DISPUTES = ("侯马市2023年法治政府建设情况的报告\n一、主要举措和成效\n(五)化解社会矛盾纠纷\n"
             + "".join(f"{n}是{topic}。扎实开展{topic}质量提升活动,通过学习教育、检视改进、巩固提升等措施,"
                       f"把{topic}与队伍建设有机结合起来,抓实抓好质量提升的成果转化,持续提升群众满意度和获得感。"
                       f"坚持问题导向和目标导向相统一,健全完善{topic}工作制度机制,加强业务培训和案例指导,"
                       f"推动{topic}工作规范化、标准化、便民化水平不断提升。"
                       f"全年共办理{topic}案件{count}件。"
                       for n, topic, count in (("一", "行政复议", 68), ("二", "行政应诉", 21), ("三", "人民调解", 943),
                                               ("四", "法律援助", 150), ("五", "法治宣传", 60)))
             + "\n")


def test_a_results_question_keeps_each_points_figures():
    summary = SummaryAnswer(_TextIndex(_DISPUTES), _Keywords())
    results = _ask(summary, "概括侯马市2023年在化解社会矛盾纠纷方面的工作和成效。").answer
    assert all(f"{n}件" in results for n in (68, 21, 943, 150, 60)), results
    # Asked what was done, not its results: the openings alone.
    work = _ask(summary, "概括侯马市2023年在化解社会矛盾纠纷方面的主要做法。").answer
    assert "68件" not in work and "一是行政复议" in work


def test_a_figure_question_is_not_a_summary():
    analyzer = QueryAnalyzer([HOUMA])
    assert not asks_summary(analyzer.run("侯马市2023年办理行政复议案件多少件？"))
    assert not asks_summary(analyzer.run("侯马市人民调解成功情况如何？"))


@pytest.fixture(scope="module")
def answerer(bundled_index):
    from rag.answer.answerer import Answerer
    from rag.retrieve.hybrid import HybridRetriever

    return Answerer(HybridRetriever(index=bundled_index, k=8))


def test_summary_on_the_real_index(answerer):
    """The real answerer over the bundled index: the shortcomings and the next year's plans."""
    result = answerer.run("太原市2024年报告指出法治政府建设还存在哪些不足？", mode="extractive")
    assert not result.refused and "放管服" in result.answer and "数字政府" in result.answer
    assert result.citations and all(c.region == "太原市" for c in result.citations)
    plans = answerer.run("绵阳市2025年法治政府建设的主要安排是什么？", mode="extractive")
    assert not plans.refused and "统筹协调" in plans.answer and plans.citations[0].year == 2024


def _passage(text: str, region: str = "太原市"):
    from rag.types import Passage

    return Passage(id="p1", text=text, score=1.0, doc_id="d", region=region, year=2024, title=None, section="",
                   source="")


def test_a_wrong_figure_in_the_question_is_corrected_not_refused():
    from rag.answer.answerer import extractive_answer

    records = [ReportRecord(doc_id="d", version="v", source="t.txt", content_sha="s", region="太原市", year=2024)]
    analysis = QueryAnalyzer(records).run("太原市2024年新收行政复议案件1500件，比上年增长了多少？")
    passages = [_passage("市政府行政复议局全年新收行政复议案件1274件,同比增长204%。")]
    result = extractive_answer(analysis.question, analysis, passages, _Keywords())
    assert not result.refused and "1274件" in result.answer and "204%" in result.answer
    assert result.answer.splitlines()[-1] == "注意：报告中没有问题所说的1500件，以上为报告所载数字。"
    assert result.notes[-1].code == "premise_differs"
    # The figure the question states, when the report states it, is simply answered.
    right = QueryAnalyzer(records).run("太原市2024年新收行政复议案件1274件，比上年增长了多少？")
    plain = extractive_answer(right.question, right, passages, _Keywords())
    assert not plain.refused and "注意" not in plain.answer and not plain.notes
    # A question about something the passages do not hold stays refused.
    other = QueryAnalyzer(records).run("太原市2024年无人机执法1500架次，覆盖多少个街道？")
    assert extractive_answer(other.question, other, passages, _Keywords()).refused


def test_every_chunk_is_tagged_with_its_part_at_chunking():
    from rag.text.parts import chunk_parts

    text = clean(load_document(REPORTS / "taiyuan-2024.txt")).text
    chunks = Chunker().run(text)
    parts = chunk_parts([(c.start, c.text, c.section_path) for c in chunks])
    assert len(parts) == len(chunks) and parts[0] == "preamble"
    tagged = {p: [c.text for c, q in zip(chunks, parts) if q == p] for p in set(parts)}
    assert any("放管服" in t for t in tagged["shortcomings"])
    assert any("持续紧抓" in t for t in tagged["plans"])
    assert all("下一步" not in t for t in tagged["measures"])


def test_parts_are_stored_and_rank_first_for_a_part_question(bundled_index):
    from rag.retrieve.hybrid import HybridRetriever

    stored = {d.metadata.get("part") for r in bundled_index.reports() for d in bundled_index.chunks(r.doc_id)}
    assert {"preamble", "measures", "shortcomings", "plans"} <= stored
    docs = HybridRetriever(index=bundled_index, k=4).invoke("石家庄市2024年法治政府建设还存在哪些问题和不足？")
    assert docs[0].metadata["part"] == "shortcomings" and "需要重视和改进" in docs[0].page_content


def test_a_change_the_report_does_not_give_is_said_so_with_what_it_states(answerer):
    no = answerer.run("太仓市2024年新收行政复议申请同比增长多少？", mode="extractive")
    assert no.refused and no.answer.startswith("报告中未提及该数字的变化") and "325件" in no.answer
    assert no.citations and no.notes[-1].code == "change_not_given"
    yes = answerer.run("太原市2024年新收行政复议案件同比增长多少？", mode="extractive")
    assert not yes.refused and "204%" in yes.answer


def test_a_which_ones_question_is_answered_by_sentences_naming_instances():
    from rag.text.lists import asked_kind

    assert asked_kind("侯马市法律援助中心主任王秀红获得了什么全国性荣誉？")[0] == "荣誉"
    assert asked_kind("绵阳市出台了哪些制度文件？") == ("制度文件", "《[^》]+》")
    assert asked_kind("2024年哪些城市废止了政府规章？") is None  # the word is not what is listed
    assert asked_kind("太仓和绵阳在为企业提供法律服务方面各有哪些数字？") is None
    records = [ReportRecord(doc_id="d", version="v", source="h.txt", content_sha="s", region="侯马市", year=2023)]
    analysis = QueryAnalyzer(records).run("侯马市2023年司法鉴定中心得到了什么荣誉？")
    assert "荣誉" not in analysis.topic and analysis.instance
    from rag.answer.extractive import ExtractiveAnswerer

    passages = [_passage("司法鉴定中心全年办理鉴定案件150件。", "侯马市"),
                _passage("侯马司法鉴定中心被评为“全国公共法律服务工作先进集体”。", "侯马市")]
    answer = ExtractiveAnswerer(_Keywords()).run(analysis, analysis.terms, passages)
    assert answer.lines == ["侯马司法鉴定中心被评为“全国公共法律服务工作先进集体”。[2]"]


def test_a_which_ones_answer_lists_every_sentence_naming_one_though_it_adds_no_new_word():
    from rag.answer.extractive import ExtractiveAnswerer

    records = [ReportRecord(doc_id="d", version="v", source="h.txt", content_sha="s", region="侯马市", year=2023)]
    analysis = QueryAnalyzer(records).run("侯马市2023年报告中提到了哪些法治宣传教育基地？")
    passages = [_passage("继彭真故居省级法治宣传教育基地之后,", "侯马市"),
                _passage("我市又把侯马市税务局打造成临汾市级法治宣传教育基地,组织宣传周活动。", "侯马市"),
                _passage("开展法治宣传教育活动60余次。", "侯马市")]
    answer = ExtractiveAnswerer(_Keywords()).run(analysis, analysis.terms, passages)
    assert [line[-3:] for line in answer.lines] == ["[1]", "[2]"]  # both bases; no base in [3]
    # A question naming only the category ("哪些品牌"): the category is its topic, not nothing.
    brands = QueryAnalyzer(records).run("侯马市2023年报告中提到了哪些品牌？")
    assert brands.instance and brands.terms == ["品牌"]
    answer = ExtractiveAnswerer(_Keywords()).run(brands, brands.terms, [
        _passage("持续打造“关爱明天·普法先行”专题普法品牌。", "侯马市"),
        _passage("开展“法援惠民生”品牌建设系列活动。", "侯马市")])
    assert len(answer.lines) == 2 and not answer.refused


def test_a_plans_section_stays_plans_under_a_sub_heading_naming_another_part():
    parts = ReportParts.default()
    top, sub = "六、2025年法治政府建设主要工作安排", "1.督促落实法治建设第一责任人职责。"
    tags = parts.tag([Paragraph(top, (top,), True), Paragraph(sub, (top, sub), True),
                      Paragraph(sub + "聚焦领导干部关键少数。", (top, sub)),
                      Paragraph("（一）压实第一责任", ("一、主要举措", "（一）压实第一责任"), True),
                      Paragraph("市委常委会专题研究法治工作。", ("一、主要举措", "（一）压实第一责任"))])
    assert tags[2] == "plans"  # under the plans heading, whatever the sub-heading names
    assert tags[4] == "leaders"  # in the body, the sub-heading names the part


def test_the_signature_block_is_no_point_of_a_part():
    parts = ReportParts.default()
    for line in ("太倉市人民政府", "中共侯马市委 侯马市人民政府", "2025年 月 日", "2024年1月19日", "特此报告。"):
        assert parts.is_closing(line), line
    for line in ("市政府办公室印发了实施方案。", "太原市人民政府召开常务会议研究法治工作", "2024年全市新收案件12件。"):
        assert not parts.is_closing(line), line
    summary = SummaryAnswer(_Index("taicang-2024.txt"), _Keywords())
    record = ReportRecord(doc_id="r", version="v", source="taicang.txt", content_sha="s", region="太仓市", year=2024)
    question = "太仓市2025年法治政府建设的主要工作安排有哪些？"
    analysis = QueryAnalyzer([record]).run(question)
    result = summary.run(question, analysis, [record], "extractive")
    assert "督促落實法治建設第一責任人職責" in result.answer  # the plan's first item, though it names 第一责任人
    assert "太倉市人民政府" not in result.answer and "月 日" not in result.answer


@pytest.mark.parametrize("question,part", [
    ("What shortcomings did Mianyang's 2024 report identify?", "shortcomings"),
    ("What problems does the report say still need attention?", "shortcomings"),
    ("What does Taiyuan plan to do next year?", "plans"),
    ("What recommendations does Houma's 2023 report make?", "suggestions"),
    ("Which reports mention the Eighth Five-Year law popularisation plan?", None),  # a plan is not the plans
])
def test_english_questions_name_the_parts(question, part):
    assert ReportParts.default().asked(question) == part


# --- a count of another measure is not the answer (units.toml) ---------------------------------

def _analysis(question: str):
    return QueryAnalyzer([ReportRecord(doc_id="t", version="v", source="t.txt", content_sha="s",
                                       region="绵阳市", year=2024)]).run(question)


def _said(text: str):
    from rag.types import AnswerResult

    return AnswerResult(question="q", answer=text, refused=False, citations=[], contexts=[], mode="extractive")


def test_the_asked_measure_word_and_the_units_that_answer_it():
    from rag.answer.refusals import asked_unit, unit_not_given

    assert asked_unit(_analysis("绵阳市2024年组织执法人员培训多少人次？")) == "人次"
    assert asked_unit(_analysis("绵阳市2024年有几家企业？")) == "家"
    assert asked_unit(_analysis("绵阳市2024年办理了多少件？又开展了多少次？")) is None  # two counts
    assert asked_unit(_analysis("绵阳市2024年新收行政复议案件多少？")) is None  # no measure word
    persons = "市县两级20余支事业单位执法队伍行政执法职能回归机关、300余名执法人员顺利转隶安置。[1]"
    assert unit_not_given(_analysis("绵阳市2024年组织执法人员培训多少人次？"), _said(persons)) == "人次"
    # People answer 多少人 (persons and person-times alike); 件 answers 多少场官司 and 多少起.
    assert unit_not_given(_analysis("绵阳市2024年转隶安置了多少人？"), _said(persons)) is None
    assert unit_not_given(_analysis("绵阳市政府2024年打官司赢了多少场？"), _said("胜诉206件。[1]")) is None
    assert unit_not_given(_analysis("绵阳市2024年查处了多少起案件？"), _said("查办各类案件6760件。[1]")) is None
    assert unit_not_given(_analysis("绵阳市2024年召开了多少次常务会议？"), _said("审议文件20件。[1]")) == "次"
    # No figure in the sentences (a list, words), a percentage or money: not this check's to refuse.
    assert unit_not_given(_analysis("绵阳市2024年组织执法人员培训多少人次？"), _said("开展了执法培训。[1]")) is None
    assert unit_not_given(_analysis("绵阳市2024年有几家企业上榜？"), _said("完成率达98%。[1]")) is None


def test_a_count_in_another_measure_is_refused_with_what_the_report_states(answerer):
    """The real answerer over the bundled index: 人次 asked, only 支 and 名 stated."""
    result = answerer.run("绵阳市2024年组织执法人员培训多少人次？", mode="extractive")
    assert result.refused and result.answer.startswith("报告中未提及以“人次”计的该项数字")
    assert any(n.code == "unit_not_given" for n in result.notes)
    assert "人次" not in result.answer.split("报告所载为：", 1)[1]  # what is stated is shown, as stated
    # The same sentences answer a question in their own measure.
    staffed = answerer.run("绵阳市2024年有多少名执法人员转隶安置？", mode="extractive")
    assert not staffed.refused and "300余名" in staffed.answer


# --- a figure of another stage is not the answer (stages.toml) ---------------------------------

def test_the_asked_stage_and_the_stages_a_sentence_names():
    from rag.answer.refusals import asked_stage, stage_not_given

    assert asked_stage(_analysis("绵阳市2024年新收的行政复议案件审结了多少件？")) == "settled"
    assert asked_stage(_analysis("绵阳市2024年受理了多少件申请？")) == "received"
    assert asked_stage(_analysis("绵阳市2024年新收多少件？办结多少件？")) is None  # two asks
    assert asked_stage(_analysis("绵阳市2024年办理了多少件？")) is None  # 办理: either stage
    received = "受理市长信箱留言13367件、人民网留言3360件。[1]"
    assert stage_not_given(_analysis("绵阳市2024年市长信箱留言办结了多少件？"), _said(received)) == ("办结", "受理")
    # The sentence names the stage asked (too): it answers; a sentence naming no stage is not refused.
    closed = "其中受理特殊群体法律援助案件60件,已全部完成结案。[1]"
    assert stage_not_given(_analysis("绵阳市2024年法律援助案件结案多少件？"), _said(closed)) is None
    assert stage_not_given(_analysis("绵阳市2024年行政复议案件办结了多少件？"), _said("办理行政复议案件68件。[1]")) is None
    assert stage_not_given(_analysis("绵阳市2024年收到多少件申请？"), _said("依法办结272件。[1]")) == ("收到", "办结")


def test_a_figure_of_another_stage_is_refused_with_what_the_report_states(answerer):
    """The real answerer over the bundled index: 办结 asked, only 受理 stated."""
    result = answerer.run("太原市2024年人民网留言办结了多少件？", mode="extractive")
    assert result.refused and result.answer.startswith("报告中未提及办结的数字（只给出受理的数字）")
    assert any(n.code == "stage_not_given" for n in result.notes) and "3360" in result.answer
    received = answerer.run("太原市2024年受理人民网留言多少件？", mode="extractive")
    assert not received.refused and "3360件" in received.answer


# --- two or more figures asked in separate clauses (rag.answer.asks) ---------------------------

def test_a_question_is_split_into_its_figure_asks():
    from rag.retrieve.query import split_asks

    assert split_asks("侯马市2023年公布重大决策事项多少项？对多少件文件草案进行了合法性审核？") == [
        "侯马市2023年公布重大决策事项多少项？", "对多少件文件草案进行了合法性审核？"]
    assert split_asks("绵阳市2024年新建了多少个法治文化阵地，办好了多少件法律援助案件？") == [
        "绵阳市2024年新建了多少个法治文化阵地，", "办好了多少件法律援助案件？"]
    # Context before the only ask goes with it; "新收、办结各多少件" is one ask.
    assert split_asks("跟热线合作以后，投诉少了多少？") == ["跟热线合作以后，投诉少了多少？"]
    assert split_asks("新收、办结各多少件？") == ["新收、办结各多少件？"]
    assert split_asks("How many cases were received, and how many were closed?") == [
        "How many cases were received, ", "and how many were closed?"]
    analysis = _analysis("绵阳市2024年新建了多少个法治文化阵地，办好了多少件法律援助案件？")
    assert [a.text for a in analysis.asks] == ["绵阳市2024年新建了多少个法治文化阵地，", "办好了多少件法律援助案件？"]
    assert "法律援助" in analysis.asks[1].terms and "法律援助" not in analysis.asks[0].terms
    # A clause of one term says too little alone: it joins the ask before it (then there is one).
    assert _analysis("绵阳市2024年执法队伍撤销了多少支、留下多少？").asks == []
    assert _analysis("绵阳市2024年新收行政复议案件多少件？").asks == []


def test_each_ask_finds_its_own_sentence_or_is_said_to_be_not_mentioned():
    from rag.answer.asks import EachAsk

    passages = [_passage("新建法治文化阵地64个,建设“法律之家”238个。强化乡村公共法律服务平台建设。", region="绵阳市"),
                _passage("办好法律援助案件5250件,避免和挽回群众经济损失5276万元。", region="绵阳市")]
    analysis = _analysis("绵阳市2024年新建了多少个法治文化阵地，办好了多少件法律援助案件？")
    result = EachAsk(_Keywords()).run(analysis.question, analysis, passages)
    assert not result.refused and "64个" in result.answer and "5250件" in result.answer
    assert {c.n for c in result.citations} == {1, 2} and result.notes[0].code == "asks_answered"
    # The second ask is not in the passages: the first is answered, the second said not mentioned.
    part = _analysis("绵阳市2024年新建了多少个法治文化阵地？全市有多少名专职法律援助律师？")
    partly = EachAsk(_Keywords()).run(part.question, part, passages[:1])
    assert "64个" in partly.answer and partly.answer.splitlines()[-1] == "报告中未提及：全市有多少名专职法律援助律师"
    assert any(n.code == "ask_not_mentioned" for n in partly.notes) and not partly.refused
    # An ask in another unit than its sentence's is not answered: 名 asked, 件 stated.
    unit = _analysis("绵阳市2024年新建了多少个法治文化阵地？法律援助案件有多少名律师办理？")
    said = EachAsk(_Keywords()).run(unit.question, unit, passages)
    assert said.answer.splitlines()[-1] == "报告中未提及：法律援助案件有多少名律师办理"
    # A rate asked beside a count is split too; the answerer asks it ask by ask only when the whole
    # question's rate cannot be computed from its counts (test_two_asks_on_the_real_index).
    assert len(_analysis("绵阳市2024年新建了多少个法治文化阵地？法律援助案件的办结率是多少？").asks) == 2
    # Nothing answered at all: no answer from this path (the whole question's refusal stands).
    none = _analysis("绵阳市2024年有多少名律师？有多少个公证处？")
    assert EachAsk(_Keywords()).run(none.question, none, passages) is None
    single = _analysis("绵阳市2024年新建了多少个法治文化阵地？")
    assert EachAsk(_Keywords()).run(single.question, single, passages) is None


def test_a_rate_the_report_does_not_state_is_not_answered_with_a_count():
    from rag.answer.refusals import rate_not_given

    counts = "受理市长信箱留言13367件、人民网留言3360件。[1]"
    assert rate_not_given(_analysis("绵阳市2024年市长信箱留言的办结率是多少？"), _said(counts))
    assert not rate_not_given(_analysis("绵阳市2024年调解成功率是多少？"), _said("调解成功率达98%。[1]"))
    assert not rate_not_given(_analysis("绵阳市2024年市长信箱留言多少件？"), _said(counts))  # no rate asked
    # 率先 is no rate; a change asked (增长率) is the change check's.
    assert not rate_not_given(_analysis("绵阳市2024年在全省率先办理了多少件？"), _said(counts))
    assert not rate_not_given(_analysis("绵阳市2024年留言增长率是多少？"), _said(counts))


def test_two_asks_on_the_real_index(answerer):
    """The real answerer over the bundled index: two figures from two sentences, and one not given."""
    both = answerer.run("侯马市2023年市政府网站公布的本年度重大决策事项有多少项？对多少件市政府拟发布的文件草案进行了合法性审核？",
                        mode="extractive")
    assert not both.refused and "16项" in both.answer and "46件" in both.answer
    assert all(c.region == "侯马市" for c in both.citations)
    partly = answerer.run("侯马市2023年共办理各类法律援助案件多少件？全市有多少名专职法律援助律师？", mode="extractive")
    assert not partly.refused and "150件" in partly.answer
    assert partly.answer.splitlines()[-1] == "报告中未提及：全市有多少名专职法律援助律师"
    rate = answerer.run("太原市2024年市长信箱留言的办结率是多少？", mode="extractive")
    assert rate.refused and rate.answer.startswith("报告中未提及该比率") and "13367件" in rate.answer
    # A rate asked beside a count is one ask of two: the count is given, the rate said not given.
    beside = answerer.run("太原市2024年受理人民网留言多少件？市长信箱留言的办结率是多少？", mode="extractive")
    assert not beside.refused and "人民网留言3360件" in beside.answer
    assert beside.answer.splitlines()[-1] == "报告中未提及：市长信箱留言的办结率是多少"
    computed = answerer.run("太原市2024年市政府收已办结的行政诉讼案件多少件？胜诉率是多少？", mode="extractive")
    assert computed.answer.splitlines()[-1] == "计算：206件[1] ÷ 235件[1] = 87.7%"  # computed, not 未提及
    stated = answerer.run("绵阳市2024年受理政府信息公开申请多少件？办结率是多少？", mode="extractive")
    assert not stated.refused and "124件" in stated.answer and "办结率100%" in stated.answer


def test_the_count_after_which_is_part_of_the_question_word():
    """"是哪三份文书": a sentence lists the three, it does not say 三份; 三书同达 stays a term."""
    from rag.index.keywords import question_terms

    terms = question_terms("太仓市2024年推行的“三书同达”工作机制是哪三份文书？")
    assert "三份" not in terms and {"三书", "同达", "文书"} <= set(terms)
    assert "两个" not in question_terms("绵阳市推进的是哪两个国家试点？")
    assert "三个" in question_terms("建立了三个中心")  # a count outside a question word stays


# --- "哪个…最多/最少": a superlative asks for figures without 多少 -----------------------------

def test_a_superlative_with_a_which_word_asks_for_a_figure():
    from rag.text.arithmetic import asked_superlative

    assert asked_superlative("哪个城市办理的政协提案最少") == ("least", "最少")
    assert asked_superlative("谁最多") == ("most", "最多")
    assert asked_superlative("which city handled the fewest cases")[0] == "least"
    # Names and manners, not questions: 最多跑一次, 最大限度, 最高人民法院; and no which-word, no ranking.
    assert asked_superlative("推行最多跑一次改革的是哪个城市")[0] is None
    assert asked_superlative("哪些举措最大限度便民")[0] is None
    assert asked_superlative("哪个城市与最高人民法院合作")[0] is None
    assert asked_superlative("绵阳市政务服务事项最多跑一次比例")[0] is None

    least = _analysis("哪个城市2024年办理的政协提案最少？")
    assert least.superlative == "least" and least.asks_figure and least.scope == "all"
    assert "最" not in least.terms and "最少" not in least.terms
    # A ranking asks for the figures too, though it says no 多少 (人大代表建议 is not 件数).
    ranked = _analysis("把绵阳2024年办理的人大代表建议按从少到多排列")
    assert ranked.operation == "rank" and ranked.asks_figure
    assert not _analysis("绵阳市2024年有哪些举措？").asks_figure


def test_which_of_two_places_is_more_asks_for_their_figures():
    records = [ReportRecord(doc_id=r, version="v", source=f"{r}.txt", content_sha="s", region=region, year=2024)
               for r, region in (("ty", "太原市"), ("my", "绵阳市"))]
    analyzer = QueryAnalyzer(records)
    for question in ("太原和绵阳，哪个市2024年新收的行政复议案件更多一些？", "太原和绵阳的审计项目哪个多？",
                     "太原、绵阳谁更多？", "Which had more new cases in 2024, Taiyuan or Mianyang?"):
        assert analyzer.run(question).asks_figure, question
    assert "更大" not in analyzer.run("太原和绵阳的审批时限压缩幅度哪个更大？").terms  # the comparison, no term
    assert "一些" not in analyzer.run("太原和绵阳哪个市新收的案件更多一些？").terms
    # One place, or no amount compared: no figure asked.
    assert not analyzer.run("太原市哪个部门更重视法治宣传？").asks_figure
    assert not analyzer.run("太原和绵阳在营商环境方面各有哪些做法？").asks_figure


def _row(region: str, value: float, unit: str = "件", n: int = 1):
    from rag.answer.compare import TableRow

    return TableRow(region=region, year=2024, doc_id=region, found=True, figure=f"{value:g}{unit}", value=value,
                    unit=unit, citation=n)


def test_the_verdict_names_the_largest_or_smallest_with_its_cited_figure():
    from rag.answer.compare import ComparisonTable, conclude

    rows = [_row("太原市", 575, n=1), _row("石家庄市", 558, n=2), _row("绵阳市", 329, n=3)]
    least = conclude(ComparisonTable(metric="政协提案", rows=rows, superlative="least"))
    assert least.startswith("最少的是绵阳市（2024年）（329件[3]）")
    most = conclude(ComparisonTable(metric="政协提案", rows=rows[:2], superlative="most"), "en")
    assert most.startswith("Most: 太原市（2024年） (575件[1])")
    tied = conclude(ComparisonTable(metric="出庭应诉率", rows=[_row("石家庄市", 100, "%", 1), _row("绵阳市", 100, "%", 2)],
                                    superlative="most"))
    assert tied.startswith("最高的是石家庄市（2024年）、绵阳市（2024年）（100%[1]、100%[2]）")
    # Mixed units, or one figure alone, rank nothing: no verdict.
    mixed = conclude(ComparisonTable(metric="案卷", rows=[_row("太原市", 420, "本"), _row("侯马市", 127)],
                                     superlative="most"))
    assert "最多的是" not in mixed and "单位不同" in mixed
    assert "最少的是" not in conclude(ComparisonTable(metric="x", rows=rows[:1], superlative="least"))
    assert "最少的是" not in conclude(ComparisonTable(metric="x", rows=rows))


def test_which_city_is_least_on_the_real_index(answerer):
    """No 多少 in the question: the comparison table over every 2024 report, and the verdict."""
    result = answerer.run("哪个城市2024年办理的政协提案最少？", mode="extractive")
    assert result.table and result.table["conclusion"].startswith("最少的是绵阳市（2024年）（329件[")
    rows = {r["region"]: r for r in result.table["rows"]}
    # 太原 states provincial (35) and municipal (575) counts: the larger, the city's own, is taken.
    assert rows["太原市"]["value"] == 575 and rows["石家庄市"]["value"] == 558
    english = answerer.run("Which city handled the fewest administrative reconsideration cases?", mode="extractive")
    assert "Fewest: 侯马市（2023年） (68件[" in english.answer
    trap = answerer.run("在所有报告中，2024年办理行政赔偿案件最多的是哪个城市？", mode="extractive")
    assert trap.refused
    # 幅度 asks for a percent (88%, 72%), as 率 does.
    extent = answerer.run("绵阳市和太仓市2024年报告的审批时限压缩（提速）幅度哪个更大？", mode="extractive")
    assert extent.table and extent.table["conclusion"].startswith("绵阳市（2024年）高于太仓市（2024年）：88%[")


# --- "侯马（2023年）、太仓、太原": a bracketed year is that place's -------------------------------

def test_a_year_in_brackets_after_one_place_is_that_places_alone():
    from rag.answer.table_answer import reports_in_scope

    records = [ReportRecord(doc_id=f"{r}{y}", version="v", source=f"{r}{y}.txt", content_sha="s", region=region, year=y)
               for r, region, y in (("hm", "侯马市", 2023), ("hm", "侯马市", 2024), ("ty", "太原市", 2024),
                                    ("tc", "太仓市", 2024))]
    analyzer = QueryAnalyzer(records)
    a = analyzer.run("侯马（2023年）、太仓、太原三地的行政复议案件数量从多到少排序。")
    assert a.regions == ["侯马市", "太仓市", "太原市"] and not a.missing_regions and a.refusal_reason is None
    assert a.place_years == {"侯马市": [2023]} and a.filter_years == []
    assert [(r.region, r.year) for r in reports_in_scope(records, a, None, None)] == [
        ("侯马市", 2023), ("太仓市", 2024), ("太原市", 2024)]
    # A year for every place, or one for all besides: the years filter every place as before.
    every = analyzer.run("侯马（2023年）、太原（2024年）的行政复议案件哪个多？")
    assert every.place_years == {} and every.filter_years == [2023, 2024]
    besides = analyzer.run("2024年太原、侯马（2023年）的行政复议案件哪个多？")
    assert besides.place_years == {} and sorted(besides.filter_years) == [2023, 2024]
    # A place without a report of its bracketed year is missing, the others stay.
    gone = analyzer.run("太原（2022年）、太仓的行政复议案件哪个多？")
    assert gone.regions == ["太仓市"] and gone.missing_regions == ["太原市"] and gone.missing_years == [2022]


def test_words_about_the_report_or_its_place_are_no_terms():
    from rag.index.keywords import question_terms

    # 本地 / 当地 / 当年 name the report's own place and year; 报告中 is "in the report".
    assert question_terms("哪些报告提到本地获得了省级法治政府建设示范命名") == [
        "获得", "省级", "法治", "政府", "建设", "示范", "命名"]
    assert "当年" not in question_terms("当年新收行政复议案件数")
    assert "中新" not in question_terms("2024年报告中新收行政复议案件的上年基数")
