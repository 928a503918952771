"""Computation by code, never by the model: sums, differences, shares, rates, averages, ratios,
threshold checks and inferences (the year before from a growth rate, a whole from its share)
over the figures the cited sentences state.

The answer shows the operation with every operand cited — ``1274件[1] + 1472件[2] = 2746件`` —
after the sentences it rests on. When the operands cannot be told apart, or their units do not
agree, nothing is computed and the cited sentences stand alone, with the reason.

Operands are chosen by what the question names: its parts ("人大代表建议和政协提案" -> two parts)
are matched to the figures' metrics by shared character pairs; a rate (胜诉率) is its stem's
figure over the larger figure of the same unit before it in the sentence (235件 for 胜诉206件).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rag.answer.notes import Note
from rag.retrieve.query import QueryAnalysis
from rag.text.arithmetic import FRACTION_WORDS, INFER_CHANGE
from rag.text.figures import COUNT_UNITS, Figure, extract_figures, stated_figures
from rag.text.markers import MARKER, marker_numbers
from rag.text.sentences import char_bigrams
from rag.types import AnswerResult

# Where a question lists the things to combine: 人大代表建议和政协提案, 废止、宣布失效和予以修改.
_PART_SEPARATORS = re.compile(r"[、,，;；]|以及|加上|和|与|及|跟|同")
_FILLER = re.compile(r"\d{4}年度?|全市|全年|市级|市县两级|办理的?|的|了|中|其中|多少|几|是|有|为|吗|呢|[?？。,，]")
_COUNT_UNITS = set(COUNT_UNITS) | {"人次"}  # counts of things: 件 and 个 may be added
_THRESHOLD_FIGURE = re.compile(r"(?P<num>\d+(?:\.\d+)?)(?P<mult>万|亿)?(?P<unit>%|件|个|人次|人|名|次|家|项|条|场)?")
_ASKS = re.compile(r"多少|几(?=[件个次人项家起名场所条份支批倍])|how (?:many|much)")
_RATE_STEM = re.compile(r"([\u4e00-\u9fff]{2})率")
_OPS_AT_LEAST = re.compile(r"达到|at least")
_OPS_UNDER = re.compile(r"低于|少于|不到|less")
_FALL = re.compile(r"下降|减少|降低|降幅")


@dataclass(kw_only=True)
class Operand:
    """A figure of a cited sentence, with the citation number it carries in the answer."""

    figure: Figure
    n: int | None
    line: int

    @property
    def cited(self) -> str:
        return f"{self.figure.text}[{self.n}]" if self.n else self.figure.text


class Computation:
    """Compute what the question asks from the operands an answer cites.

    Args:
        analysis: the question's analysis (``operation`` says what to compute).
    """

    class CannotCompute(ValueError):
        """The operands needed are not among the cited figures (the message says why)."""

    def __init__(self, analysis: QueryAnalysis):
        self.analysis = analysis
        self.en = analysis.language == "en"
        self.pick = _Picker(analysis)

    def run(self, result: AnswerResult) -> AnswerResult:
        """``result`` with the computation appended (or a note saying why none was made)."""
        if not self.analysis.operation or self.analysis.operation == "rank" or result.refused:
            return result
        if self.analysis.operation in ("sum", "difference") and len(_ASKS.findall(self.analysis.normalised)) > 1:
            return result  # "一共调解了多少件，调解成功多少件": two figures asked, 一共 is a filler
        operands = _operands(result.answer)
        try:
            line = self._compute(operands)
        except Computation.CannotCompute as exc:
            result.notes.append(Note("not_computed", reason=str(exc)))
            return result
        label = "Computed: " if self.en else "计算："
        result.answer = f"{result.answer}\n{label}{line}"
        result.notes.append(Note("computed"))
        return result

    def run_rows(self, rows: list[Operand], labels: list[str] | None = None) -> str | None:
        """The computation over a comparison's rows (one figure per report), or None."""
        if self.analysis.operation == "rank" and labels and len(rows) >= 2:
            return self._order(rows, labels)
        if self.analysis.operation not in ("sum", "ratio", "share", "average") or len(rows) < 2:
            return None
        try:
            if self.analysis.operation == "sum":
                return self._sum(rows)
            return self._divide(rows[0], rows[1], percent=self.analysis.operation != "ratio")
        except Computation.CannotCompute:
            return None

    # --- operations ----------------------------------------------------------------------

    def _order(self, rows: list[Operand], labels: list[str]) -> str | None:
        """The rows from the largest down (or up, for 从少到多), when their units agree."""
        if len({o.figure.unit for o in rows}) > 1:
            return None
        ascending = bool(re.search(r"从少到多|从低到高|从小到大|ascending|lowest first", self.analysis.operation_text
                                   + self.analysis.normalised))
        ranked = sorted(zip(rows, labels), key=lambda pair: pair[0].figure.value, reverse=not ascending)
        sign = " < " if ascending else " > "
        return sign.join(f"{label} {o.cited}" for o, label in ranked)

    def _compute(self, operands: list[Operand]) -> str:
        if not operands:
            raise Computation.CannotCompute("the cited sentences state no figure")
        op = self.analysis.operation
        if op == "infer":
            return self._infer(operands)
        if op == "threshold":
            return self._threshold(operands)
        if op in ("share", "rate"):
            part, whole = self.pick.part_and_whole(operands)
            return self._divide(part, whole, percent=True)
        if op == "ratio":
            first, second = self.pick.two(operands)
            return self._divide(first, second, percent=False)
        if op == "average":
            total, count = self.pick.total_and_count(operands)
            return self._divide(total, count, percent=False, per=True)
        if op == "difference":
            first, second = self.pick.two(operands)
            return self._difference(first, second)
        return self._sum(self.pick.by_parts(operands, at_least=2))

    def _sum(self, operands: list[Operand]) -> str:
        units = {o.figure.unit for o in operands}
        if len(units) > 1 and not units <= _COUNT_UNITS:
            raise Computation.CannotCompute(f"the units differ ({'、'.join(sorted(units))})")
        total = sum(o.figure.value for o in operands)
        unit = operands[0].figure.unit if len(units) == 1 else ""
        about = "约" if any(o.figure.approximate for o in operands) else ""
        return f"{' + '.join(o.cited for o in operands)} = {about}{_format(total, unit)}"

    def _difference(self, first: Operand, second: Operand) -> str:
        if not _same_kind(first, second):
            raise Computation.CannotCompute(f"the units differ ({first.figure.unit}、{second.figure.unit})")
        diff = first.figure.value - second.figure.value
        unit = "个百分点" if first.figure.unit == "%" else (first.figure.unit if first.figure.unit == second.figure.unit else "")
        return f"{first.cited} − {second.cited} = {_format(diff, unit)}"

    def _divide(self, top: Operand, bottom: Operand, *, percent: bool, per: bool = False) -> str:
        if not bottom.figure.value:
            raise Computation.CannotCompute("the divisor is zero")
        if percent and top.figure.unit != bottom.figure.unit and not {top.figure.unit, bottom.figure.unit} <= _COUNT_UNITS:
            raise Computation.CannotCompute(f"the units differ ({top.figure.unit}、{bottom.figure.unit})")
        value = top.figure.value / bottom.figure.value
        about = "约" if top.figure.approximate or bottom.figure.approximate else ""
        if percent:
            shown = _format(value * 100, "%")
        elif per:
            shown = _format(value, top.figure.unit, decimals=2)
        else:
            shown = _format(value, "倍", decimals=2)
        return f"{top.cited} ÷ {bottom.cited} = {about}{shown}"

    def _infer(self, operands: list[Operand]) -> str:
        """The figure a stated count and rate imply: the year before (count ÷ (1 + growth)) when
        the question asks for it, else the whole of a share or the target of a completion rate
        (count ÷ rate). Rounded to whole units for counts, and marked 约: the rate is rounded."""
        percents = [o for o in operands if o.figure.unit == "%"]
        counts = [o for o in operands if o.figure.unit not in ("%", "个百分点")]
        if not counts:
            raise Computation.CannotCompute("no stated count to infer from")
        wants_change = bool(INFER_CHANGE.search(self.analysis.normalised))
        said = {f.value for f in stated_figures(self.analysis.stated)}
        if wants_change:
            rates = [o for o in percents if o.figure.change]
            if not rates:
                raise Computation.CannotCompute("no growth rate is stated to infer the year before from")
        else:
            rates = sorted((o for o in percents if not o.figure.change), key=lambda o: o.figure.value not in said)
            if not rates:
                raise Computation.CannotCompute("no share or rate is stated to infer from")
        rate = rates[0]
        # The count the rate is of: one the question states, else the one before the rate in its
        # sentence (新收…1274件，同比增长204%), else the first.
        before = [o for o in counts if o.line == rate.line and o.figure.start < rate.figure.start]
        count = next((o for o in counts if o.figure.value in said), before[-1] if before else counts[0])
        if wants_change:
            sign = -1 if _FALL.search(rate.figure.qualifiers) else 1
            base = 1 + sign * rate.figure.value / 100
            if base <= 0:
                raise Computation.CannotCompute("a fall of 100% or more has no year before")
            value = count.figure.value / base
            formula = f"{count.cited} ÷ (1 {'+' if sign > 0 else '−'} {rate.cited})"
            said_as = " (the year before)" if self.en else "（上一年）"
        else:
            if not rate.figure.value:
                raise Computation.CannotCompute("the rate is zero")
            value = count.figure.value / (rate.figure.value / 100)
            formula = f"{count.cited} ÷ {rate.cited}"
            said_as = ""
        unit = count.figure.unit
        shown = _format(round(value), unit) if unit in _COUNT_UNITS else _format(value, unit)
        return f"{formula} = 约{shown}{said_as}"  # 约: the rate it rests on is rounded

    def _threshold(self, operands: list[Operand]) -> str:
        text = self.analysis.operation_text
        limit, unit = _limit(text)
        unit, _, word = unit.partition(":")
        if limit is None:
            raise Computation.CannotCompute("the question's threshold could not be read")
        stated = [o for o in operands if (o.figure.unit == "%") == (unit == "%")]
        computed = ""
        if stated:
            operand = self.pick.by_parts(stated, at_least=1)[0]
            value, shown = operand.figure.value, operand.cited
        elif unit == "%":  # 采纳率超过三分之一了吗, where only the counts are stated
            part, whole = self.pick.part_and_whole(operands)
            value = part.figure.value / whole.figure.value * 100
            computed = self._divide(part, whole, percent=True)
            shown = _format(value, "%")
        else:
            raise Computation.CannotCompute("no cited figure of the asked kind")
        if _OPS_UNDER.search(text):
            holds = value < limit
        elif _OPS_AT_LEAST.search(text):
            holds = value >= limit
        else:
            holds = value > limit
        threshold = word or _format(limit, unit)
        if self.en:
            verdict = f"{'yes' if holds else 'no'}: {shown} against {threshold}"
        else:
            verdict = f"{'是' if holds else '否'}，{shown}{'，' if computed else ''}对比{threshold}"
        return f"{computed}；{verdict}" if computed else verdict


def one_stated_total(analysis: QueryAnalysis) -> bool:
    """Whether a "sum" question asks for one total the report states ("一共多少人次": one ask, one
    thing named; 一共 is a filler), not a sum of parts it names ("人民网留言和市长信箱留言合计")."""
    return (analysis.operation == "sum" and len(_ASKS.findall(analysis.normalised)) == 1
            and len(_Picker(analysis).parts()) < 2)


class _Picker:
    """Which cited figures are the operands: the parts the question names, matched to metrics."""

    def __init__(self, analysis: QueryAnalysis):
        self.analysis = analysis

    def parts(self) -> list[str]:
        topic = self.analysis.topic
        parts = [_FILLER.sub("", p).strip() for p in _PART_SEPARATORS.split(topic)]
        return [p for p in parts if len(p) >= 2]

    def by_parts(self, operands: list[Operand], at_least: int) -> list[Operand]:
        """One operand per part the question names, best match first; distinct figures."""
        chosen: list[Operand] = []
        for part in self.parts():
            ranked = sorted(operands, key=lambda o: -_match(part, o.figure))
            best = next((o for o in ranked if o not in chosen and _match(part, o.figure) > 0), None)
            if best is not None:
                chosen.append(best)
        if len(chosen) < at_least:
            if len(operands) >= at_least and at_least == 1:
                return operands[:1]
            raise Computation.CannotCompute("the figures to combine could not be told apart")
        return sorted(chosen, key=lambda o: (o.line, o.figure.start))

    def two(self, operands: list[Operand]) -> tuple[Operand, Operand]:
        chosen = self.by_parts(operands, at_least=2)
        return chosen[0], chosen[1]

    def part_and_whole(self, operands: list[Operand]) -> tuple[Operand, Operand]:
        """The part and the whole of a share: the part the question names (or the rate's stem),
        over the larger figure of the same unit before it (或 the whole it names)."""
        parts = self.parts()
        if self.analysis.operation_text.startswith("相当于"):
            parts = parts[::-1]  # "A相当于B的百分之几": the part first, the whole after
        # A rate the question names (胜诉率, 采纳率): its stem names the part.
        named_rate = _RATE_STEM.search(self.analysis.operation_text) or _RATE_STEM.search(self.analysis.normalised)
        stem = named_rate.group(1) if named_rate else ""
        candidates = [o for o in operands if o.figure.unit != "%"]
        if not candidates:
            raise Computation.CannotCompute("no counted figure to divide")
        if len(parts) >= 2 and not stem:
            # The words that tell the two apart ("采纳的立法建议" / "收到的立法建议": 采纳, 收到):
            # both name 立法建议, so the shared words would pick the same figure for both.
            part_words = char_bigrams(parts[-1]) - char_bigrams(parts[0])
            whole_words = char_bigrams(parts[0]) - char_bigrams(parts[-1])
            part = max(candidates, key=lambda o: (_overlap(part_words, o.figure), -o.figure.start))
            wholes = [o for o in candidates if o is not part and o.figure.value >= part.figure.value
                      and _same_kind(o, part)]
            whole = max(wholes, key=lambda o: _overlap(whole_words, o.figure), default=None)
            if _overlap(part_words, part.figure) > 0 and whole is not None and _overlap(whole_words, whole.figure) > 0:
                return part, whole
        key = stem or (parts[-1] if parts else "")
        part = max(candidates, key=lambda o: (_match(key, o.figure), -o.figure.start)) if key else candidates[-1]
        if key and _match(key, part.figure) <= 0:
            raise Computation.CannotCompute("the part of the share is not among the cited figures")
        if len(parts) >= 2 and not stem:
            whole_key = parts[0]
            others = [o for o in candidates if o is not part]
            whole = max(others, key=lambda o: _match(whole_key, o.figure), default=None)
            if whole is not None and _match(whole_key, whole.figure) > 0 and whole.figure.value >= part.figure.value:
                return part, whole
        before = [o for o in candidates if o.line == part.line and o.figure.start < part.figure.start
                  and o.figure.value >= part.figure.value and _same_kind(o, part)]
        if not before:
            raise Computation.CannotCompute("the whole of the share is not among the cited figures")
        return part, before[-1] if stem else before[0]

    def total_and_count(self, operands: list[Operand]) -> tuple[Operand, Operand]:
        """For 平均每个X…多少Y: the count of X (unit 个/家/名) and the total of Y."""
        after = re.search(r"每(个|家|名|人|项|件|场|户|支|所)?", self.analysis.operation_text + self.analysis.normalised)
        measure = after.group(1) if after and after.group(1) else "个"
        wanted = re.search(r"(?:多少|几)(人次|[件个次人项家起名场条份支批])", self.analysis.normalised)
        counts = [o for o in operands if o.figure.unit == measure or (measure in "名人" and o.figure.unit in "名人")]
        totals = [o for o in operands if wanted and o.figure.unit == wanted.group(1)]
        if not counts or not totals:
            raise Computation.CannotCompute("the total or the count of the average is not among the cited figures")
        count = counts[0]
        total = next((o for o in totals if o is not count), None)
        if total is None:
            raise Computation.CannotCompute("the total of the average is not among the cited figures")
        return total, count



def _operands(answer: str) -> list[Operand]:
    """The figures of each answer line, with the first citation number of the line."""
    out = []
    for i, line in enumerate(answer.splitlines()):
        marks = [n for m in MARKER.finditer(line) for n in marker_numbers(m.group(1))]
        body = MARKER.sub("", re.sub(r"^[^：:]{2,16}（\d{4}年）[：:]", "", line))
        for figure in extract_figures(body):
            out.append(Operand(figure=figure, n=marks[0] if marks else None, line=i))
    return out


def _match(part: str, figure: Figure) -> float:
    """How well a question part names a figure: shared character pairs with its metric, and
    half as much with its clause."""
    if not part:
        return 0.0
    wanted = char_bigrams(part)
    if not wanted:
        return 1.0 if part in figure.metric else 0.0
    return _overlap(wanted, figure)


def _overlap(bigrams: set[str], figure: Figure) -> float:
    """The character pairs a figure's metric shares with ``bigrams``, and half those its clause does."""
    return len(bigrams & char_bigrams(figure.metric)) + 0.5 * len(bigrams & char_bigrams(figure.clause))


def _same_kind(a: Operand, b: Operand) -> bool:
    return a.figure.unit == b.figure.unit or {a.figure.unit, b.figure.unit} <= _COUNT_UNITS


def _limit(text: str) -> tuple[float | None, str]:
    for word, value in FRACTION_WORDS.items():
        if word in text:
            return value, "%:" + word  # shown as the question says it (三分之一), not 33.33%
    m = _THRESHOLD_FIGURE.search(text)
    if not m:
        return None, ""
    value = float(m["num"]) * {"万": 1e4, "亿": 1e8}.get(m["mult"] or "", 1.0)
    unit = m["unit"] or ("%" if "百分之" in text else "")
    return value, unit


def _format(value: float, unit: str, decimals: int = 1) -> str:
    if unit == "%":
        shown = f"{value:.{decimals}f}".rstrip("0").rstrip(".") if not math.isclose(value, round(value)) else str(round(value))
        return f"{shown}%"
    if math.isclose(value, round(value), abs_tol=1e-9):
        return f"{int(round(value))}{unit}"
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".") + unit
