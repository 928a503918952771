"""`make bench`: answering speed on this machine, printed as a table and written to bench/results.json.

Measures, over the bundled corpus and the project's question set:
- retrieval + extractive answer: p50/p95 over every question, next to embedding the query alone;
- the bundled LLM: time to first token and total for fact questions (the first N, default 12).

The full benchmark (ingest, scale to 2,000 reports) is the performance issue's; this is its
answering part. Timings are measured, never asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm-questions", type=int, default=12)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()

    from eval.harness import load_questions, percentile
    from rag.answer import Answerer
    from rag.config import Settings

    questions = load_questions(ROOT / "eval" / "questions" / "project.jsonl")
    answerer = Answerer.from_settings(Settings.load(llm="local"))
    embed = answerer.retriever.index.embeddings
    answerer.run(questions[0].question, mode="extractive")  # warm caches (BM25 snapshot, jieba)

    floor, extractive = [], []
    for q in questions:
        t = time.perf_counter()
        embed.embed_query(q.question)
        floor.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        answerer.run(q.question, mode="extractive")
        extractive.append((time.perf_counter() - t) * 1000)
    results = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "extractive_ms": {"p50": percentile(extractive, 0.5), "p95": percentile(extractive, 0.95), "n": len(extractive)},
        "query_embedding_ms": {"p50": percentile(floor, 0.5), "p95": percentile(floor, 0.95)},
    }

    if answerer.chat_model is not None:
        facts = [q for q in questions if q.kind == "fact"][: args.llm_questions]
        answerer.run(facts[0].question, mode="llm")  # load the model, evaluate the system prompt once
        first_tokens, totals, tokens = [], [], []
        for q in facts:
            t = time.perf_counter()
            first = None
            pieces = 0
            for event in answerer.stream(q.question, mode="llm"):
                if isinstance(event, str):
                    pieces += 1
                    first = first if first is not None else time.perf_counter() - t
            totals.append(time.perf_counter() - t)
            first_tokens.append(first if first is not None else totals[-1])
            tokens.append(pieces)
        results["llm"] = {
            "model": "bundled Qwen2.5-Coder-1.5B-Instruct Q4_K_M (llama.cpp)",
            "questions": len(facts),
            "first_token_s": {"p50": round(statistics.median(first_tokens), 2), "max": round(max(first_tokens), 2)},
            "total_s": {"p50": round(statistics.median(totals), 2), "max": round(max(totals), 2)},
            "pieces_per_s": round(sum(tokens) / max(sum(t - f for t, f in zip(totals, first_tokens)), 1e-9), 1),
        }
    else:
        results["llm"] = {"skipped": answerer.unavailable_reason}

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"machine: {results['machine']}")
    print(f"{'measure':<42}{'p50':>10}{'p95/max':>10}")
    print(f"{'query embedding alone (ms)':<42}{results['query_embedding_ms']['p50']:>10}{results['query_embedding_ms']['p95']:>10}")
    print(f"{'retrieval + extractive answer (ms)':<42}{results['extractive_ms']['p50']:>10}{results['extractive_ms']['p95']:>10}")
    if "first_token_s" in results["llm"]:
        llm = results["llm"]
        print(f"{'bundled LLM: time to first token (s)':<42}{llm['first_token_s']['p50']:>10}{llm['first_token_s']['max']:>10}")
        print(f"{'bundled LLM: full answer (s)':<42}{llm['total_s']['p50']:>10}{llm['total_s']['max']:>10}")
        print(f"{'bundled LLM: streamed pieces/s':<42}{llm['pieces_per_s']:>10}")
    else:
        print(f"bundled LLM: skipped ({results['llm']['skipped']})")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
