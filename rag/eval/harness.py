"""The evaluation harness behind ``rag eval``: run a question set, score it, summarise.

A question set is JSONL in CONTRACT.md's format; unknown fields are ignored, optional ones
may be missing, and a bare value where a list is expected is a list of one. Each result line is
the answerer's result object plus the scoring fields (``correct``, ``evidence_recall@k``,
``citation_recall``, ``citation_precision``, figure counts, ``failure``). Metrics: accuracy
overall and by kind, evidence recall@k over the retrieved contexts, citation recall and
precision, refusal precision and recall, grounded figures (computed ones included and
counted), latency percentiles. Reports are written by ``rag.eval.report``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from itertools import permutations
from pathlib import Path
from typing import Callable, Iterable

from rag.eval.matching import contains, matches_all_groups
from rag.answer.grounding import answer_figures
from rag.text.arithmetic import FRACTION_WORDS
from rag.text.figures import Figure, same_value, stated_figures

KINDS = ("fact", "compare", "list", "unanswerable")
RECALL_AT = (1, 3, 5, 8)


class QuestionSetError(ValueError):
    """A question file cannot be read; the message names the file and line."""


@dataclass
class Question:
    id: str
    question: str
    kind: str = "fact"
    answerable: bool = True
    must_include: list[list[str]] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    category: str = ""  # what an analyst asks (analyst set: lookup, paraphrase, arithmetic, ...); optional


def load_questions(path: str | Path) -> list[Question]:
    """Read a JSONL question set.

    Raises:
        QuestionSetError: a line is not JSON, or lacks ``question``.
    """
    path = Path(path)
    if not path.is_file():
        raise QuestionSetError(f"{path}: no such question file")
    questions, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionSetError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not str(row.get("question", "")).strip():
            raise QuestionSetError(f"{path}:{number}: each line needs a non-empty \"question\"")
        qid = str(row.get("id") or f"{path.stem}-{number}")
        if qid in seen:
            raise QuestionSetError(f"{path}:{number}: duplicate id {qid!r}")
        seen.add(qid)
        try:
            questions.append(question_from_row(row, qid))
        except ValueError as exc:
            raise QuestionSetError(f"{path}:{number}: {exc}") from exc
    return questions


def question_from_row(row: dict, qid: str) -> Question:
    """One question set line (a dict with a non-empty ``question``) as a ``Question``.

    Args:
        row: the parsed line; unknown fields are ignored, a bare value is a list of one.
        qid: its id (the line's own, or one made from the file and line number).

    Raises:
        ValueError: ``years`` holds something that is not a year.
    """
    kind = str(row.get("kind") or ("fact" if row.get("answerable", True) else "unanswerable"))
    answerable = _flag(row.get("answerable", kind != "unanswerable"))
    groups = [g if isinstance(g, list) else [g] for g in _as_list(row.get("must_include"))]
    try:
        years = [int(y) for y in _as_list(row.get("years"))]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"\"years\" must hold years like 2024 ({exc})") from exc
    return Question(id=qid, question=str(row["question"]), kind=kind, answerable=answerable,
                    must_include=[[str(a) for a in g if str(a).strip()] for g in groups if g],
                    evidence=[str(e) for e in _as_list(row.get("evidence")) if str(e).strip()],
                    regions=[str(r) for r in _as_list(row.get("regions"))],
                    years=years, category=str(row.get("category") or ""))


def has_expected(question: Question) -> bool:
    """Whether a question says what a right answer is (``must_include``, or unanswerable)."""
    return bool(question.must_include) or not question.answerable


def _as_list(value) -> list:
    # Hand-written sets say "regions": "太原市" as often as ["太原市"]; a bare value is a list of one.
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _flag(value) -> bool:
    if isinstance(value, str):  # "false" in a hand-edited file means false
        return value.strip().lower() not in ("false", "no", "0", "")
    return bool(value)


def score(question: Question, result: dict) -> dict:
    """The scoring fields of one result: correctness, evidence recall@k, citation recall, reason."""
    contexts = [c.get("text", "") for c in result.get("contexts", [])]
    cited = [c.get("text", "") for c in result.get("citations", [])]
    refused = bool(result.get("refused"))
    failure = None
    if question.answerable:
        ok, missed = matches_all_groups(result.get("answer", ""), question.must_include)
        correct = ok and not refused
        if refused:
            failure = "refused an answerable question"
        elif not ok:
            failure = f"answer lacks {missed}"
    else:
        correct = refused
        failure = None if refused else "answered an unanswerable question"
    scored = {"correct": correct, "failure": failure}
    if not refused:
        sources = [f for text in cited for f in stated_figures(text)]
        # A figure the question itself states (a threshold, a wrong premise the answer corrects)
        # is quoted, not claimed.
        asked = stated_figures(question.question) + [
            Figure(metric="", value=value, unit="%", text=word) for word, value in FRACTION_WORDS.items()
            if word in question.question]  # 超过一半 is 50%
        stated = [f for f in answer_figures(result.get("answer", ""))
                  if same_value(f, sources) or not same_value(f, asked)]
        if stated:
            held = [f for f in stated if same_value(f, sources)]
            scored["figures"] = len(stated)
            scored["grounded_figures"] = len(held)
            results = formula_results(result.get("answer", ""), held)
            computed = sum(is_computed(f, held) or same_value(f, results) for f in stated if not same_value(f, sources))
            if computed:
                scored["computed_figures"] = computed
    if question.evidence:
        for k in RECALL_AT:
            found = sum(any(contains(c, e) for c in contexts[:k]) for e in question.evidence)
            scored[f"evidence_recall@{k}"] = found / len(question.evidence)
        found = sum(any(contains(c, e) for c in cited) for e in question.evidence)
        scored["citation_recall"] = found / len(question.evidence)
        if cited:
            holding = sum(any(contains(c, e) for e in question.evidence) for c in cited)
            scored["citation_precision"] = holding / len(cited)
    return scored


_FORMULA = re.compile(r"^(?:计算|Computed)[：:]\s*(?P<lhs>[^=；;]+?)\s*=\s*(?P<rhs>[^；;，,\n]+)", re.MULTILINE)


def formula_results(answer: str, held: list[Figure]) -> list[Figure]:
    """The results of the answer's formula lines (``计算：2件[1] + 38件[1] + 6件[1] = 46件``) that
    follow from their operands, when every operand is a grounded figure."""
    out = []
    for m in _FORMULA.finditer(answer):
        operands = stated_figures(m["lhs"])
        ops = re.findall(r"[+−\-÷×/*]", re.sub(r"\[\d+\]", "", m["lhs"]))
        results = stated_figures(m["rhs"])
        if not operands or not results or len(ops) != len(operands) - 1:
            continue
        if not all(same_value(o, held) for o in operands):
            continue
        value = operands[0].value
        for op, operand in zip(ops, operands[1:]):
            if op == "+":
                value += operand.value
            elif op in "−-":
                value -= operand.value
            elif op in "÷/":
                value = value / operand.value if operand.value else float("nan")
            else:
                value *= operand.value
        result = results[0]
        if result.percent and not any(o.percent for o in operands):
            value *= 100
        if abs(value - result.value) <= 0.5 * 10 ** -_decimals(result) + 1e-9:
            out.append(result)
    return out


def _decimals(figure: Figure) -> int:
    number = re.sub(r"[^\d.]", "", figure.text.replace(",", ""))
    return len(number.split(".")[1]) if "." in number else 0


def is_computed(figure: Figure, bases: list[Figure]) -> bool:
    """Whether ``figure`` is a sum, difference, ratio or percentage change of two ``bases``, or
    a count inferred from a count and a rate (the answer's grounded figures), to the precision it
    is written with.

    Comparison answers state "多14280件，约为其16.14倍" (15223 − 943, 15223 / 943): such a figure is
    in no passage, but it is computed from figures that are.
    """
    scale = 1e4 if "万" in figure.text else 1e8 if "亿" in figure.text else 1.0
    tolerance = 0.5 * 10 ** -_decimals(figure) * scale + 1e-9
    for a, b in permutations(bases, 2):
        if a.percent != b.percent:
            if not a.percent and not figure.percent and b.value:
                # An inference: the year before from a count and its growth (1274 ÷ (1 + 204%)), a
                # whole from a part and its share, a target from a completion rate (÷ 30.2%).
                r = b.value / 100
                candidates = [a.value / r] + [a.value / (1 + s * r) for s in (1, -1) if 1 + s * r > 0]
                if any(abs(c - figure.value) <= max(tolerance, 0.5) for c in candidates):
                    return True
            continue
        if a.percent:  # percentage points between two shares
            candidates = [a.value - b.value]
        elif figure.percent:
            candidates = [a.value / b.value * 100, (a.value - b.value) / b.value * 100] if b.value else []
        else:
            candidates = [a.value + b.value, a.value - b.value] + ([a.value / b.value] if b.value else [])
        if any(abs(c - figure.value) <= tolerance for c in candidates):
            return True
    return False


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else None


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank percentile (``p`` in 0..1), rounded to 0.1; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))], 1)


def metrics(questions: list[Question], results: list[dict]) -> dict:
    """Aggregate metrics of scored results (same order as ``questions``)."""
    by_kind = {}
    for kind in sorted({q.kind for q in questions}, key=lambda k: (KINDS.index(k) if k in KINDS else 9, k)):
        rows = [r for q, r in zip(questions, results) if q.kind == kind]
        by_kind[kind] = {"n": len(rows), "accuracy": _mean(float(r["correct"]) for r in rows)}
    by_category = {}
    for category in sorted({q.category for q in questions if q.category}):
        rows = [r for q, r in zip(questions, results) if q.category == category]
        by_category[category] = {"n": len(rows), "accuracy": _mean(float(r["correct"]) for r in rows)}
    with_evidence = [r for r in results if "evidence_recall@1" in r]
    refused_right = sum(1 for q, r in zip(questions, results) if r.get("refused") and not q.answerable)
    refused_all = sum(1 for r in results if r.get("refused"))
    unanswerable = sum(1 for q in questions if not q.answerable)
    latencies = [float(r.get("latency_ms", 0.0)) for r in results]
    return {
        "n": len(results),
        "accuracy": _mean(float(r["correct"]) for r in results),
        "by_kind": by_kind,
        "by_category": by_category,
        "evidence_recall": {f"@{k}": _mean(r[f"evidence_recall@{k}"] for r in with_evidence) for k in RECALL_AT},
        "citation_recall": _mean(r["citation_recall"] for r in with_evidence if not r.get("refused")),
        "citation_precision": _mean(r["citation_precision"] for r in results if "citation_precision" in r),
        # Figures computed from cited ones (differences, ratios) count as grounded; how many is shown.
        "grounded_figure_rate": (round(sum(r.get("grounded_figures", 0) + r.get("computed_figures", 0)
                                           for r in results) / sum(r.get("figures", 0) for r in results), 4)
                                 if any(r.get("figures") for r in results) else None),
        "computed_figures": sum(r.get("computed_figures", 0) for r in results),
        "answered_by": {mode: sum(1 for r in results if r.get("mode") == mode)
                        for mode in sorted({r.get("mode") for r in results if r.get("mode")})},
        "refusal_precision": round(refused_right / refused_all, 4) if refused_all else None,
        "refusal_recall": round(refused_right / unanswerable, 4) if unanswerable else None,
        "latency_ms": {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95)},
    }


def run_questions(questions: list[Question], answer: Callable[[Question], dict],
                  progress: bool = True, desc: str = "eval") -> list[dict]:
    """Answer and score every question; ``answer`` returns a result dict for one question.

    Args:
        progress: show a progress bar (on stderr) labelled ``desc``.
    """
    from tqdm import tqdm

    results = []
    for question in tqdm(questions, desc=desc, unit="q", disable=not progress):
        try:
            result = answer(question)
        except Exception as exc:  # one broken question must not end the run
            result = {"id": question.id, "question": question.question, "answer": "", "refused": False,
                      "citations": [], "contexts": [], "error": f"{type(exc).__name__}: {exc}"}
        result = {**result, "id": question.id, "kind": question.kind, "answerable": question.answerable}
        if question.category:
            result["category"] = question.category
        result.update(score(question, result))
        if result.get("error"):
            result["failure"] = result["error"]
        results.append(result)
    return results


def format_metrics(m: dict) -> str:
    """A plain-text table of the metrics, for the terminal."""
    def pct(v):
        return "  -  " if v is None else f"{100 * v:5.1f}%"

    lines = [f"questions: {m['n']}   accuracy: {pct(m['accuracy'])}"]
    for kind, row in m["by_kind"].items():
        lines.append(f"  {kind:<13} n={row['n']:<4} accuracy {pct(row['accuracy'])}")
    for category, row in m.get("by_category", {}).items():
        lines.append(f"  [{category}]{' ' * max(1, 11 - len(category))}n={row['n']:<4} accuracy {pct(row['accuracy'])}")
    recall = "  ".join(f"{k} {pct(v)}" for k, v in m["evidence_recall"].items())
    lines.append(f"evidence recall  {recall}")
    lines.append(f"citation recall {pct(m['citation_recall'])}   citation precision {pct(m['citation_precision'])}")
    lines.append(f"refusal precision {pct(m['refusal_precision'])}   refusal recall {pct(m['refusal_recall'])}")
    answered = ", ".join(f"{mode} {n}" for mode, n in m.get("answered_by", {}).items())
    computed = f" ({m['computed_figures']} computed from cited ones)" if m.get("computed_figures") else ""
    lines.append(f"grounded figures {pct(m.get('grounded_figure_rate'))}{computed}   answered by: {answered or '-'}")
    lines.append(f"latency p50 {m['latency_ms']['p50']} ms   p95 {m['latency_ms']['p95']} ms")
    return "\n".join(lines)


def write_results(results: list[dict], path: str | Path) -> None:
    """One scored result per line, UTF-8 JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in results:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def run_path(results_path: str | Path) -> Path:
    """Where a results file's run description lives: ``results.jsonl`` -> ``results.run.json``."""
    path = Path(results_path)
    return path.with_name(f"{path.stem}.run.json")


def write_run(run: dict, results_path: str | Path) -> None:
    """The run's description (command, settings, lexicon fingerprints) beside its results file."""
    run_path(results_path).write_text(json.dumps(run, ensure_ascii=False, indent=2), encoding="utf-8")


def load_run(path: str | Path) -> dict | None:
    """The description of the run behind a results file or report folder (None for runs written
    before runs were described)."""
    path = Path(path)
    candidates = [path / "metrics.json", path / "project" / "metrics.json"] if path.is_dir() else [run_path(path)]
    for candidate in candidates:
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return data.get("run", data) if candidate.name == "metrics.json" else data
    return None


def load_results(path: str | Path) -> list[dict]:
    """Scored results from a ``results.jsonl`` (``rag eval --out``), or from a report folder holding one.

    A folder written by ``--pipeline both`` holds ``project/`` and ``naive/``: the project's results are read.

    Raises:
        QuestionSetError: no such file, a line is not JSON, or a row has no ``id``.
    """
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "results.jsonl", path / "project" / "results.jsonl"):
            if candidate.is_file():
                path = candidate
                break
        else:
            raise QuestionSetError(f"{path}: a folder without results.jsonl (expected a `rag eval --report` folder)")
    if not path.is_file():
        raise QuestionSetError(f"{path}: no such results file")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionSetError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or row.get("id") in (None, "") or "correct" not in row:
            raise QuestionSetError(f"{path}:{number}: each result needs an \"id\" and a \"correct\" field "
                                   "(write results with `rag eval --out`)")
        rows.append(row)
    return rows


def questions_from_results(rows: list[dict]) -> list[Question]:
    """The questions behind scored results (kind and answerable are copied into every result)."""
    questions = []
    for row in rows:
        kind = str(row.get("kind") or "fact")
        questions.append(Question(id=str(row["id"]), question=str(row.get("question", "")), kind=kind,
                                  answerable=_flag(row.get("answerable", kind != "unanswerable")),
                                  category=str(row.get("category") or "")))
    return questions


def flat_metrics(m: dict) -> dict[str, float | None]:
    """The metrics as one ordered row of named numbers (side-by-side tables, compare, deltas)."""
    row: dict[str, float | None] = {"accuracy": m.get("accuracy")}
    for kind, values in m.get("by_kind", {}).items():
        row[f"accuracy {kind}"] = values.get("accuracy")
    for category, values in m.get("by_category", {}).items():
        row[f"accuracy [{category}]"] = values.get("accuracy")
    for k, value in m.get("evidence_recall", {}).items():
        row[f"evidence recall{k}"] = value
    for name in ("citation_recall", "citation_precision", "refusal_precision", "refusal_recall",
                 "grounded_figure_rate"):
        row[name.replace("_", " ")] = m.get(name)
    latency = m.get("latency_ms", {})
    row["latency p50 ms"] = latency.get("p50")
    row["latency p95 ms"] = latency.get("p95")
    return row
