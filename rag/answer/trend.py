"""The trend path: one place's figure over several years, as a time series computed by code.

"太原市近三年新收行政复议案件的变化" or "X区2023年和2024年的行政诉讼败诉率" get one row per year
(the figure as that year's report writes it, cited; 未提及 where the report does not give it),
the change from each year to the next (absolute and in %, ``2023→2024：1274件[3] − 1219件[2] =
+55件（+4.5%）``) and a conclusion, all computed from the values; no model writes them, in
either mode. The years come from query analysis (``QueryAnalysis.trend_years``: "近三年" counts
back from the place's latest indexed report, "历年/逐年" takes every year held).

The rows are found as a comparison's are (``ComparisonBuilder``: the metric matched by the
question's terms, rows worded differently aligned by the figure phrases' vectors), so a year
whose report says 新收行政复议申请 lines up with one that says 新收行政复议案件.

Example:
    >>> result = TrendAnswer(index, keywords).run(question, analysis, passages, reports, "extractive")
    >>> result.table["kind"], [r["year"] for r in result.table["rows"]]
    ('trend', [2022, 2023, 2024])
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from rag.answer.citations import resolve_citations
from rag.answer.compare import ComparisonBuilder, ComparisonTable, TableRow
from rag.answer.notes import Note
from rag.answer.table_answer import reports_in_scope
from rag.index.keywords import KeywordIndex
from rag.index.store import ReportIndex
from rag.retrieve.hybrid import resolve_regions
from rag.retrieve.query import QueryAnalysis
from rag.types import AnswerResult, Passage, ReportRecord

# Words that ask for the change itself (同比, 增长率): then the figure asked *is* a change. Plain
# 增长/下降/变化 in a trend question ask how the figure moved, which the series answers.
_ASKS_CHANGE_FIGURE = re.compile(r"同比|环比|增幅|降幅|增长率|增速|比上年|较上年|growth rate|year-on-year")
_MOVE_WORDS = re.compile(r"增长|下降|增加|减少|上升|变化|变动|趋势|走势|增减|\bincrease[sd]?\b|\bdecrease[sd]?\b"
                         r"|\bgrowth\b|\bgrew\b|\bchange[sd]?\b|\btrend\b")
_RATE_UNITS = ("%", "个百分点")
# Counts of things may be compared across years (a report that says 个 one year and 件 the next
# counts the same things); other units (本 vs 件, 元 vs 件) may not.
_COUNT_UNITS = {"件", "个", "起", "项"}
# A figure stored as a fall: extract_figures keeps 同比下降5.2% as 5.2 % with the qualifier 同比下降
# (减少30件: 30 件, 减少); in a series it is -5.2.
_FALL_WORDS = ("下降", "减少", "降低", "回落", "下滑")


def units_agree(units) -> bool:
    """Whether figures in these units can be set side by side in one series (its changes and its
    line chart): one unit, or counts of things (件 and 个)."""
    found = {u or "" for u in units}
    return len(found) <= 1 or found <= _COUNT_UNITS


def is_fall(qualifiers: str | None) -> bool:
    """Whether a figure's qualifiers (pipe-separated: ``约|同比下降``) say it is a fall."""
    return any(word in q for q in (qualifiers or "").split("|") for word in _FALL_WORDS)


def signed_value(value: float | None, qualifiers: str | None) -> float | None:
    """The figure's value with its sign: negative for a fall (同比下降5.2% -> -5.2)."""
    if value is None:
        return None
    return -value if is_fall(qualifiers) else value


def row_value(row: TableRow) -> float | None:
    """A row's signed value (see ``signed_value``)."""
    return signed_value(row.value, row.qualifiers)


@dataclass
class Change:
    """The change from one year's figure to a later one's, or why none was computed.

    Attributes:
        start, end: the two rows (years in order).
        delta: end minus start, in the rows' unit (percentage points for rates).
        percent: the change relative to the start (None for rates, or from zero).
        reason: why nothing was computed (units differ), else "".
    """

    start: TableRow
    end: TableRow
    delta: float | None = None
    percent: float | None = None
    reason: str = ""

    @property
    def rate(self) -> bool:
        return self.start.unit in _RATE_UNITS

    @property
    def about(self) -> bool:
        return self.start.approximate or self.end.approximate

    def span(self) -> str:
        """``2023→2024``."""
        return f"{self.start.year}→{self.end.year}"

    def amount(self, en: bool = False) -> str:
        """The change alone: ``+55件（+4.5%）``, ``-1.5个百分点``, ``约+200件``."""
        if self.delta is None:
            return self.reason
        unit = "个百分点" if self.rate else (self.end.unit or "")
        about = ("about " if en else "约") if self.about else ""
        text = f"{about}{_signed(self.delta)}{unit}"
        if self.percent is not None:
            text += f" ({_signed(self.percent)}%)" if en else f"（{_signed(self.percent)}%）"
        return text

    def formula(self, en: bool = False) -> str:
        """``2023→2024：1274件[3] − 1219件[2] = +55件（+4.5%）``: the operands cited."""
        sep = ": " if en else "："
        if self.delta is None:
            return f"{self.span()}{sep}{self.reason}"
        return f"{self.span()}{sep}{_cited(self.end)} − {_cited(self.start, operand=True)} = {self.amount(en)}"

    def to_dict(self) -> dict:
        return {"from": self.start.year, "to": self.end.year, "delta": self.delta, "percent": self.percent,
                "unit": "个百分点" if self.rate else self.end.unit, "approximate": self.about,
                "text": self.amount(), "reason": self.reason or None}


def _signed(value: float) -> str:
    """+55, -1.5, +4.5 (one decimal at most; 0 as 0)."""
    rounded = round(value, 1)
    if math.isclose(rounded, 0.0, abs_tol=1e-9):
        return "0"
    shown = f"{abs(rounded):.1f}".rstrip("0").rstrip(".")
    return ("+" if rounded > 0 else "-") + shown


def _cited(row: TableRow, operand: bool = False) -> str:
    """The row's figure with its citation; a fall shown with its sign (-5.2%), in brackets as an
    operand of a subtraction."""
    figure = row.figure or ""
    if figure and is_fall(row.qualifiers):
        figure = f"(-{figure})" if operand else f"-{figure}"
    return f"{figure}[{row.citation}]" if row.citation else figure


def change_between(start: TableRow, end: TableRow, en: bool = False) -> Change:
    """The change from ``start`` to ``end`` (rows with values), computed when their units agree.

    Example:
        >>> change_between(row_2023, row_2024).amount()
        '+55件（+4.5%）'
    """
    units = {start.unit or "", end.unit or ""}
    if not units_agree(units):
        listed = ", ".join(sorted(units)) if en else "、".join(sorted(units))
        reason = (f"the units differ ({listed}), so no change is computed" if en
                  else f"单位不同（{listed}），不计算变化")
        return Change(start, end, reason=reason)
    first, last = row_value(start), row_value(end)
    delta = last - first
    rate = start.unit in _RATE_UNITS
    # A rate changes by percentage points; its relative change (97% -> 98% is +1.03%) misleads,
    # and so does one relative to a fall (减少30件) or to zero.
    percent = None if rate or first <= 0 else delta / first * 100
    return Change(start, end, delta=delta, percent=percent)


def year_changes(rows: list[TableRow], en: bool = False) -> list[Change]:
    """The change between each year that gives the figure and the next one that does (a year
    whose report does not mention it is passed over: 2022→2024)."""
    found = [r for r in rows if r.found and r.value is not None]
    return [change_between(a, b, en) for a, b in zip(found, found[1:])]


def trend_conclusion(region: str, metric: str, rows: list[TableRow], changes: list[Change],
                     missing_years: list[int], en: bool = False) -> str:
    """The series in one sentence: direction, first to last, per-year changes, what is missing."""
    found = [r for r in rows if r.found and r.value is not None]
    unmentioned = [r for r in rows if not r.found]
    parts: list[str] = []
    if len(found) == 1:
        only = found[0]
        parts.append(f"only the {only.year} report gives this figure ({_cited(only)}), so no change can be computed"
                     if en else f"只有{only.year}年的报告给出该数字（{_cited(only)}），无法计算变化")
    elif len(found) > 1:
        computed = [c for c in changes if c.delta is not None]
        series = " → ".join(_cited(r) for r in found)
        first, last = found[0], found[-1]
        if len(computed) == len(changes):
            whole = change_between(first, last, en)
            way = _direction(computed, whole.rate, en)
            if en:
                parts.append(f"{region}'s {metric} {way} from {first.year} to {last.year}: {series}, "
                             f"{whole.amount(en)} in all")
            else:
                parts.append(f"{region}{metric}{first.year}年至{last.year}年{way}：{series}，累计{whole.amount(en)}")
            if len(changes) > 1:
                listed = "; ".join if en else "；".join
                parts.append(("year by year: " if en else "逐年变化：")
                             + listed(f"{c.span()} {c.amount(en)}" for c in changes))
        else:
            parts.append(f"{region}'s {metric}: {series}" if en else f"{region}{metric}：{series}")
            parts.extend(c.formula(en) for c in changes if c.delta is None)
    if unmentioned:
        years = ", ".join(str(r.year) for r in unmentioned) if en else "、".join(f"{r.year}年" for r in unmentioned)
        parts.append(f"the {years} report does not mention it" if en else f"{years}的报告中未提及")
    if missing_years:
        years = ", ".join(str(y) for y in missing_years) if en else "、".join(f"{y}年" for y in missing_years)
        parts.append(f"the index has no report of {region} for {years}" if en else f"库中没有{region}{years}的报告")
    joined = ("; " if en else "；").join(p for p in parts if p)
    return joined + ("." if en else "。") if joined else ""


def _direction(changes: list[Change], rate: bool, en: bool) -> str:
    """逐年增加 / 减少 / 持平 / 有升有降 (上升/下降 for a rate; 逐年 only over several changes)."""
    every = "逐年" if len(changes) > 1 else ""
    # On the delta as shown (one decimal): -0.04 reads 0, so it is no fall.
    shown = [round(c.delta, 1) for c in changes]
    if all(math.isclose(d, 0.0, abs_tol=1e-9) for d in shown):
        return "stayed the same" if en else "持平"
    if all(d > 0 for d in shown):
        return "rose" if en else every + ("上升" if rate else "增加")
    if all(d < 0 for d in shown):
        return "fell" if en else every + ("下降" if rate else "减少")
    return "rose and fell" if en else "有升有降"


def metric_analysis(analysis: QueryAnalysis) -> QueryAnalysis:
    """The analysis the figures are matched with: "增长/变化" ask how the figure moved, so they
    leave the question (else only 同比 figures would match), unless it asks for a change figure."""
    if _ASKS_CHANGE_FIGURE.search(analysis.normalised):
        return analysis
    normalised = _MOVE_WORDS.sub(" ", analysis.normalised)
    terms = [t for t in analysis.terms if not _MOVE_WORDS.fullmatch(t)]
    return dataclasses.replace(analysis, normalised=normalised, terms=terms or analysis.terms)


class TrendAnswer:
    """Answer a figure of one place over several years.

    Args:
        index: the index holding the figures collection and the chunks.
        keywords: the BM25 index (term weights, and the extractive sentence for rows in words).
    """

    def __init__(self, index: ReportIndex, keywords: KeywordIndex):
        self.index = index
        self.keywords = keywords

    def table(self, analysis: QueryAnalysis, reports: list[ReportRecord], regions: list[str] | None = None,
              years: list[int] | None = None) -> ComparisonTable | None:
        """One row per indexed year of the place (oldest first), or None when no year gives the
        figure, or the reports are not one place's, one a year (the ordinary paths answer then)."""
        wanted = years or analysis.trend_years
        # One place: the question's own (a region filter of several places does not add theirs),
        # else the filter's single one.
        places = None if len(analysis.regions) == 1 else resolve_regions(regions)
        if places is not None and len(places) != 1:
            return None
        scope = reports_in_scope(reports, analysis, places, wanted)
        scope.sort(key=lambda r: r.year or 0)
        found_years = [r.year for r in scope]
        if (len({r.region for r in scope}) != 1 or len(set(found_years)) < 2
                or len(set(found_years)) != len(found_years)):
            return None  # two reports of one year would make a change "2024→2024"
        return ComparisonBuilder(self.index, self.keywords).run(metric_analysis(analysis), scope)

    def run(self, question: str, analysis: QueryAnalysis, passages: list[Passage], reports: list[ReportRecord],
            mode: str, regions: list[str] | None = None, years: list[int] | None = None) -> AnswerResult | None:
        """The cited series with its computed changes, or None (the ordinary paths answer then).

        Args:
            question: the question as asked.
            analysis: its analysis (``trend`` set, ``trend_years`` resolved).
            passages: the retrieved passages (the rows' chunks are added when missing).
            reports: the indexed reports.
            mode: the mode the answer is labelled with (the series is computed in both).
            regions, years: filters that override the question's place and years.
        """
        table = self.table(analysis, reports, regions, years)
        if table is None:
            return None
        en = analysis.language == "en"
        region = table.rows[0].region or ""
        by_id = {p.id: p for p in passages}
        wanted = [cid for r in table.found for cid in [r.chunk_id] + [c for _, c in r.others]]
        for doc in self.index.chunks_by_id([c for c in dict.fromkeys(wanted) if c not in by_id]):
            by_id[doc.id] = Passage.from_document(doc)
        pool = [by_id[c] for c in dict.fromkeys([*wanted, *(p.id for p in passages)]) if c in by_id]
        # A year whose report gives no matching figure says 未提及: a sentence in words from
        # that report would read as the year's figure in a series.
        row_parts = [[(text, c) for text, c in [(row.clause, row.chunk_id)] + [(f.clause, c) for f, c in row.others]
                      if c in by_id] if row.found else [] for row in table.rows]

        order = list(dict.fromkeys(c for parts in row_parts for _, c in parts if c in by_id))
        given = [by_id[c] for c in order] + [p for p in pool if p.id not in order]
        number = {c: i + 1 for i, c in enumerate(order)}
        sep = ": " if en else "："
        years_text = f"{table.rows[0].year}—{table.rows[-1].year}"
        lines = [f"{region} {table.metric}, {years_text}:" if en else f"{region}{table.metric}（{years_text}年）："]
        for row, parts in zip(table.rows, row_parts):
            row.citation = number.get(row.chunk_id) if row.found else None
            label = f"{row.year}" if en else f"{row.year}年"
            if parts:
                cited = "；".join(f"{text.rstrip('。；;，,')}[{number[c]}]" for text, c in parts)
                lines.append(f"{label}{sep}{cited}")
            else:
                lines.append(f"{label}{sep}" + ("the report does not give this figure." if en
                                                else f"报告中未提及{table.metric}的数字。"))
        changes = year_changes(table.rows, en)
        lines.extend(("Computed: " if en else "计算：") + c.formula(en) for c in changes if c.delta is not None)
        missing = [y for y in analysis.trend_missing if not years]
        table.conclusion = trend_conclusion(region, table.metric, table.rows, changes, missing, en)
        lines.append(("Conclusion: " if en else "结论：") + table.conclusion)
        text, citations = resolve_citations("\n".join(lines), given)
        result = AnswerResult(question=question, answer=text, refused=False, citations=citations,
                              contexts=given, mode=mode, table=trend_dict(table, changes, region, missing))
        result.notes.append(Note("trend_table"))
        return result


def trend_dict(table: ComparisonTable, changes: list[Change], region: str, missing_years: list[int]) -> dict:
    """The result's ``table`` for a series: the comparison table's fields, ``kind: "trend"``, the
    place, the years, each row's change from the year before it that gives the figure, and the
    changes themselves."""
    data = table.to_dict()
    by_end = {id(c.end): c for c in changes}
    for row, out in zip(table.rows, data["rows"]):
        change = by_end.get(id(row))
        out["change"] = change.amount() if change is not None else None
    data.update({"kind": "trend", "region": region, "years": [r.year for r in table.rows],
                 "missing_years": list(missing_years), "changes": [c.to_dict() for c in changes]})
    return data
