"""rag/export.py and `rag ask --export`: Markdown, Word, CSV and XLSX files of real answers."""

from __future__ import annotations

import csv

import pytest
from docx import Document
from openpyxl import load_workbook

from rag.export import ExportError, write_answer, write_conversation

QUESTION = "太原和绵阳2024年新收行政复议案件各多少？哪个多？"


@pytest.fixture(scope="module")
def comparison(bundled_index):
    from rag.answer.answerer import Answerer
    from rag.retrieve.hybrid import HybridRetriever

    answerer = Answerer(HybridRetriever(index=bundled_index, k=8), None, k=8)
    result = answerer.run(QUESTION, mode="extractive")
    assert result.table and len(result.citations) >= 2
    return result


def test_docx_holds_answer_citations_and_table(comparison, tmp_path):
    path = write_answer(tmp_path / "a.docx", comparison)
    doc = Document(str(path))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert QUESTION in text
    for line in comparison.answer.strip().split("\n"):
        assert line.strip() in text
    for c in comparison.citations:
        assert f"[{c.n}] 《{c.title}》" in text
        assert c.text.strip() in text
    cells = [cell.text for row in doc.tables[0].rows for cell in row.cells]
    assert "1274件" in cells and "1472件" in cells
    assert len(doc.inline_shapes) == 1  # the comparison's bar chart, as a picture


def test_markdown_and_tables(comparison, tmp_path):
    md = write_answer(tmp_path / "a.md", comparison).read_text(encoding="utf-8")
    assert md.startswith(f"# {QUESTION}") and "| 太原市 | 2024 | 1274件 | 1274 |" in md and "## 来源" in md
    with open(write_answer(tmp_path / "a.csv", comparison), encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == "地区" and {r[2] for r in rows[1:]} == {"1274件", "1472件"}
    sheet = load_workbook(write_answer(tmp_path / "a.xlsx", comparison)).active
    got = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert got[0] == rows[0] and len(got) == len(rows)
    assert sorted(r[2] for r in got[1:]) == ["1274件", "1472件"] and {r[3] for r in got[1:]} == {1274, 1472}
    conv = write_conversation(tmp_path / "c.md", [comparison, comparison]).read_text(encoding="utf-8")
    assert conv.count("## 1. ") == 1 and conv.count("## 2. ") == 1


def test_unknown_format_names_the_file(comparison, tmp_path):
    with pytest.raises(ExportError, match="a.pdf"):
        write_answer(tmp_path / "a.pdf", comparison)
