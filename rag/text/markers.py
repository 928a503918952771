"""Citation markers: ``[1]``, ``[1,2]``, ``[1][2]``, ``【1】``, ``[1-3]``, the forms models write.

The one parser of them, used by citation resolution, grounding, highlighting and the judge.
"""

from __future__ import annotations

import re

MARKER = re.compile(r"[\[【]\s*(\d+(?:\s*[,，、\-–]\s*\d+)*)\s*[\]】]")
MAX_RANGE = 10  # [2-40] is two numbers, not a range: nobody cites 39 passages at once


def marker_numbers(group: str) -> list[int]:
    """The passage numbers inside one marker's brackets (``"1-3"`` -> [1, 2, 3])."""
    nums: list[int] = []
    for part in re.split(r"\s*[,，、]\s*", group):
        if re.fullmatch(r"\d+\s*[\-–]\s*\d+", part):
            a, b = (int(x) for x in re.split(r"\s*[\-–]\s*", part))
            nums.extend(range(a, b + 1) if 0 < b - a < MAX_RANGE else [a, b])
        elif part.strip().isdigit():
            nums.append(int(part))
    return nums


def cited_numbers(text: str) -> list[int]:
    """Every passage number the text's markers cite, in order of first use."""
    return list(dict.fromkeys(n for m in MARKER.finditer(text) for n in marker_numbers(m.group(1))))


def strip_markers(text: str, replacement: str = "") -> str:
    """The text without its markers."""
    return MARKER.sub(replacement, text)
