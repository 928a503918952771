"""Upload safety: names never become paths, only report types, a size limit, no overwriting."""

import os
import threading

import pytest

from conftest import REPORTS
from rag.ingest.uploads import UploadPolicy, UploadRejected, safe_name


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
])
def test_safe_name_keeps_only_a_clean_last_component(original, expected):
    assert safe_name(original) == expected


@pytest.mark.parametrize("original", ["report.exe", "report.doc", "report", ".txt", "../", "", "报告.txt.sh"])
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
