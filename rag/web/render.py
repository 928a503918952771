"""What the page shows for a result: the sources panel, the whole-report page, the chat message
for an answer, the comparison table and chart, search results.

The HTML comes from ``templates/`` (Jinja2). Everything a template writes is escaped with
Python's ``html.escape`` unless it is ``Markup``: the same bytes as when this HTML was built
with f-strings (markupsafe, Jinja's own escaping, writes quotes differently).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, NamedTuple

import jinja2
import pandas as pd
from markupsafe import Markup

from rag.answer.highlight import cited_text, highlight_spans
from rag.answer.llm_answer import OVERVIEW_LABELS
from rag.index.store import ReportIndex
from rag.ingest.metadata import describe_confidence
from rag.text.figures import UNITS
from rag.text.markers import MARKER
from rag.types import AnswerResult, Citation, Passage, ReportRecord
from rag.web.messages import note_zh

COMPARE_COLUMNS = ["地区", "年份", "数值", "引用", "原文"]
NOT_MENTIONED = "未提及"
PENDING = "待确认"  # a report whose place or year was detected with low confidence


def _escaped(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Markup):
        return Markup(html.escape(value))
    return value


_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                                autoescape=True, finalize=_escaped, undefined=jinja2.StrictUndefined)


def where(region: str | None, year: int | None, title: str | None) -> str:
    """``太原市 · 2024年 · 《title》``, with 地区未知 / 年份未知 for what is not known."""
    parts = [region or "地区未知", f"{year}年" if year else "年份未知"]
    if title:
        parts.append(f"《{title}》")
    return " · ".join(parts)


def library_row(record: ReportRecord) -> list:
    """One row of the 报告库 table: 地区, 年份, 标题, 片段数, 加入时间, 来源文件, doc_id.

    A report detected with low confidence is marked 待确认 with the clues it was read from, until
    someone saves its place and year in the correction form.
    """
    region, title = record.region or "未知", record.title or ""
    if record.unconfirmed:
        region = f"{region}（{PENDING}）"
        title = f"{title}（{PENDING}：{describe_confidence(record.evidence)}。请在下方核对地区和年份后保存）"
    return [region, record.year or "", title, record.chunks, (record.added_at or "").replace("T", " ")[:16],
            record.source, record.doc_id]


def upload_confirmation(region: str | None, confidence: str | None, evidence: str) -> tuple[str, str]:
    """An uploaded report's 地区 cell and the remark asking to confirm it when detection was unsure."""
    if confidence != "low":
        return region or "", ""
    return (f"{region or '未知'}（{PENDING}）",
            f"{PENDING}：{evidence}。请在右侧选中这份报告，核对地区和年份后保存")


def chunk_number(chunk_id: str) -> int | None:
    """The chunk index at the end of a chunk id (``doc:version:00005`` -> 5)."""
    tail = (chunk_id or "").rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


# --- the sources panel -------------------------------------------------------------------------


class Piece(NamedTuple):
    text: str
    marked: bool


def marked_pieces(text: str, spans: list[tuple[int, int]]) -> list[Piece]:
    """``text`` cut at the spans, each span marked (spans in order, as ``highlight_spans`` gives)."""
    pieces, pos = [], 0
    for start, end in spans:
        pieces += [Piece(text[pos:start], False), Piece(text[start:end], True)]
        pos = end
    pieces.append(Piece(text[pos:], False))
    return pieces


def _card(c: Citation, claims: list[str]) -> dict:
    spans = highlight_spans(c.text, claims)
    n = chunk_number(c.chunk_id)
    return {"n": c.n, "where": where(c.region, c.year, c.title),
            "meta": " · ".join(x for x in (c.section, f"第{c.page}页" if c.page else "") if x),
            "pieces": marked_pieces(c.text, spans), "doc_id": c.doc_id,
            "chunk": n if c.doc_id else None, "hl": ",".join(f"{s}-{e}" for s, e in spans)}


def sources_message(text: str) -> str:
    """The sources panel with a message instead of passages (before a question, while answering)."""
    return _TEMPLATES.get_template("sources.html.j2").render(message=text)


def render_sources(result: AnswerResult | None) -> str:
    """The sources panel: the cited passages, numbered as in the answer, cited sentences marked."""
    if result is None:
        return sources_message("提问后，这里列出回答引用的原文段落，引用的句子会高亮显示。")
    if not result.citations:
        return sources_message("这个回答没有引用段落" + ("（报告中没有找到依据）" if result.refused else "") + "。")
    claims = cited_text(result.answer)
    cards = [_card(c, claims.get(c.n, [])) for c in result.citations]
    return _TEMPLATES.get_template("sources.html.j2").render(message=None, cards=cards)


# --- the whole report --------------------------------------------------------------------------


class Run(NamedTuple):
    text: str
    level: int  # 0: plain, 1: the cited passage, 2: a cited sentence in it
    anchor: bool  # the first cited run: where the page scrolls to


def _report_text(docs: list) -> tuple[str, dict[int, tuple[int, int]]]:
    """The report's text from its chunks, and each chunk's (start, end) in it."""
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
    if exact:
        return "".join(buffer), {int(d.metadata.get("chunk_index", 0)):
                                 (int(d.metadata["char_start"]), int(d.metadata["char_end"])) for d in docs}
    # Offsets that do not fit: the chunks one after another.
    text = "\n".join(d.page_content for d in docs)
    starts, pos = {}, 0
    for d in docs:
        starts[int(d.metadata.get("chunk_index", 0))] = pos
        pos += len(d.page_content) + 1
    return text, {k: (v, v + len(d.page_content)) for (k, v), d in zip(starts.items(), docs)}


def _levels(size: int, passage: tuple[int, int] | None, marks: list[tuple[int, int]]) -> list[int]:
    """Each character's ``Run.level``; ``marks`` are offsets inside the passage."""
    level = [0] * size
    if passage is not None:
        start, end = passage
        level[start:end] = [1] * (end - start)
        for s, e in marks:
            s, e = max(0, min(s, end - start)), max(0, min(e, end - start))
            level[start + s:start + e] = [2] * (e - s)
    return level


def _paragraphs(text: str, level: list[int]) -> list[list[Run]]:
    """The report's non-blank lines, each cut into runs of one level."""
    paragraphs, anchor_done, pos = [], False, 0
    for line in text.split("\n"):
        runs, i = [], 0
        while i < len(line):
            j = i
            while j < len(line) and level[pos + j] == level[pos + i]:
                j += 1
            lv = level[pos + i]
            runs.append(Run(line[i:j], lv, bool(lv) and not anchor_done))
            anchor_done = anchor_done or bool(lv)
            i = j
        if line.strip():
            paragraphs.append(runs)
        pos += len(line) + 1
    return paragraphs


def report_page(index: ReportIndex, doc_id: str, chunk: int | None = None,
                marks: list[tuple[int, int]] | None = None) -> str | None:
    """A whole report as an HTML page, passage ``chunk`` marked (and ``marks`` inside it).

    Returns None when the report is not in the index.
    """
    record = index.report(doc_id)
    if record is None:
        return None
    text, ranges = _report_text(index.chunks(doc_id))
    passage = ranges[chunk] if chunk is not None and chunk in ranges else None
    paragraphs = _paragraphs(text, _levels(len(text), passage, marks or []))
    title = record.title or where(record.region, record.year, None)
    info = " · ".join(x for x in (record.region or "地区未知", f"{record.year}年" if record.year else "",
                                  record.source, f"{record.chunks} 个片段") if x)
    return _TEMPLATES.get_template("report.html.j2").render(title=title, info=info, paragraphs=paragraphs)


# --- Markdown and tables -----------------------------------------------------------------------
# Markdown is kept in Python: its blank lines are its structure, which a template would blur.


FORMULA_LABELS = {"计算：": "**计算**：", "Computed: ": "**Computed**: ", "排序：": "**排序**：", "Order: ": "**Order**: "}
# A figure of a formula line (1274件, 83.7%, 1.16倍, 3.5万元, 2个百分点): code-formatted; markers stay outside.
_FORMULA_FIGURE = re.compile(r"\d[\d,]*(?:\.\d+)?(?:万亿|万|亿|千)?(?:余|多)?(?:"
                             + "|".join(re.escape(u) for u in sorted({*UNITS, "倍"}, key=len, reverse=True)) + ")?")
_NUMBERED_POINT = re.compile(r"\d+\. ")
OVERVIEW_PREFIXES = tuple(OVERVIEW_LABELS.values())


def formula_markdown(line: str) -> str:
    """A computed answer's last line as Markdown: ``计算：1274件[1] + 1472件[2] = 2746件`` becomes
    ``**计算**：`1274件`[1] + `1472件`[2] = **`2746件`**`` (a line without the label is returned as it is).

    The citation markers are left as they are in every answer: plain ``[n]`` text.
    """
    label = next((k for k in FORMULA_LABELS if line.startswith(k)), None)
    if label is None:
        return line
    body, out, pos = line[len(label):], [FORMULA_LABELS[label]], 0
    for m in [*MARKER.finditer(body), None]:
        segment = body[pos:m.start() if m else len(body)]
        segment = re.sub(r"[*_\\]", lambda c: "\\" + c.group(0), segment)
        segment = _FORMULA_FIGURE.sub(lambda f: f"`{f.group(0)}`", segment)
        out.append(re.sub(r"(= )(约?`[^`]+`)", r"\1**\2**", segment))  # the result, in bold
        if m:
            out.append(m.group(0))
            pos = m.end()
    return "".join(out)


def _answer_body(result: AnswerResult) -> str:
    """The answer's text as Markdown: a formula line shown as one (``formula_markdown``); a
    section summary's headings set apart from their numbered points, so that each report's
    points are an ordered list. Any other answer is its text, unchanged."""
    lines = result.answer.split("\n")
    if any(line.startswith(tuple(FORMULA_LABELS)) for line in lines):
        lines = [formula_markdown(line) for line in lines]
    if "section_summary" not in {getattr(n, "code", None) for n in result.notes}:
        return "\n".join(lines)
    text = ""
    for i, line in enumerate(lines):
        point = bool(_NUMBERED_POINT.match(line))
        if i:
            text += "\n" if point and _NUMBERED_POINT.match(lines[i - 1]) else "\n\n"
        plain = point or not line.strip() or line.startswith(OVERVIEW_PREFIXES)  # the model's overview is prose
        text += line if plain else f"**{line}**"
    return text


def answer_markdown(result: AnswerResult, mode_label: str, standalone: str | None) -> str:
    """The chat message for a finished answer: the answer, notes, and which mode answered."""
    parts = []
    if standalone:
        parts.append(f"*理解为：{standalone}*")
    parts.append(_answer_body(result))
    parts.extend(f"> 注：{note_zh(n)}" for n in result.notes)
    # A question no passage supports is refused before any model is asked.
    used = "仅检索（未找到依据）" if result.refused else (mode_label if result.mode == "llm" else "摘录原文")
    parts.append(f"<sub>{used} · {result.latency_ms / 1000:.1f} 秒</sub>")
    return "\n\n".join(parts)


def search_markdown(passages: list[Passage]) -> str:
    """Search results: each passage with its place, year, title, section, page and score."""
    blocks = []
    for n, p in enumerate(passages, 1):
        place = f"{p.region or '未知地区'} · {p.year or '年份未知'} · 《{p.title}》"
        section = f" · {p.section}" if p.section else ""
        page = f" · 第{p.page}页" if p.page else ""
        blocks.append(f"**[{n}] {place}{section}{page}**（相关度 {p.score:.2f}）\n\n> {p.text}")
    return "\n\n".join(blocks)


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
