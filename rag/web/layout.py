"""The page: its components, one function an area, and which handler each event calls.

Components are kept in one dict by name (``ui["chatbot"]``); the names are the keys handlers
return their updates under (``handlers``), and ``_outputs`` turns an update into Gradio's
outputs in order, skipping what it leaves out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from rag.ingest.loaders import SUPPORTED_SUFFIXES
from rag.ingest.uploads import UploadPolicy
from rag.web.handlers import ChatHandlers, LibraryHandlers, SearchHandler, Update, UploadHandler
from rag.web.modes import AnswerModes
from rag.web.batch import BATCH_COLUMNS, BATCH_SUFFIXES, BatchHandler
from rag.web.figures_tab import EXPLORER_COLUMNS, EXPLORER_TYPES, SORT_CHOICES, FiguresHandler
from rag.web.render import COMPARE_COLUMNS, render_sources
from rag.web.downloads import DOWNLOAD_KEYS
from rag.web.history import RESTORE_KEYS, HistoryHandlers
from rag.web.state import Conversation
from rag.web.users import USER_COLUMNS, UserHandlers

TITLE = "政府年度报告问答"
EXAMPLES = [  # fact, comparison, traditional characters, English
    ("事实", "太原市2024年新收行政复议案件多少件？"),
    ("对比", "太原和绵阳2024年新收行政复议案件各多少？哪个多？"),
    ("繁体", "太倉市2024年新收行政復議申請多少件？"),
    ("English", "How many legal aid cases did Mianyang handle in 2024?"),
]
LIBRARY_COLUMNS = ["地区", "年份", "标题", "片段数", "加入时间", "来源文件", "doc_id"]
UPLOAD_COLUMNS = ["文件", "结果", "地区", "年份", "片段数", "说明"]
CHAT_CONCURRENCY = 4  # answers at once per process (the bundled model itself answers one at a time)

# What each event updates, in Gradio's order (the API's outputs, e.g. /chat's, follow this order).
CHAT_OUTPUTS = ("question", "chatbot", "sources", "comparison", "compare_heading", "compare_table", "compare_plot",
                "conv", "trend_plot")  # trend_plot last: the API's earlier output positions stay
TURN_OUTPUTS = ("sources", "comparison", "compare_heading", "compare_table", "compare_plot", "trend_plot")
STOP_OUTPUTS = ("chatbot", "sources", "conv")
RESET_OUTPUTS = ("chatbot", "conv", "sources", "comparison")
LIBRARY_OUTPUTS = ("library", "report", "ask_regions", "ask_years", "search_regions", "search_years", "status",
                   "audit", "fig_regions", "fig_years")  # the 数字浏览 filters when that tab is there
AUDIT_COLUMNS = ["时间（UTC）", "用户", "途径", "操作", "doc_id", "变更"]
FIX_OUTPUTS = ("fix_region", "fix_year")

CSS = """
.gr-app-header h1 { margin-bottom: 0.2em; }
.status-line { color: var(--body-text-color-subdued); font-size: 0.9em; }
.sources-panel { max-height: 640px; overflow-y: auto; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px;
            margin-bottom: 10px; background: var(--background-fill-primary); }
.src-head { font-weight: 600; }
.src-n { display: inline-block; min-width: 2em; color: var(--color-accent); }
.src-meta { color: var(--body-text-color-subdued); font-size: 0.85em; margin: 2px 0 6px; }
.src-text { line-height: 1.7; font-size: 0.95em; }
.src-text mark, .report mark { background: #ffe58f; padding: 0 1px; border-radius: 2px; }
.src-open { font-size: 0.85em; }
.src-empty { color: var(--body-text-color-subdued); }
#chatbot .linked-answer { outline: 2px solid var(--color-accent); border-radius: 8px; }
"""

UI = dict[str, Any]  # component name -> component


@dataclass
class Handlers:
    """What the page's events call, one object a tab (uploads apart: they have their own queue)."""

    chat: ChatHandlers
    search: SearchHandler
    library: LibraryHandlers
    upload: UploadHandler
    figures: FiguresHandler | None = None  # the 数字浏览 tab
    batch: BatchHandler | None = None  # the 批量提问 tab
    users: UserHandlers | None = None  # the 用户管理 panel (admins, when the app has accounts)


def _outputs(keys: Sequence[str], update: Update) -> tuple:
    """A handler's update as the event's outputs in order; a key it leaves out is skipped."""
    return tuple(update[key] if key in update else gr.skip() for key in keys)


def build_blocks(handlers: Handlers, modes: AnswerModes, uploads: UploadPolicy, status: str) -> gr.Blocks:
    """The page: a title, ``status`` under it, the 问答, 检索原文 and 报告库 tabs, and their events."""
    regions, years = handlers.library.choices()
    ui: UI = {}
    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        ui["conv"] = gr.State(Conversation())
        # Which browser this is, kept in its localStorage: whose conversations the page lists
        # when the app has no accounts (rag.web.history).
        ui["browser_id"] = gr.BrowserState("", storage_key=BROWSER_STORAGE_KEY, secret=BROWSER_STORAGE_SECRET)
        gr.Markdown(f"# {TITLE}", elem_classes="gr-app-header")
        ui["status"] = gr.Markdown(status, elem_classes="status-line", elem_id="status-line")
        if handlers.users is not None and handlers.users.enabled:
            _account_row(ui)
        with gr.Tabs():
            with gr.Tab("问答", id="chat"):
                _chat_tab(ui, modes, regions, years)
            with gr.Tab("检索原文", id="search"):
                _search_tab(ui, regions, years)
            if handlers.figures is not None:
                with gr.Tab("数字浏览", id="figures"):
                    _figures_tab(ui, handlers.figures, regions, years)
            if handlers.batch is not None:
                with gr.Tab("批量提问", id="batch"):
                    _batch_tab(ui, modes)
            with gr.Tab("报告库", id="library"):
                _library_tab(ui, handlers.library, uploads)
                if handlers.users is not None and handlers.users.enabled:
                    _users_panel(ui)
        chat_events = _wire_chat(ui, handlers.chat, modes)
        _wire_history(ui, blocks, HistoryHandlers(handlers.chat.services), chat_events)
        _wire_search(ui, handlers.search)
        _wire_library(ui, handlers.library, handlers.upload)
        if handlers.figures is not None:
            _wire_figures(ui, handlers.figures)
        if handlers.batch is not None:
            _wire_batch(ui, handlers.batch)
        if handlers.users is not None and handlers.users.enabled:
            _wire_users(ui, blocks, handlers.users)
    blocks.queue(default_concurrency_limit=CHAT_CONCURRENCY, max_size=64)
    return blocks


# --- the 问答 tab ------------------------------------------------------------------------------


def _chat_tab(ui: UI, modes: AnswerModes, regions: list[str], years: list[str]) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            _chat_column(ui)
        with gr.Column(scale=2, min_width=320):
            _options_column(ui, modes, regions, years)


def _chat_column(ui: UI) -> None:
    ui["chatbot"] = gr.Chatbot(
        label="对话", show_label=False, elem_id="chatbot", height=520, layout="panel",
        buttons=["copy", "copy_all"], feedback_options=None,
        placeholder="**就已收录的法治政府建设年度报告提问**<br>回答中的 [n] 对应右侧的原文段落；"
                    "可以接着追问，例如“那绵阳呢？”",
        examples=[{"text": q, "display_text": f"{kind}：{q}"} for kind, q in EXAMPLES])
    with gr.Row():
        ui["question"] = gr.Textbox(show_label=False, placeholder="输入问题，回车发送（例如：太原市2024年新收行政复议案件多少件？）",
                                    scale=1, elem_id="question", max_length=1000, autofocus=True)
        ui["send"] = gr.Button("发送", variant="primary", scale=0, min_width=72, elem_id="send")
        ui["stop"] = gr.Button("停止", variant="stop", scale=0, min_width=72, elem_id="stop")
        ui["new_chat"] = gr.Button("新对话", scale=0, min_width=96, elem_id="new-chat")
    _download_row(ui)
    with gr.Column(visible=False, elem_id="comparison") as ui["comparison"]:
        ui["compare_heading"] = gr.Markdown()
        ui["compare_table"] = gr.Dataframe(headers=COMPARE_COLUMNS, interactive=False, wrap=True,
                                           label="各地对比", elem_id="compare-table")
        ui["compare_plot"] = gr.BarPlot(pd.DataFrame({"地区": [], "数值": []}), x="地区", y="数值",
                                        label="对比图", elem_id="compare-plot", height=300)
        # One place over several years (a trend table): a line over the years instead of bars.
        ui["trend_plot"] = gr.LinePlot(pd.DataFrame({"年份": [], "数值": []}), x="年份", y="数值",
                                       label="逐年变化", elem_id="trend-plot", height=300, visible=False)


def _options_column(ui: UI, modes: AnswerModes, regions: list[str], years: list[str]) -> None:
    with gr.Accordion("回答方式与范围", open=True):
        ui["mode"] = gr.Radio([(c.label, c.key) for c in modes.choices], value=modes.default,
                              label="回答方式", elem_id="mode")
        ui["model_info"] = gr.Markdown(modes.describe(modes.default), elem_id="model-info")
        with gr.Row():
            ui["ask_regions"] = gr.Dropdown(regions, multiselect=True, label="地区（可选）", allow_custom_value=True,
                                            elem_id="filter-regions")
            ui["ask_years"] = gr.Dropdown(years, multiselect=True, label="年份（可选）", allow_custom_value=True,
                                          elem_id="filter-years")
    _history_box(ui)
    gr.Markdown("### 来源")
    ui["sources"] = gr.HTML(render_sources(None), elem_id="sources", elem_classes="sources-panel")


def _wire_chat(ui: UI, chat: ChatHandlers, modes: AnswerModes) -> dict[str, list]:
    """Wire the chat's events; returns them (``answered``: the three ways of asking,
    ``stopped``: 停止, ``reset``: 新对话 and clearing) for what follows them."""
    # The docstrings below are the API's descriptions of these endpoints (Gradio reads them).
    def respond(question, conv, regions, years, mode) -> Iterator[tuple]:
        """The chat event: stream the answer into the chat, then the sources and comparison."""
        # Closing this generator (停止) closes the handler's, which lets go of the model.
        with contextlib.closing(chat.respond(question, conv, regions, years, mode)) as updates:
            for update in updates:
                yield _outputs(CHAT_OUTPUTS, update)

    def example_text(evt: gr.SelectData) -> str:
        return evt.value["text"] if isinstance(evt.value, dict) else str(evt.value)

    def show_turn(conv, evt: gr.SelectData) -> tuple:
        """Clicking an earlier answer shows its sources and comparison again."""
        index = evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else None)
        return _outputs(TURN_OUTPUTS, chat.show_turn(conv, index))

    def stop(conv) -> tuple:
        return _outputs(STOP_OUTPUTS, chat.stop(conv))

    def reset() -> tuple:
        return _outputs(RESET_OUTPUTS, chat.reset())

    # Enter, the send button and the example questions all answer.
    inputs = [ui[k] for k in ("question", "conv", "ask_regions", "ask_years", "mode")]
    outputs = [ui[k] for k in CHAT_OUTPUTS]
    queued = {"concurrency_limit": CHAT_CONCURRENCY, "concurrency_id": "chat"}
    sent = ui["send"].click(respond, inputs, outputs, api_name="chat", **queued)
    entered = ui["question"].submit(respond, inputs, outputs, api_visibility="private", **queued)
    picked = ui["chatbot"].example_select(example_text, None, ui["question"], queue=False, api_visibility="private") \
        .then(respond, inputs, outputs, api_visibility="private", **queued)
    stopped = ui["stop"].click(stop, ui["conv"], [ui[k] for k in STOP_OUTPUTS], cancels=[sent, entered, picked],
                               queue=False, api_visibility="private")
    ui["chatbot"].select(show_turn, ui["conv"], [ui[k] for k in TURN_OUTPUTS], queue=False, api_visibility="private")
    resets = [event(reset, None, [ui[k] for k in RESET_OUTPUTS], queue=False, api_visibility="private")
              for event in (ui["new_chat"].click, ui["chatbot"].clear)]
    ui["mode"].change(modes.describe, ui["mode"], ui["model_info"], queue=False, show_progress="hidden",
                      api_visibility="private")
    gr.api(chat.ask_api, api_name="ask", **queued)
    return {"answered": [sent, entered, picked], "stopped": [stopped], "reset": resets}


# --- the 问答 tab: kept conversations, links to an answer, downloads (rag.web.history) ---------

# The browser's id is no secret (Gradio sends the key to the page): it only names whose
# conversations these are where everyone on the machine may use the app anyway (no accounts,
# loopback only). A fixed key keeps the id readable after the app restarts.
BROWSER_STORAGE_KEY = "govreport-rag-browser"
BROWSER_STORAGE_SECRET = "govreport-rag-browser-id"
# A link's answer (?turn=N, the N-th answer) is scrolled into view once the chat is restored.
SCROLL_TO_ANSWER_JS = """() => {
    const n = parseInt(new URLSearchParams(window.location.search).get("turn") || "0", 10);
    if (!n) return;
    setTimeout(() => {
        const bots = document.querySelectorAll("#chatbot [data-testid='bot']");
        const target = bots[n - 1];
        if (target) { target.scrollIntoView({block: "center"}); target.classList.add("linked-answer"); }
    }, 400);
}"""


def _download_row(ui: UI) -> None:
    # Filled after each answer, and when an earlier one is clicked: a DownloadButton sends the
    # file it already holds, so the files are written before anyone clicks.
    with gr.Row(visible=False, elem_id="downloads") as ui["downloads"]:
        ui["dl_answer_docx"] = gr.DownloadButton("下载本条回答 Word", size="sm", elem_id="dl-answer-docx")
        ui["dl_answer_md"] = gr.DownloadButton("下载本条回答 Markdown", size="sm", elem_id="dl-answer-md")
        ui["dl_conv_docx"] = gr.DownloadButton("下载整个对话 Word", size="sm", elem_id="dl-conv-docx")
        ui["dl_conv_md"] = gr.DownloadButton("下载整个对话 Markdown", size="sm", elem_id="dl-conv-md")
        ui["dl_table_csv"] = gr.DownloadButton("下载表格 CSV", size="sm", visible=False, elem_id="dl-table-csv")
        ui["dl_table_xlsx"] = gr.DownloadButton("下载表格 XLSX", size="sm", visible=False, elem_id="dl-table-xlsx")
    ui["answer_link"] = gr.Markdown(elem_id="answer-link", elem_classes="status-line")


def _history_box(ui: UI) -> None:
    with gr.Accordion("历史对话", open=True):
        ui["history"] = gr.Dropdown([], value=None, label="重新打开之前的对话（最近的在前）", elem_id="history",
                                    interactive=True)


def _turn_index(evt: gr.SelectData) -> int | None:
    """The clicked message's position in the chat."""
    return evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else None)


def _wire_history(ui: UI, blocks: gr.Blocks, history: HistoryHandlers, chat_events: dict[str, list]) -> None:
    # TURN_OUTPUTS is read here, when the page is built: whatever an answer shows beside it is
    # also what a restored answer shows.
    restore_keys = tuple(dict.fromkeys((*RESTORE_KEYS, *TURN_OUTPUTS)))
    restored = [ui[k] for k in restore_keys]
    save_keys = ("history", *DOWNLOAD_KEYS, "conv")  # conv: a new id when another tab moved on
    saved = [ui[k] for k in save_keys]

    def load(browser_id, request: gr.Request) -> tuple:
        return _outputs(restore_keys, history.load(browser_id, request))

    def reopen(conv_id, browser_id, request: gr.Request) -> tuple:
        return _outputs(restore_keys, history.open(conv_id, browser_id, request))

    def save(conv, browser_id, request: gr.Request) -> tuple:
        """Keep the conversation; the download buttons' files for its last answer (Word, Markdown,
        the whole conversation, the table as CSV and XLSX), and the link to that answer."""
        return _outputs(save_keys, history.save(conv, browser_id, request))

    def select_turn(conv, evt: gr.SelectData, request: gr.Request) -> tuple:
        return _outputs(DOWNLOAD_KEYS, history.select_turn(conv, _turn_index(evt), request))

    def new_chat(browser_id, request: gr.Request) -> tuple:
        return _outputs(("history", "downloads", "answer_link"), history.new_chat(browser_id, request))

    blocks.load(load, ui["browser_id"], restored, api_visibility="private") \
        .then(None, None, None, js=SCROLL_TO_ANSWER_JS, api_visibility="private")
    # After an answer (sent with the button: the API's /downloads, after /chat in the same session).
    for n, event in enumerate(chat_events["answered"] + chat_events["stopped"]):
        named = {"api_name": "downloads"} if n == 0 else {"api_visibility": "private"}
        event.then(save, [ui["conv"], ui["browser_id"]], saved, **named)
    ui["chatbot"].select(select_turn, ui["conv"], [ui[k] for k in DOWNLOAD_KEYS], api_visibility="private")
    ui["history"].input(reopen, [ui["history"], ui["browser_id"]], restored, api_visibility="private")
    for event in chat_events["reset"]:
        event.then(new_chat, ui["browser_id"], [ui[k] for k in ("history", "downloads", "answer_link")],
                   queue=False, api_visibility="private")


# --- the 检索原文 tab ----------------------------------------------------------------------------


def _search_tab(ui: UI, regions: list[str], years: list[str]) -> None:
    with gr.Row():
        ui["query"] = gr.Textbox(label="检索内容", placeholder="例如：太原市新收行政复议案件", scale=4)
        ui["search_button"] = gr.Button("检索", variant="primary", scale=1)
    with gr.Row():
        ui["search_regions"] = gr.Dropdown(regions, multiselect=True, label="地区", allow_custom_value=True)
        ui["search_years"] = gr.Dropdown(years, multiselect=True, label="年份", allow_custom_value=True)
    ui["results"] = gr.Markdown()
    gr.Examples(["太原市新收行政复议案件", "行政机关负责人出庭应诉率", "太倉市人民調解"], inputs=ui["query"])


def _wire_search(ui: UI, search: SearchHandler) -> None:
    inputs = [ui[k] for k in ("query", "search_regions", "search_years")]
    ui["search_button"].click(search.search, inputs, ui["results"], api_name="search")
    ui["query"].submit(search.search, inputs, ui["results"], api_visibility="private")


# --- the 报告库 tab ------------------------------------------------------------------------------


def _library_tab(ui: UI, library: LibraryHandlers, uploads: UploadPolicy) -> None:
    ui["library"] = gr.Dataframe(library.library_rows(), headers=LIBRARY_COLUMNS, interactive=False,
                                 wrap=True, elem_id="library", label="已收录的报告")
    ui["refresh"] = gr.Button("刷新", size="sm")
    with gr.Row(equal_height=False):
        with gr.Column():
            _upload_column(ui, uploads)
        with gr.Column():
            _correct_column(ui, library)
    with gr.Accordion("变更记录（谁在何时导入、更正、删除了哪份报告）", open=False):
        ui["audit"] = gr.Dataframe(library.audit_rows(), headers=AUDIT_COLUMNS, interactive=False, wrap=True,
                                   elem_id="audit-log", label="审计日志（最新在前）")


def _upload_column(ui: UI, uploads: UploadPolicy) -> None:
    gr.Markdown(f"#### 上传报告\n支持 {' '.join(SUPPORTED_SUFFIXES)}，可一次选多个文件；"
                f"单个文件不超过 {uploads.max_mb:g} MB。地区和年份会自动识别，识别错了可在右侧更正。")
    ui["files"] = gr.File(file_count="multiple", file_types=list(SUPPORTED_SUFFIXES),
                          label="选择文件", elem_id="upload-files")
    ui["ingest"] = gr.Button("导入", variant="primary", elem_id="ingest")
    ui["upload_results"] = gr.Dataframe(headers=UPLOAD_COLUMNS, interactive=False, wrap=True,
                                        label="导入结果", elem_id="upload-results")


def _correct_column(ui: UI, library: LibraryHandlers) -> None:
    gr.Markdown("#### 更正或删除\n在表格中点选一份报告，或在下面选择。")
    ui["report"] = gr.Dropdown(library.report_options(), value=None, label="报告", elem_id="report-select",
                               allow_custom_value=True)
    with gr.Row():
        ui["fix_region"] = gr.Textbox(label="地区", placeholder="例如：太原市", elem_id="fix-region")
        ui["fix_year"] = gr.Number(None, label="年份", precision=0, elem_id="fix-year")
    with gr.Row():
        ui["save_fix"] = gr.Button("保存更正", elem_id="save-fix")
        ui["remove"] = gr.Button("删除报告", variant="stop", elem_id="remove-report")
    ui["library_message"] = gr.Markdown(elem_id="library-message")


def _wire_library(ui: UI, library: LibraryHandlers, upload: UploadHandler) -> None:
    # After any change, the table, the report list, the filters and the status follow.
    keys = tuple(k for k in LIBRARY_OUTPUTS if k in ui)

    def refreshed() -> tuple:
        return _outputs(keys, library.refreshed())

    def selected_report(doc_id) -> tuple:
        return _outputs(FIX_OUTPUTS, library.selected_report(doc_id))

    def pick_row(evt: gr.SelectData):
        # The clicked row as shown (the user may have sorted the table); doc_id is last.
        row = evt.row_value or []
        return row[-1] if row else gr.skip()

    after = [ui[k] for k in keys]
    ui["refresh"].click(lambda: library.library_rows(), None, ui["library"], api_name="library")
    ui["refresh"].click(lambda: library.audit_rows(), None, ui["audit"], api_name="audit")
    ui["refresh"].click(refreshed, None, after, api_visibility="private")
    ui["ingest"].click(upload.upload, ui["files"], ui["upload_results"], api_name="upload", concurrency_limit=1,
                       concurrency_id="ingest").then(refreshed, None, after, api_visibility="private") \
        .then(lambda: None, None, ui["files"], api_visibility="private")
    ui["report"].change(selected_report, ui["report"], [ui[k] for k in FIX_OUTPUTS], queue=False,
                        api_visibility="private")
    ui["library"].select(pick_row, None, ui["report"], queue=False, api_visibility="private")
    fix_inputs = [ui[k] for k in ("report", "fix_region", "fix_year")]
    ui["save_fix"].click(library.correct, fix_inputs, ui["library_message"], api_name="correct",
                         concurrency_id="ingest").then(refreshed, None, after, api_visibility="private")
    ui["remove"].click(library.remove, ui["report"], ui["library_message"], api_name="remove",
                       concurrency_id="ingest").then(refreshed, None, after, api_visibility="private")


# --- accounts: who is logged in, logging out, and the admins' 用户管理 panel ---------------------


def _account_row(ui: UI) -> None:
    with gr.Row(elem_id="account-row"):
        ui["whoami"] = gr.Markdown(elem_classes="status-line", elem_id="whoami")
        # Gradio's own route: it clears the login cookie and goes back to the login page.
        ui["logout"] = gr.Button("退出登录", link="/logout", size="sm", scale=0, min_width=96, elem_id="logout")


def _users_panel(ui: UI) -> None:
    # Hidden until the page's load event finds the asker is an admin; the handlers check again.
    with gr.Accordion("用户管理（管理员）", open=False, visible=False, elem_id="users-panel") as ui["users_panel"]:
        ui["users"] = gr.Dataframe(headers=USER_COLUMNS, interactive=False, wrap=True, elem_id="users-table",
                                   label="账户（改动写入账户文件，用户下次请求起生效）")
        with gr.Row():
            ui["user_name"] = gr.Textbox(label="用户名", elem_id="user-name")
            ui["user_role"] = gr.Dropdown([("读者 reader：提问、检索、阅读", "reader"),
                                           ("编辑 editor：另可上传、更正、删除报告", "editor"),
                                           ("管理员 admin：另可管理用户", "admin")],
                                          value="reader", label="角色", elem_id="user-role")
            ui["user_password"] = gr.Textbox(label="密码（至少 8 个字符）", type="password", elem_id="user-password")
        with gr.Row():
            ui["user_replace"] = gr.Checkbox(False, label="替换已有用户（改角色或密码）", elem_id="user-replace")
            ui["user_add"] = gr.Button("添加用户", variant="primary", elem_id="user-add")
            ui["user_remove"] = gr.Button("删除用户", variant="stop", elem_id="user-remove")
        ui["user_message"] = gr.Markdown(elem_id="user-message")


def _wire_users(ui: UI, blocks: gr.Blocks, users: UserHandlers) -> None:
    def on_load(request: gr.Request):
        from rag.accounts import ROLE_ZH, AccountError

        name = getattr(request, "username", None)
        try:
            account = users.services.access.accounts.get(name) if name else None
        except AccountError:  # a users file broken by hand: the page opens, the panel stays hidden
            account = None
        who = f"当前用户：{name}（{ROLE_ZH[account.role]}）" if account else ""
        admin = users.is_admin(request)
        return who, gr.update(visible=admin), users.rows(request) if admin else []

    def pick_user(evt: gr.SelectData):
        row = evt.row_value or []
        return row[0] if row else gr.skip()

    def rows(request: gr.Request):
        return users.rows(request)

    blocks.load(on_load, None, [ui["whoami"], ui["users_panel"], ui["users"]], queue=False, api_visibility="private")
    ui["users"].select(pick_user, None, ui["user_name"], queue=False, api_visibility="private")
    add_inputs = [ui[k] for k in ("user_name", "user_role", "user_password", "user_replace")]
    added = ui["user_add"].click(users.add, add_inputs, ui["user_message"], api_name="users_add")
    added.then(lambda: "", None, ui["user_password"], queue=False, api_visibility="private")  # even when refused
    added.success(rows, None, ui["users"], api_visibility="private")
    ui["user_remove"].click(users.remove, ui["user_name"], ui["user_message"], api_name="users_remove") \
        .success(users.rows, None, ui["users"], api_visibility="private")
    gr.api(users.rows, api_name="users")


# --- the 数字浏览 tab ----------------------------------------------------------------------------

FIGURE_FILTERS = ("fig_regions", "fig_years", "fig_words", "fig_similar", "fig_sort")
FIGURE_FIX_OUTPUTS = ("fig_metric", "fig_value", "fig_unit", "fig_info")
# The sentence gets the room; the figure id, last, only names the row (for corrections).
EXPLORER_WIDTHS = ["6%", "5%", "15%", "6%", "4%", "7%", "6%", "24%", "9%", "6%", "12%"]


def _figures_tab(ui: UI, figures: FiguresHandler, regions: list[str], years: list[str]) -> None:
    gr.Markdown("导入报告时从原文中提取的每个数字：地区、年份、指标、数值、单位、限定词和原句；"
                "「在全文中查看」打开报告原文并标出这个数字。")
    with gr.Row():
        ui["fig_regions"] = gr.Dropdown(regions, multiselect=True, label="地区", allow_custom_value=True,
                                        elem_id="fig-regions")
        ui["fig_years"] = gr.Dropdown(years, multiselect=True, label="年份", allow_custom_value=True,
                                      elem_id="fig-years")
        ui["fig_sort"] = gr.Dropdown(SORT_CHOICES, value="reading", label="排序", elem_id="fig-sort")
    with gr.Row():
        ui["fig_words"] = gr.Textbox(label="指标关键词", placeholder="例如：行政复议 案件（多个词用空格隔开，繁简体均可）",
                                     elem_id="fig-words", scale=2)
        ui["fig_similar"] = gr.Textbox(label="按含义检索", placeholder="例如：行政复议案件数量（按指标的含义排序）",
                                       elem_id="fig-similar", scale=2)
        ui["fig_search"] = gr.Button("筛选", variant="primary", scale=0, min_width=96, elem_id="fig-search")
    rows, count = figures.figures([], [], "", "", "reading")  # the page opens with every figure
    ui["fig_count"] = gr.Markdown(count, elem_id="fig-count")
    ui["fig_table"] = gr.Dataframe(rows, headers=EXPLORER_COLUMNS, datatype=EXPLORER_TYPES, interactive=False,
                                   wrap=True, max_height=560, label="数字", elem_id="fig-table",
                                   column_widths=EXPLORER_WIDTHS)
    with gr.Row():
        ui["fig_csv"] = gr.Button("导出 CSV", size="sm", elem_id="fig-export-csv")
        ui["fig_xlsx"] = gr.Button("导出 XLSX", size="sm", elem_id="fig-export-xlsx")
    ui["fig_file"] = gr.File(label="导出的文件（按当前筛选，含全部匹配的行）", interactive=False, height=80,
                             elem_id="fig-file")
    with gr.Accordion("更正提取错误（需要编辑角色）", open=False, elem_id="fig-fix"):
        ui["fig_id"] = gr.Textbox(label="数字（在上表中点选一行）", elem_id="fig-id")
        ui["fig_info"] = gr.Markdown(elem_id="fig-info")
        with gr.Row():
            ui["fig_metric"] = gr.Textbox(label="指标", elem_id="fig-metric")
            ui["fig_value"] = gr.Number(None, label="数值", elem_id="fig-value")
            ui["fig_unit"] = gr.Textbox(label="单位", elem_id="fig-unit")
        with gr.Row():
            ui["fig_save"] = gr.Button("保存更正", elem_id="fig-save")
            ui["fig_remove"] = gr.Button("标为提取错误（删除）", variant="stop", elem_id="fig-remove")
        ui["fig_message"] = gr.Markdown(elem_id="fig-message")


def _wire_figures(ui: UI, figures: FiguresHandler) -> None:
    def export_csv(regions, years, metric, similar, sort) -> str:
        """Every figure the filters select, as a CSV file (UTF-8 with BOM)."""
        return figures.export("csv", regions, years, metric, similar, sort)

    def export_xlsx(regions, years, metric, similar, sort) -> str:
        """Every figure the filters select, as an Excel file."""
        return figures.export("xlsx", regions, years, metric, similar, sort)

    def pick_row(evt: gr.SelectData):
        row = evt.row_value or []  # the clicked row as shown; figure_id is last
        return row[-1] if row else gr.skip()

    def selected(figure_id) -> tuple:
        return _outputs(FIGURE_FIX_OUTPUTS, figures.selected(figure_id))

    inputs = [ui[k] for k in FIGURE_FILTERS]
    shown = [ui["fig_table"], ui["fig_count"]]
    ui["fig_search"].click(figures.figures, inputs, shown, api_name="figures")
    for box in (ui["fig_words"], ui["fig_similar"]):
        box.submit(figures.figures, inputs, shown, api_visibility="private")
    for dropdown in (ui["fig_regions"], ui["fig_years"], ui["fig_sort"]):
        dropdown.input(figures.figures, inputs, shown, api_visibility="private")
    ui["fig_csv"].click(export_csv, inputs, ui["fig_file"], api_name="export_figures_csv")
    ui["fig_xlsx"].click(export_xlsx, inputs, ui["fig_file"], api_name="export_figures_xlsx")
    gr.api(figures.rows_api, api_name="figure_rows")
    ui["fig_table"].select(pick_row, None, ui["fig_id"], queue=False, api_visibility="private")
    ui["fig_id"].change(selected, ui["fig_id"], [ui[k] for k in FIGURE_FIX_OUTPUTS], queue=False,
                        api_visibility="private")
    fix_inputs = [ui[k] for k in ("fig_id", "fig_metric", "fig_value", "fig_unit")]
    ui["fig_save"].click(figures.correct, fix_inputs, ui["fig_message"], api_name="correct_figure",
                         concurrency_id="ingest").then(figures.figures, inputs, shown, api_visibility="private")
    ui["fig_remove"].click(figures.remove, ui["fig_id"], ui["fig_message"], api_name="remove_figure",
                           concurrency_id="ingest").then(figures.figures, inputs, shown, api_visibility="private")


# --- the 批量提问 tab ----------------------------------------------------------------------------


def _batch_tab(ui: UI, modes: AnswerModes) -> None:
    gr.Markdown("上传一个问题文件，逐题回答，完成后下载 Excel（序号、问题、回答、来源、用时）。"
                "文件可以是每行一个问题的 .txt，第一列为问题的 .csv，或评测格式的 .jsonl"
                "（每行 `{\"question\": \"…\"}`；含 `must_include` 时同时判分，与 `rag eval` 相同）。")
    with gr.Row(equal_height=False):
        ui["batch_file"] = gr.File(file_types=list(BATCH_SUFFIXES), label="问题文件", elem_id="batch-file")
        with gr.Column():
            ui["batch_mode"] = gr.Radio([(c.label, c.key) for c in modes.choices], value=modes.default,
                                        label="回答方式", elem_id="batch-mode")
            ui["batch_start"] = gr.Button("开始", variant="primary", elem_id="batch-start")
            # Plain values (no gr.update) so that /batch gives scripts the file's path as it is.
            ui["batch_download"] = gr.DownloadButton("下载 Excel（答完后可用）", elem_id="batch-download")
    ui["batch_message"] = gr.Markdown(elem_id="batch-message")
    ui["batch_results"] = gr.Dataframe(headers=BATCH_COLUMNS, interactive=False, wrap=True, max_height=600,
                                       label="回答", elem_id="batch-results")


def _wire_batch(ui: UI, batch: BatchHandler) -> None:
    def run(file, mode, progress=gr.Progress(), request: gr.Request = None) -> Iterator[tuple]:
        """Answer every question of a file (a .txt/.csv list or a .jsonl question set); yields the
        results table, the .xlsx file once done, and a message."""
        yield from batch.run(file, mode, progress, request)

    ui["batch_start"].click(run, [ui["batch_file"], ui["batch_mode"]],
                            [ui["batch_results"], ui["batch_download"], ui["batch_message"]], api_name="batch",
                            concurrency_limit=1, concurrency_id="batch")
