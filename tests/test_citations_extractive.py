"""Citation markers and extractive answers, on hand-made passages (no model, no Chroma)."""

from __future__ import annotations

import math

import pytest

from rag.answer.citations import Citation, number_passages, passage_label, resolve_citations
from rag.answer.extractive import LIGHT_WEIGHT, ExtractiveAnswerer, candidate_sentences
from rag.index.store import ReportRecord
from rag.index.keywords import KeywordIndex, question_terms
from rag.retrieve.query import QueryAnalyzer
from rag.retrieve.hybrid import Passage

REPORTS = [
    ("taiyuan-2024", "太原市", 2024),
    ("houma-2023", "侯马市", 2023),
    ("taicang-2024", "太仓市", 2024),
    ("mianyang-2024", "绵阳市", 2024),
    ("shijiazhuang-2024", "石家庄市", 2024),
]
STEM = {region: stem for stem, region, _ in REPORTS}


def passage(n: int, region: str, year: int, text: str, section: str = "", page: int | None = None) -> Passage:
    stem = STEM[region]
    return Passage(id=f"{stem}:v1:{n:05d}", text=text, score=1.0 - n / 100, doc_id=stem, region=region,
                   year=year, title=f"{region}{year}年法治政府建设年度报告", section=section,
                   source=f"data/reports/{stem}.txt", page=page, chunk_index=n)


TY_REVIEW = passage(1, "太原市", 2024, "全市深入推进法治政府建设。市政府行政复议局全年新收行政复议案件1274件，同比增长204%。"
                    "行政复议工作取得新成效。", section="（六）依法有效化解社会矛盾纠纷", page=12)
TY_COURT = passage(2, "太原市", 2024, "全市行政机关负责人出庭应诉率达到100%。行政诉讼案件败诉率明显下降。",
                   section="（五）行政诉讼", page=13)
MY_REVIEW = passage(3, "绵阳市", 2024, "全市新收行政复议案件860件，办结行政复议案件812件。持续加强普法宣传工作。",
                    section="四、化解矛盾纠纷")
TC_LAW = passage(4, "太仓市", 2024, "深入推进普法宣传，开展普法活动多场次。建设法治文化阵地，营造良好氛围。",
                 section="三、普法")
ALL = [TY_REVIEW, TY_COURT, MY_REVIEW, TC_LAW]

FIGURE = "市政府行政复议局全年新收行政复议案件1274件，同比增长204%。"


@pytest.fixture(scope="module")
def analyzer() -> QueryAnalyzer:
    return QueryAnalyzer([ReportRecord(doc_id=stem, version="v1", source=f"data/reports/{stem}.txt",
                                       content_sha=f"sha-{stem}", region=region, year=year)
                          for stem, region, year in REPORTS])


@pytest.fixture(scope="module")
def answerer() -> ExtractiveAnswerer:
    keywords = KeywordIndex([p.id for p in ALL], [p.text for p in ALL], [{"region": p.region} for p in ALL])
    return ExtractiveAnswerer(keywords)


def ask(analyzer, answerer, question, passages):
    analysis = analyzer.run(question)
    return answerer.run(analysis, question_terms(analysis.topic), passages)


# --- citations ---------------------------------------------------------------------------


PASSAGES = [passage(i, region, 2024, f"第{i}段文字", section=f"S{i}", page=i)
            for i, region in enumerate(["太原市", "绵阳市", "太仓市"], start=1)]


def test_renumbered_by_first_use():
    text, citations = resolve_citations("甲[3]。乙[1]。丙[3]。", PASSAGES)
    assert text == "甲[1]。乙[2]。丙[1]。"
    assert [(c.n, c.chunk_id) for c in citations] == [(1, PASSAGES[2].id), (2, PASSAGES[0].id)]


@pytest.mark.parametrize("answer, text, cited", [
    ("甲[1,2]", "甲[1][2]", [1, 2]),
    ("甲[1，3]", "甲[1][2]", [1, 3]),
    ("甲[2、1]", "甲[1][2]", [2, 1]),
    ("甲[ 2 , 3 ]", "甲[1][2]", [2, 3]),
    ("甲[1][2]", "甲[1][2]", [1, 2]),
    ("甲【2】", "甲[1]", [2]),
    ("甲[2-3]", "甲[1][2]", [2, 3]),
    ("甲[1–3]", "甲[1][2][3]", [1, 2, 3]),
    ("甲[2,2]", "甲[1]", [2]),
])
def test_marker_forms(answer, text, cited):
    got_text, citations = resolve_citations(answer, PASSAGES)
    assert got_text == text
    assert [c.chunk_id for c in citations] == [PASSAGES[i - 1].id for i in cited]
    assert [c.n for c in citations] == list(range(1, len(cited) + 1))


def test_markers_beyond_passages_are_dropped():
    text, citations = resolve_citations("甲[1]。乙[9]。丙[0]。丁[2,7]。", PASSAGES)
    assert text == "甲[1]。乙。丙。丁[2]。"
    assert [c.chunk_id for c in citations] == [PASSAGES[0].id, PASSAGES[1].id]


def test_no_markers_no_citations():
    assert resolve_citations("没有引用。", PASSAGES) == ("没有引用。", [])
    assert resolve_citations("甲[1]", []) == ("甲", [])


def test_uncited_passages_are_not_listed():
    _, citations = resolve_citations("只引第二段[2]。", PASSAGES)
    assert len(citations) == 1
    assert citations[0].doc_id == "mianyang-2024"


def test_citation_fields():
    _, citations = resolve_citations("甲[2]", PASSAGES)
    assert citations[0].to_dict() == {
        "n": 1, "doc_id": "mianyang-2024", "region": "绵阳市", "year": 2024,
        "title": "绵阳市2024年法治政府建设年度报告", "section": "S2", "text": "第2段文字",
        "source": "data/reports/mianyang-2024.txt", "page": 2, "chunk_id": "mianyang-2024:v1:00002",
    }
    assert isinstance(citations[0], Citation)


def test_passage_label_and_numbering():
    assert passage_label(TY_REVIEW) == "太原市 2024年 《太原市2024年法治政府建设年度报告》 （六）依法有效化解社会矛盾纠纷 第12页"
    bare = Passage(id="x", text="t", score=0.0, doc_id="x", region=None, year=None, title=None, section="", source="")
    assert passage_label(bare) == "地区未知"
    numbered = number_passages([bare, TY_REVIEW])
    # The model sees place and year only (titles and sections cost prompt time).
    assert numbered == f"[1] 来源：地区未知\n<passage>t</passage>\n[2] 来源：太原市 2024年\n<passage>{TY_REVIEW.text}</passage>"


# --- sentences ---------------------------------------------------------------------------


def test_candidate_sentences():
    text = "第一句话在这里。第二句话！短。\n第三句话没有标点\n问句是这样吗？分号前面的话；English end here."
    assert candidate_sentences(text) == ["第一句话在这里。", "第二句话！", "第三句话没有标点", "问句是这样吗？",
                                     "分号前面的话；", "English end here."]


def test_split_sentences_drops_short_and_empty():
    assert candidate_sentences("好。对。\n\n  \n") == []
    assert candidate_sentences("") == []


# --- extractive answers ------------------------------------------------------------------


def test_figure_sentence_comes_first(analyzer, answerer):
    answer = ask(analyzer, answerer, "太原市2024年新收行政复议案件多少件？", [TY_COURT, TY_REVIEW])
    assert answer.refused is False
    assert answer.lines[0] == FIGURE + "[2]"
    assert answer.sentences[0].passage == 2
    assert answer.sentences[0].region == "太原市"
    assert answer.support == pytest.approx(1.0)


def test_answer_cites_through_resolve_citations(analyzer, answerer):
    passages = [TY_COURT, TY_REVIEW]
    answer = ask(analyzer, answerer, "太原市2024年新收行政复议案件多少件？", passages)
    text, citations = resolve_citations("\n".join(answer.lines), passages)
    assert text.splitlines()[0] == FIGURE + "[1]"
    assert citations[0].chunk_id == TY_REVIEW.id
    assert citations[0].section == "（六）依法有效化解社会矛盾纠纷"


def test_growth_question_picks_the_figure(analyzer, answerer):
    answer = ask(analyzer, answerer, "太原市行政复议案件增长了多少？", [TY_REVIEW, TY_COURT])
    assert answer.lines == [FIGURE + "[1]"]


def test_figure_question_refused_without_a_number(analyzer, answerer):
    # 多场次 is no figure: the only matching sentence cannot answer "多少场".
    answer = ask(analyzer, answerer, "太仓市开展普法活动多少场？", [TC_LAW])
    assert answer.refused is True
    assert answer.lines == []
    assert answer.sentences == []
    assert answer.support == 0.0


def test_question_without_figure_may_answer_without_number(analyzer, answerer):
    answer = ask(analyzer, answerer, "太原市行政复议工作成效如何", [TY_REVIEW, TY_COURT])
    assert answer.refused is False
    assert answer.lines == ["行政复议工作取得新成效。[1]"]


def test_number_in_question_must_be_in_sentence(analyzer, answerer):
    yes = ask(analyzer, answerer, "太原市出庭应诉率达到100%了吗？", [TY_REVIEW, TY_COURT])
    assert yes.refused is False
    assert yes.lines == ["全市行政机关负责人出庭应诉率达到100%。[2]"]
    # A threshold asked about need not be in the sentence: the figure there answers it (100% >= 90%;
    # the check itself is computed, tests/test_arithmetic.py) ...
    threshold = ask(analyzer, answerer, "太原市出庭应诉率达到90%了吗？", [TY_REVIEW, TY_COURT])
    assert threshold.lines == ["全市行政机关负责人出庭应诉率达到100%。[2]"]
    # ... but a figure the question states as a fact must be there.
    no = ask(analyzer, answerer, "太原市90%的负责人出庭应诉了吗？", [TY_REVIEW, TY_COURT])
    assert no.refused is True
    assert no.lines == []


def test_several_places_one_line_each(analyzer, answerer):
    answer = ask(analyzer, answerer, "太原和绵阳2024年新收行政复议案件各多少？", [TY_REVIEW, TY_COURT, MY_REVIEW])
    assert answer.refused is False
    assert answer.lines == [
        f"太原市（2024年）：{FIGURE}[1]",
        "绵阳市（2024年）：全市新收行政复议案件860件，办结行政复议案件812件。[3]",
    ]
    assert [s.region for s in answer.sentences] == ["太原市", "绵阳市"]


def test_all_scope_leaves_out_places_without_support(analyzer, answerer):
    answer = ask(analyzer, answerer, "哪些城市新收行政复议案件", [TY_REVIEW, MY_REVIEW, TC_LAW])
    assert answer.refused is False
    assert [line.split("：")[0] for line in answer.lines] == ["太原市（2024年）", "绵阳市（2024年）"]
    assert answer.lines[1].endswith("[2]")


def test_terms_found_nowhere_refuse(analyzer, answerer):
    answer = ask(analyzer, answerer, "太原市无人机巡查覆盖率是多少？", [TY_REVIEW, TY_COURT])
    assert answer.refused is True
    assert answer.lines == []


def test_no_passages_refuse(analyzer, answerer):
    answer = ask(analyzer, answerer, "太原市2024年新收行政复议案件多少件？", [])
    assert answer.refused is True
    assert answer.support == 0.0


def test_weights(answerer):
    weights = answerer.weights(["新收", "完成", "火星", "新收"])
    assert list(weights) == ["新收", "完成", "火星"]
    assert weights["新收"] == pytest.approx(answerer.keywords.idf("新收"))
    unseen = math.log(1 + (4 + 0.5) / 0.5)
    assert weights["火星"] == pytest.approx(unseen)
    assert weights["完成"] == pytest.approx(unseen * LIGHT_WEIGHT)  # light verb, unknown to the corpus
    assert weights["火星"] > weights["新收"]


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.01, 2])
def test_min_coverage_out_of_range(answerer, bad):
    with pytest.raises(ValueError, match="min_coverage"):
        ExtractiveAnswerer(answerer.keywords, min_coverage=bad)


def test_min_coverage_bounds_accepted(answerer):
    assert ExtractiveAnswerer(answerer.keywords, min_coverage=1.0).min_coverage == 1.0
    assert ExtractiveAnswerer(answerer.keywords, min_coverage=0.01).min_coverage == 0.01


def test_higher_threshold_refuses_partial_cover(analyzer, answerer):
    # 法律援助 is not in the passage: the best sentence covers only part of the weight.
    question = "太原市新收行政复议案件和法律援助案件多少件？"
    lenient = ExtractiveAnswerer(answerer.keywords, min_coverage=0.1)
    strict = ExtractiveAnswerer(answerer.keywords, min_coverage=1.0)
    analysis = analyzer.run(question)
    terms = question_terms(analysis.topic)
    assert "法律援助" in terms
    assert lenient.run(analysis, terms, [TY_REVIEW]).refused is False
    assert strict.run(analysis, terms, [TY_REVIEW]).refused is True
