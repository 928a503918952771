"""What a question asks to compute from the figures a report states (``data/arithmetic.toml``).

Example:
    >>> asked_operation("太原市和绵阳市新收行政复议案件合计多少件")
    ('sum', '合计')
    >>> asked_operation("立法建议的采纳率超过三分之一了吗")
    ('threshold', '超过三分之一了吗')
"""

from __future__ import annotations

import re
from typing import Literal

from rag.text.lexicons import LEXICONS

Operation = Literal["rank", "threshold", "ratio", "share", "rate", "average", "difference", "sum"]
OPERATIONS: dict[str, re.Pattern] = {name: re.compile(pattern, re.IGNORECASE)
                                     for name, pattern in LEXICONS.arithmetic["operations"].items()}
FRACTION_WORDS: dict[str, float] = {k: float(v) for k, v in LEXICONS.arithmetic.get("words", {}).items()}


def asked_operation(text: str) -> tuple[Operation | None, str]:
    """The first operation whose pattern the (normalised) text matches, and the words matched."""
    for name, pattern in OPERATIONS.items():
        m = pattern.search(text)
        if m:
            return name, m.group(0)
    return None, ""


def without_operation(text: str, operation: Operation) -> str:
    """The text without the words asking for ``operation`` (every occurrence); a rate keeps its
    stem (胜诉率 -> 胜诉), since the count it is computed from is stated."""
    pattern = OPERATIONS[operation]
    if operation == "rate":
        return pattern.sub(lambda m: m.group(0)[:-1], text)
    return pattern.sub(" ", text)
