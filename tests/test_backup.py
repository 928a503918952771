"""`rag backup` / `rag restore`: an index brought back without embedding anything again.

The round trip: five reports ingested (one corrected), every project question answered
(extractive), a backup, the index wiped, the backup restored (into the same folder, and into
the token-protected Chroma server): every question gets the same answer, with the same
citations. A truncated or altered backup is refused, naming the file, and the target is left empty.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, CountingEmbeddings, copy_reports
from rag.answer.answerer import Answerer
from rag.config import Settings
from rag.eval.harness import load_questions
from rag.index.conversations import ConversationStore, StoredConversation
from rag.index.backup import BackupError, restore_backup, verify_backup, write_backup
from rag.index.embeddings import CachedEmbeddings
from rag.index.store import ReportIndex
from rag.ingest.pipeline import Ingestor
from rag.retrieve.hybrid import HybridRetriever
from test_security import TOKEN, token_chroma  # noqa: F401 - the token server fixture

pytestmark = pytest.mark.slow


def _answers(index: ReportIndex, questions) -> dict:
    answerer = Answerer(HybridRetriever(index=index, k=8))
    out = {}
    for q in questions:
        result = answerer.run(q.question, mode="extractive")
        out[q.id] = (result.answer, result.refused, [(c.doc_id, c.text) for c in result.citations])
    assert len(out) == len(questions) > 100
    return out


@pytest.fixture(scope="module")
def source_index(tmp_path_factory, real_embeddings, cached_embeddings, bundled_index):
    """The five bundled reports (vectors from the session's cache), Houma's year corrected."""
    tmp = tmp_path_factory.mktemp("backup-source")
    spy = CountingEmbeddings(real_embeddings)
    index = ReportIndex(Settings(index_dir=str(tmp / "index")), CachedEmbeddings(spy, cached_embeddings.store))
    assert Ingestor(index, progress=False).run([copy_reports(tmp / "reports")]).count("ingested") == 5
    houma = next(r for r in index.reports() if r.region == "侯马市")
    index.update_report(houma.doc_id, title="侯马市2023年法治政府建设情况（更正）")
    return index, spy


def test_backup_wipe_restore_gives_every_project_question_the_same_answer(source_index, tmp_path, real_embeddings,
                                                                          token_chroma):
    index, spy = source_index
    questions = load_questions(ROOT / "eval" / "questions" / "project.jsonl")
    before = _answers(index, questions)
    log_before = [e.to_dict() for e in index.audit.entries()]
    kept = ConversationStore(index.client, f"{index.settings.collection}_conversations").save(StoredConversation(
        "c0ffee", "user:wang", [{"role": "user", "content": "太原市2024年新收行政复议案件多少件？"},
                                {"role": "assistant", "content": "1274件[1]"}], ["太原市2024年新收行政复议案件多少件？"],
        {1: {"answer": "1274件[1]"}}))

    summary = write_backup(index, tmp_path / "backup", progress=False)
    assert (summary.reports, summary.chunks) == (5, sum(r.chunks for r in index.reports()))
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["embedding_model"] == index.embedding_model
    assert {r["title"] for r in manifest["reports"]} >= {"侯马市2023年法治政府建设情况（更正）"}
    assert set(manifest["files"]) == {"chunks.jsonl", "chunks.npy", "figures.jsonl", "figures.npy", "audit.jsonl",
                                      "conversations.jsonl"}
    assert summary.conversations == manifest["counts"]["conversations"] >= 1

    # Wipe the index (as `rag ingest --rebuild` does), restore into it: the same answers, nothing embedded.
    index.drop()
    embedded = len(spy.embedded)
    restored = ReportIndex(index.settings, real_embeddings)
    assert restored.reports() == [] and restored.collection.count() == 0
    restore_backup(restored, tmp_path / "backup", progress=False)
    assert _answers(restored, questions) == before
    assert len(spy.embedded) == embedded
    houma = next(r for r in restored.reports() if r.region == "侯马市")
    assert houma.title == "侯马市2023年法治政府建设情况（更正）"
    log_after = [e.to_dict() for e in restored.audit.entries()]
    # The log survived the wipe (its entry is there) and holds the backup's entries once each.
    assert log_after[:-2] == log_before and [e["action"] for e in log_after[-2:]] == ["rebuild", "restore"]
    assert [e["action"] for e in log_before].count("correct") == 1

    # The same backup into the Chroma server (with its token), through the command line.
    env = {**os.environ, "RAG_CHROMA_URL": token_chroma, "RAG_CHROMA_TOKEN": TOKEN,
           "RAG_COLLECTION": "restored", "RAG_INDEX_DIR": str(tmp_path / "unused")}
    done = subprocess.run([sys.executable, "-m", "rag.cli", "restore", "-q", str(tmp_path / "backup")], env=env,
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0 and "5 reports" in done.stdout, done.stderr
    server = ReportIndex(Settings(chroma_url=token_chroma, chroma_token=TOKEN,
                                  collection="restored", index_dir=str(tmp_path / "unused")), real_embeddings)
    assert _answers(server, questions) == before
    # The app's kept conversations came along, still their owner's only.
    moved = ConversationStore(server.client, "restored_conversations").get("c0ffee", "user:wang")
    assert (moved.messages, moved.turns, moved.created) == (kept.messages, kept.turns, kept.created)
    # A second restore into a target that holds reports is refused.
    again = subprocess.run([sys.executable, "-m", "rag.cli", "restore", "-q", str(tmp_path / "backup")], env=env,
                           capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert again.returncode == 2 and "already holds" in again.stderr and "Traceback" not in again.stderr


def test_a_truncated_or_altered_backup_is_refused_and_the_target_left_as_it_was(source_index, tmp_path):
    index, _ = source_index
    write_backup(index, tmp_path / "good", progress=False)
    verify_backup(tmp_path / "good")
    target = ReportIndex(Settings(index_dir=str(tmp_path / "target")))

    def damaged(name: str, damage) -> str:
        folder = tmp_path / f"bad-{name}-{damage.__name__}"
        shutil.copytree(tmp_path / "good", folder)
        damage(folder / name)
        with pytest.raises(BackupError) as refused:
            restore_backup(target, folder, progress=False)
        assert target.collection.count() == 0 and target.figures_collection.count() == 0
        return str(refused.value)

    def truncate(path):
        path.write_bytes(path.read_bytes()[:-100])

    def alter(path):  # same size, one character changed
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("1274", "1275", 1), encoding="utf-8")

    def remove(path):
        path.unlink()

    message = damaged("chunks.npy", truncate)
    assert "chunks.npy" in message and "truncated" in message
    message = damaged("chunks.jsonl", alter)
    assert "chunks.jsonl" in message and "SHA-256" in message and "nothing was restored" in message
    assert "audit.jsonl" in damaged("audit.jsonl", remove)
    assert "conversations.jsonl" in damaged("conversations.jsonl", remove)
    assert "manifest.json" in damaged("manifest.json", truncate)
    # A backup goes into a new or empty folder only.
    with pytest.raises(BackupError, match="not empty"):
        write_backup(index, tmp_path / "good", progress=False)


def test_a_restore_keeps_conversations_newer_than_the_backups(tmp_path):
    # `rag ingest --rebuild` drops the reports and keeps the conversations: a backup restored
    # into that index must not put older copies over conversations that went on since.
    index = ReportIndex(Settings(index_dir=str(tmp_path / "index")))
    store = ConversationStore(index.client, f"{index.settings.collection}_conversations")
    question = {"role": "user", "content": "太原市2024年新收行政复议案件多少件？"}
    store.save(StoredConversation("c1", "user:li", [question, {"role": "assistant", "content": "1274件[1]"}]))
    store.save(StoredConversation("c2", "user:li", [question]))
    write_backup(index, tmp_path / "backup", progress=False)
    later = store.get("c1", "user:li")
    later.messages += [{"role": "user", "content": "那绵阳呢？"}, {"role": "assistant", "content": "1472件[1]"}]
    store.save(later)
    store.collection.delete(ids=["c2"])
    summary = restore_backup(index, tmp_path / "backup", progress=False)
    assert summary.conversations == 2
    assert len(store.get("c1", "user:li").messages) == 4  # the newer one stays
    assert store.get("c2", "user:li").messages == [question]  # one the index lost comes back
