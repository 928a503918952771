"""Grounding check: every figure an LLM writes must be in a passage it cites.

Small models copy figures well but sometimes invent one (MODELS.md saw it happen for a year
the passages did not cover). After generation, each sentence's figures are looked up in the
passages that sentence cites (or, for a sentence without a marker, in all cited passages).
Figures are compared by value, so "1.26万" in a report grounds "12600" in an English answer,
and "1,274" grounds "1274". A sentence with an ungrounded figure is removed; what remains is
the answer, or, if nothing with a citation remains, the answerer falls back to its
extractive answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.text.normalize import matching_form

_MARKERS = re.compile(r"\[(\d+)\]")
# Sentence ends: Chinese and English terminators (a full stop only when not a decimal point).
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;\n])|(?<=\.)(?=\s)")  # a decimal point is never followed by a space
# "1. 太原市…" / "2）…": list numbering is not a figure.
_LIST_NUMBER = re.compile(r"^(\s*)\d{1,2}\s*[.、)）](?!\d)")
# A figure: digits (thousands separators allowed), optional decimals, then an optional
# 万/亿 multiplier and % sign. Chinese-numeral years were made Arabic by the matching form.
_FIGURE = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*(万|亿)?\s*(%|％)?")
_YEAR = re.compile(r"^(19|20)\d{2}$")
# Dates (12月31日, 1月) are not figures: reports write "截至年底" where a model writes a date.
_DATE = re.compile(r"\d{1,2}月(\d{1,2}[日号])?|\d{1,2}[日号]")
_MULTIPLIER = {"万": 1e4, "亿": 1e8, None: 1.0}


@dataclass
class Figure:
    text: str
    value: float
    percent: bool


@dataclass
class GroundingReport:
    """What the check found."""

    answer: str  # the answer with ungrounded sentences removed
    grounded: bool  # True when nothing had to be removed
    ungrounded: list[str] = field(default_factory=list)  # the figures not found, as written
    removed: list[str] = field(default_factory=list)  # the sentences removed


def figures(text: str) -> list[Figure]:
    """The figures in a text, as values (``1.26万`` -> 12600). Years (2024) and [n] markers are skipped."""
    text = _DATE.sub(" ", _MARKERS.sub(" ", matching_form(text)))
    found = []
    for m in _FIGURE.finditer(text):
        whole, decimals, multiplier, percent = m.groups()
        number = whole.replace(",", "") + (decimals or "")
        if _YEAR.match(number) and not multiplier and not percent:
            continue
        found.append(Figure(text=m.group().strip(), value=float(number) * _MULTIPLIER[multiplier],
                            percent=bool(percent)))
    return found


def _sentences(text: str) -> list[str]:
    """Sentences, keeping a list number ("1. ") with the sentence it numbers."""
    pieces = [p for p in _SENTENCE_END.split(text) if p]
    merged: list[str] = []
    for piece in pieces:
        if merged and re.fullmatch(r"\s*\d{1,2}\.", merged[-1]):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def answer_figures(text: str) -> list[Figure]:
    """The figures an answer states: ``figures`` without list numbering ("1. 太原市…")."""
    found = []
    for sentence in _sentences(text):
        found.extend(figures(_LIST_NUMBER.sub(r"\1", sentence)))
    return found


def _named_places(body: str, place_names: dict[str, str]) -> set[str]:
    """Places a sentence names: indexed ones by any spelling, others by their full name (海南省)."""
    from rag.text.places import Gazetteer

    form = matching_form(body)
    named = {region for name, region in place_names.items() if name in form}
    named |= {m.name for m in Gazetteer.default().find(form)}
    return named


def _place_supported(place: str, cited_regions: set[str], cited_forms: list[str]) -> bool:
    from rag.text.places import Gazetteer

    if place in cited_regions or any(place in form for form in cited_forms):
        return True
    provinces = {Gazetteer.default().province_of(r) for r in cited_regions if r}
    return place in provinces


def is_grounded(figure: Figure, sources: list[Figure]) -> bool:
    """Whether a figure equals one of the sources by value (a percentage only a percentage)."""
    return any(abs(figure.value - s.value) <= 1e-6 * max(1.0, abs(s.value)) and figure.percent == s.percent
               for s in sources)


def check_grounding(answer: str, cited_texts: dict[int, str], cited_regions: dict[int, str] | None = None,
                    place_names: dict[str, str] | None = None) -> GroundingReport:
    """Remove the sentences of ``answer`` whose figures are not in the passages they cite.

    Args:
        answer: the answer with ``[n]`` markers already renumbered to the cited passages.
        cited_texts: the cited passages' texts by their number ``n``.
        cited_regions: the cited passages' places by ``n``; with ``place_names`` (spelling ->
            place), a sentence that names a place but cites only other places' passages is
            removed too ("太仓：5万余件[1]" citing Shijiazhuang's passage).
    """
    all_sources = [f for text in cited_texts.values() for f in figures(text)]
    kept, removed, ungrounded = [], [], []
    for sentence in _sentences(answer):
        numbers = [int(n) for n in _MARKERS.findall(sentence)]
        sources = [f for n in numbers for f in figures(cited_texts.get(n, ""))] if numbers else all_sources
        body = _LIST_NUMBER.sub(r"\1", sentence)
        missing = [f.text for f in figures(body) if not is_grounded(f, sources)]
        if numbers and cited_regions is not None and place_names is not None:
            # A place the sentence names must be the cited passage's place (or its province) or
            # appear in the passage: "海南省：…150件[1]" citing Houma's passage is not grounded.
            cited = {cited_regions.get(n) for n in numbers}
            forms = [matching_form(cited_texts.get(n, "")) for n in numbers]
            missing += sorted(p for p in _named_places(body, place_names) if not _place_supported(p, cited, forms))
        if missing:
            removed.append(sentence.strip())
            ungrounded.extend(missing)
        else:
            kept.append(sentence)
    text = "".join(kept).strip()
    return GroundingReport(answer=text, grounded=not removed, ungrounded=ungrounded, removed=removed)


def _bigrams(text: str) -> set[str]:
    form = re.sub(r"\W", "", matching_form(text))
    return {form[i:i + 2] for i in range(len(form) - 1)}


def attribute(answer: str, passages: list[str]) -> str:
    """Add ``[n]`` markers to sentences the model left uncited, where a passage clearly supports them.

    Small models often answer correctly but forget the markers. A sentence with figures is
    attributed to the passage holding all of them (the one sharing most words, if several);
    a sentence without figures to the passage sharing most of its character pairs (at least
    40% and four of them). Sentences nothing supports stay uncited (and fail the grounding check if they hold
    figures).
    """
    parsed = [figures(p) for p in passages]
    grams = [_bigrams(p) for p in passages]
    out = []
    for sentence in _sentences(answer):
        if _MARKERS.search(sentence) or not sentence.strip():
            out.append(sentence)
            continue
        body = _LIST_NUMBER.sub(r"\1", sentence)
        own, own_grams = figures(body), _bigrams(body)
        if own:
            candidates = [i for i, fs in enumerate(parsed) if all(is_grounded(f, fs) for f in own)]
        else:
            candidates = [i for i, g in enumerate(grams)
                          if len(own_grams & g) >= max(4, 0.4 * len(own_grams))]
        if candidates:
            best = max(candidates, key=lambda i: len(own_grams & grams[i]))
            stripped = sentence.rstrip()
            end = len(stripped.rstrip("。！？；!?;.\n"))
            sentence = f"{stripped[:end]}[{best + 1}]{stripped[end:]}{sentence[len(stripped):]}"
        out.append(sentence)
    return "".join(out)


def shares_a_figure(answer: str, reference: str) -> bool:
    """Whether the answer states at least one figure (by value) that the reference states."""
    ref = figures(reference)
    return any(is_grounded(f, ref) for f in figures(answer))
