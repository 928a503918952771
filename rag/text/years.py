"""Years: the one place that says what a year looks like in a report, a file name or a question.

A year is 19xx or 20xx standing alone (not inside a longer number or a decimal).
``years_in_question`` also skips a number followed by a measure word (2024件 is a count).

Example:
    >>> years_in_question("太原2024年新收2024件？"), years_before_nian("2023年,侯马市…2024年")
    ([2024], [2023, 2024])
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CORE = r"(?:19|20)\d{2}"
# Any standalone year (file names, stamps): not part of a longer run of digits.
YEAR = re.compile(rf"(?<!\d)({_CORE})(?!\d)")
# A year written as one in report text: followed by 年.
YEAR_NIAN = re.compile(rf"(?<!\d)({_CORE})\s*年")
# A year in a question: not a decimal, percentage or count (2024件, 2000万).
QUESTION_YEAR = re.compile(rf"(?<![\d.])({_CORE})(?![\d.%])(?!\s*(?:件|个|人|次|万|亿|元|起|项|家|名))")
DATE_CN = re.compile(rf"({_CORE})\s*年\s*(\d{{1,2}})\s*月\s*(\d{{1,2}})\s*日")
DATE_ISO = re.compile(rf"({_CORE})[-/.](\d{{1,2}})[-/.](\d{{1,2}})")
_WHOLE = re.compile(rf"^{_CORE}$")


def is_year(number: str) -> bool:
    """Whether a bare number, as written, reads as a year (``2024``; not ``2024.5``)."""
    return bool(_WHOLE.match(number))


def years_in_question(text: str) -> list[int]:
    """The years a question names, sorted, once each."""
    return sorted({int(y) for y in QUESTION_YEAR.findall(text)})


def years_before_nian(text: str) -> list[int]:
    """The years written ``2024年`` in a text, in order, repeats kept (for counting)."""
    return [int(y) for y in YEAR_NIAN.findall(text)]


# --- several years of one place ("近三年", "历年", "2022—2024年", "over the last three years") ---

_CN_COUNT = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
# "近三年", "最近两年", "过去5年", "近三年来": the latest N calendar years of the place's reports.
# Not 提前三年 (ahead of schedule): the span word stands at a word's start, not after 提.
_RECENT = re.compile(r"(?<!提)(?:最近|近|过去|前)(?P<n>[一二两三四五六七八九十]|\d{1,2})(?:个)?年(?:来|以来|间|度)?")
# "历年", "逐年", "这几年", "近年来", "各年度": every year the index holds for the place.
_ALL_YEARS = re.compile(r"历年(?:来|以来)?|逐年|每一?年(?:度)?|各年度?|这几年|这些年|近几年|最近几年|近年(?:来|以来)?|多年来")
# "2022—2024年", "2022年至2024年", "2022到2024年", "2022-2024年": every year between.
# Not a plan's period ("2021-2025年规划", "2021—2025年实施方案"): the plan is one document.
_RANGE = re.compile(rf"(?<![\d(])(?P<a>{_CORE})\s*年?\s*(?:—|–|-|~|至|到)\s*(?P<b>{_CORE})\s*年?(?!\d)"
                    r"(?!\s*年?\s*(?:规划|纲要|行动计划|实施方案|五年))")
_EN_COUNT = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10}
_EN_RECENT = re.compile(r"\b(?:the\s+)?(?:last|past|previous|recent)\s+(?P<n>two|three|four|five|six|ten|\d{1,2})\s+years\b")
_EN_ALL = re.compile(r"\bover the years\b|\byear by year\b|\beach year\b|\bevery year\b|\bin recent years\b"
                     r"|\bover time\b|\byear after year\b|\bacross the years\b")
_EN_RANGE = re.compile(rf"\b(?:from|between)\s+(?P<a>{_CORE})\s+(?:to|and|until|through)\s+(?P<b>{_CORE})\b")


@dataclass
class YearSpan:
    """Several years a question asks about for one place.

    Attributes:
        kind: ``recent`` (the latest ``n`` years: 近三年), ``all`` (every indexed year: 历年,
            逐年) or ``range`` (``start``…``end``: 2022—2024年).
        text: the words saying so, as they stand in the question (they leave its terms).
    """

    kind: str
    text: str
    n: int = 0
    start: int = 0
    end: int = 0

    def resolve(self, held: list[int]) -> tuple[list[int], list[int]]:
        """The years of the span that the index holds, and those it asks for but lacks.

        Args:
            held: the years of the place's indexed reports.

        Example:
            >>> YearSpan("recent", "近三年", n=3).resolve([2020, 2022, 2024])
            ([2022, 2024], [2023])
        """
        held = sorted(set(held))
        if not held:
            return [], []
        if self.kind == "all":
            return held, []
        if self.kind == "recent":
            # Counted back from the place's latest report, not from today: a library whose
            # newest report is 2024 answers "近三年" with 2022–2024.
            wanted = list(range(held[-1] - self.n + 1, held[-1] + 1))
        else:
            wanted = list(range(self.start, self.end + 1))
        return [y for y in wanted if y in held], [y for y in wanted if y not in held]


def _count(text: str) -> int:
    if text.isdigit():
        return int(text)
    return _CN_COUNT.get(text, 0) or _EN_COUNT.get(text, 0)


def year_span(text: str) -> YearSpan | None:
    """The span of years a normalised question asks about ("近三年", "历年", "2022—2024年"), if any.

    Two years named side by side ("2023年和2024年") are not a span: they are the question's years.

    Example:
        >>> year_span("太原市近三年新收行政复议案件的变化")
        YearSpan(kind='recent', text='近三年', n=3, start=0, end=0)
    """
    for pattern in (_RANGE, _EN_RANGE):
        m = pattern.search(text)
        if m and int(m["a"]) < int(m["b"]) <= int(m["a"]) + 30:
            return YearSpan("range", m.group(0), start=int(m["a"]), end=int(m["b"]))
    for pattern in (_RECENT, _EN_RECENT):
        m = pattern.search(text)
        if m and 2 <= _count(m["n"]) <= 30:
            return YearSpan("recent", m.group(0), n=_count(m["n"]))
    for pattern in (_ALL_YEARS, _EN_ALL):
        m = pattern.search(text)
        if m:
            return YearSpan("all", m.group(0))
    return None
