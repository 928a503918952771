"""The deployment for a team (docs/deployment.md), started for real: one `chroma run` server holding the
index, the LLM on llama.cpp's OpenAI-compatible server, two `python app.py` processes (two
"machines", each with its own RAG_CACHE_DIR) wired by the environment variables the README
lists, and `rag ingest` from a third process. Slow, so one test."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import ExitStack

import pytest

from conftest import NEW_REPORT, ROOT, copy_reports, free_port, server_process, table_rows


pytestmark = pytest.mark.slow


def test_one_chroma_server_two_app_processes_and_an_llm_server(chroma_server, openai_server, bundled_index,
                                                               tmp_path):
    from gradio_client import Client, handle_file

    # As docs/deployment.md step 3: the same settings on every machine.
    team = {**os.environ, "RAG_CHROMA_URL": chroma_server, "RAG_COLLECTION": "team",
            "RAG_LLM": "openai", "RAG_LLM_BASE_URL": openai_server, "RAG_LLM_MODEL": "qwen-bundled",
            "RAG_INDEX_DIR": str(tmp_path / "no-local-index")}

    # Step 4: ingest from another process (its embedding cache is the session's, which
    # ``bundled_index`` filled: nothing is embedded again, the server gets the vectors).
    folder = copy_reports(tmp_path / "reports", {"taiyuan-2024.txt", "mianyang-2024.txt"})
    done = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", "-q", str(folder)], env=team,
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "2 ingested" in done.stdout and "from the embedding cache" in done.stdout, done.stdout

    with ExitStack() as stack:
        apps = []
        for machine in ("a", "b"):
            port = free_port()
            env = {**team, "RAG_CACHE_DIR": str(tmp_path / f"cache-{machine}"), "RAG_PORT": str(port),
                   "RAG_HOST": "127.0.0.1", "RAG_UPLOAD_DIR": str(tmp_path / f"uploads-{machine}")}
            url = f"http://127.0.0.1:{port}/"
            stack.enter_context(server_process([sys.executable, "app.py"], url, tmp_path / f"app-{machine}.log",
                                               start_timeout=180, env=env, cwd=str(ROOT)))
            apps.append(Client(url, verbose=False))
        a, b = apps

        # Both processes answer from the one index; the comparison's numbers are computed.
        for app in (a, b):
            result = app.predict("太原和绵阳2024年新收行政复议案件各多少？", mode="extractive", api_name="/ask")
            assert {r["region"] for r in result["table"]["rows"]} == {"太原市", "绵阳市"}
            assert "1274" in result["answer"] and "1472" in result["answer"]

        # The hosted-model mode is the LLM server.
        result = a.predict("绵阳市2024年新收行政复议案件多少件？", mode="openai", api_name="/ask")
        assert result["mode"] == "llm" and not result.get("error"), result
        assert "1472" in result["answer"] and result["citations"][0]["region"] == "绵阳市"

        # A report uploaded through one process is answered by the other at its next question.
        uploaded = table_rows(b.predict([handle_file(str(NEW_REPORT))], api_name="/upload"))
        assert uploaded[0][:4] == ["datong-2024.txt", "已导入", "大同市", 2024], uploaded
        result = a.predict("大同市2024年新收行政复议案件多少件？", mode="extractive", api_name="/ask")
        assert "688" in result["answer"] and result["citations"][0]["region"] == "大同市"

        # ...and removed through the first, it is gone from the second's library.
        doc_id = next(r for r in table_rows(a.predict(api_name="/library")) if r[0] == "大同市")[-1]
        assert "已删除" in a.predict(doc_id, api_name="/remove")
        assert sorted(r[0] for r in table_rows(b.predict(api_name="/library"))) == ["太原市", "绵阳市"]

    # Each machine keeps its own BM25 snapshot of the server's index, named by the server; no
    # process wrote a local index.
    port = chroma_server.rsplit(":", 1)[1]
    for machine in ("a", "b"):
        assert (tmp_path / f"cache-{machine}" / "keywords" / f"127.0.0.1_{port}" / "team" / "snapshot.pkl").is_file()
    assert not (tmp_path / "no-local-index").exists()
