"""Split a report into section-aware chunks of about ``max_tokens`` tiktoken tokens.

Reports are organised as 一、 / （一） / 1. / （1） headings with "一是…二是…" items inside.
A chunk never crosses a heading; inside a section, whole sentences are packed until the next
one would overflow, and the next chunk repeats the last sentence (overlap). A sentence is
split only when it alone exceeds the limit, at commas first. Each chunk knows its heading
path, character offsets into the cleaned text, and page.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Callable

from rag.text.normalize import matching_form
from rag.text.sentences import sentence_spans
from rag.text.tokens import count_tokens

_CN_NUM = "一二三四五六七八九十百零〇"
# Heading levels, on the matching form (half-width brackets and punctuation).
HEADING_LEVELS = [
    (1, re.compile(rf"^[{_CN_NUM}]+、")),
    (1, re.compile(r"^、(?=\S)")),  # 一、 whose numeral was lost when the page was saved
    (2, re.compile(rf"^\([{_CN_NUM}]+\)")),
    (3, re.compile(r"^\d{1,2}[.、](?!\d)")),
    (4, re.compile(r"^\(\d{1,2}\)")),
]
HEADING = re.compile("|".join(p.pattern for _, p in HEADING_LEVELS))
PROGRESS_EVERY = 100_000  # characters between progress calls
_ITEM = re.compile(rf"^(其)?[{_CN_NUM}]+是")  # 一是… 二是…: a good place to start a chunk
_CLAUSE = re.compile(r"[^，,、：:]*(?:[，,、：:]|$)")
_HEADING_MAX_CHARS = 60


@dataclass
class Chunk:
    """A passage of the report."""

    text: str
    start: int
    end: int
    section: str  # the innermost heading, as written
    section_path: str  # all headings above it, joined by " > "
    page: int | None = None
    page_end: int | None = None
    index: int = 0


@dataclass
class _Piece:
    start: int
    end: int
    tokens: int
    heading_level: int = 0  # > 0: this piece is a heading line
    item_start: bool = False


def heading_level(line: str) -> int:
    """The heading level of a line (1 = 一、), or 0 when it is body text."""
    form = matching_form(line)
    for level, pattern in HEADING_LEVELS:
        if pattern.match(form):
            return level
    return 0


# Size: the chunker's two halves (sentences with their headings; packing them) share the
# token counter and the limits; run() is one loop because its packing rules interact.
class Chunker:
    """Section-aware, sentence-packing chunker.

    Args:
        max_tokens: the size limit of a chunk, in ``cl100k_base`` tokens.
        overlap_sentences: sentences repeated at the start of the next chunk in a section.
        count: the token counter (tiktoken by default).

    Example:
        >>> chunks = Chunker(max_tokens=300).run(text)
        >>> chunks[3].section_path
        '一、主要工作举措和成效 > (一)坚持政治引领,全面强化党对法治政府建设的领导'
    """

    def __init__(self, max_tokens: int = 300, overlap_sentences: int = 1,
                 count: Callable[[str], int] = count_tokens):
        if max_tokens < 20:
            raise ValueError(f"max_tokens must be at least 20, got {max_tokens}")
        if overlap_sentences < 0:
            raise ValueError("overlap_sentences cannot be negative")
        self.max_tokens = max_tokens
        self.overlap_sentences = overlap_sentences
        self.count = count

    # --- splitting into pieces --------------------------------------------------------

    def _split_long(self, text: str, start: int, end: int) -> list[_Piece]:
        """Split one over-long sentence at clauses, then by characters."""
        pieces: list[_Piece] = []
        cur_start = start
        for m in _CLAUSE.finditer(text, start, end):
            if m.start() == m.end():
                continue
            if self.count(text[cur_start:m.end()]) > self.max_tokens and m.start() > cur_start:
                pieces.append(_Piece(cur_start, m.start(), self.count(text[cur_start:m.start()])))
                cur_start = m.start()
        pieces.append(_Piece(cur_start, end, self.count(text[cur_start:end])))
        out: list[_Piece] = []
        for p in pieces:  # a clause still too long: cut it by characters
            s = p.start
            while self.count(text[s:p.end]) > self.max_tokens:
                cut = s + max(1, self.max_tokens // 2)
                while cut < p.end and self.count(text[s:cut + 1]) <= self.max_tokens:
                    cut += max(1, (p.end - cut) // 4) if self.count(text[s:p.end]) > 2 * self.max_tokens else 1
                    cut = min(cut, p.end)
                out.append(_Piece(s, cut, self.count(text[s:cut])))
                s = cut
            out.append(_Piece(s, p.end, self.count(text[s:p.end])))
        return out

    def _pieces(self, text: str) -> list[_Piece]:
        """Sentences of the text, with heading lines marked."""
        pieces: list[_Piece] = []
        lines = text.split("\n")
        levels = [heading_level(line) if line.strip() else 0 for line in lines]
        nonblank = [i for i, line in enumerate(lines) if line.strip()]
        for here, after in zip(nonblank, nonblank[1:]):
            # A short unpunctuated line right before a (一) heading is a 一、 heading whose
            # numeral was lost when the page was saved.
            line = lines[here].strip()
            if (not levels[here] and levels[after] == 2 and len(line) <= _HEADING_MAX_CHARS
                    and not re.search(r"[。！？；!?;:：]$", line)):
                levels[here] = 1
        line_start = 0
        for line, level in zip(lines, levels):
            line_end = line_start + len(line)
            body_from = line_start
            if level:
                # A heading is the whole line when short, else its first sentence
                # ("1.全面加强党的领导。始终坚持…").
                if len(line) <= _HEADING_MAX_CHARS:
                    head_end = line_end
                else:
                    m = re.search(r"[。！？；!?;]", line)
                    head_end = line_start + m.end() if m and m.end() <= _HEADING_MAX_CHARS else line_start
                if head_end > line_start:
                    pieces.append(_Piece(line_start, head_end, self.count(text[line_start:head_end]), level))
                    body_from = head_end
            for s, e in sentence_spans(text[body_from:line_end]):
                s, e = body_from + s, body_from + e
                item = bool(_ITEM.match(matching_form(text[s:s + 4])))
                tokens = self.count(text[s:e])
                if tokens > self.max_tokens:
                    split = self._split_long(text, s, e)
                    split[0].item_start = item
                    pieces.extend(split)
                else:
                    pieces.append(_Piece(s, e, tokens, item_start=item))
            line_start = line_end + 1
        return pieces

    # --- packing ------------------------------------------------------------------------

    def run(self, text: str, page_starts: list[int] | None = None,
            progress: Callable[[int], None] | None = None) -> list[Chunk]:
        """Chunk a cleaned report.

        Args:
            text: the cleaned text.
            page_starts: offsets where each page begins (PDF), for the chunks' page numbers.
            progress: called now and then with the number of characters chunked so far
                (a progress bar for long files).

        A chunk whose text is identical to an earlier chunk's is left out (its first occurrence
        stands for it); ``index`` numbers the chunks kept, 0..n-1.
        """
        chunks: list[Chunk] = []
        path: list[tuple[int, str]] = []  # (level, heading text)
        current: list[_Piece] = []
        current_path = ""

        def page_of(offset: int) -> int | None:
            return bisect.bisect_right(page_starts, offset) if page_starts else None

        seen: set[int] = set()  # hashes of the chunk texts so far

        def emit() -> None:
            if not current or all(p.heading_level for p in current):
                return
            start, end = current[0].start, current[-1].end
            key = hash(text[start:end])
            if key in seen:
                # A passage the report already holds word for word (a page saved twice, a file
                # of several copies): stored once, or it would crowd out everything else.
                return
            seen.add(key)
            section = current_path.split(" > ")[-1] if current_path else ""
            chunks.append(Chunk(text=text[start:end], start=start, end=end, section=section,
                                section_path=current_path, page=page_of(start),
                                page_end=page_of(max(start, end - 1)), index=len(chunks)))

        def tokens_of(pieces: list[_Piece]) -> int:
            return self.count(text[pieces[0].start:pieces[-1].end]) if pieces else 0

        reported = 0
        for piece in self._pieces(text):
            if progress and piece.end - reported >= PROGRESS_EVERY:
                reported = piece.end
                progress(reported)
            if piece.heading_level:
                if current and not all(p.heading_level for p in current):
                    emit()
                    current = []
                path = [(lvl, h) for lvl, h in path if lvl < piece.heading_level]
                path.append((piece.heading_level, text[piece.start:piece.end].strip()))
                current_path = " > ".join(h for _, h in path)
                current.append(piece)
                continue
            candidate = current + [piece]
            body = [p for p in current if not p.heading_level]
            full = tokens_of(candidate) > self.max_tokens
            # Start "二是…" items on a fresh chunk once the current one is half full.
            soft_break = piece.item_start and body and tokens_of(current) > self.max_tokens // 2
            if full and body and tokens_of(body) < self.max_tokens // 8 \
                    and tokens_of(candidate) <= self.max_tokens * 1.2:
                # Rather a little over the limit than a stranded fragment ("四是深入开展普法。"
                # followed by one long sentence).
                current = candidate
            elif current and (full or soft_break):
                emit()
                overlap = body[-self.overlap_sentences:] if self.overlap_sentences and not piece.item_start else []
                while overlap and tokens_of(overlap + [piece]) > self.max_tokens:
                    overlap = overlap[1:]
                current = overlap + [piece]
            else:
                current = candidate
        emit()
        if progress:
            progress(len(text))
        return chunks
