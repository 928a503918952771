"""Text normalisation shared by ingestion and retrieval.

Stored text keeps the report's own characters (traditional stays traditional). Everything
that *matches* text -- debris rules, metadata detection, embeddings, keyword search, the
evaluation's answer checks -- works on the *matching form* instead: simplified characters,
half-width letters, digits and punctuation, lower case, single spaces.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000\ufeff]+")
# Full-width ASCII letters and digits (Ａ-Ｚ, ａ-ｚ, ０-９) and the ideographic space.
_FULLWIDTH_ALNUM = {cp: cp - 0xFEE0 for cp in range(0xFF10, 0xFF5B) if chr(cp - 0xFEE0).isalnum()}
_FULLWIDTH_ALNUM[0x3000] = 0x20


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Convert traditional Chinese characters to simplified ones (OpenCC ``t2s``)."""
    return _t2s().convert(text) if text else text


def normalise_stored(text: str) -> str:
    """Normalise text for storage without changing its characters' identity.

    Full-width letters and digits become half-width (``２０２４`` -> ``2024``); runs of spaces,
    tabs, non-breaking and ideographic spaces become one space; line ends are stripped.
    Chinese punctuation and traditional characters are kept as written.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_FULLWIDTH_ALNUM)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(lines)


def matching_form(text: str) -> str:
    """The form in which text is compared: simplified, NFKC (half-width), lower case, single spaces.

    Example:
        >>> matching_form("太倉市　２０２４年（一）")
        '太仓市 2024年(一)'
    """
    text = unicodedata.normalize("NFKC", to_simplified(text)).lower()
    return _SPACES.sub(" ", text).strip()


def traditional_ratio(text: str) -> float:
    """Share of Han characters that OpenCC changes when simplifying (0.0 for simplified text)."""
    han = [ch for ch in text if "\u4e00" <= ch <= "\u9fff"]
    if not han:
        return 0.0
    sample = "".join(han[:20000])
    simplified = to_simplified(sample)
    changed = sum(1 for a, b in zip(sample, simplified) if a != b)
    return changed / len(sample)


def detect_script(text: str) -> str:
    """``zh-Hant`` when a noticeable share of characters is traditional, else ``zh-Hans``."""
    # Simplified reports still contain a few characters OpenCC rewrites (e.g. 乾, 著);
    # genuine traditional text changes a fifth or more of its characters.
    return "zh-Hant" if traditional_ratio(text) > 0.05 else "zh-Hans"


_CN_DIGITS = {"〇": "0", "零": "0", "○": "0", "Ｏ": "0", "一": "1", "二": "2", "三": "3", "四": "4",
              "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_CN_YEAR = re.compile(r"[〇零○Ｏ一二三四五六七八九]{4}(?=年)")


def arabic_years(text: str) -> str:
    """Rewrite years written in Chinese numerals (``二〇二四年``) with Arabic digits."""
    return _CN_YEAR.sub(lambda m: "".join(_CN_DIGITS[c] for c in m.group()), text)
