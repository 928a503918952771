"""Highlights: which sentences of a cited passage the answer rests on.

The answer's text before each ``[n]`` marker (back to the previous marker or line start) is
what it takes from passage n. Each of its sentences is matched to the passage sentence sharing
the most with it: character bigrams of the matching form (so traditional passages match
simplified answers) plus a bonus for each shared number, since figures are what answers cite.
Extractive answers copy their sentences, so the match is exact; LLM answers paraphrase, and the
sentence holding the same figures and terms wins.

Example:
    >>> cited_text("太原市（2024年）：全年新收行政复议案件1274件。[1]")
    {1: ['太原市(2024年):全年新收行政复议案件1274件']}
    >>> passage = "一、概况。全年新收行政复议案件1274件,同比增长204%。其他工作。"
    >>> [passage[s:e] for s, e in highlight_spans(passage, ["新收行政复议案件1274件"])]
    ['全年新收行政复议案件1274件,同比增长204%。']
"""

from __future__ import annotations

import re

from rag.text.markers import MARKER, marker_numbers
from rag.text.normalize import matching_form
from rag.text.sentences import sentence_spans, split_sentences, char_bigrams
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_PUNCT = re.compile(r"[\s\W_]+")
NUMBER_WEIGHT = 3  # a shared figure counts as much as three shared bigrams
MIN_SCORE = 3  # below this a passage sentence shares too little to be called the cited one


def cited_text(answer: str) -> dict[int, list[str]]:
    """For each citation number, the answer's text that cites it (markers removed).

    Args:
        answer: an answer with ``[n]`` markers (after ``resolve_citations``).
    """
    cited: dict[int, list[str]] = {}
    start = 0
    for match in MARKER.finditer(answer):
        segment = answer[start:match.start()]
        # Text since the previous marker on the same line; a line break starts a new claim.
        segment = segment.rsplit("\n", 1)[-1].strip(" ，,。;；:：")
        start = match.end()
        if not segment:  # [1][2]: the second marker cites the same text as the first
            segment = _previous_segment(answer, match.start())
        segment = matching_form(segment)
        for n in marker_numbers(match.group(1)):
            if segment and segment not in cited.setdefault(n, []):
                cited[n].append(segment)
    return cited


def _previous_segment(answer: str, end: int) -> str:
    before = MARKER.sub("\x00", answer[:end]).rstrip("\x00 ")
    return before.rsplit("\x00", 1)[-1].rsplit("\n", 1)[-1].strip(" ，,。;；:：")


def _score(claim: str, sentence: str) -> int:
    shared_numbers = set(_NUMBER.findall(claim)) & set(_NUMBER.findall(sentence))
    return len(char_bigrams(claim) & char_bigrams(sentence)) + NUMBER_WEIGHT * len(shared_numbers)


def highlight_spans(passage: str, claims: list[str]) -> list[tuple[int, int]]:
    """The spans of the passage sentences that the claims rest on, in reading order.

    Args:
        passage: the cited passage as stored.
        claims: the answer's text citing it (``cited_text(answer)[n]``).
    """
    spans = sentence_spans(passage)
    forms = [matching_form(passage[s:e]) for s, e in spans]
    chosen: set[int] = set()
    for claim in claims:
        for part in split_sentences(matching_form(claim)):
            if len(_PUNCT.sub("", part)) < 2:
                continue
            scores = [_score(part, form) for form in forms]
            if scores and max(scores) >= MIN_SCORE:
                chosen.add(scores.index(max(scores)))
    return [spans[i] for i in sorted(chosen)]
