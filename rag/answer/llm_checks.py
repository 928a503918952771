"""The checks a model's answer must pass before it replaces the extractive one.

Each check is one function that returns a ``Note`` saying why the model's answer is set aside
(the extractive answer then stands), or None when the answer passes. ``LLMAnswer`` runs them in
order; grounding (every figure in its cited passage) comes last and may instead remove sentences.
"""

from __future__ import annotations

import re

from rag.answer.notes import Note
from rag.answer.refusals import LLM_REFUSAL
from rag.answer.extractive import LIGHT_VERBS
from rag.answer.grounding import shares_a_figure
from rag.retrieve.query import QueryAnalysis
from rag.text.figures import Figure, extract_figures, same_value, stated_figures
from rag.text.lists import asks_names, quoted_names
from rag.text.markers import MARKER
from rag.text.normalize import matching_form
from rag.types import AnswerResult, Citation

# What a question asks for: each 多少 / 几X / how many / how much / what … rate is one figure.
_ASKS = re.compile(r"多少|几(?=[件个次人项家起名场所万条份支批])|\bhow (?:many|much)\b"
                   r"|\bwhat\b[^?,.;]*?\b(?:rate|percentage|share|proportion)\b")

_EACH = re.compile(r"(?:各|分别)(?:是|为|有|少了|多了|增长了?|下降了?)?(?:多少|几)|\beach\b|\brespectively\b")


def model_refused(raw: str) -> Note | None:
    """The model says the passages do not hold the answer (and cites nothing).

    The extractive check found a supporting sentence, so a refusal is the small model missing
    it: the cited sentences answer instead.
    """
    return Note("model_refused") if LLM_REFUSAL.search(raw) and not MARKER.search(raw) else None


def no_support(citations: list[Citation]) -> Note | None:
    """The model cites no passage, and attribution found none for its sentences."""
    return None if citations else Note("no_support")


def figures_differ(text: str, extractive: AnswerResult, analysis: QueryAnalysis) -> Note | None:
    """A figure question whose answer shares no figure with some of the best-matching sentences.

    For comparisons, with some place's sentence: a wrong number is worse than a plain answer.
    """
    if analysis.asks_figure and not all(shares_a_figure(text, line) for line in extractive.answer.splitlines()):
        return Note("figures_differ", figures=", ".join(f.text for f in stated_figures(text)) or "none")
    return None


def left_out_places(citations: list[Citation], extractive: AnswerResult, analysis: QueryAnalysis) -> Note | None:
    """A comparison or list that drops a place the reports cover misleads by omission."""
    cited = {c.region for c in citations}
    left_out = [c.region for c in extractive.citations if c.region not in cited]
    if analysis.scope in ("several", "all") and left_out:
        return Note("left_out_places", places="、".join(dict.fromkeys(left_out)))
    return None


def left_out_figures(text: str, extractive: AnswerResult, analysis: QueryAnalysis) -> Note | None:
    """Figures the question asks about that the extractive answer gives and ``text`` does not."""
    dropped = unstated_asked_figures(text, extractive, analysis)
    return Note("left_out_figures", figures=", ".join(dropped)) if dropped else None


def unstated_asked_figures(text: str, extractive: AnswerResult, analysis: QueryAnalysis) -> list[str]:
    """The figures ``left_out_figures`` is about, as the report writes them."""
    if analysis.scope in ("several", "all"):
        # 人民调解成功情况: 调解成功率100% dropped for 943件.
        return _not_stated(_asked_figures(extractive, analysis), stated_figures(text))
    return _unanswered_figures(text, extractive, analysis) if analysis.asks_figure else []


def left_out_names(text: str, extractive: AnswerResult, analysis: QueryAnalysis) -> Note | None:
    """A question asking which ones (哪些, examples) whose answer drops names the extractive
    sentences give (“企业开办”“投资建设”…): a list cut short misleads as a wrong figure does."""
    if not asks_names(analysis.normalised):
        return None
    given = matching_form(text)
    names = quoted_names(MARKER.sub("", extractive.answer))
    dropped = [n for n in names if matching_form(n) not in given]
    return Note("left_out_names", names="、".join(dropped[:6])) if dropped else None


def _asked_figures(extractive: AnswerResult, analysis: QueryAnalysis) -> list[Figure]:
    """The figures of the extractive lines that sit in a clause naming a question term."""
    terms = [t for t in analysis.terms if len(t) > 1 and t not in LIGHT_VERBS]
    return [f for line in extractive.answer.splitlines() for f in extract_figures(MARKER.sub("", line))
            if any(t in matching_form(f.clause) for t in terms)]


def _not_stated(asked: list[Figure], stated: list[Figure]) -> list[str]:
    """Those of ``asked`` (report figures) whose value no figure of ``stated`` gives."""
    return [f.text for f in asked if not any(same_value(s, [f]) for s in stated)]


def _unanswered_figures(text: str, extractive: AnswerResult, analysis: QueryAnalysis) -> list[str]:
    """For a question about one place: figures asked for that the model's answer leaves out.

    Grounding checks that every figure the model states is in its passage; it cannot see a
    figure asked for and not given (the success rate given, the number of disputes not).
    When the question asks for more figures (多少 twice; how many … and what rate) than the
    model states, the extractive sentences' figures in clauses naming a question term that
    the model left out are returned (none: the answer stands).
    """
    stated = stated_figures(text)
    asks = len(_ASKS.findall(analysis.normalised))
    if asks == 1 and _EACH.search(analysis.normalised):
        asks = 2  # "刑事和治安立案数各少了多少": one 多少, two figures
    if not stated or asks <= len({(s.value, s.percent) for s in stated}):
        return []
    relevant = _asked_figures(extractive, analysis)
    if len(relevant) < asks:
        return []  # the sentences do not hold that many figures either
    return _not_stated(relevant, stated)
