"""The real LLM backends: the bundled Qwen GGUF in its own supervised process (rag.models.server;
its failures are tested in test_model_server.py), the same model behind a hosted-style
OpenAI-compatible server (`python -m llama_cpp.server`) on 127.0.0.1, and what happens when a
server is down. Slow (the model answers on two CPU cores), so few."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, free_port
from rag.answer.answerer import Answerer
from rag.models.bundled import SHA256, is_installed, model_path
from rag.config import Settings
from rag.retrieve.conversation import FollowUpRewriter
from rag.models.chat import ChatModelUnavailable, make_chat_model
from rag.retrieve.hybrid import HybridRetriever

pytestmark = pytest.mark.slow


def test_the_bundled_model_is_installed_and_verified():
    path = model_path()
    assert is_installed(path), "run `make model`"
    assert path.with_suffix(path.suffix + ".sha256").read_text().strip() == SHA256
    assert ROOT not in path.parents  # stored outside the work tree


def test_settings_that_cannot_give_a_model_say_why():
    with pytest.raises(ChatModelUnavailable, match="RAG_LLM=none"):
        make_chat_model(Settings(llm="none"))
    with pytest.raises(ChatModelUnavailable, match="RAG_LLM_BASE_URL"):
        make_chat_model(Settings(llm="openai"))


@pytest.fixture(scope="module")
def retriever(bundled_index):
    return HybridRetriever(index=bundled_index, k=8)


@pytest.fixture(scope="module")
def local_answerer(retriever):
    return Answerer(retriever, make_chat_model(Settings(llm="local")))


def test_bundled_model_streams_a_cited_grounded_answer(local_answerer):
    events = list(local_answerer.stream("太原市2024年新收行政复议案件多少件？"))
    pieces, result = events[:-1], events[-1]
    assert len(pieces) > 3  # token by token
    assert result.mode == "llm" and result.grounded and not result.refused, result.notes
    assert "1274" in result.answer and "[1]" in result.answer
    assert result.citations[0].region == "太原市" and "1274" in result.citations[0].text


def test_bundled_model_compares_two_places_and_answers_english_in_english(local_answerer):
    result = local_answerer.run("太原和绵阳2024年新收行政复议案件各多少？哪个多？")
    assert "1274" in result.answer and "1472" in result.answer and result.grounded
    assert {c.region for c in result.citations} == {"太原市", "绵阳市"}
    english = local_answerer.run("How many legal aid cases did Mianyang handle in 2024?")
    assert "5250" in english.answer and english.citations
    assert sum(ch.isascii() for ch in english.answer) > 0.8 * len(english.answer)


def test_follow_up_questions_rewritten_then_answered(local_answerer):
    rewriter = FollowUpRewriter(lambda: local_answerer.retriever.analyzer)  # as `rag chat` and the app do
    first = local_answerer.run("太原市2024年新收行政复议案件多少件？", mode="extractive")
    standalone = rewriter.run("那绵阳呢？", [first.question])
    assert standalone == "绵阳市2024年新收行政复议案件多少件?"
    second = local_answerer.run(standalone, mode="extractive")
    assert "1472" in second.answer and second.citations[0].region == "绵阳市"
    third = rewriter.run("那出庭应诉率呢？", [first.question, second.question])
    assert third.startswith("绵阳市2024年出庭应诉率")
    assert "100%" in local_answerer.run(third, mode="extractive").answer


def test_openai_compatible_server(retriever, openai_server):
    settings = Settings(llm="openai", llm_base_url=openai_server, llm_model="qwen-bundled")
    answerer = Answerer(retriever, make_chat_model(settings))
    result = answerer.run("绵阳市2024年新收行政复议案件多少件？")
    assert result.mode == "llm" and result.grounded, result.notes
    assert "1472" in result.answer and result.citations[0].region == "绵阳市"


def test_a_server_that_is_down_degrades_to_extractive(retriever):
    settings = Settings(llm="openai", llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_model="x")
    result = Answerer(retriever, make_chat_model(settings)).run("绵阳市2024年新收行政复议案件多少件？")
    assert result.mode == "extractive" and "1472" in result.answer
    assert any(n.startswith("LLM failed (") and "Connection" in n for n in result.notes), result.notes


def test_rag_ask_stream_prints_tokens_then_sources(bundled_index):
    env = {**os.environ, "RAG_INDEX_DIR": bundled_index.settings.index_dir, "RAG_LLM": "local"}
    run = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--stream", "石家庄2024年完成了几个审计项目？"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "67" in run.stdout and "来源：" in run.stdout and "[1] 石家庄市 2024年" in run.stdout
    assert "(llm," in run.stdout
