"""The 数字浏览 tab: every figure extracted at ingest, filtered, searched, exported and corrected.

The rows come from ``rag.index.figures_query.query_figures`` (the same as ``rag figures``), the
files from ``rag.export.write_figures``; each row links to its passage in the whole-report view
(``/report/{doc_id}?chunk=N&hl=S-E#cited``, the sources panel's scheme). An editor (any user
when the app has no accounts) corrects a wrong extraction with ``ReportIndex.correct_figure``,
recorded in the audit log under the editor's name.
"""

from __future__ import annotations

import html
import json
import math
import time

import gradio as gr

from rag.export import FIGURE_STATUS_ZH, export_folder, figure_status, write_figures
from rag.index.figures_query import FigureFilter, FigureRow, query_figures
from rag.web.backend import Services
from rag.web.messages import EMPTY_INDEX, friendly_error

Update = dict  # component key -> its new value (as in rag.web.handlers)

# The explorer's table; figure_id last (a clicked row names its figure by it).
EXPLORER_COLUMNS = ["地区", "年份", "指标", "数值", "单位", "原文写法", "限定", "原句", "出处", "更正", "figure_id"]
EXPLORER_TYPES = ["str", "number", "str", "number", "str", "str", "str", "str", "html", "str", "str"]
SORT_CHOICES = [("报告顺序", "reading"), ("数值从大到小", "value_desc"), ("数值从小到大", "value_asc"),
                ("按指标名称", "metric"), ("按含义相近（需填写“按含义检索”）", "similarity")]
SHOWN_MAX = 1000  # rows the page shows at once (an export holds every matching row)
SIMILAR_SHOWN = 50  # rows a search by meaning shows: the closest ones


def _years(years: list | None) -> list[int]:
    return [int(y) for y in years or [] if str(y).strip().isdigit()]


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _original_text(meta: dict) -> str:
    """The figure as the report writes it (a correction keeps it in ``fix_original``)."""
    try:
        original = json.loads(meta.get("fix_original") or "{}")
    except ValueError:
        original = {}
    return original.get("text") or meta.get("text", "")


def explorer_row(row: FigureRow) -> list:
    """One figure as a row of the explorer's table (``EXPLORER_COLUMNS``)."""
    link = (f'<a href="{html.escape(row.link)}" target="_blank" rel="noopener" style="white-space: nowrap" '
            f'title="{html.escape(row.title or row.doc_id)}">在全文中查看 ↗</a>')
    return [row.region or "", row.year or "", row.metric, _number(row.value), row.unit, row.text, row.qualifiers,
            row.sentence, link, figure_status(row), row.id]


class FiguresHandler:
    """The 数字浏览 tab and its endpoints (``/figures``, ``/figure_rows``, ``/export_figures``,
    ``/correct_figure``, ``/remove_figure``)."""

    def __init__(self, services: Services):
        self.services = services

    def query(self, regions: list[str] | None, years: list | None, metric: str | None, similar: str | None,
              sort: str | None, limit: int | None = None) -> list[FigureRow]:
        """The figures the filters select, in the chosen order.

        Args:
            regions: places (太原 or 太原市); empty: all.
            years: report years; empty: all.
            metric: words the metric must contain (simplified or traditional alike).
            similar: a phrase to rank by meaning (the figures' metric vectors).
            sort: a key of ``SORT_CHOICES`` (similarity without ``similar``: reading order).
            limit: at most this many rows (None: all; a search by meaning: ``SIMILAR_SHOWN``).
        """
        index = self.services.ready().index
        similar = (similar or "").strip()
        sort = sort if sort in {k for _, k in SORT_CHOICES} else ""
        if sort == "similarity" and not similar:
            sort = "reading"  # nothing to be similar to: say so in the count line, show all
        wanted = FigureFilter(regions=list(regions or []), years=_years(years), metric=(metric or "").strip(),
                              similar=similar, sort=sort,
                              limit=limit if limit is not None else (SIMILAR_SHOWN if similar else None))
        return query_figures(index, wanted)

    def figures(self, regions: list[str] | None, years: list | None, metric: str | None, similar: str | None,
                sort: str | None) -> tuple[list[list], str]:
        """The explorer's table and its count line (the 筛选 button and ``/figures``).

        Args: as ``query``.

        Returns:
            (rows of ``EXPLORER_COLUMNS``, a line saying how many there are).
        """
        try:
            if not self.services.ready().index.reports():
                return [], EMPTY_INDEX
            rows = self.query(regions, years, metric, similar, sort)
        except Exception as exc:  # shown in the page, never as a traceback
            return [], f"⚠️ {friendly_error(exc, self.services.settings)}"
        shown = rows[:SHOWN_MAX]
        line = f"共 {len(rows)} 个数字"
        if (similar or "").strip():
            line = f"与“{similar.strip()}”含义最相近的 {len(rows)} 个数字（按相似度排序）"
        elif sort == "similarity":
            line += "（未填写“按含义检索”，按报告顺序排列）"
        if len(shown) < len(rows):
            line += f"，显示前 {len(shown)} 个（导出包含全部）"
        corrected = sum(1 for r in rows if r.status)
        if corrected:
            line += f"；其中 {corrected} 个经过人工更正"
        return [explorer_row(r) for r in shown], line + "。点选一行可查看或更正。"

    def rows_api(self, regions: list[str] | None = None, years: list[int] | None = None, metric: str = "",
                 similar: str = "", sort: str = "") -> list[dict]:
        """The figures as records (every field of ``rag figures --json``, with ``id`` and ``link``).

        Args:
            regions: places (太原 or 太原市); empty: all.
            years: report years; empty: all.
            metric: words the metric must contain.
            similar: a phrase to rank by meaning.
            sort: reading, value_desc, value_asc, metric or similarity.
        """
        return [{**r.to_dict(), "link": r.link} for r in self.query(regions, years, metric, similar, sort)]

    def export(self, fmt: str, regions: list[str] | None, years: list | None, metric: str | None,
               similar: str | None, sort: str | None) -> str:
        """Every figure the filters select, written to a .csv (UTF-8 with BOM) or .xlsx file.

        Args:
            fmt: ``csv`` or ``xlsx``.
            regions, years, metric, similar, sort: as ``query``.

        Returns:
            the file's path (Gradio serves it as a download).
        """
        if fmt not in ("csv", "xlsx"):
            raise gr.Error(f"不支持的导出格式：{fmt}（可用 csv、xlsx）")
        try:
            rows = self.query(regions, years, metric, similar, sort)
        except Exception as exc:
            raise gr.Error(friendly_error(exc, self.services.settings)) from exc
        folder = export_folder("figures")  # in the temp folder, where Gradio serves files from
        return str(write_figures(folder / f"figures-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}", rows))

    # --- corrections -------------------------------------------------------------------------

    def selected(self, figure_id: str | None) -> Update:
        """The chosen figure's fields, to fill the correction form."""
        try:
            meta = self.services.ready().index.figure(figure_id) if figure_id else None
        except Exception:
            meta = None
        if meta is None:
            return {"fig_id": figure_id or "", "fig_metric": "", "fig_value": None, "fig_unit": "",
                    "fig_info": "在上表中点选一个数字。"}
        status = FIGURE_STATUS_ZH.get(meta.get("fix_status") or "", "")
        info = f"原句：{meta.get('sentence', '')}\n\n原文写法：**{_original_text(meta)}**"
        if status:
            now = f"为 {meta.get('text', '')}" if meta.get("fix_status") == "corrected" else ""
            info += f"（{status}{now}，{meta.get('fix_by', '')} {meta.get('fix_at', '')[:16].replace('T', ' ')}）"
        return {"fig_id": figure_id, "fig_metric": meta.get("metric", ""), "fig_value": _number(meta.get("value", 0)),
                "fig_unit": meta.get("unit", ""), "fig_info": info}

    def correct(self, figure_id: str | None, metric: str | None, value: float | str | None, unit: str | None,
                request: gr.Request = None) -> str:
        """Correct a wrongly extracted figure's metric, value or unit; editors and admins only.

        Args:
            figure_id: the figure (the table's last column).
            metric, value, unit: the corrected fields (empty: unchanged).
        """
        self.services.access.check(request, "editor", "更正数字")
        if not figure_id:
            return "请先在上表中点选一个数字。"
        try:
            number = float(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return f"数值“{value}”不是数字。"
        if number is not None and not math.isfinite(number):
            return f"数值“{value}”不是有效的数字：请填写一个有限的数值。"
        try:
            index = self.services.ready().index
            meta = index.figure(figure_id)
            if meta is None:
                return f"库中没有这个数字（{figure_id}）。"
            if meta.get("fix_status") == "removed":
                return (f"这个数字（{meta.get('text', '')}，{meta.get('metric', '')}）已被标为提取错误并删除，"
                        "不能再更正。")
            changes = {k: v for k, v in (("metric", (metric or "").strip() or None), ("value", number),
                                         ("unit", (unit or "").strip() or None)) if v is not None and v != meta.get(k)}
            if not changes:
                return "没有要更正的内容：请修改指标、数值或单位。"
            with self.services.access.acting(request):  # the audit log names the editor
                after = index.correct_figure(figure_id, **changes)
        except KeyError:
            return f"库中没有这个数字（{figure_id}），它所在的报告可能已更新。请重新筛选。"
        except Exception as exc:
            return f"⚠️ {friendly_error(exc, self.services.settings)}"
        return f"已更正：{after['metric']} {after.get('text', '')}（原文：{_original_text(after)}）。"

    def remove(self, figure_id: str | None, request: gr.Request = None) -> str:
        """Mark a figure as a wrong extraction: no longer shown, compared or exported; editors and admins only."""
        self.services.access.check(request, "editor", "删除数字")
        if not figure_id:
            return "请先在上表中点选一个数字。"
        try:
            index = self.services.ready().index
            with self.services.access.acting(request):  # the audit log names the editor
                after = index.correct_figure(figure_id, remove=True)
        except KeyError:
            return f"库中没有这个数字（{figure_id}），它所在的报告可能已更新。请重新筛选。"
        except Exception as exc:
            return f"⚠️ {friendly_error(exc, self.services.settings)}"
        return f"已标为提取错误并删除：{after.get('text', '')}（{after.get('metric', '')}）。审计日志中可查。"
