"""Scanned PDFs: pages without a text layer are read by OCR (RapidOCR, its models inside the
PyPI wheel), with the real engine on scans made here.

A scan is made from a bundled report: printed to a PDF (bench/pdf_corpus.py), every page
rendered to a slightly skewed grey-scale image, the images saved as an image-only PDF. Nothing
is fetched; every file is written by the test.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

from bench.pdf_corpus import print_report, scan_pdf
from rag.ingest.cleaning import clean
from rag.ingest.errors import UnreadableDocument
from rag.ingest.loaders import load_document
from rag.text.figures import extract_figures

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "data" / "reports"
QUESTIONS = ROOT / "eval" / "questions" / "project.jsonl"


def _figures(text: str) -> Counter:
    return Counter((f.value, f.unit) for f in extract_figures(text))


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """mianyang-2024 printed (3 pages) and scanned: (scan path, printed PDF path)."""
    folder = tmp_path_factory.mktemp("scan")
    printed = folder / "mianyang-2024-printed.pdf"
    report = print_report(REPORTS / "mianyang-2024.txt", printed)
    assert report.pages == 3
    return scan_pdf(printed, folder / "绵阳市2024年法治政府建设报告（扫描件）.pdf"), printed


@pytest.fixture(scope="module")
def scan_index(tmp_path_factory, scan, cached_embeddings):
    """The scan ingested (OCR'd) into an index of its own: (index, summary)."""
    from rag.config import Settings
    from rag.index.store import ReportIndex
    from rag.ingest.pipeline import Ingestor

    index = ReportIndex(Settings(index_dir=str(tmp_path_factory.mktemp("scan-index") / "index")),
                        cached_embeddings)
    summary = Ingestor(index, progress=False).run([scan[0]])
    return index, summary


def test_scan_has_no_text_layer(scan):
    from pypdf import PdfReader

    path, printed = scan
    assert all(not (page.extract_text() or "").strip() for page in PdfReader(path).pages)
    assert any((page.extract_text() or "").strip() for page in PdfReader(printed).pages)


@pytest.mark.slow  # OCR of three pages: about 10-40 s on two cores
def test_scan_is_ingested_with_its_figures_place_year_and_title(scan_index):
    index, summary = scan_index
    assert summary.count("ingested") == 1 and not summary.failed, summary.line()
    (result,) = [r for r in summary.results if r.status == "ingested"]
    assert any("read by OCR" in w for w in result.warnings)
    (report,) = index.reports()
    assert (report.region, report.year) == ("绵阳市", 2024)
    assert report.title == "绵阳市人民政府2024年度法治政府建设工作情况"
    # At least 98% of the report's figures (value and unit) come back from the scan.
    original = _figures(clean(load_document(REPORTS / "mianyang-2024.txt")).text)
    chunks = index.chunks(report.doc_id)
    stored = sorted(chunks, key=lambda d: d.metadata["char_start"])
    text, end = "", 0
    for chunk in stored:  # the cleaned text, rebuilt from the chunks' offsets (they overlap)
        start = chunk.metadata["char_start"]
        text += chunk.page_content[max(0, end - start):]
        end = max(end, chunk.metadata["char_end"])
    recovered = _figures(text)
    found = sum((original & recovered).values())
    assert sum(original.values()) >= 40
    assert found >= 0.98 * sum(original.values()), (original - recovered)
    # Chunks carry the pages they come from (the scan's three).
    assert {chunk.metadata["page"] for chunk in chunks} >= {1, 2}
    assert max(chunk.metadata["page_end"] for chunk in chunks) == 3


@pytest.mark.slow
def test_questions_about_figures_in_the_scan_are_answered(scan_index):
    from rag.answer.answerer import Answerer
    from rag.eval.harness import load_questions, score
    from rag.retrieve.hybrid import HybridRetriever

    index, _ = scan_index
    answerer = Answerer(HybridRetriever(index=index, k=8))
    questions = [q for q in load_questions(QUESTIONS) if q.id.startswith("my-") and q.kind == "fact"]
    assert len(questions) >= 10
    results = {}
    for q in questions:
        result = answerer.run(q.question, mode="extractive", id=q.id).to_dict()
        results[q.id] = score(q, result)["correct"]
    assert results["my-001"], "绵阳市2024年新收行政复议案件1472件,同比增长146.57%"
    assert sum(results.values()) >= len(results) - 1, results


@pytest.mark.slow
def test_pdf_with_one_scanned_page_reads_both(tmp_path, scan):
    # Pages 1 and 3 keep their text layer, page 2 is the scan's image: only page 2 is OCR'd.
    from pypdf import PdfReader, PdfWriter

    path, printed = scan
    writer = PdfWriter()
    text_pages, image_pages = PdfReader(printed).pages, PdfReader(path).pages
    for page in (text_pages[0], image_pages[1], text_pages[2]):
        writer.add_page(page)
    mixed = tmp_path / "mixed.pdf"
    with open(mixed, "wb") as handle:
        writer.write(handle)

    document = load_document(mixed)
    whole = load_document(printed)
    assert document.notes == ["1 page(s) without a text layer read by OCR (page 2); check figures against the scan"]
    assert len(document.page_starts) == 3
    page_two = whole.text[whole.page_starts[1]:whole.page_starts[2]]
    ocr_page_two = document.text[document.page_starts[1]:document.page_starts[2]]
    assert _figures(ocr_page_two) == _figures(page_two)
    assert document.text[:document.page_starts[1]] == whole.text[:whole.page_starts[1]]


def test_page_limit_is_a_clear_error_before_any_ocr(scan, monkeypatch):
    monkeypatch.setenv("RAG_OCR_MAX_PAGES", "2")
    with pytest.raises(UnreadableDocument) as info:
        load_document(scan[0])
    message = str(info.value)
    assert "3 pages without a text layer" in message and "at most 2" in message
    assert "RAG_OCR_MAX_PAGES" in message


@pytest.mark.parametrize("value", ["many", "0", "-5"])
def test_bad_page_limit_setting_is_named(scan, monkeypatch, value):
    monkeypatch.setenv("RAG_OCR_MAX_PAGES", value)
    with pytest.raises(UnreadableDocument, match="RAG_OCR_MAX_PAGES must be"):
        load_document(scan[0])


def test_missing_ocr_engine_is_a_clear_error(scan, monkeypatch):
    from rag.ingest import ocr

    ocr._engine.cache_clear()
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # as if the package were not installed
    try:
        with pytest.raises(UnreadableDocument, match="no text layer .*OCR is unavailable.*rapidocr"):
            load_document(scan[0])
    finally:
        ocr._engine.cache_clear()


@pytest.mark.slow  # OCR of two pages: several seconds
def test_scan_of_blank_pages_and_pictures_is_a_clear_error(tmp_path):
    from PIL import Image, ImageDraw

    pages = []
    for box in ((100, 150, 900, 1300), (300, 300, 420, 420)):  # a filled block; a small empty frame
        image = Image.new("L", (1240, 1754), 255)
        ImageDraw.Draw(image).rectangle(box, outline=0, fill=0 if box[0] == 100 else None, width=4)
        pages.append(image)
    path = tmp_path / "pictures.pdf"
    pages[0].save(str(path), "PDF", save_all=True, append_images=pages[1:], resolution=150)
    with pytest.raises(UnreadableDocument) as info:
        load_document(path)
    message = str(info.value)
    assert "no text layer" in message and "OCR found no text on its 2 page(s)" in message
