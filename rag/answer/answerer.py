"""The answerer: question in, cited answer (or an honest refusal) out.

Pipeline: query analysis -> refusal when a named place or year is not indexed -> hybrid
retrieval -> an extractive answer (always available) or an LLM answer -> citations resolved
to the passages the answer cites. The result is CONTRACT.md's JSON object.
"""

from __future__ import annotations

import re
import time
import unicodedata
from typing import Iterator

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel

from rag.types import AnswerResult, Passage
from rag.answer.citations import MARKER, resolve_citations
from rag.answer.compare import ComparisonBuilder, ComparisonTable, conclude
from rag.answer.extractive import LIGHT_VERBS, ExtractiveAnswerer
from rag.text.figures import extract_figures
from rag.answer.generate import build_answer_chain, excerpt
from rag.answer.grounding import Figure as StatedFigure
from rag.answer.grounding import attribute, check_grounding, figures, is_grounded, shares_a_figure
from rag.index.keywords import KeywordIndex
from rag.models.chat import DEFAULT_LLM_TIMEOUT_S, ChatModelUnavailable, LLMTimeout, stream_within
from rag.models.chat import llm_timeout as rag_llm_timeout
from rag.models.server import ModelServer
from rag.answer.notes import Note
from rag.retrieve.query import QueryAnalysis, QueryAnalyzer
from rag.retrieve.hybrid import HybridRetriever, resolve_regions
from rag.text.normalize import matching_form

MODES = ("extractive", "llm")
MODEL_STOPPED_NOTE = Note("model_stopped")
MAX_QUESTION_CHARS = 1000
LLM_PASSAGES = 3  # excerpts the model sees: the bundled model reads ~75 prompt tokens/s on 2 cores
# What a model writes when the passages do not hold the answer.
_LLM_REFUSAL = re.compile(r"未提及|没有提及|未提到|没有提到|无法回答|未找到|没有找到|不包含|没有相关|并未|"
                          r"not (mentioned|stated|provided|given)|(do|does|did) not (mention|say|state|contain|include|provide|give)|no information",
                          re.IGNORECASE)


# What a question asks for: each 多少 / 几X / how many / how much / what … rate is one figure.
_ASKS = re.compile(r"多少|几(?=[件个次人项家起名场所万条份支批])|\bhow (?:many|much)\b"
                   r"|\bwhat\b[^?,.;]*?\b(?:rate|percentage|share|proportion)\b")
_ANSI_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")


class QuestionError(ValueError):
    """The question cannot be asked as given (empty, too long)."""


def _join(names: list[str], language: str) -> str:
    return ", ".join(names) if language == "en" else "、".join(names)


class Answerer:
    """Answer questions over the index.

    Args:
        retriever: the hybrid retriever over the index.
        chat_model: the LLM for ``llm`` mode; None means extractive answers only.
        k: passages retrieved per question.
        llm_timeout: seconds a whole LLM answer may take before the extractive answer is
            given instead (default ``RAG_LLM_TIMEOUT``, 60).

    Example:
        >>> answerer = Answerer(HybridRetriever(index=index))
        >>> result = answerer.run("太原市2024年新收行政复议案件多少件？", mode="extractive")
        >>> result.answer
        '市政府行政复议局全年新收行政复议案件1274件,同比增长204%。[1]'
    """

    def __init__(self, retriever: HybridRetriever, chat_model: BaseChatModel | None = None, k: int = 8,
                 unavailable_reason: str | None = None, llm_timeout: float | None = None):
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
        self._chain = build_answer_chain(chat_model) if chat_model is not None else None

    @property
    def default_mode(self) -> str:
        return "llm" if self.chat_model is not None else "extractive"

    def run(self, question: str, mode: str | None = None, regions: list[str] | None = None,
            years: list[int] | None = None, id: str | None = None) -> AnswerResult:
        """Answer one question.

        Args:
            question: the question, in Chinese (simplified or traditional) or English.
            mode: ``extractive`` or ``llm`` (default: llm when a chat model is configured).
            regions, years: filters that override the places/years the question names.
            id: an identifier copied into the result (question sets).

        Raises:
            QuestionError: the question is empty or too long.
        """
        result = None
        for event in self.stream(question, mode=mode, regions=regions, years=years, id=id):
            if isinstance(event, AnswerResult):
                result = event
        return result

    def stream(self, question: str, mode: str | None = None, regions: list[str] | None = None,
               years: list[int] | None = None, id: str | None = None) -> Iterator[str | AnswerResult]:
        """Like ``run``, but yields the answer's text pieces as the model writes them, then the result.

        The final ``AnswerResult`` may differ from the streamed text: citations are resolved and
        figures checked when the stream ends (``result.grounded``, ``result.notes`` say what changed).
        """
        started = time.perf_counter()
        question = self._validated(question)
        mode = mode or self.default_mode
        if mode not in MODES:
            raise QuestionError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        notes: list[str] = []
        if mode == "llm" and self.chat_model is None:
            notes.append(Note("llm_unavailable", reason=self.unavailable_reason or "not configured"))
            mode = "extractive"

        snap = self.retriever.snapshot()  # one read of the report list per question
        analysis = snap.analyzer.run(question)
        result = self._refuse_unindexed(analysis, snap.analyzer, mode, regions, years)
        if result is None:
            docs = self.retriever.invoke(question, k=self.k, regions=regions, years=years, analysis=analysis,
                                         snapshot=snap)
            passages = [Passage.from_document(d) for d in docs]
            if analysis.missing_regions:
                notes.append(self._missing_note(analysis))
            table = self._comparison(analysis, snap, regions, years)
            if table is not None:
                # Comparisons answer from the figures table in both modes: the conclusion is
                # computed from the values, and no model rewrites the numbers.
                result = self._table_answer(question, analysis, passages, table, mode, snap.keywords)
                yield result.answer
            else:
                result = self._extractive(question, analysis, passages, snap.keywords)
                if mode == "llm" and not result.refused:
                    result = yield from self._llm(question, analysis, passages, result,
                                                  snap.analyzer.place_names())
                else:
                    # Extractive mode, or a question no passage supports: the LLM is not asked to
                    # guess (the extractive coverage is the calibrated evidence check).
                    result.mode = mode
                    yield result.answer
        else:
            yield result.answer
        result.notes = notes + result.notes
        result.id = id
        result.analysis = analysis
        result.latency_ms = (time.perf_counter() - started) * 1000
        yield result

    @staticmethod
    def _validated(question: str) -> str:
        if question is not None and not isinstance(question, str):
            raise QuestionError(f"the question must be text, got {type(question).__name__}")
        # Pasted questions carry terminal colour codes, zero-width and control characters, and
        # web-page spaces (U+00A0, U+3000): spaces stay spaces, the rest goes.
        question = _ANSI_ESCAPE.sub("", question or "")
        question = "".join(" " if ch.isspace() else ch for ch in question
                           if ch.isspace() or unicodedata.category(ch)[0] != "C")
        question = re.sub(r" {2,}", " ", question).strip()
        if not question:
            raise QuestionError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise QuestionError(f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}")
        return question

    # --- answer modes --------------------------------------------------------------------

    def _extractive(self, question: str, analysis: QueryAnalysis, passages: list[Passage],
                    keywords: KeywordIndex) -> AnswerResult:
        answer = ExtractiveAnswerer(keywords).run(analysis, analysis.terms, passages)
        if answer.refused:
            return AnswerResult(question, self._not_found(analysis), True, [], passages, "extractive")
        text, citations = resolve_citations("\n".join(answer.lines), passages)
        return AnswerResult(question, text, False, citations, passages, "extractive")

    def _llm(self, question: str, analysis: QueryAnalysis, passages: list[Passage],
             fallback: AnswerResult, place_names: dict[str, str]) -> Iterator[str]:
        """Stream the model's answer; return the checked result (or the extractive one on failure)."""
        given = self._llm_passages(analysis, passages, fallback)
        best = {s.split("[")[0] for s in fallback.answer.splitlines()}  # the extractive sentences
        excerpts = [excerpt(p, analysis.terms, first=best) for p in given]
        pieces: list[str] = []
        inputs = {"question": question, "passages": excerpts, "language": analysis.language}
        try:
            for piece in stream_within(lambda: self._chain.stream(inputs), self.llm_timeout):
                pieces.append(piece)
                yield piece
        except Exception as exc:  # server down, timeout, model error: the extractive answer stands
            if isinstance(exc, LLMTimeout) and hasattr(self.chat_model, "given_up"):
                self.chat_model.given_up(received_any=bool(pieces))
            if isinstance(exc, ModelServer.Stopped):  # the model process died mid-answer
                fallback.notes.append(MODEL_STOPPED_NOTE)
            else:
                fallback.notes.append(Note("llm_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}"))
            fallback.grounded = True
            return fallback
        raw = "".join(pieces).strip()
        if _LLM_REFUSAL.search(raw) and not MARKER.search(raw):
            # The extractive check found a supporting sentence, so a refusal here is the small
            # model missing it: the cited sentences answer instead.
            fallback.notes.append(Note("model_refused"))
            return fallback
        text, citations = resolve_citations(attribute(raw, [p.text for p in given]), given)
        if not citations:
            fallback.notes.append(Note("no_support"))
            return fallback
        if analysis.asks_figure and not all(shares_a_figure(text, line) for line in fallback.answer.splitlines()):
            # The model's figures differ from the best-matching sentences (for comparisons: from
            # some place's): a wrong number is worse than a plain answer.
            fallback.grounded = False
            stated = ", ".join(f.text for f in figures(text)) or "none"
            fallback.notes.append(Note("figures_differ", figures=stated))
            return fallback
        left_out = [c.region for c in fallback.citations if c.region not in {x.region for x in citations}]
        if analysis.scope in ("several", "all") and left_out:
            # A comparison or list that drops a place the reports cover misleads by omission.
            fallback.notes.append(Note("left_out_places", places="、".join(dict.fromkeys(left_out))))
            return fallback
        dropped = self._left_out_figures(text, fallback, analysis)
        if dropped:
            fallback.notes.append(Note("left_out_figures", figures=", ".join(dropped)))
            return fallback
        by_chunk = {p.id: p for p in given}
        report = check_grounding(text, {c.n: c.text for c in citations}, {c.n: c.region for c in citations},
                                 place_names)
        if not report.grounded:
            kept, kept_citations = resolve_citations(report.answer, [by_chunk[c.chunk_id] for c in citations])
            places_kept = {c.region for c in kept_citations}
            # What is left must still answer the whole question (removing "51,000 disputes"
            # must not leave only the success rate).
            if (not kept_citations or not kept.strip() or any(c.region not in places_kept for c in fallback.citations)
                    or self._left_out_figures(kept, fallback, analysis)):
                fallback.grounded = False
                fallback.notes.append(Note("not_grounded", figures=", ".join(report.ungrounded)))
                return fallback
            result = AnswerResult(question, kept, False, kept_citations, given, "llm", grounded=False)
            result.notes.append(Note("removed_sentences", figures=", ".join(report.ungrounded)))
            return result
        return AnswerResult(question, text, False, citations, given, "llm")

    def _left_out_figures(self, text: str, extractive: AnswerResult, analysis: QueryAnalysis) -> list[str]:
        """Figures the question asks about that the extractive answer gives and ``text`` does not."""
        if analysis.scope in ("several", "all"):
            return self._dropped_figures(text, extractive, analysis)
        return self._unanswered_figures(text, extractive, analysis) if analysis.asks_figure else []

    @staticmethod
    def _asked_figures(extractive: AnswerResult, analysis: QueryAnalysis) -> list:
        """The figures of the extractive lines that sit in a clause naming a question term."""
        terms = [t for t in analysis.terms if len(t) > 1 and t not in LIGHT_VERBS]
        return [f for line in extractive.answer.splitlines() for f in extract_figures(MARKER.sub("", line))
                if any(t in matching_form(f.clause) for t in terms)]

    @staticmethod
    def _not_stated(asked: list, stated: list[StatedFigure]) -> list[str]:
        """Those of ``asked`` (report figures) whose value no figure of ``stated`` gives."""
        return [f.text for f in asked
                if not any(is_grounded(s, [StatedFigure(f.text, f.value, f.unit == "%")]) for s in stated)]

    def _dropped_figures(self, text: str, extractive: AnswerResult, analysis: QueryAnalysis) -> list[str]:
        """Figures of the extractive lines that sit in a clause naming a question term but that the
        model's answer does not state (人民调解成功情况: 调解成功率100% dropped for 943件)."""
        return self._not_stated(self._asked_figures(extractive, analysis), figures(text))

    def _unanswered_figures(self, text: str, extractive: AnswerResult, analysis: QueryAnalysis) -> list[str]:
        """For a question about one place: figures asked for that the model's answer leaves out.

        Grounding checks that every figure the model states is in its passage; it cannot see a
        figure asked for and not given (the success rate given, the number of disputes not).
        When the question asks for more figures (多少 twice; how many … and what rate) than the
        model states, the extractive sentences' figures in clauses naming a question term that
        the model left out are returned (none: the answer stands).
        """
        stated = figures(text)
        asks = len(_ASKS.findall(analysis.normalised))
        if not stated or asks <= len({(s.value, s.percent) for s in stated}):
            return []
        relevant = self._asked_figures(extractive, analysis)
        if len(relevant) < asks:
            return []  # the sentences do not hold that many figures either
        return self._not_stated(relevant, stated)

    def _llm_passages(self, analysis: QueryAnalysis, passages: list[Passage], extractive: AnswerResult,
                      limit: int = LLM_PASSAGES) -> list[Passage]:
        """The passages the model sees: those the extractive answer cites first, then the best others."""
        cited = [c.chunk_id for c in extractive.citations]
        first = [p for p in passages if p.id in cited]
        rest = [p for p in passages if p.id not in cited]
        if analysis.scope in ("several", "all"):
            return first or rest[:limit]  # one passage per place: the ones the lines came from
        # The supporting passages and one more for context: every passage costs prompt time.
        return (first + rest)[:min(limit, len(first) + 1)]

    # --- comparisons ---------------------------------------------------------------------

    def _comparison(self, analysis: QueryAnalysis, snap, regions: list[str] | None,
                    years: list[int] | None) -> ComparisonTable | None:
        """The figures table for a question comparing a figure across reports, else None."""
        places = resolve_regions(regions) if regions else list(analysis.regions)
        if not analysis.asks_figure or not (analysis.scope in ("several", "all") or len(places) > 1):
            return None
        wanted_years = [int(y) for y in years] if years else list(analysis.filter_years)
        reports = [r for r in snap.reports if r.region and (not places or r.region in places)
                   and (not wanted_years or r.year in wanted_years)]
        order = {place: i for i, place in enumerate(places)}
        reports.sort(key=lambda r: (order.get(r.region, len(order)), r.region, r.year or 0))
        return ComparisonBuilder(self.retriever.index, snap.keywords).run(analysis, reports)

    def _table_answer(self, question: str, analysis: QueryAnalysis, passages: list[Passage],
                      table: ComparisonTable, mode: str, keywords: KeywordIndex) -> AnswerResult:
        """One line per report (its figure's clause, cited, or 未提及), then the computed conclusion.

        A report without the figure gets its best extractive sentence when one passes the bar
        (the question may be answered in words: 废止了哪些规章), else "未提及".
        """
        by_id = {p.id: p for p in passages}
        wanted = [cid for r in table.found for cid in [r.chunk_id] + [c for _, c in r.others]]
        missing = [cid for cid in dict.fromkeys(wanted) if cid not in by_id]
        if missing:  # the figure's passage was not among the retrieved ones: fetch it
            got = self.retriever.index.collection.get(ids=missing, include=["documents", "metadatas"])
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                by_id[cid] = Passage.from_document(Document(page_content=text, metadata=meta, id=cid))
        pool = list(dict.fromkeys([*wanted, *(p.id for p in passages)]))
        pool = [by_id[c] for c in pool if c in by_id]
        words = ExtractiveAnswerer(keywords).run(analysis, analysis.terms, pool)
        said = {s.region: s for s in words.sentences} if not words.refused else {}

        # Each row's text with the chunk ids it cites; numbers follow the order of first use.
        en = analysis.language == "en"
        sep = ": " if en else "："
        row_parts: list[list[tuple[str, str]]] = []
        for row in table.rows:
            if row.found:
                parts = [(row.clause, row.chunk_id)] + [(f.clause, c) for f, c in row.others]
            elif row.region in said:
                sentence = said[row.region]
                parts = [(sentence.text, pool[sentence.passage - 1].id)]
            else:
                parts = []
            row_parts.append(parts)
            if not row.found and parts:
                row.worded = True
        order = list(dict.fromkeys(c for parts in row_parts for _, c in parts if c in by_id))
        given = [by_id[c] for c in order] + [p for p in pool if p.id not in order]
        number = {c: i + 1 for i, c in enumerate(order)}
        lines = []
        for row, parts in zip(table.rows, row_parts):
            row.citation = number.get(row.chunk_id) if row.found else None
            if parts:
                cited = "；".join(f"{text.rstrip('。；;，,')}[{number[c]}]" for text, c in parts)
                lines.append(f"{row.label}{sep}{cited}")
            else:
                lines.append(f"{row.label}{sep}" + ("the report does not give this figure." if en
                                                    else f"报告中未提及{table.metric}的数字。"))
        table.conclusion = conclude(table, analysis.language)
        lines.append(("Conclusion: " if en else "结论：") + table.conclusion)
        text, citations = resolve_citations("\n".join(lines), given)
        result = AnswerResult(question, text, False, citations, given, mode, table=table.to_dict())
        result.notes.append(Note("comparison_table"))
        return result

    # --- refusals ------------------------------------------------------------------------

    def _refuse_unindexed(self, analysis: QueryAnalysis, analyzer: QueryAnalyzer, mode: str,
                          regions: list[str] | None, years: list[int] | None) -> AnswerResult | None:
        """A refusal without retrieval when the question names only places or years not indexed."""
        if regions or years or not analysis.refusal_reason:
            return None
        en = analysis.language == "en"
        available = analyzer.describe_reports(analysis.language)
        if analysis.refusal_reason == "region":
            places = _join(analysis.missing_regions, analysis.language)
            text = (f"The index has no report for {places}, so this cannot be answered. Reports available: {available}."
                    if en else f"库中没有{places}的报告，无法回答。现有报告：{available}。")
        else:
            places = _join(analysis.regions, analysis.language) if analysis.regions else ""
            year_list = _join([str(y) for y in analysis.missing_years], analysis.language)
            text = (f"The index has no {year_list} report{' for ' + places if places else ''}, so this cannot be "
                    f"answered. Reports available: {available}." if en
                    else f"库中没有{places}{year_list}年的报告，无法回答。现有报告：{available}。")
        return AnswerResult(analysis.question, text, True, [], [], mode)

    def _missing_note(self, analysis: QueryAnalysis) -> Note:
        places = _join(analysis.missing_regions, analysis.language)
        years = f"（{_join([str(y) for y in analysis.filter_years], 'zh')}年）" if analysis.filter_years else ""
        return Note("missing_places", places=places, years=years)

    @staticmethod
    def _not_found(analysis: QueryAnalysis) -> str:
        if analysis.language == "en":
            return "The reports do not mention this (no passage in the indexed reports answers the question)."
        return "报告中未提及该问题所问的内容（检索到的报告段落均不包含答案）。"
