"""Chat models from the settings: an OpenAI-compatible server or the bundled local model.

``make_chat_model`` never raises for a missing model: it returns ``None`` with the reason,
and the answerer falls back to extractive answers and says why.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from functools import lru_cache
from typing import Callable, Iterator

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
        # An in-process model stops at its next token: wait for that, so the caller's lock on
        # the model is not released while it still runs. A stalled server is not waited for.
        worker.join(timeout=STOP_WAIT_S)


def make_chat_model(settings: Settings) -> BaseChatModel:
    """The chat model the settings ask for.

    Raises:
        ChatModelUnavailable: with a message saying what to install or set.
    """
    if settings.llm == "none":
        raise ChatModelUnavailable("RAG_LLM=none: extractive answers only")
    timeout = llm_timeout()  # a bad RAG_LLM_TIMEOUT is reported here, once, for every backend
    if settings.llm == "openai":
        if not settings.llm_base_url or not settings.llm_model:
            raise ChatModelUnavailable("RAG_LLM=openai needs RAG_LLM_BASE_URL and RAG_LLM_MODEL")
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(base_url=settings.llm_base_url, model=settings.llm_model,
                          api_key=settings.llm_api_key or "not-needed", temperature=0, max_tokens=512,
                          timeout=timeout, max_retries=0)
    from rag.bundled_model import is_installed, model_path

    path = model_path()
    # A model of the user's own (RAG_LOCAL_MODEL) is not hash-checked; the bundled one is.
    if not (path.is_file() if os.environ.get("RAG_LOCAL_MODEL") else is_installed(path)):
        raise ChatModelUnavailable(f"the bundled model is not installed ({path} missing; run `make model`)")
    try:
        import llama_cpp  # noqa: F401 - built by `make install` from the sdist
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ChatModelUnavailable(f"llama-cpp-python is not installed: {exc}") from exc
    try:
        return _local_model(str(path))
    except Exception as exc:
        raise ChatModelUnavailable(f"cannot load the bundled model {path}: {exc}") from exc


# llama.cpp's in-process model serves one generation at a time: two threads on one context abort
# the process (GGML_ASSERT). A generation given up by ``stream_within`` still runs in its worker
# thread until its next token, so the lock belongs to the generation, not to the caller.
_LOCAL_GENERATION = threading.Lock()


@lru_cache(maxsize=2)
def _local_model(path: str) -> BaseChatModel:
    """One loaded copy per model file and process (loading takes seconds and ~1.2 GB)."""
    from langchain_community.chat_models import ChatLlamaCpp

    class SerialChatLlamaCpp(ChatLlamaCpp):
        """ChatLlamaCpp whose generations never overlap (several app users, timed-out answers)."""

        def _generate(self, *args, **kwargs):
            with _LOCAL_GENERATION:
                return super()._generate(*args, **kwargs)

        def _stream(self, *args, **kwargs):
            with _LOCAL_GENERATION:  # released when the stream ends or is closed
                yield from super()._stream(*args, **kwargs)

    return SerialChatLlamaCpp(model_path=path, n_ctx=4096, n_batch=512, n_threads=os.cpu_count() or 2,
                              temperature=0, max_tokens=400, verbose=False, streaming=True)
