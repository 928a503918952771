"""Everyday words read as the reports' own terms (``data/synonyms.toml``).

A question about 案子 or 打官司 is about 案件 and 行政诉讼: the question's words are rewritten to
the report's terms before its terms are weighed, so that a supported question is not refused
because it is worded differently. A word several terms claim (少了: 下降 or 减少) becomes a
group of alternatives, any one of which may match.

Example:
    >>> Synonyms({"案件": ["案子"], "下降": ["少了"], "减少": ["少了"]}).rewrite("案子少了多少")
    ('案件下降多少', [[['下降'], ['减少']]])
"""

from __future__ import annotations

from rag.text.lexicons import LEXICONS


class Synonyms:
    """The everyday-word table.

    Args:
        table: report term -> the everyday words for it.
    """

    def __init__(self, table: dict[str, list[str]]):
        self.terms: dict[str, list[str]] = {}
        for term, words in table.items():
            for word in words:
                if word and word != term:
                    self.terms.setdefault(word, [])
                    if term not in self.terms[word]:
                        self.terms[word].append(term)
        self._words = sorted(self.terms, key=len, reverse=True)
        self._report_terms = sorted({t for ts in self.terms.values() for t in ts}, key=len, reverse=True)

    @classmethod
    def default(cls) -> "Synonyms":
        return _DEFAULT

    def rewrite(self, text: str) -> tuple[str, list[list[list[str]]]]:
        """The text with everyday words replaced by the first report term, and the groups of
        alternatives (as ``QueryAnalysis.alternatives`` holds them: options of terms) for words
        that several terms claim."""
        taken = [False] * len(text)
        for term in self._report_terms:  # the report's own wording stays as it is
            _mark(text, term, taken)
        replacements: list[tuple[int, int, str]] = []
        groups: list[list[str]] = []
        for word in self._words:
            start = text.find(word)
            while start >= 0:
                end = start + len(word)
                if not any(taken[start:end]):
                    for i in range(start, end):
                        taken[i] = True
                    terms = self.terms[word]
                    replacements.append((start, end, terms[0]))
                    if len(terms) > 1 and terms not in groups:
                        groups.append(list(terms))
                start = text.find(word, end)
        out, last = [], 0
        for start, end, term in sorted(replacements):
            out += [text[last:start], term]
            last = end
        out.append(text[last:])
        return "".join(out), [[[t] for t in g] for g in groups]


def _mark(text: str, word: str, taken: list[bool]) -> None:
    start = text.find(word)
    while start >= 0:
        for i in range(start, start + len(word)):
            taken[i] = True
        start = text.find(word, start + len(word))


_DEFAULT = Synonyms(LEXICONS.synonyms)
