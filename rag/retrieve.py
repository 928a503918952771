"""Passage retrieval: dense (Chroma) and keyword (BM25) search fused by reciprocal rank.

The retriever is a LangChain ``BaseRetriever``. Given a question it runs query analysis,
turns the places and years named into metadata filters for both searches, and, when the
question is about several places or all of them, searches each place separately so one
report's passages cannot crowd out another's; the per-place lists are then interleaved
(every place's best passage first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr

from rag.index import ReportIndex
from rag.keywords import KeywordIndex
from rag.places import Gazetteer
from rag.query import QueryAnalysis, QueryAnalyzer
from rag.text import matching_form


@dataclass
class Passage:
    """A retrieved chunk with its report's fields and a fused relevance score (higher is better)."""

    id: str
    text: str
    score: float
    doc_id: str
    region: str | None
    year: int | None
    title: str | None
    section: str
    source: str
    page: int | None = None
    chunk_index: int = 0

    @classmethod
    def from_document(cls, doc: Document) -> "Passage":
        m = doc.metadata
        return cls(id=doc.id or m.get("id", ""), text=doc.page_content, score=float(m.get("score", 0.0)),
                   doc_id=m.get("doc_id", ""), region=m.get("region"), year=m.get("year"),
                   title=m.get("title"), section=m.get("section", ""), source=m.get("source", ""),
                   page=m.get("page"), chunk_index=int(m.get("chunk_index", 0)))


def resolve_regions(regions: list[str] | None) -> list[str]:
    """Official names for user spellings: 太原 -> 太原市, 太倉 -> 太仓市 (unknown names kept)."""
    gazetteer = Gazetteer.default()
    names: list[str] = []
    for r in regions or []:
        for name in gazetteer.resolve(r) or [matching_form(r)]:
            if name not in names:
                names.append(name)
    return names


def metadata_filter(regions: list[str] | None = None, years: list[int] | None = None) -> dict | None:
    """A Chroma ``where`` filter for the given places and years (None: no filter)."""
    clauses = []
    if regions:
        clauses.append({"region": {"$in": resolve_regions(regions)}})
    if years:
        clauses.append({"year": {"$in": [int(y) for y in years]}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class _Snapshot:
    """The committed chunks of the index, with a BM25 index over them, for one set of report versions."""

    def __init__(self, index: ReportIndex, reports: list, key: tuple):
        self.reports = reports
        self.key = key
        committed = set(self.key)
        got = index.collection.get(include=["documents", "metadatas"])
        self.documents: dict[str, Document] = {}
        ids, texts, metas = [], [], []
        for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"]):
            if (meta.get("doc_id"), meta.get("version")) not in committed:
                continue  # a version still being written, or left by an interrupted ingest
            self.documents[cid] = Document(page_content=text, metadata=meta, id=cid)
            ids.append(cid)
            metas.append(meta)
            year = f"{meta['year']}年" if meta.get("year") else ""
            texts.append(f"{meta.get('region') or ''} {year} {meta.get('section') or ''}\n{text}")
        self.keywords = KeywordIndex(ids, texts, metas)
        self.analyzer = QueryAnalyzer(self.reports)


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

    def snapshot(self) -> _Snapshot:
        """The current committed chunks (rebuilt when reports were added, changed or removed)."""
        reports = self.index.reports()
        key = tuple(sorted((r.doc_id, r.version) for r in reports))
        if self._snapshot is None or self._snapshot.key != key:
            self._snapshot = _Snapshot(self.index, reports, key)
        return self._snapshot

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
            self._store = self.index.vectorstore()
        vector = self.index.embeddings.embed_query(query)  # once, shared by every per-place search
        if len(regions) > 1 or (analysis.scope == "all" and not regions):
            places = regions or sorted({r.region for r in snap.reports if r.region})
            return self._per_place(snap, vector, analysis, places, years, k)
        return self._search(snap, vector, analysis, regions, years, k)

    # --- parts ---------------------------------------------------------------------------

    def _per_place(self, snap: _Snapshot, vector: list[float], analysis: QueryAnalysis, places: list[str],
                   years: list[int], k: int) -> list[Document]:
        """Search each place on its own, then interleave: rank 1 of every place, then rank 2..."""
        lists = [self._search(snap, vector, analysis, [place], years, k) for place in places]
        merged: list[Document] = []
        for rank in range(k):
            merged.extend(docs[rank] for docs in lists if rank < len(docs))
        return merged[:max(k, len(places))]

    def _search(self, snap: _Snapshot, vector: list[float], analysis: QueryAnalysis, regions: list[str],
                years: list[int], k: int) -> list[Document]:
        where = metadata_filter(regions, years)
        dense = self._store.similarity_search_by_vector_with_relevance_scores(
            vector, k=self.candidates, filter=where)
        dense_ranked = [(doc.id, 1.0 - distance) for doc, distance in dense if doc.id in snap.documents]

        region_set, year_set = set(regions), set(years)

        def accepts(meta: dict) -> bool:
            return ((not region_set or meta.get("region") in region_set)
                    and (not year_set or meta.get("year") in year_set))

        terms = analysis.terms  # places and years are left out: the filters cover them
        hits = snap.keywords.search(terms, k=self.candidates, where=accepts) if terms else []
        return self._fuse(snap, dense_ranked, [(h.id, h.score) for h in hits], k)

    def _fuse(self, snap: _Snapshot, dense: list[tuple[str, float]], keyword: list[tuple[str, float]],
              k: int) -> list[Document]:
        fused: dict[str, float] = {}
        for ranked in (dense, keyword):
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
