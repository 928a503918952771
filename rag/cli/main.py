"""The ``rag`` command line (see CONTRACT.md and the README)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from rag.config import Settings, SettingsError


def cmd_ingest(args, settings: Settings) -> int:
    from rag.services import open_index
    from rag.ingest.pipeline import Ingestor

    index = open_index(settings, for_ingest=True)  # only ingest writes vectors
    if args.if_empty:
        held = len(index.reports())
        if held:
            print(f"index at {index.location} already holds {held} reports; nothing to do")
            return 0
    if args.rebuild:
        print(f"rebuilding: deleting the index at {index.location}", file=sys.stderr)
        index.drop()

    from tqdm import tqdm

    def report(result) -> None:
        # tqdm.write keeps these lines clear of the progress bars.
        if result.status == "failed":
            tqdm.write(f"FAILED   {result.source}: {result.reason}", file=sys.stderr)
        elif result.status == "duplicate":
            tqdm.write(f"dup      {result.source}: {result.reason}", file=sys.stderr)
        elif not args.quiet:
            where = f"{result.region or '?'} {result.year or '?'}"
            tqdm.write(f"{result.status:9}{result.source} -> {result.doc_id} ({where}, {result.chunks} chunks)",
                  file=sys.stderr)
        for warning in result.warnings:
            tqdm.write(f"warning  {result.source}: {warning}", file=sys.stderr)
        if result.confidence == "low" and result.fix:
            # Unsure means asked: the clues, and the command that confirms or corrects them.
            tqdm.write(f"confirm  {result.source}: 地区/年份待确认（{result.evidence}）\n"
                       f"         fix or confirm with: {result.fix}", file=sys.stderr)

    summary = Ingestor(index, progress=not args.quiet).run(
        args.paths, region=args.region, year=args.year, prune=args.prune, on_file=report)
    if summary.repaired_chunks:
        print(f"repaired: removed {summary.repaired_chunks} chunks of an interrupted ingest", file=sys.stderr)
    for doc_id in summary.pruned:
        print(f"pruned  {doc_id} (its file is gone)", file=sys.stderr)
    print(summary.line())
    return 1 if summary.failed else 0


def cmd_list(args, settings: Settings) -> int:
    from rag.services import open_index

    # Grouped by place, then year: several years of one place read as a series.
    reports = sorted(open_index(settings).reports(), key=lambda r: (r.region or "\uffff", r.year or 0, r.doc_id))
    if args.json:
        print(json.dumps([{"doc_id": r.doc_id, "region": r.region, "year": r.year, "title": r.title,
                           "source": r.source, "chunks": r.chunks, "province": r.province,
                           "lang": r.lang, "publisher": r.publisher, "date": r.date,
                           "added_at": r.added_at, "level": r.level, "parent": r.parent,
                           "department": r.department, "confidence": r.confidence,
                           "evidence": r.evidence} for r in reports],
                         ensure_ascii=False, indent=2))
        return 0
    if not reports:
        print("the index is empty; add reports with: rag ingest data/reports")
        return 0
    for r in reports:
        mark = "  (待确认)" if r.unconfirmed else ""
        print(f"{r.doc_id:32} {r.region or '?':8} {r.year or '?':>4}  {r.chunks:4} chunks  {r.title}  [{r.source}]{mark}")
    return 0


def cmd_remove(args, settings: Settings) -> int:
    from rag.services import open_index

    index = open_index(settings)
    status = 0
    for doc_id in args.doc_ids:
        removed = index.remove_report(doc_id)
        if removed:
            print(f"removed {doc_id} ({removed} chunks)")
        else:
            print(f"no report with doc_id {doc_id!r}; see `rag list`", file=sys.stderr)
            status = 1
    return status


def cmd_set(args, settings: Settings) -> int:
    from rag.services import open_index

    fields = {k: v for k, v in (("region", args.region), ("year", args.year), ("title", args.title)) if v is not None}
    if not fields:
        print("nothing to change: give --region, --year or --title", file=sys.stderr)
        return 2
    record = open_index(settings).update_report(args.doc_id, **fields)
    print(f"updated {record.doc_id}: {record.region} {record.year} {record.title}")
    return 0

def _print_answer(result, streamed: str | None = None) -> None:
    """The answer (unless it was streamed unchanged), then its sources, for a terminal."""
    if streamed is None:
        print(result.answer)
    elif streamed.strip() != result.answer.strip():
        print("\n\n（核对后的回答：）" if result.analysis is None or result.analysis.language == "zh"
              else "\n\n(checked answer:)")
        print(result.answer)
    else:
        print()
    for note in result.notes:
        print(f"（注：{note}）")
    if result.table:
        _print_table(result.table)
    if result.citations:
        print("\n来源：")
        for c in result.citations:
            where = " ".join(x for x in (c.region or "", f"{c.year}年" if c.year else "", c.section,
                                          f"第{c.page}页" if c.page else "") if x)
            snippet = c.text.replace("\n", " ")
            print(f"[{c.n}] {where}  《{c.title or c.doc_id}》")
            print(f"    {snippet[:160]}{'…' if len(snippet) > 160 else ''}")
    print(f"\n({result.mode}, {result.latency_ms:.0f} ms)")


def _print_table(table: dict) -> None:
    """The comparison table as aligned text: place, year, figure as written, value, source."""
    trend = table.get("kind") == "trend"
    print(f"\n逐年数字：{table.get('region') or ''}{table['metric']}" if trend else f"\n对比表：{table['metric']}")
    for row in table["rows"]:
        year = f"{row['year']}年" if row.get("year") else "年份未知"
        if row["found"]:
            value = f"{row['value']:g}{row['unit']}" if row.get("value") is not None else ""
            mark = {True: "  ✓", False: "  ✗"}.get(row.get("meets"), "")
            change = f"  {row['change']}" if trend and row.get("change") else ""  # from the year before
            print(f"  {row['region'] or '?':<8}{year:<8}{row['figure']:<14}{value:<14}[{row['citation']}]{mark}{change}")
        else:
            print(f"  {row['region'] or '?':<8}{year:<8}未提及")


def _write_chart(result, path: str) -> None:
    from rag.answer.charts import ChartError, chart

    if not result.table:
        print(f"--chart: this answer has no comparison table, so {path} was not written", file=sys.stderr)
        return
    try:
        print(f"chart: {chart(result.table, path)}", file=sys.stderr)  # a line for a trend
    except ChartError as exc:
        print(f"--chart: {exc}; {path} was not written", file=sys.stderr)


def cmd_ask(args, settings: Settings) -> int:
    from rag.services import build_answerer

    answerer = build_answerer(settings, mode=args.mode, k=args.k, share_server=True)
    if args.stream and not args.json:
        result = _stream_answer(answerer, args.question, mode=args.mode, regions=args.region, years=args.year)
    else:
        result = answerer.run(args.question, mode=args.mode, regions=args.region, years=args.year)
        if args.json:
            print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        else:
            _print_answer(result)
    if args.chart:
        _write_chart(result, args.chart)
    if args.export:
        from rag.export import write_answer

        print(f"exported: {write_answer(args.export, result)}", file=sys.stderr)
    return 0


def cmd_figures(args, settings: Settings) -> int:
    """The figures extracted at ingest: filtered, searched, printed or written to CSV/XLSX/JSON."""
    from rag.export import figure_status, write_figures
    from rag.index.figures_query import FigureFilter, query_figures
    from rag.services import open_index, query_embeddings

    if args.correct:
        return _correct_figure(args, settings)
    index = open_index(settings, embeddings=query_embeddings(settings) if args.similar else None)
    rows = query_figures(index, FigureFilter(regions=args.region or [], years=args.year or [], metric=args.metric or "",
                                             similar=args.similar or "", limit=args.limit, sort=args.sort or "",
                                             include_removed=args.include_removed))
    for path in (args.csv, args.xlsx):
        if path:
            print(f"{len(rows)} figures -> {write_figures(path, rows)}", file=sys.stderr)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=2))
    elif not (args.csv or args.xlsx):
        for r in rows:
            year = f"{r.year}年" if r.year else "年份未知"
            extra = " ".join(x for x in (r.qualifiers, f"相似度{r.similarity:.2f}" if r.similarity is not None else "",
                                         figure_status(r)) if x)
            print(f"{r.region or '?'}\t{year}\t{r.metric}\t{r.value:g}\t{r.unit}\t{r.text}\t{extra}\t"
                  f"{r.doc_id}\t{r.chunk_id}\t{r.sentence}")
        print(f"({len(rows)} figures)", file=sys.stderr)
    return 0


def _correct_figure(args, settings: Settings) -> int:
    """``rag figures --correct ID``: correct a wrongly extracted figure, or remove it (audited)."""
    from rag.services import open_index, query_embeddings

    index = open_index(settings, embeddings=query_embeddings(settings) if args.set_metric else None)
    try:
        after = index.correct_figure(args.correct, metric=args.set_metric, value=args.set_value, unit=args.set_unit,
                                     remove=args.remove)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 1
    state = "removed" if args.remove else f"now {after['metric']} {after['value']:g} {after['unit']}"
    print(f"{args.correct}: {state} (was: {after['fix_original']}; see `rag log`)")
    return 0


def _stream_answer(answerer, question: str, **kwargs):
    """Print the answer as it is written; citations and the checked answer when it ends."""
    streamed = []
    result = None
    for event in answerer.stream(question, **kwargs):
        if isinstance(event, str):
            streamed.append(event)
            print(event, end="", flush=True)
        else:
            result = event
    _print_answer(result, streamed="".join(streamed))
    return result


def cmd_chat(args, settings: Settings) -> int:
    from rag.answer.answerer import QuestionError
    from rag.retrieve.conversation import FollowUpRewriter
    from rag.services import build_answerer

    answerer = build_answerer(settings, mode=args.mode, k=args.k, share_server=True)
    rewriter = FollowUpRewriter(lambda: answerer.retriever.analyzer)
    history: list[str] = []
    print(f"govreport-rag 对话（{args.mode or answerer.default_mode}）：输入问题，空行或 Ctrl-D 退出；"
          "追问如“那绵阳呢？”会沿用上一问。")
    while True:
        try:
            question = input("\n问> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not question or question in ("exit", "quit", "退出"):
            return 0
        standalone = rewriter.run(question, history)
        if standalone != question:
            print(f"（理解为：{standalone}）")
        try:
            _stream_answer(answerer, standalone, mode=args.mode)
        except QuestionError as exc:
            print(f"无法提问：{exc}")
            continue
        history.append(standalone)


# Size: one command's whole flow (run, report, compare with the baseline); its steps are the
# harness's functions, what stays here is wiring of the options.
def cmd_eval(args, settings: Settings) -> int:
    from datetime import datetime
    from pathlib import Path

    from rag.eval.harness import (format_metrics, has_expected, load_questions, metrics, run_questions, write_results,
                                  write_run)
    from rag.text.lexicons import LEXICONS
    from rag.eval.report import side_by_side, write_comparison_report, write_report
    from rag.services import build_answerer

    questions = load_questions(args.questions)
    answerer = build_answerer(settings, mode=args.mode, k=args.k, share_server=True)
    mode = args.mode or answerer.default_mode
    judge = _judge(answerer, settings) if args.judge else None
    pipelines = ["project", "naive"] if args.pipeline == "both" else [args.pipeline]
    print(f"{len(questions)} questions from {args.questions}, mode {mode}, pipeline {args.pipeline}", file=sys.stderr)
    run = {"questions": args.questions, "mode": mode, "pipeline": args.pipeline, "k": args.k,
           "date": datetime.now().astimezone().isoformat(timespec="seconds"),
           "command": "rag " + " ".join(args.argv),
           # what the answers depend on besides the code: a change shows in `rag eval compare`
           "settings": {"embeddings": settings.embeddings, "llm": settings.llm, "llm_model": settings.llm_model,
                        "chunk_tokens": settings.chunk_tokens, "collection": settings.collection},
           "lexicons": LEXICONS.describe()}
    runs = {}
    for name in pipelines:
        if name == "project":
            def answer(q, mode=mode):
                return {**answerer.run(q.question, mode=mode, id=q.id).to_dict(), "pipeline": "project"}
        else:
            from rag.eval.naive import NaivePipeline

            naive = NaivePipeline.from_answerer(answerer)
            if naive.build():
                print(f"built the naive baseline's collection {naive.collection_name!r}", file=sys.stderr)
            answer = lambda q, naive=naive: naive.run(q.question, mode=mode, id=q.id)  # noqa: E731
        results = run_questions(questions, answer, progress=not args.quiet, desc=name)
        m = metrics(questions, results)
        if judge is not None:
            from rag.eval.judge import judge_results

            m["judge"] = judge_results(results, judge, progress=not args.quiet)
        runs[name] = (questions, results, m)
    if args.out:
        for i, (name, (_, results, _)) in enumerate(runs.items()):
            path = args.out if i == 0 else _suffixed(args.out, name)
            write_results(results, path)
            write_run(run, path)
    if args.report:
        if len(runs) > 1:
            write_comparison_report(runs, args.report, run=run)
        else:
            (name, (qs, results, m)), = runs.items()
            write_report(qs, results, m, args.report, run=run, name=name)
    if not any(has_expected(q) for q in questions):
        # Nothing says what a right answer is (no must_include, none unanswerable): the answers
        # are the output, and an accuracy would only count the refusals.
        print(f"no expected answers in {args.questions} (must_include / answerable): answered, not scored")
        for name, (_, results, m) in runs.items():
            for r in results:
                print(f"{r['id']}\t{r['question']}\t{' '.join(str(r.get('answer', '')).split())[:200]}")
            print(f"{name}: {m['n']} answered, latency p50 {m['latency_ms']['p50']} ms   p95 {m['latency_ms']['p95']} ms")
        return 0
    if len(runs) > 1:
        print(side_by_side({name: m for name, (_, _, m) in runs.items()}))
    else:
        print(format_metrics(next(iter(runs.values()))[2]))
    for name, (_, results, m) in runs.items():
        if m.get("judge"):
            from rag.eval.report import format_judge

            print(f"\nLLM judge, {name} (separate from the exact-match metrics):\n{format_judge(m['judge'])}")
        failures = [r for r in results if not r["correct"]]
        if failures and not args.quiet and len(runs) == 1:
            print(f"\nfailures ({len(failures)}):")
            for r in failures:
                print(f"  {r['id']:<10} {r['failure']}")
        elif failures and len(runs) > 1:
            where = f" (listed in {Path(args.report) / name / 'summary.md'})" if args.report else ""
            print(f"{name}: {len(failures)} questions wrong{where}")
    if args.report:
        print(f"\nreport: {args.report}/summary.md", file=sys.stderr)
    return 0


def _judge(answerer, settings: Settings):
    from rag.eval.judge import Judge
    from rag.models.chat import ChatModelUnavailable, make_chat_model

    chat_model = answerer.chat_model
    if chat_model is None:
        try:
            chat_model = make_chat_model(settings, share_server=True)
        except ChatModelUnavailable as exc:
            raise ValueError(f"--judge needs an LLM (RAG_LLM=local or openai): {exc}") from exc
    return Judge(chat_model)


def _suffixed(path: str, name: str) -> str:
    """results.jsonl -> results.naive.jsonl"""
    from pathlib import Path

    p = Path(path)
    return str(p.with_name(f"{p.stem}.{name}{p.suffix or '.jsonl'}"))


def cmd_eval_compare(args, settings: Settings) -> int:
    import json

    from rag.eval.compare import compare_paths, format_comparison

    comparison = compare_paths(args.a, args.b)
    if args.json:
        from rag.eval.harness import flat_metrics

        print(json.dumps({"a": args.a, "b": args.b, "fixed": [r["id"] for r in comparison.fixed],
                          "broken": [r["id"] for r in comparison.broken], "reworded": comparison.reworded,
                          "setup_changes": comparison.setup_changes,
                          "only_a": comparison.only_a, "only_b": comparison.only_b,
                          "metrics_a": flat_metrics(comparison.metrics_a),
                          "metrics_b": flat_metrics(comparison.metrics_b)}, ensure_ascii=False, indent=2))
    else:
        print(format_comparison(comparison))
    return 0


def cmd_doctor(args, settings: Settings) -> int:
    from rag.cli.doctor import run_doctor

    return run_doctor(settings, as_json=args.json, generate=not args.quick)


def cmd_serve(args, settings: Settings) -> int:
    from rag.accounts import serving_check
    from rag.answer.prompts import fixed_prompt_messages
    from rag.models.server import prestart_bundled_model

    serving_check(settings.users_file, args.host)  # before the model starts: without accounts, loopback only

    prestart_bundled_model(warm_up=fixed_prompt_messages())  # loads while the app imports and starts
    from rag.web.app import serve

    serve(host=args.host, port=args.port)
    return 0


# Size: the whole command line in one declarative place, one add_argument per option.
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Cited answers over Chinese government reports.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="ingest report files or folders")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--region", help="the place of every file named (overrides detection)")
    p.add_argument("--year", type=int, help="the year every file named reports on")
    p.add_argument("--prune", action="store_true", help="remove reports whose files are gone")
    p.add_argument("--rebuild", action="store_true", help="delete the index first (e.g. after changing RAG_EMBEDDINGS)")
    p.add_argument("--if-empty", action="store_true", help="do nothing if the index already holds reports")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or per-file lines")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("list", help="the reports in the index")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("remove", help="remove reports from the index")
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("set", help="correct a report's place, year or title (no re-embedding)")
    p.add_argument("doc_id", metavar="DOC_ID")
    p.add_argument("--region")
    p.add_argument("--year", type=int)
    p.add_argument("--title")
    p.set_defaults(func=cmd_set)

    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the result object (CONTRACT.md)")
    p.add_argument("--mode", choices=["extractive", "llm"], help="default: llm when a model is configured")
    p.add_argument("--region", action="append", help="only this place (repeatable)")
    p.add_argument("--year", type=int, action="append", help="only this year (repeatable)")
    p.add_argument("-k", type=int, default=8, help="passages to retrieve (default 8)")
    p.add_argument("--stream", action="store_true", help="print the answer as the model writes it")
    p.add_argument("--chart", metavar="PNG", help="for a comparison, also draw its table as a bar chart (PNG); for one place over "
                   "several years, a line chart")
    p.add_argument("--export", metavar="FILE", help="also write the answer to FILE.md/.docx (all of it) or "
                   ".csv/.xlsx (its comparison table, else its citations)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="an interactive chat in the terminal, with follow-up questions")
    p.add_argument("--mode", choices=["extractive", "llm"])
    p.add_argument("-k", type=int, default=8)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("eval", help="run a question set and print its metrics (`rag eval compare A B`: two runs)",
                       epilog="rag eval compare A B: the questions that changed between two runs "
                              "(results files or report folders) and the metric deltas")
    p.add_argument("questions", metavar="QUESTIONS.jsonl")
    p.add_argument("--out", metavar="RESULTS.jsonl",
                   help="write one result per question (with --pipeline both, the naive run goes to RESULTS.naive.jsonl)")
    p.add_argument("--mode", choices=["extractive", "llm"])
    p.add_argument("--report", metavar="DIR",
                   help="write results.jsonl, metrics.json, summary.md and PNG charts (both: one folder per pipeline)")
    p.add_argument("--pipeline", choices=["project", "naive", "both"], default="project",
                   help="project (default), naive (the LangChain tutorial baseline), or both side by side")
    p.add_argument("--judge", action="store_true", help="also let the LLM judge each answer sentence against its citations")
    p.add_argument("-k", type=int, default=8, help="passages to retrieve (default 8)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("figures", help="the figures extracted at ingest: filter, search, export to CSV/XLSX")
    p.add_argument("--region", action="append", help="only this place (repeatable; 太原 or 太原市)")
    p.add_argument("--year", type=int, action="append", help="only this report year (repeatable)")
    p.add_argument("--metric", help="words the metric must contain (simplified or traditional, any width)")
    p.add_argument("--similar", metavar="TEXT", help="rank figures by meaning of their metric (embedding model)")
    p.add_argument("--limit", type=int, help="at most this many (default with --similar: 20)")
    p.add_argument("--sort", choices=["reading", "value_desc", "value_asc", "metric", "similarity"])
    p.add_argument("--csv", metavar="FILE", help="write the rows to FILE (UTF-8 with BOM, for Excel)")
    p.add_argument("--xlsx", metavar="FILE", help="write the rows to an Excel file")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--include-removed", action="store_true", help="also the figures marked as wrong extractions")
    p.add_argument("--correct", metavar="ID", help="correct the figure with this id (see --json) with --set-*/--remove")
    p.add_argument("--set-value", type=float, metavar="V", help="with --correct: the right value")
    p.add_argument("--set-unit", metavar="U", help="with --correct: the right unit")
    p.add_argument("--set-metric", metavar="TEXT", help="with --correct: the right metric")
    p.add_argument("--remove", action="store_true", help="with --correct: not a figure of the report (hidden, audited)")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("doctor", help="what works on this machine (CPU, model build and file, a generation, "
                                      "embeddings, index, browser); exit 1 when something needed is broken")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quick", action="store_true", help="skip the one-token generation in the model process")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("serve", help="the Gradio app")
    p.add_argument("--host", default=os.environ.get("RAG_HOST", "127.0.0.1"),
                   help="default RAG_HOST or 127.0.0.1; any other than loopback needs RAG_USERS_FILE")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=cmd_serve)

    from rag.cli.admin import add_admin_commands

    add_admin_commands(sub)  # user, log, backup, restore
    return parser


def build_compare_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag eval compare",
                                     description="The questions that changed between two evaluation runs, and the metric deltas.")
    parser.add_argument("a", metavar="A", help="results.jsonl or a `rag eval --report` folder (before)")
    parser.add_argument("b", metavar="B", help="results.jsonl or a report folder (after)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.set_defaults(func=cmd_eval_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["eval", "compare"]:  # a sub-command of eval; QUESTIONS.jsonl is never "compare"
        args = build_compare_parser().parse_args(argv[2:])
    else:
        args = build_parser().parse_args(argv)
    args.argv = argv
    from rag.errors import RagError

    try:
        settings = Settings.load()
        return args.func(args, settings)
    # RagError: the index, embeddings and baseline errors; ValueError: settings, questions and
    # question sets. Caught by their bases, so that `rag list` does not import the answer stack.
    except BrokenPipeError:  # `rag list | head`: the reader has gone, nothing is wrong
        sys.stdout = open(os.devnull, "w")
        return 0
    except (RagError, SettingsError, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
