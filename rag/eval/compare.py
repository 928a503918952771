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

from rag.eval.harness import load_results, load_run, metrics, questions_from_results
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
    reworded: list[str] = field(default_factory=list)  # same verdict, different answer/citations/contexts
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    setup_changes: list[str] = field(default_factory=list)  # settings, thresholds, lexicon files

    @property
    def changed(self) -> int:
        return len(self.fixed) + len(self.broken)


def _what_was_said(row: dict) -> tuple:
    """An answer as a reader sees it: its text, the passages it cites and those it was given
    (by report and text: a re-ingest renames chunks without changing them)."""
    cited = tuple((c.get("doc_id"), c.get("text")) for c in row.get("citations") or [])
    given = tuple((c.get("doc_id"), c.get("text")) for c in row.get("contexts") or [])
    return (row.get("answer") or "").strip(), cited, given


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
        elif _what_was_said(a) != _what_was_said(b):
            result.reworded.append(qid)
    result.only_a = [qid for qid in by_a if qid not in by_b]
    return result


def compare_paths(a: str | Path, b: str | Path) -> Comparison:
    """Compare two results files or report folders.

    Raises:
        QuestionSetError: a path holds no readable results.
    """
    result = compare_results(load_results(a), load_results(b), str(a), str(b))
    result.setup_changes = setup_differences(load_run(a), load_run(b))
    return result


def setup_differences(run_a: dict | None, run_b: dict | None) -> list[str]:
    """What differs between two runs besides the code: settings, thresholds, lexicon files."""
    if not run_a or not run_b:
        missing = " and ".join(name for name, run in (("A", run_a), ("B", run_b)) if not run)
        return [f"{missing}: no record of the settings and lexicons (a run from before they were recorded)"]
    out = []
    for key in sorted(set(run_a.get("settings", {})) | set(run_b.get("settings", {}))):
        before, after = run_a.get("settings", {}).get(key), run_b.get("settings", {}).get(key)
        if before != after:
            out.append(f"setting {key}: {before} -> {after}")
    lex_a, lex_b = run_a.get("lexicons") or {}, run_b.get("lexicons") or {}
    th_a, th_b = lex_a.get("thresholds", {}), lex_b.get("thresholds", {})
    for section in sorted(set(th_a) | set(th_b)):
        for name in sorted(set(th_a.get(section, {})) | set(th_b.get(section, {}))):
            before, after = th_a.get(section, {}).get(name), th_b.get(section, {}).get(name)
            if before != after:
                out.append(f"threshold [{section}] {name}: {before} -> {after}")
    files_a, files_b = lex_a.get("files", {}), lex_b.get("files", {})
    for name in sorted(set(files_a) | set(files_b)):
        before, after = files_a.get(name, {}), files_b.get(name, {})
        if before.get("sha256") != after.get("sha256"):
            sizes = f" ({before.get('entries')} -> {after.get('entries')} entries)" if "entries" in before else ""
            out.append(f"lexicon {name}: {before.get('sha256')} -> {after.get('sha256')}{sizes}")
    return out


def format_comparison(c: Comparison) -> str:
    """The comparison as plain text for the terminal."""
    lines = [f"A: {c.a_label}", f"B: {c.b_label}", ""]
    if c.setup_changes:
        lines.append("settings and lexicons that differ:")
        lines += [f"  ~ {change}" for change in c.setup_changes]
    else:
        lines.append("settings and lexicons: the same")
    lines.append("")
    lines.append(f"fixed in B ({len(c.fixed)}):")
    lines += [f"  + {r['id']:<10} {r.get('question', '')}" for r in c.fixed] or ["  (none)"]
    lines.append(f"broken in B ({len(c.broken)}):")
    lines += [f"  - {r['id']:<10} {r.get('question', '')} — {r.get('failure') or 'wrong'}" for r in c.broken] or ["  (none)"]
    if c.reworded:
        lines.append(f"answer, citations or contexts changed, verdict unchanged ({len(c.reworded)}): "
                     f"{', '.join(c.reworded)}")
    if c.only_a:
        lines.append(f"only in A ({len(c.only_a)}): {', '.join(c.only_a)}")
    if c.only_b:
        lines.append(f"only in B ({len(c.only_b)}): {', '.join(c.only_b)}")
    lines += ["", "metrics (B − A: percentage points; latency in ms):",
              side_by_side({"B": c.metrics_b, "A": c.metrics_a})]
    return "\n".join(lines)
