"""The answerer: question in, cited answer (or an honest refusal) out.

It orchestrates named steps, each in its own module:

1. ``refusals.clean_question``: the question checked and cleaned;
2. query analysis (``rag.retrieve.query``), then ``refusals.refuse_unindexed`` when it names only
   places or years that are not indexed;
3. hybrid retrieval (``rag.retrieve.hybrid``);
4. the answer path: ``summary`` for what a report's part or section says as a whole (in LLM
   mode with the model's overview above its points, ``LLMAnswer.overview``);
   ``trend`` for a figure of one place over several years (a cited series, the changes computed);
   ``table_answer`` for a figure compared across reports; ``asks`` for two or more figures asked
   in separate clauses (each found and checked on its own, "未提及" for one the reports do not
   give); ``arithmetic`` for a sum, share, average or threshold over the cited figures; otherwise the
   ``extractive`` answer, which ``llm_answer.LLMAnswer`` may replace in LLM mode when the model's
   answer passes its checks (``llm_checks``, grounding). In LLM mode a question the extractive
   check refuses goes to ``choice``: the model picks which candidate sentence, if any, gives the
   figure asked, and the pick is checked;
5. citations resolved to the passages the answer cites.

The result is CONTRACT.md's JSON object.
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Iterator

from langchain_core.language_models import BaseChatModel

from rag.answer.arithmetic import Computation
from rag.answer.asks import EachAsk
from rag.answer.choice import SentenceChoice
from rag.answer.citations import resolve_citations
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.llm_answer import LLM_PASSAGES, MODEL_STOPPED_NOTE, ContextBudget, LLMAnswer  # noqa: F401 - re-exported
from rag.answer.notes import Note
from rag.answer.refusals import (MAX_QUESTION_CHARS, QuestionError, clean_question,  # noqa: F401 - re-exported
                                 change_not_given, change_refusal, infer_refusal, missing_places_note, not_found,
                                 rate_not_given,
                                 rate_refusal, refuse_unindexed,
                                 stage_not_given, stage_refusal, unit_not_given, unit_refusal)
from rag.answer.summary import SummaryAnswer, asks_summary
from rag.answer.table_answer import comparison_table, reports_in_scope, table_answer
from rag.answer.trend import TrendAnswer
from rag.index.keywords import KeywordIndex
from rag.models.chat import DEFAULT_LLM_TIMEOUT_S, ChatModelUnavailable
from rag.models.chat import llm_timeout as rag_llm_timeout
from rag.retrieve.hybrid import HybridRetriever
from rag.retrieve.query import QueryAnalysis
from rag.text.figures import Figure, extract_figures, stated_figures
from rag.text.markers import MARKER
from rag.text.years import is_year
from rag.types import AnswerResult, Mode, Passage

MODES: tuple[Mode, ...] = ("extractive", "llm")


class Answerer:
    """Answer questions over the index.

    Args:
        retriever: the hybrid retriever over the index.
        chat_model: the LLM for ``llm`` mode; None means extractive answers only.
        k: passages retrieved per question.
        unavailable_reason: why there is no chat model (shown when LLM mode is asked for).
        llm_timeout: seconds a whole LLM answer may take before the extractive answer is
            given instead (default ``RAG_LLM_TIMEOUT``, 60).
        budget: how much of the passages the model reads (default: the bundled model's).

    Example:
        >>> answerer = Answerer(HybridRetriever(index=index))
        >>> result = answerer.run("太原市2024年新收行政复议案件多少件？", mode="extractive")
        >>> result.answer
        '市政府行政复议局全年新收行政复议案件1274件,同比增长204%。[1]'
    """

    def __init__(self, retriever: HybridRetriever, chat_model: BaseChatModel | None = None, k: int = 8,
                 unavailable_reason: str | None = None, llm_timeout: float | None = None,
                 budget: ContextBudget | None = None):
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.retriever = retriever
        self.chat_model = chat_model
        self.k = k
        self.unavailable_reason = unavailable_reason
        if llm_timeout is None:
            try:
                llm_timeout = rag_llm_timeout()
            except ChatModelUnavailable:  # already reported by make_chat_model
                llm_timeout = DEFAULT_LLM_TIMEOUT_S
        self.llm_timeout = llm_timeout
        self._llm = LLMAnswer(chat_model, timeout=llm_timeout, budget=budget) if chat_model is not None else None

    @property
    def default_mode(self) -> Mode:
        return "llm" if self.chat_model is not None else "extractive"

    def run(self, question: str, mode: Mode | None = None, regions: list[str] | None = None,
            years: list[int] | None = None, id: str | None = None) -> AnswerResult:
        """Answer one question.

        Args:
            question: the question, in Chinese (simplified or traditional) or English.
            mode: ``extractive`` or ``llm`` (default: llm when a chat model is configured).
            regions, years: filters that override the places/years the question names.
            id: an identifier copied into the result (question sets).

        Raises:
            QuestionError: the question is empty or too long, or the mode is unknown.
        """
        result = None
        for event in self.stream(question, mode=mode, regions=regions, years=years, id=id):
            if isinstance(event, AnswerResult):
                result = event
        return result

    def stream(self, question: str, mode: Mode | None = None, regions: list[str] | None = None,
               years: list[int] | None = None, id: str | None = None) -> Iterator[str | AnswerResult]:
        """Like ``run``, but yields the answer's text pieces as the model writes them, then the result.

        The final ``AnswerResult`` may differ from the streamed text: citations are resolved and
        figures checked when the stream ends (``result.grounded``, ``result.notes`` say what changed).
        """
        started = time.perf_counter()
        question = clean_question(question)
        mode = mode or self.default_mode
        if mode not in MODES:
            raise QuestionError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        notes: list[str] = []
        if mode == "llm" and self.chat_model is None:
            notes.append(Note("llm_unavailable", reason=self.unavailable_reason or "not configured"))
            mode = "extractive"

        snap = self.retriever.snapshot()  # one read of the report list per question
        analysis = snap.analyzer.run(question)
        result = refuse_unindexed(analysis, snap.analyzer, mode, regions, years)
        if result is None:
            docs = self.retriever.invoke(question, k=self.k, regions=regions, years=years, analysis=analysis,
                                         snapshot=snap)
            passages = [Passage.from_document(d) for d in docs]
            if analysis.missing_regions:
                notes.append(missing_places_note(analysis))
            if (analysis.span is not None and analysis.trend_missing and analysis.regions and not years
                    and not analysis.trend):
                # "近三年" of a place the index holds one year of: the ordinary answer, and why.
                notes.append(Note("years_missing", place=analysis.regions[0],
                                  years="、".join(str(y) for y in analysis.trend_missing)))
            result = yield from self._answer(question, analysis, passages, snap, mode, regions, years)
        else:
            yield result.answer
        result.notes = notes + result.notes
        result.id = id
        result.analysis = analysis
        result.latency_ms = (time.perf_counter() - started) * 1000
        yield result

    def _answer(self, question: str, analysis: QueryAnalysis, passages: list[Passage], snap, mode: Mode,
                regions: list[str] | None, years: list[int] | None) -> Iterator[str]:
        """The answer path for the question: yields text, returns the result."""
        if asks_summary(analysis):
            summary = SummaryAnswer(self.retriever.index, snap.keywords).run(
                question, analysis, reports_in_scope(snap.reports, analysis, regions, years), mode)
            if summary is not None:
                if mode == "llm" and self._llm is not None:  # the model sums the points up above them
                    return (yield from self._llm.overview(question, analysis, summary, snap.analyzer.place_names()))
                yield summary.answer
                return summary
        if analysis.trend:
            # One place over several years: the series and its changes are computed by code in
            # both modes, like a comparison's conclusion.
            trend = TrendAnswer(self.retriever.index, snap.keywords).run(question, analysis, passages, snap.reports,
                                                                        mode, regions, years)
            if trend is not None:
                yield trend.answer
                return trend
        table = comparison_table(self.retriever.index, snap.keywords, analysis, snap.reports, regions, years)
        if table is not None:
            result = table_answer(question, analysis, passages, table, mode, snap.keywords, self.retriever.index)
            yield result.answer
            return result
        # A rate asked beside a count may be computed from the counts the whole question finds
        # (胜诉206件 of 235件): asked ask by ask only when it cannot be (below, rate_not_given).
        each = EachAsk(snap.keywords).run(question, analysis, passages) if analysis.operation != "rate" else None
        if each is not None:
            return (yield from self._each_ask(question, analysis, passages, each, snap, mode))
        result = extractive_answer(question, analysis, passages, snap.keywords)
        if result.refused and analysis.operation == "rate" and analysis.asks:
            each = EachAsk(snap.keywords).run(question, analysis, passages)
            if each is not None:  # the whole question's words found nothing: ask by ask, then
                return (yield from self._each_ask(question, analysis, passages, each, snap, mode))
        if result.refused and mode == "llm" and self._llm is not None:
            # The question's words are not the report's: the model says which sentence, if any, answers.
            chosen = self._llm.choose(question, analysis, passages, result, SentenceChoice(snap.keywords))
            if chosen is not None:
                yield chosen.answer
                return chosen
        if not result.refused and change_not_given(analysis, result):
            result = change_refusal(question, analysis, result, mode)
            yield result.answer
            return result
        unit = unit_not_given(analysis, result)
        if unit is not None:
            result = unit_refusal(question, analysis, result, unit, mode)
            yield result.answer
            return result
        stages = stage_not_given(analysis, result)
        if stages is not None:
            result = stage_refusal(question, analysis, result, *stages, mode)
            yield result.answer
            return result
        if analysis.operation and not result.refused:
            # Arithmetic is done by code from the cited figures; no model rewrites the numbers.
            result = Computation(analysis).run(result)
            if any(n.code == "computed" for n in result.notes):
                result.mode = mode
                yield result.answer
                return result
            if analysis.operation == "infer":  # a stated figure is not the inferred one
                result = infer_refusal(question, analysis, result, mode)
                yield result.answer
                return result
        if rate_not_given(analysis, result):
            each = EachAsk(snap.keywords).run(question, analysis, passages) if analysis.asks else None
            if each is not None:  # "留言多少件？办结率是多少？": the count given, the rate said not given
                return (yield from self._each_ask(question, analysis, passages, each, snap, mode))
            result = rate_refusal(question, analysis, result, mode)
            yield result.answer
            return result
        if mode == "llm" and not result.refused:
            return (yield from self._llm.stream(question, analysis, passages, result, snap.analyzer.place_names()))
        # Extractive mode, or a question no passage supports: the LLM is not asked to guess
        # (the extractive coverage is the calibrated evidence check).
        result.mode = mode
        yield result.answer
        return result

    def _each_ask(self, question: str, analysis: QueryAnalysis, passages: list[Passage], each: AnswerResult,
                  snap, mode: Mode) -> Iterator[str]:
        """Two or more figures asked in separate clauses, each found and checked on its own."""
        if mode == "llm" and self._llm is not None and not any(n.code == "ask_not_mentioned" for n in each.notes):
            return (yield from self._llm.stream(question, analysis, passages, each, snap.analyzer.place_names()))
        # Answered in part: the "未提及" lines are the answer too, so no model rewrites it.
        each.mode = mode
        yield each.answer
        return each


def extractive_answer(question: str, analysis: QueryAnalysis, passages: list[Passage],
                      keywords: KeywordIndex) -> AnswerResult:
    """The cited report sentences that best cover the question's terms, or the refusal.

    A figure the question states must be in the answering sentence. When no sentence has it,
    the question may rest on a wrong figure ("新收1500件，比上年增长多少？"): the sentences that
    answer otherwise are given, with a line saying the question's figure is not the report's.
    """
    answerer = ExtractiveAnswerer(keywords)
    answer = answerer.run(analysis, analysis.terms, passages)
    premise = extract_figures(analysis.stated) or stated_figures(analysis.stated)
    corrected = False
    if answer.refused and premise and analysis.asks_figure:
        without = dataclasses.replace(analysis, normalised=_without_figures(analysis.normalised))
        retry = answerer.run(without, analysis.terms, passages)
        if not retry.refused and any(_same_unit_figure(line, premise) for line in retry.lines):
            answer, corrected = retry, True
    if answer.refused:
        return AnswerResult(question=question, answer=not_found(analysis.language), refused=True,
                            citations=[], contexts=passages, mode="extractive")
    lines = list(answer.lines)
    if corrected:
        stated = "、".join(f.text for f in premise)
        lines.append(f"Note: the reports do not give the question's figure ({stated}); the cited figures are the reports'."
                     if analysis.language == "en" else f"注意：报告中没有问题所说的{stated}，以上为报告所载数字。")
    text, citations = resolve_citations("\n".join(lines), passages)
    result = AnswerResult(question=question, answer=text, refused=False,
                          citations=citations, contexts=passages, mode="extractive")
    if corrected:
        result.notes.append(Note("premise_differs", figures=", ".join(f.text for f in premise)))
    return result


def _without_figures(normalised: str) -> str:
    return re.sub(r"(?<![\d.])\d+(?:\.\d+)?%?", lambda m: m.group(0) if is_year(m.group(0)) else " ", normalised)


def _same_unit_figure(line: str, premise: list[Figure]) -> bool:
    """Whether an answer line states a figure of the kind the question's figure is (a % for a %)."""
    return any(f.percent == p.percent for f in stated_figures(MARKER.sub("", line)) for p in premise)
