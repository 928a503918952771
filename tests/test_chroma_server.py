"""The same ingest and search against a real `chroma run` server (RAG_CHROMA_URL)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import EXPECTED, ROOT, CountingEmbeddings, copy_reports
from rag.eval.harness import load_questions, metrics, run_questions
from rag.ingest.pipeline import Ingestor
from rag.answer.answerer import Answerer
from rag.config import Settings
from rag.index.embeddings import CachedEmbeddings
from rag.index.store import ReportIndex
from rag.retrieve.hybrid import HybridRetriever, keyword_cache_folder


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


# --- the ingest and answering tests against the server ----------------------------------------


@pytest.fixture(scope="module")
def server_index(chroma_server, tmp_path_factory, cached_embeddings, bundled_index):
    """The five bundled reports in a collection on the server. ``bundled_index`` embedded them
    first, so every vector comes from the session's embedding cache: it is local to the
    ingesting machine, whatever the index."""
    tmp = tmp_path_factory.mktemp("server-bundled")
    settings = Settings(chroma_url=chroma_server, index_dir=str(tmp / "unused"), collection="server_bundled")
    index = ReportIndex(settings, cached_embeddings)
    summary = Ingestor(index, progress=False).run([copy_reports(tmp / "reports")])
    assert summary.count("ingested") == 5 and summary.vectors[0] == summary.vectors[1] > 0, summary.line()
    assert not (tmp / "unused").exists()
    return index


@pytest.mark.slow
def test_the_server_answers_every_project_question_as_the_embedded_index_does(server_index, bundled_index):
    questions = load_questions(ROOT / "eval" / "questions" / "project.jsonl")
    local = Answerer(HybridRetriever(index=bundled_index, k=8))
    remote = Answerer(HybridRetriever(index=server_index, k=8))
    results = []
    for q in questions:
        a, b = local.run(q.question, mode="extractive"), remote.run(q.question, mode="extractive", id=q.id)
        assert (b.answer, b.refused, [c.text for c in b.citations]) == (a.answer, a.refused, [c.text for c in a.citations]), q.id
        results.append(b.to_dict())
    by_id = {r["id"]: r for r in results}
    scored = run_questions(questions, lambda q: by_id[q.id], progress=False)
    m = metrics(questions, scored)
    assert m["by_kind"]["fact"]["accuracy"] >= 0.85 and m["by_kind"]["unanswerable"]["accuracy"] == 1.0
    assert m["evidence_recall"]["@8"] >= 0.98
    # The BM25 snapshot of a server's index is kept on this machine, named by the server.
    port = server_index.settings.chroma_url.rsplit(":", 1)[1]
    folder = keyword_cache_folder(server_index.settings)
    assert folder.parts[-3:] == ("keywords", f"127.0.0.1_{port}", "server_bundled")
    assert (folder / "snapshot.pkl").is_file()


def test_rag_ask_against_the_server(server_index, tmp_path):
    env = {**os.environ, "RAG_CHROMA_URL": server_index.settings.chroma_url, "RAG_COLLECTION": "server_bundled",
           "RAG_INDEX_DIR": str(tmp_path / "local"), "RAG_LLM": "none"}
    done = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "太倉和太原2024年新收行政復議案件各多少？", "--json"],
                          env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "325" in result["answer"] and "1274" in result["answer"] and not result["refused"]
    assert {c["region"] for c in result["citations"]} == {"太仓市", "太原市"}
    assert not (tmp_path / "local").exists()


def test_server_ingest_edit_correct_remove_prune_and_repair(chroma_server, tmp_path, real_embeddings, cached_embeddings,
                                                           bundled_index):
    spy = CountingEmbeddings(real_embeddings)
    embeddings = CachedEmbeddings(spy, cached_embeddings.store)  # the session's cache, a spy on the model
    settings = Settings(chroma_url=chroma_server, index_dir=str(tmp_path / "unused"), collection="server_ingest")
    index = ReportIndex(settings, embeddings)
    folder = copy_reports(tmp_path / "reports", {"taiyuan-2024.txt", "mianyang-2024.txt"})
    assert Ingestor(index, progress=False).run([folder]).count("ingested") == 2
    assert spy.embedded == []  # the vectors came from the local cache
    assert Ingestor(index, progress=False).run([folder]).count("skipped") == 2

    # An app process (another client) with its retriever already warm.
    app_index = ReportIndex(settings, real_embeddings)
    app = HybridRetriever(index=app_index, k=3)
    assert app.passages("行政复议案件办结率", regions=["绵阳市"])

    # Edit Mianyang: only the changed text is embedded; the old version goes; the app sees it.
    path = folder / "mianyang-2024.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("办结率100%", "办结率99%"), encoding="utf-8")
    summary = Ingestor(index, progress=False).run([folder])
    assert sorted(r.status for r in summary.results) == ["replaced", "skipped"]
    assert spy.embedded and all("办结率99%" in t for t in spy.embedded)
    assert index.stats() == {"chunks": sum(r.chunks for r in index.reports()), "reports": 2}
    assert any("办结率99%" in p.text for p in app.passages("行政复议案件办结率", regions=["绵阳市"]))

    # A correction (rag set) reaches the running app too.
    mianyang = next(r for r in index.reports() if r.region == "绵阳市")
    index.update_report(mianyang.doc_id, region="德阳市")
    assert {p.region for p in app.passages("行政复议", regions=["德阳市"])} == {"德阳市"}

    # An interrupted write is never listed and is repaired by the next ingest.
    copy_reports(folder, {"houma-2023.txt"})
    collection = index.collection
    upsert = collection.upsert

    def crash_at_commit(ids, **kwargs):
        if any(i.endswith(":00000") for i in ids):
            raise RuntimeError("killed")
        return upsert(ids=ids, **kwargs)

    collection.upsert = crash_at_commit
    assert Ingestor(index, progress=False).run([folder]).failed
    assert {r.region for r in app_index.reports()} == {"太原市", "德阳市"}
    collection.upsert = upsert
    summary = Ingestor(index, progress=False).run([folder])
    assert summary.repaired_chunks > 0 and summary.count("ingested") == 1

    # Prune and remove.
    (folder / "taiyuan-2024.txt").unlink()
    pruned = Ingestor(index, progress=False).run([folder], prune=True).pruned
    assert len(pruned) == 1 and {r.region for r in app_index.reports()} == {"德阳市", "侯马市"}
    for r in index.reports():
        assert index.remove_report(r.doc_id) > 0
    assert app.passages("行政复议") == [] and not (tmp_path / "unused").exists()
