"""Checks on the evaluation question sets (eval/questions/*.jsonl) against the bundled reports.

Every question's format is checked (CONTRACT.md, "Question set"), and for answerable questions
the expectations are checked against the reports themselves: each evidence quote must occur in
the cleaned text of a report of the question's regions, and each must_include group must have
an alternative in that text, so that a correct answer is possible at all. The matching is the
evaluation's own (`rag.eval.matching.contains`). No embedding model is loaded.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag.eval.matching import contains, matches_all_groups
from rag.ingest.cleaning import clean
from rag.ingest.loaders import SUPPORTED_SUFFIXES, load_document
from rag.ingest.metadata import detect_metadata
from rag.text.normalize import detect_script

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS_DIR = ROOT / "eval" / "questions"
REPORTS = ROOT / "data" / "reports"
QUESTION_FILES = sorted(QUESTIONS_DIR.glob("*.jsonl"))
PROJECT_SET = QUESTIONS_DIR / "project.jsonl"
ANALYST_SET = QUESTIONS_DIR / "analyst.jsonl"

KINDS = {"fact", "list", "compare", "summary", "unanswerable"}
# The analyst set labels each question with what it exercises (its "category").
CATEGORY_MINIMUM = {"paraphrase": 30, "arithmetic": 30, "ranking": 20, "list": 20, "summary": 25,
                    "trap": 20, "lookup": 15}
REQUIRED = {"id": str, "question": str, "kind": str, "answerable": bool, "must_include": list,
            "evidence": list, "regions": list}
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_HAN = re.compile(r"[\u3400-\u9fff]")


@dataclass
class Report:
    name: str
    region: str | None
    year: int | None
    text: str  # cleaned text, as the index stores it


@pytest.fixture(scope="module")
def reports() -> list[Report]:
    out = []
    for path in sorted(REPORTS.iterdir()):
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            continue
        cleaned = clean(load_document(path))
        meta = detect_metadata(cleaned.text, path, cleaned.info_lines)
        out.append(Report(path.name, meta.region, meta.year, cleaned.text))
    assert out, "no bundled reports found"
    return out


def _load(path: Path) -> list[dict]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            pytest.fail(f"{path.name}:{number}: not JSON ({exc})")
        assert isinstance(item, dict), f"{path.name}:{number}: not a JSON object"
        item["_line"] = number
        questions.append(item)
    return questions


def _where(path: Path, q: dict) -> str:
    return f"{path.name}:{q.get('_line')} ({q.get('id')})"


def _is_english(text: str) -> bool:
    return len(_ASCII_LETTER.findall(text)) > 2 * len(_HAN.findall(text))


def _region_reports(q: dict, reports: list[Report]) -> list[Report]:
    return [r for r in reports if r.region in q["regions"]]


def test_question_sets_exist():
    assert PROJECT_SET in QUESTION_FILES, "eval/questions/project.jsonl is missing"


@pytest.fixture(params=QUESTION_FILES, ids=lambda p: p.name)
def question_file(request) -> tuple[Path, list[dict]]:
    return request.param, _load(request.param)


def test_fields_present_and_typed(question_file):
    path, questions = question_file
    assert questions, f"{path.name} has no questions"
    for q in questions:
        where = _where(path, q)
        for name, typ in REQUIRED.items():
            assert name in q, f"{where}: missing field {name!r}"
            assert isinstance(q[name], typ), f"{where}: {name!r} should be {typ.__name__}"
        assert q["id"].strip() and q["question"].strip(), f"{where}: empty id or question"
        assert q["kind"] in KINDS, f"{where}: unknown kind {q['kind']!r}"
        for group in q["must_include"]:
            assert isinstance(group, list) and group, f"{where}: each must_include group is a non-empty list"
            assert all(isinstance(alt, str) and alt.strip() for alt in group), f"{where}: empty alternative"
        assert all(isinstance(e, str) and e.strip() for e in q["evidence"]), f"{where}: bad evidence entry"
        assert q["regions"] and all(isinstance(r, str) and r.strip() for r in q["regions"]), \
            f"{where}: regions must be a non-empty list of names"
        if "years" in q:
            assert isinstance(q["years"], list) and all(
                isinstance(y, int) and not isinstance(y, bool) for y in q["years"]), f"{where}: years must be ints"


def test_ids_unique(question_file):
    path, questions = question_file
    counts = Counter(q.get("id") for q in questions)
    assert not [i for i, n in counts.items() if n > 1], f"{path.name}: duplicate ids"


def test_answerable_matches_kind(question_file):
    path, questions = question_file
    for q in questions:
        where = _where(path, q)
        if q["kind"] == "unanswerable":
            assert q["answerable"] is False, f"{where}: an unanswerable question must have answerable false"
            assert q["must_include"] == [] and q["evidence"] == [], \
                f"{where}: an unanswerable question expects a refusal: no must_include, no evidence"
        else:
            assert q["answerable"] is True, f"{where}: answerable false needs kind unanswerable"
            assert q["must_include"], f"{where}: an answerable question needs must_include"
            assert q["evidence"], f"{where}: an answerable question needs evidence"


def test_answerable_questions_name_reports_in_the_corpus(question_file, reports):
    path, questions = question_file
    held = {(r.region, r.year) for r in reports}
    for q in questions:
        if not q["answerable"]:
            continue
        where = _where(path, q)
        for region in q["regions"]:
            assert region in {r for r, _ in held}, f"{where}: no bundled report for {region}"
        for year in q.get("years", []):
            assert any((region, year) in held for region in q["regions"]), \
                f"{where}: none of {q['regions']} has a {year} report"


def test_evidence_is_in_the_cleaned_reports(question_file, reports):
    path, questions = question_file
    corpus = [r.text for r in reports]
    for q in questions:
        where = _where(path, q)
        own = [r.text for r in _region_reports(q, reports)] if q["answerable"] else []
        for quote in q["evidence"]:
            assert any(contains(text, quote) for text in corpus), f"{where}: evidence not in any report: {quote!r}"
            if own:
                assert any(contains(text, quote) for text in own), \
                    f"{where}: evidence not in the reports of {q['regions']}: {quote!r}"


PARTLY_ANSWERED = {"未提及", "not mention"}
# A ranking's verdict ("绵阳市最少"): the answer's wording, not the report's.
VERDICT = {"最多", "最少", "最高", "最低", "多于", "少于", "most", "fewest", "least", "highest", "lowest", "higher",
           "more"}


def test_expected_answers_are_in_the_reports(question_file, reports):
    path, questions = question_file
    for q in questions:
        if not (q["answerable"] and q["evidence"]):
            continue
        text = "\n".join(r.text for r in _region_reports(q, reports))
        groups = q["must_include"]
        if "calc" in q:
            # A computed answer (a sum, a share...) is not in the reports; its inputs are checked
            # by test_computed_answers_follow_from_the_reports instead.
            groups = [g for g in groups if q["calc"]["value"] not in g]
        # A question that is answered in part (one ask stated, one not) expects the answer to say
        # which is not mentioned: that group is the answer's wording, not the report's.
        groups = [g for g in groups if not set(g) <= PARTLY_ANSWERED and not set(g) <= VERDICT]
        ok, missed = matches_all_groups(text, groups)
        assert ok, f"{_where(path, q)}: must_include groups not found in the reports of {q['regions']}: {missed}"


def test_project_set_size_and_mix():
    questions = _load(PROJECT_SET)
    kinds = Counter(q["kind"] for q in questions)
    assert len(questions) >= 120, f"only {len(questions)} questions"
    assert {"fact", "compare", "list", "unanswerable"} <= set(kinds), f"kinds present: {dict(kinds)}"
    minimum = {"fact": 50, "compare": 25, "list": 15, "unanswerable": 20}
    assert all(kinds[k] >= n for k, n in minimum.items()), f"kinds: {dict(kinds)}, need {minimum}"
    traditional = [q["id"] for q in questions if detect_script(q["question"]) == "zh-Hant"]
    english = [q["id"] for q in questions if _is_english(q["question"])]
    assert len(traditional) >= 10, f"traditional-character questions: {traditional}"
    assert len(english) >= 10, f"English questions: {english}"


_SAFE_EXPR = re.compile(r"^[0-9+\-*/(). ]+$")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_VALUE = re.compile(r"^约?(-?\d+(?:\.\d+)?)(%|[^\d]*)$")


def _calc_value(value: str) -> tuple[float, float]:
    """The number a calc value states, and half its last shown digit (the rounding tolerance)."""
    m = _VALUE.match(value.replace(",", "").strip())
    assert m, f"calc value {value!r} is not a number with an optional % or unit"
    number = m.group(1)
    decimals = len(number.split(".")[1]) if "." in number else 0
    return float(number), 0.5 * 10 ** -decimals


def test_computed_answers_follow_from_the_reports(question_file, reports):
    path, questions = question_file
    for q in questions:
        if "calc" not in q:
            continue
        where = _where(path, q)
        calc = q["calc"]
        assert isinstance(calc, dict) and isinstance(calc.get("expr"), str) and isinstance(calc.get("value"), str), \
            f"{where}: calc needs a string expr and value"
        expr = calc["expr"]
        assert _SAFE_EXPR.match(expr), f"{where}: calc expr may hold only numbers, + - * / ( ) and spaces: {expr!r}"
        own = [r.text for r in _region_reports(q, reports)]
        assert own, f"{where}: no report for {q['regions']}"
        for number in _NUMBER.findall(expr):
            assert any(contains(text, number) for text in own), \
                f"{where}: {number} in calc expr is not stated in the reports of {q['regions']}"
        result = eval(expr, {"__builtins__": {}}, {})  # safe: the regex above admits arithmetic only
        expected, tolerance = _calc_value(calc["value"])
        assert abs(result - expected) <= tolerance + 1e-9, \
            f"{where}: {expr} = {result}, but the expected value is {calc['value']!r}"
        assert any(calc["value"] in group for group in q["must_include"]), \
            f"{where}: the calc value {calc['value']!r} should be a must_include alternative"


def test_analyst_set_size_and_mix():
    questions = _load(ANALYST_SET)
    assert len(questions) >= 160, f"only {len(questions)} questions"
    categories = Counter(q.get("category") for q in questions)
    unknown = [q["id"] for q in questions if q.get("category") not in CATEGORY_MINIMUM]
    assert not unknown, f"questions without a known category: {unknown}"
    short = {c: categories[c] for c, n in CATEGORY_MINIMUM.items() if categories[c] < n}
    assert not short, f"categories below their minimum {CATEGORY_MINIMUM}: {short}"
    assert all(q["kind"] == "summary" for q in questions if q["category"] == "summary"), \
        "summary-category questions should have kind summary"
    traps = [q for q in questions if q["category"] == "trap"]
    assert sum(not q["answerable"] for q in traps) >= 15, "too few unanswerable traps"
    traditional = [q["id"] for q in questions if detect_script(q["question"]) == "zh-Hant"]
    english = [q["id"] for q in questions if _is_english(q["question"])]
    assert len(traditional) >= 8, f"traditional-character questions: {traditional}"
    assert len(english) >= 8, f"English questions: {english}"


def test_calc_value_parsing():
    assert _calc_value("28.5%") == (28.5, 0.05)
    assert _calc_value("2746") == (2746.0, 0.5)
    assert _calc_value("35倍") == (35.0, 0.5)
    assert not _SAFE_EXPR.match("__import__('os')")


def test_language_detection_helpers():
    assert _is_english("How many new administrative reconsideration cases did Taiyuan receive in 2024?")
    assert not _is_english("太原市2024年新收行政复议案件多少件？")
    assert detect_script("太倉市2024年新收行政復議申請多少件？") == "zh-Hant"
    assert detect_script("太仓市2024年新收行政复议申请多少件？") == "zh-Hans"


def test_contains_rejects_a_number_inside_a_longer_number():
    assert contains("新收行政复议案件1274件", "1274")
    assert not contains("共12740件", "1274")
    assert not contains("共21274件", "1274")
    assert not contains("法律援助案件1.26万余件", "1.2")
    assert not contains("增长12.5%", "2.5%")
    # ...so the must_include check above can fail: a near-miss figure is reported as missed.
    ok, missed = matches_all_groups("新收行政复议案件12740件，同比增长204%", [["1274"], ["204%"]])
    assert not ok and missed == [["1274"]]
