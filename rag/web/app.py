"""The Gradio app: a cited chat over the indexed reports, passage search, and the report library.

Run with ``python app.py`` or ``rag serve`` (``make run`` does both the set-up and this).

Pages and endpoints:
- ``/``: the tabs. 问答: a streaming multi-turn chat (follow-ups such as "那绵阳呢？" are
  rewritten into standalone questions), the cited passages beside it with the cited sentences
  highlighted, comparison tables and bar charts, place/year filters and the answer mode.
  检索原文: passage search. 数字浏览: every extracted figure, filtered, exported, corrected.
  批量提问: a file of questions answered into an Excel sheet. 报告库: the reports, uploads,
  corrections, removal.
- ``/report/{doc_id}?chunk=N&hl=S-E``: a whole report, scrolled to passage N with the span
  S-E of it marked (the sources panel links here).
- API (``gradio_client``): ``/chat`` (the chat, streaming), ``/ask`` (one question, the
  result object of CONTRACT.md, streaming), ``/search``, ``/library``, ``/audit``, ``/upload``,
  ``/correct``, ``/remove``, ``/figures``, ``/figure_rows``, ``/export_figures_csv``,
  ``/export_figures_xlsx``, ``/correct_figure``, ``/remove_figure``, ``/batch``, ``/downloads``
  (after ``/chat`` in the same session: that conversation kept, its last answer as .docx/.md, the
  conversation as .docx/.md, the table as .csv/.xlsx).
- ``/?conv=ID&turn=N``: the page with the asker's conversation ID reopened at answer N
  (``rag.web.history``); without it, the last conversation of this user or browser.

With ``RAG_USERS_FILE`` every page and endpoint needs a login (``gradio_client.Client(url,
auth=(name, password))``), and ``/upload``, ``/correct``, ``/remove``, ``/correct_figure`` and
``/remove_figure`` need the editor role
(``rag.web.access``); without it the app serves loopback only.

Everything that can fail (no index, a Chroma server that is down, a missing model, a bad
upload) is shown as a Chinese message in the page, never as a traceback.

This module composes the app (``GovReportApp``) and serves it; the page is ``layout``, what its
events do is ``handlers`` (see ``rag/web/__init__.py`` for the rest).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

import gradio as gr
from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from rag.answer.prompts import fixed_prompt_messages
from rag.accounts import serving_check
from rag.config import Settings
from rag.ingest.uploads import UploadPolicy
from rag.models.server import prestart_bundled_model
from rag.types import AnswerResult
from rag.web.handlers import ChatHandlers, LibraryHandlers, SearchHandler, UploadHandler
from rag.web.layout import CSS, Handlers, build_blocks
from rag.web.report_route import report_route
from rag.web.backend import Services
from rag.web.messages import friendly_error
from rag.web.users import UserHandlers
from rag.web.batch import BatchHandler
from rag.web.figures_tab import FiguresHandler

# Kept importable from here: the names tests and scripts used before the app was split up.
from rag.web.layout import CHAT_CONCURRENCY, EXAMPLES, LIBRARY_COLUMNS, TITLE, UPLOAD_COLUMNS  # noqa: F401
from rag.web.messages import note_zh  # noqa: F401
from rag.web.modes import AnswerModes, ModeChoice  # noqa: F401
from rag.web.render import (COMPARE_COLUMNS, NOT_MENTIONED, answer_markdown, chunk_number,  # noqa: F401
                            comparison_frames, render_sources, report_page)
from rag.web.streaming import HEARTBEAT_S, background_stream  # noqa: F401

log = logging.getLogger("govreport.app")
LOGIN_MESSAGE = "政府年度报告问答：请使用管理员为您创建的账户登录。"


def _behind_login(route: APIRoute) -> APIRoute:
    """The route, answered only to a logged-in user when the app has accounts (Gradio guards only
    its own routes). The user is Gradio's: the login cookie names a token of the served app."""

    def logged_in(request: Request) -> None:
        app = request.app  # the Gradio App the route is served by
        if getattr(app, "auth", None) is None:
            return
        cookie = f"access-token-{app.cookie_id}"
        token = request.cookies.get(cookie) or request.cookies.get(f"access-token-unsecure-{app.cookie_id}")
        if app.tokens.get(token) is None:
            raise HTTPException(status_code=401, detail="请先登录（打开首页登录后再查看报告全文）。")

    return APIRoute(route.path, route.endpoint, methods=list(route.methods), response_class=route.response_class,
                    dependencies=[Depends(logged_in)])


class GovReportApp:
    """The Gradio Blocks of the app and the services behind them.

    Args:
        settings: the settings (default: ``Settings.load()``).
        uploads: the upload policy (default: ``UploadPolicy.from_env()``).
        embeddings: the embedding model (tests pass the session's model).

    Example:
        >>> app = GovReportApp(Settings.load())
        >>> app.launch("127.0.0.1", 7860)
    """

    def __init__(self, settings: Settings | None = None, uploads: UploadPolicy | None = None,
                 embeddings=None):
        self.settings = settings or Settings.load()
        self.services = Services(self.settings, uploads or UploadPolicy.from_env(), embeddings)
        try:
            self.services.ready()
            self.startup_error = None
        except Exception as exc:  # the page opens anyway and says what is wrong
            self.startup_error = friendly_error(exc, self.settings)
        self.chat = ChatHandlers(self.services)
        self.searcher = SearchHandler(self.services)
        self.library = LibraryHandlers(self.services)
        self.uploader = UploadHandler(self.services)
        self.figures = FiguresHandler(self.services)
        self.batch = BatchHandler(self.services)
        self.users = UserHandlers(self.services)
        status = f"⚠️ {self.startup_error}" if self.startup_error else self.status_line()
        self.blocks = build_blocks(Handlers(self.chat, self.searcher, self.library, self.uploader, users=self.users,
                                            figures=self.figures, batch=self.batch),
                                   self.services.mode_choices(), self.services.uploads, status)

    # --- the handlers, for scripts and tests that use the app without its page ----------------

    def status_line(self) -> str:
        return self.library.status_line()

    def library_rows(self) -> list[list]:
        return self.library.library_rows()

    def report_options(self) -> list[tuple[str, str]]:
        return self.library.report_options()

    def answer_stream(self, question: str, regions: list[str] | None, years: list[str] | None,
                      mode: str | None, history: list[str] | None = None,
                      stopped: Callable[[], bool] | None = None
                      ) -> Iterator[tuple[str, AnswerResult | None, str | None]]:
        return self.chat.answer_stream(question, regions, years, mode, history, stopped)

    def ask_api(self, question: str, regions: list[str] | None = None, years: list[int] | None = None,
                mode: str = "", history: list[str] | None = None) -> Iterator[dict]:
        return self.chat.ask_api(question, regions, years, mode, history)

    def search(self, query: str, regions: list[str], years: list[str]) -> str:
        return self.searcher.search(query, regions, years)

    def remove(self, doc_id: str | None) -> str:
        return self.library.remove(doc_id)

    def correct(self, doc_id: str | None, region: str | None, year: float | str | None) -> str:
        return self.library.correct(doc_id, region, year)

    def upload(self, files: list | None, progress: gr.Progress = gr.Progress()) -> Iterator[list[list]]:
        return self.uploader.upload(files, progress)

    def selected_report(self, doc_id: str | None) -> tuple[str, int | None]:
        fields = self.library.selected_report(doc_id)
        return fields["fix_region"], fields["fix_year"]

    # --- serving ----------------------------------------------------------------------------

    def launch(self, host: str = "127.0.0.1", port: int = 7860, **kwargs):
        """Serve the app (``prevent_thread_lock=True`` returns at once; tests use it).

        With ``RAG_USERS_FILE`` the page asks for a login; without it only ``127.0.0.1`` (or
        another loopback address) is served.

        Raises:
            AccountError: a non-loopback ``host`` without a users file, or a users file without
                accounts (``rag user add``).
        """
        accounts = serving_check(self.settings.users_file, host)
        if accounts is not None:
            kwargs.setdefault("auth", self.services.access.login)
            kwargs.setdefault("auth_message", LOGIN_MESSAGE)
        theme = gr.themes.Soft(primary_hue="red", secondary_hue="amber",
                               font=["PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei",
                                     "system-ui", "sans-serif"],
                               font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
        routes = [_behind_login(report_route(self.services))]
        return self.blocks.launch(server_name=host, server_port=port, show_error=False, css=CSS, theme=theme,
                                  max_file_size=self.services.uploads.max_bytes,
                                  app_kwargs={"routes": routes}, **kwargs)

    def close(self) -> None:
        self.blocks.close()


def build_app(settings: Settings | None = None, uploads: UploadPolicy | None = None,
              embeddings=None) -> GovReportApp:
    """The app over the configured index (see ``GovReportApp``)."""
    return GovReportApp(settings, uploads, embeddings)


def serve(host: str = "127.0.0.1", port: int = 7860) -> None:
    """Start the app and block (``rag serve``, ``python app.py``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.load()
    serving_check(settings.users_file, host)  # before loading anything: a refused set-up fails at once
    prestart_bundled_model(warm_up=fixed_prompt_messages())  # usually done before this module was imported
    app = build_app()
    if app.services.modes is not None:
        app.services.modes.preload()
    app.launch(host, port)


if __name__ == "__main__":
    serve(os.environ.get("RAG_HOST", "127.0.0.1"), int(os.environ.get("RAG_PORT", "7860")))
