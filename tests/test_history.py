"""Kept conversations: the store (a real embedded Chroma collection), and the page's history
handlers (restore on load, the 历史对话 list, links to one answer, another owner refused,
downloads) without a browser or a model."""

from __future__ import annotations

import copy
import os
import pickle
from types import SimpleNamespace

import pytest

from rag.config import Settings
from rag.index.conversations import (ConversationNotFound, ConversationRefused, ConversationStore,
                                     StoredConversation)
from rag.ingest.uploads import UploadPolicy
from rag.web.backend import Services
from rag.web.downloads import KEEP_SETS, Downloads
from rag.web.history import HistoryHandlers, owner_of, to_conversation, to_stored
from rag.web.state import Conversation, Turn, assistant_message, user_message

CITATION = {"n": 1, "doc_id": "taiyuan-2024", "region": "太原市", "year": 2024, "title": "太原市2024年法治政府建设年度报告",
            "section": "（六）依法有效化解社会矛盾纠纷", "text": "全年新收行政复议案件1274件。", "source": "t.txt",
            "page": None, "chunk_id": "taiyuan-2024:v1:00005"}
TABLE = {"metric": "新收行政复议案件", "unit": "件", "conclusion": "绵阳市最多。", "rows": [
    {"region": "太原市", "year": 2024, "found": True, "figure": "1274件", "value": 1274.0, "unit": "件",
     "citation": 1, "sentence": "新收行政复议案件1274件"},
    {"region": "绵阳市", "year": 2024, "found": True, "figure": "1472件", "value": 1472.0, "unit": "件",
     "citation": 2, "sentence": "新收行政复议案件1472件"}]}


def answer_record(question: str, answer: str, citations: list[dict], table: dict | None = None) -> dict:
    return {"question": question, "asked": None, "answer": answer, "refused": False, "mode": "extractive",
            "notes": [], "table": table, "citations": citations, "latency_ms": 12.0}


def client(path):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))


@pytest.fixture
def store(tmp_path) -> ConversationStore:
    return ConversationStore(client(tmp_path / "index"), "govreport_conversations")


def stored(conv_id: str, owner: str, question: str = "太原市2024年新收行政复议案件多少件？") -> StoredConversation:
    record = answer_record(question, "新收行政复议案件1274件[1]。", [CITATION])
    return StoredConversation(conv_id, owner, [user_message(question), assistant_message("新收1274件[1]")],
                              [question], {1: record})


# --- the store -----------------------------------------------------------------------------------


def test_the_store_saves_lists_by_owner_and_refuses_other_owners(store):
    store.save(stored("c1", "user:li"))
    store.save(stored("c2", "user:li", "绵阳市2024年办理法律援助案件多少件？"))
    store.save(stored("c3", "user:wang"))
    listed = store.list("user:li")
    assert [c.id for c in listed] == ["c2", "c1"]  # the most recently saved first
    assert {c.title for c in listed} == {"太原市2024年新收行政复议案件多少件？", "绵阳市2024年办理法律援助案件多少件？"}
    assert all(c.answers == 1 and c.created and c.updated for c in listed)
    assert [c.id for c in store.list("user:wang")] == ["c3"] and store.list("browser:x") == []
    got = store.get("c1", "user:li")
    assert got.turns[1]["citations"][0] == CITATION and got.messages[0]["content"].startswith("太原市")
    with pytest.raises(ConversationRefused, match="只能打开自己的对话"):
        store.get("c1", "user:wang")
    with pytest.raises(ConversationRefused):  # nor overwrite it under the same id
        store.save(stored("c1", "user:wang"))
    with pytest.raises(ConversationNotFound):
        store.get("nope", "user:li")
    assert store.get("c1", "user:li").owner == "user:li"


def test_saving_again_updates_and_the_newest_comes_first(store):
    first = store.save(stored("c1", "browser:a"))
    store.save(stored("c2", "browser:a"))
    again = stored("c1", "browser:a")
    again.created = first.created
    again.messages += [user_message("那绵阳呢？"), assistant_message("1472件[1]")]
    again.turns[3] = answer_record("绵阳市2024年新收行政复议案件多少件？", "1472件[1]", [CITATION])
    store.save(again)
    listed = store.list("browser:a")
    assert listed[0].id == "c1" and listed[0].answers == 2 and listed[0].created == first.created
    assert len(store.get("c1", "browser:a").messages) == 4


def test_conversations_survive_reopening_the_index(tmp_path):
    ConversationStore(client(tmp_path / "index"), "govreport_conversations").save(stored("c1", "user:li"))
    reopened = ConversationStore(client(tmp_path / "index"), "govreport_conversations")
    assert [c.id for c in reopened.list("user:li")] == ["c1"]
    assert reopened.get("c1", "user:li").turns[1]["answer"] == "新收行政复议案件1274件[1]。"


# --- the page's handlers ---------------------------------------------------------------------------


def request(username: str | None = None, session: str = "s1", **query) -> SimpleNamespace:
    """What the handlers read of ``gr.Request``."""
    return SimpleNamespace(username=username, session_hash=session, query_params=query)


@pytest.fixture
def history(tmp_path, store) -> HistoryHandlers:
    services = Services(Settings(index_dir=str(tmp_path / "index"), llm="none"), UploadPolicy(folder=tmp_path / "up"))
    return HistoryHandlers(services, store=store, downloads=Downloads(tmp_path / "downloads"))


def answered(conv: Conversation, question: str, answer: str, record: dict) -> Conversation:
    conv = conv.asking(question)
    messages = conv.messages[:-1] + [assistant_message(answer)]
    return conv.answered(messages, question, Turn(f"<div>{record['citations'][0]['region']}</div>",
                                                  record.get("table"), record))


def two_answers() -> Conversation:
    taiyuan = answer_record("太原市2024年新收行政复议案件多少件？", "1274件[1]。", [CITATION])
    mianyang = answer_record("太原和绵阳2024年新收行政复议案件各多少？哪个多？", "太原1274件[1]，绵阳1472件[2]。",
                             [CITATION, {**CITATION, "n": 2, "doc_id": "mianyang-2024", "region": "绵阳市",
                                         "text": "新收行政复议案件1472件。"}], TABLE)
    conv = answered(Conversation(), taiyuan["question"], "1274件[1]", taiyuan)
    return answered(conv, mianyang["question"], "太原1274件[1]，绵阳1472件[2]", mianyang)


def test_the_state_keeps_its_id_and_records_through_gradios_copies():
    conv = two_answers()
    assert len(conv.id) == 32 and sorted(conv.turns) == [1, 3]
    assert conv.answer_index(2) == 3 and conv.answer_number(1) == 1 and conv.answer_index(3) is None
    for again in (copy.deepcopy(conv), pickle.loads(pickle.dumps(conv))):
        assert again == conv
    back = to_conversation(to_stored(conv, "browser:a"))
    assert back.messages == conv.messages and back.id == conv.id and back.standalone == conv.standalone
    assert {i: t.record for i, t in back.turns.items()} == {i: t.record for i, t in conv.turns.items()}
    # The sources panel is rendered again from the record: the cited passage, its sentence marked.
    assert 'id="src-2"' in back.turns[3].sources and "绵阳市" in back.turns[3].sources


def test_owners_are_users_then_browsers_then_sessions():
    browser = "0123456789abcdef0123456789abcdef"
    assert owner_of(request("li"), browser) == "user:li"
    assert owner_of(request(), browser) == "browser:" + browser
    assert owner_of(request(), "../../etc") == "session:s1"  # not an id this app gives out
    assert owner_of(None, None) == "session:python"


def test_a_reload_restores_the_last_conversation_and_a_link_its_answer(history, store):
    browser = "0123456789abcdef0123456789abcdef"
    conv = two_answers()
    saved = history.save(conv, browser, request())
    assert saved["history"]["choices"][0][1] == conv.id and saved["history"]["value"] == conv.id
    assert saved["downloads"]["visible"] and saved["dl_table_csv"]["visible"]  # the last answer has a table
    assert f"?conv={conv.id}&turn=2" in saved["answer_link"]

    # A reload: the last conversation, the last answer's sources and comparison.
    page = history.load(browser, request())
    assert page["conv"].id == conv.id and page["chatbot"] == conv.messages
    assert page["sources"] == page["conv"].turns[3].sources
    assert "绵阳市" in page["sources"] and page["comparison"]["visible"] is True
    assert page["browser_id"] == browser

    # A link to the first answer: its sources, no comparison, its downloads and link.
    linked = history.load(browser, request(conv=conv.id, turn="1"))
    assert "太原市" in linked["sources"] and 'id="src-2"' not in linked["sources"]
    assert linked["comparison"]["visible"] is False and not linked["dl_table_csv"]["visible"]
    assert linked["dl_answer_docx"].endswith("回答1.docx") and "turn=1" in linked["answer_link"]

    # Another browser (or user) gets a refusal, never the conversation.
    other = history.load("fedcba9876543210fedcba9876543210", request(conv=conv.id, turn="1"))
    assert other["conv"] == Conversation() and "只能打开自己的对话" in other["chatbot"][0]["content"]
    assert "只能打开自己的对话" in other["sources"] and not other["downloads"]["visible"]
    assert "无法打开" in history.load(browser, request("wang", conv=conv.id))["chatbot"][0]["content"]
    assert "没有这条对话" in history.load(browser, request(conv="0" * 32))["chatbot"][0]["content"]


def test_a_new_browser_gets_an_id_and_the_list_reopens_conversations(history):
    page = history.load(None, request())
    browser = page["browser_id"]
    assert len(browser) == 32 and page["chatbot"] == [] and not page["downloads"]["visible"]
    first, second = two_answers(), two_answers()
    history.save(first, browser, request())
    history.save(second, browser, request())
    listed = history.new_chat(browser, request())["history"]
    assert {value for _, value in listed["choices"]} == {first.id, second.id} and listed["value"] is None
    reopened = history.open(first.id, browser, request())
    assert reopened["conv"].id == first.id and reopened["history"]["value"] == first.id
    assert "无法打开" in history.open(first.id, "f" * 32, request())["chatbot"][0]["content"]


def test_downloads_follow_the_clicked_answer_and_hold_it(history, tmp_path):
    from docx import Document

    conv = two_answers()
    files = history.select_turn(conv, 1, request())
    doc = Document(files["dl_answer_docx"])
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "太原市2024年新收行政复议案件多少件？" in text and "1274件[1]。" in text and "[1] 《太原市" in text
    assert not files["dl_table_csv"]["visible"]
    whole = Document(files["dl_conv_docx"])
    assert len(whole.tables) == 1 and len(whole.inline_shapes) == 1  # the comparison's table and chart
    md = open(files["dl_conv_md"], encoding="utf-8").read()
    assert "## 1. 太原市" in md and "## 2. 太原和绵阳" in md
    assert history.select_turn(Conversation(), None, request())["downloads"]["visible"] is False


def test_with_accounts_a_reader_keeps_conversations_that_follow_them(tmp_path, store):
    from rag.accounts import Accounts

    Accounts(tmp_path / "users.toml").add("reader1", "reader", "reader-password")
    services = Services(Settings(index_dir=str(tmp_path / "index"), llm="none", users_file=str(tmp_path / "users.toml")),
                        UploadPolicy(folder=tmp_path / "up"))
    history = HistoryHandlers(services, store=store, downloads=Downloads(tmp_path / "downloads"))
    conv = two_answers()
    history.save(conv, "a" * 32, request("reader1"))
    assert [c.id for c in store.list("user:reader1")] == [conv.id]  # the user's, not the browser's
    elsewhere = history.load("b" * 32, request("reader1", session="s2"))  # another browser, same user
    assert elsewhere["conv"].id == conv.id and len(elsewhere["chatbot"]) == 4
    gone = history.load("b" * 32, request("someone-removed", conv=conv.id))
    assert "无法打开" in gone["chatbot"][0]["content"] and gone["conv"] == Conversation()


def test_a_malformed_link_is_refused_and_never_shown(history, store):
    browser = "0123456789abcdef0123456789abcdef"
    conv = two_answers()
    history.save(conv, browser, request())
    # The chat renders the message as Markdown: the link's value must not reach it.
    for bad in ("[请重新登录](https://evil.example/login)", "![](https://tracker.example/p.png)",
                "<img src=https://tracker.example/p.png>", conv.id.upper(), conv.id + "0", conv.id[:31] + "\n0", "c1"):
        page = history.load(browser, request(conv=bad, turn="1"))
        shown = page["chatbot"][0]["content"] + page["sources"]
        assert "无法打开" in shown and "编号无效" in shown and page["conv"] == Conversation()
        assert "evil" not in shown and "tracker" not in shown and "](" not in shown.replace("**提示：**", "")
        assert bad.strip() not in shown
        opened = history.open(bad, browser, request())
        assert "编号无效" in opened["chatbot"][0]["content"] and "evil" not in opened["chatbot"][0]["content"]
    # A well-formed id that is not there: not found, the id not echoed either.
    missing = history.load(browser, request(conv="f" * 32))["chatbot"][0]["content"]
    assert "没有这条对话" in missing and "f" * 32 not in missing
    with pytest.raises(ConversationNotFound) as lost:
        store.get("[x](https://evil.example)", "user:li")
    assert "evil" not in str(lost.value)
    # ``turn`` is a small number; anything else shows the last answer.
    for turn in ("1](https://evil.example)", "-1", "1e3", "99999999999999999999", " 1 "):
        page = history.load(browser, request(conv=conv.id, turn=turn))
        assert page["conv"].id == conv.id and "evil" not in page["answer_link"]
    assert "turn=1" in history.load(browser, request(conv=conv.id, turn=" 1 "))["answer_link"]
    assert "turn=2" in history.load(browser, request(conv=conv.id, turn="1e3"))["answer_link"]


def test_reopening_never_blanks_the_browsers_id(history):
    browser = "0123456789abcdef0123456789abcdef"
    conv = two_answers()
    history.save(conv, browser, request())
    assert history.open(conv.id, browser, request())["browser_id"] == browser
    for missing in (None, "", "not-an-id"):
        assert "browser_id" not in history.open(conv.id, missing, request())  # left as the browser has it


def test_two_tabs_on_one_conversation_both_keep_their_answers(history, store):
    browser = "0123456789abcdef0123456789abcdef"
    conv = two_answers()
    history.save(conv, browser, request(session="tab1"))
    # Both tabs reopen the browser's latest conversation: the same id.
    tab1 = history.load(browser, request(session="tab1"))["conv"]
    tab2 = history.load(browser, request(session="tab2"))["conv"]
    assert tab1.id == tab2.id == conv.id
    record = answer_record("侯马市2023年新收行政复议案件多少件？", "120件[1]。", [CITATION])
    tab1 = answered(tab1, record["question"], "120件[1]", record)
    saved1 = history.save(tab1, browser, request(session="tab1"))
    assert "conv" not in saved1  # it only added to what was kept: the same record
    record2 = answer_record("太仓市2024年新收行政复议案件多少件？", "300件[1]。", [CITATION])
    tab2 = answered(tab2, record2["question"], "300件[1]", record2)
    saved2 = history.save(tab2, browser, request(session="tab2"))
    # The kept messages are not where tab 2's begin: tab 2's goes on under an id of its own.
    moved = saved2["conv"]
    assert moved.id != conv.id and len(moved.id) == 32 and moved.messages == tab2.messages
    assert saved2["history"]["value"] == moved.id and f"?conv={moved.id}&turn=3" in saved2["answer_link"]
    assert store.get(conv.id, "browser:" + browser).messages == tab1.messages  # tab 1's answers kept
    assert store.get(moved.id, "browser:" + browser).messages == tab2.messages  # and tab 2's
    # Tab 2's next saves, with the id it was given or (not given it yet) the old one, add to its record.
    record3 = answer_record("绵阳市2024年新收行政复议案件多少件？", "1472件[1]。", [CITATION])
    for base in (moved, tab2):
        more = answered(base, record3["question"], "1472件[1]", record3)
        again = history.save(more, browser, request(session="tab2"))
        assert again.get("conv", more).id == moved.id
        assert store.get(moved.id, "browser:" + browser).messages == more.messages
    assert len(store.list("browser:" + browser)) == 2
    assert store.get(conv.id, "browser:" + browser).messages == tab1.messages
    # One tab whose last answer was kept stopped, then whole (停止 as it finished): the same record.
    whole = tab1.settled(tab1.messages[:-1] + [assistant_message("120件[1]，全年。")])
    assert "conv" not in history.save(whole, browser, request(session="tab1"))
    assert store.get(conv.id, "browser:" + browser).messages == whole.messages
    assert len(store.list("browser:" + browser)) == 2


def test_downloads_of_one_session_never_remove_files_another_event_returned(tmp_path):
    downloads = Downloads(tmp_path / "downloads")
    conv = two_answers()
    # The save after an answer, a click on an earlier answer and the page's load: one session,
    # events that may run at once; each set's files are there after the next ones are written.
    first = downloads.update(conv, None, "s1")
    second = downloads.update(conv, 1, "s1")
    third = downloads.update(conv, 3, "s1")
    for files in (first, second, third):
        assert all(open(files[key], "rb").read() for key in ("dl_answer_docx", "dl_answer_md", "dl_conv_md"))
    assert len({files["dl_answer_docx"] for files in (first, second, third)}) == 3
    for _ in range(3):
        latest = downloads.update(conv, None, "s1")
    sets = [p for p in (tmp_path / "downloads" / "s1").iterdir()]
    assert len(sets) == KEEP_SETS and all(p.is_dir() for p in sets)  # the older sets are removed
    assert open(latest["dl_table_csv"]["value"], encoding="utf-8-sig").read()
    # Callers without a session share nothing.
    a, b = downloads.update(conv, None, None), downloads.update(conv, None, None)
    assert open(a["dl_answer_md"], encoding="utf-8").read() and open(b["dl_answer_md"], encoding="utf-8").read()
    assert os.path.dirname(os.path.dirname(a["dl_answer_md"])) != os.path.dirname(os.path.dirname(b["dl_answer_md"]))


def test_concurrent_downloads_of_one_session_all_find_their_files(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    downloads = Downloads(tmp_path / "downloads")
    conv = two_answers()

    def update(index):
        files = downloads.update(conv, index, "s1")
        return all(os.path.getsize(files[key]) for key in ("dl_answer_docx", "dl_conv_docx", "dl_conv_md"))

    with ThreadPoolExecutor(3) as pool:
        assert all(pool.map(update, [None, 1, 3]))
