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


def asked_kind(question: str) -> tuple[str, str] | None:
    """The category word a "which ones" question names and the pattern of its instances, or None."""
    for which in _WHICH.finditer(question):
        window = question[which.end():which.end() + 16]
        for words, instance in _KINDS:
            m = words.search(window)
            if m and m.start() <= 10:
                return m.group(0), instance
    return None
