"""Years: the one place that says what a year looks like in a report, a file name or a question.

A year is 19xx or 20xx standing alone (not inside a longer number or a decimal).
``years_in_question`` also skips a number followed by a measure word (2024件 is a count).

Example:
    >>> years_in_question("太原2024年新收2024件？"), years_before_nian("2023年,侯马市…2024年")
    ([2024], [2023, 2024])
"""

from __future__ import annotations

import re

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
