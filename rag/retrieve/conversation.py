"""Follow-up questions: rewrite "那绵阳呢？" into a standalone question before retrieval.

Rules, not a model, do the rewriting, so it is instant, works in extractive mode and cannot
invent a topic: a follow-up that names only a place or a year takes the previous question
and swaps its places or years; a follow-up that asks about something new ("那出庭应诉率呢？")
keeps the previous question's places and years. A question that names a place and its own
topic is already standalone.

Example:
    >>> rewriter = FollowUpRewriter(analyzer)
    >>> rewriter.run("那绵阳呢？", history=["太原市2024年新收行政复议案件多少件？"])
    '绵阳市2024年新收行政复议案件多少件?'
"""

from __future__ import annotations

import re
from typing import Callable

from rag.index.keywords import question_terms
from rag.retrieve.query import QueryAnalysis, QueryAnalyzer
from rag.text.years import QUESTION_YEAR

# Words that only make a follow-up ("那…呢", "what about …"), not a topic.
_FOLLOW_UP = re.compile(r"^(那么?|那个|还有|再看看?|换成|and|what about|how about)\s*|(呢|怎么样|如何|情况)?[?？。.!！]*$")
_FILLER_TERMS = {"呢", "怎么样", "如何", "what", "about", "how", "and", "then", "情况", "那么", "那"}
_JOINERS = re.compile(r"(?:<P>\s*(?:和|与|及|、|,|以及|and|&)\s*)+<P>")


class FollowUpRewriter:
    """Turn a follow-up question into a standalone one, given the earlier questions.

    Args:
        analyzer: the query analyzer, or a function returning the current one (the index may change).
    """

    def __init__(self, analyzer: QueryAnalyzer | Callable[[], QueryAnalyzer]):
        self._analyzer = analyzer if callable(analyzer) and not isinstance(analyzer, QueryAnalyzer) else (
            lambda: analyzer)

    def run(self, question: str, history: list[str]) -> str:
        """The standalone form of ``question``; ``history`` holds the earlier standalone questions."""
        if not history or not question.strip():
            return question
        analyzer = self._analyzer()
        new = analyzer.run(question)
        previous = analyzer.run(history[-1])
        topic = [t for t in question_terms(_FOLLOW_UP.sub(" ", new.topic.strip())) if t not in _FILLER_TERMS]
        if topic:
            if new.regions or new.missing_regions or new.scope == "all" or not (previous.regions or previous.years):
                # Its own topic and place, every place (各地…, which cities), or nothing to inherit.
                return question
            # A new topic about the same places and years: "那出庭应诉率呢？"
            years = "".join(f"{y}年" for y in previous.years) if not new.years else ""
            places = "和".join(previous.regions)
            body = _FOLLOW_UP.sub("", question.strip()).strip() or question.strip()
            return f"{places}{years}{body}" + ("" if re.search(r"[?？]$", body) else "？")
        if not (new.regions or new.missing_regions or new.years):
            return question
        return self._swap(previous, new)

    @staticmethod
    def _swap(previous: QueryAnalysis, new: QueryAnalysis) -> str:
        text = previous.normalised
        places = new.regions + new.missing_regions
        if places:
            if previous.place_spans:
                for start, end in sorted(previous.place_spans, reverse=True):
                    text = text[:start] + "<P>" + text[end:]
                text = _JOINERS.sub("<P>", text)
                first = text.index("<P>")
                text = text[:first] + "和".join(places) + text[first + 3:].replace("<P>", "")
            else:
                text = "和".join(places) + text
        if new.years:
            years = "和".join(str(y) for y in new.years)
            if QUESTION_YEAR.search(text):
                seen = []

                def swap(match: re.Match) -> str:
                    seen.append(match)
                    return years if len(seen) == 1 else ""

                text = QUESTION_YEAR.sub(swap, text)
            else:
                insert = text.index("和".join(places)) + len("和".join(places)) if places else 0
                text = text[:insert] + f"{years}年" + text[insert:]
        return text
