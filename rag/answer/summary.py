"""The section-summary path: what a report says in one of its parts (存在的不足, 下一步工作安排,
第一责任人职责) or about one topic of its body (行政执法方面的做法), as a list of the part's
points, each cited.

A part is found by ``rag.text.parts`` over the report's paragraphs (rebuilt from its stored
chunks, in reading order); a body topic by the heading that best matches the question, else by
the items (一是… 二是…) that hold most of the question's terms. A point is an item's opening
sentences. The answer never paraphrases: every point is the report's own text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_core.documents import Document

from rag.answer.citations import resolve_citations
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.notes import Note
from rag.index.keywords import KeywordIndex
from rag.index.store import ReportIndex
from rag.retrieve.query import QueryAnalysis
from rag.text.normalize import matching_form
from rag.text.parts import Paragraph, Part, ReportParts, report_paragraphs
from rag.text.sentences import char_bigrams, split_sentences
from rag.types import AnswerResult, Passage, ReportRecord

# Items of a paragraph: 一是… 二是…, or a numbered lead (1. / (一) / 一、).
_ITEM = re.compile(r"(?:^|(?<=[。；;:：]))\s*(?:其?[一二三四五六七八九十]+是|\d{1,2}[.、]|[(（][一二三四五六七八九十\d]+[)）])")
_PART_QUESTIONS: tuple[Part, ...] = ("shortcomings", "suggestions", "plans")


class _Scorer:
    """How much of the question's term weight a text holds (the extractive answer's coverage)."""

    def __init__(self, keywords: KeywordIndex, terms: list[str], alternatives):
        self.answerer = ExtractiveAnswerer(keywords)
        self.weights = self.answerer.weights(terms)
        self.alternatives = [g for g in alternatives if all(t in self.weights for o in g for t in o)]
        self.bar = self.answerer.min_coverage

    def score(self, form: str) -> float:
        return self.answerer.coverage(form, self.weights, self.alternatives)[0] if self.weights else 0.0


@dataclass
class _Line:
    text: str
    chunk: Document
    headings: tuple[str, ...]
    is_heading: bool
    item: bool = False  # one item already (chosen by its words), not a paragraph to cut into items


def asks_summary(analysis: QueryAnalysis, parts: ReportParts | None = None) -> bool:
    """Whether the question asks what named reports say as a whole (not a figure, not a name list)."""
    parts = parts or ReportParts.default()
    return (not analysis.asks_figure and analysis.scope in ("one", "several")
            and parts.asks_summary(analysis.question))


class SummaryAnswer:
    """Answer a section question from the report's part or section as a whole.

    Args:
        index: where the reports' chunks are read from.
        keywords: the BM25 index (term weights for choosing items by their words).
        parts: the parts' vocabulary.
    """

    def __init__(self, index: ReportIndex, keywords: KeywordIndex, parts: ReportParts | None = None):
        self.index = index
        self.keywords = keywords
        self.parts = parts or ReportParts.default()
        self.max_points = int(self.parts.limits.get("max_points", 8))
        self.max_point_chars = int(self.parts.limits.get("max_point_chars", 160))
        self.max_block_chars = int(self.parts.limits.get("max_block_chars", 640))
        self._results = re.compile(str(self.parts.limits.get("results", r"(?!)")), re.IGNORECASE)
        self.max_items_by_topic = int(self.parts.limits.get("max_items_by_topic", 6))
        self.generic = frozenset(self.parts.limits.get("generic_words", ()))

    def run(self, question: str, analysis: QueryAnalysis, reports: list[ReportRecord], mode: str) -> AnswerResult | None:
        """The points of each report in scope, or None when no part or section answers."""
        asked = self.parts.asked(question)
        blocks: list[tuple[ReportRecord, str, list[tuple[str, list[Document]]]]] = []
        for report in reports:
            chunks = self.index.chunks(report.doc_id)
            lines = self._lines(chunks)
            chosen, label = self._choose(lines, asked, analysis)
            points = self._points(chosen, chunks, label, results=bool(self._results.search(analysis.normalised)))
            if points:
                blocks.append((report, label, points))
        if not blocks:
            return None
        return _render(question, analysis, blocks, mode)

    # --- the report's paragraphs ---------------------------------------------------------

    @staticmethod
    def _lines(chunks: list[Document]) -> list[_Line]:
        """The report's paragraphs in reading order, each with the chunk holding its start."""
        spans = [(int(c.metadata.get("char_start", 0)), c.page_content, c.metadata.get("section_path") or "")
                 for c in chunks]
        return [_Line(p.text, chunks[holder], p.headings, p.is_heading) for p, holder in report_paragraphs(spans)]

    def _choose(self, lines: list[_Line], asked: Part | None, analysis: QueryAnalysis) -> tuple[list[_Line], str]:
        """The paragraphs (or items) that answer, and what to call them."""
        language = analysis.language
        if asked in _PART_QUESTIONS:
            tags = self.parts.tag([Paragraph(l.text, l.headings, l.is_heading) for l in lines])
            chosen = [l for l, tag in zip(lines, tags) if tag == asked and not l.is_heading]
            if chosen:
                return chosen, self.parts.label(asked, language)
        if asked not in _PART_QUESTIONS:
            # What a report did is told in its body, not in its plans or shortcomings.
            tags = self.parts.tag([Paragraph(l.text, l.headings, l.is_heading) for l in lines])
            lines = [l for l, tag in zip(lines, tags) if tag not in _PART_QUESTIONS]
        scorer = _Scorer(self.keywords, self._terms(analysis), analysis.alternatives)
        heading, heading_score = self._best_heading(lines, scorer)
        items = self._items_by_terms(lines, analysis)
        best_item = max((scorer.score(matching_form(i.text)) for i in items), default=0.0)
        # A section whose heading and opening hold the topic answers as a whole, unless single
        # items say much more (数字政府建设 is an item of a section about something else).
        if heading and heading_score >= scorer.bar and heading_score >= best_item - 0.1:
            return [l for l in lines if heading in l.headings and not l.is_heading], heading
        return items, ("" if language == "en" else "相关内容")

    def _terms(self, analysis: QueryAnalysis) -> list[str]:
        """The question's terms without the words that ask for a summary (概括, 做法, 哪些工作)."""
        cue = self.parts.summary_question
        return [t for t in analysis.terms if not cue.search(t) and t not in self.generic]

    def _best_heading(self, lines: list[_Line], scorer: "_Scorer") -> tuple[str | None, float]:
        # A heading with its section's opening sentence: headings are slogans ("深化体制改革"),
        # the opening says what the section is about ("持续深化综合行政执法体制改革").
        described: dict[str, str] = {}
        for line in lines:
            for heading in line.headings:
                described.setdefault(heading, heading)
            if line.headings and not line.is_heading and described[line.headings[-1]] == line.headings[-1]:
                described[line.headings[-1]] += (split_sentences(_without_heading(line)) or [""])[0]
        scored = [(scorer.score(matching_form(text)), heading) for heading, text in described.items()]
        score, heading = max(scored, default=(0.0, None))
        return heading, score

    def _items_by_terms(self, lines: list[_Line], analysis: QueryAnalysis) -> list[_Line]:
        """The items (一是… segments) holding most of the question's terms, in reading order.

        A question about several topics ("普法、矛盾纠纷化解和公共法律服务") gets the best items of each.
        """
        terms = self._terms(analysis)
        topics = [t for t in re.split(r"[、,，和及与以及]", self._topic(analysis)) if t.strip()]
        scorers = [_Scorer(self.keywords, terms, analysis.alternatives)]
        if len(topics) > 1:
            scorers = [_Scorer(self.keywords, [t for t in terms if t in topic], analysis.alternatives)
                       for topic in topics] or scorers
        per_topic = max(1, self.max_items_by_topic // len(scorers))
        chosen: dict[tuple[int, int], str] = {}
        for scorer in scorers:
            if not scorer.weights:
                continue
            scored = []
            for i, line in enumerate(lines):
                if line.is_heading:
                    continue
                for j, item in enumerate(_items(_without_heading(line))):
                    score = scorer.score(matching_form(item))
                    if score >= scorer.bar:
                        scored.append((score, i, j, item))
            for _, i, j, item in sorted(scored, key=lambda s: (-s[0], s[1], s[2]))[:per_topic]:
                chosen[(i, j)] = item
        out = []
        for i, j in sorted(chosen):
            line, text = lines[i], chosen[(i, j)]
            body = _without_heading(line)
            if not _ITEM.search(body):
                # A paragraph of plain sentences: the sentence holding the topic opens what the
                # paragraph says of it, and the sentences after it go on (主要领导履行职责… then
                # 常态化开展会前学法…), up to the next chosen one; the point's length bounds it.
                sentences = _items(body)
                end = next((k for k in range(j + 1, len(sentences)) if (i, k) in chosen), len(sentences))
                text = "".join(sentences[j:end])
            out.append(_Line(text, line.chunk, line.headings, False, item=True))
        return out

    def _topic(self, analysis: QueryAnalysis) -> str:
        return self.parts.summary_question.sub(" ", analysis.topic)

    # --- points --------------------------------------------------------------------------

    def _points(self, lines: list[_Line], chunks: list[Document], label: str,
                results: bool = False) -> list[tuple[str, list[Document]]]:
        """Each item's opening, with the chunks that hold it (those to cite). A sub-heading
        opening a paragraph is its point ("(一)法治思维能力有待提高。"), unless it is the label.

        Args:
            results: the question asks for results: a point keeps its item's sentences stating
                figures after the opening (``_opening``).
        """
        points: list[tuple[str, list[Document]]] = []
        texts = [_without_heading(line, label) if label in line.headings else line.text for line in lines]
        # Few items are shown more fully: a part of one item is that item, not its first sentence.
        items = [[text] if line.item else _items(text) for line, text in zip(lines, texts)]
        count = sum(1 for group in items for item in group if not self.parts.is_closing(item))
        limit = max(self.max_point_chars, self.max_block_chars // max(1, min(count, self.max_points)))
        for line, group in zip(lines, items):
            for item in group:
                if self.parts.is_closing(item):  # the signature block, not a point
                    continue
                point = self._opening(item, limit, figures=results)
                if point and point not in {p for p, _ in points}:
                    points.append((point, _holders(point, chunks, line.chunk)))
        return points[:self.max_points]

    def _opening(self, item: str, limit: int, figures: bool = False) -> str:
        """An item's opening sentences, as many as fit in ``limit`` characters (at least one);
        with ``figures``, then its later sentences that state a figure, as many as fit too
        (in the item's order, so the point still reads as the report wrote it)."""
        sentences = split_sentences(item)
        kept: list[int] = []
        size = 0
        for i, sentence in enumerate(sentences):
            # A lead as short as "一是强化政治引领。" says little: its next sentence comes with it.
            if kept and size >= 40 and size + len(sentence) > limit:
                break
            kept.append(i)
            size += len(sentence)
        if figures:
            for i in range(len(kept), len(sentences)):
                if _STATES_FIGURE.search(sentences[i]) and size + len(sentences[i]) <= limit + self.max_point_chars:
                    kept.append(i)
                    size += len(sentences[i])
        return "".join(sentences[i] for i in kept).strip()

def _render(question: str, analysis: QueryAnalysis,
            blocks: list[tuple[ReportRecord, str, list[tuple[str, list[Document]]]]], mode: str) -> AnswerResult:
    """One heading per report, then its numbered points, each with the ``[n]`` of its chunk."""
    en = analysis.language == "en"
    passages: list[Passage] = []
    number: dict[str, int] = {}
    lines = []
    for report, label, points in blocks:
        where = f"{report.region} ({report.year})" if en else f"{report.region}（{report.year}年）"
        lines.append(f"{where} {label}:" if en else f"{where}报告{('「' + label + '」') if label else ''}要点：")
        for k, (point, holders) in enumerate(points, start=1):
            for chunk in holders:
                if chunk.id not in number:
                    passages.append(Passage.from_document(chunk))
                    number[chunk.id] = len(passages)
            marks = "".join(f"[{number[c.id]}]" for c in holders)
            lines.append(f"{k}. {point.rstrip('。；;，,')}{marks}")
    text, citations = resolve_citations("\n".join(lines), passages)
    result = AnswerResult(question=question, answer=text, refused=False, citations=citations,
                          contexts=passages, mode=mode)
    result.notes.append(Note("section_summary"))
    return result


# A sentence stating a figure: a number with a measure word or %, not a year or a date.
_STATES_FIGURE = re.compile(r"\d+(?:\.\d+)?\s*(?:万|亿)?(?:余|多)?\s*(?:%|件|个|人次|人|名|次|家|项|条|场|支|所|户|本|部|篇|批|起|元|万元|亿元|天|小时|个工作日)")

_POINT_LINE = re.compile(r"^\d+\. (.*?)((?:\[\d+\])+)$")


def summary_points(answer: str) -> list[tuple[int, str, list[int]]]:
    """The numbered points of a summary's answer (as ``_render`` writes them): for each, the
    report block it is under (0, 1, … in the answer's order), its text, and the numbers of the
    passages it cites: ``"1. 法治思维有待提高[2]"`` -> ``(0, "法治思维有待提高", [2])``."""
    points, block = [], -1
    for line in answer.splitlines():
        m = _POINT_LINE.match(line.strip())
        if m:
            points.append((max(block, 0), m.group(1), [int(n) for n in re.findall(r"\d+", m.group(2))]))
        elif line.strip():
            block += 1
    return points


def _holders(point: str, chunks: list[Document], fallback: Document) -> list[Document]:
    """The chunk holding the point, or, for a point running over a chunk boundary, the chunks
    holding its start and its end (both are cited: each holds part of it)."""
    whole = next((c for c in chunks if point in c.page_content), None)
    if whole is not None:
        return [whole]
    head = next((c for c in chunks if point[:24] in c.page_content), fallback)
    tail = next((c for c in reversed(chunks) if point[-24:] in c.page_content), head)
    return [head] if tail is head else [head, tail]


def _without_heading(line: _Line, heading: str | None = None) -> str:
    """A paragraph without the heading it opens with ("2.压实法治建设第一责任。牢牢抓住…"): the
    given one (the answer's label), or when None any of its headings."""
    for h in ([heading] if heading else line.headings):
        if line.text.startswith(h) and len(line.text) > len(h):
            return line.text[len(h):].strip()
    return line.text


def _items(paragraph: str) -> list[str]:
    """A paragraph cut at its item markers (一是… 二是…), the lead before the first marker an item
    too when it is more than a framing phrase; without markers, its sentences."""
    starts = [m.start() for m in _ITEM.finditer(paragraph)]
    if not starts:  # a paragraph of plain sentences: each sentence is a point
        return [s for s in split_sentences(paragraph) if len(s) > 6]
    pieces = [paragraph[a:b].strip() for a, b in zip([0] + starts, starts + [len(paragraph)])]
    return [p for p in pieces if len(p) > 6]
