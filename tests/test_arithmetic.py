"""Computation by code over cited figures (rag.answer.arithmetic): each operation, the operands
it picks, and the refusals to compute; the real answerer over the bundled index beside them."""

from __future__ import annotations

import pytest

from rag.answer.arithmetic import Computation
from rag.retrieve.query import QueryAnalyzer
from rag.text.arithmetic import asked_operation
from rag.types import AnswerResult, ReportRecord

RECORDS = [ReportRecord(doc_id=r, version="v", source=f"{r}.txt", content_sha="s", region=region, year=2024)
           for r, region in (("ty", "太原市"), ("tc", "太仓市"), ("my", "绵阳市"))]


def _computed(question: str, answer: str) -> AnswerResult:
    analysis = QueryAnalyzer(RECORDS).run(question)
    result = AnswerResult(question=question, answer=answer, refused=False, citations=[], contexts=[], mode="extractive")
    return Computation(analysis).run(result)


def _line(result: AnswerResult) -> str:
    return result.answer.splitlines()[-1]


@pytest.mark.parametrize("question, operation", [
    ("太原市和绵阳市新收行政复议案件合计多少件？", "sum"),
    ("部门联合抽查计划占多大比例？", "share"),
    ("胜诉率是多少？", "rate"),
    ("平均每个人民调解组织调解了多少件纠纷？", "average"),
    ("办理件数比市场主体数多多少？", "difference"),
    ("新收行政复议案件超过1000件了吗？", "threshold"),
    ("绵阳是侯马的多少倍？", "ratio"),
    ("新收行政复议案件多少件？", None),
    ("根据同比增幅推算上一年新收行政复议案件多少件？", "infer"),
    ("任务完成率为142.3%，据此推算任务目标大约是多少人次？", "infer"),
    ("roughly how many cases did it receive the year before?", "infer"),
])
def test_the_operation_a_question_asks(question, operation):
    assert asked_operation(question)[0] == operation


def test_a_sum_of_the_parts_the_question_names():
    r = _computed("太原市2024年办理的市人大代表建议和市政协提案合计多少件？",
                  "办理市人大代表建议382件、市政协提案575件,办复率100%。[1]")
    assert _line(r) == "计算：382件[1] + 575件[1] = 957件" and r.notes[-1].code == "computed"


def test_a_rate_is_its_stems_figure_over_the_whole_before_it():
    r = _computed("按已办结的行政诉讼案件计算，太原市政府2024年的胜诉率是多少？",
                  "市政府全年共收已办结行政诉讼案件235件,胜诉206件。[1]")
    assert _line(r) == "计算：206件[1] ÷ 235件[1] = 87.7%"


def test_a_share_of_a_named_part():
    r = _computed("太仓市2024年新收行政复议申请中，依法办结的比例是多少？",
                  "2024年新收行政復議申請325件,依法辦結272件,制發行政復議建議書9份。[1]")
    assert _line(r) == "计算：272件[1] ÷ 325件[1] = 83.7%"


def test_an_average_per_unit():
    r = _computed("太原市2024年平均每个人民调解组织调解了多少件纠纷？",
                  "全市1638个人民调解组织,10924名人民调解员全年调解纠纷15223件,调解成功15184件。[1]")
    assert _line(r) == "计算：15223件[1] ÷ 1638个[1] = 9.29件"


def test_an_average_asked_with_ji_is_computed_and_asks_for_a_figure():
    # 几场 / 几条 ask the measure as 多少场 does; an average is a figure even without 多少, so it
    # is no section summary (立法建议 names the recommendations part).
    r = _computed("太仓市2024年重大行政决策项目平均每个项目开展了几场专家论证会？",
                  "市鎮兩級24個重大行政決策項目開展專家論證會、風險評估會等54場,實地走訪763次。[1]")
    assert _line(r) == "计算：54场[1] ÷ 24个[1] = 2.25场"
    analysis = QueryAnalyzer(RECORDS).run("绵阳市2024年平均每个立法联系点收到了几条立法建议？")
    assert analysis.operation == "average" and analysis.asks_figure
    r = _computed("绵阳市2024年平均每个立法联系点收到了几条立法建议？",
                  "建强16个立法联系点,全年共收到立法建议436条,采纳162条。[1]")
    assert _line(r) == "计算：436条[1] ÷ 16个[1] = 27.25条"


def test_an_inference_from_a_stated_count_and_its_rate():
    # The year before: the count over one plus its growth (a fall: one minus it), rounded, 约.
    before = _computed("根据太原市2024年新收行政复议案件数和同比增幅推算，上一年大约多少件？",
                       "全年新收行政复议案件1274件,同比增长204%。[1]")
    assert _line(before) == "计算：1274件[1] ÷ (1 + 204%[1]) = 约419件（上一年）"
    fall = _computed("按降幅推算，绵阳市上一年的投诉量约为多少件？", "不文明执法投诉量1000件,同比下降20%。[1]")
    assert _line(fall) == "计算：1000件[1] ÷ (1 − 20%[1]) = 约1250件（上一年）"
    # A target from a completion rate, a whole from its share: the count over the rate.
    target = _computed("侯马市2023年任务完成率为142.3%，据此推算任务目标大约是多少人次？",
                       "2023年,我市免费法律服务咨询量达3558人次,全年完成任务率达142.3%;[1]")
    assert _line(target) == "计算：3558人次[1] ÷ 142.3%[1] = 约2500人次"
    # The count the question states (26支) is the part, not the one nearest the share (60支).
    whole = _computed("绵阳市撤销执法队伍26支、精简30.2%，据此推算整合前大约有多少支？",
                      "撤销执法队伍26支,保留60支,精简队伍数量30.2%。[1]")
    assert _line(whole) == "计算：26支[1] ÷ 30.2%[1] = 约86支"
    # No growth stated: nothing is inferred, and the reason is noted.
    none = _computed("根据太仓市新收行政复议申请数和同比增幅推算上一年约多少件？", "2024年新收行政復議申請325件。[1]")
    assert "计算" not in none.answer and none.notes[-1].code == "not_computed"
    assert "growth" in none.notes[-1].params["reason"]


def test_a_share_asked_as_xiangdangyu_takes_the_part_first_and_tells_the_two_apart_by_their_own_words():
    # "A相当于B的百分之几": A is the part; 采纳 and 收到 tell the two apart (both say 立法建议).
    r = _computed("绵阳市2024年采纳的立法建议相当于收到的立法建议的百分之几？",
                  "建强16个立法联系点,全年共收到立法建议436条,采纳162条。[1]")
    assert _line(r) == "计算：162条[1] ÷ 436条[1] = 37.2%"
    two = _computed("太仓市新收行政复议申请数相当于太原市新收行政复议案件数的百分之几？",
                    "太仓市（2024年）：2024年新收行政復議申請325件,依法辦結272件。[1]\n"
                    "太原市（2024年）：全年新收行政复议案件1274件,同比增长204%。[2]")
    assert _line(two) == "计算：325件[1] ÷ 1274件[2] = 25.5%"
    analysis = QueryAnalyzer(RECORDS).run("太原市直接纠错的行政复议案件数相当于当年新收行政复议案件数的百分之几？")
    assert "相当于" not in analysis.terms and "当年" not in analysis.terms


def test_a_threshold_check_says_yes_or_no_with_the_figure():
    yes = _computed("太原市2024年新收行政复议案件超过1000件了吗？", "全年新收行政复议案件1274件,同比增长204%。[1]")
    assert _line(yes) == "计算：是，1274件[1]对比1000件"
    no = _computed("绵阳市2024年立法建议的采纳率超过一半了吗？", "全年共收到立法建议436条,采纳162条。[1]")
    assert _line(no) == "计算：162条[1] ÷ 436条[1] = 37.2%；否，37.2%，对比一半"


def test_nothing_is_computed_when_the_parts_cannot_be_told_apart_or_two_figures_are_asked():
    unclear = _computed("太原市2024年合计多少？", "全年新收行政复议案件1274件。[1]")
    assert "计算" not in unclear.answer and unclear.notes[-1].code == "not_computed"
    two = _computed("太原全市2024年一共调解了多少件纠纷，调解成功多少件？",
                    "全年调解纠纷15223件,调解成功15184件。[1]")
    assert "计算" not in two.answer and not two.notes


def test_the_units_must_agree_for_a_sum():
    r = _computed("太原市2024年的案件和资金合计多少？", "办理案件120件,投入资金300万元。[1]")
    assert "计算" not in r.answer and "units differ" in r.notes[-1]


@pytest.fixture(scope="module")
def answerer(bundled_index):
    from rag.answer.answerer import Answerer
    from rag.retrieve.hybrid import HybridRetriever

    return Answerer(HybridRetriever(index=bundled_index, k=8))


def test_computed_answers_on_the_real_index(answerer):
    across = answerer.run("太原市和绵阳市2024年新收行政复议案件合计多少件？", mode="extractive")
    assert "1274件[1] + 1472件[2] = 2746件" in across.answer or "1472件[1] + 1274件[2] = 2746件" in across.answer
    share = answerer.run("太仓市2024年新收行政复议申请中，依法办结的比例是多少？", mode="extractive")
    assert share.answer.splitlines()[-1].endswith("= 83.7%") and share.citations[0].region == "太仓市"
    before = answerer.run("按同比增幅倒推，绵阳市2024年报告中新收行政复议案件的上年基数约为多少件？", mode="extractive")
    assert before.answer.splitlines()[-1] == "计算：1472件[1] ÷ (1 + 146.57%[1]) = 约597件（上一年）"
    assert not before.refused and before.citations[0].region == "绵阳市"
    # Houma states the count but no growth: the stated count is not offered as the year before.
    nothing = answerer.run("据此推算侯马市2023年办理的法律援助案件上一年大约多少件？", mode="extractive")
    assert nothing.refused and nothing.answer.startswith("报告中未提及推算所需的数字")
    assert "150件" in nothing.answer and "计算" not in nothing.answer
    average = answerer.run("绵阳市2024年平均每个立法联系点收到了几条立法建议？", mode="extractive")
    assert average.answer.splitlines()[-1] == "计算：436条[1] ÷ 16个[1] = 27.25条"


def test_a_ranking_lists_the_rows_in_order():
    from rag.answer.arithmetic import Operand
    from rag.text.figures import Figure

    analysis = QueryAnalyzer(RECORDS).run("把太原、绵阳、太仓三市2024年新收行政复议案件数量从多到少排个序。")
    assert analysis.operation == "rank" and "排个序" not in analysis.topic
    rows = [Operand(figure=Figure(metric="新收", value=v, unit="件", text=f"{v}件"), n=n, line=n)
            for n, v in ((1, 1274), (2, 1472), (3, 325))]
    order = Computation(analysis).run_rows(rows, labels=["太原市", "绵阳市", "太仓市"])
    assert order == "绵阳市 1472件[2] > 太原市 1274件[1] > 太仓市 325件[3]"
    up = QueryAnalyzer(RECORDS).run("太原、绵阳、太仓新收行政复议案件从少到多怎么排？")
    assert Computation(up).run_rows(rows, labels=["太原市", "绵阳市", "太仓市"]).startswith("太仓市 325件[3] < ")
