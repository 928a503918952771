"""Comparison tables: for each report in a question's scope, the figure it gives for the metric asked.

"太原和绵阳2024年新收行政复议案件各多少？哪个多？" becomes one row per place with the figure as
the report writes it, its value and unit and the passage it comes from; a place whose report
gives no such figure gets "未提及" instead of a guess. The conclusion (largest, smallest,
difference, ratio; or which places meet a threshold such as "达到100%") is computed from the
values, never written by a model.

Example:
    >>> table = ComparisonBuilder(index, keywords).run(analysis, reports)
    >>> [(r.region, r.figure) for r in table.rows]
    [('太原市', '1274件'), ('绵阳市', '1472件')]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from rag.answer.extractive import LIGHT_VERBS, ExtractiveAnswerer
from rag.text.lexicons import LEXICONS
from rag.text.figures import Figure, parse_number
from rag.index.store import ReportIndex, figure_text
from rag.types import ReportRecord
from rag.index.keywords import KeywordIndex
from rag.retrieve.query import QueryAnalysis
from rag.text.normalize import matching_form

# Share of the question's term weight a figure's metric (and its clause) must hold to count as
# the figure asked for: the same bar as an extractive answer's named-place line (0.55 x 0.75).
# rag/text/data/thresholds.toml [compare]: how well a figure's metric must match the question,
# scores that tie, the tie for the table's metric name, and the weight of a clause-only term.
MIN_MATCH = LEXICONS.threshold("compare", "min_match")
TIE = LEXICONS.threshold("compare", "tie")
METRIC_TIE = LEXICONS.threshold("compare", "metric_tie")
CLAUSE_WEIGHT = LEXICONS.threshold("compare", "clause_weight")
SEMANTIC_MIN = LEXICONS.threshold("compare", "semantic_min")
SEMANTIC_MARGIN = LEXICONS.threshold("compare", "semantic_margin")
# 幅度 (压缩幅度, 提速幅度) asks how much in percent, as 率 does; 增幅/降幅 are changes (_CHANGE_ASKED).
_RATE = re.compile(r"率|比例|比重|占比|百分|(?<![增降])幅度|rate|percent|share|proportion")
# "yuan" as a word only: Taiyuan is a place, not money.
_MONEY = re.compile(r"金额|资金|经费|多少元|万元|亿元|amount|money|\byuan\b|funding")
_CHANGE_ASKED = re.compile(r"增长|下降|增幅|降幅|同比|环比|增加|减少|上升|变化|increase|decrease|growth|change")
_WHICH = re.compile(r"哪些|哪几|哪个(城市|地方|地区|市|区|县)|(which|what) (cities|places|reports|regions)")
_CONDITION = re.compile(
    r"(?P<op>达到|超过|高于|多于|大于|不低于|不少于|低于|少于|不足|小于|不到|at least|more than|over|above|below|less than|under)?"
    r"\s*(?P<fig>(?:百分之)?\d+(?:\.\d+)?(?:万|亿)?(?:%|件|个|人|名|次|家|项|条)?)\s*(?P<post>以上|以下|及以上)?")
_OPS = {"达到": ">=", "不低于": ">=", "不少于": ">=", "at least": ">=", "以上": ">=", "及以上": ">=",
        "超过": ">", "高于": ">", "多于": ">", "大于": ">", "more than": ">", "over": ">", "above": ">",
        "低于": "<", "少于": "<", "不足": "<", "小于": "<", "不到": "<", "below": "<", "less than": "<",
        "under": "<", "以下": "<="}
_NOT_METRIC_TERMS = re.compile(r"^\d+(\.\d+)?%?$")


@dataclass
class Condition:
    """A threshold the question asks about: "出庭应诉率达到100%" -> value >= 100 (%)."""

    op: str
    value: float
    unit: str
    text: str

    def holds(self, value: float) -> bool:
        return {">=": value >= self.value, ">": value > self.value, "<": value < self.value,
                "<=": value <= self.value, "==": math.isclose(value, self.value)}[self.op]


@dataclass
class TableRow:
    """One report's answer to the metric: the figure as written, or not found (未提及)."""

    region: str | None
    year: int | None
    doc_id: str
    found: bool = False
    figure: str | None = None  # as the report writes it: 1.26万余件
    value: float | None = None
    unit: str | None = None
    metric: str | None = None
    qualifiers: str = ""
    clause: str | None = None
    sentence: str | None = None
    chunk_id: str | None = None
    score: float = 0.0
    citation: int | None = None  # the answer's [n] for this row's passage
    others: list[tuple[Figure, str]] = field(default_factory=list)  # equally good matches (figure, chunk id)
    meets: bool | None = None  # the question's condition holds (None: no condition, or no figure)
    worded: bool = False  # no matching figure, but a sentence of the report answers in words
    aligned: bool = False  # found by the figure phrase's meaning, not its words (_align)

    @property
    def label(self) -> str:
        return f"{self.region or '未知地区'}（{self.year}年）" if self.year else f"{self.region or '未知地区'}"

    @property
    def approximate(self) -> bool:
        return bool(self.qualifiers) and any(q in ("余", "多", "近", "约", "超过", "超", "逾")
                                             for q in self.qualifiers.split("|"))

    def to_dict(self) -> dict:
        return {"region": self.region, "year": self.year, "doc_id": self.doc_id, "found": self.found,
                "figure": self.figure, "value": self.value, "unit": self.unit, "metric": self.metric,
                "qualifiers": self.qualifiers, "citation": self.citation, "sentence": self.clause,
                "meets": self.meets}


@dataclass
class ComparisonTable:
    """The rows of a comparison and its computed conclusion."""

    metric: str
    rows: list[TableRow]
    condition: Condition | None = None
    asks_which: bool = False
    superlative: str | None = None  # "most" / "least": the question asks which is largest or smallest
    conclusion: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def found(self) -> list[TableRow]:
        return [r for r in self.rows if r.found]

    @property
    def unit(self) -> str | None:
        units = {r.unit for r in self.found}
        return units.pop() if len(units) == 1 else None

    def to_dict(self) -> dict:
        return {"metric": self.metric, "unit": self.unit, "rows": [r.to_dict() for r in self.rows],
                "conclusion": self.conclusion,
                "condition": (f"{self.condition.op} {_number(self.condition.value)}{self.condition.unit}"
                              if self.condition else None)}


def _number(value: float) -> str:
    """12600.0 -> '12600', 74.3 -> '74.3', 1.1578 -> '1.16'."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def parse_condition(normalised_question: str) -> Condition | None:
    """The threshold a "which places…" question sets (达到100%, 超过1000件), if any."""
    for match in _CONDITION.finditer(normalised_question):
        if not (match["op"] or match["post"]):
            continue
        parsed = parse_number(match["fig"]) if not match["fig"].isdigit() else None
        if parsed is None:
            continue
        op = _OPS[match["post"]] if match["post"] else _OPS[match["op"]]
        return Condition(op=op, value=parsed[0], unit=parsed[1], text=match.group(0).strip())
    return None


class ComparisonBuilder:
    """Build the comparison table for a question over the reports in its scope.

    Args:
        index: the index holding the figures collection.
        keywords: the BM25 index, whose document frequencies weigh the question's terms.

    Example:
        >>> table = ComparisonBuilder(index, keywords).run(analysis, reports)
        >>> table.conclusion
        '绵阳市（2024年）多于太原市（2024年）：1472件[2] 对 1274件[1]，多198件，约为其1.16倍。'
    """

    def __init__(self, index: ReportIndex, keywords: KeywordIndex):
        self.index = index
        self.keywords = keywords

    def run(self, analysis: QueryAnalysis, reports: list[ReportRecord]) -> ComparisonTable | None:
        """The table, or None when no report gives a figure for the question's metric.

        Args:
            analysis: the question's analysis (terms, language, scope).
            reports: the reports to compare, one row each, in this order.
        """
        terms = [t for t in analysis.terms if not _NOT_METRIC_TERMS.match(t)]
        if not terms or not reports:
            return None
        weights = ExtractiveAnswerer(self.keywords).weights(terms)
        total = sum(weights.values())
        question = analysis.normalised
        condition = parse_condition(question)
        wants_rate = bool(_RATE.search(question)) or (condition is not None and condition.unit == "%")
        wants_money = bool(_MONEY.search(question))
        wants_change = bool(_CHANGE_ASKED.search(question))
        rows = []
        for report in reports:
            scored = [(self._score(figure, weights, total, wants_rate, wants_money, wants_change), figure, meta)
                      for figure, meta in self.index.figures(report)]
            scored = [s for s in scored if s[0] >= MIN_MATCH]
            top = max((s[0] for s in scored), default=0.0)
            # Among equally good matches the largest is taken: reports give a total before its
            # parts (调解纠纷15223件，调解成功15184件; 抽查计划147个，其中…83个).
            tied = sorted((s for s in scored if s[0] >= top - TIE), key=lambda s: -s[1].value)
            row = TableRow(region=report.region, year=report.year, doc_id=report.doc_id)
            if tied:
                score, figure, meta = tied[0]
                seen = {figure.clause}
                for _, other, other_meta in tied[1:]:
                    # A part of the total (其中…60件) is not an alternative reading of it.
                    if other.clause not in seen and len(row.others) < 2 and not other.clause.startswith("其中"):
                        seen.add(other.clause)
                        row.others.append((other, other_meta["chunk_id"]))
                row.found, row.score = True, score
                row.figure, row.value, row.unit = figure_text({**meta, **figure.to_dict()}), figure.value, figure.unit
                row.metric, row.qualifiers = figure.metric, figure.qualifiers
                row.clause, row.sentence, row.chunk_id = figure.clause, figure.sentence, meta["chunk_id"]
                if condition is not None and _same_kind(condition.unit, figure.unit):
                    row.meets = condition.holds(figure.value)
            rows.append(row)
        if not any(r.found for r in rows):
            return None
        self._align(rows, reports, self._metric_name(rows, weights), wants_rate, wants_money, wants_change, condition)
        return ComparisonTable(metric=self._metric_name(rows, weights), rows=rows, condition=condition,
                               asks_which=bool(_WHICH.search(question)) or analysis.scope == "all",
                               superlative=analysis.superlative)

    # --- parts ---------------------------------------------------------------------------

    def _align(self, rows: list[TableRow], reports: list[ReportRecord], metric: str, wants_rate: bool,
               wants_money: bool, wants_change: bool, condition) -> None:
        """Fill the rows of reports that word the metric differently (新收行政复议申请 where the
        question and the other reports say 新收行政复议案件), by the figure phrases' vectors
        stored at ingest: the closest figure, if close enough and clearly closer than the rest."""
        missing = [(row, report) for row, report in zip(rows, reports) if not row.found]
        if not missing or self.index.embeddings is None:
            return
        # The metric as the matched rows name it, from the question's first term on (法律援助案件,
        # not 办理各类法律援助案件: "办理各类" would pull in 查办各类案件).
        anchor = _unit(self.index.embeddings.embed_documents([_core(metric)])[0])
        for row, report in missing:
            scored = []
            for figure, meta in self.index.figures(report, include_embeddings=True):
                if not _passes_gates(figure, wants_rate, wants_money, wants_change):
                    continue
                scored.append((_cosine(anchor, meta["embedding"]), figure, meta))
            scored.sort(key=lambda s: -s[0])
            if not scored or scored[0][0] < SEMANTIC_MIN:
                continue
            sim, figure, meta = scored[0]
            rival = next((s for s, f, _ in scored[1:] if matching_form(f.metric) != matching_form(figure.metric)), 0.0)
            if sim - rival < SEMANTIC_MARGIN:
                continue
            row.found, row.score, row.aligned = True, sim, True
            row.figure, row.value, row.unit = figure_text({**meta, **figure.to_dict()}), figure.value, figure.unit
            row.metric, row.qualifiers = figure.metric, figure.qualifiers
            row.clause, row.sentence, row.chunk_id = figure.clause, figure.sentence, meta["chunk_id"]
            if condition is not None and _same_kind(condition.unit, figure.unit):
                row.meets = condition.holds(figure.value)

    @staticmethod
    def _score(figure: Figure, weights: dict[str, float], total: float, wants_rate: bool, wants_money: bool,
               wants_change: bool) -> float:
        """Share of the question's term weight the figure's metric holds (its clause counts less)."""
        if wants_rate != (figure.unit in ("%", "个百分点")):
            return 0.0  # a rate answers a rate question only; a count, a count question only
        if wants_money != (figure.unit == "元"):
            return 0.0
        if bool(figure.change) != wants_change:
            return 0.0  # 同比增长204% is not the number of cases
        metric = matching_form(figure.metric)
        clause = matching_form(figure.clause)
        got = 0.0
        for term, weight in weights.items():
            if term in metric or _parts_in(term, weights, metric):
                got += weight
            elif term in clause or _parts_in(term, weights, clause):
                got += CLAUSE_WEIGHT * weight
        return got / total if total else 0.0

    @staticmethod
    def _metric_name(rows: list[TableRow], weights: dict[str, float]) -> str:
        """The best row's metric phrase from its first question term on (市政府…新收行政复议案件 -> 新收行政复议案件)."""
        top = max(r.score for r in rows if r.found)
        # The shortest of the best-matching metrics: 新收行政复议案件, not 市政府行政复议局全年新收…
        best = min((r for r in rows if r.found and r.score >= top - METRIC_TIE), key=lambda r: len(r.metric or ""))
        metric = matching_form(best.metric or "")
        starts = [metric.find(t) for t in weights if t in metric]
        return metric[min(starts):] if starts else metric


def _parts_in(term: str, weights: dict[str, float], text: str) -> bool:
    """Whether a compound term the tokenizer also gives in parts (调解纠纷 = 调解 + 纠纷) is in the
    text in its parts: 调解矛盾纠纷 says 调解纠纷 with a word between."""
    parts = [t for t in weights if t != term and len(t) < len(term) and t in term]
    return len("".join(parts)) >= len(term) and all(t in text for t in parts)


def _same_kind(unit_a: str, unit_b: str) -> bool:
    return (unit_a == "%") == (unit_b == "%")


def conclude(table: ComparisonTable, language: str = "zh") -> str:
    """The computed conclusion, with each row's ``[n]`` (rows must have ``citation`` set)."""
    found = table.found
    missing = [r for r in table.rows if not r.found and not r.worded]
    worded = [r for r in table.rows if r.worded]
    en = language == "en"

    def cite(row: TableRow) -> str:
        return f"{row.figure}[{row.citation}]" if row.citation else (row.figure or "")

    def names(rows: list[TableRow]) -> str:
        return (", " if en else "、").join(r.label for r in rows)

    # "哪个…最少" is answered first; the rows giving the figure and the range follow.
    parts: list[str] = _verdict(table.superlative, found, en, cite, names) if table.condition is None else []
    if table.condition is not None:
        meets = [r for r in found if r.meets]
        fails = [r for r in found if r.meets is False]
        other = [r for r in found if r.meets is None]
        cond = table.condition.text
        if en:
            parts.append(f"Meeting '{cond}': {names(meets) if meets else 'none'}")
            if fails:
                parts.append("not meeting: " + ", ".join(f"{r.label} {cite(r)}" for r in fails))
        else:
            parts.append(f"{table.metric}{cond}的：{names(meets) if meets else '没有'}")
            if fails:
                parts.append("未达到的：" + "、".join(f"{r.label}{cite(r)}" for r in fails))
        if other:
            parts.append(("figures of another kind: " if en else "数字类型不同的：") + names(other))
    elif table.asks_which and len(table.rows) > 2:
        parts.append((f"Reports giving this figure: {names(found)}" if en
                      else f"给出{table.metric}数字的：{names(found)}"))
    if table.condition is None:
        parts.extend(_compare_values(found, en, cite))
    if worded:
        parts.append((f"for {names(worded)} the cited sentence answers without a comparable figure" if en
                      else f"{names(worded)}的报告没有可直接比较的数字，见所引原文"))
    if missing:
        parts.append((f"not mentioned in the reports of {names(missing)}" if en
                      else f"{names(missing)}的报告中未提及"))
    years = sorted({r.year for r in found if r.year})
    if len(years) > 1:
        parts.append(("note: the years differ (" + ", ".join(str(y) for y in years) + ")") if en
                     else "注意：比较的年份不同（" + "、".join(f"{y}年" for y in years) + "）")
    joined = ("; " if en else "；").join(p for p in parts if p)
    return joined + ("." if en else "。") if joined else ""


def _verdict(superlative: str | None, found: list[TableRow], en: bool, cite, names) -> list[str]:
    """The direct answer to "哪个…最多/最少": the report(s) at the top or bottom, when two or more
    reports give the figure in one unit (with one, or mixed units, there is nothing to rank)."""
    if superlative is None or len(found) < 2 or len({r.unit for r in found}) > 1:
        return []
    pick = max if superlative == "most" else min
    best = pick(r.value or 0 for r in found)
    winners = [r for r in found if math.isclose(r.value or 0, best)]
    figures = ("、" if not en else ", ").join(cite(r) for r in winners)
    if en:
        word = "Most" if superlative == "most" else "Fewest"
        if found[0].unit == "%":
            word = "Highest" if superlative == "most" else "Lowest"
        return [f"{word}: {names(winners)} ({figures})"]
    if found[0].unit == "%":
        word = "最高" if superlative == "most" else "最低"
    else:
        word = "最多" if superlative == "most" else "最少"
    return [f"{word}的是{names(winners)}（{figures}）"]


def _compare_values(found: list[TableRow], en: bool, cite) -> list[str]:
    """Largest, smallest, difference and ratio of rows sharing one unit."""
    if len(found) < 2:
        return []
    units = {r.unit for r in found}
    if len(units) > 1:
        listed = ", ".join(sorted(u for u in units if u)) if en else "、".join(sorted(u for u in units if u))
        return [f"the units differ ({listed}), so the figures are not compared" if en
                else f"单位不同（{listed}），不直接比较大小"]
    unit = units.pop()
    ranked = sorted(found, key=lambda r: -(r.value or 0))
    top, bottom = ranked[0], ranked[-1]
    about = "约" if any(r.approximate for r in (top, bottom)) else ""
    about_en = "about " if about else ""
    if math.isclose(top.value, bottom.value):
        return [f"all the same: {cite(top)}" if en else f"各地相同，均为{cite(top)}"]
    diff = top.value - bottom.value
    diff_text = f"{_number(diff)}个百分点" if unit == "%" else f"{_number(diff)}{unit}"
    ratio = f"，约为其{top.value / bottom.value:.2f}倍" if unit != "%" and bottom.value > 0 else ""
    ratio_en = f", about {top.value / bottom.value:.2f} times" if unit != "%" and bottom.value > 0 else ""
    higher = "高" if unit == "%" else "多"
    if len(found) == 2:
        if en:
            return [f"{top.label} is higher than {bottom.label}: {cite(top)} vs {cite(bottom)}, "
                    f"{about_en}{diff_text} more{ratio_en}"]
        return [f"{top.label}{higher}于{bottom.label}：{cite(top)} 对 {cite(bottom)}，{about}{higher}{diff_text}{ratio}"]
    if en:
        return [f"highest: {top.label} {cite(top)}; lowest: {bottom.label} {cite(bottom)}; "
                f"difference {about_en}{diff_text}{ratio_en}"]
    most = "最高" if unit == "%" else "最多"
    least = "最低" if unit == "%" else "最少"
    return [f"{top.label}{most}（{cite(top)}），{bottom.label}{least}（{cite(bottom)}），相差{about}{diff_text}{ratio}"]


def _passes_gates(figure: Figure, wants_rate: bool, wants_money: bool, wants_change: bool) -> bool:
    """The kind checks of ``_score``: a rate for a rate question, money for money, a change for a change."""
    return (wants_rate == (figure.unit in ("%", "个百分点")) and wants_money == (figure.unit == "元")
            and bool(figure.change) == wants_change)


def _unit(vector) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def _cosine(unit_vector: list[float], other) -> float:
    other = _unit(other)
    return sum(a * b for a, b in zip(unit_vector, other))


_LEADING_WORK = re.compile(r"^(?:各类|各项|各级|共|全年|累计)+")


def _core(metric: str) -> str:
    """A metric without the work verbs and fillers it opens with (办理各类法律援助案件 -> 法律援助案件):
    what it counts, which is what another report's wording must share."""
    previous = None
    while previous != metric:
        previous = metric
        for verb in sorted(LIGHT_VERBS, key=len, reverse=True):
            if metric.startswith(verb) and len(metric) > len(verb) + 1:
                metric = metric[len(verb):]
                break
        metric = _LEADING_WORK.sub("", metric)
    return metric or previous
