"""A PDF-only index answers the project's questions as well as the same reports as text.

The five bundled reports are printed as PDFs the way offices print them (bench/pdf_corpus.py:
A4, a centred larger title, paragraphs wrapped at the margin, page numbers, running headers),
each ingested with `rag ingest` into an index of its own beside an index of the .txt files,
and `rag eval --mode extractive` runs eval/questions/project.jsonl on both (`make eval-pdf` does
the same and prints the figures). Real embedding model, real Chroma, real CLI.
"""

from __future__ import annotations

import json

import pytest

from bench.pdf_corpus import REPORTS, eval_index, print_corpus

MAX_GAP = 0.03  # the PDF index may trail the text index by at most 3 points


@pytest.mark.slow  # two ingests and two runs of 141 questions: about a minute on two cores
def test_pdf_index_is_within_three_points_of_the_text_index(tmp_path):
    pdfs = print_corpus(tmp_path / "pdf")
    assert len(pdfs) == 5

    txt = eval_index(REPORTS, tmp_path / "index-txt", tmp_path / "txt.jsonl")
    pdf = eval_index(tmp_path / "pdf", tmp_path / "index-pdf", tmp_path / "pdf.jsonl")

    assert txt >= 0.9  # the text index itself answers the set (README: ~97%)
    assert pdf >= txt - MAX_GAP, f"PDF index {pdf:.1%} vs text index {txt:.1%}"
    # The same places, years and titles were found in the PDFs as in the text files.
    def reports(name):
        from rag.config import Settings
        from rag.index.store import ReportIndex

        index = ReportIndex(Settings(index_dir=str(tmp_path / f"index-{name}")))
        return sorted((r.region, r.year, r.title) for r in index.reports())

    assert reports("pdf") == reports("txt")
    # Questions answered from the text but not from the PDFs, for the failure message.
    rows = {name: {json.loads(line)["id"]: json.loads(line)["correct"]
                   for line in (tmp_path / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()}
            for name in ("txt", "pdf")}
    lost = [qid for qid, ok in rows["txt"].items() if ok and not rows["pdf"][qid]]
    assert len(lost) <= MAX_GAP * len(rows["txt"]), lost
