"""Grounding checks and follow-up rewriting, on hand-made text (no model, no index)."""

import pytest

from rag.retrieve.conversation import FollowUpRewriter
from rag.answer.grounding import attribute, check_grounding, shares_a_figure
from rag.text.figures import stated_figures as figures
from rag.index.store import ReportRecord
from rag.retrieve.query import QueryAnalyzer

TAIYUAN = "市政府行政复议局全年新收行政复议案件1274件,同比增长204%。"
SHIJIAZHUANG = "全市共受理申请类、通知类法律援助案件1.26万余件。"
TAICANG = "2024年新收行政復議申請325件,依法辦結272件。"


def test_figures_are_read_as_values_and_years_skipped():
    got = [(f.text, f.value, f.percent) for f in figures("2024年受理1.26万余件，增长204%，共1,274件[2]，二〇二三年")]
    assert got == [("1.26万", 12600.0, False), ("204%", 204.0, True), ("1,274", 1274.0, False)]


def test_grounded_answer_passes_unchanged():
    answer = "太原市新收行政复议案件1274件，同比增长204%[1]。石家庄约12600件[2]。"
    report = check_grounding(answer, {1: TAIYUAN, 2: SHIJIAZHUANG})
    assert report.grounded and report.answer == answer and report.removed == []


def test_a_figure_from_the_wrong_passage_or_nowhere_is_removed():
    answer = "太原市新收1274件[1]。太仓市新收1274件[2]。绵阳市新收500件[1]。"
    report = check_grounding(answer, {1: TAIYUAN, 2: TAICANG})
    assert not report.grounded
    assert report.answer == "太原市新收1274件[1]。"
    assert report.ungrounded == ["1274", "500"]


def test_a_percent_is_not_grounded_by_a_count():
    assert not check_grounding("增长1274%[1]。", {1: TAIYUAN}).grounded


def test_english_sentences_and_list_numbers():
    answer = "1. Taiyuan received 1,274 new cases in 2024 [1]. It grew 305% [1].\n2. Done."
    report = check_grounding(answer, {1: TAIYUAN})
    assert report.removed == ["It grew 305% [1]."]
    assert report.answer.startswith("1. Taiyuan received 1,274")


def test_attribution_cites_the_passage_holding_the_figures():
    passages = [TAIYUAN, "绵阳全年新收行政复议案件1472件"]
    assert attribute("太原：1274件\n绵阳：1472件\n\n绵阳多。", passages) == "太原：1274件[1]\n绵阳：1472件[2]\n\n绵阳多。"
    assert attribute("Mianyang handled 1472 cases. Taiyuan grew 204%.", passages) == \
        "Mianyang handled 1472 cases[2]. Taiyuan grew 204%[1]."
    assert attribute("共计999件。", passages) == "共计999件。"  # nothing holds 999: left uncited
    assert attribute("已有[2]。", passages) == "已有[2]。"


def test_shares_a_figure():
    assert shares_a_figure("约12600件", SHIJIAZHUANG)
    assert not shares_a_figure("137件", TAIYUAN)


@pytest.fixture(scope="module")
def rewriter():
    records = [ReportRecord(doc_id=r, version="v", source="s", content_sha="c", region=r, year=y, province=p)
               for r, y, p in [("太原市", 2024, "山西省"), ("侯马市", 2023, "山西省"), ("太仓市", 2024, "江苏省"),
                               ("绵阳市", 2024, "四川省"), ("石家庄市", 2024, "河北省")]]
    return FollowUpRewriter(QueryAnalyzer(records))


FIRST = "太原市2024年新收行政复议案件多少件？"


@pytest.mark.parametrize("follow_up,expected", [
    ("那绵阳呢？", "绵阳市2024年新收行政复议案件多少件?"),
    ("绵阳和石家庄呢？", "绵阳市和石家庄市2024年新收行政复议案件多少件?"),
    ("太倉呢", "太仓市2024年新收行政复议案件多少件?"),
    ("What about Mianyang?", "绵阳市2024年新收行政复议案件多少件?"),
    ("2023年呢？", "太原市2023年新收行政复议案件多少件?"),
    ("侯马2023年呢？", "侯马市2023年新收行政复议案件多少件?"),
    ("那出庭应诉率呢？", "太原市2024年出庭应诉率？"),
    ("石家庄市法律援助案件多少件？", "石家庄市法律援助案件多少件？"),  # standalone already
    ("各地行政机关负责人出庭应诉率是多少？", "各地行政机关负责人出庭应诉率是多少？"),  # every place: nothing inherited
])
def test_follow_ups_become_standalone(rewriter, follow_up, expected):
    assert rewriter.run(follow_up, [FIRST]) == expected


def test_several_places_are_replaced_together(rewriter):
    assert rewriter.run("那太仓呢？", ["太原和绵阳2024年新收行政复议案件各多少？"]) == "太仓市2024年新收行政复议案件各多少?"


def test_without_history_the_question_is_unchanged(rewriter):
    assert rewriter.run("那绵阳呢？", []) == "那绵阳呢？"


def test_a_sentence_naming_a_place_must_cite_that_place():
    names = {"太仓": "太仓市", "太仓市": "太仓市", "石家庄": "石家庄市", "石家庄市": "石家庄市"}
    texts = {1: "全市各级调解组织共调解矛盾纠纷5万余件", 2: "全市各類調解組織調解矛盾糾紛2萬余件"}
    regions = {1: "石家庄市", 2: "太仓市"}
    report = check_grounding("太仓：5万余件[1]\n石家庄：5万余件[1]\n", texts, regions, names)
    assert report.answer == "石家庄：5万余件[1]" and report.ungrounded == ["太仓市"]
    assert check_grounding("太仓：2万余件[2]\n石家庄：5万余件[1]", texts, regions, names).grounded


def test_dates_are_not_figures():
    assert figures("截至12月31日，共有869家企业")[0].value == 869.0
    assert len(figures("截至12月31日，共有869家企业")) == 1


def test_a_place_the_passage_does_not_name_is_not_grounded():
    names = {"侯马": "侯马市", "侯马市": "侯马市", "石家庄": "石家庄市", "石家庄市": "石家庄市"}
    texts = {1: "全年共办理各类法律援助案件150件", 2: "全市共受理申请类、通知类法律援助案件1.26万余件"}
    regions = {1: "侯马市", 2: "石家庄市"}
    answer = "有以下城市：\n1. 海南省：共受理法律援助案件150件[1]。\n2. 石家庄市：共受理1.26万余件[2]。\n3. 山西省侯马市150件[1]。"
    report = check_grounding(answer, texts, regions, names)
    assert report.removed == ["1. 海南省：共受理法律援助案件150件[1]。"] and report.ungrounded == ["海南省"]
    assert "山西省侯马市150件[1]" in report.answer  # the cited place's own province is fine
