"""The LLM answer path: the model writes from the passages the extractive answer rests on,
and its answer stands only if it passes every check (``llm_checks``, then grounding).

Whatever goes wrong (the model process down or restarted, a timeout, a refusal, a figure not
in its passage) the extractive answer stands, with a note saying why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterator

from langchain_core.language_models import BaseChatModel

from rag.answer import llm_checks
from rag.answer.choice import ASK as CHOICE_ASK
from rag.answer.choice import SentenceChoice
from rag.answer.citations import resolve_citations
from rag.answer.generate import EXCERPT_CHARS, build_answer_chain, excerpt
from rag.answer.grounding import attribute, check_grounding
from rag.answer.notes import Note
from rag.answer.summary import summary_points
from rag.models.chat import LLMTimeout, stream_within
from rag.models.server import ModelServer
from rag.retrieve.query import QueryAnalysis
from rag.types import AnswerResult, Passage

MODEL_STOPPED_NOTE = Note("model_stopped")
LLM_PASSAGES = 3  # excerpts the model sees: the bundled model reads ~75 prompt tokens/s on 2 cores


@dataclass(frozen=True, kw_only=True)
class ContextBudget:
    """How much of the passages a model reads.

    Args:
        passages: how many passages at most.
        excerpt_chars: how much of each besides the sentences the extractive answer rests on,
            which the model always reads whole (its sentences sharing most terms with the question).
        summary_chars: how much of a section summary's points the model reads to write its
            overview (whole points, in the summary's order, taken from each report in turn).
    """

    passages: int = LLM_PASSAGES
    excerpt_chars: int = EXCERPT_CHARS
    summary_chars: int = 480  # about 330 tokens: 3-4 s of prompt on 2 cores

    @classmethod
    def for_llm(cls, llm: str) -> "ContextBudget":
        """The bundled model reads little on a CPU; a hosted one (``RAG_LLM=openai``) reads more."""
        return cls(passages=6, excerpt_chars=600, summary_chars=2400) if llm == "openai" else cls()


class LLMAnswer:
    """Stream a model's answer and check it against the extractive one.

    Args:
        chat_model: the chat model (the bundled one through its process, or a hosted one).
        timeout: seconds the whole answer may take.
        budget: how much of the passages the model reads (``ContextBudget.for_llm``).
    """

    def __init__(self, chat_model: BaseChatModel, *, timeout: float, budget: ContextBudget | None = None):
        self.chat_model = chat_model
        self.timeout = timeout
        self.budget = budget or ContextBudget()
        self._chain = build_answer_chain(chat_model)

    def stream(self, question: str, analysis: QueryAnalysis, passages: list[Passage],
               fallback: AnswerResult, place_names: dict[str, str]) -> Iterator[str]:
        """Yield the model's text as it comes; return the checked result (or ``fallback``)."""
        given = self.passages_for(analysis, passages, fallback, limit=self.budget.passages)
        best = {s.split("[")[0] for s in fallback.answer.splitlines()}  # the extractive sentences
        excerpts = [excerpt(p, analysis.terms, max_chars=self.budget.excerpt_chars, first=best) for p in given]
        inputs = {"question": question, "passages": excerpts, "language": analysis.language}
        raw = yield from self._generate(inputs, fallback)
        if raw is None:
            fallback.grounded = True
            return fallback
        return self.checked(question, raw, analysis, given, fallback, place_names)

    def _generate(self, inputs: dict, fallback: AnswerResult) -> Iterator[str]:
        """Yield the model's text as it comes; return all of it, or None (with a note on
        ``fallback``) when the model fails."""
        pieces: list[str] = []
        try:
            for piece in stream_within(lambda: self._chain.stream(inputs), self.timeout):
                pieces.append(piece)
                yield piece
        except Exception as exc:  # server down, timeout, model error: the extractive answer stands
            if isinstance(exc, LLMTimeout) and hasattr(self.chat_model, "given_up"):
                self.chat_model.given_up(received_any=bool(pieces))
            if isinstance(exc, ModelServer.Stopped):  # the model process died mid-answer
                fallback.notes.append(MODEL_STOPPED_NOTE)
            else:
                fallback.notes.append(Note("llm_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}"))
            return None
        return "".join(pieces).strip()

    def choose(self, question: str, analysis: QueryAnalysis, passages: list[Passage], refusal: AnswerResult,
               choice: SentenceChoice) -> AnswerResult | None:
        """The sentence the model picks as the answer to a question the extractive check refused
        (``rag.answer.choice``), checked; None when there is nothing to offer or the pick fails.

        The model's words are a decision, not the answer: nothing of them is streamed.
        """
        candidates = choice.candidates(analysis, passages)
        if not candidates:
            return None
        inputs = {"question": CHOICE_ASK[analysis.language].format(question=question),
                  "passages": SentenceChoice.given(candidates, passages), "language": analysis.language}
        generating = self._generate(inputs, refusal)
        try:
            while True:
                next(generating)
        except StopIteration as done:
            raw = done.value
        return choice.checked(question, raw, analysis, passages, candidates)

    def overview(self, question: str, analysis: QueryAnalysis, summary: AnswerResult,
                 place_names: dict[str, str]) -> Iterator[str]:
        """A section summary with a model-written overview above its points.

        The model reads the summary's points (whole, within ``budget.summary_chars``) and sums
        them up in a few cited sentences; the points stay below it, in the report's words. The
        overview stands only if it cites them and every figure in it is in a passage it cites;
        otherwise the points stand alone, with a note saying why.

        Yields the overview as the model writes it, then the points; returns the result.
        """
        language = analysis.language
        label = OVERVIEW_LABELS[language]
        given = overview_passages(summary, self.budget.summary_chars)
        inputs = {"question": _OVERVIEW_ASK[language].format(question=question), "passages": given,
                  "language": language}
        yield label
        raw = yield from self._generate(inputs, summary)
        yield "\n" + summary.answer
        summary.mode = "llm"
        overview, reason = _checked_overview(raw, given, summary, place_names)
        if overview is None:
            summary.notes.append(Note("overview_dropped", reason=reason))
            return summary
        # The summary's numbering is kept (the overview cites only its passages): what was
        # streamed is the answer unless a check changed the overview.
        result = AnswerResult(question=summary.question, answer=f"{label}{overview}\n{summary.answer}",
                              refused=False, citations=summary.citations, contexts=summary.contexts, mode="llm")
        result.notes = summary.notes + [Note("model_overview")]
        return result

    @staticmethod
    def checked(question: str, raw: str, analysis: QueryAnalysis, given: list[Passage],
                fallback: AnswerResult, place_names: dict[str, str]) -> AnswerResult:
        """The model's answer ``raw`` if it passes the checks, else ``fallback`` with the reason."""
        refused = llm_checks.model_refused(raw)
        if refused:
            fallback.notes.append(refused)
            return fallback
        text, citations = resolve_citations(attribute(raw, [p.text for p in given]), given)
        for note in (llm_checks.no_support(citations),
                     llm_checks.figures_differ(text, fallback, analysis),
                     llm_checks.left_out_places(citations, fallback, analysis),
                     llm_checks.left_out_figures(text, fallback, analysis),
                     llm_checks.left_out_names(text, fallback, analysis)):
            if note is not None:
                if note.code == "figures_differ":
                    fallback.grounded = False
                fallback.notes.append(note)
                return fallback
        return _grounded(question, text, citations, analysis, given, fallback, place_names)

    @staticmethod
    def passages_for(analysis: QueryAnalysis, passages: list[Passage], extractive: AnswerResult,
                     limit: int = LLM_PASSAGES) -> list[Passage]:
        """The passages the model sees: those the extractive answer cites first, then the best others."""
        cited = [c.chunk_id for c in extractive.citations]
        first = [p for p in passages if p.id in cited]
        rest = [p for p in passages if p.id not in cited]
        if analysis.scope in ("several", "all"):
            return first or rest[:limit]  # one passage per place: the ones the lines came from
        # The supporting passages and one more for context: every passage costs prompt time.
        return (first + rest)[:min(limit, len(first) + 1)]


# --- a section summary's overview, written by the model ---------------------------------------

OVERVIEW_LABELS = {"zh": "概述：", "en": "Overview: "}
# The summary's ask goes in the question, not in a prompt of its own: the answer prompt's fixed
# part is what the bundled model's process has already read (``fixed_prompt_messages``).
_OVERVIEW_ASK = {
    "zh": "{question}\n（请根据以上要点，用两三句话概括回答，每句后标注来源编号；不要增加要点中没有的内容。）",
    "en": "{question}\n(Answer in two or three sentences that sum up the points above, each followed by "
          "its source number; add nothing the points do not say.)",
}
_ANY_MARKER = re.compile(r"\[(\d+)\]")
_LIST_NUMBER = re.compile(r"(?m)^\s*(?:\d{1,2}[.、)）]|[-*•])\s*")
_TRAILING_SOURCES = re.compile(r"\s*(?:来源|sources?)\s*[:：]\s*(?:\[\d+\]\s*)*$", re.IGNORECASE)


def _prose(raw: str) -> str:
    """The model's overview as one paragraph: no list numbers, no closing "来源：[4]" line (the
    points below carry their sources)."""
    text = _LIST_NUMBER.sub("", raw)
    text = _TRAILING_SOURCES.sub("", text)
    return re.sub(r"\s*\n\s*", " ", text).strip()


def overview_passages(summary: AnswerResult, max_chars: int) -> list[Passage]:
    """The summary's points as the model reads them.

    One passage per passage the summary cites, numbered as the summary numbers them, holding
    the whole points that cite it. Points are taken from each report in turn (the first point
    of every report, then the second…) until ``max_chars``; at least one.
    """
    points = summary_points(summary.answer)
    order = sorted(range(len(points)), key=lambda i: (sum(1 for j in range(i) if points[j][0] == points[i][0]), i))
    chosen, used = set(), 0
    for i in order:
        if chosen and used + len(points[i][1]) > max_chars:
            break
        chosen.add(i)
        used += len(points[i][1])
    texts: dict[int, list[str]] = {}
    for i in sorted(chosen):
        texts.setdefault(points[i][2][0], []).append(points[i][1])
    return [replace(p, text="；".join(texts.get(n, [])) or "（略）")
            for n, p in enumerate(summary.contexts, start=1)]


def _checked_overview(raw: str | None, given: list[Passage], summary: AnswerResult,
                      place_names: dict[str, str]) -> tuple[str | None, str]:
    """The overview with its markers checked, or None and the reason it cannot stand."""
    if raw is None:
        return None, "model failed"
    if llm_checks.model_refused(raw):
        return None, "the model refused"
    text = attribute(_prose(raw), [p.text for p in given])
    text = _ANY_MARKER.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= len(given) else "", text)
    if not _ANY_MARKER.search(text):
        return None, "no citations"
    contexts = summary.contexts
    cited = {int(n) for n in _ANY_MARKER.findall(text)}
    report = check_grounding(text, {n: contexts[n - 1].text for n in cited},
                             {n: contexts[n - 1].region for n in cited}, place_names)
    if not report.grounded:
        text = report.answer.strip()
        if not _ANY_MARKER.search(text):
            return None, f"figures not in the cited passages: {', '.join(report.ungrounded)}"
    return text, ""


def _grounded(question: str, text: str, citations, analysis: QueryAnalysis, given: list[Passage],
              fallback: AnswerResult, place_names: dict[str, str]) -> AnswerResult:
    """The answer with sentences whose figures are not in their passages removed (or ``fallback``)."""
    by_chunk = {p.id: p for p in given}
    report = check_grounding(text, {c.n: c.text for c in citations}, {c.n: c.region for c in citations},
                             place_names)
    if report.grounded:
        return AnswerResult(question=question, answer=text, refused=False,
                            citations=citations, contexts=given, mode="llm")
    kept, kept_citations = resolve_citations(report.answer, [by_chunk[c.chunk_id] for c in citations])
    places_kept = {c.region for c in kept_citations}
    # What is left must still answer the whole question (removing "51,000 disputes" must not
    # leave only the success rate).
    if (not kept_citations or not kept.strip() or any(c.region not in places_kept for c in fallback.citations)
            or llm_checks.unstated_asked_figures(kept, fallback, analysis)):
        fallback.grounded = False
        fallback.notes.append(Note("not_grounded", figures=", ".join(report.ungrounded)))
        return fallback
    result = AnswerResult(question=question, answer=kept, refused=False,
                          citations=kept_citations, contexts=given, mode="llm", grounded=False)
    result.notes.append(Note("removed_sentences", figures=", ".join(report.ungrounded)))
    return result
