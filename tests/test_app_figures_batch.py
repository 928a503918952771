"""The app's 数字浏览 and 批量提问 tabs, served for real and used through gradio_client.

The explorer over the shared bundled index (read only); corrections over an index of their own
(one report) behind accounts, so that the shared index stays as ingested; batches of questions
answered in extractive mode and downloaded as .xlsx.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import urllib.request
from pathlib import Path

import pytest
from openpyxl import load_workbook

from conftest import REPORTS, free_port, table_rows

QUESTIONS = [
    "太原市2024年新收行政复议案件多少件？",
    "绵阳市2024年办理法律援助案件多少件？",
    "侯马市2023年新收行政复议案件多少件？",
    "太仓市2024年新收行政复议申请多少件？",
    "石家庄市2024年行政机关负责人出庭应诉率是多少？",
    "太原和绵阳2024年新收行政复议案件各多少？",
    "绵阳市2024年行政复议决定纠错率是多少？",
    "太原市2024年办理行政应诉案件多少件？",
    "How many legal aid cases did Mianyang handle in 2024?",
    "成都市2024年新收行政复议案件多少件？",
]


@pytest.fixture
def client(app_server):
    from gradio_client import Client

    url, _ = app_server
    return Client(url, verbose=False)


def test_explorer_filters_links_and_exports_match_the_index(client, app_server, bundled_index, tmp_path):
    from rag.index.figures_query import FigureFilter, query_figures

    url, _ = app_server
    table, count = client.predict(["太原"], ["2024"], "行政复议", "", "reading", api_name="/figures")
    rows = table_rows(table)
    expected = query_figures(bundled_index, FigureFilter(regions=["太原"], years=[2024], metric="行政复议"))
    assert rows and len(rows) == len(expected) and f"共 {len(expected)} 个数字" in count
    assert [r[-1] for r in rows] == [f.id for f in expected]
    assert {r[0] for r in rows} == {"太原市"} and any(r[3] == 1274 and r[4] == "件" for r in rows)
    # Each row links to its passage in the whole-report view, the figure marked.
    link = re.search(r'href="([^"]+)"', rows[0][8]).group(1).replace("&amp;", "&")
    assert link == expected[0].link and link.startswith(f"report/{expected[0].doc_id}?chunk=")
    page = urllib.request.urlopen(url + link.split("#")[0]).read().decode()
    assert page.count('id="cited"') == 1 and "<mark>" in page

    # Sorting and the search by meaning.
    values = [r[3] for r in table_rows(client.predict([], [], "", "", "value_desc", api_name="/figures")[0])]
    assert values == sorted(values, reverse=True) and len(values) == len(query_figures(bundled_index))
    similar, line = client.predict([], [], "", "行政复议案件数量", "similarity", api_name="/figures")
    assert "含义最相近" in line and any("行政复议" in r[2] for r in table_rows(similar)[:3])

    # The CSV holds exactly the filtered figures, as the index has them.
    path = client.predict(["太原"], ["2024"], "行政复议", "", "reading", api_name="/export_figures_csv")
    with open(path, encoding="utf-8-sig") as f:
        exported = list(csv.reader(f))
    assert exported[0][:5] == ["地区", "年份", "指标", "数值", "单位"] and exported[0][-1] == "figure_id"
    assert [r[-1] for r in exported[1:]] == [f.id for f in expected]
    assert [(r[2], float(r[3]), r[4]) for r in exported[1:]] == [(f.metric, f.value, f.unit) for f in expected]
    xlsx = client.predict([], [], "", "", "reading", api_name="/export_figures_xlsx")
    assert load_workbook(xlsx).active.max_row == len(query_figures(bundled_index)) + 1
    records = client.predict(["绵阳"], [2024], "法律援助", "", "", api_name="/figure_rows")
    assert records and all(r["region"] == "绵阳市" and r["id"] and r["link"].startswith("report/") for r in records)


@pytest.fixture(scope="module")
def editors_app(tmp_path_factory, bundled_index, cached_embeddings):
    """One report in an index of its own, the app over it with a reader and an editor; yields
    (url, app, settings, reports folder)."""
    from rag.accounts import Accounts
    from rag.config import Settings
    from rag.index.store import ReportIndex
    from rag.ingest.pipeline import Ingestor
    from rag.ingest.uploads import UploadPolicy
    from rag.web.app import build_app

    tmp = tmp_path_factory.mktemp("figure-fixes")
    users = tmp / "users.toml"
    for name, role in (("rd", "reader"), ("ed", "editor")):
        Accounts(users).add(name, role, f"{name}-password")
    settings = Settings(index_dir=str(tmp / "index"), users_file=str(users))
    (tmp / "reports").mkdir()
    shutil.copy(REPORTS / "taiyuan-2024.txt", tmp / "reports" / "taiyuan-2024.txt")
    summary = Ingestor(ReportIndex(settings, cached_embeddings), progress=False).run([tmp / "reports"])
    assert summary.count("ingested") == 1, summary.line()
    app = build_app(settings, UploadPolicy(folder=tmp / "uploads"), embeddings=cached_embeddings)
    port = free_port()
    app.launch("127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", app, settings, tmp / "reports"
    finally:
        app.close()


def _login(url: str, name: str):
    from gradio_client import Client

    return Client(url, verbose=False, auth=(name, f"{name}-password"))


def test_an_editor_corrects_a_figure_a_reader_cannot(editors_app, cached_embeddings, monkeypatch, capsys):
    from gradio_client.exceptions import AppError

    from rag.cli.main import main
    from rag.index.figures_query import query_figures
    from rag.index.store import ReportIndex
    from rag.ingest.pipeline import Ingestor

    url, app, settings, reports = editors_app
    reader, editor = _login(url, "rd"), _login(url, "ed")
    before = table_rows(reader.predict([], [], "新收行政复议案件", "", "reading", api_name="/figures")[0])
    target = next(r for r in before if r[3] == 1274)
    wrong = next(r for r in before if r[-1] != target[-1])
    all_before = table_rows(reader.predict([], [], "", "", "reading", api_name="/figures")[0])

    # A reader is refused both changes, and nothing changes.
    with pytest.raises(AppError, match="无权更正数字：rd 的角色是「读者」"):
        reader.predict(target[-1], "", 1275, "", api_name="/correct_figure")
    with pytest.raises(AppError, match="无权删除数字"):
        reader.predict(wrong[-1], api_name="/remove_figure")
    assert table_rows(reader.predict([], [], "", "", "reading", api_name="/figures")[0]) == all_before
    assert not any(row[3] in ("更正数字", "删除数字") for row in table_rows(reader.predict(api_name="/audit")))

    # An editor corrects one figure's value and unit and removes another.
    message = editor.predict(target[-1], "", 1275, "宗", api_name="/correct_figure")
    assert "已更正" in message and "1275宗（原文：1274件）" in message
    assert "已标为提取错误" in editor.predict(wrong[-1], api_name="/remove_figure")
    # A removed figure is not brought back by a correction; a value must be a finite number.
    refused = editor.predict(wrong[-1], "", 5, "", api_name="/correct_figure")
    assert "已被标为提取错误并删除" in refused and "不能再更正" in refused
    assert app.services.index.figure(wrong[-1])["fix_status"] == "removed"
    from rag.web.figures_tab import FiguresHandler

    handler = FiguresHandler(app.services)
    for bad in (float("nan"), float("inf"), "-inf"):
        assert "不是有效的数字" in handler.correct(target[-1], "", bad, "")
    export = Path(handler.export("csv", [], [], "", "", "reading"))
    assert export.parent.parent.name.startswith("govreport-exports-")
    after = {r[-1]: r for r in table_rows(reader.predict([], [], "", "", "reading", api_name="/figures")[0])}
    assert len(after) == len(all_before) - 1 and wrong[-1] not in after
    assert after[target[-1]][3] == 1275 and after[target[-1]][4] == "宗"
    assert after[target[-1]][5] == "1275宗"  # the figure as written is the corrected one
    assert after[target[-1]][9].startswith("已更正（原为 1274 件")
    logged = [row for row in table_rows(reader.predict(api_name="/audit")) if row[3] in ("更正数字", "删除数字")]
    assert [(row[1], row[2], row[3]) for row in logged] == [("ed", "web", "删除数字"), ("ed", "web", "更正数字")]
    assert "value: 1274.0 → 1275.0" in logged[1][5] and "unit: 件 → 宗" in logged[1][5]
    entry = next(e for e in app.services.index.audit.entries() if e.action == "correct_figure")
    assert entry.before["figure"] == target[-1] and entry.before["value"] == 1274 and entry.after["value"] == 1275

    # Durable: a new process's index, `rag figures` and the comparisons' figures see it.
    reopened = ReportIndex(settings)
    rows = {r.id: r for r in query_figures(reopened)}
    assert rows[target[-1]].value == 1275 and rows[target[-1]].status == "corrected" and wrong[-1] not in rows
    report = reopened.reports()[0]
    compared = [meta["chunk_id"] + f":{f.start}" for f, meta in reopened.figures(report)]
    assert len(compared) == len(rows)
    monkeypatch.setenv("RAG_INDEX_DIR", settings.index_dir)
    assert main(["figures", "--metric", "新收行政复议案件", "--json"]) == 0
    printed = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert printed[target[-1]]["value"] == 1275 and printed[target[-1]]["unit"] == "宗"

    # The report changed and ingested again: the same figures get their corrections back.
    source = reports / "taiyuan-2024.txt"
    source.write_text(source.read_text(encoding="utf-8") + "\n附：本报告于2025年1月公开。\n", encoding="utf-8")
    summary = Ingestor(ReportIndex(settings, cached_embeddings), progress=False).run([reports])
    assert summary.count("replaced") == 1, summary.line()
    again = query_figures(ReportIndex(settings))
    fixed = [r for r in again if r.status == "corrected"]
    assert len(fixed) == 1 and fixed[0].value == 1275 and fixed[0].text == "1275宗" and target[5] == "1274件"
    assert not any(r.text == wrong[5] and r.sentence == wrong[7] for r in again)


def test_a_batch_of_questions_downloads_as_xlsx(client, tmp_path):
    from gradio_client import handle_file

    listed = tmp_path / "questions.txt"
    listed.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    table, xlsx, message = client.predict(handle_file(str(listed)), "extractive", api_name="/batch")
    assert "已回答 10 题" in message and len(table_rows(table)) == 10
    sheet = load_workbook(xlsx).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("序号", "问题", "回答", "来源", "用时（秒）")
    assert len(rows) == 11 and [r[1] for r in rows[1:]] == QUESTIONS
    assert all(r[2] for r in rows[1:]) and "1274" in rows[1][2]
    assert "《太原市2024年法治政府建设年度报告》 太原市 2024年" in rows[1][3]
    assert sum(1 for r in rows[1:] if r[3] and "[1] 《" in r[3]) >= 8  # the refusal has no sources
    assert all(isinstance(r[4], (int, float)) for r in rows[1:])


def test_a_question_set_is_scored_and_a_bad_line_named(client, tmp_path):
    from gradio_client import handle_file

    good = tmp_path / "set.jsonl"
    good.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in (
        {"id": "a", "question": QUESTIONS[0], "must_include": [["1274"]]},
        {"id": "b", "question": QUESTIONS[9], "answerable": False},
        {"id": "c", "question": QUESTIONS[1], "must_include": [["99999"]]},
    )) + "\n", encoding="utf-8")
    table, xlsx, message = client.predict(handle_file(str(good)), "extractive", api_name="/batch")
    assert "答对 2 题" in message
    rows = list(load_workbook(xlsx).active.iter_rows(values_only=True))
    assert rows[0][-1] == "是否正确" and [r[-1] for r in rows[1:]] == ["正确", "正确", "错误"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "太原市2024年新收行政复议案件多少件？"}\n\n{"question": 太原}\n', encoding="utf-8")
    table, xlsx, message = client.predict(handle_file(str(bad)), "extractive", api_name="/batch")
    assert "第 3 行不是有效的 JSON" in message and xlsx is None and not table_rows(table)
