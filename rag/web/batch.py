"""The 批量提问 tab: a file of questions answered one by one, downloadable as an Excel sheet.

A file is CONTRACT.md's question set (JSONL, read with the eval harness's own line parser) or
a plain list, one question a line (.txt; a .csv's first column, its header row skipped). When
questions say what a right answer is (``must_include``, or ``answerable: false``) each is scored
as ``rag eval`` scores it (``rag.eval.harness.score``); otherwise the answers are only answered.

Fair use: a batch holds one of its user's question slots (``Access.question``) for its whole
run and answers its questions one at a time, so it weighs on the app like one chat question
that takes long; the bundled model is taken per question, so chat questions get their turns.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pandas as pd

from rag.eval.harness import Question, has_expected, question_from_row, score
from rag.export import export_folder, write_table
from rag.types import AnswerResult
from rag.web.access import Refused
from rag.web.backend import Services
from rag.web.messages import EMPTY_INDEX, friendly_error

BATCH_SUFFIXES = (".jsonl", ".json", ".txt", ".csv")
MAX_BATCH_QUESTIONS = 200  # a batch holds a question slot for its whole run: keep it to minutes
MAX_BATCH_BYTES = 2 * 1024 * 1024
MAX_QUESTION_CHARS = 1000  # as the chat's question box
BATCH_COLUMNS = ["序号", "问题", "回答", "来源", "用时（秒）"]
SCORED_COLUMN = "是否正确"
_HEADERS = {"question", "问题", "提问", "questions"}


class BatchFileError(ValueError):
    """The question file cannot be used; the message (Chinese) names the line."""


def _decode(data: bytes, name: str) -> str:
    # Excel saves Chinese CSV and text files in GB18030 (GBK) as often as in UTF-8.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BatchFileError(f"“{name}”不是文本文件（既不是 UTF-8 也不是 GBK 编码）。")


def _checked(text: str, number: int) -> str:
    text = text.strip()
    if len(text) > MAX_QUESTION_CHARS:
        raise BatchFileError(f"第 {number} 行的问题太长（{len(text)} 字），请控制在 {MAX_QUESTION_CHARS} 字以内。")
    return text


def _jsonl(lines: list[str]) -> list[Question]:
    questions, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BatchFileError(f"第 {number} 行不是有效的 JSON（第 {exc.colno} 个字符附近：{exc.msg}）。"
                                 "每行应是一个问题，例如 {\"question\": \"太原市2024年新收行政复议案件多少件？\"}") from exc
        if not isinstance(row, dict) or not str(row.get("question", "")).strip():
            raise BatchFileError(f"第 {number} 行缺少 \"question\"（问题）字段，或问题为空。")
        _checked(str(row["question"]), number)
        qid = str(row.get("id") or number)
        if qid in seen:
            raise BatchFileError(f"第 {number} 行的 id “{qid}”与前面的问题重复。")
        seen.add(qid)
        try:
            questions.append(question_from_row(row, qid))
        except ValueError as exc:
            raise BatchFileError(f"第 {number} 行的 \"years\" 应是年份，例如 2024（{exc}）。") from exc
    return questions


def _plain(lines: list[str]) -> list[Question]:
    questions = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            questions.append(Question(id=str(number), question=_checked(line, number)))
    return questions


def _csv(text: str) -> list[Question]:
    questions = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cell = (row[0] if row else "").strip()
        if not cell or (number == 1 and cell.lower() in _HEADERS):
            continue
        questions.append(Question(id=str(number), question=_checked(cell, number)))
    return questions


def parse_batch(path: str | Path, name: str | None = None) -> list[Question]:
    """The questions of an uploaded file.

    Args:
        path: the file (.jsonl/.json: CONTRACT.md's format; .txt: JSONL when its first line is a
            JSON object, else one question a line; .csv: the first column).
        name: the file's name as the user knows it (for messages).

    Raises:
        BatchFileError: a Chinese message naming the line that is wrong.
    """
    path = Path(path)
    name = name or path.name
    suffix = path.suffix.lower()
    if suffix not in BATCH_SUFFIXES:
        raise BatchFileError(f"“{name}”：不支持的文件类型 {suffix or '（无扩展名）'}，请上传 {' '.join(BATCH_SUFFIXES)} 文件。")
    if path.stat().st_size > MAX_BATCH_BYTES:
        raise BatchFileError(f"“{name}”太大（超过 {MAX_BATCH_BYTES // 1024 // 1024} MB）。")
    text = _decode(path.read_bytes(), name)
    lines = text.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    if not first:
        raise BatchFileError(f"“{name}”中没有问题。")
    if suffix == ".csv":
        questions = _csv(text)
    elif suffix in (".jsonl", ".json") or first.startswith("{"):
        questions = _jsonl(lines)
    else:
        questions = _plain(lines)
    if not questions:
        raise BatchFileError(f"“{name}”中没有问题。")
    if len(questions) > MAX_BATCH_QUESTIONS:
        raise BatchFileError(f"“{name}”有 {len(questions)} 个问题，一次最多 {MAX_BATCH_QUESTIONS} 个：请分成几个文件。")
    return questions


def sources_text(result: AnswerResult) -> str:
    """The citations as one cell: ``[1] 《title》 太原市 2024年 （六）… 第3页``, one a line."""
    lines = []
    for c in result.citations:
        where = " ".join(x for x in (c.region or "", f"{c.year}年" if c.year else "", c.section or "",
                                     f"第{c.page}页" if c.page else "") if x)
        lines.append(f"[{c.n}] 《{c.title or c.doc_id}》 {where}".rstrip())
    return "\n".join(lines)


class BatchHandler:
    """The 批量提问 tab and ``/batch``."""

    def __init__(self, services: Services):
        self.services = services

    def run(self, file, mode: str | None, progress: gr.Progress = gr.Progress(),
            request: gr.Request = None) -> Iterator[tuple[pd.DataFrame | list, str | None, str]]:
        """Answer every question of an uploaded file, one at a time.

        Args:
            file: the uploaded question file (a path).
            mode: the answer mode, as the chat's (``local``, ``openai``, ``extractive``).

        Yields:
            (the results table so far, the .xlsx file once all are answered, a message line).
        """
        path = file if isinstance(file, str) else getattr(file, "name", None) if file is not None else None
        if not path:
            yield [], None, "请先选择一个问题文件。"
            return
        try:
            questions = parse_batch(path, Path(path).name)
        except BatchFileError as exc:
            yield [], None, f"⚠️ {exc}"
            return
        try:
            services = self.services.ready()
            if not services.index.reports():
                yield [], None, EMPTY_INDEX
                return
            # One slot for the whole batch (fair use); refused at once when the user has none free.
            with self.services.access.question(request):
                yield from self._answer_all(services, questions, mode, progress)
        except Refused as exc:
            yield [], None, f"⚠️ {exc.message}"
        except Exception as exc:  # shown in the page, never as a traceback
            yield [], None, f"⚠️ {friendly_error(exc, self.services.settings)}"

    def _answer_all(self, services: Services, questions: list[Question], mode: str | None,
                    progress: gr.Progress) -> Iterator[tuple[pd.DataFrame, str | None, str]]:
        key = mode or services.modes.default
        answerer, answer_mode = services.modes.answerer(key)
        label = services.modes.choice(key).label
        scored = any(has_expected(q) for q in questions)
        headers = BATCH_COLUMNS + ([SCORED_COLUMN] if scored else [])
        rows: list[list] = []
        right = 0
        for i, question in enumerate(questions):
            progress((i, len(questions)), desc=f"正在回答第 {i + 1}/{len(questions)} 题", unit="题")
            started = time.perf_counter()
            lock = services.modes.lock_for(key)  # the bundled model: taken per question, chat gets turns
            try:
                if lock is not None:
                    lock.acquire()
                try:
                    result = answerer.run(question.question, mode=answer_mode, id=question.id)
                finally:
                    if lock is not None:
                        lock.release()
                row = [i + 1, question.question, result.answer, sources_text(result),
                       round(time.perf_counter() - started, 1)]
                if scored:
                    ok = score(question, result.to_dict())["correct"] if has_expected(question) else None
                    right += bool(ok)
                    row.append("" if ok is None else ("正确" if ok else "错误"))
            except Exception as exc:  # one failed question does not end the batch
                row = [i + 1, question.question, f"（出错：{friendly_error(exc, self.services.settings)}）", "",
                       round(time.perf_counter() - started, 1)] + ([""] if scored else [])
            rows.append(row)
            yield pd.DataFrame(rows, columns=headers), None, f"已回答 {len(rows)}/{len(questions)} 题（{label}）…"
        progress((len(questions), len(questions)), desc="完成")
        folder = export_folder("batch")  # in the temp folder, where Gradio serves files from
        xlsx = write_table(folder / f"batch-answers-{time.strftime('%Y%m%d-%H%M%S')}.xlsx", headers, rows, sheet="批量提问")
        line = f"已回答 {len(rows)} 题（{label}）。"
        if scored:
            judged = sum(1 for q in questions if has_expected(q))
            line += f"有标准答案的 {judged} 题中答对 {right} 题（与 `rag eval` 的判分相同）。"
        yield pd.DataFrame(rows, columns=headers), str(xlsx), line + "可下载 Excel 文件。"
