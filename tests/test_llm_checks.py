"""Each check an LLM answer must pass (rag.answer.llm_checks), and the whole chain of them
(LLMAnswer.checked) on hand-written model output: no model, no index."""

from __future__ import annotations

from rag.answer.llm_answer import LLMAnswer
from rag.answer import llm_checks
from rag.retrieve.query import QueryAnalysis
from rag.types import AnswerResult, Citation, Passage

TY = "市政府行政复议局全年新收行政复议案件1274件,同比增长204%。"
MY = "全市新收行政复议案件1472件。"


def _passage(pid: str, region: str, text: str) -> Passage:
    return Passage(id=pid, text=text, score=1.0, doc_id=pid, region=region, year=2024, title=None, section="", source="")


def _citation(n: int, p: Passage) -> Citation:
    return Citation(n=n, doc_id=p.doc_id, region=p.region, year=p.year, title=None, section="", text=p.text,
                    source="", chunk_id=p.id)


def _analysis(question: str, *, scope="one", asks_figure=True, terms=("新收", "行政复议", "案件")) -> QueryAnalysis:
    return QueryAnalysis(question=question, normalised=question, scope=scope, asks_figure=asks_figure,
                         terms=list(terms))


def _extractive(lines: list[str], passages: list[Passage]) -> AnswerResult:
    return AnswerResult(question="q", answer="\n".join(lines), refused=False,
                        citations=[_citation(i + 1, p) for i, p in enumerate(passages)], contexts=passages, mode="extractive")


TY_P, MY_P = _passage("ty", "太原市", TY), _passage("my", "绵阳市", MY)


def test_model_refused_only_without_a_citation():
    assert llm_checks.model_refused("报告中未提及该数字。").code == "model_refused"
    assert llm_checks.model_refused("The reports do not mention it.").code == "model_refused"
    assert llm_checks.model_refused("新收1274件[1]，其他方面未提及。") is None
    assert llm_checks.model_refused("新收1274件。") is None


def test_no_support_when_nothing_is_cited():
    assert llm_checks.no_support([]).code == "no_support"
    assert llm_checks.no_support([_citation(1, TY_P)]) is None


def test_figures_differ_when_the_model_gives_another_number():
    fallback = _extractive([TY + "[1]"], [TY_P])
    analysis = _analysis("太原新收行政复议案件多少件？")
    note = llm_checks.figures_differ("新收行政复议案件1247件[1]。", fallback, analysis)
    assert note.code == "figures_differ" and note.params["figures"] == "1247"
    assert llm_checks.figures_differ("新收1274件[1]。", fallback, analysis) is None
    # A question that asks for no figure is not held to the sentences' numbers.
    assert llm_checks.figures_differ("有所增长[1]。", fallback, _analysis("怎么样？", asks_figure=False)) is None


def test_left_out_places_for_a_comparison_only():
    fallback = _extractive([TY + "[1]", MY + "[2]"], [TY_P, MY_P])
    several = _analysis("太原和绵阳各多少？", scope="several")
    note = llm_checks.left_out_places([_citation(1, TY_P)], fallback, several)
    assert note.code == "left_out_places" and note.params["places"] == "绵阳市"
    assert llm_checks.left_out_places([_citation(1, TY_P), _citation(2, MY_P)], fallback, several) is None
    assert llm_checks.left_out_places([_citation(1, TY_P)], fallback, _analysis("太原多少？")) is None


def test_left_out_figures_when_two_are_asked_and_one_is_given():
    fallback = _extractive([TY + "[1]"], [TY_P])
    analysis = _analysis("太原新收多少件行政复议案件？增长多少？", terms=("新收", "行政复议", "案件", "增长"))
    note = llm_checks.left_out_figures("新收行政复议案件1274件[1]。", fallback, analysis)
    assert note.code == "left_out_figures" and "204%" in note.params["figures"]
    assert llm_checks.left_out_figures("新收1274件，同比增长204%[1]。", fallback, analysis) is None
    # One figure asked, one given: nothing is missing.
    assert llm_checks.left_out_figures("新收1274件[1]。", fallback, _analysis("太原新收多少件？")) is None


TC = "推出“企業開辦”“投資建設”“轉學插班”等52項“一件事”主題服務。"


def test_left_out_names_when_a_which_question_gets_a_shorter_list():
    passage = _passage("tc", "太仓市", TC)
    fallback = _extractive([TC + "[1]"], [passage])
    which = _analysis("太仓市推出的一件事主题服务举了哪些例子？", asks_figure=False, terms=("一件事", "主题服务"))
    note = llm_checks.left_out_names("太仓市推出了52项一件事主题服务[1]。", fallback, which)
    assert note.code == "left_out_names" and "企業開辦" in note.params["names"]
    # Every name given, in simplified characters: nothing is missing.
    whole = "太仓市推出“企业开办”“投资建设”“转学插班”等52项“一件事”主题服务[1]。"
    assert llm_checks.left_out_names(whole, fallback, which) is None
    # A question not asking which ones may leave the names out.
    assert llm_checks.left_out_names("52项[1]。", fallback, _analysis("太仓市推出了多少项一件事主题服务？")) is None
    english = _analysis("Which examples of one-thing services did Taicang give?", asks_figure=False, terms=("一件事",))
    assert llm_checks.left_out_names("Taicang launched 52 services [1].", fallback, english).code == "left_out_names"


def test_checked_keeps_a_good_answer_and_falls_back_with_the_first_failing_check():
    fallback = _extractive([TY + "[1]"], [TY_P])
    analysis = _analysis("太原新收行政复议案件多少件？")
    good = LLMAnswer.checked("q", "太原市新收行政复议案件1274件[1]。", analysis, [TY_P], fallback, {})
    assert good.mode == "llm" and good.citations[0].chunk_id == "ty" and not good.notes
    fallback = _extractive([TY + "[1]"], [TY_P])
    bad = LLMAnswer.checked("q", "太原市新收行政复议案件1247件[1]。", analysis, [TY_P], fallback, {})
    assert bad is fallback and bad.grounded is False and [n.code for n in bad.notes] == ["figures_differ"]


def test_checked_attributes_an_uncited_sentence_and_grounds_it():
    fallback = _extractive([TY + "[1]"], [TY_P])
    result = LLMAnswer.checked("q", "太原市新收行政复议案件1274件。", _analysis("太原新收多少件？"), [TY_P], fallback, {})
    assert result.mode == "llm" and result.answer.endswith("[1]。")


def test_passages_for_one_place_are_the_cited_ones_and_one_more():
    other = _passage("x", "太原市", "其他内容。")
    fallback = _extractive([TY + "[1]"], [TY_P])
    got = LLMAnswer.passages_for(_analysis("q"), [other, TY_P, MY_P], fallback)
    assert [p.id for p in got] == ["ty", "x"]


def test_a_hosted_model_reads_more_of_the_passages_than_the_bundled_one():
    from rag.answer.llm_answer import ContextBudget

    bundled, hosted = ContextBudget.for_llm("local"), ContextBudget.for_llm("openai")
    assert (bundled.passages, bundled.excerpt_chars) == (3, 110)
    assert hosted.passages > bundled.passages and hosted.excerpt_chars > bundled.excerpt_chars
    many = [_passage(f"p{i}", "太原市", f"第{i}段。") for i in range(8)]
    fallback = _extractive([f"第{i}段。[{i + 1}]" for i in range(8)], many)
    several = _analysis("q", scope="several")
    assert len(LLMAnswer.passages_for(several, many, fallback, limit=hosted.passages)) == 8  # one per place: all
    assert len(LLMAnswer.passages_for(_analysis("q"), many, fallback, limit=hosted.passages)) == 6
    assert len(LLMAnswer.passages_for(_analysis("q"), many, fallback, limit=bundled.passages)) == 3


def test_each_asks_for_more_than_one_figure():
    line = "全市刑事、治安警情实现“五连降”,立案数分别下降28.2%、9.2%。"
    fallback = _extractive([line + "[1]"], [_passage("my", "绵阳市", line)])
    analysis = _analysis("绵阳市2024年刑事和治安案件的立案数各下降了多少？", terms=("刑事", "治安", "立案", "下降"))
    note = llm_checks.left_out_figures("立案数下降28.2%[1]。", fallback, analysis)
    assert note is not None and "9.2%" in note.params["figures"]
    assert llm_checks.left_out_figures("分别下降28.2%和9.2%[1]。", fallback, analysis) is None
