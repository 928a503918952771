"""The same ingest and search against a real `chroma run` server (RAG_CHROMA_URL)."""

import json
import os
import subprocess
import sys

from conftest import EXPECTED, copy_reports
from ingest.pipeline import Ingestor
from rag.config import Settings
from rag.index import ReportIndex
from rag.retrieve import HybridRetriever


def test_ingest_list_search_against_a_chroma_server(chroma_server, tmp_path, counting_embeddings):
    folder = copy_reports(tmp_path / "reports", {"taicang-2024.txt", "mianyang-2024.txt"})
    settings = Settings(chroma_url=chroma_server, index_dir=str(tmp_path / "unused"), collection="server_test")
    index = ReportIndex(settings, counting_embeddings)
    summary = Ingestor(index, progress=False).run([folder])
    assert summary.count("ingested") == 2
    assert not (tmp_path / "unused").exists()  # nothing written locally
    # A second client (another app process) sees the same reports.
    other = ReportIndex(settings, counting_embeddings)
    assert {(r.region, r.year) for r in other.reports()} == {EXPECTED["taicang-2024.txt"][:2],
                                                           EXPECTED["mianyang-2024.txt"][:2]}
    n = len(counting_embeddings.embedded)
    assert Ingestor(other, progress=False).run([folder]).count("skipped") == 2
    assert len(counting_embeddings.embedded) == n
    hits = HybridRetriever(index=other, k=2).passages("太仓市新收行政复议申请")
    assert hits[0].region == "太仓市"


def test_cli_uses_the_server_when_rag_chroma_url_is_set(chroma_server, tmp_path):
    folder = copy_reports(tmp_path / "reports", {"shijiazhuang-2024.txt"})
    env = {**os.environ, "RAG_CHROMA_URL": chroma_server, "RAG_COLLECTION": "server_cli",
           "RAG_INDEX_DIR": str(tmp_path / "local")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "rag.cli", *a], env=env, capture_output=True,
                                    text=True, cwd=tmp_path)
    assert run("ingest", "-q", str(folder)).returncode == 0
    listed = json.loads(run("list", "--json").stdout)
    assert [r["region"] for r in listed] == ["石家庄市"]
    assert not (tmp_path / "local").exists()


def test_unreachable_server_gives_a_clear_error(tmp_path):
    from conftest import free_port

    env = {**os.environ, "RAG_CHROMA_URL": f"http://127.0.0.1:{free_port()}"}
    done = subprocess.run([sys.executable, "-m", "rag.cli", "list"], env=env, capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert "cannot reach the Chroma server" in done.stderr and "Traceback" not in done.stderr
