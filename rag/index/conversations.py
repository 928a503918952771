"""Conversations kept: each chat of the app, stored so that it survives a page reload.

One record per conversation in a Chroma collection beside the reports
(``<collection>_conversations``), like the audit log. Chroma rather than JSON files under the
index folder: with ``RAG_CHROMA_URL`` several app processes, on several machines, share one
Chroma server, and a user must find their conversations whichever process answers the page;
the index folder is local to one machine (and unused with a server). With an embedded index the
collection lives in the index folder, so it moves with it. ``rag ingest --rebuild`` keeps it
(only the reports and their figures are dropped).

Each record belongs to an owner (``user:NAME`` with accounts, ``browser:ID`` without: the app
decides, see ``rag.web.history``); reading or overwriting another owner's record raises
``ConversationRefused``. A record keeps what the page needs to show the conversation again and
no more: the chat messages as shown, the standalone questions (for follow-ups) and each
answer's record (``rag.export.answer_record``: answer, citations, table), from which the
sources panel is rendered again.

Example:
    >>> store = ConversationStore(index.client, "govreport_conversations")
    >>> store.save(StoredConversation("c1", "user:li", messages=[...], turns={1: record}))
    >>> [c.title for c in store.list("user:li")]
    ['太原市2024年新收行政复议案件多少件？']
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import uuid
from dataclasses import asdict, dataclass, field

from rag.errors import RagError

_NO_VECTOR = [1.0]  # conversations are never searched by meaning: every record gets this vector
TITLE_CHARS = 60  # the list shows the first question, cut to this many characters


class ConversationRefused(RagError, PermissionError):
    """The conversation belongs to another owner."""


class ConversationNotFound(RagError, LookupError):
    """There is no conversation with this id."""


ID_FORMAT = re.compile(r"[0-9a-f]{32}")  # what new_id gives out


def new_id() -> str:
    """A new conversation id (random: ids appear in links, so they must not be guessable)."""
    return uuid.uuid4().hex


def valid_id(value: object) -> bool:
    """Whether ``value`` has the form of an id ``new_id`` gives out (32 lowercase hex digits)."""
    return isinstance(value, str) and ID_FORMAT.fullmatch(value) is not None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


@dataclass
class StoredConversation:
    """One conversation as stored.

    Args:
        id: its id (``new_id``).
        owner: whose it is (``user:NAME`` or ``browser:ID``).
        messages: the chat messages as shown (``{"role", "content"}``).
        standalone: the standalone questions asked, for follow-ups.
        turns: each answer's record (``rag.export.answer_record``) by its message position.
        created, updated: ISO times in UTC (set by ``save`` when empty).
    """

    id: str
    owner: str
    messages: list[dict] = field(default_factory=list)
    standalone: list[str] = field(default_factory=list)
    turns: dict[int, dict] = field(default_factory=dict)
    created: str = ""
    updated: str = ""

    @property
    def title(self) -> str:
        """The first question, as the list shows it."""
        first = next((str(m.get("content") or "") for m in self.messages if m.get("role") == "user"), "")
        first = " ".join(first.split())
        return first if len(first) <= TITLE_CHARS else first[:TITLE_CHARS - 1] + "…"

    def to_json(self) -> str:
        data = asdict(self)
        data["turns"] = {str(k): v for k, v in self.turns.items()}  # JSON keys are strings
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> StoredConversation:
        data = json.loads(text)
        data["turns"] = {int(k): v for k, v in (data.get("turns") or {}).items()}
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class ConversationSummary:
    """A conversation in the list: its id, first question, times and number of answers."""

    id: str
    title: str
    created: str
    updated: str
    answers: int


class ConversationStore:
    """The kept conversations of one index (a Chroma collection).

    Args:
        client: the index's Chroma client (embedded or a server).
        name: the collection name (``<collection>_conversations``).
    """

    def __init__(self, client, name: str):
        self.client = client
        self.name = name
        self._collection = None

    @property
    def collection(self):
        if self._collection is None:
            self._collection = self.client.get_or_create_collection(
                self.name, metadata={"kind": "conversations"}, embedding_function=None)
        return self._collection

    def _owner_of(self, conv_id: str) -> str | None:
        got = self.collection.get(ids=[conv_id], include=["metadatas"])
        return (got["metadatas"][0] or {}).get("owner") if got["ids"] else None

    def save(self, conv: StoredConversation) -> StoredConversation:
        """Store (or replace) a conversation; returns it with its times set.

        Raises:
            ConversationRefused: a conversation with this id belongs to another owner.
        """
        held_by = self._owner_of(conv.id)
        if held_by is not None and held_by != conv.owner:
            raise ConversationRefused(f"对话 {conv.id} 属于其他用户，不能改写。")
        now = _now()
        conv.created = conv.created or now
        conv.updated = now
        self.collection.upsert(
            ids=[conv.id], embeddings=[_NO_VECTOR], documents=[conv.to_json()],
            metadatas=[{"owner": conv.owner, "created": conv.created, "updated": conv.updated,
                        "title": conv.title, "answers": len(conv.turns)}])
        return conv

    def get(self, conv_id: str, owner: str) -> StoredConversation:
        """The conversation ``conv_id`` of ``owner``.

        Raises:
            ConversationNotFound: no conversation has this id.
            ConversationRefused: it belongs to another owner.
        """
        got = self.collection.get(ids=[conv_id], include=["documents", "metadatas"])
        if not got["ids"]:
            # The id is never echoed: it may come from a link, and the page shows this message.
            raise ConversationNotFound("没有这条对话，它可能已被删除。")
        if (got["metadatas"][0] or {}).get("owner") != owner:
            raise ConversationRefused("这条对话属于其他用户（或是在另一个浏览器中进行的），"
                                      "只能打开自己的对话。")
        return StoredConversation.from_json(got["documents"][0])

    def list(self, owner: str, limit: int | None = 50) -> list[ConversationSummary]:
        """The owner's conversations, the most recently updated first (at most ``limit``)."""
        from rag.index.store import get_all

        got = get_all(self.collection, where={"owner": owner}, include=["metadatas"])
        rows = [ConversationSummary(i, m.get("title") or "", m.get("created") or "", m.get("updated") or "",
                                    int(m.get("answers") or 0)) for i, m in zip(got["ids"], got["metadatas"])]
        rows.sort(key=lambda r: (r.updated, r.id), reverse=True)
        return rows[:limit] if limit else rows

    def delete(self, conv_id: str, owner: str) -> None:
        """Remove one of the owner's conversations.

        Raises:
            ConversationNotFound, ConversationRefused: as ``get``.
        """
        self.get(conv_id, owner)
        self.collection.delete(ids=[conv_id])
