"""Figures as data: every number a report states, with what it measures.

A report sentence such as ``市政府行政复议局全年新收行政复议案件1274件,同比增长204%`` holds two
figures: 1274 件 of 新收行政复议案件, and a 204 % 同比增长 of the same metric. Comparisons are
computed from these records, never from generated text.

Parsing works on the matching form (simplified, half-width) and reads the Chinese ways of
writing numbers: ``1.26万余件`` -> 12600 件 (qualifier 余), ``百分之九十五`` -> 95 %,
``两个`` -> 2 个, ``1,274件`` -> 1274 件.

Example:
    >>> [(f.metric, f.value, f.unit) for f in extract_figures("全年新收行政复议案件1274件，同比增长204%。")]
    [('新收行政复议案件', 1274.0, '件'), ('新收行政复议案件', 204.0, '%')]
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from rag.text.normalize import matching_form
from rag.text.markers import MARKER
from rag.text.sentences import sentence_spans
from rag.text.years import is_year

# Bump when extraction changes: stored figures of an older version are extracted again.
FIGURES_VERSION = 3

# Measure words after a number, longest first so 人次 wins over 人 and 万元 over 元.
UNITS = ("个百分点", "个工作日", "工作日", "平方公里", "平方米", "人次", "万元", "亿元", "元", "公里", "小时",
         "%", "件", "个", "人", "名", "次", "家", "份", "项", "条", "部", "起", "场", "篇", "期", "所", "支",
         "户", "宗", "批", "本", "卷", "天", "个月", "座", "台", "套", "类", "万人")
COUNT_UNITS = "个项件次家名条部起场篇期所支户宗批本卷座台套类人"  # measure words of counted things
_MULTIPLIERS = {"万": 1e4, "亿": 1e8, "千": 1e3, "百": 1e2}
_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
             "八": 8, "九": 9}
_CN_SMALL_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_BIG_UNIT = {"万": 10_000, "亿": 100_000_000}

_UNIT_RE = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
_ARABIC = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_CN_NUMBER = r"[零〇一二两三四五六七八九十百千万]+"
# One figure: an optional hedge (近 3000), the number, a multiplier (万), a rounding word (余),
# and a unit. 百分之 forms are their own alternative.
FIGURE = re.compile(
    rf"(?P<hedge>近|约|超过|超|逾)?"
    rf"(?:百分之(?P<pct>{_ARABIC}|{_CN_NUMBER}(?:点[零〇一二三四五六七八九]+)?)"
    rf"|(?P<num>{_ARABIC})(?P<mult>万亿|万|亿|千)?(?P<approx>余|多)?(?P<unit>{_UNIT_RE})"
    rf"|(?<![第统进唯之一届])(?P<cn>[两二三四五六七八九十][零〇一二两三四五六七八九十百千万]*)"
    rf"(?P<cn_approx>余|多)?(?P<cn_unit>[{COUNT_UNITS}]))"
)
# Named reforms written with a numeral: not counts (三项制度, 一件事, 两级).
_NOT_A_COUNT_AFTER = re.compile(r"^(?:制度|改革|机制|事|清单|工程|行动|体系|模式|结合|同步|统一)")
_CLAUSE_END = re.compile(r"[。；;，,：:！？!?\n]")
_LEADING_FILLER = re.compile(
    r"^(?:\d{4}年度?|全年|今年|本年度|年内|其中|此外|同时|另外|全市|全区|全县|全省|我市|我区|我县|各级|市级|"
    r"共计|共|累计|合计|、|和|及|与|并|已)+")
_TRAILING_VERB = re.compile(
    r"(?:继续保持|始终保持|保持|共计|共|累计|合计|总计|达到|达|为|实现|超过|突破|约|近|逾|超|已|计|有|是|占|均)+$")
# A change of a metric rather than the metric itself (…1274件，同比增长204%).
_CHANGE = re.compile(r"(?:同比|环比|较上年|比上年|较去年|比去年)?(?:增长|下降|减少|提升|提高|上升|增加|降低|增幅|降幅)了?$")


@dataclass
class Figure:
    """One figure in a report sentence.

    Attributes:
        metric: what it measures, as the report words it (``新收行政复议案件``).
        value: the number in base units (``1.26万余件`` -> 12600.0).
        unit: the unit after the multiplier is applied (``件``, ``%``, ``元``).
        text: the figure as written in the matching form (``1.26万余件``).
        qualifiers: ``余``/``多`` (rounded down), ``近``/``约``/``超过`` (hedged), a change
            (``同比增长``), joined with ``|``.
        sentence: the sentence holding it (stored form, as the report writes it).
        clause: the part of the sentence between commas that holds it (stored form).
        start, end: offsets of the figure inside the chunk text.
    """

    metric: str
    value: float
    unit: str
    text: str
    qualifiers: str = ""
    sentence: str = ""
    clause: str = ""
    start: int = 0
    end: int = 0

    @property
    def percent(self) -> bool:
        return self.unit == "%"

    @property
    def approximate(self) -> bool:
        return any(q in self.qualifiers.split("|") for q in ("余", "多", "近", "约", "超过", "超", "逾"))

    @property
    def change(self) -> str:
        """The change qualifier (``同比增长``) when the figure measures a change, else ''."""
        return next((q for q in self.qualifiers.split("|") if _CHANGE.search(q)), "")

    def to_dict(self) -> dict:
        return asdict(self)


def parse_chinese_number(text: str) -> float | None:
    """Value of a number written in Chinese numerals (``两`` -> 2, ``二十三`` -> 23, ``一万二千`` -> 12000).

    Returns None when ``text`` is not a well-formed Chinese number.
    """
    if not text or any(ch not in _CN_DIGIT and ch not in _CN_SMALL_UNIT and ch not in _CN_BIG_UNIT for ch in text):
        return None
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in _CN_DIGIT:
            if digit is not None and digit != 0:
                return None  # 二三: not a number
            digit = _CN_DIGIT[ch]
        elif ch in _CN_SMALL_UNIT:
            section += (1 if digit is None else digit) * _CN_SMALL_UNIT[ch]
            digit = None
        else:
            section += digit or 0
            total += (section or 1) * _CN_BIG_UNIT[ch]
            section, digit = 0, None
    return float(total + section + (digit or 0))


def parse_number(text: str) -> tuple[float, str] | None:
    """Parse one figure as written (``1.26万余件``, ``百分之95``, ``两个``, ``98%``) into (value, unit).

    Example:
        >>> parse_number("1.26万余件")
        (12600.0, '件')
    """
    match = FIGURE.fullmatch(matching_form(text))
    return _value(match) if match else None


def _value(match: re.Match) -> tuple[float, str] | None:
    if match["pct"] is not None:
        raw = match["pct"]
        if re.fullmatch(_ARABIC, raw):
            return float(raw.replace(",", "")), "%"
        whole, _, frac = raw.partition("点")
        value = parse_chinese_number(whole)
        if value is None:
            return None
        if frac:
            value += float("0." + "".join(str(_CN_DIGIT[ch]) for ch in frac))
        return value, "%"
    if match["num"] is not None:
        value = float(match["num"].replace(",", ""))
        unit = match["unit"]
        mult = match["mult"] or ""
        if unit in ("万元", "亿元"):
            mult, unit = mult + unit[0], "元"
        elif unit == "万人":
            mult, unit = mult + "万", "人"
        for ch in mult:
            value *= _MULTIPLIERS[ch]
        return round(value, 6), unit
    value = parse_chinese_number(match["cn"])
    return (value, match["cn_unit"]) if value is not None else None


def _metric_before(clause_text: str) -> str:
    text = _LEADING_FILLER.sub("", clause_text.strip())
    previous = None
    while previous != text:  # 达到 after 共: strip until nothing changes
        previous = text
        text = _TRAILING_VERB.sub("", text).strip()
        text = _LEADING_FILLER.sub("", text).strip()
    return text


def extract_figures(text: str) -> list[Figure]:
    """Every figure in ``text`` (a chunk), with its metric, value, unit and qualifiers.

    Years, dates, ordinals (第3), phone-like numbers and named reforms written with numerals
    (三项制度, 一件事) are not figures. Offsets index into ``text``; since the matching form
    keeps one character per character for Chinese text, they are offsets in the stored text too.
    """
    form = matching_form(text)
    if len(form) != len(text):  # NFKC changed the length (rare ligatures): offsets from the form
        text = form
    figures: list[Figure] = []
    for s_start, s_end in sentence_spans(form):
        sentence = form[s_start:s_end]
        last_end, last_metric = 0, ""
        for match in FIGURE.finditer(sentence):
            parsed = _value(match)
            if parsed is None:
                continue
            if match["cn"] is not None and _NOT_A_COUNT_AFTER.match(sentence[match.end():]):
                continue
            if match["num"] is not None and match.start("num") > 0 and sentence[match.start("num") - 1].isdigit():
                continue
            value, unit = parsed
            # The metric: this clause's text since the previous figure, trimmed of fillers.
            clause_start = max(last_end, max((m.end() for m in _CLAUSE_END.finditer(sentence, 0, match.start())),
                                             default=0))
            before = sentence[clause_start:match.start()]
            qualifiers = [q for q in (match["hedge"], match["approx"], match["cn_approx"]) if q]
            change = _CHANGE.search(_TRAILING_VERB.sub("", before.strip()))
            metric = _metric_before(before)
            if change:
                qualifiers.append(change.group(0))
                metric = _metric_before(_CHANGE.sub("", _TRAILING_VERB.sub("", before.strip())))
                if not metric:
                    metric = last_metric  # 同比增长204%: the change of the figure before it
            if len(metric) <= 2 or metric.endswith("等"):
                # 10924名人民调解员…, 建立23个服务站: the counted thing follows the number.
                after = sentence[match.end():]
                cut = re.search(r"[，,。；;：:、\d]|全年|共|累计|参与|开展|办理|调解|受理", after)
                metric = (metric + after[:cut.start() if cut else 12][:12]).strip()
            clause_end = next((m.start() for m in _CLAUSE_END.finditer(sentence, match.end())), len(sentence))
            clause_from = max((m.end() for m in _CLAUSE_END.finditer(sentence, 0, match.start())), default=0)
            figures.append(Figure(metric=metric, value=value, unit=unit, text=match.group(0),
                                  qualifiers="|".join(qualifiers), sentence=text[s_start:s_end].strip(),
                                  clause=text[s_start + clause_from:s_start + clause_end].strip(),
                                  start=s_start + match.start(), end=s_start + match.end()))
            last_end, last_metric = match.end(), metric or last_metric
    return figures


# The loose reading, for checking what an answer states: any number, with an optional 万/亿 and
# % sign, as written by a model in any language. Chinese-numeral years were made Arabic by the
# matching form.
_LOOSE = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*(万|亿)?\s*(%|％)?")
# Dates (12月31日, 1月) are not figures: reports write "截至年底" where a model writes a date.
_DATE = re.compile(r"\d{1,2}月(\d{1,2}[日号])?|\d{1,2}[日号]")
_LOOSE_MULTIPLIER = {"万": 1e4, "亿": 1e8, None: 1.0}


def stated_figures(text: str) -> list[Figure]:
    """Every number a text states, as values (``1.26万`` -> 12600, unit ``%`` or '').

    Unlike ``extract_figures`` no unit or metric is needed: this is how an answer's figures are
    checked against its passages. Years (2024), dates and ``[n]`` markers are skipped.
    """
    text = _DATE.sub(" ", MARKER.sub(" ", matching_form(text)))
    found = []
    for m in _LOOSE.finditer(text):
        whole, decimals, multiplier, percent = m.groups()
        number = whole.replace(",", "") + (decimals or "")
        if is_year(number) and not multiplier and not percent:
            continue
        found.append(Figure(metric="", value=float(number) * _LOOSE_MULTIPLIER[multiplier],
                            unit="%" if percent else "", text=m.group().strip()))
    return found


def same_value(figure: Figure, sources: list[Figure]) -> bool:
    """Whether a figure equals one of the sources by value (a percentage only a percentage)."""
    return any(abs(figure.value - s.value) <= 1e-6 * max(1.0, abs(s.value)) and figure.percent == s.percent
               for s in sources)
