"""Sentences: the one splitter that chunking, cleaning, extraction, figures, grounding,
highlighting and the judge all use.

A sentence runs up to and including its end marks (。！？； and their half-width forms) and the
closing quotes or brackets that follow them (“……。” stays whole); a line break ends one too; an
English full stop ends one before a space or the end of the text, or after a letter with no
letter or digit following, so that 146.57%, "1.全面" and e.g. stay whole.

Example:
    >>> split_sentences("全年新收案件1274件，同比增长204%。办结率98.5%；\\nIt grew. Next")
    ['全年新收案件1274件，同比增长204%。', '办结率98.5%；', 'It grew.', 'Next']
"""

from __future__ import annotations

import re

END_MARKS = "。！？；!?;"
CLOSERS = "”’」』)）"
# An English full stop ends a sentence before a space or the end of the text, or after a letter
# when no letter or digit follows ("cases.</passage>"); never in 146.57%, "1.全面" or e.g.
_STOP = r"(?:\.(?=\s|$)|(?<=[A-Za-z])\.(?![0-9A-Za-z.]))"
# The body never holds an end mark, a line break or an ending full stop; the end is a run of end
# marks with their closers, or an ending full stop.
SENTENCE = re.compile(rf"(?:[^{END_MARKS}\n.]|(?!{_STOP})\.)+(?:[{END_MARKS}]+[{CLOSERS}]*|{_STOP})?|{_STOP}")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text``; leading spaces and line breaks left out."""
    spans = []
    for m in SENTENCE.finditer(text):
        start = m.start() + (len(m.group()) - len(m.group().lstrip()))
        if m.end() > start:
            spans.append((start, m.end()))
    return spans


def split_sentences(text: str, *, min_chars: int = 1) -> list[str]:
    """The sentences of ``text``, stripped, those shorter than ``min_chars`` left out."""
    out = []
    for start, end in sentence_spans(text):
        sentence = text[start:end].strip()
        if len(sentence) >= min_chars:
            out.append(sentence)
    return out


def sentence_pieces(text: str) -> list[str]:
    """The text cut at sentence ends, losing nothing: ``"".join(sentence_pieces(t)) == t``.

    The spaces and line breaks between two sentences begin the second piece, so removing a
    piece and joining the rest keeps the layout of what remains.
    """
    ends = [end for _, end in sentence_spans(text)]
    pieces, start = [], 0
    for end in ends:
        pieces.append(text[start:end])
        start = end
    if start < len(text):
        if pieces:
            pieces[-1] += text[start:]
        else:
            pieces.append(text[start:])
    return pieces


_NOT_A_WORD_CHAR = re.compile(r"[\W_]+")


def char_bigrams(text: str) -> set[str]:
    """The pairs of adjacent letters of a text, spaces and punctuation left out.

    How much two Chinese sentences share without a word segmenter: used to find the sentence a
    claim rests on (highlighting, attribution, the judge).
    """
    compact = _NOT_A_WORD_CHAR.sub("", text)
    return {compact[i:i + 2] for i in range(len(compact) - 1)}
