"""Conversations kept across page reloads, the 历史对话 list, links to one answer, and downloads.

Whose a conversation is: with accounts (``RAG_USERS_FILE``) the logged-in user's
(``user:NAME``), so it follows them to any browser and app machine; without accounts the
browser's (``browser:ID``), an id kept in the browser's localStorage (``gr.BrowserState``), so
each browser on the machine has its own list. A reader keeps conversations like anyone else:
keeping one's own chat is not a change to the library. An API client with neither keeps its
conversations under its session (``session:HASH``), which no page lists.

Events (wired in ``layout``): the page's load restores the owner's last conversation, or the
one a link names (``/?conv=ID&turn=N``: that conversation, answer N's sources shown);
after each answer the conversation is saved and the list and downloads follow; picking one in
the list reopens it; 新对话 starts a new one and the old stays in the list. Another owner's
conversation is refused with a message, never shown.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import logging
import re
import threading

import gradio as gr

from rag.index.conversations import (ConversationNotFound, ConversationRefused, ConversationStore,
                                     StoredConversation, new_id, valid_id)
from rag.types import AnswerResult, Citation
from rag.web.access import Refused
from rag.web.backend import Services
from rag.web.downloads import DOWNLOAD_KEYS, Downloads
from rag.web.handlers import ChatHandlers, Update
from rag.web.render import render_sources, sources_message
from rag.web.state import Conversation, Turn, assistant_message

log = logging.getLogger("govreport.app")
BROWSER_ID = re.compile(r"^[0-9a-f]{32}$")
# A link's ``turn``: an answer's number, a small positive integer (anything else: the last answer).
TURN_NUMBER = re.compile(r"[1-9][0-9]{0,3}")
# What a link with a malformed ``conv`` gets: a fixed text, never the value (the chat renders
# the message as Markdown, so an echoed value could show a link or load an image).
BAD_LINK = "链接中的对话编号无效（链接可能不完整或被改动过）。"
HISTORY_LIMIT = 50  # conversations the list offers, the most recent first
# What restoring a conversation updates besides the turn's own outputs (layout adds those).
RESTORE_KEYS = ("conv", "chatbot", "history", "browser_id", *DOWNLOAD_KEYS)


def owner_of(request: gr.Request | None, browser_id: str | None) -> str:
    """Whose conversations these are: the logged-in user, else the browser, else the session."""
    name = getattr(request, "username", None) if request is not None else None
    if name:
        return f"user:{name}"
    if browser_id and BROWSER_ID.match(browser_id):
        return f"browser:{browser_id}"
    session = getattr(request, "session_hash", None) if request is not None else None
    return f"session:{session or 'python'}"


def record_result(record: dict) -> AnswerResult:
    """An answer record (``rag.export.answer_record``) as the result the sources panel renders."""
    fields = Citation.__dataclass_fields__
    citations = [Citation(**{k: v for k, v in c.items() if k in fields}) for c in record.get("citations") or []]
    return AnswerResult(question=record.get("question") or "", answer=record.get("answer") or "",
                        refused=bool(record.get("refused")), citations=citations, contexts=[],
                        mode=record.get("mode") or "extractive", table=record.get("table"))


def to_stored(conv: Conversation, owner: str) -> StoredConversation:
    """What is kept of a conversation: messages, standalone questions, each answer's record."""
    messages = [{"role": m.get("role"), "content": m.get("content")} for m in conv.messages]
    if conv.pending and messages and messages[-1]["role"] == "assistant":
        messages = messages[:-2]  # the question being answered: kept once it is answered
    turns = {i: t.record for i, t in conv.turns.items() if t.record is not None and i < len(messages)}
    return StoredConversation(conv.id, owner, messages, list(conv.standalone), turns)


def to_conversation(stored: StoredConversation) -> Conversation:
    """A kept conversation as the page's state (each answer's sources panel rendered again)."""
    turns = {i: Turn(render_sources(record_result(r)), r.get("table"), r) for i, r in stored.turns.items()}
    return Conversation(messages=list(stored.messages), standalone=list(stored.standalone), turns=turns,
                        id=stored.id)


def _when(iso: str) -> str:
    """An ISO time in UTC as this machine's local time, for the list: 05-17 14:03."""
    try:
        return _dt.datetime.fromisoformat(iso).astimezone().strftime("%m-%d %H:%M")
    except ValueError:
        return ""


def _continues(kept: list[dict], messages: list[dict]) -> bool:
    """Whether ``messages`` go on from the ``kept`` ones (begin with them). The last kept answer
    may have ended otherwise (停止 pressed as it was finishing: kept stopped, then whole)."""
    if len(kept) > len(messages):
        return False
    if kept and kept[-1].get("role") == "assistant":
        return kept[:-1] == messages[:len(kept) - 1] and messages[len(kept) - 1].get("role") == "assistant"
    return kept == messages[:len(kept)]


class HistoryHandlers:
    """The events that keep, list and reopen conversations, and fill the download row.

    Args:
        services: the app's services (the store is a collection of their index).
        store: the conversation store (default: ``<collection>_conversations`` of the index).
        downloads: where download files are written (default: a temporary folder).
    """

    def __init__(self, services: Services, store: ConversationStore | None = None,
                 downloads: Downloads | None = None):
        self.services = services
        self._store = store
        self.downloads = downloads or Downloads()
        self._saving = threading.Lock()

    @property
    def store(self) -> ConversationStore:
        if self._store is None:
            index = self.services.ready().index
            self._store = ConversationStore(index.client, f"{self.services.settings.collection}_conversations")
        return self._store

    def _check(self, request: gr.Request | None) -> None:
        # A user removed since logging in keeps nothing; every account may keep its own chats.
        self.services.access.check(request, "reader", "使用历史对话")

    def history_update(self, owner: str, selected: str | None) -> dict:
        """The 历史对话 list: the owner's conversations, newest first, ``selected`` chosen."""
        try:
            rows = self.store.list(owner, limit=HISTORY_LIMIT)
        except Exception as exc:  # the index cannot be reached: the status line says why
            log.warning("conversation list unavailable: %s", exc)
            rows = []
        choices = [(f"{_when(r.updated)} · {r.title or '（空）'}", r.id) for r in rows]
        ids = {r.id for r in rows}
        return gr.update(choices=choices, value=selected if selected in ids else None)

    def restore(self, conv: Conversation, owner: str, browser_id: str | None, number: int | str | None,
                session: str | None, message: str | None = None) -> Update:
        """Show a conversation: its messages, answer ``number``'s sources (default: the last
        answer's), the list with it chosen, and the downloads; ``message`` instead of the chat
        when it could not be opened."""
        index = conv.answer_index(number) if number else None
        if index is None or index not in conv.turns:
            index = conv.last_turn_index()
        turn = ChatHandlers.show_turn(conv, index) if index is not None else {}
        update: Update = {"conv": conv, "chatbot": list(conv.messages),
                          "sources": turn.get("sources", render_sources(None)),
                          "comparison": gr.update(visible=False), **turn,
                          "history": self.history_update(owner, conv.id or None),
                          **self.downloads.update(conv, index, session)}
        if browser_id and BROWSER_ID.match(str(browser_id)):  # never blank the browser's kept id
            update["browser_id"] = browser_id
        if message:
            update["chatbot"] = [assistant_message(f"**提示：** {message}")]
            update["sources"] = sources_message(message)
        return update

    def load(self, browser_id: str | None, request: gr.Request) -> Update:
        """The page's load: the conversation a link names (``?conv=ID&turn=N``), else the
        owner's most recent one, else an empty chat. Gives a new browser its id."""
        browser_id = browser_id if browser_id and BROWSER_ID.match(str(browser_id)) else new_id()
        owner = owner_of(request, browser_id)
        session = getattr(request, "session_hash", None)
        params = dict(getattr(request, "query_params", None) or {})
        conv_id, number = str(params.get("conv") or "").strip(), str(params.get("turn") or "").strip()
        number = int(number) if TURN_NUMBER.fullmatch(number) else None
        try:
            self._check(request)
            if conv_id:
                if not valid_id(conv_id):  # checked before the lookup; the message never echoes it
                    raise ConversationNotFound(BAD_LINK)
                return self.restore(to_conversation(self.store.get(conv_id, owner)), owner, browser_id, number,
                                    session)
            latest = self.store.list(owner, limit=1)
            if latest:
                return self.restore(to_conversation(self.store.get(latest[0].id, owner)), owner, browser_id, None,
                                    session)
        except (ConversationRefused, ConversationNotFound, Refused) as exc:
            text = exc.message if isinstance(exc, Refused) else str(exc)
            return self.restore(Conversation(), owner, browser_id, None, session, f"无法打开这条对话：{text}")
        except Exception as exc:  # the index cannot be reached: an empty chat (the status line says why)
            log.warning("conversation not restored: %s", exc)
        return self.restore(Conversation(), owner, browser_id, None, session)

    def open(self, conv_id: str | None, browser_id: str | None, request: gr.Request) -> Update:
        """Picking a conversation in the 历史对话 list reopens it (its last answer's sources)."""
        owner = owner_of(request, browser_id)
        session = getattr(request, "session_hash", None)
        if not conv_id:
            return {}
        try:
            self._check(request)
            if not valid_id(conv_id):
                raise ConversationNotFound(BAD_LINK)
            conv = to_conversation(self.store.get(conv_id, owner))
        except (ConversationRefused, ConversationNotFound, Refused) as exc:
            text = exc.message if isinstance(exc, Refused) else str(exc)
            return self.restore(Conversation(), owner, browser_id, None, session, f"无法打开这条对话：{text}")
        return self.restore(conv, owner, browser_id, None, session)

    def save(self, conv: Conversation | None, browser_id: str | None, request: gr.Request = None) -> Update:
        """After an answer (or 停止): keep the conversation, then the list and the downloads
        (the ``/downloads`` endpoint: the last answer's files)."""
        conv = Conversation.of(conv)
        owner = owner_of(request, browser_id)
        session = getattr(request, "session_hash", None)
        update: Update = {}
        if conv.id and conv.messages:
            try:
                self._check(request)
                kept = self._keep(conv, owner, session)
                if kept.id != conv.id:  # kept under a new id: the page goes on with that one
                    conv = dataclasses.replace(conv, id=kept.id)
                    update["conv"] = conv
            except Exception as exc:  # never in the way of the chat: the answer is shown all the same
                log.warning("conversation %s not kept: %s", conv.id, exc)
        return {**update, "history": self.history_update(owner, conv.id or None),
                **self.downloads.update(conv, None, session)}

    def _keep(self, conv: Conversation, owner: str, session: str | None) -> StoredConversation:
        """Store the conversation without losing another page's answers.

        Two tabs of one browser (or one user) both reopen the owner's latest conversation, so
        they hold the same id. A page only ever adds messages to what it kept, so when the kept
        messages are not where this page's begin, another page has added its own since: this
        page's conversation is kept under an id of its own (the same one at each of its saves,
        and the page is given it), and the other page's record stays as it is.
        """
        stored = to_stored(conv, owner)
        with self._saving:  # one check-and-write at a time in this process
            held = self._held(stored.id, owner)
            if held is not None and not _continues(held.messages, stored.messages):
                stored.id = self._fork_id(conv.id, owner, session)
                held = self._held(stored.id, owner)
                if held is not None and not _continues(held.messages, stored.messages):
                    stored.id = new_id()  # a fork of the fork: nothing to continue
                    held = None
            if held is not None:
                stored.created = held.created
            return self.store.save(stored)

    def _held(self, conv_id: str, owner: str) -> StoredConversation | None:
        try:
            return self.store.get(conv_id, owner)
        except ConversationNotFound:
            return None

    @staticmethod
    def _fork_id(conv_id: str, owner: str, session: str | None) -> str:
        """The id a page's conversation goes on under once another page has changed ``conv_id``:
        the same for each save of that page (its session), unguessable like ``new_id``."""
        if not session:
            return new_id()
        return hashlib.sha256(f"{conv_id}\0{owner}\0{session}".encode()).hexdigest()[:32]

    def select_turn(self, conv: Conversation | None, index: int | None, request: gr.Request = None) -> Update:
        """Clicking an earlier answer: the downloads (and the link) become that answer's."""
        return self.downloads.update(Conversation.of(conv), index, getattr(request, "session_hash", None))

    def new_chat(self, browser_id: str | None, request: gr.Request = None) -> Update:
        """新对话: nothing chosen in the list (the old conversation stays in it), no downloads."""
        return {"history": self.history_update(owner_of(request, browser_id), None),
                "downloads": gr.update(visible=False), "answer_link": ""}
