"""Passage retrieval: dense (Chroma) and keyword (BM25) search fused by reciprocal rank.

The retriever is a LangChain ``BaseRetriever``. Given a question it runs query analysis,
turns the places and years named into metadata filters for both searches, and, when the
question is about several places or all of them, searches each place separately so one
report's passages cannot crowd out another's; the per-place lists are then interleaved
(every place's best passage first).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr

from rag.types import Passage  # noqa: F401 - defined in rag.types; imported from here too
from rag.config import Settings
from rag.index.store import ReportIndex, get_all
from rag.index.keywords import KeywordIndex, KeywordStore, ReportChunks, tokenize, tokenizer_fingerprint
from rag.text.places import Gazetteer
from rag.retrieve.query import QueryAnalysis, QueryAnalyzer
from rag.text.normalize import matching_form


def resolve_regions(regions: list[str] | None) -> list[str]:
    """Official names for user spellings: 太原 -> 太原市, 太倉 -> 太仓市 (unknown names kept)."""
    gazetteer = Gazetteer.default()
    names: list[str] = []
    for r in regions or []:
        for name in gazetteer.resolve(r) or [matching_form(r)]:
            if name not in names:
                names.append(name)
    return names


PER_PLACE_MAX = 12  # places searched one by one; more share one search (see _per_place)
# Each question compares the index's change stamp; its record count (7 ms at 54,000 chunks),
# which also catches a writer killed between a commit and its stamp, at most this often.
RECOUNT_SECONDS = 5.0
REPORT_FORMAT = "3"  # bump when a report's stored chunks change (keyword text below, their fields)
SNAPSHOT_FORMAT = "4"  # bump when the assembled snapshot changes
_FETCH_DOCS = 200  # reports fetched per Chroma query when a snapshot needs their chunks


def keyword_text(meta: dict, text: str) -> str:
    """What BM25 indexes for a chunk: place, year and section, then the passage."""
    year = f"{meta['year']}年" if meta.get("year") else ""
    return f"{meta.get('region') or ''} {year} {meta.get('section') or ''}\n{text}"


def report_signature(report) -> str:
    """A hash of a report's stored fields (a new version or a ``rag set`` correction changes it)
    and of how its chunks are tokenized (a changed tokenizer never reuses old tokens)."""
    blob = json.dumps([REPORT_FORMAT, tokenizer_fingerprint(), report.metadata()], sort_keys=True,
                      ensure_ascii=False, default=str)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:16]


def keyword_cache_folder(settings: Settings) -> Path | None:
    """Where an index's BM25 snapshot is kept (None with ``RAG_CACHE_DIR=off``).

    An embedded index keeps it in its own folder (``data/index/keywords/COLLECTION``): it goes
    when the folder goes, and is never shared by accident. A Chroma server has no place for
    local files, so each machine keeps its own copy under ``RAG_CACHE_DIR/keywords/HOST_PORT/
    COLLECTION``: named by the server, so two servers never share one; checked against the
    server's report versions on every use, so a stale copy costs time, never a wrong answer.
    """
    if str(settings.cache_dir).lower() in ("off", "none", ""):
        return None
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        server = re.sub(r"[^0-9A-Za-z.-]+", "_", f"{url.hostname}_{url.port or 8000}")
        return Path(settings.cache_dir).expanduser() / "keywords" / server / settings.collection
    return Path(settings.index_dir) / "keywords" / settings.collection


def _release_memory() -> None:
    """Give the memory freed by a snapshot rebuild back to the system (glibc keeps it otherwise)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


class _Metadatas(Sequence):
    """Every chunk's metadata, kept as its report's shared fields plus what differs per chunk.

    Each chunk's metadata repeats its report's fields (a Chroma filter needs no join); held
    as 54,000 separate dicts they took 135 MB of the app's memory at 2,000 reports.
    """

    def __init__(self):
        self._bases: list[dict] = []
        self._report: list[int] = []
        self._own: list[dict] = []

    def add(self, metadatas: list[dict]) -> None:
        """Add one report's chunks' metadata, in order."""
        if not metadatas:
            return
        first, rest = metadatas[0], metadatas[1:]
        base = {k: v for k, v in first.items() if all(k in m and m[k] == v for m in rest)}
        self._bases.append(base)
        for m in metadatas:
            self._report.append(len(self._bases) - 1)
            self._own.append({k: sys.intern(v) if isinstance(v, str) else v for k, v in m.items() if k not in base})

    def value(self, i: int, key: str, default=None):
        own = self._own[i]
        return own[key] if key in own else self._bases[self._report[i]].get(key, default)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return {**self._bases[self._report[i]], **self._own[i]}

    def __len__(self) -> int:
        return len(self._own)


class _Documents(Mapping):
    """Chunk id -> ``Document``, made on demand from the snapshot's lists (50,000 pydantic
    objects up front would cost start-up time and memory for the few a question uses)."""

    def __init__(self, ids: list[str], texts: list[str], metadatas: Sequence[dict]):
        self._position = {cid: i for i, cid in enumerate(ids)}
        self._texts, self._metadatas = texts, metadatas

    def __getitem__(self, cid: str) -> Document:
        i = self._position[cid]
        return Document(page_content=self._texts[i], metadata=self._metadatas[i], id=cid)

    def __contains__(self, cid: object) -> bool:
        return cid in self._position

    def __iter__(self):
        return iter(self._position)

    def __len__(self) -> int:
        return len(self._position)


class _Snapshot:
    """The committed chunks of the index, with a BM25 index over them, for one set of report versions.

    Built by ``_Snapshot.load``: from the ``KeywordStore`` when it holds this set of versions
    (a start-up reads one file), otherwise from the stored tokens of unchanged reports plus
    Chroma's chunks of new ones (only those are tokenized).
    """

    def __init__(self, reports: list, key: str, ids: list[str], texts: list[str], metadatas: _Metadatas,
                 keywords: KeywordIndex, vectors: np.ndarray):
        self.reports = reports
        self.key = key
        self.ids, self.texts, self.metadatas = ids, texts, metadatas
        self.vectors = vectors  # unit rows: a dot product is the cosine similarity
        self.documents = _Documents(ids, texts, metadatas)
        self.keywords = keywords
        self.analyzer = QueryAnalyzer(self.reports)
        self.probe = None  # the index generation this snapshot was last confirmed for
        # Each chunk's place and year as small integers: a filter is then one vectorised test.
        self._region_code: dict[str, int] = {}
        n = len(metadatas)
        self._regions = np.array([self._region_code.setdefault(metadatas.value(i, "region") or "",
                                                               len(self._region_code)) for i in range(n)],
                                 dtype=np.int32)
        self._years = np.array([metadatas.value(i, "year") or 0 for i in range(n)], dtype=np.int32)

    def mask(self, regions: list[str], years: list[int]) -> np.ndarray | None:
        """Which chunks belong to the given places and years (None: all)."""
        if not regions and not years:
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        if regions:
            keep &= np.isin(self._regions, [self._region_code.get(r, -1) for r in regions])
        if years:
            keep &= np.isin(self._years, [int(y) for y in years])
        return keep

    def nearest(self, vector: list[float], mask: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` chunks among ``mask`` most similar to ``vector`` (exact cosine), best first.

        Chroma evaluates a metadata filter by scanning every record: 30-70 ms a query at
        54,000 chunks, against 1 ms unfiltered. Within one place or year the chunks are few,
        and their exact similarity costs microseconds.
        """
        rows = np.flatnonzero(mask)
        if not len(rows):
            return []
        query = np.asarray(vector, dtype=np.float32)
        query /= max(float(np.linalg.norm(query)), 1e-12)
        similarity = self.vectors[rows] @ query
        order = np.argsort(-similarity, kind="stable")[:k]
        return [(self.ids[rows[i]], float(similarity[i])) for i in order]

    @staticmethod
    def key_of(reports: list) -> tuple[str, dict[str, str]]:
        """The snapshot key of a set of reports, and each report's signature."""
        signatures = {r.doc_id: report_signature(r) for r in reports}
        key = hashlib.sha1(json.dumps([SNAPSHOT_FORMAT, sorted(signatures.items())]).encode("utf-8")).hexdigest()
        return key, signatures

    @classmethod
    def load(cls, index: ReportIndex, reports: list, store: KeywordStore) -> "_Snapshot":
        key, signatures = cls.key_of(reports)
        saved = store.load_snapshot(key)
        if saved is not None:
            return cls(reports, key, saved["ids"], saved["texts"], saved["metadatas"], saved["keywords"],
                       saved["vectors"])
        # Unchanged reports come from their files, one at a time (their tokens are read as the
        # BM25 index is built, never all at once); new ones from Chroma, tokenized once.
        stored = {r.doc_id for r in reports if store.has_report(r.doc_id, signatures[r.doc_id])}
        fetched = {p.doc_id: p for p in cls._fetch(index, [r for r in reports if r.doc_id not in stored], signatures)}
        for part in fetched.values():
            store.save_report(part)

        ids, texts, metadatas, vectors = [], [], _Metadatas(), []

        def tokens():
            for r in reports:
                part = (fetched.get(r.doc_id) or store.load_report(r.doc_id, signatures[r.doc_id])
                        or next(iter(cls._fetch(index, [r], signatures)), None))  # an unreadable file
                if part is None:
                    continue  # removed while we read: the next question's snapshot drops it
                ids.extend(part.ids)
                texts.extend(part.texts)
                metadatas.add(part.metadatas)
                vectors.append(part.vectors)
                yield from part.token_lists()

        keywords = KeywordIndex(ids, None, metadatas, tokens=tokens())
        matrix = np.vstack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
        store.save_snapshot(key, {"ids": ids, "texts": texts, "metadatas": metadatas, "keywords": keywords,
                                  "vectors": matrix}, keep={(r.doc_id, signatures[r.doc_id]) for r in reports})
        return cls(reports, key, ids, texts, metadatas, keywords, matrix)

    @staticmethod
    def _fetch(index: ReportIndex, reports: list, signatures: dict) -> list[ReportChunks]:
        """The committed chunks of these reports from Chroma, tokenized."""
        if not reports:
            return []
        wanted = {r.doc_id: r.version for r in reports}
        rows: dict[str, list] = {doc_id: [] for doc_id in wanted}
        if len(reports) > _FETCH_DOCS:  # most of the index: one paged pass over everything
            batches = [None]
        else:
            batches = [list(wanted)]
        for doc_ids in batches:
            where = {"doc_id": {"$in": doc_ids}} if doc_ids else None
            got = get_all(index.collection, where=where, include=["documents", "metadatas", "embeddings"])
            for cid, text, meta, vector in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"]):
                doc_id = meta.get("doc_id")
                if doc_id in wanted and meta.get("version") == wanted[doc_id]:
                    rows[doc_id].append((meta.get("chunk_index", 0), cid, text, meta, vector))
        parts = []
        for doc_id, chunks in rows.items():
            if not chunks:
                continue
            chunks.sort(key=lambda row: row[0])
            vectors = np.asarray([c[4] for c in chunks], dtype=np.float32)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            parts.append(ReportChunks(
                doc_id=doc_id, signature=signatures[doc_id],
                ids=[c[1] for c in chunks], texts=[c[2] for c in chunks], metadatas=[c[3] for c in chunks],
                tokens=["\x1f".join(tokenize(keyword_text(c[3], c[2]))) for c in chunks], vectors=vectors))
        return parts


# Size: the LangChain retriever plus its per-place and fused searches, which share the snapshot
# and the filters; the snapshot itself is its own class above.
class HybridRetriever(BaseRetriever):
    """Dense + BM25 retrieval with query analysis and per-place search.

    Args:
        index: the report index.
        k: passages to return.
        candidates: passages each search contributes before fusion.
        rrf_k: the reciprocal-rank-fusion constant (60 is the usual choice).

    Example:
        >>> retriever = HybridRetriever(index=ReportIndex(Settings.load()), k=5)
        >>> docs = retriever.invoke("太原市新收行政复议案件多少件？")
        >>> docs[0].metadata["region"]
        '太原市'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: ReportIndex
    k: int = 8
    candidates: int = 30
    rrf_k: int = 60

    _store: Any = PrivateAttr(default=None)
    _snapshot: _Snapshot | None = PrivateAttr(default=None)
    _keyword_store: KeywordStore | None = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _recount_at: float = PrivateAttr(default=0.0)

    def snapshot(self) -> _Snapshot:
        """The current committed chunks and their BM25 index.

        Each call reads the index's change stamp (``ReportIndex.generation``, under 1 ms; the
        record count too, at most every ``RECOUNT_SECONDS``); the report list is read only when
        that changed, and the snapshot rebuilt only when the report versions (or fields) did.
        """
        with self._lock:  # app threads share one retriever: build a snapshot once
            snap = self._snapshot
            recount = time.monotonic() >= self._recount_at
            probe = self.index.generation(count=recount or snap is None)
            if snap is not None and probe is not None and snap.probe is not None and probe[:2] == snap.probe[:2]:
                if not recount:
                    return snap
                if probe[2] == snap.probe[2]:
                    self._recount_at = time.monotonic() + RECOUNT_SECONDS
                    return snap
            if probe is not None and probe[2] is None:
                probe = self.index.generation()
            self._recount_at = time.monotonic() + RECOUNT_SECONDS
            if self._keyword_store is None:
                self._keyword_store = KeywordStore(keyword_cache_folder(self.index.settings))
            reports = self.index.reports()
            if snap is None or snap.key != _Snapshot.key_of(reports)[0]:
                # The old snapshot goes before the new one is built: two at once would double
                # the memory this takes (about 430 MB at 2,000 reports).
                self._snapshot = snap = None
                snap = _Snapshot.load(self.index, reports, self._keyword_store)
                _release_memory()
            snap.probe = probe
            self._snapshot = snap
            return snap

    @property
    def analyzer(self) -> QueryAnalyzer:
        return self.snapshot().analyzer

    # --- LangChain entry point -----------------------------------------------------------

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None, regions: list[str] | None = None,
                                years: list[int] | None = None,
                                analysis: QueryAnalysis | None = None,
                                snapshot: _Snapshot | None = None) -> list[Document]:
        """Passages for ``query``; ``regions``/``years`` override what the question names.

        ``analysis`` and ``snapshot`` let a caller that already has them (the answerer) skip
        reading the index's report list again.
        """
        k = self.k if k is None else k
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not query or not query.strip():
            raise ValueError("the question is empty")
        snap = snapshot or self.snapshot()
        analysis = analysis or snap.analyzer.run(query)
        regions = resolve_regions(regions) if regions else list(analysis.regions)
        years = [int(y) for y in years] if years else list(analysis.filter_years)
        if not regions and not years and analysis.refusal_reason:
            return []  # the question is about a place or year the index does not hold
        if self._store is None:
            self.index.check_embeddings()  # once: the index was built by this embedding model
            self._store = self.index.collection
        vector = self.index.embeddings.embed_query(query)  # once, shared by every per-place search
        if len(regions) > 1 or (analysis.scope == "all" and not regions):
            places = regions or sorted({r.region for r in snap.reports if r.region})
            return self._per_place(snap, vector, analysis, places, years, k)
        return self._search(snap, vector, analysis, regions, years, k)

    # --- parts ---------------------------------------------------------------------------

    def _per_place(self, snap: _Snapshot, vector: list[float], analysis: QueryAnalysis, places: list[str],
                   years: list[int], k: int) -> list[Document]:
        """Search each place on its own, then interleave: rank 1 of every place, then rank 2...

        Beyond ``PER_PLACE_MAX`` places (an "all cities" question over hundreds of reports) one
        search over them all, with more candidates, is split by place instead: a search per
        place would cost hundreds of Chroma queries.
        """
        if len(places) > PER_PLACE_MAX:
            every = len(places) == len({r.region for r in snap.reports if r.region})
            pool = self._search(snap, vector, analysis, [] if every else places, years,
                                max(k, PER_PLACE_MAX) * 4, candidates=self.candidates * 4)
            grouped: dict[str, list[Document]] = {}
            for doc in pool:
                grouped.setdefault(doc.metadata.get("region") or "", []).append(doc)
            lists = list(grouped.values())
            k = max(k, PER_PLACE_MAX)
            places = places[:k]
        else:
            # A place named with its own year ("侯马（2023年）、太原") is searched in that year.
            own = {} if years else analysis.place_years
            lists = [self._search(snap, vector, analysis, [place], own.get(place, years), k) for place in places]
        merged: list[Document] = []
        for rank in range(k):
            merged.extend(docs[rank] for docs in lists if rank < len(docs))
        return merged[:max(k, len(places))]

    def _search(self, snap: _Snapshot, vector: list[float], analysis: QueryAnalysis, regions: list[str],
                years: list[int], k: int, candidates: int | None = None) -> list[Document]:
        candidates = candidates or self.candidates
        mask = snap.mask(regions, years)  # regions are official names here (resolved by the caller)
        if mask is not None:
            # Within places or years: exact similarity over the snapshot's vectors (see nearest).
            dense_ranked = snap.nearest(vector, mask, candidates)
        else:
            # The whole index: Chroma's HNSW, ids and distances only (the snapshot holds every
            # committed chunk's text and metadata; fetching them again costs more than the
            # search). Chunks not in the snapshot (a version being written) are left out.
            dense = self._store.query(query_embeddings=[vector], n_results=candidates, include=["distances"])
            dense_ranked = [(cid, 1.0 - distance) for cid, distance in zip(dense["ids"][0], dense["distances"][0])
                            if cid in snap.documents]

        terms = analysis.terms  # places and years are left out: the filters cover them
        hits = snap.keywords.search(terms, k=candidates, mask=mask) if terms else []
        keyword_ranked = [(h.id, h.score) for h in hits]
        extra = []
        if analysis.part:
            # A question about a part of the report (不足, 下一步): its chunks, tagged at ingest,
            # rank as a third list in the fusion, in the order the other two put them.
            seen = dict.fromkeys(c for c, _ in dense_ranked + keyword_ranked)
            extra = [(c, 1.0) for c in seen if snap.documents[c].metadata.get("part") == analysis.part]
        return self._fuse(snap, dense_ranked, keyword_ranked, k, extra)

    def _fuse(self, snap: _Snapshot, dense: list[tuple[str, float]], keyword: list[tuple[str, float]],
              k: int, extra: list[tuple[str, float]] = ()) -> list[Document]:
        fused: dict[str, float] = {}
        for ranked in (dense, keyword, extra):
            for rank, (cid, _) in enumerate(ranked):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (self.rrf_k + rank + 1)
        dense_score, keyword_score = dict(dense), dict(keyword)
        best = 2.0 / (self.rrf_k + 1)  # first in both lists
        docs = []
        for cid in sorted(fused, key=lambda c: -fused[c])[:k]:
            source = snap.documents[cid]
            metadata = {**source.metadata, "score": round(fused[cid] / best, 4),
                        "dense_score": round(dense_score.get(cid, 0.0), 4),
                        "keyword_score": round(keyword_score.get(cid, 0.0), 4)}
            docs.append(Document(page_content=source.page_content, metadata=metadata, id=cid))
        return docs

    def passages(self, question: str, **kwargs: Any) -> list[Passage]:
        """``invoke`` returning ``Passage`` objects instead of Documents."""
        return [Passage.from_document(d) for d in self.invoke(question, **kwargs)]
