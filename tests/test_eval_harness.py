"""The evaluation harness and its answer matching, on hand-made questions and results (no model)."""

from __future__ import annotations

import json

import pytest

from eval.harness import (Question, QuestionSetError, format_metrics, load_questions, metrics,
                          run_questions, score)
from eval.matching import contains, matches_all_groups, normalise
from eval.report import write_report

# --- load_questions ----------------------------------------------------------------------


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                    encoding="utf-8")
    return path


def test_load_full_and_minimal_rows(tmp_path):
    path = write_jsonl(tmp_path / "set.jsonl", [
        {"id": "ty-001", "question": "太原市2024年新收行政复议案件多少件？", "kind": "fact", "answerable": True,
         "must_include": [["1274"], ["204%", "2.04倍"]], "evidence": ["新收行政复议案件1274件"],
         "regions": ["太原市"], "years": [2024], "notes": "ignored", "difficulty": 3},
        {"question": "成都市有多少件？", "answerable": False},
        "",
        "// a comment line",
        {"id": "x-3", "question": "太原和绵阳哪个多？", "kind": "compare", "must_include": ["1274", ["860"]],
         "years": ["2024"]},
    ])
    questions = load_questions(path)
    assert [q.id for q in questions] == ["ty-001", "set-2", "x-3"]
    first, second, third = questions
    assert first == Question(id="ty-001", question="太原市2024年新收行政复议案件多少件？", kind="fact",
                             answerable=True, must_include=[["1274"], ["204%", "2.04倍"]],
                             evidence=["新收行政复议案件1274件"], regions=["太原市"], years=[2024])
    assert not hasattr(first, "notes")
    assert (second.kind, second.answerable, second.must_include, second.evidence) == ("unanswerable", False, [], [])
    assert (third.kind, third.answerable) == ("compare", True)
    assert third.must_include == [["1274"], ["860"]]  # a bare string is a group of one
    assert third.years == [2024]


def test_kind_unanswerable_means_not_answerable(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"id": "u", "question": "北京呢？", "kind": "unanswerable"}])
    (q,) = load_questions(path)
    assert q.answerable is False


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_text('{"id": "a", "question": "问"}\n', encoding="utf-8-sig")
    assert [q.id for q in load_questions(path)] == ["a"]


def test_bad_json_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"id": "a", "question": "问"}, '{"id": "b", "question": '])
    with pytest.raises(QuestionSetError, match=r"bad\.jsonl:2: not valid JSON"):
        load_questions(path)


@pytest.mark.parametrize("row", [{"id": "a"}, {"id": "a", "question": "  "}, ["a list"]])
def test_missing_question_names_line(tmp_path, row):
    path = write_jsonl(tmp_path / "q.jsonl", [{"id": "ok", "question": "问"}, "", row])
    with pytest.raises(QuestionSetError, match=r"q\.jsonl:3: each line needs a non-empty \"question\""):
        load_questions(path)


def test_duplicate_id(tmp_path):
    path = write_jsonl(tmp_path / "dup.jsonl", [{"id": "a", "question": "一"}, {"id": "b", "question": "二"},
                                               {"id": "a", "question": "三"}])
    with pytest.raises(QuestionSetError, match=r"dup\.jsonl:3: duplicate id 'a'"):
        load_questions(path)


def test_missing_file(tmp_path):
    with pytest.raises(QuestionSetError, match="no such question file"):
        load_questions(tmp_path / "nope.jsonl")


def test_question_set_error_is_value_error():
    assert issubclass(QuestionSetError, ValueError)


# --- score -------------------------------------------------------------------------------

FACT = Question(id="ty-001", question="太原市2024年新收行政复议案件多少件？比上年增长多少？",
                must_include=[["1274"], ["204%"]],
                evidence=["新收行政复议案件1274件", "同比增长204%"])
NONE = Question(id="un-1", question="成都市2024年新收行政复议案件多少件？", kind="unanswerable", answerable=False)


def result(answer="", refused=False, contexts=(), citations=(), latency_ms=100.0):
    return {"answer": answer, "refused": refused, "contexts": [{"text": t} for t in contexts],
            "citations": [{"text": t} for t in citations], "latency_ms": latency_ms}


def test_correct_answer():
    scored = score(FACT, result("新收行政复议案件1,274件，同比增长204%[1]"))
    assert scored["correct"] is True
    assert scored["failure"] is None


def test_answer_missing_a_group():
    scored = score(FACT, result("新收行政复议案件1274件[1]"))
    assert scored["correct"] is False
    assert scored["failure"] == "answer lacks [['204%']]"


def test_refusing_an_answerable_question_is_wrong():
    scored = score(FACT, result("报告中没有找到：1274 204%", refused=True))
    assert scored["correct"] is False
    assert scored["failure"] == "refused an answerable question"


def test_refusing_an_unanswerable_question_is_right():
    scored = score(NONE, result("库中没有成都市的报告，无法回答。", refused=True))
    assert scored == {"correct": True, "failure": None}


def test_answering_an_unanswerable_question_is_wrong():
    scored = score(NONE, result("成都市新收行政复议案件500件。"))
    assert scored == {"correct": False, "failure": "answered an unanswerable question",
                      "figures": 1, "grounded_figures": 0}  # 500 is in no cited passage


def test_evidence_recall_counts_only_first_k_contexts():
    contexts = ["无关段落"] * 2 + ["市政府行政复议局全年新收行政复议案件1274件"] + ["无关"] * 2 \
        + ["同比增长２０４％"] + ["无关"] * 4
    scored = score(FACT, result("x", contexts=contexts))
    assert scored["evidence_recall@1"] == 0.0
    assert scored["evidence_recall@3"] == 0.5
    assert scored["evidence_recall@5"] == 0.5
    assert scored["evidence_recall@8"] == 1.0


def test_evidence_recall_needs_a_whole_number():
    scored = score(FACT, result("x", contexts=["新收行政复议案件12740件，同比增长2040%"]))
    assert scored["evidence_recall@8"] == 0.0


def test_citation_recall_and_precision():
    scored = score(FACT, result("1274件 204%", citations=["新收行政复議案件 1274 件", "其他内容", "其他内容二", "又一段"]))
    assert scored["citation_recall"] == 0.5
    assert scored["citation_precision"] == 0.25


def test_no_citations_no_precision():
    scored = score(FACT, result("1274件 204%"))
    assert scored["citation_recall"] == 0.0
    assert "citation_precision" not in scored


def test_no_evidence_no_recall_fields():
    question = Question(id="q", question="问", must_include=[["1"]])
    assert set(score(question, result("1", contexts=["1"]))) == {"correct", "failure", "figures", "grounded_figures"}


def test_grounded_figures_count_answer_figures_found_in_cited_passages():
    scored = score(FACT, result("新收1,274件，增长204%，另有999件", citations=["新收行政复议案件1274件,同比增长204%"]))
    assert (scored["figures"], scored["grounded_figures"]) == (3, 2)


# --- metrics -----------------------------------------------------------------------------


def scored_rows(pairs):
    rows = []
    for question, res in pairs:
        rows.append({**res, "id": question.id, "question": question.question, "kind": question.kind,
                     **score(question, res)})
    return rows


@pytest.fixture
def evaluated():
    compare = Question(id="cmp-1", question="太原和绵阳哪个多？", kind="compare", must_include=[["1274"], ["860"]],
                       evidence=["1274件", "860件"])
    none2 = Question(id="un-2", question="北京呢？", kind="unanswerable", answerable=False)
    questions = [FACT, FACT, compare, NONE, none2]
    questions[1] = Question(**{**FACT.__dict__, "id": "ty-002"})
    results = [
        result("1274件，204%[1]", contexts=["新收行政复议案件1274件", "同比增长204%"],
               citations=["新收行政复议案件1274件", "同比增长204%"], latency_ms=10),
        result("没有找到", refused=True, contexts=["无关", "新收行政复议案件1274件"], latency_ms=20),
        result("太原1274件，绵阳900件", contexts=["860件", "1274件"], citations=["1274件", "无关"], latency_ms=30),
        result("无法回答", refused=True, latency_ms=40),
        result("北京100件", latency_ms=1000),
    ]
    return questions, scored_rows(zip(questions, results))


def test_metrics(evaluated):
    questions, rows = evaluated
    assert [r["correct"] for r in rows] == [True, False, False, True, False]
    m = metrics(questions, rows)
    assert m["n"] == 5
    assert m["accuracy"] == 0.4
    assert m["by_kind"] == {"fact": {"n": 2, "accuracy": 0.5}, "compare": {"n": 1, "accuracy": 0.0},
                            "unanswerable": {"n": 2, "accuracy": 0.5}}
    assert list(m["by_kind"]) == ["fact", "compare", "unanswerable"]
    # evidence recall over the three questions with evidence: @1 = (0.5 + 0 + 0.5) / 3, @3 = (1 + 0.5 + 1) / 3
    assert m["evidence_recall"] == {"@1": 0.3333, "@3": 0.8333, "@5": 0.8333, "@8": 0.8333}
    # citation recall leaves out refused answers: (1.0 + 0.5) / 2
    assert m["citation_recall"] == 0.75
    assert m["citation_precision"] == 0.75  # (2/2 + 1/2) / 2
    assert m["refusal_precision"] == 0.5  # two refusals, one of them right
    assert m["refusal_recall"] == 0.5  # two unanswerable questions, one refused
    assert m["latency_ms"] == {"p50": 30.0, "p95": 1000.0}


def test_metrics_without_refusals_or_unanswerables():
    rows = scored_rows([(FACT, result("1274件，204%", latency_ms=5))])
    m = metrics([FACT], rows)
    assert m["refusal_precision"] is None
    assert m["refusal_recall"] is None
    assert m["accuracy"] == 1.0
    assert m["latency_ms"] == {"p50": 5.0, "p95": 5.0}


def test_percentiles_of_many():
    questions = [Question(id=str(i), question="q") for i in range(101)]
    rows = [{"correct": True, "latency_ms": float(i)} for i in range(101)]
    assert metrics(questions, rows)["latency_ms"] == {"p50": 50.0, "p95": 95.0}


def test_metrics_empty():
    m = metrics([], [])
    assert m["n"] == 0
    assert m["accuracy"] is None
    assert m["latency_ms"] == {"p50": None, "p95": None}
    assert "questions: 0" in format_metrics(m)


# --- run_questions and write_report ------------------------------------------------------


def test_run_questions_scores_and_survives_errors():
    def answer(q):
        if q.id == "un-1":
            raise RuntimeError("boom")
        return {"answer": "1274件 204%", "refused": False, "citations": [], "contexts": [], "latency_ms": 1.0}

    rows = run_questions([FACT, NONE], answer, progress=False)
    assert [(r["id"], r["kind"], r["answerable"], r["correct"]) for r in rows] == [
        ("ty-001", "fact", True, True), ("un-1", "unanswerable", False, False)]
    assert rows[1]["failure"] == "RuntimeError: boom"
    assert rows[1]["question"] == NONE.question


def test_write_report(tmp_path, evaluated):
    questions, rows = evaluated
    m = metrics(questions, rows)
    out = write_report(questions, rows, m, tmp_path / "report")
    assert out == tmp_path / "report"
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["ty-001", "ty-002", "cmp-1", "un-1", "un-2"]
    assert "太原市" in lines[0]  # written as UTF-8, not escaped
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8")) == m
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("# Evaluation\n")
    assert "questions: 5   accuracy:  40.0%" in summary
    assert "refusal precision  50.0%   refusal recall  50.0%" in summary
    assert "## Failures (3)" in summary
    assert "- `ty-002` (fact) 太原市2024年新收行政复议案件多少件？比上年增长多少？ — refused an answerable question" in summary
    assert "- `cmp-1` (compare) 太原和绵阳哪个多？ — answer lacks [['860']]" in summary
    assert "- `un-2` (unanswerable) 北京呢？ — answered an unanswerable question" in summary
    assert "`ty-001`" not in summary
    assert "`un-1`" not in summary


# --- matching ----------------------------------------------------------------------------


@pytest.mark.parametrize("haystack, needle, expected", [
    # spaces, punctuation, width, traditional
    ("新收行政复议案件 1274 件", "1274件", True),
    ("“证照分离”涉改事项", "证照分离涉改事项", True),
    ("证照分离涉改事项", "“证照分离”，涉改事项", True),
    ("共１２７４件", "1274件", True),
    ("ＡＢＣ", "abc", True),
    ("新收行政復議申請", "新收行政复议申请", True),
    ("法律顾问", "法律顧問", True),
    # thousands separators
    ("新收行政復議申請 1,274 件", "1274件", True),
    ("共1,274,000元", "1274000元", True),
    ("共1274000元", "1,274,000元", True),
    ("共1，274件", "1274件", True),
    # a number is not part of a longer one
    ("共12740件", "1274", False),
    ("共21274件", "1274件", False),
    ("共1274件", "127", False),
    ("第15名", "5", False),
    ("第5名", "5", True),
    ("共1,274,000元", "1,274", False),
    # decimals
    ("应用率达93.99%", "93.99%", True),
    ("应用率达93.99%", "93.9", False),
    ("1.26万", "1.2", False),
    ("1.26万", "26万", False),
    ("11.26万", "1.26万", False),
    ("第1274.5", "1274", False),
    ("共1274.", "1274", True),
    ("增长3.5%", "3.5", True),
    # percent
    ("增长204%", "204%", True),
    ("增长204", "204%", False),
    ("增长35%", "3.5%", False),
    ("增长204%", "204", True),
    # empty
    ("", "1274", False),
    ("任何文字", "", False),
    ("任何文字", "，。", False),
])
def test_contains(haystack, needle, expected):
    assert contains(haystack, needle) is expected


@pytest.mark.parametrize("haystack, needle, expected", [
    ("太原和绵阳新收案件分别为1274、860件", "1274", True),
    ("分别为1274 860件", "1274", True),
    ("新收案件、增长率：1274 204%", "1274", True),
    ("新收行政复议案件共计1274[1]。", "1274", True),
    ("分别为12、74件", "1274", False),
])
def test_contains_keeps_separate_numbers_apart(haystack, needle, expected):
    assert contains(haystack, needle) is expected


def test_normalise():
    assert normalise("新收行政復議申請 1,274 件。") == "新收行政复议申请1274件"
    assert normalise("增长1.26万。") == "增长1.26万"
    assert normalise("“Ａ－Ｂ”％") == "a-b%"


def test_matches_all_groups():
    assert matches_all_groups("新收1274件，增长204%", [["1274"], ["204%", "2.04倍"]]) == (True, [])
    assert matches_all_groups("新收1274件", [["1274"], ["204%", "2.04倍"], ["x"]]) == (False, [["204%", "2.04倍"], ["x"]])
    assert matches_all_groups("任何", []) == (True, [])
