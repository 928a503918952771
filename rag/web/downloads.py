"""The chat's download buttons: an answer, the whole conversation and the answer's table as files.

After each answer (and when an earlier answer is clicked, or a conversation is reopened) the
files for "this answer" are written with ``rag.export`` into a new folder of their own inside
the browser session's (``<temp>/<session>/<set>/``), and the buttons get their paths: a
``gr.DownloadButton`` downloads the file it holds when clicked, so the file has to exist before
the click. Gradio copies each file into its own cache when it is sent, so a session keeps only
its latest few sets (``KEEP_SETS``; older ones are removed when a new one is written). Several
events of one session can write at once (the save after an answer, a click on an earlier
answer, the page's load): each writes its own set, under the session's lock, and removes only
older sets, never one another event is about to send. A caller without a session gets a folder
of its own for each set. The whole folder goes when the process ends.
"""

from __future__ import annotations

import atexit
import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import gradio as gr

from rag.export import ExportError, write_answer, write_conversation
from rag.web.state import Conversation

log = logging.getLogger("govreport.app")
FILE_PREFIX = "政府报告问答"
# The components the download row updates, in the order the events list them.
DOWNLOAD_KEYS = ("downloads", "dl_answer_docx", "dl_answer_md", "dl_conv_docx", "dl_conv_md", "dl_table_csv",
                 "dl_table_xlsx", "answer_link")
KEEP_SETS = 3  # a session's newest sets of files kept (the others were sent already)


def answer_link(conv_id: str, number: int) -> str:
    """The page's link to answer ``number`` of a conversation, relative to the page
    (``?conv=ID&turn=N``), so that it also works when the app is served under a path."""
    return f"?conv={conv_id}&turn={number}"


class Downloads:
    """Writes the files the download buttons hold.

    Args:
        root: the folder for the sessions' folders (default: a new temporary folder, removed
            when the process exits).
    """

    def __init__(self, root: Path | None = None):
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="govreport-downloads-"))
            atexit.register(shutil.rmtree, root, True)
        self.root = Path(root)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    @staticmethod
    def _session_name(session: str | None) -> str:
        """The session's folder name; empty without a session."""
        return re.sub(r"[^A-Za-z0-9_-]", "", session or "")[:64]

    def _lock(self, name: str) -> threading.Lock:
        if not name:  # a caller without a session: a folder of its own, nothing to share
            return threading.Lock()
        with self._locks_lock:
            return self._locks.setdefault(name, threading.Lock())

    def folder(self, session: str | None) -> Path:
        """A new, empty folder for one set of files, inside the session's folder (a new folder
        of its own for each call without a session: those callers cannot be told apart)."""
        parent = self.root / (self._session_name(session) or f"local-{uuid.uuid4().hex}")
        parent.mkdir(parents=True, exist_ok=True)
        # Named by creation time first, so that the sets sort oldest first.
        return Path(tempfile.mkdtemp(prefix=f"{time.time_ns():020d}-", dir=parent))

    @staticmethod
    def _prune(parent: Path, keep: Path) -> None:
        """Remove the older sets of a session's folder, keeping the newest ``KEEP_SETS`` and ``keep``."""
        sets = sorted((p for p in parent.iterdir() if p.is_dir()), key=lambda p: p.name)
        for old in sets[:-KEEP_SETS]:
            if old != keep:
                shutil.rmtree(old, ignore_errors=True)

    def update(self, conv: Conversation, index: int | None, session: str | None) -> dict:
        """The download row for the answer at message ``index`` (None: the last answer).

        Returns the updates of ``DOWNLOAD_KEYS``: the row hidden when the conversation has no
        answer to export; the table buttons shown only for an answer with a table.
        """
        if index is None or index not in conv.turns:
            index = conv.last_turn_index()
        turn = conv.turns.get(index) if index is not None else None
        if turn is None or turn.record is None:
            return {"downloads": gr.update(visible=False), "answer_link": ""}
        number = conv.answer_number(index) or 1
        records = [t.record for _, t in sorted(conv.turns.items()) if t.record is not None]
        name = self._session_name(session)
        with self._lock(name):  # one set written (and older ones removed) at a time per session
            folder = self.folder(session)
            try:
                return self._write(conv, turn, number, records, folder)
            finally:
                self._prune(folder.parent, folder)

    def _write(self, conv: Conversation, turn, number: int, records: list[dict], folder: Path) -> dict:
        """Write one set of files into ``folder``; the download row's updates."""
        table = bool(turn.record.get("table"))
        try:
            paths = {
                "dl_answer_docx": write_answer(folder / f"{FILE_PREFIX}-回答{number}.docx", turn.record),
                "dl_answer_md": write_answer(folder / f"{FILE_PREFIX}-回答{number}.md", turn.record),
                "dl_conv_docx": write_conversation(folder / f"{FILE_PREFIX}-对话.docx", records),
                "dl_conv_md": write_conversation(folder / f"{FILE_PREFIX}-对话.md", records),
            }
            if table:
                paths["dl_table_csv"] = write_answer(folder / f"{FILE_PREFIX}-表格{number}.csv", turn.record)
                paths["dl_table_xlsx"] = write_answer(folder / f"{FILE_PREFIX}-表格{number}.xlsx", turn.record)
        except ExportError as exc:  # a full disk: the page goes on without downloads
            log.warning("downloads not written: %s", exc)
            shutil.rmtree(folder, ignore_errors=True)
            return {"downloads": gr.update(visible=False), "answer_link": ""}
        # Plain paths where only the file changes (an API client gets the file itself); the table's
        # buttons are also shown or hidden.
        update: dict = {"downloads": gr.update(visible=True)}
        update.update({key: str(path) for key, path in paths.items()})
        for key in ("dl_table_csv", "dl_table_xlsx"):
            update[key] = gr.update(value=str(paths[key]), visible=True) if table else gr.update(visible=False)
        if conv.id:
            link = answer_link(conv.id, number)
            update["answer_link"] = f"第 {number} 条回答的链接（可收藏或转给自己）：[{link}]({link})"
        else:
            update["answer_link"] = ""
        return update
