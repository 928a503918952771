"""Read a report file into plain text: txt, md, html/htm, pdf, docx.

Text files are decoded with charset-normalizer (UTF-8 with or without BOM, GBK/GB18030,
Big5, UTF-16). HTML keeps the article body (trafilatura, BeautifulSoup as a fallback). PDF
lines come with their positions and sizes from pdfplumber and are reflowed into the report's
paragraphs (rag.ingest.pdf_layout); pages without a text layer are OCR'd (rag.ingest.ocr); pypdf
checks the file, and its text is the fallback for a page whose layout cannot be read. The page
starts are kept so chunks know their page.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from rag.ingest.errors import EmptyDocument, UnreadableDocument, UnsupportedFormat
from rag.ingest.pdf_layout import Page, TextLine, drop_page_numbers, reflow_pages, reflow_text

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".doc")


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
    """Join the visual lines of a PDF page's plain text (no positions) back into paragraphs.

    Used where a page's layout cannot be read; see ``rag.ingest.pdf_layout.reflow_text``.
    """
    return reflow_text(page_text)


# A gap between two glyphs is a space from this share of the font size: a justified Chinese line
# spreads its characters by less, a space (half an em) is more. pdfplumber's fixed 3 points
# would put spaces inside the justified lines of 16-point text.
_SPACE_RATIO = 0.3
_MIN_PAGE_CHARS = 1  # a page with less text than this has no text layer: it is OCR'd
_MIN_OCR_CHARS = 10  # a scan from which OCR reads less than this holds no report


def _layout_pages(data: bytes) -> list[Page | None]:
    """Each page's printed lines with positions and sizes (pdfplumber); ``None`` where a page's
    layout cannot be read (an exception, or glyphs without Unicode: "(cid:123)")."""
    import pdfplumber

    pages: list[Page | None] = []
    try:
        with pdfplumber.open(io.BytesIO(data), password="") as pdf:
            for page in pdf.pages:
                try:
                    rows = page.extract_text_lines(return_chars=True, strip=True,
                                                   x_tolerance_ratio=_SPACE_RATIO)
                except Exception:  # one odd page must not cost the others their layout
                    pages.append(None)
                    continue
                finally:
                    page.close()  # pdfplumber keeps every parsed page otherwise: memory grows with the file
                lines = []
                for row in rows:
                    text = row["text"]
                    if text.strip():
                        sizes = sorted(c.get("size", 0) for c in row["chars"]) or [0]
                        lines.append(TextLine(text, row["x0"], row["x1"], row["top"], row["bottom"],
                                              sizes[len(sizes) // 2]))
                unreadable = any("(cid:" in line.text for line in lines)
                pages.append(None if unreadable else Page(lines, float(page.width)))
    except Exception:  # pdfminer failed where pypdf did not: pypdf's text for every page
        return []
    return pages


def _ocr_scanned(path: Path, data: bytes, pages: list[Page | None], plain: list[str],
                 notes: list[str]) -> None:
    """OCR the pages without a text layer, in place; raises when nothing readable is left."""
    from rag.config import SettingsError
    from rag.ingest import ocr

    blank = [i for i, (page, text) in enumerate(zip(pages, plain))
             if len(re.sub(r"\s", "", text)) < _MIN_PAGE_CHARS
             and (page is None or sum(len(line.text) for line in page.lines) < _MIN_PAGE_CHARS)]
    if not blank:
        return
    has_text = len(blank) < len(pages)
    try:
        limit = ocr.max_pages()
    except SettingsError as exc:
        raise UnreadableDocument(f"the PDF needs OCR, but {exc}") from exc
    if len(blank) > limit:
        raise UnreadableDocument(
            f"the PDF has {len(blank)} pages without a text layer (a scan?); OCR reads at most {limit} "
            "pages a file (RAG_OCR_MAX_PAGES): raise the limit or split the file")
    try:
        read = ocr.ocr_pages(data, blank, path.name)
    except ocr.OcrUnavailable as exc:
        if not has_text:
            raise UnreadableDocument(f"the PDF has no text layer (a scan?) and OCR is unavailable: {exc}") from exc
        notes.append(f"{len(blank)} page(s) without a text layer skipped: {exc}")
        return
    found = [i for i in blank if read.get(i)]
    ocr_chars = sum(len(re.sub(r"\s", "", line.text)) for i in found for line in read[i])
    if ocr_chars < _MIN_OCR_CHARS and not has_text:
        # A frame or a stamp reads as a character or two ("口"): that is not a report.
        raise UnreadableDocument(f"the PDF has no text layer, and OCR found no text on its {len(pages)} "
                                 f"page(s) ({ocr_chars} character(s): blank pages or pictures only?)")
    for i in blank:
        pages[i] = Page(read.get(i, []), pages[i].width if pages[i] else 595.0)
        plain[i] = ""
    if found:
        numbers = ", ".join(str(i + 1) for i in found[:10]) + (" …" if len(found) > 10 else "")
        notes.append(f"{len(found)} page(s) without a text layer read by OCR (page {numbers}); "
                     "check figures against the scan")


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
        plain = [page.extract_text() or "" for page in reader.pages]
    except UnreadableDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise UnreadableDocument(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if not plain:
        raise UnreadableDocument("the PDF has no pages")
    pages = _layout_pages(data)
    if len(pages) != len(plain):
        pages = [None] * len(plain)
    notes: list[str] = []
    _ocr_scanned(path, data, pages, plain, notes)

    # Pages with positions are reflowed together (a paragraph may run over a page break);
    # a page without them gets the plain-text rule on pypdf's text.
    paragraphs: list[list[str]] = []
    run: list[Page] = []
    for page, text in zip(pages, plain):
        if page is not None:
            run.append(page)
            continue
        paragraphs += reflow_pages(run) if run else []
        run = []
        paragraphs.append([line for line in reflow_text(drop_page_numbers(text)).split("\n") if line])
    paragraphs += reflow_pages(run) if run else []

    texts, starts, offset = [], [], 0
    for page_paragraphs in paragraphs:
        starts.append(offset)
        for paragraph in page_paragraphs:
            texts.append(paragraph)
            offset += len(paragraph) + 1  # the "\n" that joins lines
    text = "\n".join(texts)
    # A last page that only finishes a paragraph from the page before has no text of its own.
    starts = [min(start, len(text)) for start in starts]
    return LoadedDocument(path=path, text=text, format="pdf", page_starts=starts, notes=notes)


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


def _load_doc(path: Path, data: bytes) -> LoadedDocument:
    from rag.ingest.word97 import word97_text  # Word 97 .doc: Debian's catdoc

    return LoadedDocument(path=path, text=word97_text(path, data), format="doc")


_LOADERS = {".txt": _load_text, ".md": _load_text, ".html": _load_html, ".htm": _load_html,
            ".pdf": _load_pdf, ".docx": _load_docx, ".doc": _load_doc}


def load_document(path: str | Path) -> LoadedDocument:
    """Read one report file.

    Raises:
        UnsupportedFormat: the suffix is not one of ``SUPPORTED_SUFFIXES``.
        EmptyDocument, UnreadableDocument: the file has no usable text; the message says why.
    """
    path = Path(path)
    suffix = path.suffix.lower()
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
