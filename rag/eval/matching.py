"""How answers and passages are matched against a question set's expectations.

CONTRACT.md: matching ignores spaces, punctuation, full/half width, traditional vs
simplified characters and thousands separators; a number must not be part of a longer number.

Example:
    >>> contains("新收行政復議申請 1,274 件", "1274件")
    True
    >>> contains("共12740件", "1274")
    False
"""

from __future__ import annotations

import re
import unicodedata

from rag.text.markers import MARKER
from rag.text.normalize import matching_form

_THOUSANDS = re.compile(r"(?<=\d)[,，](?=\d{3}(?!\d))")
# Whatever separates two numbers ("1274、860", "1274 204%") must keep them apart.
_BETWEEN_NUMBERS = re.compile(r"(?<=\d)[^\w%.+\-]+(?=\d)")


def _keep(ch: str) -> bool:
    # Drop spaces and punctuation, but keep what changes a figure's meaning: % and the
    # decimal point (handled by the caller) and the few symbols that read as words.
    if ch in "%.+-|":
        return True
    category = unicodedata.category(ch)
    return not (category.startswith("P") or category.startswith("Z") or category in ("Cc", "Cf"))


def normalise(text: str) -> str:
    """Matching form without spaces, punctuation or thousands separators."""
    text = _THOUSANDS.sub("", matching_form(text or ""))
    text = _BETWEEN_NUMBERS.sub("|", MARKER.sub(" ", text))
    text = "".join(ch for ch in text if _keep(ch))
    # A full stop is punctuation except between digits (1.26万).
    return re.sub(r"\.(?!\d)|(?<!\d)\.", "", text)


def _is_digitlike(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i].isdigit()


def contains(haystack: str, needle: str) -> bool:
    """True when ``needle`` occurs in ``haystack`` under the matching rules.

    A needle that starts or ends with a digit must not continue a longer number there:
    "1274" is not found in "12740", and "1.2" is not found in "1.26".
    """
    hay, pin = normalise(haystack), normalise(needle)
    if not pin:
        return False
    start = hay.find(pin)
    while start != -1:
        end = start + len(pin)
        before_ok = not (pin[0].isdigit() and (_is_digitlike(hay, start - 1)
                                               or (start >= 2 and hay[start - 1] == "." and hay[start - 2].isdigit())))
        after_ok = not (pin[-1].isdigit() and (_is_digitlike(hay, end)
                                               or (hay[end:end + 1] == "." and _is_digitlike(hay, end + 1))))
        if before_ok and after_ok:
            return True
        start = hay.find(pin, start + 1)
    return False


def matches_all_groups(answer: str, groups: list[list[str]]) -> tuple[bool, list[list[str]]]:
    """Whether every group has an alternative in the answer; also the groups that missed."""
    missed = [group for group in groups if not any(contains(answer, alt) for alt in group)]
    return not missed, missed
