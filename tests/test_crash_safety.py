"""Crash safety: `rag ingest` killed with SIGKILL mid-way, then run again.

The ingest runs as a real subprocess over a real Chroma folder and embedding cache. It is
killed at moments read from its own progress output (a file's chunk bar appearing, at 32
chunks, at 100% while its chunks are written, just after a file is committed, while a
changed report replaces its old version). After every kill the index is checked from a fresh
process: each listed report has all its chunks and no other version, and answers cite only
committed chunks. After the last rerun every report is there exactly once with no orphans.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, copy_reports

pytestmark = pytest.mark.slow

RAG = [sys.executable, "-m", "rag.cli"]
NAMES = ["houma-2023.txt", "mianyang-2024.txt", "taicang-2024.txt", "taiyuan-2024.txt"]  # ingest order
QUESTIONS = {  # one question per report, with a figure only that report states
    "侯马市": ("侯马市2023年全年办理行政复议案件的数量是多少？", "68"),
    "绵阳市": ("绵阳市2024年新收行政复议案件多少件？", "1472"),
    "太仓市": ("太仓市2024年新收行政复议申请多少件？", "325"),
    "太原市": ("太原市2024年新收行政复议案件多少件？", "1274"),
}
ADDED = "全年新收行政复议听证案件9876件。"  # the edit of the replace scenario: a figure no report has

# Run in a fresh process after each kill: the index as another process sees it, and answers.
CHECK = r"""
import json, sys
from rag.services import build_answerer
from rag.config import Settings
from rag.index.store import ReportIndex

settings = Settings.load()
index = ReportIndex(settings)
got = index.collection.get(include=["metadatas", "documents"])
answerer = build_answerer(settings, mode="extractive")
answers = {q: answerer.run(q, mode="extractive").to_dict() for q in json.loads(sys.argv[1])}
print(json.dumps({
    "reports": [r.__dict__ for r in index.reports()],
    "figures": index.figures_collection.get(include=[])["ids"],
    "chunks": [{"id": i, "text": t, **m} for i, m, t in zip(got["ids"], got["metadatas"], got["documents"])],
    "answers": answers,
}, ensure_ascii=False))
"""


class Ingest:
    """`rag ingest` in a subprocess, its stderr (tqdm bars and per-file lines) read as it comes."""

    def __init__(self, folder: Path, env: dict):
        self.proc = subprocess.Popen(RAG + ["ingest", str(folder)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=folder.parent)
        self.err = b""
        self.out = b""
        self.readers = [threading.Thread(target=self._read, args=(name,), daemon=True) for name in ("out", "err")]
        for reader in self.readers:
            reader.start()

    def _read(self, name: str) -> None:
        stream = self.proc.stdout if name == "out" else self.proc.stderr
        while True:
            data = os.read(stream.fileno(), 4096)
            if not data:
                break
            setattr(self, name, getattr(self, name) + data)

    def _join(self) -> None:
        for reader in self.readers:
            reader.join(timeout=60)

    @property
    def text(self) -> str:
        return self.err.decode("utf-8", errors="replace").replace("\r", "\n")

    def kill_when(self, pattern: str, limit: float = 900) -> str:
        """SIGKILL the process the moment ``pattern`` shows in its stderr; returns the line."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text)
            if m:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=60)
                self._join()
                assert self.proc.returncode == -signal.SIGKILL
                return m.group(0)
            if self.proc.poll() is not None:
                self._join()
                if not re.search(pattern, self.text):
                    pytest.fail(f"ingest ended (rc {self.proc.returncode}) before {pattern!r}:\n{self.text[-3000:]}")
            time.sleep(0.02)
        self.proc.kill()
        pytest.fail(f"no {pattern!r} within {limit} s:\n{self.text[-3000:]}")

    def finish(self, limit: float = 900) -> tuple[int, str, str]:
        """Let it run to the end; returns (exit code, stdout, stderr)."""
        self.proc.wait(timeout=limit)
        self._join()
        return self.proc.returncode, self.out.decode(), self.text


def _check(env: dict, tmp: Path) -> dict:
    questions = [q for q, _ in QUESTIONS.values()]
    run = subprocess.run([sys.executable, "-c", CHECK, json.dumps(questions, ensure_ascii=False)],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def _assert_consistent(state: dict, complete: bool = False) -> dict[str, dict]:
    """Every listed report whole and alone; answers cite only listed versions. Returns reports by region."""
    reports = {r["doc_id"]: r for r in state["reports"]}
    assert len(reports) == len(state["reports"]), "a report is listed twice"
    committed = {(r["doc_id"], r["version"]) for r in state["reports"]}
    by_version: dict[tuple, list[int]] = {}
    for chunk in state["chunks"]:
        by_version.setdefault((chunk["doc_id"], chunk["version"]), []).append(chunk["chunk_index"])
        assert chunk["id"] == f"{chunk['doc_id']}:{chunk['version']}:{chunk['chunk_index']:05d}"
    for (doc_id, version), indexes in by_version.items():
        assert len(indexes) == len(set(indexes)), f"{doc_id} {version}: a chunk stored twice"
        if (doc_id, version) in committed:
            assert sorted(indexes) == list(range(reports[doc_id]["chunks"])), f"{doc_id}: chunks missing"
    if complete:
        assert set(by_version) == committed, f"orphans: {set(by_version) - committed}"
        figures = {tuple(i.split(":")[:2]) for i in state["figures"]}
        assert figures <= committed, f"figures of uncommitted versions: {figures - committed}"
    chunk_version = {c["id"]: (c["doc_id"], c["version"]) for c in state["chunks"]}
    regions = {r["region"]: r for r in state["reports"]}
    assert len(regions) == len(state["reports"]), "a place is listed twice"
    for region, (question, figure) in QUESTIONS.items():
        answer = state["answers"][question]
        for cited in answer["citations"] + answer["contexts"]:
            chunk = cited.get("chunk_id")
            assert chunk_version.get(chunk) in committed, f"{question}: cites {chunk}, not a committed chunk"
        if region in regions:
            assert not answer["refused"] and figure in answer["answer"], answer
            assert {c["doc_id"] for c in answer["citations"]} == {regions[region]["doc_id"]}
        else:
            assert answer["refused"] and answer["citations"] == [], answer
    return regions


def test_ingest_killed_at_six_points_loses_nothing_and_duplicates_nothing(tmp_path):
    folder = copy_reports(tmp_path / "reports", set(NAMES))
    env = {**os.environ, "RAG_LLM": "none", "RAG_INDEX_DIR": str(tmp_path / "index"),
           "RAG_CACHE_DIR": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    bar = r"\.txt:\s+\d+%\|[^\n]*\| "
    kill_points = [
        bar + r"0/\d+",                       # a file's chunk bar appears: its figures are being written
        bar + r"32/\d+",                      # 32 chunks embedded, more to go, nothing of them written
        bar + r"(\d+)/\1 ",                   # all embedded: its chunks are being written
        r"ingested\s+\S+ -> \S+ \(",          # just after a file is committed
        bar + r"(\d+)/\1 ",                   # the writes of whichever file is next
    ]
    seen: list[str] = []
    for pattern in kill_points:
        ingest = Ingest(folder, env)
        seen.append(ingest.kill_when(pattern))
        _assert_consistent(_check(env, tmp_path))

    code, out, err = Ingest(folder, env).finish()
    assert code == 0, err[-3000:]
    regions = _assert_consistent(_check(env, tmp_path), complete=True)
    assert set(regions) == set(QUESTIONS)
    for name, region in zip(NAMES, ["侯马市", "绵阳市", "太仓市", "太原市"]):
        assert regions[region]["source"].endswith(name)

    # A changed report is killed while its new version is written: the old one stands until
    # the new one is complete, never both; the rerun finishes the replacement.
    old = regions["侯马市"]
    with open(folder / "houma-2023.txt", "a", encoding="utf-8") as handle:
        handle.write("\n" + ADDED + "\n")
    env["RAG_CACHE_DIR"] = str(tmp_path / "cold-cache")  # embedding takes a while again: the bar shows 100%
    ingest = Ingest(folder, env)
    seen.append(ingest.kill_when(r"houma-2023\.txt:\s+\d+%\|[^\n]*\| (\d+)/\1 "))
    middle = _assert_consistent(_check(env, tmp_path))["侯马市"]
    assert middle["doc_id"] == old["doc_id"]
    code, out, err = Ingest(folder, env).finish()
    assert code == 0 and "0 failed" in out, (out, err[-3000:])
    state = _check(env, tmp_path)
    regions = _assert_consistent(state, complete=True)
    new = regions["侯马市"]
    assert new["doc_id"] == old["doc_id"] and new["version"] != old["version"]
    assert sum(ADDED in c["text"] for c in state["chunks"]) == 1
    assert len(seen) == 6, seen


def _index_of(tmp_path: Path, name: str, embeddings):
    """A fresh embedded index holding one bundled report."""
    from rag.ingest.pipeline import Ingestor
    from rag.config import Settings
    from rag.index.store import ReportIndex

    index = ReportIndex(Settings(index_dir=str(tmp_path / "index")), embeddings)
    Ingestor(index, progress=False).run([copy_reports(tmp_path / "reports", {name})])
    return index


def test_two_committed_versions_of_a_report_show_as_the_newer_and_are_repaired(tmp_path, real_embeddings):
    """The state a kill leaves between committing a new version and deleting the old one."""
    from rag.retrieve.hybrid import HybridRetriever

    index = _index_of(tmp_path, "taiyuan-2024.txt", real_embeddings)
    old = index.reports()[0]
    got = index.collection.get(include=["metadatas", "documents", "embeddings"])
    # The new version, written as add_report writes it: every chunk, chunk 0 last.
    order = sorted(range(len(got["ids"])), key=lambda n: got["metadatas"][n]["chunk_index"] == 0)
    for n in order:
        meta = {**got["metadatas"][n], "version": "0newer0version0", "added_at": "2999-01-01T00:00:00"}
        index.collection.upsert(ids=[f"{old.doc_id}:0newer0version0:{meta['chunk_index']:05d}"],
                                embeddings=[got["embeddings"][n]], documents=[got["documents"][n]],
                                metadatas=[meta])
    assert index.collection.count() == 2 * old.chunks

    assert [(r.doc_id, r.version) for r in index.reports()] == [(old.doc_id, "0newer0version0")]
    assert index.report(old.doc_id).version == "0newer0version0"
    docs = HybridRetriever(index=index, k=8).invoke("太原市2024年新收行政复议案件多少件？")
    assert docs and all(d.metadata["version"] == "0newer0version0" for d in docs)

    assert index.repair() == old.chunks  # what every `rag ingest` does first
    assert index.collection.count() == old.chunks
    assert {m["version"] for m in index.collection.get(include=["metadatas"])["metadatas"]} == {"0newer0version0"}
    assert index.repair() == 0


class _Spy:
    """Wraps the real Chroma collection and records the ids of each delete/update call."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[str, list[str]]] = []

    def delete(self, ids=None, **kwargs):
        self.calls.append(("delete", list(ids or [])))
        return self.inner.delete(ids=ids, **kwargs)

    def update(self, ids=None, **kwargs):
        self.calls.append(("update", list(ids or [])))
        return self.inner.update(ids=ids, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_remove_uncommits_first_and_set_commits_last(tmp_path, real_embeddings):
    """`rag remove` deletes chunk 0 before the rest and `rag set` updates it after the rest, so
    a kill in between leaves the listing true (removed / unchanged) and the rest repairable."""
    index = _index_of(tmp_path, "houma-2023.txt", real_embeddings)
    record = index.reports()[0]
    zero = f"{record.doc_id}:{record.version}:00000"

    spy = _Spy(index.collection)
    index._collection = spy
    index.update_report(record.doc_id, year=2022)
    updates = [ids for kind, ids in spy.calls if kind == "update"]
    assert updates[-1] == [zero] and zero not in sum(updates[:-1], [])
    assert sum(len(ids) for ids in updates) == record.chunks
    assert index.report(record.doc_id).year == 2022
    assert {m["year"] for m in spy.inner.get(include=["metadatas"])["metadatas"]} == {2022}

    spy.calls.clear()
    assert index.remove_report(record.doc_id) == record.chunks
    deletes = [ids for kind, ids in spy.calls if kind == "delete" and ids]
    assert deletes[0][0] == zero
    assert index.reports() == [] and spy.inner.count() == 0
