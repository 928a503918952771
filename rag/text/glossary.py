"""English terms of the rule-of-law report genre, mapped to the Chinese the reports use.

English questions find passages through the multilingual embeddings, but keyword search and
extractive sentence matching need the reports' own words. This glossary is the genre's
standard vocabulary (法治政府建设年度报告 terms, as in official English translations), not a
list tuned to particular questions; words it does not know are simply not matched.
"""

from __future__ import annotations

import re

from rag.text.lexicons import LEXICONS

# English phrase (lower case, singular) -> Chinese terms: rag/text/data/glossary.toml.
GLOSSARY: dict[str, str] = LEXICONS.glossary

_PLURAL = re.compile(r"(?<=[a-z])(ies|s)\b")


def _singular(text: str) -> str:
    return _PLURAL.sub(lambda m: "y" if m.group(1) == "ies" else "", text)


_PATTERNS = sorted(((re.compile(r"\b" + re.escape(_singular(k)) + r"\b"), v) for k, v in GLOSSARY.items()),
                   key=lambda kv: -len(kv[0].pattern))


def english_to_chinese(text: str) -> str:
    """The Chinese terms (and numbers) of an English question, space-separated.

    Example:
        >>> english_to_chinese("How many legal aid cases did Mianyang handle?")
        '法律援助 案件'
    """
    remaining = _singular(text.lower().replace("’", "'"))
    found: list[str] = []
    for pattern, chinese in _PATTERNS:
        if pattern.search(remaining):
            found.append(chinese)
            remaining = pattern.sub(" ", remaining)
    numbers = re.findall(r"\d+(?:\.\d+)?%?", remaining)
    return " ".join(found + numbers)
