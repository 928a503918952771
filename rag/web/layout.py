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
from rag.web.render import COMPARE_COLUMNS, render_sources
from rag.web.state import Conversation

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
                "conv")
TURN_OUTPUTS = ("sources", "comparison", "compare_heading", "compare_table", "compare_plot")
STOP_OUTPUTS = ("chatbot", "sources", "conv")
RESET_OUTPUTS = ("chatbot", "conv", "sources", "comparison")
LIBRARY_OUTPUTS = ("library", "report", "ask_regions", "ask_years", "search_regions", "search_years", "status",
                   "audit")
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
"""

UI = dict[str, Any]  # component name -> component


@dataclass
class Handlers:
    """What the page's events call, one object a tab (uploads apart: they have their own queue)."""

    chat: ChatHandlers
    search: SearchHandler
    library: LibraryHandlers
    upload: UploadHandler


def _outputs(keys: Sequence[str], update: Update) -> tuple:
    """A handler's update as the event's outputs in order; a key it leaves out is skipped."""
    return tuple(update[key] if key in update else gr.skip() for key in keys)


def build_blocks(handlers: Handlers, modes: AnswerModes, uploads: UploadPolicy, status: str) -> gr.Blocks:
    """The page: a title, ``status`` under it, the 问答, 检索原文 and 报告库 tabs, and their events."""
    regions, years = handlers.library.choices()
    ui: UI = {}
    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        ui["conv"] = gr.State(Conversation())
        gr.Markdown(f"# {TITLE}", elem_classes="gr-app-header")
        ui["status"] = gr.Markdown(status, elem_classes="status-line", elem_id="status-line")
        with gr.Tabs():
            with gr.Tab("问答", id="chat"):
                _chat_tab(ui, modes, regions, years)
            with gr.Tab("检索原文", id="search"):
                _search_tab(ui, regions, years)
            with gr.Tab("报告库", id="library"):
                _library_tab(ui, handlers.library, uploads)
        _wire_chat(ui, handlers.chat, modes)
        _wire_search(ui, handlers.search)
        _wire_library(ui, handlers.library, handlers.upload)
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
    with gr.Column(visible=False, elem_id="comparison") as ui["comparison"]:
        ui["compare_heading"] = gr.Markdown()
        ui["compare_table"] = gr.Dataframe(headers=COMPARE_COLUMNS, interactive=False, wrap=True,
                                           label="各地对比", elem_id="compare-table")
        ui["compare_plot"] = gr.BarPlot(pd.DataFrame({"地区": [], "数值": []}), x="地区", y="数值",
                                        label="对比图", elem_id="compare-plot", height=300)


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
    gr.Markdown("### 来源")
    ui["sources"] = gr.HTML(render_sources(None), elem_id="sources", elem_classes="sources-panel")


def _wire_chat(ui: UI, chat: ChatHandlers, modes: AnswerModes) -> None:
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
    ui["stop"].click(stop, ui["conv"], [ui[k] for k in STOP_OUTPUTS], cancels=[sent, entered, picked], queue=False,
                     api_visibility="private")
    ui["chatbot"].select(show_turn, ui["conv"], [ui[k] for k in TURN_OUTPUTS], queue=False, api_visibility="private")
    for event in (ui["new_chat"].click, ui["chatbot"].clear):
        event(reset, None, [ui[k] for k in RESET_OUTPUTS], queue=False, api_visibility="private")
    ui["mode"].change(modes.describe, ui["mode"], ui["model_info"], queue=False, show_progress="hidden",
                      api_visibility="private")
    gr.api(chat.ask_api, api_name="ask", **queued)


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
    def refreshed() -> tuple:
        return _outputs(LIBRARY_OUTPUTS, library.refreshed())

    def selected_report(doc_id) -> tuple:
        return _outputs(FIX_OUTPUTS, library.selected_report(doc_id))

    def pick_row(evt: gr.SelectData):
        # The clicked row as shown (the user may have sorted the table); doc_id is last.
        row = evt.row_value or []
        return row[-1] if row else gr.skip()

    after = [ui[k] for k in LIBRARY_OUTPUTS]
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
