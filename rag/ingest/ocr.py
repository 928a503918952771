"""OCR of PDF pages without a text layer (scans): each page rendered to an image and read.

The engine is RapidOCR (``rapidocr-onnxruntime``: PaddleOCR's PP-OCRv4 Chinese detection and
recognition models, shipped inside the PyPI wheel, run by onnxruntime on the CPU; nothing is
downloaded). It was chosen over Tesseract (``chi_sim``) on a scan of a bundled report: it read
every character and figure where Tesseract inserted stray characters, at a similar speed
(docs/ingestion.md, "Scanned PDFs"). Pages are rendered with pypdfium2 (which pdfplumber
already needs) at ``DPI``.

The lines come back with their boxes, in PDF points, so the layout rules that reflow a text
layer (rag.ingest.pdf_layout) reflow a scan too.
"""

from __future__ import annotations

import os
import statistics
import sys
from functools import lru_cache

from rag.config import SettingsError
from rag.ingest.errors import UnreadableDocument
from rag.ingest.pdf_layout import TextLine

DPI = 150  # 16-point body text is ~33 pixels high: enough for PP-OCRv4, and twice as fast as 300
DEFAULT_MAX_PAGES = 100
MIN_SCORE = 0.3  # recognition confidence below which a box is dropped (the engine's 0.5 lost lines)
BOX_THRESHOLD = 0.3  # detection threshold (the engine's 0.5 missed lines that open with a quote)


class OcrUnavailable(RuntimeError):
    """The OCR engine cannot be loaded (the package is missing or broken)."""


def max_pages() -> int:
    """How many pages one file may have OCR'd: ``RAG_OCR_MAX_PAGES`` (default 100).

    Raises:
        SettingsError: the variable is not a whole number of at least 1.
    """
    raw = os.environ.get("RAG_OCR_MAX_PAGES", "").strip()
    if not raw:
        return DEFAULT_MAX_PAGES
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"RAG_OCR_MAX_PAGES must be a whole number, got {raw!r}") from None
    if value < 1:
        raise SettingsError(f"RAG_OCR_MAX_PAGES must be at least 1, got {value}")
    return value


@lru_cache(maxsize=1)
def _engine():
    try:
        from rapidocr_onnxruntime import RapidOCR
    except Exception as exc:  # ImportError, or a broken onnxruntime/opencv underneath
        raise OcrUnavailable(f"the OCR engine (rapidocr-onnxruntime) cannot be loaded: {exc}") from exc
    # Scanned reports are upright: the angle classifier costs time and changes nothing.
    return RapidOCR(use_cls=False)


def read_image(image) -> list[TextLine]:
    """The text lines of one page image (a PIL image), positions in pixels, top to bottom.

    Boxes the engine returns on one row (a line with a wide gap, "第 3 页  共 10 页") are
    joined into one line, with a space where the gap is.
    """
    import numpy as np

    result, _ = _engine()(np.asarray(image.convert("RGB")), text_score=MIN_SCORE, box_thresh=BOX_THRESHOLD)
    boxes = []
    for points, text, _score in result or []:
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        if text.strip():
            boxes.append(TextLine(text.strip(), min(xs), max(xs), min(ys), max(ys), max(ys) - min(ys)))
    boxes.sort(key=lambda b: (b.top + b.bottom) / 2)
    rows: list[list[TextLine]] = []
    for box in boxes:
        row = rows[-1] if rows else None
        if row and abs((box.top + box.bottom) / 2 - (row[0].top + row[0].bottom) / 2) < 0.5 * row[0].size:
            row.append(box)
        else:
            rows.append([box])
    lines = []
    for row in rows:
        row.sort(key=lambda b: b.x0)
        text = row[0].text
        for a, b in zip(row, row[1:]):
            char = (a.x1 - a.x0) / max(1, len(a.text))
            text += (" " if b.x0 - a.x1 > 0.6 * char else "") + b.text
        lines.append(TextLine(text, row[0].x0, max(b.x1 for b in row), min(b.top for b in row),
                              max(b.bottom for b in row), statistics.median(b.size for b in row)))
    return lines


def ocr_pages(data: bytes, page_numbers: list[int], name: str = "file",
              progress: bool = True) -> dict[int, list[TextLine]]:
    """OCR the given pages (0-based) of a PDF; returns each page's lines, positions in points.

    Args:
        data: the PDF's bytes.
        page_numbers: the pages to read.
        name: the file's name, for the progress bar.
        progress: show a tqdm bar, one step a page (on stderr).

    Raises:
        OcrUnavailable: the engine cannot be loaded.
        UnreadableDocument: pdfium cannot open the file.
    """
    import pypdfium2
    from tqdm import tqdm

    _engine()  # fail before rendering anything
    scale = DPI / 72
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise UnreadableDocument(f"the PDF's pages cannot be rendered for OCR: {exc}") from exc
    out: dict[int, list[TextLine]] = {}
    try:
        with tqdm(page_numbers, desc=f"  {name[-24:]} OCR", unit="页", leave=False, file=sys.stderr,
                  disable=not progress) as bar:
            for number in bar:
                image = document[number].render(scale=scale, grayscale=True).to_pil()
                out[number] = [TextLine(line.text, line.x0 / scale, line.x1 / scale, line.top / scale,
                                        line.bottom / scale, line.size / scale)
                               for line in read_image(image)]
    finally:
        document.close()
    return out
