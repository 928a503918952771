"""List questions' category words and what names their instances (``data/list_kinds.toml``).

Example:
    >>> asked_kind("侯马市2023年有哪些单位获得了全国性荣誉？")
    ('荣誉', '被评为|评为|授予|荣获|获评|命名为|入选|称号|表彰')
"""

from __future__ import annotations

import re

from rag.text.lexicons import LEXICONS

_WHICH = re.compile(r"哪些|什么|哪几|哪三|哪两")
_KINDS = [(re.compile(k["words"]), k["instance"]) for k in LEXICONS.list_kinds]
# A question asking for the names themselves (which ones, examples), over the matching form.
_ASKS_NAMES = re.compile(r"哪些|哪几|哪三|哪两|列举|举了?什么|有什么|\bwhich\b|\bwhat (?:are|were) the\b|\blist\b|"
                         r"\bname (?:the|some)\b|\bexamples?\b", re.IGNORECASE)
# A name as the reports set it apart: “企业开办”, 《行政复议法》, 「一件事」.
_QUOTED = re.compile(r"[“「『《\"]([^“”「」『』《》\"\n]{2,30})[”」』》\"]")


def asked_kind(question: str) -> tuple[str, str] | None:
    """The category word a "which ones" question names and the pattern of its instances, or None."""
    for which in _WHICH.finditer(question):
        window = question[which.end():which.end() + 16]
        for words, instance in _KINDS:
            m = words.search(window)
            if m and m.start() <= 10:
                return m.group(0), instance
    return None


def asks_names(question: str) -> bool:
    """Whether a question asks which ones or for examples (哪些, 列举, which, examples)."""
    return bool(_ASKS_NAMES.search(question))


def quoted_names(text: str) -> list[str]:
    """The names a text sets apart in quotes or title marks, in order, once each."""
    return list(dict.fromkeys(m.group(1).strip() for m in _QUOTED.finditer(text)))
