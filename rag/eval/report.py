"""Evaluation reports: the files ``rag eval --report DIR`` writes, and side-by-side tables.

One pipeline: ``results.jsonl``, ``metrics.json``, ``summary.md`` (metrics, then every failure
with its reason), ``accuracy_by_kind.png`` and ``recall_at_k.png``. Several pipelines
(``--pipeline both``): one such folder per pipeline (``project/``, ``naive/``) and, at the top,
``metrics.json`` keyed by pipeline, a ``summary.md`` with the side-by-side table, and the two
charts with one series per pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

from rag.eval.harness import RECALL_AT, Question, flat_metrics, format_metrics, write_results

ACCURACY_CHART = "accuracy_by_kind.png"
RECALL_CHART = "recall_at_k.png"
_COUNTS = ("latency p50 ms", "latency p95 ms")  # plain numbers, not shares


def _cell(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if name in _COUNTS else f"{100 * value:.1f}%"


def _delta(name: str, a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    if name in _COUNTS:
        return f"{a - b:+.0f}"
    return f"{100 * (a - b):+.1f}"


def side_by_side(columns: dict[str, dict], markdown: bool = False) -> str:
    """A table of the metrics of several runs, one column each; with two runs, the difference
    (first minus second; percentage points for shares, milliseconds for latency).

    Args:
        columns: run name -> metrics (as ``rag.eval.harness.metrics`` returns them), in column order.
        markdown: a Markdown table instead of aligned plain text.
    """
    names = list(columns)
    flats = {name: flat_metrics(m) for name, m in columns.items()}
    rows = list(dict.fromkeys(key for flat in flats.values() for key in flat))
    header = ["metric"] + [f"{name} (n={columns[name].get('n', 0)})" for name in names]
    if len(names) == 2:
        header.append(f"{names[0]} − {names[1]}")
    table = [header]
    for key in rows:
        line = [key] + [_cell(key, flats[name].get(key)) for name in names]
        if len(names) == 2:
            line.append(_delta(key, flats[names[0]].get(key), flats[names[1]].get(key)))
        table.append(line)
    if markdown:
        out = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
        out += ["| " + " | ".join(line) + " |" for line in table[1:]]
        return "\n".join(out)
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
                     for line in table)


def write_charts(columns: dict[str, dict], directory: str | Path, note: str = "") -> list[Path]:
    """``accuracy_by_kind.png`` (bars per kind and overall) and ``recall_at_k.png`` (evidence
    recall against k), one series per run. Labels are English: no CJK font is needed.

    Args:
        note: added to the titles (e.g. the answer mode).
    """
    suffix = f" ({note})" if note else ""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = list(columns)
    kinds = list(dict.fromkeys(k for m in columns.values() for k in m.get("by_kind", {}))) + ["all"]
    width = 0.8 / max(len(names), 1)

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=120)
    for i, name in enumerate(names):
        m = columns[name]
        values = [(m["by_kind"].get(k, {}).get("accuracy") if k != "all" else m.get("accuracy")) for k in kinds]
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(kinds))]
        bars = ax.bar(xs, [100 * (v or 0) for v in values], width, label=name)
        for bar, v in zip(bars, values):
            ax.annotate("-" if v is None else f"{100 * v:.0f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7, xytext=(0, 1), textcoords="offset points")
    ax.set_xticks(range(len(kinds)), [f"{k}\n(n={_kind_n(columns, k)})" for k in kinds])
    ax.set_ylim(0, 122)  # room above the 100% bars for the legend
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Accuracy by question kind{suffix}")
    ax.legend(loc="upper center", ncol=max(len(names), 1), fontsize=8, frameon=False)
    fig.tight_layout()
    accuracy = directory / ACCURACY_CHART
    fig.savefig(accuracy)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=120)
    for name in names:
        recall = columns[name].get("evidence_recall", {})
        ks = [k for k in RECALL_AT if recall.get(f"@{k}") is not None]
        ax.plot(ks, [100 * recall[f"@{k}"] for k in ks], marker="o", label=name)
    ax.set_xticks(list(RECALL_AT))
    ax.set_ylim(0, 105)
    ax.set_xlabel("k (passages retrieved)")
    ax.set_ylabel("evidence recall@k (%)")
    ax.set_title(f"Evidence recall@k{suffix}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    recall_path = directory / RECALL_CHART
    fig.savefig(recall_path)
    plt.close(fig)
    return [accuracy, recall_path]


def _kind_n(columns: dict[str, dict], kind: str) -> int:
    first = next(iter(columns.values()))
    return first.get("n", 0) if kind == "all" else first.get("by_kind", {}).get(kind, {}).get("n", 0)


def write_report(questions: list[Question], results: list[dict], m: dict, directory: str | Path,
                 run: dict | None = None, name: str = "project") -> Path:
    """One run's report in ``directory``: results, metrics, summary with failures, charts.

    Args:
        run: what was run (question file, mode, pipeline, command, date), stored in ``metrics.json``
            under ``"run"`` and shown at the top of the summary.
        name: the run's name in the charts' legend.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_results(results, directory / "results.jsonl")
    stored = {**m, "run": run} if run else m
    (directory / "metrics.json").write_text(json.dumps(stored, ensure_ascii=False, indent=2), encoding="utf-8")
    failures = [r for r in results if not r["correct"]]
    lines = ["# Evaluation", ""] + _run_lines(run) + ["```", format_metrics(m), "```", "",
                                                      f"## Failures ({len(failures)})", ""]
    for r in failures:
        lines.append(f"- `{r['id']}` ({r['kind']}) {r['question']} — {r['failure']}")
    if m.get("judge"):
        lines += ["", "## LLM judge (separate from the exact-match metrics)", "", "```", format_judge(m["judge"]), "```"]
    (directory / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_charts({name: m}, directory, note=_mode_note(run))
    return directory


def write_comparison_report(runs: dict[str, tuple[list[Question], list[dict], dict]], directory: str | Path,
                            run: dict | None = None) -> Path:
    """Several pipelines' reports: one folder each, plus the side-by-side summary and charts.

    Args:
        runs: pipeline name -> (questions, scored results, metrics), in column order.
    """
    directory = Path(directory)
    for name, (questions, results, m) in runs.items():
        write_report(questions, results, m, directory / name, run={**(run or {}), "pipeline": name}, name=name)
    columns = {name: m for name, (_, _, m) in runs.items()}
    stored = {**columns, "run": run} if run else columns
    (directory / "metrics.json").write_text(json.dumps(stored, ensure_ascii=False, indent=2), encoding="utf-8")
    lines = ["# Evaluation: " + " vs ".join(runs), ""] + _run_lines(run) + [side_by_side(columns, markdown=True), ""]
    lines += [f"Per-pipeline results and failures: " + ", ".join(f"[{n}/summary.md]({n}/summary.md)" for n in runs), ""]
    lines += [f"![accuracy by kind]({ACCURACY_CHART})", "", f"![evidence recall@k]({RECALL_CHART})", ""]
    (directory / "summary.md").write_text("\n".join(lines), encoding="utf-8")
    write_charts(columns, directory, note=_mode_note(run))
    return directory


def _mode_note(run: dict | None) -> str:
    return f"{run['mode']} mode" if run and run.get("mode") else ""


def _run_lines(run: dict | None) -> list[str]:
    if not run:
        return []
    shown = [f"- {key}: `{value}`" for key, value in run.items() if value not in (None, "")]
    return shown + [""] if shown else []


def format_judge(judge: dict) -> str:
    """The LLM judge's figures in plain text."""
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    return (f"judged answers: {judge.get('answers', 0)}   claims: {judge.get('claims', 0)}\n"
            f"faithfulness (claims supported by their cited passages): {pct(judge.get('faithfulness'))}\n"
            f"answers with every claim supported: {pct(judge.get('fully_supported'))}\n"
            f"unreadable verdicts: {judge.get('unreadable', 0)}   judge errors: {judge.get('errors', 0)}")
