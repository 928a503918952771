"""Questions that ask for two or more figures in separate clauses, answered one ask at a time.

"侯马市2023年公布重大决策事项多少项？对多少件文件草案进行了合法性审核？" asks for two figures
that the report states in two sentences. Scored as one question, no sentence holds enough of
its terms, and it is refused; scored ask by ask (``QueryAnalysis.asks``), each clause finds its
own sentence. Each ask is held to the checks a one-figure question is held to (coverage, the
figures it states, the unit and case stage it asks for, a change or rate it asks for); an ask that
fails them is said to be not mentioned, so a question answered in part says which part the
reports do not give instead of being refused whole or answered with another figure.
"""

from __future__ import annotations

import dataclasses

from rag.answer.citations import resolve_citations
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.notes import Note
from rag.answer.refusals import answers_as_asked
from rag.index.keywords import KeywordIndex
from rag.retrieve.query import Ask, QueryAnalysis
from rag.text.markers import MARKER
from rag.text.normalize import matching_form
from rag.types import AnswerResult, Passage

_NOT_MENTIONED = {"zh": "报告中未提及：{ask}", "en": "The reports do not mention: {ask}"}


class EachAsk:
    """Answer a question's asks one by one from the retrieved passages.

    Args:
        keywords: the BM25 index the extractive answer weighs terms with.

    Example:
        >>> result = EachAsk(keywords).run(question, analysis, passages)
        >>> result.answer
        '…本年度重大决策事项16项…[1]\\n对市政府拟发布的46件文件草案进行了合法性审核…[1]'
    """

    def __init__(self, keywords: KeywordIndex):
        self.answerer = ExtractiveAnswerer(keywords)

    def run(self, question: str, analysis: QueryAnalysis, passages: list[Passage]) -> AnswerResult | None:
        """The asks' sentences, cited, with a "未提及" line for each ask no sentence answers;
        None when the question has fewer than two asks or none of them is answered.

        Args:
            question: the question as asked.
            analysis: its analysis (``analysis.asks`` the clauses).
            passages: the retrieved passages, numbered 1.. in this order.
        """
        if len(analysis.asks) < 2 or analysis.scope in ("several", "all"):
            return None
        lines: list[str] = []
        unanswered: list[Ask] = []
        for ask in analysis.asks:
            found = self.answer_one(question, analysis, ask, passages)
            if found is None:
                unanswered.append(ask)
            else:
                lines.extend(line for line in found if line not in lines)
        if not lines:
            return None
        # A sentence already given for one ask may answer another in other words ("索回欠款" for
        # "要回来多少欠款"): it does at the lower bar a named place's sentence is held to.
        missing = [ask.text.strip(" ，,、；;？?") for ask in unanswered
                   if not self.answered_by(question, analysis, ask, lines)]
        lines += [_NOT_MENTIONED[analysis.language].format(ask=ask) for ask in missing]
        text, citations = resolve_citations("\n".join(lines), passages)
        result = AnswerResult(question=question, answer=text, refused=False, citations=citations,
                              contexts=passages, mode="extractive")
        result.notes.append(Note("asks_answered", answered=str(len(analysis.asks) - len(missing)),
                                 asked=str(len(analysis.asks))))
        if missing:
            result.notes.append(Note("ask_not_mentioned", asks="；".join(missing)))
        return result

    def answer_one(self, question: str, analysis: QueryAnalysis, ask: Ask, passages: list[Passage]
                   ) -> list[str] | None:
        """The sentences (with passage markers) that answer one ask, or None."""
        sub = _ask_analysis(analysis, ask)
        found = self.answerer.run(sub, sub.terms, passages)
        if found.refused or not answers_as_asked(question, sub, found.lines):
            return None
        return found.lines

    def answered_by(self, question: str, analysis: QueryAnalysis, ask: Ask, lines: list[str]) -> bool:
        """Whether one of ``lines`` answers ``ask`` at the lower bar (3/4 of the coverage)."""
        sub = _ask_analysis(analysis, ask)
        weights = self.answerer.weights(sub.terms)
        bar = self.answerer.min_coverage * 0.75
        for line in lines:
            form = matching_form(MARKER.sub("", line))
            if (self.answerer.coverage(form, weights, sub.alternatives)[0] >= bar
                    and answers_as_asked(question, sub, [line])):
                return True
        return False


def _ask_analysis(analysis: QueryAnalysis, ask: Ask) -> QueryAnalysis:
    """The question's analysis narrowed to one ask: its text, terms and alternatives."""
    return dataclasses.replace(analysis, normalised=ask.normalised, terms=list(ask.terms),
                               alternatives=list(ask.alternatives), operation_text="", asks=[])

