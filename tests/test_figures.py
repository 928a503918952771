"""Figures as data: Chinese number parsing, extraction from real report sentences, storage."""

from __future__ import annotations

import re

import pytest

from conftest import REPORTS
from rag.text.figures import extract_figures, parse_chinese_number, parse_number



# --- units and number forms ---------------------------------------------------------------

@pytest.mark.parametrize("written, value, unit", [
    ("1.26万余件", 12600, "件"),
    ("5万余件", 50000, "件"),
    ("8.6万余条", 86000, "条"),
    ("1,274件", 1274, "件"),
    ("1274件", 1274, "件"),
    ("98%", 98, "%"),
    ("146.57%", 146.57, "%"),
    ("９８％", 98, "%"),  # full-width digits and percent sign
    ("百分之九十五", 95, "%"),
    ("百分之95.5", 95.5, "%"),
    ("百分之九十九点五", 99.5, "%"),
    ("两个", 2, "个"),
    ("二十三项", 23, "项"),
    ("3.5亿元", 350_000_000, "元"),
    ("5276万元", 52_760_000, "元"),
    ("130余人次", 130, "人次"),
    ("3个百分点", 3, "个百分点"),
    ("1.2萬余件", 12000, "件"),  # traditional 萬
])
def test_figures_as_written_parse_to_value_and_unit(written, value, unit):
    parsed = parse_number(written)
    assert parsed is not None, written
    assert parsed[0] == pytest.approx(value)
    assert parsed[1] == unit


@pytest.mark.parametrize("text", ["2024年", "12345", "第三", "一件事", "hello", "万余件"])
def test_things_that_are_not_figures_do_not_parse(text):
    assert parse_number(text) is None


@pytest.mark.parametrize("text, value", [
    ("两", 2), ("十", 10), ("十二", 12), ("二十", 20), ("一百零五", 105), ("一万二千", 12000),
    ("三千五百", 3500), ("二三", None), ("百万x", None),
])
def test_chinese_numerals(text, value):
    assert parse_chinese_number(text) == value


def test_qualifiers_are_kept():
    approx, hedged, change = extract_figures("调解矛盾纠纷5万余件，接待群众近3000人，案件数同比增长20%。")
    assert (approx.value, approx.qualifiers, approx.approximate) == (50000, "余", True)
    assert (hedged.value, hedged.qualifiers, hedged.approximate) == (3000, "近", True)
    assert change.change == "同比增长" and change.metric == "案件数"


# --- real sentences from the five bundled reports -----------------------------------------

def _sentence(report: str, fragment: str) -> str:
    """The whole sentence of a bundled report that holds ``fragment`` (so the tests use real text)."""
    text = (REPORTS / report).read_text(encoding="utf-8")
    match = re.search(rf"[^。\n]*{re.escape(fragment)}[^。\n]*。?", text)
    assert match, f"{report} no longer contains {fragment!r}"
    return match.group(0)


def _only(figures, text):
    found = [f for f in figures if f.text == text]
    assert len(found) == 1, [(f.text, f.metric) for f in figures]
    return found[0]


def test_taiyuan_reconsideration_cases_and_their_growth():
    figures = extract_figures(_sentence("taiyuan-2024.txt", "新收行政复议案件1274件"))
    cases, growth = _only(figures, "1274件"), _only(figures, "204%")
    assert (cases.value, cases.unit) == (1274, "件") and "新收行政复议案件" in cases.metric
    assert (growth.value, growth.unit, growth.change) == (204, "%", "同比增长")
    assert growth.metric == cases.metric  # the growth of that same metric
    assert cases.clause.endswith("新收行政复议案件1274件")


def test_taiyuan_ten_thousands_with_yu():
    figures = extract_figures(_sentence("taiyuan-2024.txt", "发布各类政务信息8.6万余条"))
    info = _only(figures, "8.6万余条")
    assert (info.value, info.unit, info.qualifiers) == (86000, "条", "余")
    assert "政务信息" in info.metric
    mailbox = _only(figures, "13367件")
    assert "市长信箱留言" in mailbox.metric


def test_houma_legal_aid_and_no_figure_from_a_plenum_name():
    figures = extract_figures(_sentence("houma-2023.txt", "办理各类法律援助案件150件"))
    aid = _only(figures, "150件")
    assert aid.value == 150 and "法律援助案件" in aid.metric
    assert _only(figures, "60件").clause.startswith("其中")
    plenum = extract_figures(_sentence("houma-2023.txt", "十二届八次全会"))
    assert all(f.text != "八次" for f in plenum)  # 十二届八次全会 names a meeting, not 8 of anything


def test_taicang_traditional_characters():
    figures = extract_figures(_sentence("taicang-2024.txt", "新收行政復議申請325件"))
    received = _only(figures, "325件")
    assert received.value == 325 and "新收行政复议申请" in received.metric  # metric in matching form
    assert "新收行政復議申請325件" in received.clause  # the clause as the report writes it
    assert _only(figures, "272件").value == 272
    mediated = _only(extract_figures(_sentence("taicang-2024.txt", "調解矛盾糾紛2萬余件")), "2万余件")
    assert (mediated.value, mediated.qualifiers) == (20000, "余")
    assert "调解矛盾纠纷" in mediated.metric


def test_mianyang_rates_and_falls():
    disputes = _only(extract_figures(_sentence("mianyang-2024.txt", "预防和化解矛盾纠纷3.7万余件")), "3.7万余件")
    assert disputes.value == 37000
    falls = extract_figures(_sentence("mianyang-2024.txt", "投诉量下降74.3%"))
    fall = _only(falls, "74.3%")
    assert (fall.value, fall.unit, fall.change) == (74.3, "%", "下降")
    assert "不文明执法投诉量" in fall.metric
    court = _only(extract_figures(_sentence("mianyang-2024.txt", "出庭应诉率达100%")), "100%")
    assert court.metric == "行政机关负责人出庭应诉率" and court.value == 100


def test_shijiazhuang_legal_aid_and_mediation_rate():
    aid = _only(extract_figures(_sentence("shijiazhuang-2024.txt", "法律援助案件1.26万余件")), "1.26万余件")
    assert (aid.value, aid.unit) == (12600, "件") and "法律援助案件" in aid.metric
    sentence = _sentence("shijiazhuang-2024.txt", "调解成功率达98%")
    rate = _only(extract_figures(sentence), "98%")
    assert rate.metric == "调解成功率" and rate.value == 98
    assert _only(extract_figures(sentence), "5万余件").value == 50000


def test_phone_numbers_and_named_reforms_are_not_figures():
    figures = extract_figures(_sentence("mianyang-2024.txt", "12345政务服务便民热线"))
    assert all("12345" not in f.text for f in figures)
    assert extract_figures(_sentence("houma-2023.txt", "一件事一次办")) == []


def test_offsets_point_at_the_figure_in_the_text():
    text = _sentence("taicang-2024.txt", "新收行政復議申請325件")
    for figure in extract_figures(text):
        assert parse_number(text[figure.start:figure.end]) == (figure.value, figure.unit)


# --- storage beside the chunks --------------------------------------------------------------

def test_every_report_has_its_figures_stored_with_region_and_year(bundled_index):
    for report in bundled_index.reports():
        pairs = bundled_index.figures(report)
        assert len(pairs) > 20, report.region
        assert {meta["region"] for _, meta in pairs} == {report.region}
        assert {meta["year"] for _, meta in pairs} == {report.year}
        chunk_ids = {meta["chunk_id"] for _, meta in pairs}
        got = bundled_index.collection.get(ids=list(chunk_ids), include=["documents"])
        assert len(got["ids"]) == len(chunk_ids)  # every figure points at a stored chunk
        texts = dict(zip(got["ids"], got["documents"]))
        for figure, meta in pairs[:10]:
            assert parse_number(texts[meta["chunk_id"]][figure.start:figure.end]) == (figure.value, figure.unit)


def test_figures_follow_their_report_through_update_remove_and_backfill(settings, real_embeddings, tmp_path):
    from conftest import copy_reports
    from rag.ingest.pipeline import Ingestor
    from rag.index.store import ReportIndex

    index = ReportIndex(settings, real_embeddings)
    folder = copy_reports(tmp_path / "reports", ["houma-2023.txt"])
    Ingestor(index, progress=False).run([folder])
    report = index.reports()[0]
    count = len(index.figures(report))
    assert count > 20

    index.update_report(report.doc_id, region="曲沃县", year=2022)
    assert {(m["region"], m["year"]) for _, m in index.figures(index.report(report.doc_id))} == {("曲沃县", 2022)}

    # An index written before figures existed (or by an older extractor) gets them back on ingest.
    index.figures_collection.delete(where={"doc_id": report.doc_id})
    Ingestor(index, progress=False).run([folder])
    assert len(index.figures(index.report(report.doc_id))) == count

    index.remove_report(report.doc_id)
    assert index.figures_collection.count() == 0
