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


def test_processes_the_tests_start_are_held_to_loopback_too():
    probe = ("import socket, sys\n"
             "server = socket.create_server(('127.0.0.1', 0))\n"
             "socket.create_connection(server.getsockname(), timeout=5).close()\n"
             "try:\n"
             "    socket.create_connection(('192.0.2.1', 443), timeout=1)\n"
             "except Exception as exc:\n"
             "    print(type(exc).__name__)\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "SocketConnectBlockedError"


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
    from rag.models.chat import LLMTimeout, stream_within

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
    from rag.models.chat import ChatModelUnavailable, make_chat_model

    monkeypatch.setenv("RAG_LLM_TIMEOUT", value)
    with pytest.raises(ChatModelUnavailable, match="RAG_LLM_TIMEOUT must be a positive number"):
        make_chat_model(Settings(llm="openai", llm_base_url="http://127.0.0.1:9/v1", llm_model="m"))
    monkeypatch.setenv("RAG_LLM_TIMEOUT", "2.5")
    model = make_chat_model(Settings(llm="openai", llm_base_url="http://127.0.0.1:9/v1", llm_model="m"))
    assert model.request_timeout == 2.5


# --------------------------------------------------------------------------------------------
# Input limits
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def answerer(bundled_index):
    from rag.answer.answerer import Answerer
    from rag.retrieve.hybrid import HybridRetriever

    return Answerer(HybridRetriever(index=bundled_index, k=8))


@pytest.mark.parametrize("pasted,clean", ids=["ansi-nul-zero-width", "bom-crlf-tab", "nbsp-ideographic-space"], argvalues=[
    ("太原市\x1b[31m2024年\x1b[0m新收\u200b行政复议\x00案件多少件？\x07", "太原市2024年新收行政复议案件多少件？"),
    ("\ufeff  绵阳市2024年\r\n新收行政复议案件多少件？\t", "绵阳市2024年 新收行政复议案件多少件？"),
    ("How\xa0many\u3000legal aid cases did\u2003Mianyang handle in 2024?",
     "How many legal aid cases did Mianyang handle in 2024?"),
])
def test_control_characters_and_odd_spaces_do_not_change_the_answer(answerer, pasted, clean):
    got, expected = answerer.run(pasted, mode="extractive"), answerer.run(clean, mode="extractive")
    assert got.question == clean
    assert not expected.refused and got.answer == expected.answer
    assert [c.chunk_id for c in got.citations] == [c.chunk_id for c in expected.citations]


@pytest.mark.parametrize("question,message", ids=["empty", "blank", "only-control", "none", "1004-chars",
                                                 "200000-chars", "bytes"], argvalues=[
    ("", "empty"), ("   \n\t ", "empty"), ("\x00\x1b[0m\u200b\u3000", "empty"), (None, "empty"),
    ("行政复议" * 251, "1004 characters long; the limit is 1000"),
    ("法" * 200_000, "200000 characters long"),
    (b"\xe5\xa4\xaa\xe5\x8e\x9f", "must be text"),
])
def test_empty_overlong_and_non_text_questions_are_refused_with_a_reason(answerer, question, message):
    from rag.answer.answerer import QuestionError

    with pytest.raises(QuestionError, match=message):
        answerer.run(question)


@pytest.mark.parametrize("question", ids=["punctuation", "emoji", "number", "1000-ascii", "1000-stopword",
                                         "html", "sql", "template"], argvalues=["？？？", "😀😀😀", "1274", "a" * 1000, "的" * 1000,
                                      "<script>alert(1)</script>", "'; DROP TABLE reports; --",
                                      "{question} {passages} [1]"])
def test_strange_but_valid_questions_get_an_answer_or_a_refusal(answerer, question):
    result = answerer.run(question, mode="extractive")
    assert result.answer and (result.refused or result.citations)
    markers = {int(n) for n in __import__("re").findall(r"\[(\d+)\]", result.answer)}
    assert markers <= {c.n for c in result.citations}


def test_rag_ask_names_the_problem_with_a_bad_question(bundled_index):
    index = {"RAG_INDEX_DIR": bundled_index.settings.index_dir}
    empty = rag("ask", " \t ", env=index)
    assert empty.returncode == 2 and empty.stderr.strip() == "error: the question is empty"
    long = rag("ask", "新收行政复议案件" * 1000, env=index)
    assert long.returncode == 2 and "8000 characters long; the limit is 1000" in long.stderr
    assert "Traceback" not in empty.stderr + long.stderr
    pasted = rag("ask", "\x1b[1m太原市2024年\u200b新收行政复议案件多少件？\x1b[0m", "--json", env=index)
    assert pasted.returncode == 0, pasted.stderr[-2000:]
    assert "1274" in json.loads(pasted.stdout)["answer"]


# --------------------------------------------------------------------------------------------
# Bad files, odd encodings and names, duplicates: one real `rag ingest` run over an inbox
# --------------------------------------------------------------------------------------------

def _report(name: str) -> str:
    return (REPORTS / name).read_text(encoding="utf-8")


def _pdf_of(path: Path, name: str) -> Path:
    from test_loaders import _write_pdf

    _write_pdf(path, [line.strip() for line in _report(name).split("\n") if line.strip()][:60])
    return path


def _locked(source: Path, target: Path) -> Path:
    from test_loaders import _encrypted_copy

    return _encrypted_copy(source, target, "fzzf2024")


def _scan(path: Path) -> Path:
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    for _ in range(2):  # two pages of "scanned" shapes, no text
        pdf.rect(72, 72, 400, 600, stroke=1, fill=1)
        pdf.showPage()
    pdf.save()
    return path


def _junk(size: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(size)


LONG_NAME = "绵阳市人民政府关于" + "二〇二四年度法治政府建设情况" * 4 + "的报告（公开版） 最终定稿.txt"
_SJZ = _report("shijiazhuang-2024.txt")
DAMAGED = (_SJZ[:700].encode() + b"\xff" + _SJZ[700:1400].encode() + "\x00\x1b\u200b\u00ad\x0c".encode()
           + _SJZ[1400:].encode() + "审".encode()[:2])
NOT_A_REPORT = "关于召开工作会议的通知\n各有关单位：\n定于下周三上午九点在三楼会议室召开工作会议，请准时参加。\n特此通知。\n"


def _bad_files(inbox: Path, tmp: Path) -> dict[str, str]:
    """Write every bad input into ``inbox``; returns {file name: a word its reason must contain}."""
    import gzip
    import io
    import zipfile

    pdf = _pdf_of(tmp / "taiyuan.pdf", "taiyuan-2024.txt")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("report.txt", _report("houma-2023.txt"))
    bad = {
        "empty.txt": (b"", "empty"),
        "blank.md": (b" \r\n\t\n  \n", "empty"),
        "empty.pdf": (b"", "empty"),
        "junk.pdf": (_junk(8192, 1), "PDF"),
        "404-page.pdf": (b"<html><head><title>404 Not Found</title></head><body>404</body></html>", "PDF"),
        "truncated.pdf": (pdf.read_bytes()[: pdf.stat().st_size // 3], "PDF"),
        "locked.pdf": (_locked(pdf, tmp / "locked.pdf").read_bytes(), "encrypted"),
        "scan.pdf": (_scan(tmp / "scan.pdf").read_bytes(), "no text layer"),
        "junk.docx": (_junk(4096, 2), ".docx"),
        "zip-not-word.docx": (archive.getvalue(), ".docx"),
        "old-word.doc": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + _junk(4096, 3), ".doc"),
        "binary.txt": (_junk(4096, 4), "not a text file"),
        "gzipped.txt": (gzip.compress(_report("houma-2023.txt").encode()), "not a text file"),
        "debris-only.html": ("<html><body><div>当前位置：首页 > 政务公开</div><div>主办：某市人民政府办公室"
                             "</div><div>网站标识码1401000001</div><div>晋ICP备05001234号</div></body></html>"
                             .encode(), "debris"),
        "sidecar-broken.txt": (_report("houma-2023.txt").encode(), "not valid JSON"),
    }
    for name, (data, _) in bad.items():
        (inbox / name).write_bytes(data)
    (inbox / "sidecar-broken.meta.json").write_text("{region: 侯马市", encoding="utf-8")
    return {name: word for name, (_, word) in bad.items()}


def _good_files(inbox: Path) -> dict[str, tuple[str | None, str]]:
    """Good inputs: {file name: (region it must get, "ingested" or "duplicate")}.

    Each report appears in several encodings; exactly one copy of it is stored, and the
    others are found to be the same text, which is only possible if every encoding decoded
    exactly.
    """
    taiyuan = _report("taiyuan-2024.txt")
    files = {
        "太原市 2024年 法治政府建设年度报告（终稿）.txt": (taiyuan.encode("utf-8"), "太原市"),
        "taiyuan-gbk.txt": (taiyuan.replace("\xa0", " ").encode("gbk"), "太原市"),
        "taiyuan-gb18030.txt": (taiyuan.encode("gb18030"), "太原市"),
        "taiyuan-utf16.txt": (taiyuan.encode("utf-16"), "太原市"),
        "taiyuan-utf8-bom.txt": (taiyuan.encode("utf-8-sig"), "太原市"),
        "taicang-big5.txt": (_report("taicang-2024.txt").encode("big5"), "太仓市"),
        "taicang-utf8.txt": (_report("taicang-2024.txt").encode("utf-8"), "太仓市"),
        LONG_NAME: (_report("mianyang-2024.txt").encode("gb18030"), "绵阳市"),
        "会议通知 (副本).txt": (NOT_A_REPORT.encode("gbk"), None),
        # Damaged UTF-8 (a stray byte, a character cut off at the end) with control and
        # zero-width characters inside: still read, the damage named in a warning.
        "shijiazhuang-damaged.txt": (DAMAGED, "石家庄市"),
    }
    for name, (data, _) in files.items():
        (inbox / name).write_bytes(data)
    return {name: region for name, (_, region) in files.items()}


def _lines_about(stderr: str, name: str) -> list[str]:
    return [line for line in stderr.replace("\r", "\n").split("\n") if f"/{name}:" in line or f"/{name} ->" in line]


def _index_state(index_dir: Path) -> dict[str, dict]:
    from rag.config import Settings
    from rag.index.store import ReportIndex

    got = ReportIndex(Settings(index_dir=str(index_dir))).collection.get(include=["metadatas", "documents"])
    return {i: {**m, "text": t} for i, m, t in zip(got["ids"], got["metadatas"], got["documents"])}


@pytest.mark.slow  # `rag ingest` over real reports in a subprocess
def test_one_ingest_run_over_bad_odd_and_duplicate_files(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bad = _bad_files(inbox, tmp_path)
    good = _good_files(inbox)
    assert 230 < len(LONG_NAME.encode()) <= 255  # near the file-system limit
    env = {"RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_CACHE_DIR": str(tmp_path / "cache")}
    extra = [str(tmp_path / "nowhere.txt"), str(tmp_path / "report.rtf")]  # named on the command line
    (tmp_path / "report.rtf").write_text(_report("houma-2023.txt"), encoding="utf-8")

    run = rag("ingest", str(inbox), *extra, env=env, cwd=tmp_path)

    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr and "unexpected error" not in run.stderr, run.stderr[-3000:]
    # Each bad file: one FAILED line that names it and says why.
    for name, word in bad.items():
        lines = _lines_about(run.stderr, name)
        assert len(lines) == 1 and lines[0].startswith("FAILED") and word in lines[0], (name, lines)
    assert any(line.startswith("FAILED") and "nowhere.txt: no such file or folder" in line
               for line in run.stderr.split("\n"))
    assert any(line.startswith("FAILED") and "report.rtf: unsupported file type .rtf" in line
               for line in run.stderr.split("\n"))
    # Each report once, whatever its encoding or name; the other copies are duplicates of it.
    listed = json.loads(rag("list", "--json", env=env, cwd=tmp_path).stdout)
    by_region: dict = {}
    for report in listed:
        by_region.setdefault(report["region"], []).append(report)
    assert sorted(by_region, key=str) == sorted({r for r in good.values()}, key=str)
    assert all(len(reports) == 1 for reports in by_region.values()), listed
    for name, region in good.items():
        lines = _lines_about(run.stderr, name)
        stored = by_region[region][0]
        if stored["source"].endswith("/" + name):
            assert lines[0].startswith("ingested"), lines
        else:
            assert lines[0].startswith("dup") and stored["doc_id"] in lines[0], (name, lines)
    assert "5 ingested" in run.stdout and "5 duplicate" in run.stdout
    assert f"{len(bad) + len(extra)} failed" in run.stdout
    # The traditional report stays traditional; the long name gives a short doc_id.
    taicang = by_region["太仓市"][0]
    assert any("行政復議" in s["text"] for s in _index_state(tmp_path / "index").values()
               if s["doc_id"] == taicang["doc_id"])
    assert len(by_region["绵阳市"][0]["doc_id"]) <= 48
    # Not a report: stored, with place and year unknown and a warning that says what to do.
    notice = by_region[None][0]
    assert notice["year"] is None and notice["title"] == "会议通知 (副本)"
    warnings = [line for line in _lines_about(run.stderr, "会议通知 (副本).txt") if line.startswith("warning")]
    assert any("place not detected; pass --region" in w for w in warnings)
    assert any("year not detected; pass --year" in w for w in warnings)

    damaged = [line for line in _lines_about(run.stderr, "shijiazhuang-damaged.txt") if line.startswith("warning")]
    assert damaged and "2 invalid UTF-8 byte sequence(s) replaced" in damaged[0], damaged

    # Nothing of a bad file is in the index, and running them again changes nothing.
    before = _index_state(tmp_path / "index")
    invisible = __import__("re").compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\ufeff]")
    assert not any(invisible.search(state["text"]) for state in before.values())
    assert sum(r["chunks"] for r in listed) == len(before)
    sources = {m["source"] for m in before.values()}
    assert not any(s.endswith("/" + name) for s in sources for name in bad)
    again = rag("ingest", *[str(inbox / name) for name in bad], env=env, cwd=tmp_path)
    assert again.returncode == 1 and f"0 ingested, 0 skipped, 0 duplicate, {len(bad)} failed" in again.stdout
    assert _index_state(tmp_path / "index") == before


def test_a_file_holding_several_reports_keeps_them_all():
    # The first report's "相关信息" link list is not the end of the file when a report follows.
    from rag.ingest.cleaning import clean
    from rag.ingest.loaders import LoadedDocument

    mianyang, taiyuan = _report("mianyang-2024.txt"), _report("taiyuan-2024.txt")
    alone = clean(LoadedDocument(Path("m.txt"), mianyang, "txt")).text
    both = clean(LoadedDocument(Path("m+t.txt"), mianyang + "\n" + taiyuan, "txt")).text
    assert "相关信息" not in alone and "相关信息" not in both
    assert both.startswith(alone)
    assert "市政府行政复议局全年新收行政复议案件1274件,同比增长204%。" in both


def test_a_passage_repeated_word_for_word_is_stored_once():
    from rag.ingest.chunking import Chunker
    from rag.ingest.cleaning import clean
    from rag.ingest.loaders import LoadedDocument

    text = clean(LoadedDocument(Path("t.txt"), _report("taiyuan-2024.txt"), "txt")).text
    once = Chunker().run(text)
    thrice = Chunker().run("\n".join([text] * 3))
    assert [c.index for c in thrice] == list(range(len(thrice)))
    assert len({c.text for c in thrice}) == len(thrice)  # no text twice
    assert {c.text for c in once} <= {c.text for c in thrice}
    assert len(thrice) <= len(once) + 2  # at most the passages that span a seam are new
    assert all(thrice[i].start < thrice[i + 1].start for i in range(len(thrice) - 1))


FIFTY_MB = 50 * 1024 * 1024


@pytest.mark.slow
def test_a_50_mb_text_file_is_ingested_in_bounded_memory_with_progress(tmp_path):
    """Two real reports, one after the other, over and over to 50 MB (a mail merge gone wrong)."""
    pair = (_report("taiyuan-2024.txt") + "\n" + _report("mianyang-2024.txt") + "\n").encode("utf-8")
    big = tmp_path / "太原 绵阳 汇编.txt"
    with open(big, "wb") as handle:
        for _ in range(FIFTY_MB // len(pair) + 1):
            handle.write(pair)
    assert big.stat().st_size >= FIFTY_MB
    env = {**os.environ, "RAG_LLM": "none", "RAG_INDEX_DIR": str(tmp_path / "index"),
           "RAG_CACHE_DIR": str(tmp_path / "cache")}
    # A parent of its own, so that its peak RSS is the ingest's alone.
    measure = ("import resource, subprocess, sys; "
               "done = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
               "sys.exit(done.returncode)")
    run = subprocess.run([sys.executable, "-c", measure, *RAG, "ingest", str(big)], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    peak_mb = int(run.stderr.strip().split("\n")[-1]) / 1024
    print(f"50 MB file: peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 1024, f"peak RSS {peak_mb:.0f} MB for a 50 MB file"
    # Progress while chunking the long text, then while embedding and writing its chunks.
    updates = run.stderr.replace("\r", "\n").split("\n")
    chunking = [int(line.split("%")[0].split()[-1]) for line in updates if "chunking:" in line and "%" in line]
    assert len(set(chunking)) >= 3 and chunking == sorted(chunking), chunking
    assert any("chunk/s" in line or "chunk]" in line for line in updates)
    assert "1 ingested" in run.stdout and "0 failed" in run.stdout

    state = _index_state(tmp_path / "index")
    texts = [s["text"] for s in state.values()]
    listed = json.loads(rag("list", "--json", env=env, cwd=tmp_path).stdout)
    assert len(listed) == 1 and listed[0]["chunks"] == len(state) == len(set(texts)) < 100
    assert any("新收行政复议案件1274件" in t for t in texts) and any("1472件" in t for t in texts)


# --------------------------------------------------------------------------------------------
# The app under load: 20 questions at once while a report is uploaded
# --------------------------------------------------------------------------------------------

CONCURRENT = 20
LLM_QUESTIONS = {"ty-001", "my-002"}  # two of the twenty go to the bundled model


def _essence(result: dict) -> tuple:
    """What must not depend on other requests: the answer, refusal, mode and cited chunks."""
    assert not result.get("error") and result.get("partial") is False, result
    return (result["answer"], result["refused"], result["mode"],
            tuple(c["chunk_id"] for c in result["citations"]))


@pytest.mark.slow
def test_twenty_simultaneous_questions_while_a_report_is_uploaded(app_server, tmp_path):
    """Each concurrent answer equals the one-by-one answer over the index before or after the
    upload (the new report may land mid-way), nothing fails, and the upload is ingested."""
    from gradio_client import Client, handle_file

    from rag.eval.harness import load_questions

    url, app = app_server
    questions = [(q.question, "llm" if q.id in LLM_QUESTIONS else "extractive")
                 for q in load_questions(ROOT / "eval" / "questions" / "project.jsonl")[::4][:CONCURRENT]]
    assert len(questions) == CONCURRENT and len({q for q, _ in questions}) == CONCURRENT
    # A new place (邯郸市) with real text, about twenty chunks to embed while the questions run.
    new_report = tmp_path / "handan-2024.txt"
    new_report.write_text(_report("shijiazhuang-2024.txt").replace("石家庄", "邯郸"), encoding="utf-8")

    def one_by_one() -> dict:
        client = Client(url, verbose=False)
        return {q: _essence(client.predict(q, [], [], mode, [], api_name="/ask")) for q, mode in questions}

    before = one_by_one()
    clients = [Client(url, verbose=False) for _ in range(CONCURRENT + 1)]
    start = threading.Barrier(CONCURRENT + 1)
    results: dict = {}

    def ask(n: int) -> None:
        question, mode = questions[n]
        start.wait()
        try:
            results[n] = clients[n].predict(question, [], [], mode, [], api_name="/ask")
        except Exception as exc:  # recorded: the assertion below names it
            results[n] = {"error": f"{type(exc).__name__}: {exc}"}

    def upload() -> None:
        start.wait()
        results["upload"] = clients[-1].predict([handle_file(str(new_report))], api_name="/upload")

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(CONCURRENT)]
    threads.append(threading.Thread(target=upload))
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=HANG_LIMIT_S * 3)
        assert not any(thread.is_alive() for thread in threads), "a request hung"
        after = one_by_one()
        rows = results["upload"]["data"] if isinstance(results["upload"], dict) else results["upload"]
        assert rows[0][1] == "已导入" and rows[0][2] == "邯郸市", rows
    finally:
        for record in app.services.index.reports():
            if record.region == "邯郸市":
                app.services.index.remove_report(record.doc_id)
    assert len(app.services.index.reports()) == 5

    assert sorted(k for k in results if k != "upload") == list(range(CONCURRENT))
    same_as_before = 0
    for n, (question, _) in enumerate(questions):
        got = _essence(results[n])
        assert got in (before[question], after[question]), (question, got, before[question], after[question])
        same_as_before += got == before[question]
    print(f"{CONCURRENT} concurrent answers held; {same_as_before} equal to the answers before the upload, "
          f"{sum(before[q] != after[q] for q, _ in questions)} questions answered differently after it")


def _sse_events(url: str, api: str, payload: dict) -> str:
    """Call a Gradio event by raw HTTP (as any script could), returning its SSE stream."""
    import urllib.request

    request = urllib.request.Request(f"{url}gradio_api/call/{api}", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    event_id = json.loads(urllib.request.urlopen(request, timeout=60).read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api}/{event_id}", timeout=HANG_LIMIT_S) as stream:
        return stream.read().decode()


@pytest.mark.slow
def test_uploads_through_raw_http_cannot_reach_outside_files_or_folders(app_server, tmp_path):
    """Names and paths a hostile script sends: no server file is read, nothing lands outside the
    upload folder, and the index is unchanged."""
    import urllib.request
    import uuid

    url, app = app_server
    folder = app.services.uploads.folder
    before = (sorted(p.name for p in folder.iterdir()) if folder.exists() else [],
              [(r.doc_id, r.version) for r in app.services.index.reports()])
    secret = tmp_path / "secret-report.txt"  # a real report on the server, never uploaded
    secret.write_text(_report("taiyuan-2024.txt").replace("太原", "晋中"), encoding="utf-8")

    # 1. A server path handed straight to the upload event.
    events = _sse_events(url, "upload", {"data": [[{"path": str(secret), "orig_name": "x.txt",
                                                    "meta": {"_type": "gradio.FileData"}}]]})
    assert "event: error" in events, events[-500:]

    # 2. A real upload whose name climbs out of every folder.
    marker = f"escape-{uuid.uuid4().hex[:8]}"
    boundary = "----reliability"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"../../../../tmp/{marker}.txt\"\r\nContent-Type: text/plain\r\n\r\n").encode() \
        + "会议纪要。\n与会人员讨论了下一步工作安排。".encode() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}gradio_api/upload", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    server_paths = json.loads(urllib.request.urlopen(request, timeout=60).read())
    assert not Path(f"/tmp/{marker}.txt").exists()
    events = _sse_events(url, "upload", {"data": [[{"path": server_paths[0], "orig_name": f"../../../../tmp/{marker}.txt",
                                                    "meta": {"_type": "gradio.FileData"}}]]})
    try:
        assert not Path(f"/tmp/{marker}.txt").exists() and not (ROOT / f"{marker}.txt").exists()
        stored = [p for p in folder.iterdir() if marker in p.name]
        rows = json.loads(events.strip().split("data: ")[-1])[0]["data"]
        assert [p.name for p in stored] == [f"{marker}.txt"] and rows[0][:2] == [f"{marker}.txt", "已导入"], rows
    finally:
        for record in app.services.index.reports():
            if (record.doc_id, record.version) not in before[1]:
                app.services.index.remove_report(record.doc_id)
        for p in folder.iterdir():
            if p.name not in before[0]:
                p.unlink()
    assert "晋中" not in json.dumps([r.region for r in app.services.index.reports()], ensure_ascii=False)
    assert [(r.doc_id, r.version) for r in app.services.index.reports()] == before[1]


@pytest.mark.slow
def test_wrong_types_and_oversized_uploads_are_refused_by_the_running_app(app_server, tmp_path):
    from gradio_client import Client, handle_file

    url, app = app_server
    folder = app.services.uploads.folder
    stored_before = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    reports_before = [(r.doc_id, r.version) for r in app.services.index.reports()]
    files = {"tool.exe": b"MZ" + _junk(2048, 5), "sheet.xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + _junk(2048, 6),
             "no-suffix": _report("houma-2023.txt").encode()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    big = tmp_path / "big.txt"
    with open(big, "wb") as handle:  # one byte over the limit, real report text
        text = _report("taiyuan-2024.txt").encode()
        while handle.tell() <= app.services.uploads.max_bytes:
            handle.write(text)
    from gradio_client.exceptions import AppError

    for name in files:  # the upload component takes report types only (the app checks again)
        with pytest.raises(AppError, match="Invalid file type"):
            Client(url, verbose=False).predict([handle_file(str(tmp_path / name))], api_name="/upload")
    # Over the size limit: refused by the client, and by the server when a script skips the client.
    with pytest.raises(ValueError, match="exceeds the maximum file size"):
        Client(url, verbose=False).predict([handle_file(str(big))], api_name="/upload")
    import urllib.error
    import urllib.request

    boundary = "----reliability"
    with open(big, "rb") as handle:
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.txt\"\r\n"
                f"Content-Type: text/plain\r\n\r\n").encode() + handle.read() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}gradio_api/upload", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=HANG_LIMIT_S)
    assert refused.value.code in (400, 413), refused.value.code
    assert (sorted(p.name for p in folder.iterdir()) if folder.exists() else []) == stored_before
    assert [(r.doc_id, r.version) for r in app.services.index.reports()] == reports_before


def test_an_abandoned_stream_has_stopped_before_the_caller_goes_on():
    # The app holds a lock on the in-process model while an answer streams; when the deadline
    # passes, the model must have stopped before that lock is released.
    from rag.models.chat import LLMTimeout, stream_within

    running = threading.Event()
    stopped = threading.Event()

    def slow_tokens():  # an in-process model: a token every 0.3 s, never done
        running.set()
        try:
            while True:
                time.sleep(0.3)
                yield "件"
        finally:
            stopped.set()

    with pytest.raises(LLMTimeout):
        list(stream_within(slow_tokens, 1.0))
    assert running.is_set() and stopped.is_set()
