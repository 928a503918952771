"""Backups of an index: everything needed to bring it back on another machine, nothing embedded again.

A backup is a folder::

    manifest.json   format, date, who made it, the source index, the embedding model, the reports,
                    and each file below with its size and SHA-256
    chunks.jsonl    one committed chunk a line: id, text, metadata (the report's fields, corrections
                    included, and the chunk's section, part, page ...)
    chunks.npy      their vectors, a float32 matrix in the same order (numpy's format)
    figures.jsonl   the figures extracted at ingest (id, metric, metadata), and figures.npy
    audit.jsonl     the audit log, oldest first
    conversations.jsonl  the kept conversations of the app (id, the conversation, its owner and
                    times); backups of format 1 have none

``restore_backup`` checks every file against the manifest (size, SHA-256, record counts, vector
shapes) before it writes anything, and only restores into an index that holds no reports: a
truncated or altered backup, or a non-empty target, is refused and the target left as it was.
Chunks are written as ``ReportIndex.add_report`` writes them, chunk 0 of every report last, so
an interrupted restore leaves no half report listed (``repair`` removes the rest).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.errors import RagError
from rag.index.audit import AuditEntry, current_actor
from rag.index.embeddings import batched
from rag.index.store import ReportIndex, _version_of, get_all

FORMAT = "govreport-rag-backup"
FORMAT_VERSION = 2
FILES = ("chunks.jsonl", "chunks.npy", "figures.jsonl", "figures.npy", "audit.jsonl", "conversations.jsonl")
READABLE = {1: FILES[:5], 2: FILES}  # the files of each format this version restores


class BackupError(RagError, ValueError):
    """A backup that cannot be written or restored (the file and the reason are named)."""


@dataclass
class BackupSummary:
    folder: Path
    reports: int
    chunks: int
    figures: int
    audit_entries: int
    embedding_model: str | None
    conversations: int = 0

    def line(self) -> str:
        return (f"{self.reports} reports, {self.chunks} chunks, {self.figures} figures, "
                f"{self.audit_entries} audit entries, {self.conversations} conversations; "
                f"embeddings {self.embedding_model}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _committed(collection, committed: set[tuple[str, str]]) -> tuple[list[dict], np.ndarray]:
    """The records of committed report versions: (id, document, metadata) dicts and their vectors."""
    got = get_all(collection, include=["documents", "metadatas", "embeddings"])
    keep = [n for n, i in enumerate(got["ids"]) if _version_of(i) in committed]
    records = [{"id": got["ids"][n], "document": got["documents"][n], "metadata": got["metadatas"][n]} for n in keep]
    vectors = np.asarray([got["embeddings"][n] for n in keep], dtype=np.float32)
    return records, vectors


def _conversations(index: ReportIndex):
    """The app's kept conversations of this index (``rag.index.conversations``)."""
    from rag.index.conversations import ConversationStore

    return ConversationStore(index.client, f"{index.settings.collection}_conversations").collection


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_backup(index: ReportIndex, folder: str | Path, progress: bool = True) -> BackupSummary:
    """Write a backup of ``index`` into ``folder`` (new, or empty).

    Args:
        index: the index (embedded or a server); no embedding model is needed.
        folder: where the backup goes.
        progress: show a progress bar.
    """
    from tqdm import tqdm

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder}: not empty; a backup goes into a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    steps = tqdm(total=len(FILES) + 1, desc="backup", unit="file", disable=not progress)
    reports = index.reports()
    committed = {(r.doc_id, r.version) for r in reports}
    chunks, chunk_vectors = _committed(index.collection, committed)
    figures, figure_vectors = _committed(index.figures_collection, committed)
    entries = [e.to_dict() for e in index.audit.entries()]
    got = get_all(_conversations(index), include=["documents", "metadatas"])
    conversations = [{"id": i, "document": d, "metadata": m}
                     for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]
    for name, write in (("chunks.jsonl", lambda p: _write_jsonl(p, chunks)),
                        ("chunks.npy", lambda p: np.save(p, chunk_vectors)),
                        ("figures.jsonl", lambda p: _write_jsonl(p, figures)),
                        ("figures.npy", lambda p: np.save(p, figure_vectors)),
                        ("audit.jsonl", lambda p: _write_jsonl(p, entries)),
                        ("conversations.jsonl", lambda p: _write_jsonl(p, conversations))):
        write(folder / name)
        steps.update()
    actor, _ = current_actor()
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "made_by": actor,
        "source": {"location": index.location, "collection": index.settings.collection},
        "embedding_model": index.embedding_model,
        "counts": {"reports": len(reports), "chunks": len(chunks), "figures": len(figures), "audit": len(entries),
                   "conversations": len(conversations)},
        "dimensions": {"chunks": int(chunk_vectors.shape[1]) if len(chunks) else 0,
                       "figures": int(figure_vectors.shape[1]) if len(figures) else 0},
        "reports": [{"doc_id": r.doc_id, "version": r.version, "region": r.region, "year": r.year,
                     "title": r.title, "chunks": r.chunks} for r in reports],
        "files": {name: {"bytes": (folder / name).stat().st_size, "sha256": _sha256(folder / name)}
                  for name in FILES},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    steps.update()
    steps.close()
    return BackupSummary(folder, len(reports), len(chunks), len(figures), len(entries), index.embedding_model,
                         len(conversations))


@dataclass
class _Verified:
    manifest: dict
    chunks: list[dict]
    chunk_vectors: np.ndarray
    figures: list[dict]
    figure_vectors: np.ndarray
    entries: list[AuditEntry]
    conversations: list[dict]


def _read_jsonl(path: Path, expected: int) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise BackupError(f"{path}: line {n} is not JSON ({exc}); nothing was restored") from exc
    if len(rows) != expected:
        raise BackupError(f"{path}: {len(rows)} records, the manifest says {expected}; nothing was restored")
    return rows


def _read_vectors(path: Path, rows: int, dims: int) -> np.ndarray:
    try:
        vectors = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError, EOFError, OSError for damaged files
        raise BackupError(f"{path}: not a readable vector file ({exc}); nothing was restored") from exc
    if rows and vectors.shape != (rows, dims):
        raise BackupError(f"{path}: vectors of shape {vectors.shape}, the manifest says ({rows}, {dims}); "
                          "nothing was restored")
    return vectors


def verify_backup(folder: str | Path) -> _Verified:
    """Read a backup and check it whole: the manifest, every file's size and SHA-256, the records.

    Raises:
        BackupError: naming the first file that is missing, truncated, altered or unreadable.
    """
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise BackupError(f"{path}: missing; {folder} is not a backup made by `rag backup`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackupError(f"{path}: not valid JSON ({exc}); nothing was restored") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") not in READABLE:
        raise BackupError(f"{path}: not a {FORMAT} backup of format {' or '.join(map(str, READABLE))}")
    names = READABLE[manifest["format_version"]]
    for name in names:
        expected = (manifest.get("files") or {}).get(name)
        file = folder / name
        if expected is None:
            raise BackupError(f"{path}: lists no checksum for {name}; nothing was restored")
        if not file.is_file():
            raise BackupError(f"{file}: missing; nothing was restored")
        if file.stat().st_size != expected["bytes"]:
            raise BackupError(f"{file}: {file.stat().st_size} bytes, the manifest says {expected['bytes']} "
                              "(truncated or changed); nothing was restored")
        if _sha256(file) != expected["sha256"]:
            raise BackupError(f"{file}: SHA-256 differs from the manifest (the file was changed); "
                              "nothing was restored")
    counts, dims = manifest["counts"], manifest["dimensions"]
    chunks = _read_jsonl(folder / "chunks.jsonl", counts["chunks"])
    figures = _read_jsonl(folder / "figures.jsonl", counts["figures"])
    entries = [AuditEntry(**row) for row in _read_jsonl(folder / "audit.jsonl", counts["audit"])]
    conversations = (_read_jsonl(folder / "conversations.jsonl", counts["conversations"])
                     if "conversations.jsonl" in names else [])
    return _Verified(manifest, chunks, _read_vectors(folder / "chunks.npy", len(chunks), dims["chunks"]), figures,
                     _read_vectors(folder / "figures.npy", len(figures), dims["figures"]), entries, conversations)


def restore_backup(index: ReportIndex, folder: str | Path, progress: bool = True) -> BackupSummary:
    """Restore a backup into ``index``, which must hold no reports (a new folder, collection or server).

    Args:
        index: the target (embedded or a server); no embedding model is needed.
        folder: a folder written by ``write_backup``.
        progress: show a progress bar.

    Raises:
        BackupError: the backup fails its checks, or the target is not empty; nothing is written.
    """
    from tqdm import tqdm

    backup = verify_backup(folder)
    held = index.collection.count() + index.figures_collection.count()
    if held:
        raise BackupError(f"the index at {index.location} (collection {index.settings.collection!r}) already holds "
                          f"{held} records; restore into an empty one (another RAG_INDEX_DIR or RAG_COLLECTION); "
                          "nothing was restored")
    manifest = backup.manifest
    index.collection.modify(metadata={**(index.collection.metadata or {}),
                                      "embedding_model": manifest["embedding_model"]})
    limit = index.client.get_max_batch_size()
    # Chunk 0 of every report last: it commits its report (see ReportIndex.add_report).
    order = sorted(range(len(backup.chunks)), key=lambda n: backup.chunks[n]["metadata"].get("chunk_index") == 0)
    bar = tqdm(total=len(backup.figures) + len(order), desc="restore", unit="record", disable=not progress)
    for target, rows, vectors, indices in ((index.figures_collection, backup.figures, backup.figure_vectors,
                                            list(range(len(backup.figures)))),
                                           (index.collection, backup.chunks, backup.chunk_vectors, order)):
        for batch in batched(indices, limit):
            target.upsert(ids=[rows[n]["id"] for n in batch], embeddings=vectors[list(batch)],
                          documents=[rows[n]["document"] for n in batch],
                          metadatas=[rows[n]["metadata"] for n in batch])
            bar.update(len(batch))
    bar.close()
    kept = _conversations(index)
    for batch in batched(backup.conversations, limit):
        # A target emptied by `rag ingest --rebuild` keeps its conversations: one already there
        # stays as it is unless the backup's copy is newer (it may have gone on since the backup).
        have = kept.get(ids=[c["id"] for c in batch], include=["metadatas"])
        updated = {i: (m or {}).get("updated") or "" for i, m in zip(have["ids"], have["metadatas"])}
        batch = [c for c in batch if c["id"] not in updated
                 or ((c.get("metadata") or {}).get("updated") or "") > updated[c["id"]]]
        if not batch:
            continue
        # The store keeps no meaningful vector (it is never searched); one placeholder each.
        kept.upsert(ids=[c["id"] for c in batch], embeddings=[[1.0]] * len(batch),
                    documents=[c["document"] for c in batch], metadatas=[c["metadata"] for c in batch])
    index.audit.append(backup.entries)
    index.audit.record("restore", "", None, {"reports": manifest["counts"]["reports"], "from": str(folder),
                                             "backup_created": manifest["created"]})
    index._touch()
    counts = manifest["counts"]
    return BackupSummary(Path(folder), counts["reports"], counts["chunks"], counts["figures"], counts["audit"],
                         manifest["embedding_model"], len(backup.conversations))
