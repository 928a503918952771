"""Exports: answers, conversations and figure tables written to files people take elsewhere.

One module for ``rag ask --export``, ``rag figures --csv/--xlsx`` and the app's download
buttons. Answers go to Markdown or Word (.docx: python-docx) with the question, the answer,
its notes, the comparison table when there is one (in Word also its bar chart, from
``rag.answer.charts``) and a numbered source list; tables go to
CSV (UTF-8 with a BOM, so that Excel reads Chinese correctly) or .xlsx (openpyxl).

Example:
    >>> write_answer("answer.docx", result)
    PosixPath('answer.docx')
"""

from __future__ import annotations

import atexit
import csv
import io
import itertools
import json
import shutil
import tempfile
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import RagError

if TYPE_CHECKING:
    from rag.index.figures_query import FigureRow
    from rag.types import AnswerResult

ANSWER_FORMATS = (".md", ".docx", ".csv", ".xlsx")
CONVERSATION_FORMATS = (".md", ".docx")
TABLE_FORMATS = (".csv", ".xlsx")
FIGURE_COLUMNS = ["地区", "年份", "指标", "数值", "单位", "原文写法", "限定", "变化", "原句", "报告", "doc_id", "chunk_id",
                  "更正", "figure_id"]
FIGURE_STATUS_ZH = {"": "", "corrected": "已更正", "removed": "已删除"}
COMPARE_COLUMNS = ["地区", "年份", "数字（原文）", "数值", "单位", "指标", "来源", "原句"]
CITATION_COLUMNS = ["序号", "报告", "地区", "年份", "章节", "页码", "引文", "doc_id", "chunk_id", "来源文件"]
NOT_STATED = "未提及"
DOCX_FONT = "SimSun"  # East Asian font named in the .docx so Word shows Chinese in a Song face


class ExportError(RagError, ValueError):
    """A file could not be written: names the file and the reason."""


def _number(value: Any) -> Any:
    """1274.0 -> 1274 (an int for Excel), 74.3 stays; None and text pass through."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _suffix(path: str | Path, allowed: Sequence[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise ExportError(f"{path}: 不支持的导出格式 {suffix or '（无扩展名）'}，可用：{' '.join(allowed)}")
    return suffix


# --- answers as plain records ----------------------------------------------------------------


def answer_record(result: AnswerResult, asked: str | None = None) -> dict:
    """An answer as a plain dict (what the exports read; the app keeps it in the chat state).

    Args:
        result: the answer.
        asked: the question as the user typed it, when it was rewritten (a follow-up).
    """
    en = result.analysis is not None and result.analysis.language == "en"
    notes = [str(n) if en else getattr(n, "zh", str(n)) for n in result.notes]
    return {"question": result.question, "asked": asked if asked and asked != result.question else None,
            "answer": result.answer, "refused": result.refused, "mode": result.mode, "notes": notes,
            "table": result.table, "citations": [c.to_dict() for c in result.citations],
            "latency_ms": round(result.latency_ms, 1)}


def _record(answer: AnswerResult | dict) -> dict:
    return answer if isinstance(answer, dict) else answer_record(answer)


def _where(c: dict) -> str:
    """A citation's place, year, section and page: 太原市 2024年 （六）… 第3页."""
    return " ".join(x for x in (c.get("region") or "", f"{c['year']}年" if c.get("year") else "",
                                c.get("section") or "", f"第{c['page']}页" if c.get("page") else "") if x)


def comparison_rows(table: dict) -> list[list]:
    """A comparison table's rows (``COMPARE_COLUMNS``); 未提及 where a report gives no figure."""
    rows = []
    for row in table.get("rows", []):
        if row.get("found"):
            rows.append([row.get("region") or "", row.get("year") or "", row.get("figure") or "",
                         _number(row.get("value")), row.get("unit") or "", row.get("metric") or "",
                         f"[{row['citation']}]" if row.get("citation") else "", row.get("sentence") or ""])
        else:
            rows.append([row.get("region") or "", row.get("year") or "", NOT_STATED, "", "", "", "", ""])
    return rows


def citation_rows(citations: list[dict]) -> list[list]:
    """The citations as table rows (``CITATION_COLUMNS``)."""
    return [[c["n"], c.get("title") or c.get("doc_id") or "", c.get("region") or "", c.get("year") or "",
             c.get("section") or "", c.get("page") or "", c.get("text") or "", c.get("doc_id") or "",
             c.get("chunk_id") or "", c.get("source") or ""] for c in citations]


def answer_table(answer: AnswerResult | dict) -> tuple[list[str], list[list]]:
    """The table an answer's csv/xlsx export holds: its comparison table, else its citations."""
    record = _record(answer)
    if record.get("table"):
        return COMPARE_COLUMNS, comparison_rows(record["table"])
    return CITATION_COLUMNS, citation_rows(record["citations"])


# --- Markdown ----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _answer_md(record: dict, level: int = 1) -> list[str]:
    h = "#" * level
    lines = [f"{h} {record['question']}", ""]
    if record.get("asked"):
        lines += [f"> 提问：{record['asked']}（理解为：{record['question']}）", ""]
    lines += [record["answer"].strip(), ""]
    lines += [f"> 注：{note}" for note in record.get("notes") or []]
    if record.get("notes"):
        lines.append("")
    table = record.get("table")
    if table:
        lines += [f"{h}# 对比表：{table.get('metric', '')}", ""]
        lines += _md_table(COMPARE_COLUMNS, comparison_rows(table)) + [""]
        if table.get("conclusion"):
            lines += [f"结论：{table['conclusion']}", ""]
    if record.get("citations"):
        lines += [f"{h}# 来源", ""]
        for c in record["citations"]:
            text = (c.get("text") or "").strip().replace("\n", "\n   > ")
            lines += [f"{c['n']}. 《{c.get('title') or c.get('doc_id')}》 {_where(c)}", f"   > {text}", ""]
    return lines


def answer_markdown(answer: AnswerResult | dict) -> str:
    """One answer as Markdown: question, answer, notes, comparison table, numbered sources."""
    return "\n".join(_answer_md(_record(answer))).rstrip() + "\n"


def conversation_markdown(answers: Sequence[AnswerResult | dict], title: str = "对话记录") -> str:
    """Every answer of a conversation as Markdown, one section a question."""
    lines = [f"# {title}", ""]
    for n, answer in enumerate(answers, 1):
        record = dict(_record(answer))
        record["question"] = f"{n}. {record['question']}"
        lines += _answer_md(record, level=2)
    return "\n".join(lines).rstrip() + "\n"


# --- Word ----------------------------------------------------------------------------------------


def _docx_document():
    from docx import Document
    from docx.oxml.ns import qn

    doc = Document()
    for name in ("Normal", "Heading 1", "Heading 2", "Heading 3"):
        style = doc.styles[name]
        style.font.name = DOCX_FONT
        style.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), DOCX_FONT)
    return doc


def _docx_table(doc, headers: list[str], rows: list[list]) -> None:
    table = doc.add_table(rows=1, cols=len(headers))
    table.style = "Table Grid"
    for cell, header in zip(table.rows[0].cells, headers):
        cell.text = header
    for row in rows:
        for cell, value in zip(table.add_row().cells, row):
            cell.text = "" if value is None else str(value)


def _docx_answer(doc, record: dict, level: int = 1) -> None:
    doc.add_heading(record["question"], level=level)
    if record.get("asked"):
        doc.add_paragraph(f"提问：{record['asked']}（理解为：{record['question']}）")
    for paragraph in record["answer"].strip().split("\n"):
        if paragraph.strip():
            doc.add_paragraph(paragraph.strip())
    for note in record.get("notes") or []:
        doc.add_paragraph(f"注：{note}")
    table = record.get("table")
    if table:
        doc.add_heading(f"对比表：{table.get('metric', '')}", level=level + 1)
        _docx_table(doc, COMPARE_COLUMNS, comparison_rows(table))
        if table.get("conclusion"):
            doc.add_paragraph(f"结论：{table['conclusion']}")
        chart = chart_png(table)
        if chart is not None:
            from docx.shared import Cm

            doc.add_picture(io.BytesIO(chart), width=Cm(15))
    if record.get("citations"):
        doc.add_heading("来源", level=level + 1)
        for c in record["citations"]:
            doc.add_paragraph(f"[{c['n']}] 《{c.get('title') or c.get('doc_id')}》 {_where(c)}")
            doc.add_paragraph((c.get("text") or "").strip(), style="Quote")


def chart_png(table: dict) -> bytes | None:
    """The table's chart as PNG bytes (``rag.answer.charts``: bars for a comparison, a line for a
    trend), or None when it cannot be drawn as one chart (no figures, mixed units) or matplotlib
    is missing."""
    try:
        return _chart_png(json.dumps(table, ensure_ascii=False, sort_keys=True, default=str))
    except Exception:  # ChartError, ImportError: the document goes without the picture
        return None


@lru_cache(maxsize=64)
def _chart_png(table_json: str) -> bytes:
    # Cached: the app writes a conversation's document again after each answer, charts and all.
    import tempfile

    from rag.answer import charts

    table = json.loads(table_json)
    # One place over the years (a trend table) is a line; places side by side are bars.
    draw = getattr(charts, "line_chart", None) if table.get("kind") == "trend" else charts.bar_chart
    with _CHART_LOCK, tempfile.TemporaryDirectory(prefix="rag-chart-") as folder:
        return draw(table, Path(folder) / "chart.png").read_bytes()


_CHART_LOCK = threading.Lock()  # pyplot is not thread-safe, and the app's sessions export at once


def _save_docx(doc, path: Path) -> None:
    try:
        doc.save(str(path))
    except OSError as exc:
        raise ExportError(f"{path}: 无法写入（{exc.strerror or exc}）") from exc


# --- tables --------------------------------------------------------------------------------------


# A cell's text that a spreadsheet would read as a formula (=, +, -, @; tab and carriage return
# too: the usual CSV-injection guard). Questions, answers and report sentences are such text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """A CSV cell: text that would start a formula gets a leading apostrophe; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _xlsx_row(ws, row: list) -> list:
    """A row of .xlsx cells: text without the characters an .xlsx cannot hold, never a formula
    (a text cell with Excel's apostrophe prefix, as when "'=…" is typed); numbers stay numbers."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell  # openpyxl raises on these characters

    cells = []
    for value in row:
        if value is None:
            value = ""
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)
            if value.startswith(_FORMULA_START):
                cell = Cell(ws)
                cell._value, cell.data_type = value, "s"  # as typed after an apostrophe: text
                cell.quotePrefix = True
                cells.append(cell)
                continue
        cells.append(value)
    return cells


def write_table(path: str | Path, headers: list[str], rows: list[list], sheet: str = "表格") -> Path:
    """A table to .csv (UTF-8 with BOM) or .xlsx (one sheet, the header row frozen).

    Text is written as text, never as a formula: a cell beginning with = + - @ is prefixed with
    an apostrophe (CSV) or written as a text cell with Excel's apostrophe prefix (XLSX), and the
    control characters an .xlsx cannot hold are left out.

    Raises:
        ExportError: another suffix, or the file cannot be written.
    """
    path = Path(path)
    suffix = _suffix(path, TABLE_FORMATS)
    try:
        if suffix == ".csv":
            with open(path, "w", encoding="utf-8-sig", newline="") as f:
                writer = csv.writer(f)
                writer.writerow([_csv_cell(v) for v in headers])
                writer.writerows([_csv_cell(v) for v in row] for row in rows)
        else:
            from openpyxl import Workbook

            book = Workbook()
            ws = book.active
            ws.title = sheet[:31]  # Excel's limit on sheet names
            ws.append(_xlsx_row(ws, headers))
            for row in rows:
                ws.append(_xlsx_row(ws, row))
            ws.freeze_panes = "A2"
            book.save(path)
    except OSError as exc:
        raise ExportError(f"{path}: 无法写入（{exc.strerror or exc}）") from exc
    return path


EXPORT_FOLDERS_KEPT = 16  # the newest download folders kept (the app's figure and batch files)
_EXPORT_ROOT: Path | None = None
_EXPORT_SEQ = itertools.count(1)
_EXPORT_LOCK = threading.Lock()


def export_folder(prefix: str = "export") -> Path:
    """A new, empty folder for one download, inside this process's export folder.

    The export folder lies in the temp folder (Gradio serves files from there) and is removed when
    the process exits; of its download folders only the newest ``EXPORT_FOLDERS_KEPT`` are kept
    (Gradio copies a file into its own cache when it sends it, so an older one was sent already).
    """
    global _EXPORT_ROOT
    with _EXPORT_LOCK:
        if _EXPORT_ROOT is None or not _EXPORT_ROOT.is_dir():
            _EXPORT_ROOT = Path(tempfile.mkdtemp(prefix="govreport-exports-"))
            atexit.register(shutil.rmtree, _EXPORT_ROOT, True)
        # Named in order of creation (000001-figures-…), so the oldest sort first.
        folders = sorted(p for p in _EXPORT_ROOT.iterdir() if p.is_dir())
        for old in folders[:max(0, len(folders) - (EXPORT_FOLDERS_KEPT - 1))]:
            shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=f"{next(_EXPORT_SEQ):06d}-{prefix}-", dir=_EXPORT_ROOT))


def figure_table(rows: Sequence[FigureRow]) -> tuple[list[str], list[list]]:
    """Figure rows as a table (``FIGURE_COLUMNS``, plus 相似度 when they were ranked by meaning)."""
    similar = any(r.similarity is not None for r in rows)
    headers = FIGURE_COLUMNS + (["相似度"] if similar else [])
    table = []
    for r in rows:
        line = [r.region or "", r.year or "", r.metric, _number(r.value), r.unit, r.text, r.qualifiers, r.change,
                r.sentence, r.title or "", r.doc_id, r.chunk_id, figure_status(r), r.id]
        table.append(line + ([r.similarity] if similar else []))
    return headers, table


def figure_status(row: FigureRow) -> str:
    """A figure's correction, for a table cell: '', 已更正（原为 1274 件 …）, 已删除."""
    label = FIGURE_STATUS_ZH.get(row.status, row.status)
    return f"{label}（原为 {row.original}）" if label and row.original and row.status == "corrected" else label


def write_figures(path: str | Path, rows: Sequence[FigureRow]) -> Path:
    """Figure rows to .csv or .xlsx."""
    headers, table = figure_table(rows)
    return write_table(path, headers, table, sheet="数字")


# --- answers and conversations --------------------------------------------------------------


def write_answer(path: str | Path, answer: AnswerResult | dict) -> Path:
    """One answer to .md, .docx (everything) or .csv/.xlsx (its table).

    Raises:
        ExportError: another suffix, or the file cannot be written.
    """
    path = Path(path)
    suffix = _suffix(path, ANSWER_FORMATS)
    record = _record(answer)
    if suffix in TABLE_FORMATS:
        headers, rows = answer_table(record)
        return write_table(path, headers, rows, sheet="对比表" if record.get("table") else "来源")
    if suffix == ".md":
        return _write_text(path, answer_markdown(record))
    doc = _docx_document()
    _docx_answer(doc, record)
    _save_docx(doc, path)
    return path


def write_conversation(path: str | Path, answers: Sequence[AnswerResult | dict], title: str = "对话记录") -> Path:
    """A whole conversation (its answers in order) to .md or .docx."""
    path = Path(path)
    suffix = _suffix(path, CONVERSATION_FORMATS)
    if suffix == ".md":
        return _write_text(path, conversation_markdown(answers, title))
    doc = _docx_document()
    doc.add_heading(title, level=0)
    for n, answer in enumerate(answers, 1):
        record = dict(_record(answer))
        record["question"] = f"{n}. {record['question']}"
        _docx_answer(doc, record, level=1)
    _save_docx(doc, path)
    return path


def _write_text(path: Path, text: str) -> Path:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"{path}: 无法写入（{exc.strerror or exc}）") from exc
    return path
