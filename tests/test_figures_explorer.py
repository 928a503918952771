"""`rag figures` and rag/index/figures_query.py over the real bundled index."""

from __future__ import annotations

import csv
import json
import os

import pytest
from openpyxl import load_workbook

from conftest import copy_reports
from rag.cli.main import main
from rag.index.figures_query import FigureFilter, query_figures
from rag.index.store import corrected_text, figure_text, get_all


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


# --- corrections: the figure as written follows the corrected value -----------------------------

@pytest.fixture(scope="module")
def fixable_index(tmp_path_factory, cached_embeddings):
    """太原 and 绵阳 2024 in an index of their own (corrections change it)."""
    from rag.config import Settings
    from rag.index.store import ReportIndex
    from rag.ingest.pipeline import Ingestor

    tmp = tmp_path_factory.mktemp("fixable")
    index = ReportIndex(Settings(index_dir=str(tmp / "index")), cached_embeddings)
    reports = copy_reports(tmp / "reports", {"taiyuan-2024.txt", "mianyang-2024.txt"})
    assert Ingestor(index, progress=False).run([reports]).count("ingested") == 2
    return index


def _figure(index, region: str, value: float):
    return next(r for r in query_figures(index, FigureFilter(regions=[region], metric="新收行政复议案件"))
                if r.value == value)


def test_a_corrected_value_is_cited_as_corrected(fixable_index):
    from rag.answer.answerer import Answerer
    from rag.retrieve.hybrid import HybridRetriever

    target = _figure(fixable_index, "太原", 1274)
    after = fixable_index.correct_figure(target.id, value=1375)
    assert after["text"] == "1375件" and json.loads(after["fix_original"])["text"] == "1274件"
    assert fixable_index.figure(target.id)["text"] == "1375件"  # stored: every reader sees it
    row = next(r for r in query_figures(fixable_index) if r.id == target.id)
    assert (row.text, row.value, row.status) == ("1375件", 1375, "corrected")
    result = Answerer(HybridRetriever(index=fixable_index, k=8), None, k=8).run(
        "太原和绵阳2024年新收行政复议案件各多少？哪个多？", mode="extractive")
    taiyuan = next(r for r in result.table["rows"] if r["region"] == "太原市")
    assert (taiyuan["figure"], taiyuan["value"]) == ("1375件", 1375)
    conclusion = result.table["conclusion"]
    assert "1472件[2] 对 1375件[1]，多97件" in conclusion and "1274件" not in conclusion
    assert conclusion in result.answer
    # Corrected back: the report's own wording again.
    assert fixable_index.correct_figure(target.id, value=1274)["text"] == "1274件"


def test_corrected_text_keeps_qualifiers_and_heals_older_corrections():
    assert corrected_text(53000, "人次", "约", like="约5.2万人次") == "约5.3万人次"
    assert corrected_text(1350, "人", "余", like="1200余人") == "1350余人"
    assert corrected_text(3.2e11, "元", "超过", like="超过3000亿元") == "超过3200亿元"
    assert corrected_text(1275, "宗", "", like="1274件") == "1275宗"
    assert corrected_text(13500, "人", "余") == "13500余人" and corrected_text(3e11, "元") == "300000000000元"
    # A correction stored before texts were rewritten: the comparison cites the corrected figure.
    stale = {"text": "1274件", "value": 1375.0, "unit": "件", "fix_status": "corrected"}
    assert figure_text(stale) == "1375件" and figure_text({**stale, "fix_status": ""}) == "1274件"
    assert figure_text({**stale, "value": 1274.0}) == "1274件"


def test_a_removed_figure_cannot_be_corrected_back(fixable_index):
    target = _figure(fixable_index, "绵阳", 1472)
    fixable_index.correct_figure(target.id, remove=True)
    with pytest.raises(ValueError, match="removed"):
        fixable_index.correct_figure(target.id, value=1500)
    assert fixable_index.figure(target.id)["fix_status"] == "removed"
    assert target.id not in {r.id for r in query_figures(fixable_index)}
    other = next(r for r in query_figures(fixable_index) if r.region == "绵阳市")
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            fixable_index.correct_figure(other.id, value=bad)
    assert fixable_index.figure(other.id).get("fix_status") is None
