"""``rag doctor``: what works on this machine, and the command that fixes what does not.

Each check is one row: CPU features, the llama.cpp build's flags, the model file and its
SHA-256, a one-token generation in the model process, the embedding model, the index, the
browser for tests. A failed check that the settings ask for (the bundled model when
``RAG_LLM=local``, the embeddings and index always) makes the exit status 1; the others are
reported as warnings.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal

from rag.config import Settings

Status = Literal["ok", "FAIL", "warn", "skip"]


@dataclass
class Check:
    """One row of the report."""

    name: str
    status: Status
    detail: str
    fix: str = ""


class Doctor:
    """Runs the checks the settings call for.

    Args:
        settings: which LLM, embeddings and index the user asked for.
        generate: also start the model process and generate one token (the slow check).
    """

    def __init__(self, settings: Settings, *, generate: bool = True):
        self.settings = settings
        self.generate = generate
        self.wants_local = settings.llm == "local"

    def run(self) -> list[Check]:
        checks: list[Check] = []
        for step in (self._cpu, self._build, self._model_file, self._generation, self._embeddings,
                     self._index, self._browser):
            try:
                checks.append(step(checks))
            except Exception as exc:  # a check that breaks is a failed check, not a traceback
                checks.append(Check(step.__name__.strip("_"), "FAIL", f"{type(exc).__name__}: {exc}"))
        return checks

    def _required(self, ok: bool, name: str, detail: str, fix: str, needed: bool) -> Check:
        if ok:
            return Check(name, "ok", detail)
        return Check(name, "FAIL" if needed else "warn", detail, fix)

    # --- the bundled model -------------------------------------------------------------------

    def _cpu(self, done: list[Check]) -> Check:
        from rag.models.build import cpu_can_run_build, cpu_flags

        flags = cpu_flags()
        shown = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "amx_tile", "amx_int8", "amx_bf16")
                 if f in flags]
        ok, why = cpu_can_run_build(flags)
        detail = f"{' '.join(shown) or 'flags unknown'}" + ("" if ok else f" -- {why}")
        return self._required(ok, "cpu", detail, "use RAG_LLM=openai (a hosted model) or RAG_LLM=none",
                              self.wants_local)

    def _build(self, done: list[Check]) -> Check:
        from rag.models.build import FIX_BUILD, BuildProbeError, probe_build

        try:
            info = probe_build()
        except BuildProbeError as exc:
            return self._required(False, "llama.cpp build", str(exc), FIX_BUILD, self.wants_local)
        problems = info.problems()
        detail = " ".join(info.enabled) + (f" -- {'; '.join(problems)}" if problems else " (explicit flags, no AMX)")
        return self._required(not problems, "llama.cpp build", detail, FIX_BUILD, self.wants_local)

    def _model_file(self, done: list[Check]) -> Check:
        import os

        from rag.models.bundled import SHA256, model_path

        path = model_path()
        if not path.is_file():
            return self._required(False, "model file", f"{path} is missing", "make model", self.wants_local)
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        sha = digest.hexdigest()
        own = bool(os.environ.get("RAG_LOCAL_MODEL"))
        ok = own or sha == SHA256
        detail = f"{path} ({path.stat().st_size / 1e9:.2f} GB) sha256 {sha}" + \
            (" (RAG_LOCAL_MODEL: not the bundled model, not hash-checked)" if own else
             "" if ok else f" -- expected {SHA256}")
        return self._required(ok, "model file", detail, f"rm {path} && make model", self.wants_local)

    def _generation(self, done: list[Check]) -> Check:
        if not self.generate:
            return Check("model process", "skip", "skipped (--quick)")
        if not all(c.status == "ok" for c in done[:3]):  # cpu, build, model file
            return Check("model process", "skip" if not self.wants_local else "FAIL",
                         "not tried: a check above failed", "fix the checks above first")
        from rag.models.bundled import model_path
        from rag.models.chat import openai_chat
        from rag.models.server import MODEL_ALIAS, ModelServer, ServerConfig

        server = ModelServer(ServerConfig.from_env(model_path()))
        started = time.perf_counter()
        try:
            url = server.ensure()
            loaded = time.perf_counter() - started
            chat = openai_chat(url, MODEL_ALIAS, None, timeout=60)
            asked = time.perf_counter()
            reply = chat.invoke([("user", "只回答一个字：好")], max_tokens=1)
            took = time.perf_counter() - asked
            detail = (f"one token ({reply.content!r}) from `python -m llama_cpp.server` on {url}: "
                      f"loaded in {loaded:.1f} s, the token in {took:.1f} s "
                      f"({server.config.threads} threads, n_ctx {server.config.ctx})")
            return Check("model process", "ok", detail)
        except Exception as exc:
            return self._required(False, "model process", f"{type(exc).__name__}: {str(exc)[:600]}",
                                  f"see the log {server.log_file}", self.wants_local)
        finally:
            server.stop()

    # --- the rest of the pipeline --------------------------------------------------------------

    def _embeddings(self, done: list[Check]) -> Check:
        from rag.index.embeddings import make_embeddings

        started = time.perf_counter()
        model = make_embeddings(self.settings.embeddings, self.settings.llm_base_url, self.settings.llm_api_key)
        vector = model.embed_query("太原市2024年新收行政复议案件多少件？")
        return Check("embeddings", "ok", f"{self.settings.embeddings}: {len(vector)} dimensions, "
                                         f"{(time.perf_counter() - started) * 1000:.0f} ms for one query")

    def _index(self, done: list[Check]) -> Check:
        from rag.index.store import ReportIndex

        where = self.settings.chroma_url or self.settings.index_dir
        try:
            reports = ReportIndex(self.settings, None).reports()
        except Exception as exc:
            fix = (f"start the server: chroma run --path DIR --host 127.0.0.1 --port PORT ({where})"
                   if self.settings.chroma_url else "rag ingest data/reports")
            return Check("index", "FAIL", f"{where}: {type(exc).__name__}: {str(exc)[:300]}", fix)
        kind = "Chroma server" if self.settings.chroma_url else "embedded Chroma"
        if not reports:
            return Check("index", "warn", f"{kind} at {where} holds no reports", "rag ingest data/reports")
        return Check("index", "ok", f"{kind} at {where}: {len(reports)} reports, "
                                    f"{sum(r.chunks for r in reports)} chunks")

    def _browser(self, done: list[Check]) -> Check:
        chromium = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
        try:
            import playwright  # noqa: F401
            has_playwright = True
        except ImportError:
            has_playwright = False
        ok = bool(chromium) and has_playwright
        detail = f"chromium {'at ' + chromium if chromium else 'missing'}, playwright " \
                 f"{'installed' if has_playwright else 'missing'} (for the browser test only)"
        return Check("browser (tests)", "ok" if ok else "warn", detail, "" if ok else "make browser (as root)")


def format_table(checks: list[Check]) -> str:
    """The checks as an aligned table, then the fixes."""
    width = max(len(c.name) for c in checks)
    lines = [f"{'check':<{width}}  status  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{c.name:<{width}}  {c.status:<6}  {c.detail}" for c in checks]
    fixes = [c for c in checks if c.fix and c.status in ("FAIL", "warn")]
    if fixes:
        lines.append("")
        lines += [f"fix {c.name}: {c.fix}" for c in fixes]
    return "\n".join(lines)


def run_doctor(settings: Settings, *, as_json: bool = False, generate: bool = True,
               echo: Callable[[str], None] = print) -> int:
    """Print the report; 1 when a check the settings need failed, else 0."""
    checks = Doctor(settings, generate=generate).run()
    if as_json:
        echo(json.dumps([asdict(c) for c in checks], ensure_ascii=False, indent=2))
    else:
        echo(format_table(checks))
    return 1 if any(c.status == "FAIL" for c in checks) else 0
