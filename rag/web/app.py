"""The Gradio app: a cited chat over the indexed reports, passage search, and the report library.

Run with ``python app.py`` or ``rag serve`` (``make run`` does both the set-up and this).

Pages and endpoints:
- ``/``: three tabs. 问答: a streaming multi-turn chat (follow-ups such as "那绵阳呢？" are
  rewritten into standalone questions), the cited passages beside it with the cited sentences
  highlighted, comparison tables and bar charts, place/year filters and the answer mode.
  检索原文: passage search. 报告库: the reports, uploads, corrections, removal.
- ``/report/{doc_id}?chunk=N&hl=S-E``: a whole report, scrolled to passage N with the span
  S-E of it marked (the sources panel links here).
- API (``gradio_client``): ``/chat`` (the chat, streaming), ``/ask`` (one question, the
  result object of CONTRACT.md, streaming), ``/search``, ``/library``.

Everything that can fail (no index, a Chroma server that is down, a missing model, a bad
upload) is shown as a Chinese message in the page, never as a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

# No analytics or version-check calls: the app runs without network.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402
from fastapi import Request  # noqa: E402
from fastapi.responses import HTMLResponse  # noqa: E402
from fastapi.routing import APIRoute  # noqa: E402

from rag.ingest.loaders import SUPPORTED_SUFFIXES  # noqa: E402
from rag.ingest.pipeline import Ingestor  # noqa: E402
from rag.ingest.uploads import UploadPolicy, UploadRejected  # noqa: E402
from rag.answer.answerer import Answerer, QuestionError  # noqa: E402
from rag.types import AnswerResult  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.retrieve.conversation import FollowUpRewriter  # noqa: E402
from rag.answer.highlight import cited_text, highlight_spans  # noqa: E402
from rag.index.store import EmbeddingModelMismatch, IndexUnavailable, ReportIndex  # noqa: E402
from rag.answer.prompts import fixed_prompt_messages  # noqa: E402
from rag.models.chat import ChatModelUnavailable, make_chat_model  # noqa: E402
from rag.models.server import prestart_bundled_model  # noqa: E402
from rag.answer.notes import in_chinese  # noqa: E402
from rag.retrieve.hybrid import HybridRetriever, resolve_regions  # noqa: E402

log = logging.getLogger("govreport.app")

TITLE = "政府年度报告问答"
EXAMPLES = [  # fact, comparison, traditional characters, English
    ("事实", "太原市2024年新收行政复议案件多少件？"),
    ("对比", "太原和绵阳2024年新收行政复议案件各多少？哪个多？"),
    ("繁体", "太倉市2024年新收行政復議申請多少件？"),
    ("English", "How many legal aid cases did Mianyang handle in 2024?"),
]
LIBRARY_COLUMNS = ["地区", "年份", "标题", "片段数", "加入时间", "来源文件", "doc_id"]
UPLOAD_COLUMNS = ["文件", "结果", "地区", "年份", "片段数", "说明"]
COMPARE_COLUMNS = ["地区", "年份", "数值", "引用", "原文"]
CHAT_CONCURRENCY = 4  # answers at once per process (the bundled model itself answers one at a time)
LOCK_POLL_S = 0.5  # how often a question waiting for the bundled model checks whether it was stopped
HEARTBEAT_S = 0.2  # the chat's generator yields at least this often, so 停止 takes effect at once
NOT_MENTIONED = "未提及"
_STATUS_TEXT = {"ingested": "已导入", "replaced": "已更新", "skipped": "未变化（已在库中）",
                "duplicate": "重复（库中已有相同内容）", "failed": "失败", "rejected": "已拒绝"}

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


# --- answer modes --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModeChoice:
    """One answer mode the page offers."""

    key: str  # local | openai | extractive
    label: str  # the radio button's text
    description: str  # shown under the buttons: which model, where it runs


class AnswerModes:
    """The answer modes the settings allow, each with its answerer; chat models load on first use.

    Args:
        settings: the settings (``RAG_LLM`` decides which models are offered).
        retriever: the retriever every mode shares.
    """

    def __init__(self, settings: Settings, retriever: HybridRetriever):
        self.settings = settings
        self.retriever = retriever
        self._answerers: dict[str, Answerer] = {}
        self._load_lock = threading.Lock()
        # The bundled model's process answers one question at a time: others wait here, and are
        # told so, rather than silently in the model server's queue.
        self.model_lock = threading.Lock()
        self.choices: list[ModeChoice] = []
        self.unavailable: list[str] = []
        if settings.llm == "openai":
            if settings.llm_base_url and settings.llm_model:
                self.choices.append(ModeChoice("openai", f"托管模型（{settings.llm_model}）",
                                               f"**托管模型** `{settings.llm_model}`，OpenAI 兼容接口 "
                                               f"`{settings.llm_base_url}`。回答逐字生成，每个数字都与引用段落核对。"))
            else:
                self.unavailable.append("托管模型未配置（需要 RAG_LLM_BASE_URL 和 RAG_LLM_MODEL）")
        if settings.llm in ("local", "openai"):
            name = self._local_name()
            if name:
                self.choices.append(ModeChoice("local", "内置模型（本机）",
                                               f"**内置模型** {name}，llama.cpp 在本机运行，不联网。"
                                               "回答逐字生成，每个数字都与引用段落核对。"))
            elif settings.llm == "local":
                self.unavailable.append("内置模型未安装（运行 `make model` 安装）")
        self.choices.append(ModeChoice("extractive", "摘录原文（不用模型）",
                                       "**摘录原文**：不用模型，直接摘出报告中的原句并标注来源，最快。"))

    @staticmethod
    def _local_name() -> str | None:
        """The bundled model's display name, or None when it is not installed (cheap check)."""
        from rag.models.bundled import FILENAME, is_usable, model_path

        path = model_path()
        if not is_usable(path):
            return None
        bundled = path.name == FILENAME and not os.environ.get("RAG_LOCAL_MODEL")
        return "Qwen2.5-Coder-1.5B-Instruct（Q4_K_M）" if bundled else path.name

    @property
    def default(self) -> str:
        return self.choices[0].key

    def choice(self, key: str | None) -> ModeChoice:
        """The mode named ``key``; ``llm`` means the first model mode; unknown keys: the default."""
        if key == "llm":
            key = next((c.key for c in self.choices if c.key != "extractive"), "extractive")
        return next((c for c in self.choices if c.key == key), self.choices[0])

    def describe(self, key: str | None) -> str:
        """Markdown naming the model that answers in this mode (and what is not available)."""
        text = self.choice(key).description
        if self.unavailable:
            text += "\n\n" + "；".join(self.unavailable) + "。"
        return text

    def answerer(self, key: str) -> tuple[Answerer, str]:
        """The answerer for a mode and the answerer's own mode name (``llm`` or ``extractive``)."""
        key = self.choice(key).key
        with self._load_lock:
            if key not in self._answerers:
                chat_model, reason = None, None
                if key != "extractive":
                    try:
                        chat_model = make_chat_model(dataclasses.replace(self.settings, llm=key))
                    except ChatModelUnavailable as exc:
                        reason = str(exc)
                self._answerers[key] = Answerer(self.retriever, chat_model, unavailable_reason=reason)
        return self._answerers[key], ("extractive" if key == "extractive" else "llm")

    def lock_for(self, key: str) -> threading.Lock | None:
        """The lock to hold while this mode answers (only the bundled model needs one)."""
        return self.model_lock if self.choice(key).key == "local" else None

    def preload(self) -> None:
        """Start the default model in the background so the first question does not wait for it
        (the bundled model's process loads in a few seconds while the page is already served)."""
        if self.default == "extractive":
            return

        def load() -> None:
            answerer, _ = self.answerer(self.default)
            server = getattr(answerer.chat_model, "server", None)
            if server is None:  # a hosted model: nothing to load, and no request it did not ask for
                return
            try:
                # Each time the process starts, it reads the prompt's fixed part before any question.
                server.warm_up_with(fixed_prompt_messages())
                server.start_in_background()  # usually loading already (prestart_bundled_model)
                # The first question's one-off costs (tokenizer dictionary, gazetteer, the index
                # snapshot) are paid here, not by the first user.
                answerer.run("法治政府建设情况", mode="extractive")
            except Exception as exc:  # the first question then starts (or explains) the model
                log.warning("preloading the %s model: %s", self.default, exc)

        threading.Thread(target=load, daemon=True, name="model-preload").start()


# --- the services behind the page -------------------------------------------------------------


class Services:
    """The index, retriever and answer modes, opened lazily so that the page starts even when the
    index cannot be opened (a Chroma server that is down); each request tries again.

    Args:
        settings: where the index lives, which models to use.
        uploads: where uploaded reports are stored and what is accepted.
        embeddings: the embedding model (default: the one the settings name).
    """

    def __init__(self, settings: Settings, uploads: UploadPolicy, embeddings=None):
        self.settings = settings
        self.uploads = uploads
        self._embeddings = embeddings
        self._lock = threading.Lock()
        self.ingest_lock = threading.Lock()  # one upload batch at a time writes the index
        self.index: ReportIndex | None = None
        self.retriever: HybridRetriever | None = None
        self.modes: AnswerModes | None = None

    def ready(self) -> "Services":
        """Open the index if it is not open yet.

        Raises:
            IndexUnavailable, EmbeddingsError, EmbeddingModelMismatch: with the reason.
        """
        with self._lock:
            if self.index is None:
                from rag.services import open_index, query_embeddings

                if self._embeddings is None:
                    self._embeddings = query_embeddings(self.settings)
                index = open_index(self.settings, embeddings=self._embeddings)
                index.reports()  # reach the database now: a server that is down fails here
                self.retriever = HybridRetriever(index=index, k=8)
                self.modes = AnswerModes(self.settings, self.retriever)
                self.index = index
        return self

    def mode_choices(self) -> AnswerModes:
        """The answer modes (available even when the index is not: they depend on settings only)."""
        if self.modes is not None:
            return self.modes
        return AnswerModes(self.settings, None)  # type: ignore[arg-type] - no answers without an index


def friendly_error(exc: BaseException, settings: Settings) -> str:
    """A readable Chinese message for a failure; the details go to the server log."""
    if isinstance(exc, QuestionError):
        text = str(exc)
        if "empty" in text:
            return "请输入问题。"
        if "characters long" in text:
            return "问题太长了：请控制在 1000 字以内。"
        return f"无法提问：{text}"
    if isinstance(exc, EmbeddingModelMismatch):
        return ("索引是用另一个嵌入模型建立的，不能混用。请把 RAG_EMBEDDINGS 改回原来的设置，"
                f"或重建索引：`rag ingest data/reports --rebuild`。（{exc}）")
    server = settings.chroma_url
    text = f"{type(exc).__name__}: {exc}"
    if server and (isinstance(exc, IndexUnavailable) or re.search(r"connect|refused|unreachable|timed? ?out",
                                                                   text, re.I)):
        return (f"无法连接索引服务器 {server}：请确认 Chroma 服务器已启动"
                f"（`chroma run --path DIR --host 127.0.0.1 --port N`），或取消 RAG_CHROMA_URL 改用本地索引。")
    if isinstance(exc, IndexUnavailable):
        return f"无法打开索引 {settings.index_dir}：{exc}"
    log.error("request failed", exc_info=exc)
    return f"处理时出错（{type(exc).__name__}：{str(exc)[:200]}）。请稍后再试；问题持续时请查看服务器日志。"


def note_zh(note: str) -> str:
    """The answerer's note in Chinese (``rag.answer.notes``; text that is not a note is kept)."""
    return in_chinese(note)


# --- rendering ---------------------------------------------------------------------------------


def _where(region: str | None, year: int | None, title: str | None) -> str:
    parts = [region or "地区未知", f"{year}年" if year else "年份未知"]
    if title:
        parts.append(f"《{title}》")
    return " · ".join(parts)


def _marked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` as HTML with the spans wrapped in ``<mark>``; everything escaped."""
    out, pos = [], 0
    for start, end in spans:
        out.append(html.escape(text[pos:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


def chunk_number(chunk_id: str) -> int | None:
    """The chunk index at the end of a chunk id (``doc:version:00005`` -> 5)."""
    tail = (chunk_id or "").rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def render_sources(result: AnswerResult | None) -> str:
    """The sources panel: the cited passages, numbered as in the answer, cited sentences marked."""
    if result is None:
        return '<div class="src-empty">提问后，这里列出回答引用的原文段落，引用的句子会高亮显示。</div>'
    if not result.citations:
        return ('<div class="src-empty">这个回答没有引用段落'
                + ("（报告中没有找到依据）" if result.refused else "") + "。</div>")
    claims = cited_text(result.answer)
    cards = [f'<div class="src-count">共 {len(result.citations)} 个引用段落</div>']
    for c in result.citations:
        spans = highlight_spans(c.text, claims.get(c.n, []))
        meta = " · ".join(x for x in (c.section, f"第{c.page}页" if c.page else "") if x)
        link = ""
        n = chunk_number(c.chunk_id)
        if c.doc_id and n is not None:
            hl = ",".join(f"{s}-{e}" for s, e in spans)
            href = f"report/{html.escape(c.doc_id)}?chunk={n}" + (f"&amp;hl={hl}" if hl else "") + "#cited"
            link = f'<a class="src-open" href="{href}" target="_blank" rel="noopener">在全文中查看 ↗</a>'
        cards.append(
            f'<div class="src-card" id="src-{c.n}" data-n="{c.n}">'
            f'<div class="src-head"><span class="src-n">[{c.n}]</span>{html.escape(_where(c.region, c.year, c.title))}</div>'
            + (f'<div class="src-meta">{html.escape(meta)}</div>' if meta else "")
            + f'<div class="src-text">{_marked(c.text, spans)}</div>{link}</div>')
    return '<div class="sources">' + "".join(cards) + "</div>"


def comparison_frames(table: dict | None) -> tuple[pd.DataFrame, pd.DataFrame, str, str] | None:
    """The comparison table, the bar chart's rows (地区, 数值), a heading and the chart's axis
    title; None without a table.

    Rows a report does not mention show 未提及; only rows with a value in the table's unit are
    plotted (bars of different units side by side would mislead).
    """
    if not table or not table.get("rows"):
        return None
    unit = table.get("unit") or ""
    rows, plotted = [], []
    for r in table["rows"]:
        found = bool(r.get("found"))
        rows.append([r.get("region") or "地区未知", r.get("year") or "",
                     (r.get("figure") or "") if found else NOT_MENTIONED,
                     f"[{r['citation']}]" if found and r.get("citation") else "",
                     (r.get("sentence") or "") if found else ""])
        if found and r.get("value") is not None and (not unit or (r.get("unit") or unit) == unit):
            plotted.append(r)
    # The year goes into a bar's label only when the bars span several years.
    several_years = len({r.get("year") for r in plotted}) > 1
    bars = [[(r.get("region") or "地区未知") + (f"（{r['year']}）" if several_years and r.get("year") else ""),
             float(r["value"])] for r in plotted]
    metric = table.get("metric") or "数值"
    axis = metric + (f"（{unit}）" if unit else "")
    heading = f"**{metric}**" + (f"（{unit}）" if unit else "")
    if table.get("conclusion"):
        heading += f"\n\n{table['conclusion']}"
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS), pd.DataFrame(bars, columns=["地区", "数值"]), heading, axis


def answer_markdown(result: AnswerResult, mode_label: str, standalone: str | None) -> str:
    """The chat message for a finished answer: the answer, notes, and which mode answered."""
    parts = []
    if standalone:
        parts.append(f"*理解为：{standalone}*")
    parts.append(result.answer)
    parts.extend(f"> 注：{note_zh(n)}" for n in result.notes)
    # A question no passage supports is refused before any model is asked.
    used = "仅检索（未找到依据）" if result.refused else (mode_label if result.mode == "llm" else "摘录原文")
    parts.append(f"<sub>{used} · {result.latency_ms / 1000:.1f} 秒</sub>")
    return "\n\n".join(parts)


def report_page(index: ReportIndex, doc_id: str, chunk: int | None = None,
                marks: list[tuple[int, int]] | None = None) -> str | None:
    """A whole report as an HTML page, passage ``chunk`` marked (and ``marks`` inside it).

    Returns None when the report is not in the index.
    """
    record = index.report(doc_id)
    if record is None:
        return None
    docs = index.chunks(doc_id)
    # The chunks are slices of the cleaned text (overlapping by a sentence): put them back.
    size = max((int(d.metadata.get("char_end", 0)) for d in docs), default=0)
    buffer = ["\n"] * size
    exact = True
    for d in docs:
        start, end = int(d.metadata.get("char_start", 0)), int(d.metadata.get("char_end", 0))
        if end - start != len(d.page_content):
            exact = False
            break
        buffer[start:end] = d.page_content
    if not exact:  # offsets that do not fit: show the chunks one after another
        text = "\n".join(d.page_content for d in docs)
        starts, pos = {}, 0
        for d in docs:
            starts[int(d.metadata.get("chunk_index", 0))] = pos
            pos += len(d.page_content) + 1
        ranges = {k: (v, v + len(d.page_content)) for (k, v), d in zip(starts.items(), docs)}
    else:
        text = "".join(buffer)
        ranges = {int(d.metadata.get("chunk_index", 0)): (int(d.metadata["char_start"]), int(d.metadata["char_end"]))
                  for d in docs}
    level = [0] * len(text)  # 1: the cited passage, 2: a cited sentence in it
    if chunk is not None and chunk in ranges:
        start, end = ranges[chunk]
        level[start:end] = [1] * (end - start)
        for s, e in marks or []:
            s, e = max(0, min(s, end - start)), max(0, min(e, end - start))
            level[start + s:start + e] = [2] * (e - s)
    paragraphs, anchor_done = [], False
    pos = 0
    for line in text.split("\n"):
        runs, i = [], 0
        while i < len(line):
            j = i
            while j < len(line) and level[pos + j] == level[pos + i]:
                j += 1
            piece, lv = html.escape(line[i:j]), level[pos + i]
            if lv:
                anchor = "" if anchor_done else ' id="cited"'
                anchor_done = True
                piece = f'<span class="cited"{anchor}>' + (f"<mark>{piece}</mark>" if lv == 2 else piece) + "</span>"
            runs.append(piece)
            i = j
        if line.strip():
            paragraphs.append(f"<p>{''.join(runs)}</p>")
        pos += len(line) + 1
    title = html.escape(record.title or _where(record.region, record.year, None))
    info = html.escape(" · ".join(x for x in (record.region or "地区未知", f"{record.year}年" if record.year else "",
                                              record.source, f"{record.chunks} 个片段") if x))
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;
max-width:860px;margin:2em auto;padding:0 1em;line-height:1.8;color:#222}}
.info{{color:#666;font-size:.9em}} .cited{{background:#fff7e0}} mark{{background:#ffe58f}}
#cited{{scroll-margin-top:40vh}}</style></head>
<body class="report"><h1>{title}</h1><div class="info">{info}</div>{''.join(paragraphs)}</body></html>"""


# --- the app -----------------------------------------------------------------------------------


class GovReportApp:
    """The Gradio Blocks of the app and the services behind them.

    Args:
        settings: the settings (default: ``Settings.load()``).
        uploads: the upload policy (default: ``UploadPolicy.from_env()``).
        embeddings: the embedding model (tests pass the session's model).

    Example:
        >>> app = GovReportApp(Settings.load())
        >>> app.launch("127.0.0.1", 7860)
    """

    def __init__(self, settings: Settings | None = None, uploads: UploadPolicy | None = None,
                 embeddings=None):
        self.settings = settings or Settings.load()
        self.services = Services(self.settings, uploads or UploadPolicy.from_env(), embeddings)
        try:
            self.services.ready()
            self.startup_error = None
        except Exception as exc:  # the page opens anyway and says what is wrong
            self.startup_error = friendly_error(exc, self.settings)
        self.blocks = self._build()

    # --- helpers over the services --------------------------------------------------------

    def _choices(self) -> tuple[list[str], list[str]]:
        try:
            reports = self.services.ready().index.reports()
        except Exception:
            return [], []
        return (sorted({r.region for r in reports if r.region}),
                [str(y) for y in sorted({r.year for r in reports if r.year}, reverse=True)])

    def status_line(self) -> str:
        """One line under the title: what is indexed (or what is wrong)."""
        try:
            reports = self.services.ready().index.reports()
        except Exception as exc:
            return f"⚠️ {friendly_error(exc, self.settings)}"
        if not reports:
            return "⚠️ 索引中还没有报告：请在「报告库」上传报告，或运行 `rag ingest data/reports`。"
        places = sorted({r.region for r in reports if r.region})
        years = sorted({r.year for r in reports if r.year})
        span = f"{years[0]}–{years[-1]}年" if len(years) > 1 else (f"{years[0]}年" if years else "年份未知")
        return (f"已收录 {len(reports)} 份报告（{sum(r.chunks for r in reports)} 个段落）：{len(places)} 个地区，{span}。"
                "每个事实都标注来源 [n]；报告中没有的会明确说“未提及”。")

    def library_rows(self) -> list[list]:
        try:
            reports = self.services.ready().index.reports()
        except Exception:
            return []
        return [[r.region or "未知", r.year or "", r.title or "", r.chunks, (r.added_at or "").replace("T", " ")[:16],
                 r.source, r.doc_id] for r in reports]

    def report_options(self) -> list[tuple[str, str]]:
        try:
            reports = self.services.ready().index.reports()
        except Exception:
            return []
        return [(f"{r.region or '地区未知'} · {r.year or '年份未知'} · {r.title or r.source}", r.doc_id) for r in reports]

    # --- handlers ---------------------------------------------------------------------------

    def answer_stream(self, question: str, regions: list[str] | None, years: list[str] | None,
                      mode: str | None, history: list[str] | None = None,
                      stopped: Callable[[], bool] | None = None
                      ) -> Iterator[tuple[str, AnswerResult | None, str | None]]:
        """Answer a question (rewritten first when it follows up on ``history``).

        ``stopped`` says whether the asker has gone (停止); it is checked once the model is ours,
        before the model is asked.

        Yields ``(text so far, None, standalone)`` while the answer streams, then
        ``(message, result, standalone)``; failures end with ``(readable message, None, None)``.
        """
        try:
            services = self.services.ready()
            if not services.index.reports():
                yield "索引中还没有报告：请先在「报告库」上传报告，或运行 `rag ingest data/reports`。", None, None
                return
            text = (question or "").strip()
            standalone = FollowUpRewriter(lambda: services.retriever.analyzer).run(text, list(history or [])) \
                if history and text else text
            answerer, answer_mode = services.modes.answerer(mode or services.modes.default)
            year_numbers = [int(y) for y in years or [] if str(y).strip().isdigit()]
            lock = services.modes.lock_for(mode or services.modes.default)
            # Wait in short steps, yielding between them: a stopped request is closed at a yield
            # and must not go on to take the model after the user has left.
            while lock is not None and not lock.acquire(timeout=LOCK_POLL_S):
                yield "（排队中）模型正在回答其他问题，请稍候…", None, standalone
            try:
                if stopped is not None and stopped():
                    return
                streamed = ""
                for event in answerer.stream(standalone, mode=answer_mode, regions=regions or None,
                                             years=year_numbers or None):
                    if isinstance(event, str):
                        streamed += event
                        yield streamed, None, standalone
                    else:
                        yield event.answer, event, standalone
            finally:
                if lock is not None:
                    lock.release()
        except Exception as exc:  # shown in the page, never as a traceback
            yield friendly_error(exc, self.settings), None, None

    def _respond(self, question: str, conv: dict | None, regions, years, mode):
        """The chat event: stream the answer into the chat, then the sources and comparison."""
        conv = _fresh_conversation(conv)
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), conv
            return
        messages = conv["messages"] + [{"role": "user", "content": question}, {"role": "assistant", "content": "…"}]
        conv = {**conv, "messages": messages, "pending": True}
        hide = gr.update(visible=False)
        yield "", messages, '<div class="src-empty">正在检索和回答…</div>', hide, gr.skip(), gr.skip(), gr.skip(), conv
        label = self.services.mode_choices().choice(mode).label
        final_text, result, standalone = "", None, None
        history = conv["standalone"]
        # Closed explicitly when 停止 closes this generator: the worker then lets go of the model.
        with contextlib.closing(background_stream(
                lambda stopped: self.answer_stream(question, regions, years, mode, history, stopped))) as events:
            for event in events:
                if event is None:  # nothing new yet: a step at which 停止 can take effect
                    yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), conv
                    continue
                text, result, standalone = event
                if result is None:
                    messages[-1] = {"role": "assistant", "content": text + " ▌"}
                    final_text = text
                    yield gr.skip(), messages, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), conv
        rewritten = standalone if standalone and standalone != question else None
        if result is None:  # an error or an empty index: the message is the answer
            messages[-1] = {"role": "assistant", "content": f"**提示：** {final_text}"}
            sources = render_sources(None)
            conv = {**conv, "messages": messages, "pending": False}
            yield gr.skip(), messages, sources, hide, gr.skip(), gr.skip(), gr.skip(), conv
            return
        messages[-1] = {"role": "assistant", "content": answer_markdown(result, label, rewritten)}
        sources = render_sources(result)
        frames = comparison_frames(getattr(result, "table", None))
        turn = {"sources": sources, "table": getattr(result, "table", None)}
        conv = {**conv, "messages": messages, "pending": False,
                "standalone": conv["standalone"] + [result.question],
                "turns": {**conv["turns"], str(len(messages) - 1): turn}}
        if frames is None:
            yield gr.skip(), messages, sources, hide, gr.skip(), gr.skip(), gr.skip(), conv
        else:
            rows, bars, heading, axis = frames
            yield gr.skip(), messages, sources, gr.update(visible=True), heading, rows, _plot_update(bars, axis), conv

    @staticmethod
    def _stop(conv: dict | None):
        conv = _fresh_conversation(conv)
        messages = list(conv["messages"])
        if not conv.get("pending"):
            return gr.skip(), gr.skip(), conv
        if messages and messages[-1]["role"] == "assistant":
            text = str(messages[-1]["content"]).removesuffix(" ▌")
            messages[-1] = {"role": "assistant", "content": f"{text}\n\n*（已停止）*"}
        return messages, '<div class="src-empty">回答已停止。</div>', {**conv, "messages": messages, "pending": False}

    @staticmethod
    def _show_turn(conv: dict | None, evt: gr.SelectData):
        """Clicking an earlier answer shows its sources and comparison again."""
        conv = _fresh_conversation(conv)
        index = evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else None)
        turn = conv["turns"].get(str(index))
        if turn is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        frames = comparison_frames(turn.get("table"))
        if frames is None:
            return turn["sources"], gr.update(visible=False), gr.skip(), gr.skip(), gr.skip()
        rows, bars, heading, axis = frames
        return turn["sources"], gr.update(visible=True), heading, rows, _plot_update(bars, axis)

    def ask_api(self, question: str, regions: list[str] | None = None, years: list[int] | None = None,
                mode: str = "", history: list[str] | None = None) -> Iterator[dict]:
        """One question through the API: partial answers while it streams, then CONTRACT.md's result.

        Args:
            question: the question.
            regions: places to search (empty: the places the question names).
            years: years to search (empty: the years the question names).
            mode: ``local``, ``openai``, ``llm`` (the first model mode) or ``extractive``; empty: default.
            history: earlier standalone questions, for follow-ups ("那绵阳呢？").
        """
        for text, result, standalone in self.answer_stream(question, regions or [], [str(y) for y in years or []],
                                                           mode or None, history or []):
            if result is not None:
                data = result.to_dict()
                data["table"] = getattr(result, "table", None)
                data["notes_zh"] = [note_zh(n) for n in result.notes]
                yield {**data, "partial": False}
            elif standalone is None:  # a failure: the message is all there is
                yield {"question": question, "answer": text, "error": True, "partial": False}
            else:
                yield {"question": standalone, "answer": text, "partial": True}

    def search(self, query: str, regions: list[str], years: list[str]) -> str:
        """Passages for a query, as Markdown (the 检索原文 tab and ``/search``)."""
        if not query or not query.strip():
            return "请输入要检索的内容。"
        try:
            services = self.services.ready()
            if not services.index.reports():
                return "索引中还没有报告：请先在「报告库」上传报告，或运行 `rag ingest data/reports`。"
            year_numbers = [int(y) for y in years or [] if str(y).strip().isdigit()]
            passages = services.retriever.passages(query, k=5, regions=regions or None, years=year_numbers or None)
        except Exception as exc:  # shown in the page, never as a traceback
            return f"⚠️ {friendly_error(exc, self.settings)}"
        if not passages:
            return "没有找到相关段落。"
        blocks = []
        for n, p in enumerate(passages, 1):
            where = f"{p.region or '未知地区'} · {p.year or '年份未知'} · 《{p.title}》"
            section = f" · {p.section}" if p.section else ""
            page = f" · 第{p.page}页" if p.page else ""
            blocks.append(f"**[{n}] {where}{section}{page}**（相关度 {p.score:.2f}）\n\n> {p.text}")
        return "\n\n".join(blocks)

    def upload(self, files: list | None, progress=gr.Progress()):
        """Store and ingest uploaded files one by one; yields the per-file results table."""
        rows: list[list] = []
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files or []]
        if not paths:
            yield [["", "未选择文件", "", "", "", "请先选择要上传的报告文件"]]
            return
        try:
            services = self.services.ready()
        except Exception as exc:
            yield [["", "失败", "", "", "", friendly_error(exc, self.settings)]]
            return
        waited = not services.ingest_lock.acquire(blocking=False)
        if waited:
            progress(0, desc="等待另一批上传完成…")
            services.ingest_lock.acquire()
        try:
            ingestor = Ingestor(services.index, progress=False)
            for i, temp in enumerate(paths):
                name = Path(temp).name
                progress((i, len(paths)), desc=f"正在导入 {name}（{i + 1}/{len(paths)}）", unit="个文件")
                rows.append(self._ingest_upload(ingestor, services.uploads, temp, name))
                yield rows
            progress((len(paths), len(paths)), desc="完成")
        finally:
            services.ingest_lock.release()
        yield rows

    def _ingest_upload(self, ingestor: Ingestor, policy: UploadPolicy, temp: str, name: str) -> list:
        try:
            stored = policy.store(temp, name)
        except UploadRejected as exc:
            return [name, _STATUS_TEXT["rejected"], "", "", "", str(exc)]
        try:
            result = ingestor.run([stored]).results[0]
        except Exception as exc:
            stored.unlink(missing_ok=True)
            return [name, _STATUS_TEXT["failed"], "", "", "", friendly_error(exc, self.settings)]
        if result.status in ("failed", "duplicate", "skipped"):
            stored.unlink(missing_ok=True)  # nothing new was indexed from it: keep the folder clean
        remarks = []
        if result.status in ("ingested", "replaced"):
            remarks.append(f"保存为 {stored.name}")
            if not result.region:
                remarks.append("未识别出地区，请在下方更正")
            if not result.year:
                remarks.append("未识别出年份，请在下方更正")
        elif result.reason:
            remarks.append(result.reason)
        return [name, _STATUS_TEXT.get(result.status, result.status), result.region or "",
                result.year or "", result.chunks or "", "；".join(remarks)]

    def remove(self, doc_id: str | None) -> str:
        """Remove a report from the index (and its stored upload)."""
        if not doc_id:
            return "请先选择一份报告。"
        try:
            index = self.services.ready().index
            record = index.report(doc_id)
            if record is None:
                return f"库中没有这份报告（{doc_id}）。"
            index.remove_report(doc_id)
        except Exception as exc:
            return f"⚠️ {friendly_error(exc, self.settings)}"
        source = Path(record.source)
        if self.services.uploads.contains(source) and source.is_file():
            source.unlink()  # an uploaded copy: it was only kept for this report
        return f"已删除：{_where(record.region, record.year, record.title)}"

    def correct(self, doc_id: str | None, region: str | None, year) -> str:
        """Correct a report's place and year (no re-embedding)."""
        if not doc_id:
            return "请先选择一份报告。"
        fields = {}
        if region and region.strip():
            names = resolve_regions([region.strip()])
            fields["region"] = names[0] if len(names) == 1 else region.strip()
        if year not in (None, ""):
            try:
                number = int(float(year))
            except (TypeError, ValueError):
                return f"年份“{year}”不是数字。"
            if not 1949 <= number <= 2100:
                return f"年份 {number} 不合理：请填写报告所述的年份，例如 2024。"
            fields["year"] = number
        if not fields:
            return "请填写要更正的地区或年份。"
        try:
            record = self.services.ready().index.update_report(doc_id, **fields)
        except KeyError:
            return f"库中没有这份报告（{doc_id}）。"
        except Exception as exc:
            return f"⚠️ {friendly_error(exc, self.settings)}"
        return f"已更正：{_where(record.region, record.year, record.title)}"

    def selected_report(self, doc_id: str | None):
        """The place and year of the chosen report, to fill the correction fields."""
        try:
            record = self.services.ready().index.report(doc_id) if doc_id else None
        except Exception:
            record = None
        if record is None:
            return "", None
        return record.region or "", record.year

    # --- layout -----------------------------------------------------------------------------

    def _build(self) -> gr.Blocks:
        modes = self.services.mode_choices()
        regions, years = self._choices()
        policy = self.services.uploads
        with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
            conv = gr.State(_fresh_conversation(None))
            gr.Markdown(f"# {TITLE}", elem_classes="gr-app-header")
            status = gr.Markdown(self.startup_error and f"⚠️ {self.startup_error}" or self.status_line(),
                                 elem_classes="status-line", elem_id="status-line")
            with gr.Tabs():
                with gr.Tab("问答", id="chat"):
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=3, min_width=420):
                            chatbot = gr.Chatbot(
                                label="对话", show_label=False, elem_id="chatbot", height=520, layout="panel",
                                buttons=["copy", "copy_all"], feedback_options=None,
                                placeholder="**就已收录的法治政府建设年度报告提问**<br>回答中的 [n] 对应右侧的原文段落；"
                                            "可以接着追问，例如“那绵阳呢？”",
                                examples=[{"text": q, "display_text": f"{kind}：{q}"} for kind, q in EXAMPLES])
                            with gr.Row():
                                question = gr.Textbox(show_label=False, placeholder="输入问题，回车发送（例如：太原市2024年新收行政复议案件多少件？）",
                                                      scale=1, elem_id="question", max_length=1000, autofocus=True)
                                send = gr.Button("发送", variant="primary", scale=0, min_width=72, elem_id="send")
                                stop = gr.Button("停止", variant="stop", scale=0, min_width=72, elem_id="stop")
                                new_chat = gr.Button("新对话", scale=0, min_width=96, elem_id="new-chat")
                            with gr.Column(visible=False, elem_id="comparison") as compare_box:
                                compare_heading = gr.Markdown()
                                compare_table = gr.Dataframe(headers=COMPARE_COLUMNS, interactive=False, wrap=True,
                                                             label="各地对比", elem_id="compare-table")
                                compare_plot = gr.BarPlot(pd.DataFrame({"地区": [], "数值": []}), x="地区", y="数值",
                                                          label="对比图", elem_id="compare-plot", height=300)
                        with gr.Column(scale=2, min_width=320):
                            with gr.Accordion("回答方式与范围", open=True):
                                mode = gr.Radio([(c.label, c.key) for c in modes.choices], value=modes.default,
                                                label="回答方式", elem_id="mode")
                                model_info = gr.Markdown(modes.describe(modes.default), elem_id="model-info")
                                with gr.Row():
                                    ask_regions = gr.Dropdown(regions, multiselect=True, label="地区（可选）", allow_custom_value=True,
                                                              elem_id="filter-regions")
                                    ask_years = gr.Dropdown(years, multiselect=True, label="年份（可选）", allow_custom_value=True,
                                                            elem_id="filter-years")
                            gr.Markdown("### 来源")
                            sources = gr.HTML(render_sources(None), elem_id="sources", elem_classes="sources-panel")
                with gr.Tab("检索原文", id="search"):
                    with gr.Row():
                        query = gr.Textbox(label="检索内容", placeholder="例如：太原市新收行政复议案件", scale=4)
                        search_button = gr.Button("检索", variant="primary", scale=1)
                    with gr.Row():
                        search_regions = gr.Dropdown(regions, multiselect=True, label="地区", allow_custom_value=True)
                        search_years = gr.Dropdown(years, multiselect=True, label="年份", allow_custom_value=True)
                    results = gr.Markdown()
                    gr.Examples(["太原市新收行政复议案件", "行政机关负责人出庭应诉率", "太倉市人民調解"], inputs=query)
                with gr.Tab("报告库", id="library"):
                    library = gr.Dataframe(self.library_rows(), headers=LIBRARY_COLUMNS, interactive=False,
                                           wrap=True, elem_id="library", label="已收录的报告")
                    refresh = gr.Button("刷新", size="sm")
                    with gr.Row(equal_height=False):
                        with gr.Column():
                            gr.Markdown(f"#### 上传报告\n支持 {' '.join(SUPPORTED_SUFFIXES)}，可一次选多个文件；"
                                        f"单个文件不超过 {policy.max_mb:g} MB。地区和年份会自动识别，识别错了可在右侧更正。")
                            files = gr.File(file_count="multiple", file_types=list(SUPPORTED_SUFFIXES),
                                            label="选择文件", elem_id="upload-files")
                            ingest_button = gr.Button("导入", variant="primary", elem_id="ingest")
                            upload_results = gr.Dataframe(headers=UPLOAD_COLUMNS, interactive=False, wrap=True,
                                                          label="导入结果", elem_id="upload-results")
                        with gr.Column():
                            gr.Markdown("#### 更正或删除\n在表格中点选一份报告，或在下面选择。")
                            report = gr.Dropdown(self.report_options(), value=None, label="报告", elem_id="report-select",
                                                 allow_custom_value=True)
                            with gr.Row():
                                fix_region = gr.Textbox(label="地区", placeholder="例如：太原市", elem_id="fix-region")
                                fix_year = gr.Number(None, label="年份", precision=0, elem_id="fix-year")
                            with gr.Row():
                                save_fix = gr.Button("保存更正", elem_id="save-fix")
                                remove_button = gr.Button("删除报告", variant="stop", elem_id="remove-report")
                            library_message = gr.Markdown(elem_id="library-message")

            # Chat: Enter, the send button and the example questions all answer.
            chat_outputs = [question, chatbot, sources, compare_box, compare_heading, compare_table, compare_plot, conv]
            chat_inputs = [question, conv, ask_regions, ask_years, mode]
            sent = send.click(self._respond, chat_inputs, chat_outputs, api_name="chat",
                              concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
            entered = question.submit(self._respond, chat_inputs, chat_outputs, api_visibility="private",
                                      concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
            def example_text(evt: gr.SelectData) -> str:
                return evt.value["text"] if isinstance(evt.value, dict) else str(evt.value)

            picked = chatbot.example_select(example_text, None, question, queue=False, api_visibility="private").then(self._respond, chat_inputs, chat_outputs, api_visibility="private",
                   concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
            stop.click(self._stop, conv, [chatbot, sources, conv], cancels=[sent, entered, picked], queue=False,
                       api_visibility="private")
            chatbot.select(self._show_turn, conv, [sources, compare_box, compare_heading, compare_table, compare_plot],
                           queue=False, api_visibility="private")

            def reset():
                return [], _fresh_conversation(None), render_sources(None), gr.update(visible=False)

            new_chat.click(reset, None, [chatbot, conv, sources, compare_box], queue=False, api_visibility="private")
            chatbot.clear(reset, None, [chatbot, conv, sources, compare_box], queue=False, api_visibility="private")
            mode.change(modes.describe, mode, model_info, queue=False, show_progress="hidden",
                        api_visibility="private")

            gr.api(self.ask_api, api_name="ask", concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")

            search_button.click(self.search, [query, search_regions, search_years], results, api_name="search")
            query.submit(self.search, [query, search_regions, search_years], results, api_visibility="private")

            # Library: after any change, the table, the report list, the filters and the status follow.
            def refreshed():
                regions, years = self._choices()
                return (self.library_rows(), gr.update(choices=self.report_options(), value=None),
                        gr.update(choices=regions), gr.update(choices=years),
                        gr.update(choices=regions), gr.update(choices=years), self.status_line())

            after = [library, report, ask_regions, ask_years, search_regions, search_years, status]
            refresh.click(lambda: self.library_rows(), None, library, api_name="library")
            refresh.click(refreshed, None, after, api_visibility="private")
            ingest_button.click(self.upload, files, upload_results, api_name="upload", concurrency_limit=1,
                                concurrency_id="ingest").then(refreshed, None, after, api_visibility="private") \
                .then(lambda: None, None, files, api_visibility="private")
            report.change(self.selected_report, report, [fix_region, fix_year], queue=False, api_visibility="private")

            def pick_row(evt: gr.SelectData):
                # The clicked row as shown (the user may have sorted the table); doc_id is last.
                row = evt.row_value or []
                return row[-1] if row else gr.skip()

            library.select(pick_row, None, report, queue=False, api_visibility="private")
            save_fix.click(self.correct, [report, fix_region, fix_year], library_message, api_name="correct",
                           concurrency_id="ingest").then(refreshed, None, after, api_visibility="private")
            remove_button.click(self.remove, report, library_message, api_name="remove",
                                concurrency_id="ingest").then(refreshed, None, after, api_visibility="private")
        blocks.queue(default_concurrency_limit=CHAT_CONCURRENCY, max_size=64)
        return blocks

    # --- serving ----------------------------------------------------------------------------

    def _report_route(self, request: Request, doc_id: str):
        """``/report/{doc_id}?chunk=N&hl=S-E,...``: the whole report at a passage."""
        chunk = request.query_params.get("chunk", "")
        marks = [(int(a), int(b)) for a, b in re.findall(r"(\d{1,6})-(\d{1,6})", request.query_params.get("hl", ""))]
        try:
            page = report_page(self.services.ready().index, doc_id, int(chunk) if chunk.isdigit() else None, marks)
        except Exception as exc:
            return HTMLResponse(f"<p>{html.escape(friendly_error(exc, self.settings))}</p>", status_code=503)
        if page is None:
            return HTMLResponse(f"<p>库中没有这份报告（{html.escape(doc_id)}）。</p>", status_code=404)
        return HTMLResponse(page)

    def launch(self, host: str = "127.0.0.1", port: int = 7860, **kwargs):
        """Serve the app (``prevent_thread_lock=True`` returns at once; tests use it)."""
        theme = gr.themes.Soft(primary_hue="red", secondary_hue="amber",
                               font=["PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei",
                                     "system-ui", "sans-serif"],
                               font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
        routes = [APIRoute("/report/{doc_id}", self._report_route, methods=["GET"], response_class=HTMLResponse)]
        return self.blocks.launch(server_name=host, server_port=port, show_error=False, css=CSS, theme=theme,
                                  max_file_size=self.services.uploads.max_bytes,
                                  app_kwargs={"routes": routes}, **kwargs)

    def close(self) -> None:
        self.blocks.close()


def _plot_update(bars: pd.DataFrame, axis: str):
    """The bar chart for the numeric rows; bars start at zero so that heights compare honestly."""
    if bars.empty:
        return gr.update(visible=False)
    top = float(bars["数值"].max()) or 1.0
    return gr.update(value=bars, x="地区", y="数值", y_title=axis, x_title="", y_lim=[0, top * 1.1], visible=True)


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


_DONE = object()


def background_stream(produce: Callable[[Callable[[], bool]], Iterator], heartbeat: float = HEARTBEAT_S) -> Iterator:
    """Run a blocking stream in a worker thread; yield its items, and None every ``heartbeat``
    seconds while none comes.

    Gradio stops a generator only between two of its steps, and a step that waits for the model
    (loading it, reading the prompt) can take many seconds: the heartbeat keeps every step short,
    so 停止 ends the request at once. Closing this generator tells the worker to close the stream
    at its next item, which releases what the stream holds (the bundled model's lock).

    Args:
        produce: called in the worker with a function that says whether the consumer has gone
            (the stream checks it before starting expensive work), returns the stream.
        heartbeat: seconds between the None items while waiting.
    """
    items: queue.Queue = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        stream = produce(stop.is_set)
        try:
            for item in stream:
                if stop.is_set():
                    break
                items.put(item)
        except BaseException as exc:  # handed to the consumer
            items.put(_Failure(exc))
        finally:
            stream.close()
            items.put(_DONE)

    threading.Thread(target=work, daemon=True, name="answer-stream").start()
    try:
        while True:
            try:
                item = items.get(timeout=heartbeat)
            except queue.Empty:
                yield None
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()


def _fresh_conversation(conv: dict | None) -> dict:
    """One browser session's chat: the messages shown, the standalone questions asked, and the
    sources and comparison of each answer (by message position)."""
    if conv and "messages" in conv:
        return conv
    return {"messages": [], "standalone": [], "turns": {}, "pending": False}


def build_app(settings: Settings | None = None, uploads: UploadPolicy | None = None,
              embeddings=None) -> GovReportApp:
    """The app over the configured index (see ``GovReportApp``)."""
    return GovReportApp(settings, uploads, embeddings)


def serve(host: str = "127.0.0.1", port: int = 7860) -> None:
    """Start the app and block (``rag serve``, ``python app.py``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    prestart_bundled_model(warm_up=fixed_prompt_messages())  # usually done before this module was imported
    app = build_app()
    if app.services.modes is not None:
        app.services.modes.preload()
    app.launch(host, port)


if __name__ == "__main__":
    serve(os.environ.get("RAG_HOST", "127.0.0.1"), int(os.environ.get("RAG_PORT", "7860")))
