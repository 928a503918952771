"""The LLM answer path: the model writes from the passages the extractive answer rests on,
and its answer stands only if it passes every check (``llm_checks``, then grounding).

Whatever goes wrong (the model process down or restarted, a timeout, a refusal, a figure not
in its passage) the extractive answer stands, with a note saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from langchain_core.language_models import BaseChatModel

from rag.answer import llm_checks
from rag.answer.citations import resolve_citations
from rag.answer.generate import EXCERPT_CHARS, build_answer_chain, excerpt
from rag.answer.grounding import attribute, check_grounding
from rag.answer.notes import Note
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
        excerpt_chars: how much of each (its sentences sharing most terms with the question).
    """

    passages: int = LLM_PASSAGES
    excerpt_chars: int = EXCERPT_CHARS

    @classmethod
    def for_llm(cls, llm: str) -> "ContextBudget":
        """The bundled model reads little on a CPU; a hosted one (``RAG_LLM=openai``) reads more."""
        return cls(passages=6, excerpt_chars=600) if llm == "openai" else cls()


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
        pieces: list[str] = []
        inputs = {"question": question, "passages": excerpts, "language": analysis.language}
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
            fallback.grounded = True
            return fallback
        return self.checked(question, "".join(pieces).strip(), analysis, given, fallback, place_names)

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
                     llm_checks.left_out_figures(text, fallback, analysis)):
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
