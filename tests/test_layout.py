"""The code's structure: the layers of the pipeline hold, and commands import only what they use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def _imported_by(*args: str, env: dict) -> set[str]:
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "rag.cli", *args], capture_output=True,
                         text=True, cwd=ROOT, timeout=120, env={**os.environ, **env})
    assert run.returncode == 0, run.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}


def test_rag_list_does_not_import_the_answer_stack_or_the_eval_harness(tmp_path):
    modules = _imported_by("list", "--json", env={"RAG_INDEX_DIR": str(tmp_path / "index")})
    assert "rag.index.store" in modules  # it did list the index
    heavy = {"rag.answer.answerer", "rag.answer.extractive", "rag.answer.compare", "rag.eval.harness",
             "rag.eval.naive", "rag.models.server", "rag.web.app", "langchain_openai", "gradio"}
    assert not heavy & modules, sorted(heavy & modules)


def test_imports_only_go_down_the_pipelines_layers():
    # the layers contract in pyproject.toml, checked by import-linter over every import (also the
    # ones inside functions)
    run = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0 and "1 kept, 0 broken" in run.stdout, run.stdout[-3000:]


def test_every_package_of_rag_is_in_a_layer():
    import tomllib

    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    layered = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    packages = {f"rag.{p.parent.name}" for p in (ROOT / "rag").glob("*/__init__.py")}
    modules = {f"rag.{p.stem}" for p in (ROOT / "rag").glob("*.py") if p.stem != "__init__"}
    assert packages | modules == layered, (packages | modules) ^ layered
