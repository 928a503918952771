"""Query analysis, keyword search and the English glossary, on hand-made report records.

No embedding model and no Chroma: the analyzer only needs the reports' regions and years.
"""

from __future__ import annotations

import pytest

from rag.text.glossary import english_to_chinese
from rag.index.store import ReportRecord
from rag.index.keywords import KeywordIndex, question_terms, tokenize
from rag.retrieve.query import QueryAnalysis, QueryAnalyzer

REPORTS = [  # (file stem, region, year), as the bundled reports are tagged
    ("taiyuan-2024", "太原市", 2024),
    ("houma-2023", "侯马市", 2023),
    ("taicang-2024", "太仓市", 2024),
    ("mianyang-2024", "绵阳市", 2024),
    ("shijiazhuang-2024", "石家庄市", 2024),
]


def make_records() -> list[ReportRecord]:
    return [ReportRecord(doc_id=stem, version=f"v-{stem}", source=f"data/reports/{stem}.txt",
                         content_sha=f"sha-{stem}", region=region, year=year)
            for stem, region, year in REPORTS]


@pytest.fixture(scope="module")
def analyzer() -> QueryAnalyzer:
    return QueryAnalyzer(make_records())


# --- places ------------------------------------------------------------------------------


@pytest.mark.parametrize("question", [
    "太原2024年新收行政复议案件多少件？",
    "太原市2024年新收行政复议案件多少件？",
    "太原市政府行政复议局2024年新收了多少件案件？",
    "How many administrative reconsideration cases did Taiyuan receive in 2024?",
])
def test_aliases_of_taiyuan(analyzer, question):
    a = analyzer.run(question)
    assert a.regions == ["太原市"]
    assert a.scope == "one"
    assert a.missing_regions == []
    assert a.refusal_reason is None


def test_traditional_spelling_resolves_to_simplified_region(analyzer):
    a = analyzer.run("太倉市新收行政復議申請多少件？")
    assert a.regions == ["太仓市"]
    assert a.normalised == "太仓市新收行政复议申请多少件?"
    assert a.scope == "one"


def test_short_traditional_name(analyzer):
    assert analyzer.run("太倉的法律援助").regions == ["太仓市"]


def test_longest_alias_wins_for_shijiazhuang(analyzer):
    a = analyzer.run("石家庄市行政复议")
    assert a.regions == ["石家庄市"]
    assert a.missing_regions == []


def test_several_places_in_order_of_mention(analyzer):
    a = analyzer.run("绵阳、太原和石家庄2024年审计项目各多少？")
    assert a.regions == ["绵阳市", "太原市", "石家庄市"]
    assert a.scope == "several"
    assert a.comparative is True
    assert a.asks_figure is True
    assert a.filter_years == [2024]


def test_several_places_in_english(analyzer):
    a = analyzer.run("Compare Taiyuan and Mianyang legal aid")
    assert a.regions == ["太原市", "绵阳市"]
    assert a.scope == "several"
    assert a.language == "en"


@pytest.mark.parametrize("question", [
    "各地新收行政复议案件多少件？",
    "哪些城市提到了枫桥经验？",
    "Which cities mention legal aid?",
])
def test_all_scope(analyzer, question):
    a = analyzer.run(question)
    assert a.scope == "all"
    assert a.regions == []
    assert a.refusal_reason is None


def test_no_place_is_scope_any_without_refusal(analyzer):
    a = analyzer.run("新收行政复议案件多少件？")
    assert a.scope == "any"
    assert a.regions == []
    assert a.missing_regions == []
    assert a.refusal_reason is None
    assert a.asks_figure is True
    assert a.comparative is False


# --- years -------------------------------------------------------------------------------


@pytest.mark.parametrize("question", [
    "太原市2024年新收行政复议案件多少件？",
    "二〇二四年太原市新收行政复议案件多少件？",
    "How many cases did Taiyuan receive in 2024?",
])
def test_years(analyzer, question):
    a = analyzer.run(question)
    assert a.years == [2024]
    assert a.filter_years == [2024]
    assert a.missing_years == []


def test_two_years_sorted(analyzer):
    a = analyzer.run("2024年和2023年各地行政复议案件")
    assert a.years == [2023, 2024]
    assert a.filter_years == [2023, 2024]
    assert a.scope == "all"


@pytest.mark.parametrize("question", [
    "哪些城市出庭应诉率达到100%？",
    "太原市办理案件2024件",
    "全市2024人参加培训",
    "新收案件20240件",
    "罚款2024.5万元",
])
def test_figures_are_not_years(analyzer, question):
    a = analyzer.run(question)
    assert a.years == []
    assert a.filter_years == []
    assert a.refusal_reason is None


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize("question, missing", [
    ("成都2024年行政复议案件多少件？", "成都市"),
    ("成都市2024年行政复议案件多少件？", "成都市"),
    ("北京市行政复议案件多少件？", "北京市"),
    ("How many cases did Beijing receive?", "北京市"),
])
def test_place_not_indexed_is_refused(analyzer, question, missing):
    a = analyzer.run(question)
    assert a.regions == []
    assert a.missing_regions == [missing]
    assert a.refusal_reason == "region"


def test_year_not_indexed_is_refused(analyzer):
    a = analyzer.run("太原市2023年行政复议案件多少件？")
    assert a.regions == ["太原市"]
    assert a.years == [2023]
    assert a.filter_years == []
    assert a.missing_years == [2023]
    assert a.refusal_reason == "year"


def test_year_of_another_report_is_not_enough(analyzer):
    # 侯马 has a 2023 report, so the year exists in the index, but not for 太原.
    a = analyzer.run("Taiyuan 2025")
    assert a.missing_years == [2025]
    assert a.refusal_reason == "year"


def test_year_without_place_checks_all_reports(analyzer):
    assert analyzer.run("2023年行政复议案件多少件？").refusal_reason is None
    a = analyzer.run("2022年行政复议案件多少件？")
    assert a.missing_years == [2022]
    assert a.refusal_reason == "year"


def test_place_without_report_for_the_year_moves_to_missing(analyzer):
    a = analyzer.run("侯马和太原2024年行政复议案件各多少？")
    assert a.regions == ["太原市"]
    assert a.missing_regions == ["侯马市"]
    assert a.filter_years == [2024]
    assert a.missing_years == []
    assert a.refusal_reason is None


def test_only_place_without_report_for_the_year(analyzer):
    a = analyzer.run("侯马市2024年行政复议案件多少件？")
    assert a.regions == ["侯马市"]
    assert a.filter_years == []
    assert a.refusal_reason == "year"


def test_indexed_and_missing_place_together_is_not_refused(analyzer):
    a = analyzer.run("太原和成都的法律援助案件")
    assert a.regions == ["太原市"]
    assert a.missing_regions == ["成都市"]
    assert a.refusal_reason is None


def test_refusal_reason_property_directly():
    assert QueryAnalysis(question="q", normalised="q", missing_regions=["成都市"]).refusal_reason == "region"
    assert QueryAnalysis(question="q", normalised="q", years=[2020]).refusal_reason == "year"
    assert QueryAnalysis(question="q", normalised="q", years=[2024], filter_years=[2024]).refusal_reason is None
    assert QueryAnalysis(question="q", normalised="q", regions=["太原市"],
                         missing_regions=["成都市"]).refusal_reason is None


def test_province_of_indexed_cities_is_not_refused():
    records = make_records()
    for r in records:
        r.province = {"太原市": "山西省", "侯马市": "山西省", "太仓市": "江苏省",
                      "绵阳市": "四川省", "石家庄市": "河北省"}[r.region]
    a = QueryAnalyzer(records).run("山西省各地新收行政复议案件多少件？")
    assert a.refusal_reason is None


# --- language and topic ------------------------------------------------------------------


@pytest.mark.parametrize("question, language", [
    ("How many legal aid cases did Mianyang handle in 2024?", "en"),
    ("Which cities mention legal aid?", "en"),
    ("绵阳市2024年办理法律援助案件多少件？", "zh"),
    ("太倉市新收行政復議申請多少件？", "zh"),
    ("绵阳市 legal aid 多少件", "zh"),
])
def test_language(analyzer, question, language):
    assert analyzer.run(question).language == language


def test_topic_drops_places_and_years(analyzer):
    a = analyzer.run("太原市2024年新收行政复议案件多少件？")
    assert "太原" not in a.topic
    assert "2024" not in a.topic
    assert a.topic.split() == ["年新收行政复议案件多少件?"]


def test_topic_drops_several_places(analyzer):
    a = analyzer.run("绵阳、太原和石家庄2024年审计项目各多少？")
    assert a.topic.split() == ["、", "和", "年审计项目各多少?"]


def test_topic_in_english(analyzer):
    a = analyzer.run("How many cases did Taiyuan receive in 2024?")
    assert a.topic.split() == ["how", "many", "cases", "did", "receive", "in", "?"]


def test_topic_keeps_figures_that_are_not_years(analyzer):
    a = analyzer.run("太原市2024年新收的1274件案件中胜诉多少件？")
    assert "1274" in a.topic and a.years == [2024]
    # A threshold asked about is the question's operation, not its topic.
    b = analyzer.run("太原市出庭应诉率达到100%了吗？")
    assert (b.operation, b.operation_text) == ("threshold", "达到100%了吗") and b.topic.split() == ["出庭应诉率", "?"]


def test_topic_drops_missing_places_too(analyzer):
    a = analyzer.run("成都市2024年行政复议案件多少件？")
    assert "成都" not in a.topic
    assert a.topic.split() == ["年行政复议案件多少件?"]


def test_describe_reports(analyzer):
    assert analyzer.describe_reports() == "侯马市2023年、太仓市2024年、太原市2024年、石家庄市2024年、绵阳市2024年"
    assert analyzer.describe_reports("en") == "侯马市 2023, 太仓市 2024, 太原市 2024, 石家庄市 2024, 绵阳市 2024"


def test_describe_reports_empty_and_unknown_year():
    assert QueryAnalyzer([]).describe_reports() == "无"
    assert QueryAnalyzer([]).describe_reports("en") == "none"
    record = ReportRecord(doc_id="x", version="v", source="x.txt", content_sha="s", region="太原市")
    assert QueryAnalyzer([record]).describe_reports() == "太原市（年份未知）"


def test_reports_without_region_are_ignored():
    records = make_records() + [ReportRecord(doc_id="n", version="v", source="n.txt", content_sha="s")]
    analyzer = QueryAnalyzer(records)
    assert len(analyzer.reports) == 5


# --- keywords ----------------------------------------------------------------------------


def test_tokenize_simplifies_traditional():
    assert tokenize("太倉市新收行政復議申請325件") == ["太仓", "太仓市", "新收", "行政", "复议", "行政复议",
                                                    "申请", "325", "件"]


def test_tokenize_drops_stopwords_unless_asked():
    assert tokenize("的案件") == ["案件"]
    assert tokenize("的案件", keep_stopwords=True) == ["的", "案件"]
    assert tokenize("，。！") == []


@pytest.mark.parametrize("question, expected", [
    ("2024年完成了几个审计项目？", ["2024", "完成", "审计", "项目"]),
    ("哪一部地方性法规于2024年施行？", ["地方性", "法规", "于", "2024", "施行"]),
    ("新收行政复议案件多少件", ["新收", "行政", "复议", "行政复议", "案件", "件"]),
    ("行政复议案件各是多少件", ["行政", "复议", "行政复议", "案件", "件"]),
    ("哪些城市的报告列出了审计项目数量", ["审计", "项目"]),
])
def test_question_terms(question, expected):
    terms = question_terms(question)
    assert terms == expected
    for word in ("哪一部", "一部", "几个", "多少", "各是", "哪些", "城市", "数量"):
        assert word not in terms


def test_question_terms_of_a_topic(analyzer):
    a = analyzer.run("太原市2024年新收行政复议案件多少件？")
    assert question_terms(a.topic) == ["新收", "行政", "复议", "行政复议", "案件", "件"]


def test_scope_words_are_not_terms(analyzer):
    terms = question_terms(analyzer.run("各地行政复议案件多少件？").topic)
    assert terms == ["行政", "复议", "行政复议", "案件", "件"]


TEXTS = {
    "a": "太原市新收行政复议案件1274件，同比增长204%",
    "b": "绵阳市办理法律援助案件3000件",
    "c": "行政诉讼案件235件，行政复议",
    "d": "全市开展普法宣传活动",
}
META = {"a": {"region": "太原市"}, "b": {"region": "绵阳市"}, "c": {"region": "太原市"}, "d": {"region": "绵阳市"}}


@pytest.fixture(scope="module")
def keywords() -> KeywordIndex:
    ids = list(TEXTS)
    return KeywordIndex(ids, [TEXTS[i] for i in ids], [META[i] for i in ids])


def test_search_ranks_exact_phrase_first(keywords):
    hits = keywords.search("新收行政复议案件")
    assert [h.id for h in hits] == ["a", "c", "b"]
    assert hits[0].score > hits[1].score > hits[2].score > 0


def test_search_with_tokens(keywords):
    assert [h.id for h in keywords.search(["新收", "复议"], k=1)] == ["a"]


def test_search_k(keywords):
    assert [h.id for h in keywords.search("新收行政复议案件", k=2)] == ["a", "c"]


def test_search_where(keywords):
    hits = keywords.search("案件", where=lambda m: m["region"] == "绵阳市")
    assert [h.id for h in hits] == ["b"]
    assert {h.id for h in keywords.search("新收行政复议案件", where=lambda m: m["region"] == "太原市")} == {"a", "c"}


def test_search_unknown_words(keywords):
    assert keywords.search("火星探测") == []
    assert keywords.search([]) == []
    assert list(keywords.scores("火星探测")) == [0.0, 0.0, 0.0, 0.0]


def test_search_traditional_query(keywords):
    assert keywords.search("新收行政復議", k=1)[0].id == "a"


def test_idf_rarer_is_higher(keywords):
    # 新收 in one chunk, 行政 in two, 案件 in three; 火星 in none.
    assert keywords.idf("新收") == pytest.approx(1.2039728, abs=1e-6)
    assert keywords.idf("行政") == pytest.approx(0.6931472, abs=1e-6)
    assert keywords.idf("案件") == pytest.approx(0.3566749, abs=1e-6)
    assert keywords.idf("新收") > keywords.idf("行政") > keywords.idf("案件") > 0
    assert keywords.idf("火星") == 0.0


def test_empty_keyword_index():
    kw = KeywordIndex([], [], [])
    assert len(kw) == 0
    assert kw.search("案件") == []
    assert list(kw.scores("案件")) == []


def test_idf_on_empty_keyword_index():
    assert KeywordIndex([], [], []).idf("案件") == 0.0


def test_keyword_index_lengths_must_match():
    with pytest.raises(ValueError, match="same length"):
        KeywordIndex(["a", "b"], ["案件"], [{}, {}])


# --- glossary ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("cases", "案件"),
    ("case", "案件"),
    ("legal aid", "法律援助"),
    ("How many legal aid cases did Mianyang handle?", "法律援助 案件"),
    ("administrative reconsideration cases", "行政复议 案件"),
    ("loss rate", "败诉率"),
    ("inspections", "检查 抽查"),
    ("letters and visits", "信访"),
    ("How many new cases were received in 2024, up 204%?", "新收 案件 新收 受理 2024 204%"),
    ("weather forecast", ""),
    # The genre's vocabulary beyond the core terms: services, mediation, review (plurals too).
    ("people's mediators", "人民调解员"),
    ("law firms and chambers of commerce", "商会 律师事务所"),
    ("the mayor's mailbox", "市长信箱"),
    ("fair competition reviews of policy measures", "公平竞争审查 政策措施"),
    ("notarizations", "公证"),
])
def test_english_to_chinese(text, expected):
    assert english_to_chinese(text) == expected


def test_longest_phrase_wins():
    # "administrative reconsideration" is taken whole; "reconsideration" alone would give 复议.
    assert english_to_chinese("administrative reconsideration") == "行政复议"
    assert english_to_chinese("administrative law enforcement") == "行政执法"
    assert english_to_chinese("legal aid and law enforcement") == "执法 法律援助"  # longer phrases first
    assert english_to_chinese("reconsideration") == "复议"
    assert english_to_chinese("legal aid") == "法律援助"
