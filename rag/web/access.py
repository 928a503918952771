"""Who is asking, and what they may do: the login, the role checks and fair use of the app.

With ``RAG_USERS_FILE`` set, Gradio asks for a login (``launch(auth=Access.login)``) and every
request carries the user's name (``gr.Request.username``); handlers that change the library call
``Access.check`` with the role they need, and make the change inside ``Access.acting`` so the
audit log names the user. Without a users file the app serves on loopback only
(``rag.accounts.serving_check``) and everyone there may do everything.

Fair use: each user (or, without accounts, each browser session / API client) may have at most
``RAG_MAX_INFLIGHT_PER_USER`` questions being answered at once; a further one is refused at
once with a message, so a client sending questions in a loop holds at most that many of the
chat's workers, and the queue moves on for everyone else.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import defaultdict
from typing import Iterator

import anyio
import gradio as gr

from rag.accounts import ROLE_ZH, AccountError, Accounts
from rag.config import Settings
from rag.index.audit import acting_as, os_user

log = logging.getLogger("govreport.app")
LOCAL_ACTOR = "本机（未启用账户）"  # the actor of web changes when the app has no accounts


class Refused(gr.Error):
    """The asker may not do this now (shown in the page; ``gradio_client`` raises it as an AppError)."""


class Access:
    """The app's accounts, role checks and per-user question slots.

    Args:
        settings: ``users_file`` (accounts; None: loopback only, no login) and
            ``max_inflight_per_user``.
    """

    def __init__(self, settings: Settings):
        self.accounts = Accounts(settings.users_file) if settings.users_file else None
        self.max_inflight = settings.max_inflight_per_user
        self._lock = threading.Lock()
        self._inflight: dict[str, int] = defaultdict(int)

    async def login(self, username: str, password: str) -> bool:
        """Gradio's ``auth=`` check (argon2 takes tens of milliseconds: off the event loop)."""
        if self.accounts is None:
            return False
        try:
            return await anyio.to_thread.run_sync(self.accounts.verify, username, password) is not None
        except AccountError as exc:  # a users file broken by hand: nobody gets in, the log says why
            log.error("login refused: %s", exc)
            return False

    @staticmethod
    def _request(request: gr.Request | None) -> gr.Request | None:
        """The event's request: the one Gradio passed, or the one of the event running now."""
        if request is not None:
            return request
        from gradio.context import LocalContext

        return LocalContext.request.get(None)

    def check(self, request: gr.Request | None, role: str, doing: str) -> None:
        """Raise ``Refused`` unless the asker has ``role`` (or a higher one).

        Args:
            request: the event's request (None: the current event's; none at all: a call from
                Python in this process, which is trusted).
            role: ``reader``, ``editor`` or ``admin``.
            doing: what is refused, in Chinese ("删除报告"), for the message.
        """
        request = self._request(request)
        if self.accounts is None or request is None:
            return
        name = getattr(request, "username", None)
        try:
            account = self.accounts.get(name)
        except AccountError as exc:
            log.error("%s refused: %s", doing, exc)
            raise Refused(f"无法{doing}：账户文件有误，请联系管理员（{exc}）。") from exc
        if account is None:
            raise Refused(f"无法{doing}：未登录，或账户“{name}”已被删除。请重新登录。")
        if not account.may(role):
            raise Refused(f"无权{doing}：{account.name} 的角色是「{ROLE_ZH[account.role]}」，"
                          f"{doing}需要「{ROLE_ZH[role]}」或更高的角色。请联系管理员。")

    def actor(self, request: gr.Request | None) -> tuple[str, str]:
        """(actor, via) for the audit log."""
        request = self._request(request)
        if request is None:
            return os_user(), "python"
        if self.accounts is None:
            return LOCAL_ACTOR, "web"
        return str(getattr(request, "username", None) or "?"), "web"

    def acting(self, request: gr.Request | None) -> contextlib.AbstractContextManager:
        """The block's changes are recorded as the asker's."""
        return acting_as(*self.actor(request))

    def _key(self, request: gr.Request | None) -> str:
        request = self._request(request)
        if request is None:
            return "python"
        return str(getattr(request, "username", None) or getattr(request, "session_hash", None) or "local")

    @contextlib.contextmanager
    def question(self, request: gr.Request | None = None) -> Iterator[None]:
        """Hold one of the asker's question slots for the block.

        Raises:
            Refused: the asker already has ``max_inflight`` questions being answered (or may
                not ask: a user removed since logging in).
        """
        self.check(request, "reader", "提问")
        key = self._key(request)
        with self._lock:
            if self._inflight[key] >= self.max_inflight:
                raise Refused(f"您已有 {self._inflight[key]} 个问题正在回答，请等其中一个答完再提问"
                              f"（每位用户同时最多 {self.max_inflight} 个，由 RAG_MAX_INFLIGHT_PER_USER 设置）。")
            self._inflight[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._inflight[key] -= 1
                if not self._inflight[key]:
                    del self._inflight[key]
