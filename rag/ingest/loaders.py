"""Read a report file into plain text: txt, md, html/htm, pdf, docx.

Text files are decoded with charset-normalizer (UTF-8 with or without BOM, GBK/GB18030,
Big5, UTF-16). HTML keeps the article body (trafilatura, BeautifulSoup as a fallback). PDF
text comes from pypdf page by page, and the page starts are kept so chunks know their page.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from rag.ingest.errors import EmptyDocument, UnreadableDocument, UnsupportedFormat
from rag.text.normalize import matching_form

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
_SENTENCE_END = "。！？；：!?;:”」』）)"


@dataclass
class LoadedDocument:
    """A file's text before cleaning.

    ``page_starts[i]`` is the character offset where page ``i + 1`` begins (PDF only).
    """

    path: Path
    text: str
    format: str
    encoding: str | None = None
    page_starts: list[int] | None = None
    html_title: str | None = None
    page_text: str | None = None  # all visible text of an HTML page, for metadata lines
    notes: list[str] = field(default_factory=list)


# A UTF-8 file with at most this share of invalid bytes is damaged UTF-8 (a download cut off
# mid-character, a stray byte), not another encoding: GBK or Big5 text read as UTF-8 fails on
# most of its characters, binary data on a large share of its bytes.
DAMAGED_UTF8_SHARE = 0.005


def decode_text(data: bytes, name: str = "file", notes: list[str] | None = None) -> tuple[str, str]:
    """Decode bytes of unknown encoding; returns ``(text, encoding)``.

    Args:
        data: the file's bytes.
        name: the file's name, for messages.
        notes: if given, receives a note when the text was decoded with losses.

    Raises:
        EmptyDocument: no bytes, or only whitespace.
        UnreadableDocument: not text in any encoding charset-normalizer knows.
    """
    from charset_normalizer import from_bytes

    if not data.strip():
        raise EmptyDocument("the file is empty")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf_8_sig"
    try:
        return data.decode("utf-8"), "utf_8"  # the common case; strict, so a GBK file fails here
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None:
        lenient = data.decode("utf-8", errors="replace")
        damaged = lenient.count("\ufffd")
        if damaged <= DAMAGED_UTF8_SHARE * len(lenient):
            if notes is not None:
                notes.append(f"{damaged} invalid UTF-8 byte sequence(s) replaced by U+FFFD "
                             "(a damaged or truncated file?)")
            return lenient, "utf_8"
        raise UnreadableDocument("not a text file (no text encoding fits its bytes)")
    encoding = best.encoding
    # charset-normalizer reports GBK-compatible text as gb2312 or gbk; gb18030 is their
    # superset and decodes every such file, including the rare characters outside GBK.
    if encoding in ("gb2312", "gbk", "hz"):
        encoding = "gb18030"
    return data.decode(encoding, errors="replace"), encoding


_MD_RULES = [
    (re.compile(r"^\s{0,3}#{1,6}\s*", re.M), ""),  # heading marks
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links keep their text
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),  # bold
    (re.compile(r"^\s*>\s?", re.M), ""),  # quotes
    (re.compile(r"^\s*\|?[-:| ]{3,}\|?\s*$", re.M), ""),  # table rules
]


def _markdown_to_text(text: str) -> str:
    for pattern, repl in _MD_RULES:
        text = pattern.sub(repl, text)
    return text


def _load_text(path: Path, data: bytes) -> LoadedDocument:
    notes: list[str] = []
    text, encoding = decode_text(data, path.name, notes)
    fmt = "md" if path.suffix.lower() == ".md" else "txt"
    if fmt == "md":
        text = _markdown_to_text(text)
    return LoadedDocument(path=path, text=text, format=fmt, encoding=encoding, notes=notes)


def _load_html(path: Path, data: bytes) -> LoadedDocument:
    from bs4 import BeautifulSoup

    if not data.strip():
        raise EmptyDocument("the file is empty")
    notes: list[str] = []
    html, encoding = decode_text(data, path.name, notes)
    soup = BeautifulSoup(html, "html.parser")
    page_text = soup.get_text("\n")  # before trimming: 发布日期/来源 lines sit outside the article
    title = None
    for tag in (soup.find("h1"), soup.title):
        if tag and tag.get_text(strip=True):
            title = tag.get_text(" ", strip=True)
            break
    try:
        import trafilatura

        body = trafilatura.extract(html, include_comments=False, include_tables=True,
                                   favor_recall=True, deduplicate=False)
    except ImportError:  # a broken lxml extra must not stop HTML ingestion: use the fallback
        body = None
    if not body or len(body) < 50:
        # trafilatura found no article: fall back to the page's visible text.
        for tag in soup(["script", "style", "nav", "header", "footer", "noscript"]):
            tag.decompose()
        body = soup.get_text("\n")
    if title and title not in body[:300]:
        body = f"{title}\n{body}"
    return LoadedDocument(path=path, text=body, format="html", encoding=encoding, html_title=title,
                          page_text=page_text, notes=notes)


def _reflow_pdf_lines(page_text: str) -> str:
    """Join the visual lines of a PDF page back into paragraphs.

    PDF text breaks at the end of every printed line, usually mid-sentence. A line is joined
    to the next unless it ends a sentence or the next one starts a heading.
    """
    from rag.ingest.chunking import HEADING  # the same heading patterns the chunker uses

    lines = [line.strip() for line in page_text.splitlines()]
    out: list[str] = []
    for line in lines:
        if not line:
            continue
        # A short heading line stays on its own, before and after.
        previous_is_heading = out and len(out[-1]) <= 60 and HEADING.match(matching_form(out[-1]))
        if (out and not out[-1].endswith(tuple(_SENTENCE_END)) and not previous_is_heading
                and not HEADING.match(matching_form(line))):
            out[-1] += line
        else:
            out.append(line)
    return "\n".join(out)


def _load_pdf(path: Path, data: bytes) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not data.strip():
        raise EmptyDocument("the file is empty")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception:
                ok = 0
            if not ok:
                raise UnreadableDocument("the PDF is encrypted with a password; save an unprotected copy")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UnreadableDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise UnreadableDocument(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if not any(p.strip() for p in pages):
        raise UnreadableDocument("the PDF has no text layer (a scan?); OCR is not supported")
    texts, starts, offset = [], [], 0
    for page in pages:
        starts.append(offset)
        text = _reflow_pdf_lines(page)
        texts.append(text)
        offset += len(text) + 1  # the "\n" that joins pages
    return LoadedDocument(path=path, text="\n".join(texts), format="pdf", page_starts=starts)


def _load_docx(path: Path, data: bytes) -> LoadedDocument:
    import zipfile

    import docx

    if not data.strip():
        raise EmptyDocument("the file is empty")
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableDocument(f"not a readable .docx file ({type(exc).__name__}: {exc})") from exc
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append("\t".join(cell.text.strip() for cell in row.cells))
    return LoadedDocument(path=path, text="\n".join(lines), format="docx")


_LOADERS = {".txt": _load_text, ".md": _load_text, ".html": _load_html, ".htm": _load_html,
            ".pdf": _load_pdf, ".docx": _load_docx}


def load_document(path: str | Path) -> LoadedDocument:
    """Read one report file.

    Raises:
        UnsupportedFormat: the suffix is not one of ``SUPPORTED_SUFFIXES``.
        EmptyDocument, UnreadableDocument: the file has no usable text; the message says why.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".doc":
        raise UnsupportedFormat("old Word .doc files are not supported; save it as .docx or .pdf")
    loader = _LOADERS.get(suffix)
    if loader is None:
        raise UnsupportedFormat(f"unsupported file type {suffix or '(none)'}; "
                                f"supported: {' '.join(SUPPORTED_SUFFIXES)}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableDocument(f"cannot read the file: {exc.strerror or exc}") from exc
    document = loader(path, data)
    if not document.text.strip():
        raise EmptyDocument("no text found in the file")
    return document
