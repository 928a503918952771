"""Comparison tables: conclusions computed from values, thresholds, and answers over the real index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from rag.answer.compare import ComparisonTable, Condition, TableRow, conclude, parse_condition


def _row(region, year, figure=None, value=None, unit=None, citation=None, qualifiers=""):
    return TableRow(region=region, year=year, doc_id=region, found=value is not None, figure=figure, value=value,
                    unit=unit, citation=citation, qualifiers=qualifiers)


# --- conclusions from hand-made tables ----------------------------------------------------------

def test_two_places_difference_and_ratio():
    table = ComparisonTable("新收行政复议案件", [_row("太原市", 2024, "1274件", 1274, "件", 1),
                                                 _row("绵阳市", 2024, "1472件", 1472, "件", 2)])
    text = conclude(table)
    assert text.startswith("绵阳市（2024年）多于太原市（2024年）")
    assert "1472件[2] 对 1274件[1]" in text and "多198件" in text and "1.16倍" in text
    assert "年份不同" not in text


def test_rates_differ_in_percentage_points_and_mixed_years_are_flagged():
    table = ComparisonTable("调解成功率", [_row("侯马市", 2023, "100%", 100, "%", 1),
                                           _row("石家庄市", 2024, "98%", 98, "%", 2)])
    text = conclude(table)
    assert "侯马市（2023年）高于石家庄市（2024年）" in text and "高2个百分点" in text
    assert "倍" not in text  # ratios of rates mislead
    assert "年份不同（2023年、2024年）" in text


def test_rounded_figures_give_an_approximate_difference():
    table = ComparisonTable("法律援助案件", [_row("绵阳市", 2024, "5250件", 5250, "件", 1),
                                             _row("石家庄市", 2024, "1.26万余件", 12600, "件", 2, "余")])
    assert "约多7350件" in conclude(table)


def test_three_places_largest_smallest_and_missing():
    table = ComparisonTable("法律援助案件", [_row("侯马市", 2023, "150件", 150, "件", 1),
                                             _row("太原市", 2024),
                                             _row("石家庄市", 2024, "1.26万余件", 12600, "件", 2, "余"),
                                             _row("绵阳市", 2024, "5250件", 5250, "件", 3)], asks_which=True)
    text = conclude(table)
    assert "给出法律援助案件数字的：侯马市（2023年）、石家庄市（2024年）、绵阳市（2024年）" in text
    assert "石家庄市（2024年）最多（1.26万余件[2]）" in text and "侯马市（2023年）最少（150件[1]）" in text
    assert "太原市（2024年）的报告中未提及" in text


def test_equal_values_and_different_units():
    same = ComparisonTable("出庭应诉率", [_row("太仓市", 2024, "100%", 100, "%", 1),
                                          _row("绵阳市", 2024, "100%", 100, "%", 2)])
    assert "各地相同，均为100%[1]" in conclude(same)
    units = ComparisonTable("行政执法案卷", [_row("太原市", 2024, "420余本", 420, "本", 1),
                                             _row("太仓市", 2024, "239件", 239, "件", 2)])
    assert "单位不同" in conclude(units) and "多于" not in conclude(units)


def test_english_conclusion():
    table = ComparisonTable("新收行政复议案件", [_row("太原市", 2024, "1274件", 1274, "件", 1),
                                                 _row("绵阳市", 2024, "1472件", 1472, "件", 2)])
    assert "is higher than" in conclude(table, "en") and "198件 more" in conclude(table, "en")


@pytest.mark.parametrize("question, op, value, unit", [
    ("哪些地方出庭应诉率达到100%", ">=", 100, "%"),
    ("哪些城市新收行政复议案件超过1000件", ">", 1000, "件"),
    ("哪些城市调解成功率低于99%", "<", 99, "%"),
    ("哪些城市法律援助案件在5000件以上", ">=", 5000, "件"),
    ("which cities had more than 1000件", ">", 1000, "件"),
])
def test_thresholds_in_questions(question, op, value, unit):
    condition = parse_condition(question)
    assert (condition.op, condition.value, condition.unit) == (op, value, unit)


def test_no_threshold_in_plain_questions():
    assert parse_condition("太原和绵阳2024年新收行政复议案件各多少") is None


def test_threshold_conclusion():
    condition = Condition(">=", 100, "%", "达到100%")
    rows = [_row("太仓市", 2024, "100%", 100, "%", 1), _row("侯马市", 2023, "96%", 96, "%", 2), _row("太原市", 2024)]
    rows[0].meets, rows[1].meets = True, False
    text = conclude(ComparisonTable("出庭应诉率", rows, condition=condition, asks_which=True))
    assert "出庭应诉率达到100%的：太仓市（2024年）" in text
    assert "未达到的：侯马市（2023年）96%[2]" in text and "太原市（2024年）的报告中未提及" in text


# --- answers over the real bundled index ----------------------------------------------------

@pytest.fixture(scope="module")
def answerer(bundled_index):
    from rag.answer.answerer import Answerer
    from rag.retrieve.hybrid import HybridRetriever

    return Answerer(HybridRetriever(index=bundled_index, k=8))


def _cited_text(result, n):
    return next(c.text for c in result.citations if c.n == n)


def test_two_named_places_get_a_table_with_cited_figures(answerer):
    result = answerer.run("太原和绵阳2024年新收行政复议案件各多少？哪个多？", mode="extractive")
    rows = {r["region"]: r for r in result.table["rows"]}
    assert rows["太原市"]["value"] == 1274 and rows["绵阳市"]["value"] == 1472
    for row in rows.values():
        assert row["figure"] in _cited_text(result, row["citation"])  # each figure is in its cited passage
    assert "绵阳市（2024年）多于太原市（2024年）" in result.answer and "多198件" in result.answer
    assert result.table["conclusion"] in result.answer
    assert json.loads(json.dumps(result.to_dict(), ensure_ascii=False))["table"]["unit"] == "件"


def test_mixed_years_and_traditional_text(answerer):
    result = answerer.run("太倉2024年與侯馬2023年的行政復議案件各有多少件？", mode="extractive")
    rows = {r["region"]: r for r in result.table["rows"]}
    assert (rows["太仓市"]["year"], rows["太仓市"]["value"]) == (2024, 325)
    assert (rows["侯马市"]["year"], rows["侯马市"]["value"]) == (2023, 68)
    assert "年份不同" in result.answer and "太仓市（2024年）" in result.answer and "侯马市（2023年）" in result.answer


def test_all_places_with_a_missing_figure_say_not_mentioned(answerer):
    result = answerer.run("各地法律援助案件数量对比", mode="extractive")
    rows = {r["region"]: r for r in result.table["rows"]}
    assert set(rows) == {"侯马市", "太仓市", "太原市", "石家庄市", "绵阳市"}  # every report scanned
    assert {r: rows[r]["value"] for r in ("侯马市", "石家庄市", "绵阳市")} == {"侯马市": 150, "石家庄市": 12600,
                                                                            "绵阳市": 5250}
    assert not rows["太仓市"]["found"] and not rows["太原市"]["found"]
    assert "太仓市（2024年）：报告中未提及" in result.answer


def test_which_places_meet_a_threshold(answerer):
    result = answerer.run("哪些地方报告行政机关负责人出庭应诉率达到100%？", mode="extractive")
    meets = {r["region"] for r in result.table["rows"] if r["meets"]}
    assert meets == {"太仓市", "绵阳市", "石家庄市"}
    assert result.table["condition"] == ">= 100%"


def test_a_single_place_question_has_no_table(answerer):
    result = answerer.run("太原市2024年新收行政复议案件多少件？", mode="extractive")
    assert result.table is None and "1274" in result.answer


def test_llm_mode_keeps_the_computed_table_and_never_asks_the_model(bundled_index):
    from langchain_core.language_models import GenericFakeChatModel

    from rag.answer.answerer import Answerer
    from rag.retrieve.hybrid import HybridRetriever

    # A model that would state wrong numbers: the table answer must not use it.
    model = GenericFakeChatModel(messages=iter(["太原市1300件[1]，绵阳市1400件[2]。"] * 5))
    result = Answerer(HybridRetriever(index=bundled_index), chat_model=model).run(
        "太原和绵阳2024年新收行政复议案件各多少？", mode="llm")
    assert result.table is not None and "1300" not in result.answer and "1472" in result.answer
    assert result.mode == "llm" and any("computed" in n for n in result.notes)


def test_chart_png_has_chinese_glyphs(answerer, tmp_path):
    from rag.answer.charts import ChartError, bar_chart

    result = answerer.run("各地法律援助案件数量对比", mode="extractive")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = bar_chart(result.table, tmp_path / "aid.png")
    assert not [w for w in caught if "missing from" in str(w.message)]  # every Chinese label has a glyph
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with pytest.raises(ChartError, match="different units"):
        bar_chart({"rows": [{"found": True, "value": 1, "unit": "件"}, {"found": True, "value": 2, "unit": "本"}]},
                  tmp_path / "x.png")


def test_rag_ask_json_table_and_chart_from_the_command_line(bundled_index, tmp_path):
    env = {**os.environ, "RAG_INDEX_DIR": bundled_index.settings.index_dir, "RAG_LLM": "none"}
    chart = tmp_path / "chart.png"
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "侯马市2023年和石家庄市2024年的调解成功率分别是多少？",
                           "--json", "--chart", str(chart)], capture_output=True, text=True, env=env, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    table = json.loads(proc.stdout)["table"]
    assert [(r["region"], r["value"], r["unit"]) for r in table["rows"]] == [("侯马市", 100, "%"), ("石家庄市", 98, "%")]
    assert chart.is_file() and chart.stat().st_size > 5000


def test_llm_answer_that_leaves_out_a_place_falls_back_to_every_place(bundled_index):
    from langchain_core.language_models import GenericFakeChatModel

    from rag.answer.answerer import Answerer
    from rag.retrieve.hybrid import HybridRetriever

    question = "太原、侯马、石家庄的人民调解成功情况分别如何？"  # words, not one figure: no table
    answerer = Answerer(HybridRetriever(index=bundled_index), chat_model=GenericFakeChatModel(
        messages=iter(["太原市全年调解纠纷15223件，调解成功15184件[1]。"] * 3)))
    result = answerer.run(question, mode="llm")
    assert result.table is None
    assert {c.region for c in result.citations} == {"太原市", "侯马市", "石家庄市"}
    assert any("left out" in n for n in result.notes)


def test_llm_answer_that_drops_the_figures_asked_about_falls_back(bundled_index):
    from langchain_core.language_models import GenericFakeChatModel

    from rag.answer.answerer import Answerer
    from rag.retrieve.hybrid import HybridRetriever

    # Every place cited and every figure true, but the success rates the question is about are gone.
    model = GenericFakeChatModel(messages=iter(["侯马市：943件[1]\n石家庄市：5万余件[2]"] * 3))
    result = Answerer(HybridRetriever(index=bundled_index), chat_model=model).run(
        "侯马和石家庄的人民调解成功情况分别如何？", mode="llm")
    assert "100%" in result.answer and "98%" in result.answer
    assert any("left out figures" in n for n in result.notes)


def test_rows_worded_differently_are_aligned_by_the_figure_phrases_vectors(bundled_index):
    """The figure phrases embedded at ingest fill a row whose report words the metric otherwise
    (新收行政复议申请 for 新收行政复议案件), and leave one alone that only sounds alike."""
    from rag.answer.compare import ComparisonBuilder, TableRow

    reports = {r.region: r for r in bundled_index.reports()}
    builder = ComparisonBuilder(bundled_index, keywords=None)  # _align weighs no terms

    def aligned(region: str, metric: str) -> TableRow:
        row = TableRow(region=region, year=2024, doc_id=reports[region].doc_id)
        found = TableRow(region="x", year=2024, doc_id="x", found=True, score=1.0, metric=metric)
        builder._align([found, row], [reports[region], reports[region]], metric, False, False, False, None)
        return row

    taicang = aligned("太仓市", "新收行政复议案件")
    assert taicang.found and taicang.aligned and taicang.figure == "325件" and "申請" in taicang.clause
    # 查办各类案件 sounds like 法律援助案件 (0.95) but is not it: Taiyuan gives no legal-aid figure.
    assert not aligned("太原市", "法律援助案件").found


def test_a_compound_term_said_with_a_word_between_its_parts_still_matches_a_metric():
    from rag.answer.compare import ComparisonBuilder
    from rag.index.keywords import question_terms
    from rag.text.figures import extract_figures

    terms = question_terms("石家庄、太仓、太原、侯马四地报告的调解组织调解纠纷数量")
    assert "四地" not in terms and "调解纠纷" in terms  # how many places is no term
    assert "两市" not in question_terms("太原、太仓两市新收行政复议案件")
    weights = {t: 1.0 for t in question_terms("调解组织调解纠纷数量")}
    total = sum(weights.values())
    figure = extract_figures("全市各级调解组织共调解矛盾纠纷5万余件,调解成功率达98%。")[0]
    # 调解纠纷 is said as 调解…矛盾纠纷: its parts count it as matched.
    assert ComparisonBuilder._score(figure, weights, total, False, False, False) == 1.0
    other = extract_figures("开展17场“人民调解基层行”巡回宣传。")[0]
    assert ComparisonBuilder._score(other, weights, total, False, False, False) < 0.5
