"""Cited-sentence highlighting: the answer's text per [n], and the passage sentences it rests on."""

from rag.answer.highlight import cited_text, highlight_spans, sentence_spans

TAIYUAN = ("(六)依法有效化解社会矛盾纠纷\n坚持领导干部接访下访、包案解决信访事项,市、县两级领导干部全年共接访599次。"
           "全市1638个人民调解组织,10924名人民调解员全年调解纠纷15223件,调解成功15184件。"
           "行政复议化解行政争议“主渠道”作用日益彰显,市政府行政复议局全年新收行政复议案件1274件,同比增长204%。"
           "深入推进“枫桥式”司法所建设,全市累计创建“枫桥式”司法所38个。")
TAICANG = ("上線運行掌上“復議百科”,建立容缺受理機制,2024年新收行政復議申請325件,依法辦結272件。"
           "全市行政機關負責人出庭應訴率繼續保持100%。")


def _marked(passage, claims):
    return [passage[s:e] for s, e in highlight_spans(passage, claims)]


def test_each_marker_cites_the_text_since_the_previous_one():
    answer = ("太原市（2024年）：市政府行政复议局全年新收行政复议案件1274件[1]\n"
              "绵阳市（2024年）：全年新收行政复议案件1472件[2]\n"
              "结论：绵阳市多于太原市：1472件[2] 对 1274件[1]，多198件。")
    cited = cited_text(answer)
    assert cited[1][0] == "太原市(2024年):市政府行政复议局全年新收行政复议案件1274件"
    assert cited[2][0] == "绵阳市(2024年):全年新收行政复议案件1472件"
    assert "1472件" in cited[2][1] and cited[1][1].endswith("对 1274件")


def test_grouped_and_ranged_markers_cite_every_passage():
    cited = cited_text("两地均为100%[1][2]。三地相同[3-5]。合计[1,2]")
    assert cited[1] == cited[2] == ["两地均为100%", "合计"]
    assert cited[3] == cited[4] == cited[5] == ["三地相同"]


def test_an_extractive_sentence_is_marked_exactly():
    answer = "行政复议化解行政争议“主渠道”作用日益彰显,市政府行政复议局全年新收行政复议案件1274件,同比增长204%。[1]"
    assert _marked(TAIYUAN, cited_text(answer)[1]) == [
        "行政复议化解行政争议“主渠道”作用日益彰显,市政府行政复议局全年新收行政复议案件1274件,同比增长204%。"]


def test_a_paraphrase_marks_the_sentence_with_its_figure():
    # An LLM's wording: only the figure and a few terms are shared.
    assert _marked(TAIYUAN, ["太原市2024年共受理行政复议案件1274件"]) == [
        "行政复议化解行政争议“主渠道”作用日益彰显,市政府行政复议局全年新收行政复议案件1274件,同比增长204%。"]
    assert _marked(TAIYUAN, ["人民调解组织调解纠纷15223件", "复议案件1274件"]) == [
        "全市1638个人民调解组织,10924名人民调解员全年调解纠纷15223件,调解成功15184件。",
        "行政复议化解行政争议“主渠道”作用日益彰显,市政府行政复议局全年新收行政复议案件1274件,同比增长204%。"]


def test_traditional_passages_match_simplified_answers():
    assert _marked(TAICANG, ["太仓市行政机关负责人出庭应诉率保持100%"]) == ["全市行政機關負責人出庭應訴率繼續保持100%。"]


def test_unrelated_claims_mark_nothing():
    assert _marked(TAIYUAN, ["How many legal aid cases?"]) == []
    assert _marked(TAIYUAN, []) == []


def test_sentence_spans_cover_lines_and_sentences():
    text = "一、概况\n  全年新收案件10件。办结9件！\n下一步"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["一、概况", "全年新收案件10件。", "办结9件！", "下一步"]
