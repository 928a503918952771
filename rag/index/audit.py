"""The audit log: who changed the library, when, which report, and its fields before and after.

Every write of ``ReportIndex`` (a report added or replaced, corrected, removed; a figure
corrected or removed; the index rebuilt or restored) appends one entry. The log is a Chroma collection beside the reports
(``<collection>_audit``), so an embedded index keeps it in its folder and a Chroma server
holds one log for every app process and machine that writes to it. Entries are only ever
added: nothing in the project updates or deletes one (``rag ingest --rebuild`` keeps the log).

Who is acting comes from ``acting_as`` (the app sets it to the logged-in user for the length of
a change); otherwise it is the operating-system user running the process (``rag ingest``,
``rag set``, ``rag remove``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import getpass
import json
import socket
import uuid
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Iterator

from rag.types import ReportRecord

# The fields of a report an entry records (what a reader of the log needs to see a change).
FIELDS = ("region", "province", "year", "title", "source", "chunks", "version", "publisher", "date")
ACTIONS_ZH = {"ingest": "导入", "replace": "更新", "correct": "更正", "remove": "删除", "rebuild": "重建索引",
              "restore": "恢复备份",
              "user_add": "添加用户", "user_remove": "删除用户",
              "correct_figure": "更正数字", "remove_figure": "删除数字"}
_ACTOR: ContextVar[tuple[str, str] | None] = ContextVar("rag_audit_actor", default=None)
# Chroma stores records with a vector; the log is never searched, so every entry gets this one.
_NO_VECTOR = [1.0]


def os_user() -> str:
    """The operating-system user and machine of this process (the actor of CLI changes)."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (some containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@contextlib.contextmanager
def acting_as(actor: str, via: str = "web") -> Iterator[None]:
    """Record the changes made inside the block as ``actor``'s (``via``: web, cli, python)."""
    token = _ACTOR.set((actor, via))
    try:
        yield
    finally:
        _ACTOR.reset(token)


def current_actor() -> tuple[str, str]:
    """(actor, via) for a change made now."""
    return _ACTOR.get() or (os_user(), "cli")


def report_fields(record: ReportRecord | None) -> dict | None:
    """The fields of a report an entry keeps (None: there was no report)."""
    if record is None:
        return None
    return {name: getattr(record, name, None) for name in FIELDS}


@dataclass
class AuditEntry:
    """One change to the library."""

    at: str  # ISO time in UTC, with microseconds
    actor: str
    via: str
    action: str  # a key of ACTIONS_ZH
    doc_id: str = ""
    before: dict | None = None
    after: dict | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_dict(self) -> dict:
        return asdict(self)

    def changes(self) -> str:
        """The fields that changed, as ``field: old → new`` (for a table cell)."""
        before, after = self.before or {}, self.after or {}
        if not before or not after:
            shown = after or before
            keys = [k for k in ("region", "year", "title") if shown.get(k) not in (None, "")] or list(shown)
            return "，".join(f"{k}: {shown[k]}" for k in keys)
        keys = [k for k in dict.fromkeys([*FIELDS, *before, *after]) if k in before or k in after]
        return "，".join(f"{k}: {before.get(k)} → {after.get(k)}" for k in keys
                        if before.get(k) != after.get(k) and k != "version") or "（字段未变）"


class AuditLog:
    """The append-only log of one index (a Chroma collection).

    Args:
        client: the index's Chroma client (embedded or a server).
        name: the log's collection name (``<collection>_audit``).
    """

    def __init__(self, client, name: str):
        self.client = client
        self.name = name
        self._collection = None

    @property
    def collection(self):
        if self._collection is None:
            self._collection = self.client.get_or_create_collection(
                self.name, metadata={"kind": "audit"}, embedding_function=None)
        return self._collection

    def record(self, action: str, doc_id: str = "", before: dict | None = None,
               after: dict | None = None) -> AuditEntry:
        """Append an entry for a change made now by the current actor."""
        actor, via = current_actor()
        # UTC: entries from machines in other time zones still sort by time.
        entry = AuditEntry(_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds"), actor, via,
                           action, doc_id, before, after)
        self.append([entry])
        return entry

    def append(self, entries: list[AuditEntry]) -> None:
        """Store entries as they are (``record``, and a restored backup's log)."""
        from rag.index.embeddings import batched

        for batch in batched(entries, self.client.get_max_batch_size()):
            self.collection.upsert(
                ids=[e.id for e in batch], embeddings=[_NO_VECTOR] * len(batch),
                documents=[json.dumps(e.to_dict(), ensure_ascii=False) for e in batch],
                metadatas=[{"at": e.at, "actor": e.actor, "action": e.action, "doc_id": e.doc_id} for e in batch])

    def entries(self, limit: int | None = None) -> list[AuditEntry]:
        """The entries, oldest first (``limit``: only the newest ``limit``)."""
        from rag.index.store import get_all

        got = get_all(self.collection, include=["documents"])
        entries = [AuditEntry(**json.loads(doc)) for doc in got["documents"]]
        entries.sort(key=lambda e: (e.at, e.id))
        return entries[-limit:] if limit else entries
