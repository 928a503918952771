"""The data that crosses layers, in one place: a report and its chunks as the index stores
them, a retrieved passage, a citation, and an answered question (CONTRACT.md's result object).

Plain dataclasses with no behaviour beyond conversion to and from what Chroma, LangChain and
the JSON contract hold, so that every layer can import them without importing each other.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

# The closed choices the pipeline passes around.
Mode = Literal["extractive", "llm"]  # how an answer is written
Language = Literal["zh", "en"]  # the question's (and so the answer's) language
Scope = Literal["one", "several", "all", "any"]  # which reports a question is about (``any``: none named)

if TYPE_CHECKING:  # annotations only
    from langchain_core.documents import Document

    from rag.retrieve.query import QueryAnalysis


@dataclass(kw_only=True)
class ReportRecord:
    """What the index knows about one report (stored on each of its chunks)."""

    doc_id: str
    version: str  # hash of the file and the settings that shaped its chunks
    source: str
    content_sha: str  # hash of the cleaned text: finds the same report under another name
    region: str | None = None
    province: str | None = None
    year: int | None = None
    title: str | None = None
    publisher: str | None = None
    date: str | None = None
    lang: str = "zh-Hans"
    chunks: int = 0
    added_at: str = ""
    # Who issued it (rag.ingest.metadata): the level of ``region`` (province | city | county |
    # township), the place it lies in, the issuing department; and how sure the detection was
    # (high | medium | low | confirmed), with the clues it read. ``None`` in indexes built before.
    level: str | None = None
    parent: str | None = None
    department: str | None = None
    confidence: str | None = None
    evidence: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        """Chroma metadata: scalars only, unknown values left out (the evidence as JSON text)."""
        data = {k: v for k, v in asdict(self).items() if v is not None and k not in ("chunks", "evidence")}
        data["n_chunks"] = self.chunks
        if self.evidence:
            data["evidence"] = json.dumps(self.evidence, ensure_ascii=False)
        return data

    @classmethod
    def from_metadata(cls, meta: dict) -> "ReportRecord":
        names = cls.__dataclass_fields__
        values = {k: v for k, v in meta.items() if k in names and k != "evidence"}
        values["chunks"] = int(meta.get("n_chunks", 0))
        try:
            evidence = json.loads(meta.get("evidence") or "{}")
        except (TypeError, ValueError):
            evidence = {}  # a hand-edited or foreign record: the fields still load
        values["evidence"] = evidence if isinstance(evidence, dict) else {}
        return cls(**values)

    @property
    def unconfirmed(self) -> bool:
        """Whether place or year were detected with low confidence and nobody has confirmed them."""
        return self.confidence == "low"


@dataclass(kw_only=True)
class ChunkRecord:
    """One passage to store: its text, where it sits in the report, and what to embed."""

    text: str
    embed_text: str
    chunk_index: int
    char_start: int
    char_end: int
    section: str = ""
    section_path: str = ""
    page: int | None = None
    page_end: int | None = None
    part: str = ""  # the report's part it sits in (rag.text.parts: measures, shortcomings, plans …)
    extra: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        data = {
            "chunk_index": self.chunk_index,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "section": self.section,
            "section_path": self.section_path,
        }
        if self.part:
            data["part"] = self.part
        if self.page is not None:
            data["page"] = self.page
            data["page_end"] = self.page_end if self.page_end is not None else self.page
        return data


@dataclass(kw_only=True)
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


@dataclass(kw_only=True)
class Citation:
    """A passage the answer cites, as CONTRACT.md's result lists it."""

    n: int
    doc_id: str
    region: str | None
    year: int | None
    title: str | None
    section: str
    text: str
    source: str
    page: int | None = None
    chunk_id: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(kw_only=True)
class AnswerResult:
    """One answered question, as CONTRACT.md's result object."""

    question: str
    answer: str
    refused: bool
    citations: list[Citation]
    contexts: list[Passage]
    mode: Mode
    latency_ms: float = 0.0
    id: str | None = None
    notes: list[str] = field(default_factory=list)
    analysis: QueryAnalysis | None = None
    grounded: bool = True  # every figure in the answer is in a passage it cites
    table: dict | None = None  # a comparison's rows and computed conclusion (rag.answer.compare)

    def to_dict(self) -> dict:
        data = {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "contexts": [{"doc_id": p.doc_id, "region": p.region, "year": p.year, "section": p.section,
                          "chunk_id": p.id, "text": p.text, "score": p.score} for p in self.contexts],
            "mode": self.mode,
            "grounded": self.grounded,
            "latency_ms": round(self.latency_ms, 1),
            "notes": self.notes,
            "table": self.table,
        }
        return {"id": self.id, **data} if self.id is not None else data
