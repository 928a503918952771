"""The naive baseline (the LangChain tutorial pipeline) and `rag eval --pipeline both` on a real index
of the five bundled reports, with the real embedding model; the LLM judge with the bundled model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.eval.naive import CHUNK_SIZE, TOP_K, NaiveBaselineError, NaivePipeline, cleaned_text, split_reports
from rag.answer.answerer import Answerer
from rag.index.store import ReportRecord
from rag.retrieve.hybrid import HybridRetriever

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def naive(bundled_index):
    answerer = Answerer(HybridRetriever(index=bundled_index, k=8))
    pipeline = NaivePipeline.from_answerer(answerer)
    project_chunks = bundled_index.collection.count()
    pipeline.built_now = pipeline.build()
    assert bundled_index.collection.count() == project_chunks  # the project's collection is untouched
    return pipeline


def test_split_reports_is_the_tutorial_splitter(bundled_index):
    reports = bundled_index.reports()
    docs = split_reports(reports)
    assert {d.metadata["region"] for d in docs} == {r.region for r in reports}
    assert all(len(d.page_content) <= CHUNK_SIZE for d in docs)
    # chunks tile the cleaned text: the first chunk opens the report, 50-character overlaps aside
    taiyuan = next(r for r in reports if r.region == "太原市")
    text = cleaned_text(taiyuan)
    first = next(d for d in docs if d.metadata["doc_id"] == taiyuan.doc_id)
    assert text.startswith(first.page_content[:100])


def test_cleaned_text_refuses_changed_or_missing_files(tmp_path, bundled_index):
    report = bundled_index.reports()[0]
    changed = tmp_path / "r.txt"
    changed.write_text("别的内容。" * 20, encoding="utf-8")
    with pytest.raises(NaiveBaselineError, match="changed since it was ingested"):
        cleaned_text(ReportRecord(**{**report.__dict__, "source": str(changed)}))
    with pytest.raises(NaiveBaselineError, match="the file is gone"):
        cleaned_text(ReportRecord(**{**report.__dict__, "source": str(tmp_path / "gone.txt")}))


def test_fingerprint_follows_report_versions(naive, bundled_index):
    reports = bundled_index.reports()
    changed = [ReportRecord(**{**reports[0].__dict__, "version": "other"})] + reports[1:]
    assert naive.fingerprint(reports) == naive.fingerprint(list(reversed(reports)))
    assert naive.fingerprint(reports) != naive.fingerprint(changed)
    assert naive.fingerprint(reports) != naive.fingerprint(reports[1:])


@pytest.mark.slow
def test_naive_collection_is_built_once_and_answers(naive, bundled_index):
    assert naive.built_now is True
    assert naive.collection_name == "govreport_naive"
    again = NaivePipeline.from_answerer(naive.answerer)
    assert again.build() is False  # same reports, same model: reused, not re-embedded
    stored = bundled_index.client.get_collection(naive.collection_name)
    assert stored.count() == len(split_reports(bundled_index.reports()))

    result = naive.run("绵阳市2024年新收行政复议案件多少件？", mode="extractive", id="q1")
    assert result["pipeline"] == "naive" and result["id"] == "q1" and result["mode"] == "extractive"
    assert len(result["contexts"]) == TOP_K
    assert all(c["chunk_id"].split(":")[0] in {r.doc_id for r in bundled_index.reports()} for c in result["contexts"])
    # no query analysis: a place that is not indexed is answered from whatever is similar
    chengdu = naive.run("成都市2024年新收行政复议案件多少件？", mode="extractive")
    assert len(chengdu["contexts"]) == TOP_K
    project = naive.answerer.run("成都市2024年新收行政复议案件多少件？", mode="extractive")
    assert project.refused and project.contexts == []
    with pytest.raises(NaiveBaselineError, match="llm mode needs a chat model"):
        naive.run("太原市新收行政复议案件多少件？", mode="llm")


@pytest.mark.slow
def test_rag_eval_pipeline_both_from_the_command_line(naive, bundled_index, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in [
        {"id": "a", "question": "绵阳市2024年新收行政复议案件多少件？", "kind": "fact", "must_include": [["1472"]],
         "evidence": ["新收行政复议案件1472件"]},
        {"id": "b", "question": "成都市2024年新收行政复议案件多少件？", "kind": "unanswerable", "answerable": False},
    ]) + "\n", encoding="utf-8")
    report = tmp_path / "report"
    run = subprocess.run([sys.executable, "-m", "rag.cli", "eval", str(questions), "--pipeline", "both",
                          "--mode", "extractive", "--report", str(report), "--out", str(tmp_path / "r.jsonl"), "-q"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env={**os.environ, "RAG_INDEX_DIR": bundled_index.settings.index_dir, "RAG_LLM": "none"})
    assert run.returncode == 0, run.stderr
    assert "built the naive baseline" not in run.stderr  # the fixture built it; reused
    header = run.stdout.splitlines()[0].split()
    assert header[:2] == ["metric", "project"] and "naive" in header
    project_rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()]
    naive_rows = [json.loads(line) for line in (tmp_path / "r.naive.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["pipeline"] for r in project_rows + naive_rows] == ["project"] * 2 + ["naive"] * 2
    assert all(r["correct"] for r in project_rows)
    assert naive_rows[1]["refused"] is False and naive_rows[1]["correct"] is False  # it answers about 成都
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["run"]["pipeline"] == "both" and metrics["project"]["accuracy"] == 1.0
    assert metrics["naive"]["by_kind"]["unanswerable"]["accuracy"] == 0.0
    assert (report / "accuracy_by_kind.png").is_file() and (report / "naive" / "summary.md").is_file()


@pytest.mark.slow
def test_judge_with_the_bundled_model():
    from rag.eval.judge import Judge
    from rag.config import Settings
    from rag.models.chat import make_chat_model

    judge = Judge(make_chat_model(Settings(llm="local")))
    passage = "市政府行政复议局全年新收行政复议案件1274件,同比增长204%。全市累计创建“枫桥式”司法所38个。"
    assert judge.judge_claim("太原市新收行政复议案件1274件", [passage]) is True
    assert judge.judge_claim("太原市新收行政复议案件9999件", [passage]) is False
