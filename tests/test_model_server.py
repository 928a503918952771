"""The bundled model in its own supervised process (rag.models.server): the portable build read
back from the library, a real `llama_cpp.server` child, crashes, hangs and corrupt files that
never take the caller down, shared CLI servers, and no orphans. Real model, real processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, stop_shared_model_servers
from rag.answer.answerer import MODEL_STOPPED_NOTE, Answerer, AnswerResult
from rag.models.bundled import model_path
from rag.config import Settings
from rag.models.build import BuildInfo, cpu_can_run_build, cpu_flags, probe_build
from rag.models.chat import ChatModelUnavailable, LLMTimeout, make_chat_model, stream_within
from rag.models.server import ModelServer, ServerConfig, pid_alive
from rag.retrieve.hybrid import HybridRetriever

MAKEFILE = ROOT / "Makefile"


def _wait_for(condition, seconds: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


# --- the build (fast: no model) ------------------------------------------------------------------


def _makefile_flags() -> dict[str, str]:
    run = subprocess.run(["make", "-s", "llama-flags"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    return dict(re.findall(r"-DGGML_([A-Z0-9_]+)=(ON|OFF)", run.stdout))


def test_the_built_library_reports_the_makefiles_flags_and_no_amx():
    info = probe_build()  # llama_print_system_info() in a child process; it lists what is on
    assert not info.problems(), info.system_info
    flags = _makefile_flags()  # this CPU's variant (avx2, or avx512 on a CPU with it and no AMX)
    assert flags["NATIVE"] == "OFF" and flags["AMX_INT8"] == "OFF" and flags["AVX2"] == "ON", flags
    cpu_features = [name for name in flags if name != "NATIVE"]
    assert {"AVX", "AVX2", "FMA", "F16C", "AVX512", "AMX_TILE", "AMX_INT8", "AMX_BF16"} <= set(cpu_features)
    for name in cpu_features:
        assert info.features.get(name, 0) == int(flags[name] == "ON"), (name, info.system_info)
    assert not any(on for name, on in info.features.items() if name.startswith("AMX")), info.system_info
    if flags["AVX512"] == "ON":
        assert {"avx512f", "avx512bw", "avx512vl"} <= cpu_flags() and "amx_tile" not in cpu_flags()


def test_a_native_build_and_a_build_for_another_cpu_are_recognised():
    native = BuildInfo.parse("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | "
                             "AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 |")
    problems = " ".join(native.problems(cpu={"avx", "avx2", "fma", "f16c"}))
    assert "AMX_INT8" in problems and "AVX512, which this CPU lacks" in problems, problems
    avx2 = BuildInfo.parse("CPU : AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 |")
    assert avx2.problems(cpu={"avx", "avx2", "fma", "f16c", "bmi2"}) == []
    assert "AVX2" in " ".join(BuildInfo.parse("CPU : AVX = 1 | FMA = 1 | F16C = 1 |").problems(cpu=set()))


def test_a_cpu_without_avx2_gets_extractive_answers_with_the_reason(monkeypatch, bundled_index):
    # The CPU is the one thing a test cannot swap: its flags are faked here; the real CPU's
    # path is every other test in this file.
    ok, why = cpu_can_run_build({"sse4_2", "avx"})
    assert not ok and "avx2" in why and "extractive" in why
    import rag.models.build

    monkeypatch.setattr(rag.models.build, "cpu_flags", lambda: {"sse4_2", "avx"})
    with pytest.raises(ChatModelUnavailable, match="avx2"):
        make_chat_model(Settings(llm="local"))
    try:
        make_chat_model(Settings(llm="local"))
    except ChatModelUnavailable as exc:
        reason = str(exc)
    result = Answerer(HybridRetriever(index=bundled_index, k=8), None, unavailable_reason=reason).run(
        "太原市2024年新收行政复议案件多少件？", mode="llm")
    assert result.mode == "extractive" and "1274" in result.answer
    assert any("avx2" in n for n in result.notes), result.notes


# --- the real model process ------------------------------------------------------------------------



@pytest.fixture(scope="module")
def chat_model():
    return make_chat_model(Settings(llm="local"))


@pytest.fixture(scope="module")
def answerer(bundled_index, chat_model):
    return Answerer(HybridRetriever(index=bundled_index, k=8), chat_model)


@pytest.mark.slow
def test_the_model_runs_in_a_child_process_on_loopback(chat_model):
    server = chat_model.server
    url = server.ensure()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url) and server.pid != os.getpid()
    assert server.responds()
    cmdline = open(f"/proc/{server.pid}/cmdline", "rb").read().split(b"\0")
    assert b"rag.models.server" in cmdline and b"--interrupt_requests" in cmdline
    assert "llama_cpp" not in sys.modules  # the native library is never loaded here


@pytest.mark.slow
def test_kill_9_mid_answer_gives_the_extractive_answer_and_the_next_one_is_the_models(answerer):
    server = answerer.chat_model.server
    server.ensure()
    first = server.pid
    result, killed = None, False
    for event in answerer.stream("绵阳市2024年新收行政复议案件多少件？"):
        if isinstance(event, AnswerResult):
            result = event
        elif not killed:  # the model's first piece: it is answering now
            os.kill(first, signal.SIGKILL)
            killed = True
    assert killed and result.mode == "extractive" and "1472" in result.answer, result.notes
    assert MODEL_STOPPED_NOTE in result.notes, result.notes
    assert _wait_for(lambda: server.pid not in (None, first) and server.responds(), 120), server.last_error
    again = answerer.run("太原市2024年新收行政复议案件多少件？")
    assert again.mode == "llm" and "1274" in again.answer, again.notes


@pytest.mark.slow
def test_a_hung_model_process_is_given_up_on_and_restarted(bundled_index, chat_model):
    server = chat_model.server
    server.ensure()
    hung = server.pid
    answerer = Answerer(HybridRetriever(index=bundled_index, k=8), chat_model, llm_timeout=4)
    os.kill(hung, signal.SIGSTOP)  # alive, answers nothing
    try:
        result = answerer.run("石家庄2024年完成了几个审计项目？")
        assert result.mode == "extractive" and "67" in result.answer
        assert any("LLMTimeout" in n for n in result.notes), result.notes
    finally:
        if pid_alive(hung):
            os.kill(hung, signal.SIGCONT)
    assert _wait_for(lambda: not pid_alive(hung), 15)
    assert _wait_for(lambda: server.pid not in (None, hung) and server.responds(), 120), server.last_error
    assert Answerer(HybridRetriever(index=bundled_index, k=8), chat_model).run(
        "石家庄2024年完成了几个审计项目？").mode == "llm"


@pytest.mark.slow
def test_two_askers_at_once_and_an_abandoned_answer_are_queued_never_a_crash(chat_model):
    server = chat_model.server
    server.ensure()
    pid = server.pid
    with pytest.raises(LLMTimeout):  # given up after a moment: the server stops that generation
        for _ in stream_within(lambda: chat_model.stream([("user", "用三百字介绍法治政府建设。")]), 0.5):
            pass
    answers: dict[int, str] = {}

    def ask(n: int) -> None:
        answers[n] = "".join(piece.content for piece in chat_model.stream([("user", f"只回答数字{n}。")]))

    threads = [threading.Thread(target=ask, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert "1" in answers[1] and "2" in answers[2], answers
    assert server.pid == pid  # the same process served all three


_OWNER = r"""
import time
from rag.models.bundled import model_path
from rag.models.server import ModelServer, ServerConfig
server = ModelServer(ServerConfig.from_env(model_path()))
server.ensure()
print(server.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_parent_killed_with_sigkill_leaves_no_model_process_behind():
    parent = subprocess.Popen([sys.executable, "-c", _OWNER], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        child = int(parent.stdout.readline())
        assert pid_alive(child)
        parent.kill()
        parent.wait(timeout=10)
        assert _wait_for(lambda: not pid_alive(child), 5), f"model process {child} outlived its parent"
    finally:
        parent.kill()


@pytest.mark.slow
def test_shared_servers_are_found_by_the_next_run_and_exit_when_idle(tmp_path):
    config = ServerConfig(model=model_path(), idle_s=6)
    first = ModelServer(config, shared=True, state_dir=tmp_path)
    first.ensure()
    state = json.loads(first.state_file.read_text())
    assert state["pid"] == first.pid and state["port"] == first.port
    second = ModelServer(config, shared=True, state_dir=tmp_path)  # another CLI run
    assert second.ensure() == first.url and second.pid == first.pid
    assert _wait_for(lambda: not first.alive(), 30), "an idle shared server kept running"


@pytest.mark.slow
def test_cli_runs_share_one_model_process(bundled_index, tmp_path):
    env = {**os.environ, "RAG_INDEX_DIR": bundled_index.settings.index_dir, "RAG_LLM": "local",
           "RAG_CACHE_DIR": str(tmp_path), "RAG_LLM_IDLE": "20"}
    runs = [subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--mode", "llm", question], capture_output=True,
                           text=True, cwd=ROOT, env=env, timeout=300)
            for question in ("太原市2024年新收行政复议案件多少件？", "绵阳市2024年新收行政复议案件多少件？")]
    try:
        assert all(r.returncode == 0 for r in runs), runs[0].stderr[-1500:] + runs[1].stderr[-1500:]
        assert "1274" in runs[0].stdout and "1472" in runs[1].stdout
        assert "(llm," in runs[0].stdout and "(llm," in runs[1].stdout, runs[1].stdout
        assert "starting the bundled model" in runs[0].stderr
        assert "starting the bundled model" not in runs[1].stderr  # the first run's process answered
    finally:
        stop_shared_model_servers(tmp_path)


@pytest.mark.slow
def test_a_corrupt_model_file_gives_a_clear_error_not_a_crash(tmp_path, bundled_index):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(64 * 1024))
    with pytest.raises(ModelServer.StartError, match=r"stopped while loading broken\.gguf"):
        ModelServer(ServerConfig(model=broken), state_dir=tmp_path).ensure()
    env = {**os.environ, "RAG_INDEX_DIR": bundled_index.settings.index_dir, "RAG_LLM": "local",
           "RAG_LOCAL_MODEL": str(broken), "RAG_CACHE_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--json", "--mode", "llm",
                          "太原市2024年新收行政复议案件多少件？"], capture_output=True, text=True, cwd=ROOT,
                         env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["mode"] == "extractive" and "1274" in result["answer"]
    assert any("broken.gguf" in n and "cannot run" in n for n in result["notes"]), result["notes"]


@pytest.mark.slow
def test_rag_doctor_reports_every_part_and_fails_on_a_broken_model(tmp_path, bundled_index):
    env = {**os.environ, "RAG_INDEX_DIR": bundled_index.settings.index_dir, "RAG_LLM": "local",
           "RAG_CACHE_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "rag.cli", "doctor", "--json"], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads(run.stdout)}
    assert {"cpu", "llama.cpp build", "model file", "model process", "embeddings", "index"} <= set(checks)
    assert all(checks[n]["status"] == "ok" for n in ("cpu", "llama.cpp build", "model file", "model process",
                                                      "embeddings", "index")), checks
    enabled = checks["llama.cpp build"]["detail"].split(" (")[0].split()
    assert "AVX2" in enabled and not any(f.startswith("AMX") for f in enabled), enabled
    assert ("AVX512" in enabled) == (_makefile_flags()["AVX512"] == "ON"), enabled
    assert "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046" in checks["model file"]["detail"]
    assert "5 reports" in checks["index"]["detail"]
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(4096))
    run = subprocess.run([sys.executable, "-m", "rag.cli", "doctor"], capture_output=True, text=True, cwd=ROOT,
                         env={**env, "RAG_LOCAL_MODEL": str(broken)}, timeout=300)
    assert run.returncode == 1, run.stdout
    assert re.search(r"model process\s+FAIL", run.stdout) and "fix model process:" in run.stdout, run.stdout
