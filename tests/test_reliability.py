"""Reliability: bad files, input limits, LLM servers that fail, and no network.

Everything runs for real: `rag ingest` / `rag ask` as subprocesses over a real Chroma index
with the real embedding model, and the misbehaving LLM servers are real HTTP servers on
127.0.0.1 (`LLMServer` below), spoken to by the real OpenAI client. A hang shows up as a
subprocess that does not finish within its (generous) timeout, never as a timed assertion.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import REPORTS, ROOT

RAG = [sys.executable, "-m", "rag.cli"]
HANG_LIMIT_S = 180  # far beyond any answer here; only a hang reaches it


def rag(*args: str, env: dict | None = None, cwd: Path = ROOT, timeout: float = HANG_LIMIT_S,
        **variables: str) -> subprocess.CompletedProcess:
    """Run the `rag` command line in a fresh process; a hang fails the test with TimeoutExpired."""
    full_env = {**os.environ, "RAG_LLM": "none", **(env or {}), **variables}
    return subprocess.run(RAG + list(args), capture_output=True, text=True, cwd=cwd, env=full_env,
                          timeout=timeout)


# --------------------------------------------------------------------------------------------
# No network at run time
# --------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_outbound_connections_are_blocked_during_tests():
    from pytest_socket import SocketConnectBlockedError

    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1: never a real host
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("2001:db8::1", 443), timeout=1)


def test_loopback_servers_stay_reachable():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            peer, _ = server.accept()
            client.sendall(b"ok")
            assert peer.recv(2) == b"ok"
            peer.close()


# --------------------------------------------------------------------------------------------
# LLM servers that fail
# --------------------------------------------------------------------------------------------

QUESTION = "绵阳市2024年新收行政复议案件多少件？"


def _sse(content: str | None = None, finish: str | None = None) -> bytes:
    chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"content": content} if content is not None else {},
                          "finish_reason": finish}]}
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()


class LLMServer:
    """A real HTTP server on 127.0.0.1 that misbehaves as an OpenAI-compatible endpoint.

    Request ``i`` to ``/v1/chat/completions`` gets ``behaviours[i]`` (one of ``BEHAVIOURS``; the
    last one repeats). Handlers that stall wait on ``self.closing`` so the server shuts down promptly.
    """

    BEHAVIOURS = ("silent", "trickle", "keepalive", "html", "bad-json", "error-500", "empty",
                  "cut-off", "reset")

    def __init__(self, *behaviours: str):
        assert behaviours and set(behaviours) <= set(self.BEHAVIOURS)
        self.behaviours = behaviours
        self.closing = threading.Event()
        self.requests = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner.lock:
                    behaviour = owner.behaviours[min(owner.requests, len(owner.behaviours) - 1)]
                    owner.requests += 1
                try:
                    owner._respond(self, behaviour)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: that is the point of several behaviours

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def _headers(handler, status=200, content_type="text/event-stream", length=None):
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        if length is None:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(length))
        handler.end_headers()

    @staticmethod
    def _chunk(handler, data: bytes) -> None:
        handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        handler.wfile.flush()

    def _respond(self, handler, b: str) -> None:
        if b == "silent":  # accepts the request, never answers
            self.closing.wait(600)
        elif b in ("trickle", "keepalive"):  # bytes keep coming, so no read timeout ever fires
            self._headers(handler)
            while not self.closing.wait(0.2):
                self._chunk(handler, _sse("绵阳") if b == "trickle" else b": keep-alive\n\n")
        elif b == "html":
            body = "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>".encode()
            self._headers(handler, content_type="text/html", length=len(body))
            handler.wfile.write(body)
        elif b == "bad-json":
            self._headers(handler)
            self._chunk(handler, b"data: {\"choices\": [{\"delta\": {\"content\": \"\xe7\xbb\n\n")
            self._chunk(handler, b"data: {not json at all}\n\n")
            self._chunk(handler, b"")
        elif b == "error-500":
            body = json.dumps({"error": {"message": "model overloaded", "type": "server_error"}}).encode()
            self._headers(handler, status=500, content_type="application/json", length=len(body))
            handler.wfile.write(body)
        elif b == "empty":
            self._headers(handler)
            self._chunk(handler, _sse(finish="stop") + b"data: [DONE]\n\n")
            self._chunk(handler, b"")
        elif b == "cut-off":  # half an answer, then the connection drops
            self._headers(handler)
            self._chunk(handler, _sse("绵阳市新收"))
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
        elif b == "reset":  # the connection is closed before any response
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> "LLMServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def _llm_env(bundled_index, server: LLMServer) -> dict:
    return {"RAG_INDEX_DIR": bundled_index.settings.index_dir, "RAG_LLM": "openai",
            "RAG_LLM_BASE_URL": server.url, "RAG_LLM_MODEL": "qwen", "RAG_LLM_TIMEOUT": "3"}


def _assert_extractive_fallback(result: dict) -> None:
    assert result["mode"] == "extractive" and not result["refused"], result
    assert "1472" in result["answer"] and result["citations"][0]["region"] == "绵阳市"
    note = result["notes"][-1] if result["notes"] else ""
    assert "answered extractively" in note and len(note) < 400 and "Traceback" not in note, result["notes"]


def test_rag_ask_with_a_server_that_never_answers_gives_the_extractive_answer(bundled_index):
    with LLMServer("silent") as server:
        run = rag("ask", QUESTION, "--json", "--mode", "llm", env=_llm_env(bundled_index, server))
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert server.requests == 1  # the model really was asked
    result = json.loads(run.stdout)
    _assert_extractive_fallback(result)
    assert "timed out" in result["notes"][-1].lower() or "within 3 s" in result["notes"][-1]


def test_every_kind_of_llm_server_failure_degrades_to_the_extractive_answer(bundled_index, tmp_path):
    """One `rag eval` process, one question per failure: the server misbehaves differently each time."""
    behaviours = LLMServer.BEHAVIOURS
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": b, "question": QUESTION, "kind": "fact",
                                             "must_include": [["1472"]]}, ensure_ascii=False) + "\n"
                                 for b in behaviours), encoding="utf-8")
    out = tmp_path / "results.jsonl"
    with LLMServer(*behaviours) as server:
        run = rag("eval", str(questions), "--mode", "llm", "--out", str(out), "-q",
                  env=_llm_env(bundled_index, server))
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert server.requests == len(behaviours)
    results = {r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert list(results) == list(behaviours)
    for behaviour, result in results.items():
        assert "error" not in result, (behaviour, result["error"])
        _assert_extractive_fallback(result)
    # The deadline covers the whole answer, not just each read: these two kept sending.
    for behaviour in ("trickle", "keepalive"):
        assert "within 3 s" in results[behaviour]["notes"][-1], results[behaviour]["notes"]


def test_stream_within_passes_pieces_and_errors_through_and_gives_up_at_the_deadline():
    from rag.llm import LLMTimeout, stream_within

    assert list(stream_within(lambda: iter(["太原", "1274", "件"]), 30)) == ["太原", "1274", "件"]

    def broken():
        yield "半"
        raise ConnectionError("connection reset by peer")

    with pytest.raises(ConnectionError, match="reset"):
        list(stream_within(broken, 30))

    release = threading.Event()
    closed = threading.Event()

    def stalls():  # one piece, then nothing: the shape of a server that stops mid-answer
        try:
            yield "绵阳"
            release.wait(60)
            yield "never"
        finally:
            closed.set()

    received = []
    with pytest.raises(LLMTimeout, match="RAG_LLM_TIMEOUT"):
        for piece in stream_within(stalls, 0.5):
            received.append(piece)
    assert received == ["绵阳"]
    release.set()
    assert closed.wait(30)  # the abandoned stream is closed, not left open


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf"])
def test_a_bad_llm_timeout_setting_is_named(monkeypatch, value):
    from rag.config import Settings
    from rag.llm import ChatModelUnavailable, make_chat_model

    monkeypatch.setenv("RAG_LLM_TIMEOUT", value)
    with pytest.raises(ChatModelUnavailable, match="RAG_LLM_TIMEOUT must be a positive number"):
        make_chat_model(Settings(llm="openai", llm_base_url="http://127.0.0.1:9/v1", llm_model="m"))
    monkeypatch.setenv("RAG_LLM_TIMEOUT", "2.5")
    model = make_chat_model(Settings(llm="openai", llm_base_url="http://127.0.0.1:9/v1", llm_model="m"))
    assert model.request_timeout == 2.5
