"""The baseline for ``rag eval --pipeline naive|both``: the LangChain RAG tutorial's pipeline.

What the tutorial does, over the same cleaned report texts the project indexes:

- ``RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)`` (default separators);
- the chunks' raw text embedded with the same embedding model, in a Chroma collection of its
  own (``<RAG_COLLECTION>_naive``: the project's collections are never touched), built once and
  rebuilt only when the indexed reports, the embedding model or the splitter change;
- top-4 similarity search for the question as asked: no query analysis, no place or year
  filters, no keyword search, no refusal before retrieval.

Answers use the same mode as the project run:

- ``extractive``: the project's own ``ExtractiveAnswerer`` over the four naive passages (same
  sentence scoring, same refusal threshold, same per-place lines). Holding the answerer fixed
  means the difference measured is the retrieval side alone (section-aware chunks, hybrid
  search, per-place search, filters, refusal of unindexed places). It is generous to the
  baseline, which borrows the project's term weights, so the measured gain is a lower bound.
  The alternative, "the top passage's best sentence", would measure a strawman.
- ``llm``: the tutorial's prompt ("rlm/rag-prompt") with the same chat model, the four passages
  joined as context. The tutorial writes no ``[n]`` markers; its sources are the retrieved
  passages, so all four count as cited. An answer saying it does not know counts as a refusal.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

from langchain_core.documents import Document

from rag.errors import RagError
from rag.answer.answerer import Answerer
from rag.answer.refusals import LLM_REFUSAL, not_found
from rag.answer.citations import resolve_citations
from rag.answer.extractive import ExtractiveAnswerer
from rag.index.store import ReportIndex
from rag.types import AnswerResult, Citation, Passage, ReportRecord

CHUNK_SIZE = 500
CHUNK_OVERLAP = 50
TOP_K = 4
COLLECTION_SUFFIX = "_naive"
# The tutorial's prompt (LangChain hub "rlm/rag-prompt"), word for word.
TUTORIAL_PROMPT = ("You are an assistant for question-answering tasks. Use the following pieces of retrieved "
                   "context to answer the question. If you don't know the answer, just say that you don't know. "
                   "Use three sentences maximum and keep the answer concise.\n"
                   "Question: {question} \nContext: {context} \nAnswer:")
_DONT_KNOW = re.compile(r"don'?t know|do not know|不知道|无法确定|無法確定", re.IGNORECASE)


class NaiveBaselineError(RagError, RuntimeError):
    """The baseline cannot be built (a report's file is missing or changed since it was ingested)."""


def _source_path(source: str) -> Path:
    path = Path(source)
    return path if path.is_absolute() or path.is_file() else Path.cwd() / source


def cleaned_text(report: ReportRecord) -> str:
    """The report's text as the project cleaned it when ingesting (same loader, same cleaning).

    Raises:
        NaiveBaselineError: the file is gone, or its cleaned text differs from the indexed one.
    """
    from rag.ingest.cleaning import clean
    from rag.ingest.loaders import load_document

    path = _source_path(report.source)
    if not path.is_file():
        raise NaiveBaselineError(f"{report.source} (doc_id {report.doc_id}): the file is gone; "
                                 "the baseline reads the same files the index was built from")
    text = clean(load_document(path)).text
    if report.content_sha and hashlib.sha256(text.encode()).hexdigest()[:16] != report.content_sha:
        raise NaiveBaselineError(f"{report.source}: changed since it was ingested; run `rag ingest` first "
                                 "so both pipelines read the same text")
    return text


def split_reports(reports: list[ReportRecord]) -> list[Document]:
    """The tutorial's chunks of every report, with the report's place, year and title as metadata."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    docs = []
    for report in reports:
        meta = {k: v for k, v in {"doc_id": report.doc_id, "region": report.region, "year": report.year,
                                  "title": report.title, "source": report.source}.items() if v is not None}
        for i, chunk in enumerate(splitter.split_text(cleaned_text(report))):
            docs.append(Document(page_content=chunk, metadata={**meta, "chunk_index": i},
                                 id=f"{report.doc_id}:{i:05d}"))
    return docs


class NaivePipeline:
    """The tutorial pipeline over the project's index's reports.

    Args:
        index: the project's index (its client, settings and embedding model are reused).
        answerer: the project's answerer (its extractive answerer, term weights and chat model).
        k: passages retrieved (the tutorial's 4).

    Example:
        >>> naive = NaivePipeline(index, answerer)
        >>> naive.run("太原市2024年新收行政复议案件多少件？", mode="extractive")["answer"]
        '市政府行政复议局全年新收行政复议案件1274件,同比增长204%。[1]'
    """

    def __init__(self, index: ReportIndex, answerer: Answerer, k: int = TOP_K):
        if index.embeddings is None:
            raise ValueError("the naive baseline needs an index with an embedding model")
        self.index = index
        self.answerer = answerer
        self.k = k
        self._store = None
        self._chain = None

    @classmethod
    def from_answerer(cls, answerer: Answerer, k: int = TOP_K) -> "NaivePipeline":
        return cls(answerer.retriever.index, answerer, k=k)

    @property
    def collection_name(self) -> str:
        return f"{self.index.settings.collection}{COLLECTION_SUFFIX}"

    def fingerprint(self, reports: list[ReportRecord]) -> str:
        """What the collection's content depends on: report versions, embedding model, splitter."""
        model = getattr(self.index.embeddings, "model_id", type(self.index.embeddings).__name__)
        key = json.dumps([sorted((r.doc_id, r.version) for r in reports), model, CHUNK_SIZE, CHUNK_OVERLAP])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def build(self) -> bool:
        """Make sure the collection holds the current reports; True if it was (re)built now."""
        from langchain_chroma import Chroma

        reports = self.index.reports()
        wanted = self.fingerprint(reports)
        client = self.index.client
        existing = {c.name if hasattr(c, "name") else c for c in client.list_collections()}
        built = False
        if self.collection_name in existing:
            stored = (client.get_collection(self.collection_name).metadata or {}).get("fingerprint")
            if stored != wanted:
                client.delete_collection(self.collection_name)
                existing.discard(self.collection_name)
        store = Chroma(client=client, collection_name=self.collection_name, embedding_function=self.index.embeddings,
                       collection_metadata={"fingerprint": wanted, "pipeline": "langchain-tutorial"},
                       collection_configuration={"hnsw": {"space": "cosine"}})
        if self.collection_name not in existing:
            docs = split_reports(reports)
            if docs:
                store.add_documents(docs, ids=[d.id for d in docs])
            built = True
        self._store = store
        return built

    def retrieve(self, question: str) -> list[Passage]:
        """The tutorial's retrieval: the top-k chunks by similarity to the question as asked."""
        if self._store is None:
            self.build()
        hits = self._store.similarity_search_with_score(question, k=self.k)
        return [Passage(id=doc.id or "", text=doc.page_content, score=round(1.0 - float(distance), 4),
                        doc_id=doc.metadata.get("doc_id", ""), region=doc.metadata.get("region"),
                        year=doc.metadata.get("year"), title=doc.metadata.get("title"), section="",
                        source=doc.metadata.get("source", ""), chunk_index=int(doc.metadata.get("chunk_index", 0)))
                for doc, distance in hits]

    def run(self, question: str, mode: str = "extractive", id: str | None = None) -> dict:
        """Answer one question; CONTRACT.md's result object with ``"pipeline": "naive"``."""
        started = time.perf_counter()
        passages = self.retrieve(question)
        if mode == "llm":
            result = self._llm(question, passages)
        else:
            result = self._extractive(question, passages)
        result.id = id
        result.latency_ms = (time.perf_counter() - started) * 1000
        return {**result.to_dict(), "pipeline": "naive"}

    def _extractive(self, question: str, passages: list[Passage]) -> AnswerResult:
        snap = self.answerer.retriever.snapshot()
        analysis = snap.analyzer.run(question)
        answer = ExtractiveAnswerer(snap.keywords).run(analysis, analysis.terms, passages)
        if answer.refused:
            return AnswerResult(question=question, answer=not_found(analysis.language), refused=True,
                                citations=[], contexts=passages, mode="extractive")
        text, citations = resolve_citations("\n".join(answer.lines), passages)
        return AnswerResult(question=question, answer=text, refused=False,
                            citations=citations, contexts=passages, mode="extractive")

    def _llm(self, question: str, passages: list[Passage]) -> AnswerResult:
        chat_model = self.answerer.chat_model
        if chat_model is None:
            raise NaiveBaselineError(f"llm mode needs a chat model ({self.answerer.unavailable_reason or 'none configured'})")
        if self._chain is None:
            from langchain_core.output_parsers import StrOutputParser
            from langchain_core.prompts import ChatPromptTemplate

            self._chain = ChatPromptTemplate.from_template(TUTORIAL_PROMPT) | chat_model | StrOutputParser()
        answer = self._chain.invoke({"question": question,
                                     "context": "\n\n".join(p.text for p in passages)}).strip()
        refused = bool(_DONT_KNOW.search(answer) or LLM_REFUSAL.search(answer))
        citations = [] if refused else [
            Citation(n=n, doc_id=p.doc_id, region=p.region, year=p.year, title=p.title, section=p.section,
                     text=p.text, source=p.source, chunk_id=p.id) for n, p in enumerate(passages, start=1)]
        return AnswerResult(question=question, answer=answer, refused=refused,
                            citations=citations, contexts=passages, mode="llm")
