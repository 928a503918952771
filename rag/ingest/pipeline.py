"""Ingest files into the index, incrementally.

For each file: hash its bytes (with the overrides and chunker settings). If the index holds
that exact version for the same source, skip it without reading further. Otherwise load,
clean, detect metadata, chunk, and store it as a new version; the old version is removed only
once the new one is committed. A file whose cleaned text is already indexed under another
name is reported as a duplicate and stored once.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm

from rag.ingest.chunking import Chunker
from rag.ingest.cleaning import clean
from rag.ingest.errors import IngestError
from rag.ingest.loaders import SUPPORTED_SUFFIXES, load_document
from rag.ingest.metadata import ReportMetadata, detect_metadata
from rag.index.store import ReportIndex
from rag.text.parts import chunk_parts
from rag.types import ChunkRecord, ReportRecord

# Bump when cleaning or chunking changes, so that re-ingest rebuilds every report.
PIPELINE_VERSION = "4"  # 2: control and zero-width characters, orders to AI models and repeated passages left out;
# 3: each chunk tagged with its part of the report; 4: the issuer (not any place named), its level,
# parent and department, and the detection's confidence and evidence
LONG_TEXT_CHARS = 200_000  # texts from this long show a chunking progress bar
_OVERRIDABLE = ("region", "province", "year", "title", "publisher", "date", "level", "parent", "department")


@dataclass
class FileResult:
    """What happened to one file."""

    source: str
    status: str  # ingested | replaced | skipped | duplicate | failed
    doc_id: str | None = None
    chunks: int = 0
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    region: str | None = None
    year: int | None = None
    confidence: str | None = None  # of the detected place and year: low ones are to be confirmed
    evidence: str = ""  # the clues they came from, in one Chinese line
    fix: str = ""  # the `rag set` command that confirms or corrects them


@dataclass
class IngestSummary:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    embedded_chunks: int = 0
    pruned: list[str] = field(default_factory=list)
    repaired_chunks: int = 0
    vectors: tuple[int, int] = (0, 0)  # (from the embedding cache, requested) when it has one
    backfilled_figures: int = 0  # reports whose figures were extracted from stored chunks

    def _cache_note(self) -> str:
        hits, requested = self.vectors
        return f" ({hits} of {requested} vectors from the embedding cache)" if hits else ""

    def count(self, *statuses: str) -> int:
        return sum(1 for r in self.results if r.status in statuses)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    def line(self) -> str:
        return (f"{self.count('ingested', 'replaced')} ingested, {self.count('skipped')} skipped, "
                f"{self.count('duplicate')} duplicate, {self.count('failed')} failed, "
                f"{self.embedded_chunks} chunks embedded{self._cache_note()}, {len(self.pruned)} pruned, "
                f"{self.seconds:.1f} s")


def display_path(path: Path) -> str:
    """The path as stored in ``source``: relative to the working folder when inside it."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def make_doc_id(source: str) -> str:
    """A stable id from the source path: a readable slug of the name plus a short path hash."""
    stem = Path(source).stem
    slug = re.sub(r"[^0-9A-Za-z\u4e00-\u9fff]+", "-", stem).strip("-").lower()[:40] or "report"
    return f"{slug}-{hashlib.sha1(source.encode()).hexdigest()[:6]}"


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileResult]]:
    """The report files under the given files and folders, and results for bad paths."""
    files: list[Path] = []
    problems: list[FileResult] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*")
                                if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES + (".doc",)
                                and not p.name.startswith(".")))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(FileResult(str(raw), "failed", reason="no such file or folder"))
    seen, unique = set(), []
    for f in files:
        if f.resolve() not in seen:
            seen.add(f.resolve())
            unique.append(f)
    return unique, problems


def read_sidecar(path: Path) -> dict:
    """Overrides from ``NAME.meta.json`` (or ``NAME.ext.meta.json``) beside the file."""
    for sidecar in (path.with_suffix(".meta.json"), path.with_name(path.name + ".meta.json")):
        if sidecar.is_file():
            try:
                data = json.loads(sidecar.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise IngestError(f"{sidecar.name} is not valid JSON: {exc}") from exc
            if not isinstance(data, dict):
                raise IngestError(f"{sidecar.name} must hold a JSON object")
            unknown = set(data) - set(_OVERRIDABLE)
            if unknown:
                raise IngestError(f"{sidecar.name}: unknown fields {sorted(unknown)}; allowed: {list(_OVERRIDABLE)}")
            if "year" in data:
                try:
                    data["year"] = int(data["year"])
                except (TypeError, ValueError):
                    raise IngestError(f"{sidecar.name}: year must be a number, got {data['year']!r}")
            return data
    return {}


class Ingestor:
    """Put report files into a ``ReportIndex``.

    Args:
        index: the index to write (with its embedding model).
        chunker: the chunker; ``Chunker(max_tokens=index.settings.chunk_tokens)`` by default.
        progress: show tqdm progress bars on stderr.

    Example:
        >>> summary = Ingestor(index).run(["data/reports"])
        >>> summary.line()
        '5 ingested, 0 skipped, 0 duplicate, 0 failed, 131 chunks embedded, 0 pruned, 12.0 s'
    """

    def __init__(self, index: ReportIndex, chunker: Chunker | None = None, progress: bool = True):
        self.index = index
        self.chunker = chunker or Chunker(max_tokens=index.settings.chunk_tokens)
        self.progress = progress

    def _version(self, data: bytes, overrides: dict) -> str:
        h = hashlib.sha256(data)
        h.update(json.dumps(overrides, sort_keys=True, ensure_ascii=False).encode())
        h.update(f"{PIPELINE_VERSION}:{self.chunker.max_tokens}:{self.chunker.overlap_sentences}".encode())
        return h.hexdigest()[:16]

    def run(self, paths: Iterable[str | Path], region: str | None = None, year: int | None = None,
            prune: bool = False, on_file: Callable[[FileResult], None] | None = None) -> IngestSummary:
        """Ingest files and folders.

        Args:
            paths: files and folders (searched recursively for supported files).
            region: the place of every file named (overrides detection).
            year: the year of every file named (overrides detection).
            prune: remove reports whose source file no longer exists.
            on_file: called with each file's result as soon as it is known.
        """
        started = time.perf_counter()
        summary = IngestSummary()
        self.index.check_embeddings()
        cache = self.index.embeddings
        hits, requested = getattr(cache, "hits", 0), getattr(cache, "requested", 0)
        summary.repaired_chunks = self.index.repair()
        # Indexes built before figures were extracted get them from their stored chunks.
        summary.backfilled_figures = self.index.backfill_figures()
        files, problems = discover(paths)
        summary.results.extend(problems)
        for problem in problems if on_file else ():  # a missing path is reported like any failure
            on_file(problem)
        existing = {r.source: r for r in self.index.reports()}
        bar = tqdm(files, desc="files", unit="file", disable=not self.progress, file=sys.stderr)
        for path in bar:
            bar.set_postfix_str(path.name[-30:])
            result = self._ingest_one(path, region, year, existing, summary)
            summary.results.append(result)
            if on_file:
                on_file(result)
        if prune:
            for record in self.index.reports():
                if not (Path(record.source).is_file() or (Path.cwd() / record.source).is_file()):
                    self.index.remove_report(record.doc_id)
                    summary.pruned.append(record.doc_id)
        summary.vectors = (getattr(cache, "hits", 0) - hits, getattr(cache, "requested", 0) - requested)
        summary.seconds = time.perf_counter() - started
        return summary

    # Size: one file's transaction (read, skip, clean, chunk, store, report) kept in one place so
    # that its error handling (nothing stored half) is visible at a glance.
    def _ingest_one(self, path: Path, region: str | None, year: int | None,
                    existing: dict[str, ReportRecord], summary: IngestSummary) -> FileResult:
        source = display_path(path)
        result = FileResult(source=source, status="failed")
        try:
            sidecar = read_sidecar(path)
            overrides = dict(sidecar)
            overrides.update({k: v for k, v in (("region", region), ("year", year)) if v is not None})
            data = path.read_bytes()
            version = self._version(data, overrides)
            previous = existing.get(source)
            if previous and previous.version == version:
                result.status, result.doc_id, result.chunks = "skipped", previous.doc_id, previous.chunks
                result.region, result.year = previous.region, previous.year
                if previous.unconfirmed:  # still unconfirmed: say so again
                    stored = ReportMetadata(region=previous.region, year=previous.year, evidence=previous.evidence)
                    result.confidence, result.evidence = previous.confidence, stored.explain()
                    result.fix = stored.fix_command(previous.doc_id)
                return result

            document = load_document(path)
            cleaned = clean(document)
            if not cleaned.text.strip():
                raise IngestError("nothing but web-page debris in the file")
            meta = detect_metadata(cleaned.text, path, cleaned.info_lines)
            if overrides:  # the sidecar, then --region/--year over it
                meta.apply_overrides(sidecar, "sidecar")
                meta.apply_overrides({k: v for k, v in overrides.items() if sidecar.get(k) != v}, "user")
            content_sha = hashlib.sha256(cleaned.text.encode()).hexdigest()[:16]
            twin = next((r for r in existing.values()
                         if r.content_sha == content_sha and r.source != source), None)
            if twin is not None:
                result.status, result.doc_id = "duplicate", twin.doc_id
                result.reason = f"same text as {twin.source} (doc_id {twin.doc_id}); stored once"
                return result

            # Chunking a long file takes a while: it gets its own bar (characters done).
            with tqdm(total=len(cleaned.text), desc=f"  {path.name[-24:]} chunking", unit="char",
                      unit_scale=True, leave=False, file=sys.stderr,
                      disable=not self.progress or len(cleaned.text) < LONG_TEXT_CHARS) as chunking:
                chunks = self.chunker.run(cleaned.text, cleaned.page_starts,
                                          progress=lambda done: chunking.update(done - chunking.n))
            if not chunks:
                raise IngestError("no text left to index after cleaning")
            doc_id = previous.doc_id if previous else make_doc_id(source)
            record = ReportRecord(doc_id=doc_id, version=version, source=source, content_sha=content_sha,
                                  region=meta.region, province=meta.province, year=meta.year,
                                  title=meta.title, publisher=meta.publisher, date=meta.date,
                                  lang=meta.lang, level=meta.level, parent=meta.parent,
                                  department=meta.department, confidence=meta.confidence,
                                  evidence=meta.evidence)
            header = " ".join(str(x) for x in (meta.region, f"{meta.year}年" if meta.year else None) if x)
            # Each chunk's part of the report (measures, shortcomings, plans …), read from the
            # whole report's headings and paragraph openings (rag.text.parts).
            parts = chunk_parts([(c.start, c.text, c.section_path) for c in chunks])
            records = [ChunkRecord(text=c.text, embed_text=f"{header} {c.section}\n{c.text}".strip(),
                                   chunk_index=c.index, char_start=c.start, char_end=c.end,
                                   section=c.section, section_path=c.section_path,
                                   page=c.page, page_end=c.page_end, part=part)
                       for c, part in zip(chunks, parts)]
            with tqdm(total=len(records), desc=f"  {path.name[-24:]}", unit="chunk", leave=False,
                      disable=not self.progress, file=sys.stderr) as chunk_bar:
                def advance(n: int) -> None:
                    chunk_bar.update(n)
                    summary.embedded_chunks += n
                self.index.add_report(record, records, on_batch=advance)
            existing[source] = record
            result.status = "replaced" if previous else "ingested"
            result.doc_id, result.chunks = doc_id, len(records)
            result.region, result.year = meta.region, meta.year
            result.confidence, result.evidence = meta.confidence, meta.explain()
            if meta.confidence == "low":
                result.fix = meta.fix_command(doc_id)
            result.warnings = meta.warnings + document.notes  # e.g. damaged bytes replaced
            if cleaned.instructions:  # prompt injection: say what was left out of the index
                shown = " / ".join(s[:60] for s in cleaned.instructions[:3])
                result.warnings.append(f"left out {len(cleaned.instructions)} sentence(s) that give orders "
                                       f"to an AI model (prompt injection?): {shown}")
        except IngestError as exc:
            result.reason = str(exc)
        except Exception as exc:  # a file must never stop the others; say what went wrong
            result.reason = f"unexpected error: {type(exc).__name__}: {exc}"
        return result
