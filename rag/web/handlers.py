"""What each event of the page does, without the page: plain methods over ``Services``.

A handler that updates several components returns (or yields) a dict ``{key: value}`` with a
key per component it changes; a component it leaves out stays as it is. The keys are the names
``layout`` gives the components (``chatbot``, ``sources``, ``comparison``...). Handlers with one
output return the value itself. Values are what Gradio takes: text, lists, tables, or
``gr.update(...)`` for a property (visibility, choices).
"""

from __future__ import annotations

import contextlib
# Not under TYPE_CHECKING: Gradio evaluates ask_api's hints to describe /ask.
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from rag.export import answer_record
from rag.ingest.pipeline import Ingestor
from rag.ingest.uploads import UploadPolicy, UploadRejected
from rag.retrieve.conversation import FollowUpRewriter
from rag.retrieve.hybrid import resolve_regions
from rag.types import AnswerResult
from rag.web.access import Refused
from rag.web.messages import EMPTY_INDEX, friendly_error, note_zh
from rag.web.render import (PENDING, answer_markdown, comparison_frames, library_row, render_sources, search_markdown,
                            sources_message, upload_confirmation, where)
from rag.web.backend import Services
from rag.web.state import Conversation, Turn, assistant_message
from rag.web.streaming import background_stream

LOCK_POLL_S = 0.5  # how often a question waiting for the bundled model checks whether it was stopped
STATUS_TEXT = {"ingested": "已导入", "replaced": "已更新", "skipped": "未变化（已在库中）",
               "duplicate": "重复（库中已有相同内容）", "failed": "失败", "rejected": "已拒绝"}

Update = dict[str, Any]  # component key -> its new value


def _years(years: list[str] | None) -> list[int]:
    return [int(y) for y in years or [] if str(y).strip().isdigit()]


def comparison_update(table: dict | None) -> Update:
    """The comparison area for a result's table: shown with its table and chart, or hidden."""
    frames = comparison_frames(table)
    if frames is None:
        return {"comparison": gr.update(visible=False)}
    rows, bars, heading, axis = frames
    if table.get("kind") == "trend":  # one place over several years: a line, not bars
        return {"comparison": gr.update(visible=True), "compare_heading": heading, "compare_table": rows,
                "compare_plot": gr.update(visible=False), "trend_plot": trend_update(table, axis)}
    return {"comparison": gr.update(visible=True), "compare_heading": heading, "compare_table": rows,
            "compare_plot": plot_update(bars, axis), "trend_plot": gr.update(visible=False)}


def trend_update(table: dict, axis: str) -> dict:
    """The line chart of a trend table: a point per year that gives a figure (a year whose report
    does not mention it has none), a fall below zero. Units follow the series' changes (件 and 个
    together, ``rag.answer.trend.units_agree``); figures whose units do not agree get no chart."""
    from rag.answer.trend import signed_value, units_agree

    rows = [r for r in table.get("rows", []) if r.get("found") and r.get("value") is not None and r.get("year")]
    points = [[f"{r['year']}年", float(signed_value(r["value"], r.get("qualifiers")))] for r in rows]
    if not points or not units_agree(r.get("unit") for r in rows):
        return gr.update(visible=False)
    return gr.update(value=pd.DataFrame(points, columns=["年份", "数值"]), x="年份", y="数值", y_title=axis,
                     x_title="", visible=True)


def plot_update(bars: pd.DataFrame, axis: str) -> dict:
    """The bar chart for the numeric rows; bars start at zero so that heights compare honestly."""
    if bars.empty:
        return gr.update(visible=False)
    top = float(bars["数值"].max()) or 1.0
    return gr.update(value=bars, x="地区", y="数值", y_title=axis, x_title="", y_lim=[0, top * 1.1], visible=True)


class ChatHandlers:
    """The 问答 tab: the streaming chat, 停止, clicking an earlier answer, and ``/ask``."""

    def __init__(self, services: Services):
        self.services = services

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
                yield EMPTY_INDEX, None, None
                return
            text = (question or "").strip()
            standalone = FollowUpRewriter(lambda: services.retriever.analyzer).run(text, list(history or [])) \
                if history and text else text
            answerer, answer_mode = services.modes.answerer(mode or services.modes.default)
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
                                             years=_years(years) or None):
                    if isinstance(event, str):
                        streamed += event
                        yield streamed, None, standalone
                    else:
                        yield event.answer, event, standalone
            finally:
                if lock is not None:
                    lock.release()
        except Exception as exc:  # shown in the page, never as a traceback
            yield friendly_error(exc, self.services.settings), None, None

    def respond(self, question: str, conv: Conversation | None, regions: list[str] | None,
                years: list[str] | None, mode: str | None) -> Iterator[Update]:
        """The chat event: the answer streams into the chat, then come its sources and comparison.

        Yields updates of ``question, chatbot, sources, comparison, compare_heading,
        compare_table, compare_plot, conv``; one with only ``conv`` while nothing new has come
        (a step at which 停止 can take effect).
        """
        conv = Conversation.of(conv)
        question = (question or "").strip()
        if not question:
            yield {"conv": conv}
            return
        conv = conv.asking(question)
        messages = conv.messages
        try:
            with self.services.access.question():  # fair use: a few questions at once per user
                yield from self._answering(question, conv, messages, regions, years, mode)
        except Refused as exc:  # raised before anything was answered
            messages[-1] = assistant_message(f"**提示：** {exc.message}")
            yield {"question": "", "chatbot": messages, "conv": conv.settled(messages)}

    def _answering(self, question: str, conv: Conversation, messages: list, regions: list[str] | None,
                   years: list[str] | None, mode: str | None) -> Iterator[Update]:
        """The rest of ``respond``, while the asker holds a question slot."""
        yield {"question": "", "chatbot": messages, "sources": sources_message("正在检索和回答…"),
               "comparison": gr.update(visible=False), "conv": conv}
        label = self.services.mode_choices().choice(mode).label
        final_text, result, standalone = "", None, None
        history = conv.standalone
        # Closed explicitly when 停止 closes this generator: the worker then lets go of the model.
        with contextlib.closing(background_stream(
                lambda stopped: self.answer_stream(question, regions, years, mode, history, stopped))) as events:
            for event in events:
                if event is None:
                    yield {"conv": conv}
                    continue
                text, result, standalone = event
                if result is None:
                    messages[-1] = assistant_message(text + " ▌")
                    final_text = text
                    yield {"chatbot": messages, "conv": conv}
        if result is None:  # an error or an empty index: the message is the answer
            messages[-1] = assistant_message(f"**提示：** {final_text}")
            yield {"chatbot": messages, "sources": render_sources(None), "comparison": gr.update(visible=False),
                   "conv": conv.settled(messages)}
            return
        rewritten = standalone if standalone and standalone != question else None
        messages[-1] = assistant_message(answer_markdown(result, label, rewritten))
        sources = render_sources(result)
        table = getattr(result, "table", None)
        turn = Turn(sources, table, answer_record(result, question))  # the record: for downloads and keeping
        yield {"chatbot": messages, "sources": sources, **comparison_update(table),
               "conv": conv.answered(messages, result.question, turn)}

    @staticmethod
    def stop(conv: Conversation | None) -> Update:
        """停止: the answer being written ends as it is, marked 已停止 (updates chatbot, sources, conv)."""
        conv = Conversation.of(conv)
        if not conv.pending:
            return {"conv": conv}
        messages = list(conv.messages)
        if messages and messages[-1]["role"] == "assistant":
            text = str(messages[-1]["content"]).removesuffix(" ▌")
            messages[-1] = assistant_message(f"{text}\n\n*（已停止）*")
        return {"chatbot": messages, "sources": sources_message("回答已停止。"), "conv": conv.settled(messages)}

    @staticmethod
    def show_turn(conv: Conversation | None, index: int | None) -> Update:
        """Clicking the message at ``index`` shows its answer's sources and comparison again."""
        turn = Conversation.of(conv).turns.get(index) if index is not None else None
        if turn is None:
            return {}
        return {"sources": turn.sources, **comparison_update(turn.table)}

    @staticmethod
    def reset() -> Update:
        """新对话 (or clearing the chat): an empty chat and sources panel."""
        return {"chatbot": [], "conv": Conversation(), "sources": render_sources(None),
                "comparison": gr.update(visible=False)}

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
        try:
            with self.services.access.question():  # fair use: a few questions at once per user
                yield from self._ask(question, regions, years, mode, history)
        except Refused as exc:  # raised before anything was answered
            yield {"question": question, "answer": exc.message, "error": True, "partial": False}

    def _ask(self, question: str, regions: list[str] | None, years: list[int] | None, mode: str,
             history: list[str] | None) -> Iterator[dict]:
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


class SearchHandler:
    """The 检索原文 tab and ``/search``."""

    def __init__(self, services: Services):
        self.services = services

    def search(self, query: str, regions: list[str], years: list[str]) -> str:
        """Passages for a query, as Markdown (the 检索原文 tab and ``/search``)."""
        if not query or not query.strip():
            return "请输入要检索的内容。"
        try:
            services = self.services.ready()
            if not services.index.reports():
                return EMPTY_INDEX
            passages = services.retriever.passages(query, k=5, regions=regions or None,
                                                   years=_years(years) or None)
        except Exception as exc:  # shown in the page, never as a traceback
            return f"⚠️ {friendly_error(exc, self.services.settings)}"
        if not passages:
            return "没有找到相关段落。"
        return search_markdown(passages)


class LibraryHandlers:
    """The 报告库 tab (the reports, corrections, removal) and the status line."""

    def __init__(self, services: Services):
        self.services = services

    def _reports(self) -> list:
        """The indexed reports; none when the index cannot be reached (the status line says why)."""
        try:
            return self.services.ready().index.reports()
        except Exception:
            return []

    def choices(self) -> tuple[list[str], list[str]]:
        """The places and years (newest first) the filters offer."""
        reports = self._reports()
        return (sorted({r.region for r in reports if r.region}),
                [str(y) for y in sorted({r.year for r in reports if r.year}, reverse=True)])

    def status_line(self) -> str:
        """One line under the title: what is indexed (or what is wrong)."""
        try:
            reports = self.services.ready().index.reports()
        except Exception as exc:
            return f"⚠️ {friendly_error(exc, self.services.settings)}"
        if not reports:
            return "⚠️ 索引中还没有报告：请在「报告库」上传报告，或运行 `rag ingest data/reports`。"
        places = sorted({r.region for r in reports if r.region})
        years = sorted({r.year for r in reports if r.year})
        span = f"{years[0]}–{years[-1]}年" if len(years) > 1 else (f"{years[0]}年" if years else "年份未知")
        return (f"已收录 {len(reports)} 份报告（{sum(r.chunks for r in reports)} 个段落）：{len(places)} 个地区，{span}。"
                "每个事实都标注来源 [n]；报告中没有的会明确说“未提及”。")

    def library_rows(self) -> list[list]:
        """The library table: 地区, 年份, 标题, 片段数, 加入时间, 来源文件, doc_id."""
        # Grouped by place, then year (several years of one place read as a series); low-confidence
        # ones marked 待确认.
        reports = sorted(self._reports(), key=lambda r: (r.region or "\uffff", r.year or 0, r.doc_id))
        return [library_row(r) for r in reports]

    def report_options(self) -> list[tuple[str, str]]:
        """The report picker's (label, doc_id) pairs."""
        return [(f"{PENDING} · " * r.unconfirmed + f"{r.region or '地区未知'} · {r.year or '年份未知'} · {r.title or r.source}",
                 r.doc_id) for r in self._reports()]

    def refreshed(self) -> Update:
        """After any change to the library: the table, the report picker, the filters, the status."""
        regions, years = self.choices()
        return {"library": self.library_rows(), "report": gr.update(choices=self.report_options(), value=None),
                "ask_regions": gr.update(choices=regions), "ask_years": gr.update(choices=years),
                "search_regions": gr.update(choices=regions), "search_years": gr.update(choices=years),
                "fig_regions": gr.update(choices=regions), "fig_years": gr.update(choices=years),
                "status": self.status_line(), "audit": self.audit_rows()}

    def audit_rows(self, limit: int = 200) -> list[list]:
        """The audit log, newest first: 时间, 用户, 途径, 操作, doc_id, 变更 (``/audit``)."""
        from rag.index.audit import ACTIONS_ZH

        try:
            entries = self.services.ready().index.audit.entries(limit=limit)
        except Exception:  # the status line says why the index cannot be reached
            return []
        return [[e.at[:19].replace("T", " "), e.actor, e.via, ACTIONS_ZH.get(e.action, e.action), e.doc_id,
                 e.changes()] for e in reversed(entries)]

    def remove(self, doc_id: str | None, request: gr.Request = None) -> str:
        """Remove a report from the index (and its stored upload); editors and admins only."""
        self.services.access.check(request, "editor", "删除报告")
        if not doc_id:
            return "请先选择一份报告。"
        try:
            index = self.services.ready().index
            record = index.report(doc_id)
            if record is None:
                return f"库中没有这份报告（{doc_id}）。"
            with self.services.access.acting(request):  # the audit log names the asker
                index.remove_report(doc_id)
        except Exception as exc:
            return f"⚠️ {friendly_error(exc, self.services.settings)}"
        source = Path(record.source)
        if self.services.uploads.contains(source) and source.is_file():
            source.unlink()  # an uploaded copy: it was only kept for this report
        return f"已删除：{where(record.region, record.year, record.title)}"

    def correct(self, doc_id: str | None, region: str | None, year: float | str | None,
                request: gr.Request = None) -> str:
        """Correct a report's place and year (no re-embedding); editors and admins only."""
        self.services.access.check(request, "editor", "更正报告")
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
            with self.services.access.acting(request):  # the audit log names the asker
                record = self.services.ready().index.update_report(doc_id, **fields)
        except KeyError:
            return f"库中没有这份报告（{doc_id}）。"
        except Exception as exc:
            return f"⚠️ {friendly_error(exc, self.services.settings)}"
        return f"已更正：{where(record.region, record.year, record.title)}"

    def selected_report(self, doc_id: str | None) -> Update:
        """The place and year of the chosen report, to fill the correction fields."""
        try:
            record = self.services.ready().index.report(doc_id) if doc_id else None
        except Exception:
            record = None
        if record is None:
            return {"fix_region": "", "fix_year": None}
        return {"fix_region": record.region or "", "fix_year": record.year}


class UploadHandler:
    """The 报告库 tab's uploads: stored under the upload policy's folder, then ingested."""

    def __init__(self, services: Services):
        self.services = services

    def upload(self, files: list | None, progress: gr.Progress = gr.Progress(),
               request: gr.Request = None) -> Iterator[list[list]]:
        """Store and ingest uploaded files one by one; yields the per-file results table. Editors and admins only."""
        self.services.access.check(request, "editor", "上传报告")
        rows: list[list] = []
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files or []]
        if not paths:
            yield [["", "未选择文件", "", "", "", "请先选择要上传的报告文件"]]
            return
        try:
            services = self.services.ready()
        except Exception as exc:
            yield [["", "失败", "", "", "", friendly_error(exc, self.services.settings)]]
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
                with self.services.access.acting(request):  # the audit log names the uploader
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
            return [name, STATUS_TEXT["rejected"], "", "", "", str(exc)]
        try:
            result = ingestor.run([stored]).results[0]
        except Exception as exc:
            stored.unlink(missing_ok=True)
            return [name, STATUS_TEXT["failed"], "", "", "", friendly_error(exc, self.services.settings)]
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
        # Never filed silently under a doubtful place: an unsure detection is marked and asked.
        region, confirm = upload_confirmation(result.region, result.confidence, result.evidence)
        if confirm and result.status in ("ingested", "replaced", "skipped"):
            remarks.append(confirm)
        return [name, STATUS_TEXT.get(result.status, result.status), region,
                result.year or "", result.chunks or "", "；".join(remarks)]
