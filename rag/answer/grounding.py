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

from rag.text.figures import Figure, same_value, stated_figures
from rag.text.normalize import matching_form
from rag.text.sentences import sentence_pieces, char_bigrams

_MARKERS = re.compile(r"\[(\d+)\]")  # after resolve_citations every marker is [n]
# "1. 太原市…" / "2）…": list numbering is not a figure.
_LIST_NUMBER = re.compile(r"^(\s*)\d{1,2}\s*[.、)）](?!\d)")
@dataclass
class GroundingReport:
    """What the check found."""

    answer: str  # the answer with ungrounded sentences removed
    grounded: bool  # True when nothing had to be removed
    ungrounded: list[str] = field(default_factory=list)  # the figures not found, as written
    removed: list[str] = field(default_factory=list)  # the sentences removed


def _sentences(text: str) -> list[str]:
    """Sentences, keeping a list number ("1. ") with the sentence it numbers."""
    pieces = sentence_pieces(text)
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
        found.extend(stated_figures(_LIST_NUMBER.sub(r"\1", sentence)))
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
    all_sources = [f for text in cited_texts.values() for f in stated_figures(text)]
    kept, removed, ungrounded = [], [], []
    for sentence in _sentences(answer):
        numbers = [int(n) for n in _MARKERS.findall(sentence)]
        sources = [f for n in numbers for f in stated_figures(cited_texts.get(n, ""))] if numbers else all_sources
        body = _LIST_NUMBER.sub(r"\1", sentence)
        missing = [f.text for f in stated_figures(body) if not same_value(f, sources)]
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


def attribute(answer: str, passages: list[str]) -> str:
    """Add ``[n]`` markers to sentences the model left uncited, where a passage clearly supports them.

    Small models often answer correctly but forget the markers. A sentence with figures is
    attributed to the passage holding all of them (the one sharing most words, if several);
    a sentence without figures to the passage sharing most of its character pairs (at least
    40% and four of them). Sentences nothing supports stay uncited (and fail the grounding check if they hold
    figures).
    """
    parsed = [stated_figures(p) for p in passages]
    grams = [char_bigrams(matching_form(p)) for p in passages]
    out = []
    for sentence in _sentences(answer):
        if _MARKERS.search(sentence) or not sentence.strip():
            out.append(sentence)
            continue
        body = _LIST_NUMBER.sub(r"\1", sentence)
        own, own_grams = stated_figures(body), char_bigrams(matching_form(body))
        if own:
            candidates = [i for i, fs in enumerate(parsed) if all(same_value(f, fs) for f in own)]
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
    ref = stated_figures(reference)
    return any(same_value(f, ref) for f in stated_figures(answer))
