"""The Gradio app, started for real on a free port (the bundled index) and used through gradio_client.

Also: the rendering of sources and comparison tables from real answers, the whole-report page,
and the readable messages for an empty index, a Chroma server that is down and a missing model.
"""

import re
import shutil
import threading
import urllib.error
import urllib.request

import pytest

from conftest import NEW_REPORT, REPORTS, free_port, table_rows



def _last_answer(messages) -> str:
    content = messages[-1]["content"]
    return "".join(part.get("text", "") for part in content) if isinstance(content, list) else str(content)


@pytest.fixture
def client(app_server):
    """A new browser session: its own conversation (follow-ups would carry over otherwise)."""
    from gradio_client import Client

    url, _ = app_server
    return Client(url, verbose=False)


def test_fact_question_in_the_chat_has_citations_and_highlighted_sources(client):
    out = client.predict("太原市2024年新收行政复议案件多少件？", [], [], "extractive", api_name="/chat")
    messages, sources = out[1], out[2]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    answer = _last_answer(messages)
    assert "1274" in answer and "[1]" in answer and "摘录原文" in answer
    cards = re.findall(r'<div class="src-card" id="src-(\d+)"', sources)
    assert cards == ["1"]
    assert "太原市 · 2024年 · 《太原市2024年法治政府建设年度报告》" in sources
    assert "（六）依法有效化解社会矛盾纠纷" in sources or "(六)依法有效化解社会矛盾纠纷" in sources
    marked = re.findall(r"<mark>(.*?)</mark>", sources)
    assert len(marked) == 1 and "新收行政复议案件1274件" in marked[0]
    assert 'href="report/taiyuan-2024-' in sources


def test_comparison_shows_a_table_and_a_chart(client):
    out = client.predict("太原和绵阳2024年新收行政复议案件各多少？哪个多？", [], [], "extractive", api_name="/chat")
    # Outputs: question box, chat, sources, comparison heading, table, chart (layout blocks are not outputs).
    messages, sources, heading, table, plot = out[1:6]
    answer = _last_answer(messages)
    assert "1274" in answer and "1472" in answer and "[1]" in answer and "[2]" in answer
    assert re.findall(r'id="src-(\d+)"', sources) == ["1", "2"]
    assert "太原市" in sources and "绵阳市" in sources and sources.count("<mark>") >= 2
    assert "绵阳市" in heading and "多" in heading
    rows = {r[0]: r for r in table_rows(table)}
    assert rows["太原市"][2] == "1274件" and rows["绵阳市"][2] == "1472件"
    assert rows["太原市"][3] and rows["绵阳市"][3]  # each figure carries its [n]
    bars = dict((region, value) for region, value in plot["value"]["data"])
    assert bars == {"太原市": 1274.0, "绵阳市": 1472.0}


def test_an_answer_downloads_as_word_with_its_citations_table_and_chart(client):
    from docx import Document
    from openpyxl import load_workbook

    question = "太原和绵阳2024年新收行政复议案件各多少？哪个多？"
    client.predict(question, [], [], "extractive", api_name="/chat")
    # The download buttons' files for the session's last answer (the page fills them after each answer).
    history, answer_docx, answer_md, conv_docx, conv_md, table_csv, table_xlsx, link = \
        client.predict("", api_name="/downloads")
    table_csv, table_xlsx = table_csv["value"], table_xlsx["value"]  # shown (an update): this answer has a table
    expected = client.predict(question, mode="extractive", api_name="/ask")  # the same answer, as data
    doc = Document(answer_docx)
    text = "\n".join(p.text for p in doc.paragraphs)
    assert question in text
    for line in expected["answer"].strip().split("\n"):
        assert line.strip() in text
    assert len(expected["citations"]) == 2
    for c in expected["citations"]:
        assert f"[{c['n']}] 《{c['title']}》 {c['region']} {c['year']}年" in text and c["text"].strip() in text
    cells = [cell.text for row in doc.tables[0].rows for cell in row.cells]
    assert "1274件" in cells and "1472件" in cells and "太原市" in cells and "绵阳市" in cells
    assert len(doc.inline_shapes) == 1  # the bar chart
    assert open(answer_md, encoding="utf-8").read().startswith(f"# {question}")
    assert Document(conv_docx).paragraphs[0].text == "对话记录"
    sheet = load_workbook(table_xlsx).active
    assert sorted(r[2] for r in sheet.iter_rows(min_row=2, values_only=True)) == ["1274件", "1472件"]
    assert open(table_csv, encoding="utf-8-sig").readline().startswith("地区,年份")
    assert re.search(r"\?conv=[0-9a-f]{32}&turn=1", link)


def test_places_without_a_figure_show_not_mentioned(client):
    out = client.predict("各地行政机关负责人出庭应诉率是多少？", [], [], "extractive", api_name="/chat")
    table, plot = out[4], out[5]
    rows = {r[0]: r for r in table_rows(table)}
    assert rows["侯马市"][2] == "未提及" and rows["太原市"][2] == "未提及"
    assert rows["绵阳市"][2] == "100%"
    plotted = {region for region, _ in plot["value"]["data"]}
    assert "侯马市" not in plotted and "绵阳市" in plotted


def test_follow_up_questions_are_rewritten(app_server):
    from gradio_client import Client

    url, _ = app_server
    chat = Client(url, verbose=False)  # its own session: its own conversation
    chat.predict("太原市2024年新收行政复议案件多少件？", [], [], "extractive", api_name="/chat")
    out = chat.predict("那绵阳呢？", [], [], "extractive", api_name="/chat")
    messages, sources = out[1], out[2]
    assert len(messages) == 4
    answer = _last_answer(messages)
    assert "理解为：绵阳市2024年新收行政复议案件多少件" in answer and "1472" in answer
    assert "绵阳市 · 2024年" in sources and "太原市 · 2024年" not in sources


def test_refusals_and_empty_questions(client):
    out = client.predict("成都市2024年新收行政复议案件多少件？", [], [], "extractive", api_name="/chat")
    answer = _last_answer(out[1])
    assert "库中没有成都市" in answer and "太原市2024年" in answer
    assert "没有引用段落" in out[2]


def test_ask_api_returns_the_contract_result(client):
    result = client.predict("太原和绵阳2024年新收行政复议案件各多少？", mode="extractive", api_name="/ask")
    assert result["partial"] is False and result["refused"] is False and result["mode"] == "extractive"
    assert {c["region"] for c in result["citations"]} == {"太原市", "绵阳市"}
    assert all(c["text"] and c["doc_id"] and c["source"] for c in result["citations"])
    assert result["contexts"] and "latency_ms" in result
    assert result["table"]["rows"] and {r["region"] for r in result["table"]["rows"]} == {"太原市", "绵阳市"}
    follow = client.predict("那2023年呢？", ["侯马市"], [], "extractive", ["侯马市2024年新收行政复议案件多少件？"],
                            api_name="/ask")
    assert follow["question"].startswith("侯马市2023年")


def test_search_library_and_the_whole_report_page(client, app_server):
    url, _ = app_server
    answer = client.predict("新收行政复议案件", ["太原市"], ["2024"], api_name="/search")
    assert "[1] 太原市 · 2024" in answer and "太原市2024年法治政府建设年度报告" in answer
    assert "请输入" in client.predict("  ", [], [], api_name="/search")
    rows = table_rows(client.predict(api_name="/library"))
    assert sorted(r[0] for r in rows) == ["侯马市", "太仓市", "太原市", "石家庄市", "绵阳市"]
    taiyuan = next(r for r in rows if r[0] == "太原市")
    assert int(taiyuan[1]) == 2024 and int(taiyuan[3]) > 10 and re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d", taiyuan[4])

    sources = client.predict("太原市2024年新收行政复议案件多少件？", [], [], "extractive", api_name="/chat")[2]
    link = re.search(r'href="(report/[^"]+)"', sources).group(1).replace("&amp;", "&")
    page = urllib.request.urlopen(url + link.split("#")[0]).read().decode()
    assert page.count('id="cited"') == 1
    cited = page.split('id="cited"', 1)[1]
    assert re.search(r"<mark>[^<]*新收行政复议案件1274件", cited)
    assert page.count("<p>") > 20  # the whole report, not only the passage
    # The report reads as written: the passages' one-sentence overlaps are not repeated.
    assert page.count("新收行政复议案件1274件") == 1
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url + "report/no-such-report?chunk=1")
    assert info.value.code == 404


def test_uploads_do_not_break_the_chat_and_reports_can_be_corrected_and_removed(app_server, client, tmp_path):
    from gradio_client import Client, handle_file

    url, app = app_server
    uploader = Client(url, verbose=False)
    results: dict = {}

    def upload():
        results["upload"] = uploader.predict([handle_file(str(NEW_REPORT))], api_name="/upload")

    thread = threading.Thread(target=upload)
    thread.start()
    answers = [client.predict("绵阳市2024年办理法律援助案件多少件？", [], [], "extractive", api_name="/chat")
               for _ in range(2)]
    thread.join(timeout=120)
    try:
        assert all("5250" in _last_answer(a[1]) for a in answers)
        rows = table_rows(results["upload"])
        assert rows == [["datong-2024.txt", "已导入", "大同市", 2024, rows[0][4], "保存为 datong-2024.txt"]]
        stored = app.services.uploads.folder / "datong-2024.txt"
        assert stored.read_bytes() == NEW_REPORT.read_bytes()
        library = {r[0]: r for r in table_rows(client.predict(api_name="/library"))}
        assert int(library["大同市"][1]) == 2024
        doc_id = library["大同市"][-1]
        answer = _last_answer(client.predict("大同市2024年新收行政复议案件多少件？", [], [], "extractive",
                                             api_name="/chat")[1])
        assert "688" in answer

        assert client.predict(doc_id, "朔州", 2023, api_name="/correct") == "已更正：朔州市 · 2023年 · 《大同市2024年法治政府建设年度报告》"
        library = {r[0]: r for r in table_rows(client.predict(api_name="/library"))}
        assert "大同市" not in library and int(library["朔州市"][1]) == 2023
        assert "不合理" in client.predict(doc_id, "", 3024, api_name="/correct")

        # The same text again is a duplicate: nothing indexed, nothing left in the upload folder.
        copy = tmp_path / "另一个名字.txt"
        shutil.copy(REPORTS / "houma-2023.txt", copy)
        dup = table_rows(uploader.predict([handle_file(str(copy))], api_name="/upload"))
        assert dup[0][1].startswith("重复") and "houma-2023" in dup[0][5]
        assert sorted(p.name for p in app.services.uploads.folder.iterdir()) == ["datong-2024.txt"]

        assert client.predict(doc_id, api_name="/remove").startswith("已删除：朔州市")
        assert not stored.exists()  # the uploaded copy goes with the report
    finally:
        for record in app.services.index.reports():
            if record.region in ("大同市", "朔州市"):
                app.services.index.remove_report(record.doc_id)
    assert len(table_rows(client.predict(api_name="/library"))) == 5


@pytest.mark.slow
def test_the_bundled_model_streams_into_the_chat(client):
    job = client.submit("太原市2024年新收行政复议案件多少件？", [], [], "local", api_name="/chat")
    messages, sources = job.result()[1], job.result()[2]
    answer = _last_answer(messages)
    assert "1274" in answer and "[1]" in answer and "内置模型" in answer + "摘录原文"
    assert 'id="src-1"' in sources
    # Intermediate states came before the final one: the answer streamed in.
    assert len(job.outputs()) > 3


@pytest.mark.slow
def test_the_app_keeps_answering_while_its_model_process_is_killed_and_restarted(client):
    import os
    import signal
    import time

    from rag.models.server import bundled_server

    server = bundled_server()  # the app's own model process (it runs in this test process)
    server.ensure()
    first = server.pid
    job = client.submit("绵阳市2024年新收行政复议案件多少件？", [], [], "local", api_name="/chat")
    deadline = time.monotonic() + 120
    while len(job.outputs()) < 3 and not job.done() and time.monotonic() < deadline:
        time.sleep(0.05)  # the placeholder, then the first streamed piece
    os.kill(first, signal.SIGKILL)
    answer = _last_answer(job.result()[1])
    assert "1472" in answer, answer
    assert "正在重启" in answer or "内置模型" in answer, answer  # the note, or the model finished first
    while not (server.pid not in (None, first) and server.responds()) and time.monotonic() < deadline:
        time.sleep(0.2)
    answer = _last_answer(client.predict("太原市2024年新收行政复议案件多少件？", [], [], "local",
                                         api_name="/chat")[1])
    assert "1274" in answer and "内置模型" in answer and "正在重启" not in answer, answer


# --- readable failures (real components, no server needed) -----------------------------------


def test_an_empty_index_says_how_to_add_reports(tmp_path, real_embeddings):
    from rag.web.app import build_app
    from rag.ingest.uploads import UploadPolicy
    from rag.config import Settings

    app = build_app(Settings(index_dir=str(tmp_path / "index"), llm="none"), UploadPolicy(folder=tmp_path / "up"),
                    embeddings=real_embeddings)
    assert "还没有报告" in app.status_line()
    text, result, _ = list(app.answer_stream("太原市2024年新收行政复议案件多少件？", [], [], "extractive"))[-1]
    assert result is None and "还没有报告" in text and "上传" in text
    assert "还没有报告" in app.search("行政复议", [], [])


def test_a_chroma_server_that_is_down_is_reported_in_the_page(tmp_path, real_embeddings):
    from rag.web.app import build_app
    from rag.ingest.uploads import UploadPolicy
    from rag.config import Settings

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    app = build_app(Settings(chroma_url=url, llm="none"), UploadPolicy(folder=tmp_path / "up"),
                    embeddings=real_embeddings)
    assert app.startup_error and f"无法连接索引服务器 {url}" in app.startup_error
    text, result, _ = list(app.answer_stream("太原市2024年新收行政复议案件多少件？", [], [], "extractive"))[-1]
    assert result is None and "无法连接索引服务器" in text and "Traceback" not in text
    assert "无法连接索引服务器" in app.search("行政复议", [], [])
    assert app.library_rows() == []


def test_a_missing_model_leaves_extractive_answers_and_says_so(monkeypatch, tmp_path, bundled_index):
    from rag.web.app import AnswerModes, answer_markdown
    from rag.retrieve.hybrid import HybridRetriever
    from rag.config import Settings

    monkeypatch.setenv("RAG_LOCAL_MODEL", str(tmp_path / "missing.gguf"))
    modes = AnswerModes(Settings(index_dir=bundled_index.settings.index_dir, llm="local"),
                        HybridRetriever(index=bundled_index))
    assert [c.key for c in modes.choices] == ["extractive"]
    assert "内置模型未安装" in modes.describe("local") and "make model" in modes.describe("local")
    answerer, mode = modes.answerer("llm")  # asking for a model gives the extractive answerer
    result = answerer.run("太原市2024年新收行政复议案件多少件？", mode=mode)
    assert "1274" in answer_markdown(result, "内置模型", None)

    hosted = AnswerModes(Settings(llm="openai", llm_base_url="http://127.0.0.1:9/v1", llm_model="qwen-plus"),
                         HybridRetriever(index=bundled_index))
    assert hosted.choices[0].key == "openai" and "qwen-plus" in hosted.choices[0].label
    assert "托管模型" in hosted.describe("openai")


def test_notes_are_shown_in_chinese():
    import copy
    import pickle

    from rag.web.app import note_zh
    from rag.answer.notes import WORDING, Note

    failed = Note("llm_failed", error="APIConnectionError: Connection error.")
    assert failed == "LLM failed (APIConnectionError: Connection error.); answered extractively"  # the CLI's text
    assert note_zh(failed) == "模型调用失败（APIConnectionError: Connection error.），已改为摘录原文回答"
    assert note_zh(Note("missing_places", places="成都市", years="")) == "库中没有成都市的报告，只回答了其余地区"
    assert note_zh(Note("left_out_places", places="侯马市")) == "模型的回答漏掉了侯马市，已改为摘录原文回答"
    assert note_zh(Note("left_out_figures", figures="100%")) == "模型的回答漏掉了问题所问的数字（100%），已改为摘录原文回答"
    assert note_zh("已是中文的说明") == "已是中文的说明"
    # Gradio's state copies values: a note survives as a note
    for again in (copy.deepcopy(failed), pickle.loads(pickle.dumps(failed))):
        assert again == failed and again.zh == failed.zh and again.code == "llm_failed"
    # every wording has a Chinese form, with the same placeholders
    import string

    for code, (en, zh) in WORDING.items():
        fields = lambda text: {f for _, f, _, _ in string.Formatter().parse(text) if f}
        assert fields(en) == fields(zh) and any("\u4e00" <= ch <= "\u9fff" for ch in zh), code


def test_comparison_frames_plot_only_values_in_the_tables_unit():
    from rag.web.app import comparison_frames

    table = {"metric": "法律援助案件", "unit": "件", "conclusion": "绵阳市最多。", "rows": [
        {"region": "太原市", "year": 2024, "found": True, "figure": "4000件", "value": 4000.0, "unit": "件",
         "citation": 1, "sentence": "办理法律援助案件4000件"},
        {"region": "绵阳市", "year": 2024, "found": True, "figure": "5250件", "value": 5250.0, "unit": "件",
         "citation": 2, "sentence": "办好法律援助案件5250件"},
        {"region": "太仓市", "year": 2024, "found": True, "figure": "1.2万人次", "value": 12000.0, "unit": "人次",
         "citation": 3, "sentence": "服务1.2万人次"},
        {"region": "侯马市", "year": 2023, "found": False, "figure": None, "value": None, "unit": None,
         "citation": None, "sentence": None}]}
    rows, bars, heading, axis = comparison_frames(table)
    assert rows.values.tolist()[3] == ["侯马市", 2023, "未提及", "", ""]
    assert rows.values.tolist()[0][2:4] == ["4000件", "[1]"]
    assert bars.values.tolist() == [["太原市", 4000.0], ["绵阳市", 5250.0]]  # 人次 is not 件; 2023 has no bar
    assert axis == "法律援助案件（件）" and "绵阳市最多" in heading
    assert comparison_frames(None) is None and comparison_frames({"rows": []}) is None


def test_background_stream_heartbeats_failures_and_stop():
    from rag.web.app import background_stream

    closed, went_on = threading.Event(), threading.Event()
    gate = threading.Event()

    def stream(stopped):
        try:
            yield 1
            gate.wait(10)  # a slow step (a model reading its prompt)
            yield 2
            if not stopped():
                went_on.set()
            yield 3
        finally:
            closed.set()

    items = background_stream(stream, heartbeat=0.05)
    assert next(items) == 1
    assert next(items) is None  # nothing new: a heartbeat instead of a long wait
    items.close()  # the asker stopped
    gate.set()
    assert closed.wait(10) and not went_on.is_set()  # the worker saw the stop and closed its stream

    def failing(stopped):
        yield "a"
        raise ValueError("server down")

    got = []
    with pytest.raises(ValueError, match="server down"):
        for item in background_stream(failing, heartbeat=0.05):
            got.append(item)
    assert [g for g in got if g is not None] == ["a"]
