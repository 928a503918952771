"""The code's structure where a user feels it: commands import only what they use."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def _imported_by(*args: str, env: dict) -> set[str]:
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "rag.cli", *args], capture_output=True,
                         text=True, cwd=ROOT, timeout=120, env={**os.environ, **env})
    assert run.returncode == 0, run.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}


def test_rag_list_does_not_import_the_answer_stack_or_the_eval_harness(tmp_path):
    modules = _imported_by("list", "--json", env={"RAG_INDEX_DIR": str(tmp_path / "index")})
    assert "rag.index" in modules  # it did list the index
    heavy = {"rag.answer", "rag.extractive", "rag.compare", "eval.harness", "eval.naive", "langchain_openai",
             "rag.model_server", "app", "gradio"}
    assert not heavy & modules, sorted(heavy & modules)
