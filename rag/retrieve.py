"""Passage search over the index: dense (embedding) similarity with place/year filters.

This is the first retrieval step; hybrid retrieval and query analysis build on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.index import ReportIndex
from rag.places import Gazetteer
from rag.text import matching_form


@dataclass
class Passage:
    """A retrieved chunk with its report's fields and a similarity score (higher is closer)."""

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


def metadata_filter(regions: list[str] | None = None, years: list[int] | None = None) -> dict | None:
    """A Chroma ``where`` filter for the given places and years (None: no filter)."""
    clauses = []
    if regions:
        gazetteer = Gazetteer.default()
        # "太原" or "太倉市" should find reports tagged 太原市 / 太仓市.
        names = {n for r in regions for n in (gazetteer.resolve(r) or [matching_form(r)])}
        clauses.append({"region": {"$in": sorted(names)}})
    if years:
        clauses.append({"year": {"$in": [int(y) for y in years]}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class DenseRetriever:
    """Embedding search over committed report versions.

    Example:
        >>> DenseRetriever(index).run("新收行政复议案件", regions=["太原市"], k=3)[0].region
        '太原市'
    """

    def __init__(self, index: ReportIndex):
        self.index = index
        self._store = index.vectorstore()

    def run(self, query: str, regions: list[str] | None = None, years: list[int] | None = None,
            k: int = 5) -> list[Passage]:
        if not query.strip():
            raise ValueError("the query is empty")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        committed = {(r.doc_id, r.version) for r in self.index.reports()}
        hits = self._store.similarity_search_with_score(query, k=k * 2, filter=metadata_filter(regions, years))
        passages = []
        for doc, distance in hits:
            m = doc.metadata
            if (m.get("doc_id"), m.get("version")) not in committed:
                continue  # a version still being written, or left by an interrupted ingest
            passages.append(Passage(text=doc.page_content, score=1.0 - distance, doc_id=m["doc_id"],
                                    region=m.get("region"), year=m.get("year"), title=m.get("title"),
                                    section=m.get("section", ""), source=m.get("source", ""),
                                    page=m.get("page"), chunk_index=m.get("chunk_index", 0)))
        return passages[:k]
