"""``rag eval compare A B``: what changed between two evaluation runs.

A and B are results files (``rag eval --out``) or report folders (``rag eval --report``). Questions
are matched by id. Listed: the questions B gets right that A got wrong (fixed), those B gets
wrong that A got right (broken, with B's reason), answers that changed without changing the
verdict (counted), ids only one run has; then the metric deltas (B minus A), computed from the
results themselves so both sides are measured the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rag.eval.harness import load_results, metrics, questions_from_results
from rag.eval.report import side_by_side


@dataclass
class Comparison:
    """Two runs, question by question, and their metrics."""

    a_label: str
    b_label: str
    metrics_a: dict
    metrics_b: dict
    fixed: list[dict] = field(default_factory=list)  # B's rows that A got wrong and B right
    broken: list[dict] = field(default_factory=list)  # B's rows that A got right and B wrong
    reworded: list[str] = field(default_factory=list)  # same verdict, different answer
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.fixed) + len(self.broken)


def compare_results(rows_a: list[dict], rows_b: list[dict], a_label: str = "A", b_label: str = "B") -> Comparison:
    """Compare two lists of scored results (as ``rag eval --out`` writes them)."""
    by_a = {str(r["id"]): r for r in rows_a}
    by_b = {str(r["id"]): r for r in rows_b}
    result = Comparison(a_label, b_label, metrics(questions_from_results(rows_a), rows_a),
                        metrics(questions_from_results(rows_b), rows_b))
    for qid, b in by_b.items():
        a = by_a.get(qid)
        if a is None:
            result.only_b.append(qid)
        elif bool(a["correct"]) != bool(b["correct"]):
            (result.fixed if b["correct"] else result.broken).append(b)
        elif (a.get("answer") or "").strip() != (b.get("answer") or "").strip():
            result.reworded.append(qid)
    result.only_a = [qid for qid in by_a if qid not in by_b]
    return result


def compare_paths(a: str | Path, b: str | Path) -> Comparison:
    """Compare two results files or report folders.

    Raises:
        QuestionSetError: a path holds no readable results.
    """
    return compare_results(load_results(a), load_results(b), str(a), str(b))


def format_comparison(c: Comparison) -> str:
    """The comparison as plain text for the terminal."""
    lines = [f"A: {c.a_label}", f"B: {c.b_label}", ""]
    lines.append(f"fixed in B ({len(c.fixed)}):")
    lines += [f"  + {r['id']:<10} {r.get('question', '')}" for r in c.fixed] or ["  (none)"]
    lines.append(f"broken in B ({len(c.broken)}):")
    lines += [f"  - {r['id']:<10} {r.get('question', '')} — {r.get('failure') or 'wrong'}" for r in c.broken] or ["  (none)"]
    if c.reworded:
        lines.append(f"answer changed, verdict unchanged ({len(c.reworded)}): {', '.join(c.reworded)}")
    if c.only_a:
        lines.append(f"only in A ({len(c.only_a)}): {', '.join(c.only_a)}")
    if c.only_b:
        lines.append(f"only in B ({len(c.only_b)}): {', '.join(c.only_b)}")
    lines += ["", "metrics (B − A: percentage points; latency in ms):",
              side_by_side({"B": c.metrics_b, "A": c.metrics_a})]
    return "\n".join(lines)
