"""Refusals and the question's own checks: what the answerer says when it cannot answer.

Wording lives here, in both languages: a refusal without retrieval when the question names
only places or years that are not indexed, the refusal when no passage supports an answer, the
note for named places that are missing, and the check of the question itself. The precise
refusals live here too: the sentences found answer another question than the one asked (a
count in another measure, a figure of another stage, a count where a change or a rate is
asked), so the answer says what is not given and shows what is.
"""

from __future__ import annotations

import re
import unicodedata

from rag.answer.notes import Note
from rag.retrieve.query import QueryAnalysis, QueryAnalyzer
from rag.text.figures import extract_figures
from rag.text.lexicons import LEXICONS
from rag.types import AnswerResult, Mode

MAX_QUESTION_CHARS = 1000
_ANSI_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")
# What a model writes when the passages do not hold the answer.
LLM_REFUSAL = re.compile(r"未提及|没有提及|未提到|没有提到|无法回答|未找到|没有找到|不包含|没有相关|并未|"
                         r"not (mentioned|stated|provided|given)|(do|does|did) not (mention|say|state|contain|include|provide|give)|no information",
                         re.IGNORECASE)


class QuestionError(ValueError):
    """The question cannot be asked as given (empty, too long)."""


def clean_question(question: str) -> str:
    """The question as the pipeline reads it: pasted debris removed, checked.

    Raises:
        QuestionError: it is not text, is empty, or is longer than ``MAX_QUESTION_CHARS``.
    """
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


def join_names(names: list[str], language: str) -> str:
    return ", ".join(names) if language == "en" else "、".join(names)


def refuse_unindexed(analysis: QueryAnalysis, analyzer: QueryAnalyzer, mode: str,
                     regions: list[str] | None, years: list[int] | None) -> AnswerResult | None:
    """A refusal without retrieval when the question names only places or years not indexed."""
    if regions or years or not analysis.refusal_reason:
        return None
    en = analysis.language == "en"
    available = analyzer.describe_reports(analysis.language)
    if analysis.refusal_reason == "region":
        places = join_names(analysis.missing_regions, analysis.language)
        text = (f"The index has no report for {places}, so this cannot be answered. Reports available: {available}."
                if en else f"库中没有{places}的报告，无法回答。现有报告：{available}。")
    else:
        places = join_names(analysis.regions, analysis.language) if analysis.regions else ""
        year_list = join_names([str(y) for y in analysis.missing_years], analysis.language)
        text = (f"The index has no {year_list} report{' for ' + places if places else ''}, so this cannot be "
                f"answered. Reports available: {available}." if en
                else f"库中没有{places}{year_list}年的报告，无法回答。现有报告：{available}。")
    return AnswerResult(question=analysis.question, answer=text, refused=True,
                        citations=[], contexts=[], mode=mode)


def missing_places_note(analysis: QueryAnalysis) -> Note:
    """The note for places the question names that no indexed report covers."""
    places = join_names(analysis.missing_regions, analysis.language)
    years = f"（{join_names([str(y) for y in analysis.filter_years], 'zh')}年）" if analysis.filter_years else ""
    return Note("missing_places", places=places, years=years)


def not_found(language: str) -> str:
    """The refusal when no retrieved passage answers the question."""
    if language == "en":
        return "The reports do not mention this (no passage in the indexed reports answers the question)."
    return "报告中未提及该问题所问的内容（检索到的报告段落均不包含答案）。"


# --- a count of another measure is not the answer -------------------------------------------

_MARKER = re.compile(r"\[\d+\]")
_ASKED_UNIT = re.compile("(?:多少|几)(" + "|".join(sorted(LEXICONS.asked_units, key=len, reverse=True)) + ")")


def asked_unit(analysis: QueryAnalysis) -> str | None:
    """The one measure word the question asks a count in ("多少人次" -> 人次), or None (none, or
    several: "多少家？多少次？" asks two counts, each answered by its own sentence)."""
    units = {m.group(1) for m in _ASKED_UNIT.finditer(analysis.normalised)}
    return units.pop() if len(units) == 1 else None


def unit_not_given(analysis: QueryAnalysis, result: AnswerResult) -> str | None:
    """The asked measure word when the answer's sentences state counts, none in a unit that
    answers it (``units.toml``): the answer would offer a number of something else."""
    if result.refused or not analysis.asks_figure or analysis.operation:
        return None
    unit = asked_unit(analysis)
    if unit is None:
        return None
    accepted = set(LEXICONS.asked_units[unit]) | {"个"}
    figures = [f for line in result.answer.splitlines() for f in extract_figures(_MARKER.sub("", line))]
    counts = [f for f in figures if not f.percent and f.unit != "元"]
    if not counts or any(f.unit in accepted or f.unit.endswith(unit) for f in counts):
        return None
    return unit


def unit_refusal(question: str, analysis: QueryAnalysis, result: AnswerResult, unit: str, mode: str) -> AnswerResult:
    """Say the report gives no such count, and what it does state (never that figure as the answer)."""
    en = analysis.language == "en"
    lead = (f"The reports do not give this as a number of {unit}; what they state:" if en
            else f"报告中未提及以“{unit}”计的该项数字；报告所载为：")
    refusal = AnswerResult(question=question, answer=f"{lead}\n{result.answer}", refused=True,
                           citations=result.citations, contexts=result.contexts, mode=mode)
    refusal.notes.append(Note("unit_not_given", unit=unit))
    return refusal


# --- a figure of another stage is not the answer --------------------------------------------

_ASKS = re.compile(r"多少|几")


def asked_stage(analysis: QueryAnalysis) -> str | None:
    """The stage (``stages.toml``) the question asks a figure of: the one named last before its
    only 多少/几 ("新收的案件审结了多少件" -> settled); None without one, or with several asks."""
    asks = list(_ASKS.finditer(analysis.normalised))
    if len(asks) != 1:
        return None
    head = analysis.normalised[:asks[0].start()]
    found = [(head.rfind(word), stage) for stage, words in LEXICONS.stages.items() for word in words if word in head]
    return max(found)[1] if found else None


def stage_not_given(analysis: QueryAnalysis, result: AnswerResult) -> tuple[str, str] | None:
    """(the stage word asked, the stage word stated) when the answer's sentences name only another
    stage than the one asked (办结 asked, 受理 stated); None when they name the asked one, or none."""
    if result.refused or not analysis.asks_figure or analysis.operation:
        return None
    stage = asked_stage(analysis)
    if stage is None:
        return None
    from rag.text.normalize import matching_form

    said = matching_form(_MARKER.sub("", result.answer))
    if any(word in said for word in LEXICONS.stages[stage]):
        return None
    head = analysis.normalised[:_ASKS.search(analysis.normalised).start()]
    asked = max((head.rfind(w), len(w), w) for w in LEXICONS.stages[stage] if w in head)[2]
    stated = [w for other, words in LEXICONS.stages.items() if other != stage for w in words if w in said]
    return (asked, stated[0]) if stated else None


def stage_refusal(question: str, analysis: QueryAnalysis, result: AnswerResult, asked: str, stated: str,
                  mode: str) -> AnswerResult:
    """Say the report gives no figure of the stage asked, and what it does state."""
    en = analysis.language == "en"
    lead = (f"The reports do not give the number {asked} (they state the number {stated}); what they state:" if en
            else f"报告中未提及{asked}的数字（只给出{stated}的数字）；报告所载为：")
    refusal = AnswerResult(question=question, answer=f"{lead}\n{result.answer}", refused=True,
                           citations=result.citations, contexts=result.contexts, mode=mode)
    refusal.notes.append(Note("stage_not_given", asked=asked, stated=stated))
    return refusal


# --- a change the report does not state -----------------------------------------------------

# A question asking how a figure changed (同比增长多少, 比上年下降了多少, growth rate). Narrower
# than compare's _CHANGE_ASKED, which also takes 下降/减少 as a metric word ("信访总量下降"): here
# the question must ask for the change itself.
_ASKS_FOR_CHANGE = re.compile(r"同比|环比|比上年|较上年|比去年|较去年|比前一年|跟前一年比|增幅|降幅|增长率|增速|"
                           r"(?:增长|下降|上升|减少|增加)(?:了)?(?:多少|几)|\b(?:growth|increase|decrease|grew|rose|fell)\b",
                           re.IGNORECASE)


def change_not_given(analysis: QueryAnalysis, result: AnswerResult) -> bool:
    """The question asks how a figure changed and the answering sentences state no change."""
    if not analysis.asks_figure or not _ASKS_FOR_CHANGE.search(analysis.normalised) or analysis.operation:
        return False
    figures = [f for line in result.answer.splitlines() for f in extract_figures(_MARKER.sub("", line))]
    return bool(figures) and not any(f.change for f in figures)


def change_refusal(question: str, analysis: QueryAnalysis, result: AnswerResult, mode: Mode) -> AnswerResult:
    """Say the change is not given, and what the report does state (never that figure as the answer)."""
    en = analysis.language == "en"
    lead = ("The reports do not give how this figure changed; what they state:" if en
            else "报告中未提及该数字的变化（增长或下降）；报告所载为：")
    answer = f"{lead}\n{result.answer}"
    refusal = AnswerResult(question=question, answer=answer, refused=True, citations=result.citations,
                           contexts=result.contexts, mode=mode)
    refusal.notes.append(Note("change_not_given"))
    return refusal


# --- a rate the report does not state -------------------------------------------------------

# A question asking for a rate or share itself ("办结率是多少", "占比", "what percentage"); 率先 is
# no rate. A computed share (analysis.operation) is the arithmetic path's.
_ASKS_FOR_RATE = re.compile(r"[\u4e00-\u9fff]率(?![先领])|比例|占比|百分之|百分比|"
                            r"\b(?:percentage|proportion|rate|share)\b", re.IGNORECASE)


def rate_not_given(analysis: QueryAnalysis, result: AnswerResult) -> bool:
    """The question asks for a rate and the answering sentences state counts but no rate
    (a % or 成), and none could be computed: offering the count would answer another question."""
    if result.refused or not analysis.asks_figure or analysis.operation not in (None, "rate"):
        return False  # a rate asked of counts (operation "rate") comes here once it could not be computed
    if not _ASKS_FOR_RATE.search(analysis.normalised) or _ASKS_FOR_CHANGE.search(analysis.normalised):
        return False  # a change asked (增长率) is change_not_given's
    figures = [f for line in result.answer.splitlines() for f in extract_figures(_MARKER.sub("", line))]
    return bool(figures) and not any(f.percent or f.unit == "成" for f in figures)


def rate_refusal(question: str, analysis: QueryAnalysis, result: AnswerResult, mode: Mode) -> AnswerResult:
    """Say the rate is not given, and what the report does state (never a count as the answer)."""
    en = analysis.language == "en"
    lead = ("The reports do not give this rate; what they state:" if en
            else "报告中未提及该比率（只给出数量）；报告所载为：")
    refusal = AnswerResult(question=question, answer=f"{lead}\n{result.answer}", refused=True,
                           citations=result.citations, contexts=result.contexts, mode=mode)
    refusal.notes.append(Note("rate_not_given"))
    return refusal


def infer_refusal(question: str, analysis: QueryAnalysis, result: AnswerResult, mode: Mode) -> AnswerResult:
    """An inference ("据此推算上一年…") the cited figures cannot support: say so, with what the
    report states, rather than offer a stated figure as the inferred one."""
    en = analysis.language == "en"
    lead = ("The reports do not give the figures this estimate needs (a count and its rate); what they state:" if en
            else "报告中未提及推算所需的数字（数量及其增幅或比例）；报告所载为：")
    refusal = AnswerResult(question=question, answer=f"{lead}\n{result.answer}", refused=True,
                           citations=result.citations, contexts=result.contexts, mode=mode)
    refusal.notes = [*result.notes, Note("infer_not_given")]
    return refusal


# --- all of the above, for lines another path chose ----------------------------------------

def answers_as_asked(question: str, analysis: QueryAnalysis, lines: list[str], mode: Mode = "extractive") -> bool:
    """Whether ``lines`` (answer sentences with passage markers) answer as a one-figure question
    must be answered: in the unit and case stage it asks for, with the change or rate it asks for."""
    probe = AnswerResult(question=question, answer="\n".join(lines), refused=False, citations=[], contexts=[],
                         mode=mode)
    return not (unit_not_given(analysis, probe) or stage_not_given(analysis, probe)
                or change_not_given(analysis, probe) or rate_not_given(analysis, probe))

