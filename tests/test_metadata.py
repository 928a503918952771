"""Metadata detection on the five bundled reports, on renamed copies, and with overrides."""

import shutil
from pathlib import Path

import pytest

from conftest import EXPECTED, REPORTS
from rag.ingest.cleaning import clean
from rag.ingest.loaders import load_document
from rag.ingest.metadata import detect_metadata


def detect(path: Path):
    cleaned = clean(load_document(path))
    return detect_metadata(cleaned.text, path, cleaned.info_lines)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_reports_renamed(name, tmp_path):
    # The file name carries no hint: detection must come from the text.
    copy = tmp_path / "report-copy.txt"
    shutil.copy(REPORTS / name, copy)
    meta = detect(copy)
    region, year, province = EXPECTED[name]
    assert (meta.region, meta.year, meta.province) == (region, year, province)
    assert meta.evidence["region"] != "file name" and meta.evidence["year"] != "file name"
    assert meta.title and region[:2] in meta.title.replace("倉", "仓") and str(year) in meta.title
    assert not meta.warnings


def test_titles_dates_publishers_and_script():
    metas = {name: detect(REPORTS / name) for name in EXPECTED}
    assert metas["taiyuan-2024.txt"].title == "太原市2024年法治政府建设年度报告"
    assert metas["mianyang-2024.txt"].title == "绵阳市人民政府2024年度法治政府建设工作情况"
    # Taicang keeps its traditional title but is filtered under the simplified place name.
    assert metas["taicang-2024.txt"].title == "太倉市2024年度法治政府建設工作情況報告"
    assert metas["taicang-2024.txt"].lang == "zh-Hant"
    assert all(m.lang == "zh-Hans" for n, m in metas.items() if n != "taicang-2024.txt")
    # No title in the text: one is built.
    assert metas["shijiazhuang-2024.txt"].title == "石家庄市2024年法治政府建设情况"
    assert metas["houma-2023.txt"].title == "侯马市2023年法治政府建设情况"
    # Signature block: signed January 2024, about 2023.
    assert metas["houma-2023.txt"].date == "2024-01-19"
    assert metas["houma-2023.txt"].publisher == "中共侯马市委 侯马市人民政府"
    # Page-information lines: publication date and source office, never taken for the year.
    assert metas["taiyuan-2024.txt"].date == "2025-03-24"
    assert metas["taiyuan-2024.txt"].publisher == "太原市司法局"
    assert metas["mianyang-2024.txt"].date == "2025-03-11"


def test_opening_sentence_self_reference_beats_other_places():
    text = "2023年,侯马市委、市政府紧紧围绕山西省、临汾市、临汾市实施方案要求,推进工作。\n我市成效显著。"
    meta = detect_metadata(text, Path("x.txt"))
    assert meta.region == "侯马市" and meta.year == 2023


def test_region_named_only_in_the_body_and_year_from_signature():
    text = ("一、主要工作\n我市坚持依法行政。全年办理案件12件。\n建立绵阳市领导干部学法清单。"
            "绵阳市司法局牵头推进。\n市人民政府\n2025年2月3日")
    meta = detect_metadata(text, Path("x.txt"))
    assert meta.region == "绵阳市" and meta.province == "四川省"
    assert meta.year == 2024 and meta.evidence["year"] == "signature date"
    assert meta.date == "2025-02-03"


def test_chinese_numeral_year_and_nested_place_in_title():
    text = "山西省太原市二〇二三年法治政府建设年度报告\n二〇二三年，全市坚持依法行政。"
    meta = detect_metadata(text, Path("x.txt"))
    assert meta.region == "太原市" and meta.year == 2023


def test_unknown_place_and_year_warn_and_fall_back_to_the_file_name(tmp_path):
    meta = detect_metadata("这是一份会议纪要。与会人员讨论了工作安排。", tmp_path / "notes.txt")
    assert meta.region is None and meta.year is None
    assert any("place not detected" in w for w in meta.warnings)
    assert any("year not detected" in w for w in meta.warnings)
    meta = detect_metadata("这是一份会议纪要。", tmp_path / "太原市-2022.txt")
    assert meta.region == "太原市" and meta.year == 2022 and meta.evidence["region"] == "file name"
