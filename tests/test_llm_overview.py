"""LLM mode where the model writes: a section summary's overview (``LLMAnswer.overview``) and
whole sentences for lists and several figures (``generate.excerpt``). Fake chat models check the
checks; one test asks the bundled model for real."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from rag.answer.generate import excerpt
from rag.answer.llm_answer import ContextBudget, LLMAnswer, overview_passages
from rag.answer.summary import SummaryAnswer, summary_points
from rag.retrieve.query import QueryAnalyzer
from rag.types import Passage
from test_analyst_paths import HOUMA, _Index, _Keywords

QUESTION = "侯马市2023年法治政府建设存在哪些不足？"


class RecordingChatModel(GenericFakeChatModel):
    prompts: list = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.prompts.append(messages)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def fake_llm(reply: str) -> RecordingChatModel:
    return RecordingChatModel(messages=iter([AIMessage(content=reply)]), prompts=[])


@pytest.fixture(scope="module")
def summary_and_analysis():
    analysis = QueryAnalyzer([HOUMA]).run(QUESTION)
    summary = SummaryAnswer(_Index("houma-2023.txt"), _Keywords()).run(QUESTION, analysis, [HOUMA], "llm")
    return summary, analysis


def _overview(reply: str, summary_and_analysis, budget: ContextBudget | None = None):
    summary, analysis = summary_and_analysis
    from copy import deepcopy

    summary = deepcopy(summary)  # the path appends notes to it
    llm = fake_llm(reply)
    stream = LLMAnswer(llm, timeout=30, budget=budget).overview(QUESTION, analysis, summary, {})
    pieces = []
    while True:  # the pieces, then the generator's return value: the result
        try:
            pieces.append(next(stream))
        except StopIteration as done:
            return "".join(pieces), done.value, llm, summary


def test_summary_points_are_read_back_with_their_report_and_citations(summary_and_analysis):
    summary, _ = summary_and_analysis
    points = summary_points(summary.answer)
    assert len(points) >= 3 and {block for block, _, _ in points} == {0}
    for _, text, numbers in points:
        assert numbers and all(text in summary.citations[n - 1].text for n in numbers[:1])


def test_a_checked_overview_stands_above_the_reports_points(summary_and_analysis):
    summary, _ = summary_and_analysis
    streamed, result, llm, _ = _overview("侯马市主要存在法治思维能力不足、法治专业队伍薄弱等问题[1]，执法规范化有待加强[2]。",
                                         summary_and_analysis)
    assert result.answer.startswith("概述：侯马市主要存在法治思维能力不足")
    assert result.answer.endswith(summary.answer)  # the points stay, in the report's words
    assert streamed == result.answer  # the stream is the answer: no renumbering afterwards
    assert result.citations == summary.citations and result.mode == "llm" and not result.refused
    assert [n.code for n in result.notes][-2:] == ["section_summary", "model_overview"]
    # The model read the points whole, numbered as the summary numbers them.
    prompt = llm.prompts[0][-1].content
    first_point = summary_points(summary.answer)[0][1]
    assert first_point in prompt and prompt.count("<passage>") == len(summary.contexts)


@pytest.mark.parametrize("reply,reason", [
    ("侯马市共有99项不足[1]。", "figures not in the cited passages"),  # an invented figure
    ("报告中未提及相关内容。", "the model refused"),
    ("总体情况良好，群众满意度很高。", "no citations"),  # nothing in the points supports it
])
def test_an_overview_that_fails_its_checks_is_left_out(reply, reason, summary_and_analysis):
    summary, _ = summary_and_analysis
    _, result, _, _ = _overview(reply, summary_and_analysis)
    assert result.answer == summary.answer and result.citations == summary.citations
    assert result.notes[-1].code == "overview_dropped" and reason in str(result.notes[-1]), result.notes
    assert result.mode == "llm"


def test_an_overview_written_as_a_list_becomes_one_paragraph(summary_and_analysis):
    _, result, _, _ = _overview("1. 法治思维能力有待提高[2]。\n2. 法治专业队伍建设有待加强[3]。来源：[4]", summary_and_analysis)
    overview = result.answer.splitlines()[0]
    assert overview == "概述：法治思维能力有待提高[2]。 法治专业队伍建设有待加强[3]。", overview


def test_a_marker_beyond_the_points_is_dropped_not_kept(summary_and_analysis):
    _, result, _, _ = _overview("法治思维能力有待提高[1][42]。", summary_and_analysis)
    assert "[42]" not in result.answer and result.answer.startswith("概述：法治思维能力有待提高[1]。")


def test_the_overviews_reading_is_bounded_and_shared_by_every_report(summary_and_analysis):
    summary, _ = summary_and_analysis
    points = summary_points(summary.answer)
    tight = overview_passages(summary, max_chars=1)
    assert len(tight) == len(summary.contexts)  # numbering kept
    read = [p.text for p in tight if p.text != "（略）"]
    assert read == [points[0][1]]  # at least one point, whole
    roomy = overview_passages(summary, max_chars=10_000)
    assert sum(t.text.count("；") + 1 for t in roomy if t.text != "（略）") == len(points)
    # Two reports: the first points of each come before the second point of either.
    two = summary.answer + "\n绵阳市（2024年）报告「存在的不足」要点：\n1. 依法决策水平有待提升[1]"
    blocks = [b for b, _, _ in summary_points(two)]
    assert blocks.count(1) == 1 and blocks[0] == 0
    from dataclasses import replace

    both = overview_passages(replace(summary, answer=two), max_chars=len(points[0][1]) + len("依法决策水平有待提升"))
    assert "依法决策水平有待提升" in both[0].text and points[0][1] in both[0].text


def test_a_hosted_model_reads_more_of_a_summary_than_the_bundled_one():
    assert ContextBudget.for_llm("openai").summary_chars > ContextBudget.for_llm("local").summary_chars


def test_the_sentences_an_answer_rests_on_are_read_whole():
    first = "全年新收行政复议案件1274件,同比增长204%,其中调解和解结案的占比达到了较高水平,办案质量和效率进一步提升。"
    second = "行政机关负责人出庭应诉率达到100%,行政诉讼败诉率同比下降,行政复议纠错率保持稳定,府院联动机制持续完善。"
    other = "其他工作稳步推进。" * 5
    passage = Passage(id="c", text=first + other + second, score=1.0, doc_id="d", region="太原市", year=2024,
                      title=None, section="", source="x")
    cut = excerpt(passage, ["行政复议"], max_chars=110, first={first, second})
    assert len(first + second) > 110
    assert first in cut.text and second in cut.text  # both, though together over 110 characters
    assert "其他工作" not in cut.text


@pytest.mark.slow
def test_the_bundled_model_writes_a_checked_overview(bundled_index):
    from rag.answer.answerer import Answerer
    from rag.config import Settings
    from rag.models.chat import make_chat_model
    from rag.retrieve.hybrid import HybridRetriever

    answerer = Answerer(HybridRetriever(index=bundled_index, k=8), make_chat_model(Settings(llm="local")))
    result = answerer.run(QUESTION, mode="llm")
    extractive = answerer.run(QUESTION, mode="extractive")
    codes = [n.code for n in result.notes]
    assert "section_summary" in codes and result.mode == "llm"
    assert result.answer.endswith(extractive.answer)  # the report's points, unchanged, below
    assert "model_overview" in codes, result.notes  # the model's overview passed its checks
    overview = result.answer[:-len(extractive.answer)]
    assert overview.startswith("概述：") and "[" in overview and len(overview) < 400
