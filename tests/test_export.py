"""rag/export.py and `rag ask --export`: Markdown, Word, CSV and XLSX files of real answers."""

from __future__ import annotations

import csv
import shutil

import pytest
from docx import Document
from openpyxl import load_workbook

from rag.export import ExportError, write_answer, write_conversation, write_table

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


def test_text_is_never_a_formula_and_control_characters_do_not_lose_the_file(tmp_path):
    headers = ["问题", "回答", "数值", "变化"]
    rows = [["=HYPERLINK(\"http://x\",\"点我\")", "+1", 1274, -3.5],
            ["@SUM(A1)", "-5%的下降\x00\x07，见\x1f第3页", 0.5, None],
            ["普通问题", "第1段\n第2段\t完", 12, ""]]
    with open(write_table(tmp_path / "t.csv", headers, rows), encoding="utf-8-sig", newline="") as f:
        got = list(csv.reader(f))
    assert got[1][:2] == ["'=HYPERLINK(\"http://x\",\"点我\")", "'+1"] and got[1][2:] == ["1274", "-3.5"]
    assert got[2][0] == "'@SUM(A1)" and got[2][1].startswith("'-5%") and got[3][:2] == rows[2][:2]
    book = load_workbook(write_table(tmp_path / "t.xlsx", headers, rows))
    sheet = book.active
    cells = {(c.row, c.column): c for row in sheet.iter_rows() for c in row}
    for r, c in ((2, 1), (2, 2), (3, 1), (3, 2)):
        assert cells[r, c].data_type == "s" and cells[r, c].quotePrefix  # shown as typed after an apostrophe
    assert cells[2, 1].value == rows[0][0] and cells[2, 2].value == "+1"
    assert cells[3, 2].value == "-5%的下降，见第3页"  # the characters an .xlsx cannot hold left out
    assert (cells[2, 3].value, cells[2, 4].value, cells[3, 3].value) == (1274, -3.5, 0.5)  # numbers stay numbers
    assert cells[4, 2].value == "第1段\n第2段\t完" and not cells[4, 2].quotePrefix


def test_downloads_share_one_folder_and_only_the_newest_are_kept(monkeypatch):
    import rag.export as export

    monkeypatch.setattr(export, "_EXPORT_ROOT", None)
    monkeypatch.setattr(export, "EXPORT_FOLDERS_KEPT", 3)
    folders = [export.export_folder("figures") for _ in range(5)]
    root = folders[0].parent
    try:
        assert all(f.parent == root for f in folders) and root.name.startswith("govreport-exports-")
        assert sorted(p.name for p in root.iterdir()) == [f.name for f in folders[-3:]]
        assert all(f.is_dir() and not any(f.iterdir()) for f in folders[-3:])
    finally:
        shutil.rmtree(root, ignore_errors=True)
