"""The model picks which sentence answers, when the question's words are not the report's.

"太原市2024年通过人民网收到群众的网上留言多少件？" is answered by "…受理市长信箱留言13367件、
人民网留言3360件…": the right sentence holds half of the question's terms, below the coverage an
extractive answer needs, so word overlap alone refuses it. Meaning decides it, and in LLM mode
the model is asked for that one short decision: which of a few candidate sentences (those
holding a figure and the most of the question's terms) gives the figure asked, or none.

The decision is checked, never trusted: the model must cite one candidate and every figure it
writes must be in that sentence; the sentence must pass the checks a one-figure answer is held
to (the unit, case stage, change and rate asked). The answer is the sentence itself, cited.
Extractive mode never takes this path: without the model, the coverage check is the evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from rag.answer.arithmetic import one_stated_total
from rag.answer.citations import resolve_citations
from rag.answer.extractive import ExtractiveAnswerer, candidate_sentences, holds_numbers, stated_numbers
from rag.answer.notes import Note
from rag.answer.refusals import LLM_REFUSAL, answers_as_asked, asked_unit
from rag.index.keywords import KeywordIndex
from rag.retrieve.query import QueryAnalysis
from rag.text.figures import extract_figures, same_value
from rag.text.lexicons import LEXICONS
from rag.text.normalize import matching_form
from rag.types import AnswerResult, Passage

# How much of the question's term weight a candidate needs, and how many the model reads
# (rag/text/data/thresholds.toml [choice]).
MIN_COVERAGE = LEXICONS.threshold("choice", "min_coverage")
MAX_CANDIDATES = int(LEXICONS.threshold("choice", "candidates"))

# The ask goes in the question, not a prompt of its own: the answer prompt's fixed part is
# what the bundled model's process has already read (``fixed_prompt_messages``).
ASK = {
    "zh": "{question}\n（以上每个段落是报告中的一句原文。如果其中一句直接给出了问题所问的那一项数字（同一事项、同一口径），"
          "照原文写出这个数字和单位，后面标注该段落的编号；如果没有一句给出，只回答“报告中未提及”。）",
    "en": "{question}\n(Each passage above is one sentence of a report. If one of them states the very figure the "
          "question asks for, write that figure and its unit as the sentence gives them, followed by the passage "
          "number; if none states it, answer only \"not mentioned\".)",
}
_MARKERS = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Candidate:
    """A sentence the model may pick: its text and the retrieved passage it comes from."""

    text: str
    passage: int  # 1-based, among the retrieved passages
    coverage: float


class SentenceChoice:
    """Offer the model the best few figure sentences of a refused question; check its pick.

    Args:
        keywords: the BM25 index the question's terms are weighed with.

    Example:
        >>> choice = SentenceChoice(keywords)
        >>> cands = choice.candidates(analysis, passages)
        >>> choice.checked(question, "3360件[1]", analysis, passages, cands).answer
        '…受理市长信箱留言13367件、人民网留言3360件…[1]'
    """

    def __init__(self, keywords: KeywordIndex, *, min_coverage: float = MIN_COVERAGE,
                 max_candidates: int = MAX_CANDIDATES):
        self.answerer = ExtractiveAnswerer(keywords)
        self.min_coverage = min_coverage
        self.max_candidates = max_candidates

    def candidates(self, analysis: QueryAnalysis, passages: list[Passage]) -> list[Candidate]:
        """The sentences the model chooses among; empty when the question is not a one-figure
        question of one report (several places, arithmetic, several asks have their own paths)."""
        # "一共多少人次" asks one stated total, not a sum to compute: it is this path's too.
        if (not analysis.asks_figure or analysis.scope in ("several", "all")
                or (analysis.operation and not one_stated_total(analysis))
                or analysis.asks or analysis.instance or analysis.language != "zh"):
            # English questions name no measure word to check the pick's unit against ("how many
            # mediators" is answered by 调解纠纷5万余件 as readily as by a count of people).
            return []
        weights = self.answerer.weights(analysis.terms)
        numbers = stated_numbers(analysis)
        found: dict[str, Candidate] = {}
        for number, passage in enumerate(passages, start=1):
            for text in candidate_sentences(passage.text):
                form = matching_form(text)
                if not extract_figures(text) or not holds_numbers(form, numbers):
                    continue  # no figure, or not the figure the question states
                coverage = self.answerer.coverage(form, weights, analysis.alternatives)[0]
                if coverage >= self.min_coverage and text not in found:
                    found[text] = Candidate(text=text, passage=number, coverage=coverage)
        ranked = sorted(found.values(), key=lambda c: (-c.coverage, c.passage))
        return ranked[:self.max_candidates]

    @staticmethod
    def given(candidates: list[Candidate], passages: list[Passage]) -> list[Passage]:
        """The candidates as the model reads them: one numbered passage each, holding the sentence."""
        return [replace(passages[c.passage - 1], text=c.text) for c in candidates]

    def checked(self, question: str, raw: str | None, analysis: QueryAnalysis, passages: list[Passage],
                candidates: list[Candidate]) -> AnswerResult | None:
        """The picked sentence as a cited answer, or None when the pick does not hold up.

        Args:
            raw: what the model wrote (None: it failed).
            passages: the retrieved passages (the answer cites the one the sentence is in).
            candidates: what the model was offered, numbered 1.. in this order.
        """
        if not raw or LLM_REFUSAL.search(raw):
            return None
        written = extract_figures(_MARKERS.sub(" ", raw))
        if not written:
            return None  # no figure: no pick
        cited = {int(n) for n in _MARKERS.findall(raw)}
        if cited:
            picked = [n for n in cited if 1 <= n <= len(candidates)] if len(cited) == 1 else []
        else:  # the small model often leaves the number out: the one sentence stating its figures
            picked = [n for n, c in enumerate(candidates, start=1)
                      if all(same_value(f, extract_figures(c.text)) for f in written)]
        if len(picked) != 1:
            return None  # none, several, or one it was not offered: not one sentence's figure
        candidate = candidates[picked[0] - 1]
        if not all(same_value(f, extract_figures(candidate.text)) for f in written):
            return None  # the figure the model read is not the sentence's
        unit = asked_unit(analysis)
        if unit is not None and not any(f.unit in LEXICONS.asked_units[unit] or f.unit.endswith(unit)
                                        for f in written if not f.percent):
            return None  # 多少件 answered with 23个: the model's figure must be in a unit that answers it
        line = f"{candidate.text}[{candidate.passage}]"
        if not answers_as_asked(question, analysis, [line], mode="llm"):
            return None
        text, citations = resolve_citations(line, passages)
        result = AnswerResult(question=question, answer=text, refused=False, citations=citations,
                              contexts=passages, mode="llm")
        result.notes.append(Note("model_chose", offered=str(len(candidates))))
        return result
