"""Upload safety: names never become paths, only report types, a size limit, no overwriting;
the content decides, not the suffix (a zip named .pdf, a zip bomb named .docx, a .doc that is
not OLE2, a PDF of absurdly many pages are refused before anything is stored)."""

import io
import os
import threading
import zipfile

import pytest

from conftest import REPORTS
from rag.ingest.uploads import DEFAULT_MAX_PAGES, UploadPolicy, UploadRejected, safe_name


@pytest.mark.parametrize("original, expected", [
    ("taiyuan-2024.txt", "taiyuan-2024.txt"),
    ("太原市 2024年 报告.PDF", "太原市_2024年_报告.pdf"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\system32\\x.docx", "x.docx"),
    ("/abs/path/report.md", "report.md"),
    ("..txt.html", "txt.html"),
    ("report;rm -rf ~.htm", "report_rm_-rf.htm"),
    ("ｔａｉｙｕａｎ．ｔｘｔ", "taiyuan.txt"),  # full-width forms are folded first
    ("a\x00b\nc.txt", "abc.txt"),
    ("@@@.txt", "report.txt"),
    ("太原市2024年报告.DOC", "太原市2024年报告.doc"),  # Word 97, read with catdoc
])
def test_safe_name_keeps_only_a_clean_last_component(original, expected):
    assert safe_name(original) == expected


@pytest.mark.parametrize("original", ["report.exe", "report.xls", "report.wps", "report", ".txt", "../", "", "报告.txt.sh"])
def test_safe_name_refuses_other_types_and_empty_names(original):
    with pytest.raises(UploadRejected) as info:
        safe_name(original)
    assert "支持的格式" in str(info.value) or "没有可用的名称" in str(info.value)


def test_store_copies_into_the_folder_and_never_overwrites(tmp_path):
    policy = UploadPolicy(folder=tmp_path / "uploads")
    source = REPORTS / "taiyuan-2024.txt"
    first = policy.store(source, "../../taiyuan-2024.txt")
    second = policy.store(source, "taiyuan-2024.txt")
    third = policy.store(source, "sub/dir/taiyuan-2024.txt")
    assert [p.name for p in (first, second, third)] == ["taiyuan-2024.txt", "taiyuan-2024-2.txt",
                                                         "taiyuan-2024-3.txt"]
    for p in (first, second, third):
        assert p.parent == (tmp_path / "uploads").resolve()
        assert p.read_bytes() == source.read_bytes()
        assert policy.contains(p)
    assert not policy.contains(source)
    assert sorted(os.listdir(tmp_path)) == ["uploads"]  # nothing written beside the folder


def test_store_refuses_large_empty_and_missing_files(tmp_path):
    policy = UploadPolicy(folder=tmp_path / "uploads", max_bytes=1000)
    big = tmp_path / "big.txt"
    big.write_bytes("报".encode() * 400)
    with pytest.raises(UploadRejected, match="超过上限"):
        policy.store(big)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(UploadRejected, match="空文件"):
        policy.store(empty)
    with pytest.raises(UploadRejected, match="不存在"):
        policy.store(tmp_path / "missing.txt")
    with pytest.raises(UploadRejected, match="不受支持"):
        policy.store(big, "big.exe")
    assert not (tmp_path / "uploads").exists() or not list((tmp_path / "uploads").iterdir())


def test_concurrent_uploads_of_one_name_get_separate_files(tmp_path):
    policy = UploadPolicy(folder=tmp_path / "uploads")
    source = REPORTS / "houma-2023.txt"
    stored, errors = [], []

    def upload():
        try:
            stored.append(policy.store(source, "houma.txt"))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({p.name for p in stored}) == 6


def test_policy_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_UPLOAD_DIR", str(tmp_path / "up"))
    monkeypatch.setenv("RAG_MAX_UPLOAD_MB", "2.5")
    policy = UploadPolicy.from_env()
    assert policy.folder == tmp_path / "up" and policy.max_bytes == int(2.5 * 1024 * 1024)
    monkeypatch.setenv("RAG_MAX_UPLOAD_MB", "lots")
    with pytest.raises(ValueError, match="RAG_MAX_UPLOAD_MB"):
        UploadPolicy.from_env()
    monkeypatch.delenv("RAG_MAX_UPLOAD_MB")
    monkeypatch.delenv("RAG_UPLOAD_DIR")
    assert UploadPolicy.from_env().max_mb == 50


# --- the content decides -------------------------------------------------------------------

TAIYUAN = (REPORTS / "taiyuan-2024.txt").read_text(encoding="utf-8")


def _docx(path, text: str = TAIYUAN):
    import docx

    document = docx.Document()
    for line in text.splitlines():
        document.add_paragraph(line)
    document.save(str(path))
    return path


def _pdf(path, pages: int, text: str = "太原市2024年法治政府建设年度报告"):
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = canvas.Canvas(str(path))
    for n in range(pages):
        pdf.setFont("STSong-Light", 12)
        pdf.drawString(72, 720, f"{text} 第{n + 1}页")
        pdf.showPage()
    pdf.save()
    return path


def _zip_bomb(path, unpacked_mb: int):
    """A .docx-shaped zip whose document.xml inflates to ``unpacked_mb`` MB of zeros (about 1,000:1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as member:
            block = bytes(1 << 20)
            for _ in range(unpacked_mb):
                member.write(block)
    return path


def _zip_of(path, name: str, data: bytes):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture(scope="module")
def bad_uploads(tmp_path_factory) -> dict[str, tuple]:
    """{upload name: (file, words the reason must hold)}: each refused by content."""
    tmp = tmp_path_factory.mktemp("bad-uploads")
    report = _docx(tmp / "report.docx")
    return {
        "太原市报告.pdf": (_zip_of(tmp / "zip.pdf", "report.pdf", b"%PDF-1.7 ..."), ["不是 PDF 文件", "ZIP"]),
        "网页.pdf": (_write(tmp / "page.pdf", b"<html><body>404 Not Found</body></html>"), ["不是 PDF 文件"]),
        "炸弹.docx": (_zip_bomb(tmp / "bomb.docx", 256), ["解压后有 256.0 MB", "疑似压缩炸弹"]),
        "小炸弹.docx": (_zip_bomb(tmp / "small-bomb.docx", 20), ["超过 100 倍", "疑似压缩炸弹"]),
        "压缩包.docx": (_zip_of(tmp / "plain.docx", "report.txt", TAIYUAN.encode()), ["没有 word/document.xml"]),
        "乱码.docx": (_write(tmp / "junk.docx", bytes(range(256)) * 8), ["不是 .docx 文件"]),
        "改名的.doc": (report, ["不是 Word 97 .doc 文件", "ZIP", "改为 .docx"]),
        "文本.doc": (_write(tmp / "text.doc", TAIYUAN.encode("gbk", "replace")), ["没有 OLE2 文件头"]),
        "厚报告.pdf": (_pdf(tmp / "many.pdf", DEFAULT_MAX_PAGES + 1),
                    [f"有 {DEFAULT_MAX_PAGES + 1} 页", f"超过上限 {DEFAULT_MAX_PAGES} 页", "RAG_MAX_PAGES"]),
        "图片.txt": (_write(tmp / "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)), ["PNG 图片"]),
        "压缩.txt": (_write(tmp / "gz.txt", __import__("gzip").compress(TAIYUAN.encode())), ["gzip"]),
    }


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_content_that_is_not_what_the_suffix_says_is_refused_and_not_stored(tmp_path, bad_uploads):
    policy = UploadPolicy(folder=tmp_path / "uploads")
    for name, (path, words) in bad_uploads.items():
        with pytest.raises(UploadRejected) as info:
            policy.store(path, name)
        message = str(info.value)
        assert message.startswith(f"“{name}”") and all(w in message for w in words), message
    assert not (tmp_path / "uploads").exists() or not list((tmp_path / "uploads").iterdir())


def test_real_reports_of_every_binary_type_pass_the_content_checks(tmp_path):
    from test_word97 import save_as_word97

    policy = UploadPolicy(folder=tmp_path / "uploads")
    docx_path = _docx(tmp_path / "太原.docx")
    (doc_path,) = save_as_word97([docx_path], tmp_path / "doc")
    files = {"太原.docx": docx_path, "太原.doc": doc_path, "太原.pdf": _pdf(tmp_path / "ty.pdf", 3),
             "太原.txt": REPORTS / "taiyuan-2024.txt",
             "太原.html": _write(tmp_path / "ty.html", f"<html><body><p>{TAIYUAN}</p></body></html>".encode())}
    stored = {name: policy.store(path, name) for name, path in files.items()}
    for name, path in stored.items():
        assert path.read_bytes() == files[name].read_bytes()


def test_the_page_limit_follows_rag_max_pages(tmp_path, monkeypatch):
    pdf = _pdf(tmp_path / "five.pdf", 5)
    monkeypatch.setenv("RAG_UPLOAD_DIR", str(tmp_path / "up"))
    monkeypatch.setenv("RAG_MAX_PAGES", "4")
    with pytest.raises(UploadRejected, match="有 5 页，超过上限 4 页"):
        UploadPolicy.from_env().store(pdf, "five.pdf")
    monkeypatch.setenv("RAG_MAX_PAGES", "5")
    assert UploadPolicy.from_env().store(pdf, "five.pdf").name == "five.pdf"
    for bad in ("0", "-3", "many", "2.5"):
        monkeypatch.setenv("RAG_MAX_PAGES", bad)
        with pytest.raises(ValueError, match="RAG_MAX_PAGES"):
            UploadPolicy.from_env()


def test_text_that_only_looks_like_a_signature_is_accepted(tmp_path):
    # "MZ…" or "GIF8…" at the start of real text is not a program or an image: no NUL bytes.
    path = _write(tmp_path / "mz.txt", ("MZ市" + TAIYUAN).encode())
    assert UploadPolicy(folder=tmp_path / "up").store(path, "mz.txt").is_file()


@pytest.mark.slow
def test_a_batch_with_bad_files_ingests_the_good_ones(tmp_path, bad_uploads, real_embeddings):
    from rag.config import Settings
    from rag.web.backend import Services
    from rag.web.handlers import UploadHandler
    from test_word97 import save_as_word97

    (doc_path,) = save_as_word97([_docx(tmp_path / "houma.docx", (REPORTS / "houma-2023.txt").read_text("utf-8"))],
                                 tmp_path / "doc")
    services = Services(Settings(index_dir=str(tmp_path / "index"), llm="none"),
                        UploadPolicy(folder=tmp_path / "uploads"), real_embeddings)
    # Gradio hands over temporary files named as the user named them.
    batch = tmp_path / "batch"
    batch.mkdir()
    uploads = {"侯马市2023年报告.doc": doc_path, "taiyuan-2024.txt": REPORTS / "taiyuan-2024.txt",
               **{name: path for name, (path, _) in bad_uploads.items()}}
    for name, path in uploads.items():
        (batch / name).write_bytes(path.read_bytes())
    rows = list(UploadHandler(services).upload([str(batch / name) for name in uploads],
                                               progress=lambda *a, **k: None))[-1]
    by_name = {row[0]: row for row in rows}
    assert by_name["侯马市2023年报告.doc"][1:4] == ["已导入", "侯马市", 2023]
    assert by_name["taiyuan-2024.txt"][1:4] == ["已导入", "太原市", 2024]
    for name, (_, words) in bad_uploads.items():
        assert by_name[name][1] == "已拒绝" and all(w in by_name[name][5] for w in words), by_name[name]
    assert sorted(p.name for p in services.uploads.folder.iterdir()) == ["taiyuan-2024.txt", "侯马市2023年报告.doc"]
    assert sorted((r.region, r.year) for r in services.index.reports()) == [("侯马市", 2023), ("太原市", 2024)]
