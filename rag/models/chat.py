"""Chat models from the settings: an OpenAI-compatible server, or the bundled model in its own
supervised process (``rag.models.server``) behind the same OpenAI-compatible client.

``make_chat_model`` raises ``ChatModelUnavailable`` with the reason when no model can be used;
the answerer then gives extractive answers and says why.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any, Callable, Iterator

from langchain_core.language_models import BaseChatModel

from rag.config import Settings

DEFAULT_LLM_TIMEOUT_S = 60.0
STOP_WAIT_S = 2.0  # how long an abandoned stream gets to stop


class ChatModelUnavailable(RuntimeError):
    """The configured LLM cannot be used (not installed, not configured)."""


def llm_timeout() -> float:
    """Seconds an LLM answer may take (``RAG_LLM_TIMEOUT``, default 60), read when asked.

    It bounds each server call and the whole streamed answer: a server that accepts the
    request and then sends nothing, or trickles tokens forever, is given up on after this.

    Raises:
        ChatModelUnavailable: the variable is not a positive number.
    """
    raw = os.environ.get("RAG_LLM_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_LLM_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ChatModelUnavailable(f"RAG_LLM_TIMEOUT must be a positive number of seconds, got {raw!r}")
    return seconds


class LLMTimeout(TimeoutError):
    """The model did not finish its answer within the time allowed."""


def stream_within(start: Callable[[], Iterator[str]], seconds: float) -> Iterator[str]:
    """Yield the pieces of ``start()``, giving up when the whole stream takes over ``seconds``.

    A client's own timeout is per read: a server that keeps sending (tokens at a crawl, or
    keep-alive comments that carry no token) never trips it. The stream is read in a worker
    thread so the deadline holds whatever the server does; on giving up, the worker stops at
    its next piece and closes the stream.

    Raises:
        LLMTimeout: the deadline passed; the pieces yielded so far are an unfinished answer.
    """
    pieces: queue.Queue = queue.Queue()
    stop = threading.Event()

    def read() -> None:
        try:
            stream = start()
            try:
                for piece in stream:
                    if stop.is_set():
                        break
                    pieces.put(("piece", piece))
            finally:
                close = getattr(stream, "close", None)
                if close:
                    close()
            pieces.put(("end", None))
        except BaseException as exc:  # handed to the reader, who raises it
            pieces.put(("error", exc))

    worker = threading.Thread(target=read, name="llm-stream", daemon=True)
    worker.start()
    deadline = time.monotonic() + seconds
    try:
        while True:
            try:
                kind, value = pieces.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise LLMTimeout(f"no complete answer within {seconds:g} s (RAG_LLM_TIMEOUT)") from None
            if kind == "piece":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        stop.set()
        # The worker closes the stream at its next piece (the server then stops generating);
        # a stalled server is not waited for longer than this.
        worker.join(timeout=STOP_WAIT_S)


def make_chat_model(settings: Settings, *, share_server: bool = False) -> BaseChatModel:
    """The chat model the settings ask for.

    Args:
        settings: ``llm`` names the backend (``local``: the bundled model in its own process).
        share_server: the bundled model's process is shared with other runs and outlives this
            one until idle (the CLI); otherwise it is this process's own (the app, tests).

    Raises:
        ChatModelUnavailable: with a message saying what to install or set.
    """
    if settings.llm == "none":
        raise ChatModelUnavailable("RAG_LLM=none: extractive answers only")
    timeout = llm_timeout()  # a bad RAG_LLM_TIMEOUT is reported here, once, for every backend
    if settings.llm == "openai":
        if not settings.llm_base_url or not settings.llm_model:
            raise ChatModelUnavailable("RAG_LLM=openai needs RAG_LLM_BASE_URL and RAG_LLM_MODEL")
        return openai_chat(settings.llm_base_url, settings.llm_model, settings.llm_api_key, timeout)
    from rag.models.bundled import is_usable, model_path

    path = model_path()
    if not is_usable(path):
        raise ChatModelUnavailable(f"the bundled model is not installed ({path} missing; run `make model`)")
    from rag.models.build import cpu_can_run_build
    from rag.models.server import ModelServer, bundled_server

    ok, why = cpu_can_run_build()
    if not ok:
        raise ChatModelUnavailable(why)
    try:
        server = bundled_server(shared=share_server)
    except ModelServer.ConfigError as exc:
        raise ChatModelUnavailable(str(exc)) from exc
    return SupervisedChatModel(server=server, timeout=timeout)


def openai_chat(base_url: str, model: str, api_key: str | None, timeout: float) -> BaseChatModel:
    """The one client for every model: a hosted one, or the bundled one's own server."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=base_url, model=model, api_key=api_key or "not-needed", temperature=0,
                      max_tokens=512, timeout=timeout, max_retries=0)


class SupervisedChatModel(BaseChatModel):
    """The bundled model, answering from its supervised process through ``openai_chat``.

    The process is started on the first call (or earlier, by ``server.start_in_background``).
    When it dies during an answer, the call raises ``ModelServer.Stopped`` (the answerer falls
    back to the reports' own sentences and says so) and the process is restarted for the next
    question. An answer that times out with nothing received restarts a hung process.
    """

    server: Any
    timeout: float = DEFAULT_LLM_TIMEOUT_S

    @property
    def _llm_type(self) -> str:
        return "govreport-bundled-llama-cpp"

    def _client(self) -> tuple[BaseChatModel, int | None]:
        from rag.models.server import MODEL_ALIAS, ModelServer

        try:
            url = self.server.ensure()
        except ModelServer.StartError as exc:
            raise ChatModelUnavailable(f"the bundled model cannot run: {exc}") from exc
        return openai_chat(url, MODEL_ALIAS, None, self.timeout), self.server.pid

    def _failed(self, exc: Exception, pid: int | None) -> Exception:
        from rag.models.server import ModelServer

        time.sleep(0.2)  # the connection drops a moment before the process is reaped
        if not self.server.alive() or self.server.pid != pid:  # dead, or already restarted
            if self.server.shared:  # the CLI: no monitor thread restarts it
                self.server.start_in_background()
            return ModelServer.Stopped("the built-in model process stopped during the answer; "
                                       "it is being restarted")
        return exc

    def given_up(self, received_any: bool) -> None:
        """The answer's deadline passed. With not one token received, the process is taken to
        be hung (a stuck decode holds its model lock, so every later question would wait
        behind it) and is restarted; a slow answer that was still streaming is left alone."""
        if not received_any and self.server.alive():
            self.server.restart("no token before the answer deadline")

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        client, pid = self._client()
        try:
            return client._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        except Exception as exc:
            raise self._failed(exc, pid) from exc
        finally:
            self.server.touch()

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        client, pid = self._client()
        try:
            for chunk in client._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
                self.server.touch()  # a shared server's idle clock starts when the answer ends
                yield chunk
        except Exception as exc:
            raise self._failed(exc, pid) from exc
