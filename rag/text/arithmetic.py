"""What a question asks to compute from the figures a report states (``data/arithmetic.toml``).

Example:
    >>> asked_operation("太原市和绵阳市新收行政复议案件合计多少件")
    ('sum', '合计')
    >>> asked_operation("立法建议的采纳率超过三分之一了吗")
    ('threshold', '超过三分之一了吗')
    >>> asked_superlative("哪个城市办理的政协提案最少")
    ('least', '最少')
"""

from __future__ import annotations

import re
from typing import Literal

from rag.text.lexicons import LEXICONS

Operation = Literal["infer", "rank", "threshold", "ratio", "share", "rate", "average", "difference", "sum"]
OPERATIONS: dict[str, re.Pattern] = {name: re.compile(pattern, re.IGNORECASE)
                                     for name, pattern in LEXICONS.arithmetic["operations"].items()}
INFER_WORDS = re.compile(LEXICONS.arithmetic["infer"]["words"])
INFER_CHANGE = re.compile(LEXICONS.arithmetic["infer"]["change"], re.IGNORECASE)
Superlative = Literal["most", "least"]
_SUPERLATIVES = {name: re.compile(LEXICONS.arithmetic["superlatives"][name], re.IGNORECASE) for name in ("most", "least")}
_WHICH = re.compile(LEXICONS.arithmetic["superlatives"]["which"], re.IGNORECASE)
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
    if operation == "infer":
        return INFER_WORDS.sub(" ", pattern.sub(" ", text))
    if operation == "rate":
        return pattern.sub(lambda m: m.group(0)[:-1], text)
    if operation == "share":  # "A相当于B的百分之几": 相当于 parts A from B
        return pattern.sub(lambda m: "、" if m.group(0).startswith("相当于") else " ", text)
    return pattern.sub(" ", text)


def asked_superlative(text: str) -> tuple[Superlative | None, str]:
    """Whether the (normalised) text asks which is largest or smallest ("哪个…最多", "which … the
    fewest"), and the words saying so; the first superlative in the text decides."""
    if not _WHICH.search(text):
        return None, ""
    found = [(m.start(), name, m.group(0)) for name, pattern in _SUPERLATIVES.items() for m in [pattern.search(text)] if m]
    if not found:
        return None, ""
    _, name, words = min(found)
    return name, words
