"""`rag figures` and rag/index/figures_query.py over the real bundled index."""

from __future__ import annotations

import csv
import os

from openpyxl import load_workbook

from rag.cli.main import main
from rag.index.figures_query import FigureFilter, query_figures
from rag.index.store import get_all


def test_figures_csv_and_xlsx_match_the_index(bundled_index, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_INDEX_DIR", bundled_index.settings.index_dir)
    stored = sum(len(bundled_index.figures(r)) for r in bundled_index.reports())
    assert stored == len(get_all(bundled_index.figures_collection, include=[])["ids"]) > 200
    assert main(["figures", "--csv", str(tmp_path / "f.csv"), "--xlsx", str(tmp_path / "f.xlsx")]) == 0
    with open(tmp_path / "f.csv", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert len(rows) - 1 == stored
    assert any(r[0] == "太原市" and "新收行政复议案件" in r[2] and r[3] == "1274" and r[4] == "件" for r in rows)
    sheet = load_workbook(tmp_path / "f.xlsx").active
    assert sheet.max_row == len(rows)


def test_filters_and_similar(bundled_index):
    rows = query_figures(bundled_index, FigureFilter(regions=["太原"], years=[2024], metric="行政復議"))
    assert rows and {r.region for r in rows} == {"太原市"} and any(r.value == 1274 for r in rows)
    assert query_figures(bundled_index, FigureFilter(years=[2023])) and \
        {r.year for r in query_figures(bundled_index, FigureFilter(years=[2023]))} == {2023}
    similar = query_figures(bundled_index, FigureFilter(similar="行政复议案件数量", limit=5))
    assert len(similar) == 5 and similar[0].similarity >= similar[-1].similarity
    assert any("行政复议" in r.metric for r in similar[:3])
