"""The parts of an annual report, as its regulation prescribes them (``data/parts.toml``).

《法治政府建设与责任落实督察工作规定》 art. 25 asks every report for its main measures and
results, its shortcomings (and their causes), how the principal leaders performed their
first-responsibility duties, next year's plans, and other matters. Reports name a part in a
heading ("二、存在不足及意见建议") or open a paragraph with it ("下一步，我市将…"); one
section may hold two ("三、存在的不足和下一步工作打算").

``ReportParts.tag`` reads a report's paragraphs in order and says which part each belongs to;
``ReportParts.asked`` says which part a question asks about.

Example:
    >>> parts = ReportParts.default()
    >>> parts.of_heading("二、存在不足及意见建议"), parts.of_heading("(一)持续提升行政效能")
    ('shortcomings', None)
    >>> parts.asked("太原市下一步法治政府建设的工作打算有哪些？")
    'plans'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rag.text.lexicons import LEXICONS
from rag.text.normalize import matching_form

Part = Literal["preamble", "measures", "shortcomings", "suggestions", "plans", "leaders"]
PARTS: tuple[Part, ...] = ("preamble", "measures", "shortcomings", "suggestions", "plans", "leaders")
_LABELS = {"preamble": ("导言", "introduction"), "measures": ("主要举措和成效", "main measures and results")}


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of a report: its text and the headings above it, outermost first."""

    text: str
    headings: tuple[str, ...] = ()
    is_heading: bool = False


class ReportParts:
    """The parts' vocabulary.

    Args:
        table: ``parts.toml`` as loaded (``[parts.<name>]`` with heading/opening/question
            patterns and labels, and ``[summary]``).
    """

    def __init__(self, table: dict):
        self._named = [(name, re.compile(spec["heading"]), re.compile(spec["opening"]), re.compile(spec["question"]),
                        spec.get("label", name), spec.get("label_en", name))
                       for name, spec in table["parts"].items()]
        self.labels = {name: (zh, en) for name, _, _, _, zh, en in self._named} | _LABELS
        # A part whose section holds all below it, whatever its sub-headings name: next year's
        # plans are plans even under "1.督促落实法治建设第一责任人职责".
        self.enclosing = frozenset(name for name, spec in table["parts"].items() if spec.get("encloses"))
        closing = table.get("closing", {})
        self._closing = re.compile(closing.get("line", "(?!)"))
        summary = table.get("summary", {})
        self.summary_question = re.compile(summary.get("question", "(?!)"), re.IGNORECASE)
        self.limits = {k: v for k, v in summary.items() if k != "question"}

    @classmethod
    def default(cls) -> "ReportParts":
        return _DEFAULT

    def of_heading(self, heading: str) -> Part | None:
        """The part a heading names (the first in the file's order), or None."""
        form = matching_form(heading)
        return next((name for name, h, _, _, _, _ in self._named if h.search(form)), None)

    def is_closing(self, line: str) -> bool:
        """Whether a line is the report's signature block (the issuing body, the date), not content."""
        return bool(self._closing.fullmatch(matching_form(line).strip().rstrip("。")))

    def opened_by(self, paragraph: str) -> Part | None:
        """The part a paragraph's first sentence opens, or None."""
        first = re.split(r"[。！？;；]", matching_form(paragraph).strip(), maxsplit=1)[0]
        return next((name for name, _, o, _, _, _ in self._named if o.search(first)), None)

    def asked(self, question: str) -> Part | None:
        """The part a question asks about (不足, 下一步, 第一责任人 …), or None."""
        form = matching_form(question)
        return next((name for name, _, _, q, _, _ in self._named if q.search(form)), None)

    def asks_summary(self, question: str) -> bool:
        """Whether a question asks for what a report says as a whole (概括, 哪些做法, 如何 …)."""
        return bool(self.summary_question.search(matching_form(question))) or self.asked(question) is not None

    def label(self, part: Part, language: str = "zh") -> str:
        zh, en = self.labels.get(part, (part, part))
        return en if language == "en" else zh

    def tag(self, paragraphs: list[Paragraph]) -> list[Part]:
        """The part of each paragraph, in reading order.

        A section's part is that of its deepest heading naming one (else ``measures``; before
        the first heading, ``preamble``). A paragraph opening a part ("下一步，我市将…") starts it,
        and it lasts to the next heading, but only in the report's last section or in a
        section whose heading named a part: in the body, "针对存在的问题…" opens no part.
        """
        tops = [p.headings[0] for p in paragraphs if p.headings]
        last_top = tops[-1] if tops else None
        out: list[Part] = []
        headings: tuple[str, ...] | None = None
        current: Part = "preamble"
        for p in paragraphs:
            if p.headings != headings:
                headings = p.headings
                named = [part for part in map(self.of_heading, reversed(headings)) if part]
                outer = next((part for part in reversed(named) if part in self.enclosing), None)
                current = outer or (named[0] if named else ("measures" if headings else "preamble"))
                section_named = bool(named)
            if not p.is_heading and (section_named or (headings and headings[0] == last_top)):
                opened = self.opened_by(p.text)
                if opened:
                    current = opened
            out.append(current)
        return out


def report_paragraphs(chunks: list[tuple[int, str, str]]) -> list[tuple[Paragraph, int]]:
    """A report's paragraphs in reading order, rebuilt from its chunks, each with the index of the
    chunk its start lies in.

    Args:
        chunks: (char_start, text, section_path) of each chunk, in reading order. Chunks overlap
            by a sentence; the text is rebuilt from their offsets, so a paragraph running over two
            chunks is read once.
    """
    if not chunks:
        return []
    size = max(start + len(text) for start, text, _ in chunks)
    rebuilt = ["\n"] * size
    for start, text, _ in chunks:
        rebuilt[start:start + len(text)] = text
    out, at = [], 0
    for line in "".join(rebuilt).split("\n"):
        begin, at = at, at + len(line) + 1
        if not line.strip():
            continue
        holder = next((i for i, (s, text, _) in enumerate(chunks) if s <= begin < s + len(text)), 0)
        headings = tuple(h for h in (chunks[holder][2] or "").split(" > ") if h)
        out.append((Paragraph(line.strip(), headings, line.strip() in headings), holder))
    return out


def chunk_parts(chunks: list[tuple[int, str, str]], parts: "ReportParts | None" = None) -> list[Part]:
    """The part of each chunk: that of the first body paragraph starting in it (else the last
    paragraph before it), as ``ReportParts.tag`` reads the whole report."""
    parts = parts or ReportParts.default()
    paragraphs = report_paragraphs(chunks)
    tags = parts.tag([p for p, _ in paragraphs])
    out: list[Part] = []
    last: Part = "preamble"
    for i in range(len(chunks)):
        mine = [tag for (p, holder), tag in zip(paragraphs, tags) if holder == i and not p.is_heading]
        if mine:
            last = mine[0]
        out.append(last)
    return out


_DEFAULT = ReportParts(LEXICONS.parts)
