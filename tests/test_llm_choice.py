"""LLM mode where the question's words are not the report's: the model picks which candidate
sentence gives the figure asked (``rag.answer.choice``), and the pick is checked. Fake chat models
check the checks; one test asks the bundled model for real."""

from __future__ import annotations

import pytest

from rag.answer.choice import SentenceChoice
from rag.answer.llm_answer import LLMAnswer
from rag.retrieve.query import QueryAnalyzer
from rag.types import AnswerResult, Passage, ReportRecord
from test_analyst_paths import _Keywords
from test_llm_overview import fake_llm

TAIYUAN = ReportRecord(doc_id="d", version="v", source="t.txt", content_sha="s", region="太原市", year=2024)
QUESTION = "太原市2024年通过人民网收到群众的网上留言多少件？"
PASSAGES = [
    Passage(id="p1", text="全面推进信息公开,在政府部门网站发布各类政务信息8.6万余条,办理“我为政府网站找错”留言37条,"
                          "受理市长信箱留言13367件、人民网留言3360件,发布24场政府新闻发布会。",
            score=1.0, doc_id="d", region="太原市", year=2024, title=None, section="", source=""),
    Passage(id="p2", text="坚持领导干部接访下访,市、县两级领导干部全年共接访599次,接待群众1180批次5646人次。",
            score=0.9, doc_id="d", region="太原市", year=2024, title=None, section="", source=""),
]


def _analysis(question: str = QUESTION):
    return QueryAnalyzer([TAIYUAN]).run(question)


def _refusal(question: str = QUESTION) -> AnswerResult:
    return AnswerResult(question=question, answer="报告中未提及", refused=True, citations=[], contexts=PASSAGES,
                        mode="extractive")


def _choose(reply: str, question: str = QUESTION):
    llm = fake_llm(reply)
    result = LLMAnswer(llm, timeout=30).choose(question, _analysis(question), PASSAGES, _refusal(question),
                                               SentenceChoice(_Keywords()))
    return result, llm


def test_candidates_are_figure_sentences_holding_enough_of_the_questions_terms():
    choice = SentenceChoice(_Keywords())
    candidates = choice.candidates(_analysis(), PASSAGES)
    assert candidates and candidates[0].passage == 1 and "人民网留言3360件" in candidates[0].text
    assert all(c.coverage >= choice.min_coverage for c in candidates)
    assert len(SentenceChoice(_Keywords(), max_candidates=1).candidates(_analysis(), PASSAGES)) == 1
    # Not this path's: several places, arithmetic, several asks, no figure asked.
    assert choice.candidates(_analysis("太原市2024年人民网留言和市长信箱留言合计多少件？"), PASSAGES) == []
    assert choice.candidates(_analysis("太原市2024年如何推进信息公开？"), PASSAGES) == []
    # "一共多少人次" asks one stated total (一共 is a filler), unlike a sum of two figures above.
    total = _analysis("太原市2024年领导干部一共接待了多少人次群众？")
    assert total.operation == "sum" and choice.candidates(total, PASSAGES)[0].passage == 2
    # A figure the question states must be in the sentence.
    assert choice.candidates(_analysis("太原市2024年收到的网上留言500件中人民网有多少件？"), PASSAGES) == []


def test_the_models_pick_is_the_answer_when_it_holds_up():
    result, llm = _choose("3360件[1]")
    assert result is not None and not result.refused and result.mode == "llm"
    assert "人民网留言3360件" in result.answer and result.citations[0].chunk_id == "p1"
    assert [n.code for n in result.notes] == ["model_chose"]
    # No passage number: the one candidate stating the figure written is the pick.
    unnumbered, _ = _choose("3360件")
    assert unnumbered is not None and unnumbered.citations[0].chunk_id == "p1"
    asked = llm.prompts[0][-1].content
    # The candidates are the passages; the ask follows the question.
    assert "人民网留言3360件" in asked and asked.index(QUESTION) < asked.index("只回答“报告中未提及”")


@pytest.mark.parametrize("reply", [
    "报告中未提及",              # the model says none answers
    "3500件",                    # no number, and no candidate states it
    "3360件[1]，599次[2]",        # two sentences: not one figure's
    "3500件[1]",                 # a figure the sentence does not state
    "人民网留言[1]",              # no figure written
    "3360件[7]",                 # a passage it was not offered
])
def test_a_pick_that_does_not_hold_up_leaves_the_refusal(reply):
    result, _ = _choose(reply)
    assert result is None


def test_a_pick_in_another_unit_or_stage_is_not_the_answer():
    # 人次 asked, the sentence counts 件 and 条; 办结 asked, the sentence says 受理.
    assert _choose("3360件[1]", "太原市2024年人民网网上留言有多少人次？")[0] is None
    assert _choose("3360件[1]", "太原市2024年人民网网上留言办结了多少件？")[0] is None


def test_extractive_mode_never_asks_the_model(bundled_index):
    from rag.answer.answerer import Answerer
    from rag.retrieve.hybrid import HybridRetriever

    llm = fake_llm("3360件[1]")
    answerer = Answerer(HybridRetriever(index=bundled_index, k=8), llm)
    result = answerer.run(QUESTION, mode="extractive")
    assert result.refused and not llm.prompts


def test_a_question_answered_in_part_is_not_rewritten_by_the_model(bundled_index):
    """Two asks, one not in the report: the "未提及" line is part of the answer, so no model
    rewrites it; two asks both answered go to the model like any extractive answer."""
    from rag.answer.answerer import Answerer
    from rag.retrieve.hybrid import HybridRetriever

    llm = fake_llm("侯马市2023年公布重大决策事项16项[1]，对46件文件草案进行了合法性审核[1]。")
    answerer = Answerer(HybridRetriever(index=bundled_index, k=8), llm)
    partly = answerer.run("侯马市2023年共办理各类法律援助案件多少件？全市有多少名专职法律援助律师？", mode="llm")
    assert not llm.prompts and partly.mode == "llm" and "150件" in partly.answer
    assert partly.answer.splitlines()[-1] == "报告中未提及：全市有多少名专职法律援助律师"
    both = answerer.run("侯马市2023年市政府网站公布的本年度重大决策事项有多少项？对多少件市政府拟发布的文件草案进行了合法性审核？",
                        mode="llm")
    assert len(llm.prompts) == 1 and "16项" in both.answer and "46件" in both.answer


@pytest.mark.slow
def test_the_bundled_model_picks_the_sentence_and_refuses_a_trap(bundled_index):
    from rag.answer.answerer import Answerer
    from rag.config import Settings
    from rag.models.chat import make_chat_model
    from rag.retrieve.hybrid import HybridRetriever

    answerer = Answerer(HybridRetriever(index=bundled_index, k=8), make_chat_model(Settings(llm="local")))
    result = answerer.run("太原市2024年给群众发了多少条森林防火预警短信？", mode="llm")
    assert not result.refused and "159条" in result.answer, result.answer
    assert any(n.code == "model_chose" for n in result.notes) and result.citations[0].region == "太原市"
    # A metric the report does not give stays refused.
    trap = answerer.run("太仓市2024年完成了多少个审计项目？", mode="llm")
    assert trap.refused, trap.answer
