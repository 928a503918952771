"""The layout of printed pages: positioned lines back into the report's lines and paragraphs.

A PDF (its text layer, or OCR of a scan) gives the printed lines, each with its position and
font size. Printing broke every paragraph at the right margin; this module puts it back
together and keeps apart what the printer kept apart:

- a line continues the one above when that one reaches the right margin and this one starts
  at the left margin, in the same size, with no blank line between (a paragraph's first line is
  indented two characters in Chinese official documents; its last line ends short);
- lines in a larger size, or centred, are a title: its wrapped lines are joined into one line of
  their own;
- page numbers ("- 3 -", "第3页 共10页", "3/10") and running headers or footers (the same short
  line at the top or bottom of most pages) are dropped;
- a paragraph that runs over a page break is joined, and kept on the page where it starts.

Documents that do not indent their paragraphs give no such clue: there a line also ends its
paragraph when it ends a sentence or the next line opens a heading (the rule for text without
positions, ``reflow_text``).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from rag.text.normalize import matching_form

_SENTENCE_END = "。！？；：!?;:”」』）)"
_PAGE_NUMBER = re.compile(
    r"^(?:[-—–－一_~·.\s]*\d{1,4}[-—–－一_~·.\s]*"  # 3, - 3 -, — 3 — (OCR reads a dash as 一)
    r"|第\s*\d{1,4}\s*页(?:\s*[,，/]?\s*共\s*\d{1,4}\s*页)?"  # 第3页, 第 3 页 共 10 页
    r"|共\s*\d{1,4}\s*页\s*第\s*\d{1,4}\s*页"
    r"|\d{1,4}\s*/\s*\d{1,4}"  # 3/10
    r"|(?:page|p\.)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?)$", re.I)
_FURNITURE_MAX_CHARS = 40  # a running header or footer is short
SAME_SIZE = 1.2  # sizes within this ratio are one size (OCR boxes vary by a tenth or so)
LARGE = 1.25  # a line this much larger than the body is a title


@dataclass
class TextLine:
    """One printed line: its text and where it lies on the page, in points from the top left.

    ``size`` is the font size (for OCR, the height of the line's box).
    """

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float

    @property
    def centre(self) -> float:
        return (self.x0 + self.x1) / 2


@dataclass
class Page:
    """A page's lines in reading order; ``width`` is the page's width in points."""

    lines: list[TextLine]
    width: float


@dataclass
class _Frame:
    """The text block of a page: margins, body size, character width and line spacing."""

    left: float
    right: float
    size: float
    char: float
    leading: float


def _mask(text: str) -> str:
    return re.sub(r"\d+", "#", matching_form(text))


def drop_furniture(pages: list[Page]) -> list[Page]:
    """Remove page numbers and running headers/footers from the top and bottom of each page.

    A running line is one whose text (numbers aside) is printed first or last, at the same
    height, on at least half of the pages and on two at least; a title that repeats the running
    header is lower down on page one and is kept.
    """
    def edges(page: Page) -> list[tuple[str, int]]:
        n = len(page.lines)
        return [("top", i) for i in range(min(2, n))] + [("bottom", i) for i in range(max(0, n - 2), n)]

    heights: dict[tuple[str, str], list[float]] = {}
    for page in pages:
        for where, i in edges(page):
            line = page.lines[i]
            if len(line.text) <= _FURNITURE_MAX_CHARS:
                heights.setdefault((where, _mask(line.text)), []).append(line.top)
    need = max(2, len(pages) / 2)

    def running(where: str, line: TextLine) -> bool:
        tops = heights.get((where, _mask(line.text)), [])
        return sum(1 for top in tops if abs(top - line.top) <= max(3.0, line.size / 2)) >= need

    out = []
    for page in pages:
        drop = {i for where, i in edges(page)
                if _PAGE_NUMBER.match(page.lines[i].text.strip()) or running(where, page.lines[i])}
        out.append(Page([line for i, line in enumerate(page.lines) if i not in drop], page.width))
    return out


def _cluster_edge(values: list[float], tolerance: float, leftmost: bool) -> float:
    """The outermost position shared by a good number of lines (a margin), not by a stray one."""
    ordered = sorted(values, reverse=not leftmost)
    need = max(2, len(values) // 10)
    for i, value in enumerate(ordered):
        if sum(1 for v in ordered[i:i + need * 4] if abs(v - value) <= tolerance) >= need:
            return value
    return ordered[len(ordered) // 2]


def _frame(lines: list[TextLine], fallback: _Frame | None = None) -> _Frame | None:
    """The text block measured on ``lines`` (one page or a whole document)."""
    if not lines:
        return fallback
    weights: dict[float, int] = {}
    for line in lines:
        key = round(line.size * 2) / 2
        weights[key] = weights.get(key, 0) + len(line.text)
    size = max(weights, key=weights.get)
    body = [line for line in lines if _same_size(line.size, size) and line.text.strip()]
    long_lines = [line for line in body if len(line.text) >= 8]
    if len(long_lines) < 4 and fallback is not None:
        return fallback
    sample = long_lines or body
    char = statistics.median((line.x1 - line.x0) / max(1, len(line.text)) for line in sample)
    left = _cluster_edge([line.x0 for line in sample], char / 3, leftmost=True)
    right = _cluster_edge([line.x1 for line in sample], char / 2, leftmost=False)
    steps = [b.top - a.top for a, b in zip(body, body[1:]) if 0 < b.top - a.top < 4 * size]
    leading = statistics.median(steps) if steps else 1.5 * size
    return _Frame(left, right, size, char, leading)


def _same_size(a: float, b: float) -> bool:
    return max(a, b) <= SAME_SIZE * min(a, b)


def _indents_paragraphs(pages: list[tuple[Page, _Frame]]) -> bool:
    """Whether paragraphs open with an indent: most lines after a short line are indented."""
    short = indented = 0
    for page, frame in pages:
        for a, b in zip(page.lines, page.lines[1:]):
            if _same_size(a.size, frame.size) and a.x1 < frame.right - 2.5 * frame.char:
                short += 1
                if 1.2 * frame.char < b.x0 - frame.left < 4.5 * frame.char:
                    indented += 1
    return indented >= 2 and indented >= 0.5 * short


def _centred(line: TextLine, frame: _Frame) -> bool:
    middle = (frame.left + frame.right) / 2
    return line.x0 > frame.left + 2 * frame.char and abs(line.centre - middle) < 2 * frame.char


def _is_heading(text: str) -> bool:
    from rag.ingest.chunking import HEADING  # the chunker's heading patterns

    return bool(HEADING.match(matching_form(text)))


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9.%/\-]*[,.;:!?，。、；：！？）)”’%]*")


def _first_word_width(text: str, char: float) -> float:
    """About how wide the word or number that opens ``text`` is (Latin letters and digits are
    about half as wide as a Chinese character); one character when it opens with Chinese."""
    m = _WORD.match(text)
    if not m:
        return char
    return sum(0.6 * char if ord(c) < 128 else char for c in m.group())


def _continues(a: TextLine, fa: _Frame, b: TextLine, fb: _Frame, same_page: bool, indented: bool) -> bool:
    """Whether printed line ``b`` goes on with the paragraph of line ``a`` (the line before it)."""
    if not _same_size(a.size, b.size):
        return False
    if same_page and b.top - a.top > 1.6 * max(fa.leading, a.bottom - a.top):
        return False  # a blank line between
    if a.size > LARGE * fa.size or (_centred(a, fa) and _centred(b, fb)):
        return True  # a title printed on two lines
    if b.x0 > fb.left + 1.2 * fb.char:
        return False  # indented, centred or right-aligned: a line of its own
    ends_sentence = a.text.rstrip().endswith(tuple(_SENTENCE_END))
    if indented:
        # A line ends short of the margin when the next word or number did not fit there.
        room = max(2.5 * fa.char, _first_word_width(b.text, fa.char) + fa.char)
        # A flush-left heading after a full line that ends a sentence is still a heading.
        return a.x1 >= fa.right - room and not (ends_sentence and _is_heading(b.text))
    # No indents to go by: the text decides, and only a clearly short line ends a paragraph.
    return (a.x1 >= fa.right - 0.3 * (fa.right - fa.left) and not ends_sentence
            and not _is_heading(b.text))


def _joined(a: str, b: str) -> str:
    # Chinese runs on without a space; two Latin words do not.
    if re.search(r"[A-Za-z]$", a) and re.match(r"[A-Za-z]", b):
        return f"{a} {b}"
    return a + b


def reflow_pages(pages: list[Page]) -> list[list[str]]:
    """The paragraphs (and titles, headings) of each page, page furniture removed.

    A paragraph that runs over a page break is joined and belongs to the page it starts on, so
    a page's list may be empty.
    """
    pages = drop_furniture(pages)
    document = _frame([line for page in pages for line in page.lines])
    if document is None:
        return [[] for _ in pages]
    framed = [(page, _frame(page.lines, document)) for page in pages]
    indented = _indents_paragraphs(framed)
    out: list[list[str]] = []
    previous: tuple[TextLine, _Frame] | None = None  # the line before, and its page's frame
    holder: list[str] = []  # the list (this page's or an earlier one's) whose last item grows
    for page, frame in framed:
        paragraphs: list[str] = []
        same_page = False
        for line in page.lines:
            text = line.text.strip()
            if not text:
                continue
            if previous and _continues(previous[0], previous[1], line, frame, same_page, indented):
                holder[-1] = _joined(holder[-1], text)
            else:
                paragraphs.append(text)
                holder = paragraphs
            previous, same_page = (line, frame), True
        out.append(paragraphs)
    return out


def reflow_text(page_text: str) -> str:
    """Join the printed lines of a page's plain text (no positions) back into paragraphs.

    A line is joined to the next unless it ends a sentence or the next one starts a heading;
    a short heading line stays on its own, before and after.
    """
    from rag.ingest.chunking import HEADING

    out: list[str] = []
    for line in (line.strip() for line in page_text.splitlines()):
        if not line:
            continue
        previous_is_heading = out and len(out[-1]) <= 60 and HEADING.match(matching_form(out[-1]))
        if (out and not out[-1].endswith(tuple(_SENTENCE_END)) and not previous_is_heading
                and not HEADING.match(matching_form(line))):
            out[-1] += line
        else:
            out.append(line)
    return "\n".join(out)


def drop_page_numbers(page_text: str) -> str:
    """A page's plain text without a page-number line at its top or bottom."""
    lines = [line for line in page_text.splitlines() if line.strip()]
    while lines and _PAGE_NUMBER.match(lines[-1].strip()):
        lines.pop()
    while lines and _PAGE_NUMBER.match(lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines)
