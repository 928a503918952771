"""Reading the 批量提问 tab's question files (rag/web/batch.py): formats, encodings, errors by line."""

from __future__ import annotations

import pytest

from rag.web.batch import MAX_BATCH_QUESTIONS, BatchFileError, parse_batch


def test_plain_lines_csv_and_the_contract_format(tmp_path):
    plain = tmp_path / "q.txt"
    plain.write_text("太原市2024年新收行政复议案件多少件？\n\n  那绵阳呢？  \n", encoding="utf-8")
    assert [q.question for q in parse_batch(plain)] == ["太原市2024年新收行政复议案件多少件？", "那绵阳呢？"]

    excel = tmp_path / "q.csv"  # Excel's Chinese CSV: GBK, a header row
    excel.write_bytes("问题,备注\n太原市2024年新收行政复议案件多少件？,甲\n侯马市呢？,乙\n".encode("gb18030"))
    assert [q.question for q in parse_batch(excel)] == ["太原市2024年新收行政复议案件多少件？", "侯马市呢？"]

    contract = tmp_path / "set.jsonl"
    contract.write_text('{"id": "ty-007", "question": "太原市2024年新收行政复议案件多少件？", "must_include": [["1274"]],'
                        ' "regions": "太原市", "unknown": 1}\n{"question": "成都呢？", "answerable": false}\n',
                        encoding="utf-8")
    first, second = parse_batch(contract)
    assert (first.id, first.must_include, first.regions) == ("ty-007", [["1274"]], ["太原市"])
    assert second.answerable is False and second.kind == "unanswerable"


@pytest.mark.parametrize("name, text, message", [
    ("a.jsonl", '{"question": "一"}\n{"question": 二}\n', "第 2 行不是有效的 JSON"),
    ("a.jsonl", '{"question": "一"}\n{"id": "x"}\n', "第 2 行缺少 \"question\""),
    ("a.jsonl", '{"id": "x", "question": "一"}\n{"id": "x", "question": "二"}\n', "第 2 行的 id “x”与前面的问题重复"),
    ("a.jsonl", '{"question": "一", "years": ["去年"]}\n', "第 1 行的 \"years\" 应是年份"),
    ("a.txt", "一\n" + "长" * 1001 + "\n", "第 2 行的问题太长"),
    ("a.txt", "\n \n", "中没有问题"),
    ("a.docx", "x", "不支持的文件类型 .docx"),
])
def test_a_bad_file_is_named_with_its_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BatchFileError, match=message):
        parse_batch(path)


def test_too_many_questions_and_binary_files(tmp_path):
    many = tmp_path / "many.txt"
    many.write_text("\n".join(f"问题{i}？" for i in range(MAX_BATCH_QUESTIONS + 1)), encoding="utf-8")
    with pytest.raises(BatchFileError, match=f"一次最多 {MAX_BATCH_QUESTIONS} 个"):
        parse_batch(many)
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"\xff\xfe\x00\xd8\x00\x00\x81\x30\xff")
    with pytest.raises(BatchFileError, match="不是文本文件"):
        parse_batch(binary)


def test_a_batch_takes_one_of_the_users_question_slots(tmp_path):
    from rag.config import Settings
    from rag.web.access import Access
    from rag.web.batch import BatchHandler

    class Services:  # only what the handler reads before answering
        settings = Settings(index_dir=str(tmp_path / "i"), max_inflight_per_user=1)
        access = Access(settings)
        index = type("Index", (), {"reports": staticmethod(lambda: ["a report"])})()

        def ready(self):
            return self

    services = Services()
    path = tmp_path / "q.txt"
    path.write_text("太原市2024年新收行政复议案件多少件？\n", encoding="utf-8")
    with services.access.question():  # the user's one slot is taken (a chat answer in progress)
        (table, xlsx, message), = BatchHandler(services).run(str(path), "extractive", progress=lambda *a, **k: None)
    assert "正在回答" in message and xlsx is None and table == []


def test_a_batchs_answers_are_written_whatever_their_text(tmp_path):
    """The final write of a batch: formula-like questions and control characters in a report's
    text neither become formulas nor lose the results."""
    from openpyxl import load_workbook

    from rag.export import export_folder, write_table
    from rag.web.batch import BATCH_COLUMNS

    rows = [[1, "=1+1 是多少？", "-（出错：\x0b控制字符\x1b）", "[1] 《报告》\x0c第3页", 0.4],
            [2, "太原市2024年新收行政复议案件多少件？", "1274件[1]", "[1] 《太原市…》", 1.2]]
    folder = export_folder("batch")
    assert folder.parent.name.startswith("govreport-exports-")
    got = list(load_workbook(write_table(folder / "batch.xlsx", BATCH_COLUMNS, rows)).active.iter_rows(values_only=True))
    assert got[1] == (1, "=1+1 是多少？", "-（出错：控制字符）", "[1] 《报告》第3页", 0.4) and got[2] == tuple(rows[1])
