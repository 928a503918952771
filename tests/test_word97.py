"""Word 97 .doc files: read with Debian's catdoc, refused by content with a reason.

Every .doc here is written by the test: a .docx made with python-docx, saved as "MS Word 97" by
LibreOffice (`soffice --headless --convert-to doc`, Debian's libreoffice-writer-nogui), the
same binary format Word 97-2003 writes. Bad files are made from those, or from other formats.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from conftest import REPORTS
from rag.ingest.errors import EmptyDocument, MissingTool, UnreadableDocument
from rag.ingest.loaders import SUPPORTED_SUFFIXES, load_document
from rag.ingest.word97 import OLE2_MAGIC, word97_text

TAIYUAN = (REPORTS / "taiyuan-2024.txt").read_text(encoding="utf-8")
RARE = "生僻字：𠮷𪚥，䶮。繁體：臺灣鄉鎮覈實，行政復議。"


def _docx(path: Path, paragraphs: list[str], table: list[list[str]] | None = None,
          after: list[str] = ()) -> Path:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, cells in zip(grid.rows, table):
            for cell, text in zip(row.cells, cells):
                cell.text = text
    # Word always ends a document with a paragraph after a table (catdoc drops a table left last).
    for text in after:
        document.add_paragraph(text)
    document.save(str(path))
    return path


def save_as_word97(sources: list[Path], out: Path) -> list[Path]:
    """Convert files to Word 97 .doc with LibreOffice, all in one soffice run."""
    soffice = shutil.which("soffice")
    assert soffice, "LibreOffice is needed to write .doc files: apt-get install libreoffice-writer-nogui"
    out.mkdir(parents=True, exist_ok=True)
    # A profile of its own: two soffice runs sharing one (another test, a desktop session) collide.
    profile = (out / "lo-profile").resolve().as_uri()
    subprocess.run([soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to",
                    "doc:MS Word 97", "--outdir", str(out), *map(str, sources)],
                   check=True, capture_output=True, timeout=180)
    docs = [out / f"{s.stem}.doc" for s in sources]
    for doc in docs:
        assert doc.read_bytes().startswith(OLE2_MAGIC), doc
    return docs


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("word97")
    sources = [
        _docx(tmp / "太原市2024年法治政府建设年度报告.docx", TAIYUAN.splitlines()),
        _docx(tmp / "table.docx", ["表一 行政复议情况"], table=[["指标", "数量"], ["新收行政复议案件", "1274件"]],
              after=[RARE]),
        _docx(tmp / "short.docx", ["新收行政复议案件1274件。"]),
    ]
    taiyuan, table, short = save_as_word97(sources, tmp / "doc")
    return {"taiyuan": taiyuan, "table": table, "short": short, "docx": sources[0]}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_doc_is_a_supported_suffix():
    assert ".doc" in SUPPORTED_SUFFIXES and ".docx" in SUPPORTED_SUFFIXES


def test_report_text_comes_back_line_for_line(docs):
    document = load_document(docs["taiyuan"])
    assert document.format == "doc"
    # Every paragraph whole on one line (catdoc -w), every character as written.
    assert _lines(document.text) == _lines(TAIYUAN)
    assert "市政府行政复议局全年新收行政复议案件1274件,同比增长204%。" in document.text


def test_tables_rare_and_traditional_characters(docs):
    text = word97_text(docs["table"])
    lines = _lines(text)
    assert lines == ["表一 行政复议情况", "指标\t数量", "新收行政复议案件\t1274件", RARE]  # cells: tabs, as .docx
    assert RARE in lines  # 𠮷 and 𪚥 lie outside the BMP: catdoc writes them as surrogate pairs
    assert "\ufffd" not in text


def test_a_one_line_document_is_read(docs):
    # antiword refuses this one ("the text stream of this file is too small"); catdoc reads it.
    assert _lines(word97_text(docs["short"])) == ["新收行政复议案件1274件。"]


def _rtf() -> bytes:
    return rb"{\rtf1\ansi\deff0 {\fonttbl {\f0 SimSun;}} \f0 \u22826?\u21407?\par}"


@pytest.mark.parametrize("make, words", [
    (lambda d: d["docx"].read_bytes(), ["zip", "rename it to .docx"]),
    (lambda d: _rtf(), ["RTF", "save it as .docx"]),
    (lambda d: "<html><head><meta charset='utf-8'></head><body>太原市</body></html>".encode(),
     ["web page", ".html"]),
    (lambda d: TAIYUAN.encode("gbk", errors="replace"), ["no OLE2 signature", "its first bytes are"]),
    (lambda d: d["taiyuan"].read_bytes()[:4096], ["damaged OLE2 container"]),
    (lambda d: OLE2_MAGIC + bytes(range(256)) * 16, ["damaged OLE2 container"]),
    # An OLE2 file of another kind: the same container with its Word stream renamed.
    (lambda d: d["taiyuan"].read_bytes().replace("WordDocument".encode("utf-16-le"),
                                                 "Workbook\0\0\0\0".encode("utf-16-le")),
     ["no WordDocument stream", "Workbook", "Excel"]),
])
def test_a_file_that_is_not_word97_says_what_it_is(docs, tmp_path, make, words):
    path = tmp_path / "报告.doc"
    path.write_bytes(make(docs))
    with pytest.raises(UnreadableDocument) as info:
        load_document(path)
    message = str(info.value)
    assert all(w in message for w in words), message
    assert ".doc" in message and message.isprintable() and len(message) < 300


def _with_fib(doc: Path, offset: int, value: int, mask: int = 0xFF) -> bytes:
    """A copy of ``doc`` with one byte of its FIB (the WordDocument stream's header) changed."""
    import olefile

    data = bytearray(doc.read_bytes())
    with olefile.OleFileIO(bytes(data)) as ole:
        fib = ole.openstream("WordDocument").read(32)
    at = bytes(data).find(fib)
    assert at > 0
    data[at + offset] = (data[at + offset] & ~mask) | value
    return bytes(data)


@pytest.mark.parametrize("offset, value, mask, words", [
    (11, 0x01, 0x01, ["password"]),  # fEncrypted in the flags word at offset 10, as Word sets it
    (0, 0xDC, 0xFF, ["Word 6/95", "save it as .docx"]),  # wIdent A5DC: Word 6/95
    (0, 0x00, 0xFF, ["does not start with a Word header"]),
])
def test_a_protected_old_or_odd_word_stream_is_named(docs, tmp_path, offset, value, mask, words):
    path = tmp_path / "odd.doc"
    path.write_bytes(_with_fib(docs["taiyuan"], offset, value, mask))
    with pytest.raises(UnreadableDocument) as info:
        load_document(path)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_an_empty_doc_is_empty(tmp_path):
    path = tmp_path / "empty.doc"
    path.write_bytes(b"")
    with pytest.raises(EmptyDocument):
        load_document(path)


def test_without_catdoc_the_message_names_the_debian_package(docs, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no catdoc on it
    with pytest.raises(MissingTool, match="apt-get install catdoc"):
        load_document(docs["taiyuan"])


def test_a_catdoc_that_takes_too_long_is_stopped(docs):
    with pytest.raises(UnreadableDocument, match="catdoc took more than"):
        word97_text(docs["taiyuan"], timeout=1e-6)


def test_a_catdoc_failure_gives_its_message(docs, tmp_path):
    # The bytes given were checked; the file on disk that catdoc reads has been cut short since.
    path = tmp_path / "cut.doc"
    data = docs["taiyuan"].read_bytes()
    path.write_bytes(data[:600])
    with pytest.raises(UnreadableDocument) as info:
        word97_text(path, data)
    assert str(info.value).startswith("catdoc could not read the .doc file: ")
    assert len(str(info.value)) > len("catdoc could not read the .doc file: ")


@pytest.mark.slow
def test_a_doc_report_is_ingested_and_answers_with_a_citation(docs, tmp_path, real_embeddings):
    from rag.answer.answerer import Answerer
    from rag.config import Settings
    from rag.index.store import ReportIndex
    from rag.ingest.pipeline import Ingestor
    from rag.retrieve.hybrid import HybridRetriever

    index = ReportIndex(Settings(index_dir=str(tmp_path / "index"), llm="none"), real_embeddings)
    summary = Ingestor(index, progress=False).run([docs["taiyuan"]])
    (result,) = summary.results
    assert result.status == "ingested", result.reason
    assert (result.region, result.year) == ("太原市", 2024) and result.chunks >= 5
    (report,) = index.reports()
    assert report.source.endswith("太原市2024年法治政府建设年度报告.doc")
    assert any("新收行政复议案件1274件" in c.page_content for c in index.chunks(report.doc_id))

    answer = Answerer(HybridRetriever(index=index, k=8)).run("太原市2024年新收行政复议案件多少件？",
                                                           mode="extractive")
    assert not answer.refused and "1274" in answer.answer
    cited = [c for c in answer.citations if "1274" in c.text]
    assert cited and cited[0].source == report.source and cited[0].region == "太原市"
    assert f"[{cited[0].n}]" in answer.answer
