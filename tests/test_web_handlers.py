"""The app's handlers, renderers, state and page without a browser, a server or the LLM.

The services behind the page are small fakes (an index of one report, a retriever, an answerer
that streams a scripted answer); Gradio is imported but never served. The expected HTML below
was produced by the app before it was split into ``rag/web/`` modules: the templates must give
the same bytes.
"""

from __future__ import annotations

import copy
import pickle
import threading

import pytest
from langchain_core.documents import Document

from rag.config import Settings
from rag.ingest.uploads import UploadPolicy
from rag.types import AnswerResult, Citation, Passage, ReportRecord
from rag.web import handlers as handlers_module
from rag.web import render
from rag.web.handlers import ChatHandlers, LibraryHandlers, SearchHandler, UploadHandler
from rag.web.messages import EMPTY_INDEX
from rag.web.modes import ModeChoice
from rag.web.backend import Services
from rag.web.state import Conversation, Turn

PASSAGE = "一、概况。全年新收行政复议案件1274件。<其他>工作。"
ANSWER = "太原市全年新收行政复议案件1274件。[1] 另见[2]"
TABLE = {"metric": "新收行政复议案件", "unit": "件", "conclusion": "绵阳市最多。", "rows": [
    {"region": "太原市", "year": 2024, "found": True, "figure": "1274件", "value": 1274.0, "unit": "件",
     "citation": 1, "sentence": "新收行政复议案件1274件"},
    {"region": "绵阳市", "year": 2024, "found": True, "figure": "1472件", "value": 1472.0, "unit": "件",
     "citation": 2, "sentence": "新收行政复议案件1472件"}]}


def citations() -> list[Citation]:
    return [Citation(n=1, doc_id="taiyuan-2024", region="太原市", year=2024, title='太原市2024年"法治"报告',
                     section="（六）化解 & 调解", text=PASSAGE, source="taiyuan.txt", chunk_id="taiyuan-2024:v1:00005"),
            Citation(n=2, doc_id="", region=None, year=None, title=None, section="", text="无出处'段落'。",
                     source="x.pdf", page=3, chunk_id="x")]


def result(answer: str = ANSWER, table: dict | None = None, **fields) -> AnswerResult:
    values = {"question": "太原市2024年新收行政复议案件多少件？", "answer": answer, "refused": False,
              "citations": citations(), "contexts": [], "mode": "extractive", "latency_ms": 1234.0, "table": table}
    return AnswerResult(**{**values, **fields})


# --- fakes of the services behind the page -----------------------------------------------------

REPORT_TEXT = '标题\n\n第一段 <甲> & "乙"。新收案件1274件。\n第二段。'


class FakeIndex:
    def __init__(self, records: list[ReportRecord]):
        self.records = {r.doc_id: r for r in records}
        self.removed: list[str] = []

    def reports(self):
        return list(self.records.values())

    def report(self, doc_id):
        return self.records.get(doc_id)

    def chunks(self, doc_id):  # two chunks overlapping by four characters, as chunking leaves them
        return [Document(page_content=REPORT_TEXT[0:20], metadata={"chunk_index": 0, "char_start": 0, "char_end": 20}),
                Document(page_content=REPORT_TEXT[16:],
                         metadata={"chunk_index": 1, "char_start": 16, "char_end": len(REPORT_TEXT)})]

    def remove_report(self, doc_id):
        self.removed.append(doc_id)
        del self.records[doc_id]

    def update_report(self, doc_id, **fields):
        if doc_id not in self.records:
            raise KeyError(doc_id)
        for key, value in fields.items():
            setattr(self.records[doc_id], key, value)
        return self.records[doc_id]


class FakeRetriever:
    def __init__(self):
        self.asked: list[tuple] = []

    def passages(self, query, k, regions=None, years=None):
        self.asked.append((query, k, regions, years))
        return [Passage(id="p1", text="全年新收行政复议案件1274件。", score=0.873, doc_id="taiyuan-2024", region="太原市",
                        year=2024, title="太原市2024年法治政府建设年度报告", section="（六）", source="t.txt", page=2)]


class FakeAnswerer:
    """Streams ``pieces``, then the result (or raises ``error``)."""

    def __init__(self, pieces=("太原市", "全年新收"), final: AnswerResult | None = None, error: Exception | None = None):
        self.pieces, self.final, self.error = pieces, final or result(), error
        self.asked: list[tuple] = []

    def stream(self, question, mode, regions=None, years=None):
        self.asked.append((question, mode, regions, years))
        yield from self.pieces
        if self.error:
            raise self.error
        yield self.final


class FakeModes:
    def __init__(self, answerer: FakeAnswerer, lock: threading.Lock | None = None):
        self.answerer_, self.lock = answerer, lock
        self.choices = [ModeChoice("local", "内置模型（本机）", "**内置模型**"),
                        ModeChoice("extractive", "摘录原文（不用模型）", "**摘录原文**")]
        self.default = "extractive"

    def choice(self, key):
        return next((c for c in self.choices if c.key == key), self.choices[-1])

    def describe(self, key):
        return self.choice(key).description

    def answerer(self, key):
        return self.answerer_, "extractive" if key == "extractive" else "llm"

    def lock_for(self, key):
        return self.lock if key == "local" else None


def record(**fields) -> ReportRecord:
    values = {"doc_id": "taiyuan-2024", "version": "v1", "source": "data/reports/taiyuan-2024.txt",
              "content_sha": "sha", "region": "太原市", "year": 2024, "title": "太原市2024年法治政府建设年度报告",
              "chunks": 12, "added_at": "2025-01-02T03:04:05"}
    return ReportRecord(**{**values, **fields})


@pytest.fixture
def services(tmp_path) -> Services:
    """Services already "open" over the fakes: ``ready()`` returns them without opening anything."""
    services = Services(Settings(index_dir=str(tmp_path / "index"), llm="none"), UploadPolicy(folder=tmp_path / "up"))
    services.index = FakeIndex([record(), record(doc_id="mianyang-2024", region="绵阳市", title=None, chunks=3,
                                                 added_at="")])
    services.retriever = FakeRetriever()
    services.modes = FakeModes(FakeAnswerer())
    return services


class Unreachable:
    """An index server that is down."""

    def reports(self):
        raise ConnectionError("Connection refused")

    report = chunks = reports


@pytest.fixture
def down(tmp_path) -> Services:
    services = Services(Settings(chroma_url="http://127.0.0.1:9", llm="none"), UploadPolicy(folder=tmp_path / "up"))
    services.index = Unreachable()
    return services


def run(updates) -> list[dict]:
    """A handler's updates as Gradio sees them: each as it was when yielded (the chat's messages
    are one list, changed between steps)."""
    return [copy.deepcopy(update) for update in updates]


def is_update(update, **props) -> bool:
    """Whether ``update`` is a ``gr.update`` setting these properties."""
    return isinstance(update, dict) and update.get("__type__") == "update" and all(update.get(k) == v
                                                                                    for k, v in props.items())


# --- rendering: the same bytes as before the split -------------------------------------------


def test_the_sources_panel_is_the_html_it_was():
    assert render.render_sources(result()) == (
        '<div class="sources"><div class="src-count">共 2 个引用段落</div><div class="src-card" id="src-1" data-n="1">'
        '<div class="src-head"><span class="src-n">[1]</span>太原市 · 2024年 · 《太原市2024年&quot;法治&quot;报告》</div>'
        '<div class="src-meta">（六）化解 &amp; 调解</div><div class="src-text">一、概况。<mark>全年新收行政复议案件1274件。'
        '</mark>&lt;其他&gt;工作。</div><a class="src-open" href="report/taiyuan-2024?chunk=5&amp;hl=5-21#cited" '
        'target="_blank" rel="noopener">在全文中查看 ↗</a></div><div class="src-card" id="src-2" data-n="2">'
        '<div class="src-head"><span class="src-n">[2]</span>地区未知 · 年份未知</div><div class="src-meta">第3页</div>'
        '<div class="src-text">无出处&#x27;段落&#x27;。</div></div></div>')
    assert render.render_sources(None) == ('<div class="src-empty">提问后，这里列出回答引用的原文段落，'
                                           '引用的句子会高亮显示。</div>')
    assert render.render_sources(result(refused=True, citations=[])) == \
        '<div class="src-empty">这个回答没有引用段落（报告中没有找到依据）。</div>'
    assert render.render_sources(result(citations=[])) == '<div class="src-empty">这个回答没有引用段落。</div>'


def test_the_whole_report_page_is_the_html_it_was():
    index = FakeIndex([record(doc_id="r1", source="r1.txt", title=None, chunks=2)])
    page = render.report_page(index, "r1", 0, [(4, 9)])
    assert page == (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">\n<meta name="viewport" '
        'content="width=device-width, initial-scale=1"><title>太原市 · 2024年</title>\n<style>body{font-family:'
        '"PingFang SC","Microsoft YaHei","Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;\nmax-width:860px;'
        'margin:2em auto;padding:0 1em;line-height:1.8;color:#222}\n.info{color:#666;font-size:.9em} '
        '.cited{background:#fff7e0} mark{background:#ffe58f}\n#cited{scroll-margin-top:40vh}</style></head>\n'
        '<body class="report"><h1>太原市 · 2024年</h1><div class="info">太原市 · 2024年 · r1.txt · 2 个片段</div>'
        '<p><span class="cited" id="cited">标题</span></p><p><span class="cited"><mark>第一段 &lt;</mark></span>'
        '<span class="cited">甲&gt; &amp; &quot;乙&quot;。新收</span>案件1274件。</p><p>第二段。</p></body></html>')
    # The chunks overlap: the text is put back once, not twice.
    assert render.report_page(index, "r1").count("第一段") == 1
    assert 'id="cited"' not in render.report_page(index, "r1", 7)  # no such passage: nothing marked
    assert render.report_page(index, "no-such-report") is None


def test_the_answer_message_names_the_mode_notes_and_the_rewritten_question():
    from rag.answer.notes import Note

    text = render.answer_markdown(result(mode="llm", notes=[Note("missing_places", places="成都市", years="")]),
                                  "内置模型（本机）", "太原市2024年新收行政复议案件多少件？")
    assert text == ("*理解为：太原市2024年新收行政复议案件多少件？*\n\n" + ANSWER
                    + "\n\n> 注：库中没有成都市的报告，只回答了其余地区\n\n<sub>内置模型（本机） · 1.2 秒</sub>")
    assert render.answer_markdown(result(), "内置模型（本机）", None).endswith("<sub>摘录原文 · 1.2 秒</sub>")
    assert "仅检索（未找到依据）" in render.answer_markdown(result(refused=True), "内置模型", None)


def test_a_computed_answer_shows_its_formula_and_a_summary_its_points_as_a_list():
    from rag.answer.notes import Note

    cited = "太原市（2024年）：全年新收行政复议案件1274件[1]\n绵阳市（2024年）：全年新收行政复议案件1472件[2]"
    computed = result(answer=cited + "\n计算：1274件[1] + 1472件[2] = 2746件", notes=[Note("computed")])
    assert render.answer_markdown(computed, "内置模型（本机）", None) == (
        cited + "\n**计算**：`1274件`[1] + `1472件`[2] = **`2746件`**\n\n> 注：" + Note("computed").zh
        + "\n\n<sub>摘录原文 · 1.2 秒</sub>")
    # The markers stay plain [n] text, outside the code; a rate, an approximate result, English.
    assert render.formula_markdown("计算：272件[1] ÷ 325件[1] = 83.7%") == "**计算**：`272件`[1] ÷ `325件`[1] = **`83.7%`**"
    assert render.formula_markdown("计算：3.5万元[1] + 2,000元[2] = 约3.7万元") == \
        "**计算**：`3.5万元`[1] + `2,000元`[2] = **约`3.7万元`**"
    assert render.formula_markdown("Computed: 12.5%[1] − 10%[2] = 2.5个百分点") == \
        "**Computed**: `12.5%`[1] − `10%`[2] = **`2.5个百分点`**"
    assert render.formula_markdown("全年新收行政复议案件1274件[1]") == "全年新收行政复议案件1274件[1]"
    # A section summary: each report's heading, then its points as an ordered list.
    summary = result(answer="太原市（2024年）报告「存在的不足」要点：\n1. 意识和能力还需提升[1]\n2. 执法还需推进[2]\n"
                            "绵阳市（2024年）报告「存在的不足」要点：\n1. 基层力量薄弱[3]",
                     notes=[Note("section_summary")])
    assert render.answer_markdown(summary, "摘录原文", None).startswith(
        "**太原市（2024年）报告「存在的不足」要点：**\n\n1. 意识和能力还需提升[1]\n2. 执法还需推进[2]\n\n"
        "**绵阳市（2024年）报告「存在的不足」要点：**\n\n1. 基层力量薄弱[3]\n\n> 注：")
    # Any other answer is its text, as before (numbered lines included).
    plain = result(answer="要点：\n1. 甲[1]\n2. 乙[2]")
    assert render.answer_markdown(plain, "摘录原文", None).startswith("要点：\n1. 甲[1]\n2. 乙[2]\n\n<sub>")


def test_marked_pieces_cut_the_text_at_the_spans():
    assert render.marked_pieces("abcdef", [(1, 2), (4, 6)]) == [
        ("a", False), ("b", True), ("cd", False), ("ef", True), ("", False)]
    assert render.chunk_number("doc:v:00012") == 12 and render.chunk_number("doc") is None


# --- state -----------------------------------------------------------------------------------


def test_the_conversation_survives_the_copies_gradio_makes():
    conv = Conversation().asking("问题").answered([{"role": "user", "content": "问题"},
                                                 {"role": "assistant", "content": "答"}],
                                                "问题", Turn("<div>来源</div>", TABLE))
    for again in (copy.deepcopy(conv), pickle.loads(pickle.dumps(conv))):
        assert again == conv and again.turns[1].table == TABLE
    assert not conv.pending and conv.standalone == ["问题"]
    assert Conversation.of(None) == Conversation() and Conversation.of(conv) is conv


# --- the chat ----------------------------------------------------------------------------------


def test_a_chat_answer_streams_then_shows_its_sources(services):
    chat = ChatHandlers(services)
    updates = run(chat.respond("  太原市2024年新收行政复议案件多少件？ ", None, ["太原市"], ["2024", "x"], "extractive"))
    first, last = updates[0], updates[-1]
    assert first["question"] == "" and first["sources"] == '<div class="src-empty">正在检索和回答…</div>'
    assert is_update(first["comparison"], visible=False) and first["conv"].pending
    streamed = [u["chatbot"][-1]["content"] for u in updates[1:-1] if "chatbot" in u]
    assert streamed == ["太原市 ▌", "太原市全年新收 ▌"]
    assert all(set(u) == {"conv"} for u in updates[1:-1] if "chatbot" not in u)  # heartbeats: nothing else changes
    messages = last["chatbot"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[-1]["content"] == render.answer_markdown(result(), "摘录原文（不用模型）", None)
    assert last["sources"] == render.render_sources(result()) and is_update(last["comparison"], visible=False)
    conv = last["conv"]
    assert not conv.pending and conv.standalone == [result().question] and conv.turns[1].sources == last["sources"]
    # The filters reach the answerer; a year that is not a number is left out.
    assert services.modes.answerer_.asked == [("太原市2024年新收行政复议案件多少件？", "extractive", ["太原市"], [2024])]


def test_a_comparison_shows_its_table_and_chart(services):
    services.modes = FakeModes(FakeAnswerer(final=result(table=TABLE)))
    last = list(ChatHandlers(services).respond("太原和绵阳哪个多？", None, [], [], "extractive"))[-1]
    assert is_update(last["comparison"], visible=True)
    assert last["compare_heading"] == "**新收行政复议案件**（件）\n\n绵阳市最多。"
    assert last["compare_table"].values.tolist()[1][:3] == ["绵阳市", 2024, "1472件"]
    plot = last["compare_plot"]
    assert plot["value"].values.tolist() == [["太原市", 1274.0], ["绵阳市", 1472.0]]
    assert plot["y_lim"] == [0, pytest.approx(1472 * 1.1)] and plot["y_title"] == "新收行政复议案件（件）"
    # Clicking that answer later shows the same again; a click elsewhere changes nothing.
    again = ChatHandlers.show_turn(last["conv"], 1)
    assert again["sources"] == last["sources"] and again["compare_heading"] == last["compare_heading"]
    assert ChatHandlers.show_turn(last["conv"], 0) == {} and ChatHandlers.show_turn(None, None) == {}


def test_follow_ups_are_rewritten_with_the_earlier_questions(services, monkeypatch):
    seen = []

    class Rewriter:
        def __init__(self, analyzer):
            pass

        def run(self, text, history):
            seen.append((text, history))
            return "绵阳市2024年新收行政复议案件多少件？"

    monkeypatch.setattr(handlers_module, "FollowUpRewriter", Rewriter)
    chat = ChatHandlers(services)
    conv = list(chat.respond("太原市2024年新收行政复议案件多少件？", None, [], [], "extractive"))[-1]["conv"]
    last = list(chat.respond("那绵阳呢？", conv, [], [], "extractive"))[-1]
    assert seen == [("那绵阳呢？", ["太原市2024年新收行政复议案件多少件？"])]
    assert last["chatbot"][-1]["content"].startswith("*理解为：绵阳市2024年新收行政复议案件多少件？*")
    assert len(last["chatbot"]) == 4 and sorted(last["conv"].turns) == [1, 3]
    assert len(conv.messages) == 2  # the earlier state was not changed in place


def test_failures_and_an_empty_index_are_the_answer(services):
    services.modes = FakeModes(FakeAnswerer(pieces=("半句",), error=RuntimeError("model died")))
    last = list(ChatHandlers(services).respond("问题", None, [], [], "extractive"))[-1]
    assert last["chatbot"][-1]["content"].startswith("**提示：** 处理时出错（RuntimeError：model died）")
    assert last["sources"] == render.render_sources(None) and not last["conv"].pending
    assert last["conv"].standalone == [] and last["conv"].turns == {}
    services.index.records.clear()
    last = list(ChatHandlers(services).respond("问题", None, [], [], "extractive"))[-1]
    assert last["chatbot"][-1]["content"] == f"**提示：** {EMPTY_INDEX}"
    assert list(ChatHandlers(services).respond("   ", None, [], [], "extractive")) == [{"conv": Conversation()}]


def test_a_question_waiting_for_the_bundled_model_says_so_and_can_be_stopped(services, monkeypatch):
    monkeypatch.setattr(handlers_module, "LOCK_POLL_S", 0.01)
    lock = threading.Lock()
    services.modes = FakeModes(FakeAnswerer(), lock=lock)
    chat = ChatHandlers(services)
    lock.acquire()  # another question holds the model
    stream = chat.answer_stream("问题", [], [], "local", stopped=lambda: True)
    assert next(stream) == ("（排队中）模型正在回答其他问题，请稍候…", None, "问题")
    lock.release()
    assert list(stream) == []  # the model is taken, but the asker has gone: nothing more
    assert services.modes.answerer_.asked == [] and not lock.locked()  # never asked, and given back


def test_stop_marks_the_answer_being_written(services):
    conv = Conversation().asking("问题")
    conv.messages[-1] = {"role": "assistant", "content": "半句 ▌"}
    out = ChatHandlers.stop(conv)
    assert out["chatbot"][-1]["content"] == "半句\n\n*（已停止）*" and not out["conv"].pending
    assert out["sources"] == '<div class="src-empty">回答已停止。</div>'
    assert conv.messages[-1]["content"] == "半句 ▌"  # the stored state is not changed in place
    assert ChatHandlers.stop(out["conv"]) == {"conv": out["conv"]}  # nothing pending: nothing to stop


def test_new_chat_starts_over():
    out = ChatHandlers.reset()
    assert out["chatbot"] == [] and out["conv"] == Conversation()
    assert out["sources"] == render.render_sources(None) and is_update(out["comparison"], visible=False)


def test_the_ask_api_streams_partial_answers_then_the_contract_result(services):
    services.modes = FakeModes(FakeAnswerer(final=result(table=TABLE)))
    events = list(ChatHandlers(services).ask_api("太原市2024年新收行政复议案件多少件？", mode="extractive"))
    assert events[0] == {"question": "太原市2024年新收行政复议案件多少件？", "answer": "太原市", "partial": True}
    final = events[-1]
    assert final["partial"] is False and final["table"] == TABLE and final["notes_zh"] == []
    assert [c["n"] for c in final["citations"]] == [1, 2]
    services.index = Unreachable()
    services.settings = Settings(chroma_url="http://127.0.0.1:9", llm="none")
    failed = list(ChatHandlers(services).ask_api("问题"))
    assert failed == [{"question": "问题", "answer": failed[0]["answer"], "error": True, "partial": False}]
    assert "无法连接索引服务器 http://127.0.0.1:9" in failed[0]["answer"]


# --- search ----------------------------------------------------------------------------------


def test_search_lists_passages_and_says_why_when_it_cannot(services, down):
    search = SearchHandler(services)
    assert search.search("新收行政复议案件", ["太原市"], ["2024"]) == (
        "**[1] 太原市 · 2024 · 《太原市2024年法治政府建设年度报告》 · （六） · 第2页**（相关度 0.87）\n\n"
        "> 全年新收行政复议案件1274件。")
    assert services.retriever.asked == [("新收行政复议案件", 5, ["太原市"], [2024])]
    assert search.search("  ", [], []) == "请输入要检索的内容。"
    assert SearchHandler(down).search("行政复议", [], []).startswith("⚠️ 无法连接索引服务器 http://127.0.0.1:9")
    services.index.records.clear()
    assert search.search("行政复议", [], []) == EMPTY_INDEX


# --- the library -------------------------------------------------------------------------------


def test_the_library_lists_reports_and_the_status_line_sums_them_up(services, down):
    library = LibraryHandlers(services)
    assert library.library_rows()[0] == ["太原市", 2024, "太原市2024年法治政府建设年度报告", 12, "2025-01-02 03:04",
                                         "data/reports/taiyuan-2024.txt", "taiyuan-2024"]
    assert library.report_options()[1] == ("绵阳市 · 2024 · data/reports/taiyuan-2024.txt", "mianyang-2024")
    assert library.choices() == (["太原市", "绵阳市"], ["2024"])
    assert library.status_line().startswith("已收录 2 份报告（15 个段落）：2 个地区，2024年。")
    out = library.refreshed()
    assert set(out) == {"library", "report", "ask_regions", "ask_years", "search_regions", "search_years", "status",
                        "audit", "fig_regions", "fig_years"}
    assert is_update(out["report"], value=None) and out["report"]["choices"] == library.report_options()
    assert is_update(out["ask_years"], choices=["2024"]) and is_update(out["fig_years"], choices=["2024"])
    assert is_update(out["fig_regions"], choices=["太原市", "绵阳市"])  # the explorer's filters follow uploads
    unreachable = LibraryHandlers(down)
    assert unreachable.library_rows() == [] and unreachable.choices() == ([], [])
    assert unreachable.status_line().startswith("⚠️ 无法连接索引服务器")
    services.index.records.clear()
    assert "还没有报告" in library.status_line()


def test_reports_are_corrected_and_removed(services, tmp_path):
    library = LibraryHandlers(services)
    assert library.selected_report("taiyuan-2024") == {"fix_region": "太原市", "fix_year": 2024}
    assert library.selected_report(None) == {"fix_region": "", "fix_year": None}
    assert library.correct(None, "朔州", 2023) == "请先选择一份报告。"
    assert library.correct("taiyuan-2024", "", "二〇二三") == "年份“二〇二三”不是数字。"
    assert library.correct("taiyuan-2024", "", 3024).startswith("年份 3024 不合理")
    assert library.correct("taiyuan-2024", " ", None) == "请填写要更正的地区或年份。"
    assert library.correct("nope", "", 2023) == "库中没有这份报告（nope）。"
    assert library.correct("taiyuan-2024", "", 2023.0) == "已更正：太原市 · 2023年 · 《太原市2024年法治政府建设年度报告》"

    stored = services.uploads.folder / "taiyuan-2024.txt"  # an uploaded copy goes with its report
    stored.parent.mkdir(parents=True)
    stored.write_text("报告")
    services.index.records["taiyuan-2024"].source = str(stored)
    assert library.remove("taiyuan-2024") == "已删除：太原市 · 2023年 · 《太原市2024年法治政府建设年度报告》"
    assert not stored.exists() and services.index.removed == ["taiyuan-2024"]
    assert library.remove("taiyuan-2024") == "库中没有这份报告（taiyuan-2024）。"
    assert library.remove("") == "请先选择一份报告。"


def test_uploads_report_each_file(services, tmp_path, monkeypatch):
    class Ingestor:  # what the pipeline found in each stored file
        def __init__(self, index, progress):
            pass

        def run(self, paths):
            from rag.ingest.pipeline import FileResult, IngestSummary

            status = "duplicate" if "copy" in paths[0].name else "ingested"
            return IngestSummary(results=[FileResult(source=str(paths[0]), status=status, chunks=4,
                                                     region="大同市", year=None, reason="与 houma-2023 相同")])

    monkeypatch.setattr(handlers_module, "Ingestor", Ingestor)
    for name in ("datong.txt", "copy.txt", "empty.txt"):
        (tmp_path / name).write_text("" if name == "empty.txt" else "报告内容")
    calls = []
    rows = list(UploadHandler(services).upload([str(tmp_path / n) for n in ("datong.txt", "copy.txt", "empty.txt")],
                                               progress=lambda *a, **k: calls.append(a)))[-1]
    assert rows[0] == ["datong.txt", "已导入", "大同市", "", 4, "保存为 datong.txt；未识别出年份，请在下方更正"]
    assert rows[1] == ["copy.txt", "重复（库中已有相同内容）", "大同市", "", 4, "与 houma-2023 相同"]
    assert rows[2][:2] == ["empty.txt", "已拒绝"] and "空文件" in rows[2][5]
    assert sorted(p.name for p in services.uploads.folder.iterdir()) == ["datong.txt"]  # duplicates are not kept
    assert calls[-1] == ((3, 3),) and not services.ingest_lock.locked()
    assert list(UploadHandler(services).upload([])) == [[["", "未选择文件", "", "", "", "请先选择要上传的报告文件"]]]


# --- the page and the report route -------------------------------------------------------------


def test_the_page_builds_with_its_endpoints_and_outputs(services):
    from rag.web.layout import CHAT_OUTPUTS, Handlers, _outputs, build_blocks

    handlers = Handlers(ChatHandlers(services), SearchHandler(services), LibraryHandlers(services),
                        UploadHandler(services))
    blocks = build_blocks(handlers, services.mode_choices(), services.uploads, "状态")
    endpoints = set(blocks.get_api_info()["named_endpoints"])
    assert {"/chat", "/ask", "/search", "/library", "/upload", "/correct", "/remove"} <= endpoints
    assert "/downloads" in endpoints  # the download buttons' files after /chat (rag.web.history)
    out = _outputs(CHAT_OUTPUTS, {"conv": "c", "sources": "s"})
    # conv stays at position 7: outputs added later (trend_plot) go after it.
    assert len(out) == len(CHAT_OUTPUTS) and out[2] == "s" and out[7] == "c"
    assert all(is_update(v) and set(v) == {"__type__"} for i, v in enumerate(out) if i not in (2, 7))


def test_the_report_route_serves_the_page_or_says_why_not(services, down):
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from rag.web.report_route import report_route

    app = FastAPI(routes=[report_route(services)])
    client = TestClient(app)
    page = client.get("/report/taiyuan-2024?chunk=1&hl=0-3")
    assert page.status_code == 200 and page.text == render.report_page(services.index, "taiyuan-2024", 1, [(0, 3)])
    missing = client.get("/report/<nope>")
    assert missing.status_code == 404 and "（&lt;nope&gt;）" in missing.text
    broken = TestClient(FastAPI(routes=[report_route(down)])).get("/report/x")
    assert broken.status_code == 503 and "无法连接索引服务器" in broken.text
