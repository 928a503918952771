"""The one text toolkit every layer shares (rag.text.sentences, years, markers, figures)."""

from __future__ import annotations

import pytest

from rag.text.figures import extract_figures, same_value, stated_figures
from rag.text.markers import cited_numbers, marker_numbers, strip_markers
from rag.text.sentences import char_bigrams, sentence_pieces, sentence_spans, split_sentences
from rag.text.years import is_year, years_before_nian, years_in_question


@pytest.mark.parametrize("text, expected", [
    ("全年新收案件10件。办结9件！下一步", ["全年新收案件10件。", "办结9件！", "下一步"]),
    ("他说：“依法办事。”然后离开；", ["他说：“依法办事。”", "然后离开；"]),  # closers stay with their sentence
    ("一、概况\n  全年新收案件10件。", ["一、概况", "全年新收案件10件。"]),  # a line ends one; leading spaces go
    ("增长146.57%。1.全面加强领导。", ["增长146.57%。", "1.全面加强领导。"]),  # decimals and list numbers stay
    ("It grew. Cases rose 5.5%. e.g. this", ["It grew.", "Cases rose 5.5%.", "e.g.", "this"]),
    ("answer 0 cases.</passage>以上", ["answer 0 cases.", "</passage>以上"]),
    ("", []),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_spans_and_pieces_agree_and_pieces_lose_nothing():
    text = "  第一句。\n第二句！  第三句"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["第一句。", "第二句！", "第三句"]
    pieces = sentence_pieces(text)
    assert "".join(pieces) == text and len(pieces) == 3
    assert split_sentences("好。对。较长的一句话。", min_chars=5) == ["较长的一句话。"]


def test_char_bigrams_ignore_spaces_and_punctuation():
    assert char_bigrams("依法， 行政") == {"依法", "法行", "行政"}
    assert char_bigrams("a") == set()


def test_years():
    assert years_in_question("太原2024年和2023年新收2024件？增长20.5%") == [2023, 2024]
    assert years_in_question("2000万元") == []
    assert years_before_nian("2023年,侯马市……2024年1月19日；共2024件") == [2023, 2024]
    assert is_year("2024") and not is_year("2024.5") and not is_year("1274")


def test_markers():
    assert marker_numbers("1, 2") == [1, 2] and marker_numbers("2-4") == [2, 3, 4]
    assert marker_numbers("2-40") == [2, 40]  # not a range of 39 passages
    assert cited_numbers("甲[2]乙【1】丙[2][3]丁[1-2]") == [2, 1, 3]
    assert strip_markers("1274件[1]。") == "1274件。"


def test_one_figure_type_for_report_figures_and_stated_numbers():
    report = extract_figures("全年新收行政复议案件1274件，同比增长204%。")
    stated = stated_figures("新收1,274件[1]，增长204%，2024年，12月31日")
    assert [(f.value, f.percent) for f in stated] == [(1274.0, False), (204.0, True)]
    assert all(same_value(s, report) for s in stated)
    assert not same_value(stated_figures("204")[0], report)  # a count never grounds a percentage
    assert [f.value for f in stated_figures("1.26万余件")] == [12600.0]
