"""The bundled model in a process of its own: a supervised ``llama_cpp.server`` on loopback.

llama.cpp is native code: a crash (a CPU path that segfaults, an out-of-memory kill) must never
take the app or a CLI command down with it. So the model never runs in-process. ``ModelServer``
starts ``python -m rag.models.server`` -- llama-cpp-python's own OpenAI-compatible server
(``llama_cpp.server``) with a lifeline -- on a free 127.0.0.1 port, checks that it answers,
restarts it after it dies, and stops it when its owner goes. The answerer talks to it through
the same ``ChatOpenAI`` client as to a hosted model.

Two lifetimes:

- **owned** (the app, tests): the child reads a pipe from its parent; when the parent exits --
  also by SIGKILL -- the pipe closes and the child exits within a second. No orphans.
- **shared** (``rag ask``/``chat``/``eval``): several short CLI runs share one server so that
  each does not pay the model load. A state file in ``RAG_CACHE_DIR`` names its port and pid;
  every use touches it, and the server exits by itself once it has been idle for
  ``RAG_LLM_IDLE`` seconds (default 300).

Settings (environment): ``RAG_LLM_THREADS`` (default: all cores), ``RAG_LLM_CTX`` (context
tokens, default 4096), ``RAG_LLM_PORT`` (default: a free port), ``RAG_LLM_IDLE``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rag.models.build import FIX_BUILD, cpu_can_run_build, exit_reason

log = logging.getLogger(__name__)

MODEL_ALIAS = "bundled"
HEALTH_PATH = "/openapi.json"  # answered by the event loop, also while the model generates
START_TIMEOUT_S = 180.0
MONITOR_INTERVAL_S = 1.0
RESTARTS_BEFORE_GIVING_UP = 3  # more deaths than this within RESTART_WINDOW_S: a model that cannot run
RESTART_WINDOW_S = 60.0
DEFAULT_IDLE_S = 300.0


def _env_int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ModelServer.ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ModelServer.ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class ServerConfig:
    """How the model process runs.

    Args:
        model: the GGUF file.
        threads: llama.cpp threads (``RAG_LLM_THREADS``, default all cores).
        ctx: context window in tokens (``RAG_LLM_CTX``, default 4096).
        port: the loopback port (``RAG_LLM_PORT``); 0 picks a free one.
        idle_s: a shared server's idle lifetime (``RAG_LLM_IDLE``).
    """

    model: Path
    threads: int = os.cpu_count() or 2
    ctx: int = 4096
    port: int = 0
    idle_s: float = DEFAULT_IDLE_S

    @classmethod
    def from_env(cls, model: Path) -> "ServerConfig":
        """Raises: ModelServer.ConfigError: a setting is not a number in range."""
        return cls(model=Path(model),
                   threads=_env_int("RAG_LLM_THREADS", os.cpu_count() or 2, 1, 256),
                   ctx=_env_int("RAG_LLM_CTX", 4096, 512, 32768),
                   port=_env_int("RAG_LLM_PORT", 0, 0, 65535),
                   idle_s=float(_env_int("RAG_LLM_IDLE", int(DEFAULT_IDLE_S), 5, 7 * 86400)))

    def key(self) -> str:
        """Names a shared server: the same model file (path, size, mtime) and settings."""
        try:
            stat = self.model.stat()
            stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        raw = f"{self.model.resolve()}|{stamp}|{self.threads}|{self.ctx}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def server_args(self, port: int) -> list[str]:
        # interrupt_requests=False: a second request waits for the first instead of cutting its
        # stream short (llama_cpp.server's default interrupts the answer being streamed).
        # logits_all=False: the server's default keeps the logits of every prompt token (for
        # logprobs, never asked for here), which cost 12-14% of the time to the first token.
        return ["--model", str(self.model), "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1",
                "--port", str(port), "--n_ctx", str(self.ctx), "--n_threads", str(self.threads),
                "--n_threads_batch", str(self.threads), "--interrupt_requests", "False",
                "--logits_all", "False"]


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


# Size: one process's whole life (start, lease, health, restart, stop) for both the owned and
# the shared mode; split, the locking between them would be spread over several classes.
class ModelServer:
    """One supervised model process.

    Args:
        config: the model file and llama.cpp settings.
        shared: share the process with other runs through a state file (the CLI), instead of
            owning it (the app, tests).
        state_dir: where a shared server's state file and every server's log live
            (default ``RAG_CACHE_DIR``).

    Example:
        >>> server = ModelServer(ServerConfig.from_env(model_path()))
        >>> server.ensure()          # starts it (seconds), or finds it running
        'http://127.0.0.1:41234/v1'
    """

    class ConfigError(ValueError):
        """A model-process setting has a value that cannot be used."""

    class StartError(RuntimeError):
        """The model process could not be started or did not load the model."""

    class Stopped(RuntimeError):
        """The model process stopped (crashed, was killed) while it was answering."""

    def __init__(self, config: ServerConfig, *, shared: bool = False, state_dir: Path | str | None = None,
                 announce=None):
        self.config = config
        self.announce = announce  # called with a line when a start begins (the CLI prints it)
        self._warm_up: list[dict] | None = None  # see warm_up_with
        self.shared = shared
        base = state_dir or os.environ.get("RAG_CACHE_DIR") or "~/.cache/govreport-rag"
        self.state_dir = Path(base).expanduser()
        self.port: int | None = None
        self.pid: int | None = None
        self.last_error: str | None = None
        self.restarts = 0
        self._proc: subprocess.Popen | None = None
        self._lock = threading.RLock()
        self._stopping = False
        self._recent_deaths: list[float] = []
        self._touched = 0.0
        self._monitor: threading.Thread | None = None

    # --- where things are ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL (``…/v1``) of the running process."""
        if self.port is None:
            raise ModelServer.StartError("the model process is not running")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def state_file(self) -> Path:
        return self.state_dir / f"model-server-{self.config.key()}.json"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / f"model-server-{self.config.key()}.log"

    # --- health ------------------------------------------------------------------------------

    def alive(self) -> bool:
        """Whether the process is running (not whether it answers)."""
        if self._proc is not None:
            return self._proc.poll() is None
        return self.pid is not None and pid_alive(self.pid)

    def responds(self, timeout: float = 3.0, port: int | None = None) -> bool:
        """Whether the server answers HTTP now (its event loop runs, also during a generation)."""
        port = port or self.port
        if port is None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=timeout) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    # --- life cycle ----------------------------------------------------------------------------

    def ensure(self) -> str:
        """The running server's URL, starting (or restarting) it first when needed.

        Raises:
            ModelServer.StartError: it could not start; the message has the reason and the log.
        """
        with self._lock:
            if self.alive() and self.port is not None:
                self._touch()
                return self.url
            if self.shared:
                with self._state_lock():
                    if self._adopt():
                        return self.url
                    self._start()
            else:
                self._start()
                self._watch()
            return self.url

    def warm_up_with(self, messages: list[dict]) -> None:
        """Have the process read ``messages`` (OpenAI chat messages) each time it starts -- now,
        if it runs -- before any caller waiting in ``ensure`` gets the URL. llama.cpp keeps the
        longest common prefix of consecutive prompts, so with the answer prompt's fixed part read
        here the first question after a start reads only its own part. Errors are logged.
        Handing over the same messages again reads nothing again (the entry point, ``serve`` and
        the app's preload all hand them over)."""
        with self._lock:
            if messages == self._warm_up:
                return
            self._warm_up = messages
            if self.alive() and self.port is not None:
                self._ready()

    def _ready(self) -> None:
        if not self._warm_up or self.port is None:
            return
        body = json.dumps({"model": MODEL_ALIAS, "messages": self._warm_up, "max_tokens": 1,
                           "temperature": 0}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()
            log.info("bundled model: read the prompt's fixed part in %.1f s", time.monotonic() - started)
        except (urllib.error.URLError, OSError, ValueError) as exc:  # an optimisation only
            log.warning("bundled model: warm-up failed: %s", exc)

    def start_in_background(self) -> threading.Thread:
        """Start the process without waiting (the app at start-up); errors land in ``last_error``."""
        def run() -> None:
            try:
                self.ensure()
            except ModelServer.StartError as exc:
                log.warning("bundled model: %s", exc)

        thread = threading.Thread(target=run, name="model-server-start", daemon=True)
        thread.start()
        return thread

    def restart(self, reason: str) -> None:
        """Kill the process (hung, or answering nothing) and start it again in the background."""
        log.warning("bundled model: restarting (%s)", reason)
        with self._lock:
            self._kill()
            self.restarts += 1
        self.start_in_background()

    def stop(self) -> None:
        """Stop the process (an owned one; a shared one too when this run started it)."""
        with self._lock:
            self._stopping = True
            self._kill()
            if self.shared:
                with contextlib.suppress(OSError):
                    self.state_file.unlink()

    def _start(self) -> None:
        ok, why = cpu_can_run_build()
        if not ok:
            self.last_error = why
            raise ModelServer.StartError(why)
        if not self.config.model.is_file():
            self.last_error = f"model file {self.config.model} is missing (run `make model`)"
            raise ModelServer.StartError(self.last_error)
        self._kill()
        port = self.config.port or free_port()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        lifeline = ["--lease", str(self.state_file), "--idle", f"{self.config.idle_s:g}"] if self.shared \
            else ["--lifeline"]
        command = [sys.executable, "-m", "rag.models.server", *lifeline, "--", *self.config.server_args(port)]
        logfile = self.log_file.open("ab")
        logfile.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(command)}\n".encode())
        logfile.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            # Owned: the child's stdin is our pipe, its lifeline. Shared: its own session, so that
            # the terminal's Ctrl-C on one `rag ask` does not stop the server others use.
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL if self.shared else subprocess.PIPE,
                                    stdout=logfile, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=self.shared)
        finally:
            logfile.close()
        self._proc, self.port, self.pid = proc, port, proc.pid
        if self.announce:
            self.announce(f"starting the bundled model ({self.config.model.name}, pid {proc.pid}, "
                          f"127.0.0.1:{port})…")
        if self.shared:  # before the child's lease check first looks for it
            self._write_state()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                code = proc.returncode
                reason = exit_reason(code)
                if code == -signal.SIGILL:
                    reason += (", an instruction this CPU lacks: the llama.cpp build is for another "
                               f"CPU; rebuild with `{FIX_BUILD}`")
                self.last_error = (f"the model process stopped while loading {self.config.model.name} "
                                   f"({reason}): {self._log_tail()}")
                self._proc = self.port = self.pid = None
                if self.shared:
                    with contextlib.suppress(OSError):
                        self.state_file.unlink()
                raise ModelServer.StartError(self.last_error)
            self._touch()  # loading is not idleness: the lease runs from when it serves
            if self.responds(timeout=1.0, port=port):
                self.last_error = None
                log.info("bundled model: serving on 127.0.0.1:%d (pid %d)", port, proc.pid)
                self._ready()
                return
            time.sleep(0.2)
        self._kill()
        self.last_error = f"the model process did not answer within {START_TIMEOUT_S:g} s: {self._log_tail()}"
        raise ModelServer.StartError(self.last_error)

    def _kill(self) -> None:
        proc, pid = self._proc, self.pid
        self._proc = self.port = self.pid = None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            if proc.stdin:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        elif pid is not None and pid_alive(pid):  # an adopted shared server
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _log_tail(self, lines: int = 6) -> str:
        try:
            text = self.log_file.read_text(errors="replace").rsplit("--- ", 1)[-1]
        except OSError:
            return "(no log)"
        tail = [line for line in text.splitlines()[1:] if line.strip()][-lines:]
        return " | ".join(tail)[-800:] + f" (log: {self.log_file})"

    # --- an owned process: restarted when it dies ------------------------------------------

    def _watch(self) -> None:
        if self._monitor is None or not self._monitor.is_alive():
            self._monitor = threading.Thread(target=self._monitor_loop, name="model-server-monitor", daemon=True)
            self._monitor.start()

    def _monitor_loop(self) -> None:
        while not self._stopping:
            time.sleep(MONITOR_INTERVAL_S)
            with self._lock:
                proc = self._proc
                if self._stopping or proc is None or proc.poll() is None:
                    continue
                code = proc.returncode
                now = time.monotonic()
                self._recent_deaths = [t for t in self._recent_deaths if now - t < RESTART_WINDOW_S] + [now]
                log.warning("bundled model: the process died (%s); restarting", exit_reason(code))
                self._proc = self.port = self.pid = None
                if len(self._recent_deaths) > RESTARTS_BEFORE_GIVING_UP:
                    self.last_error = (f"the model process died {len(self._recent_deaths)} times in a row; "
                                       f"not restarting until asked: {self._log_tail()}")
                    log.error("bundled model: %s", self.last_error)
                    self._recent_deaths.clear()
                    continue
                self.restarts += 1
                try:
                    self._start()
                except ModelServer.StartError as exc:
                    log.error("bundled model: restart failed: %s", exc)

    # --- a shared process: the state file -----------------------------------------------------

    @contextlib.contextmanager
    def _state_lock(self):
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / f"model-server-{self.config.key()}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # two CLI runs at once start one server
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _adopt(self) -> bool:
        try:
            state = json.loads(self.state_file.read_text())
            pid, port = int(state["pid"]), int(state["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if state.get("key") != self.config.key() or not pid_alive(pid) or not self.responds(port=port):
            return False
        self._proc, self.pid, self.port = None, pid, port
        self._touch()
        return True

    def _write_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": self.pid, "port": self.port, "key": self.config.key(),
                                   "model": str(self.config.model), "threads": self.config.threads,
                                   "ctx": self.config.ctx, "started": time.time()}))
        tmp.replace(self.state_file)

    def touch(self) -> None:
        """Renew a shared server's lease (the CLI calls this as an answer streams in); at most
        once a second."""
        now = time.monotonic()
        if self.shared and now - self._touched > 1.0:
            self._touched = now
            with contextlib.suppress(OSError):
                os.utime(self.state_file)

    def _touch(self) -> None:
        self._touched = 0.0
        self.touch()


# --- the process-wide servers ------------------------------------------------------------------------

_SERVERS: dict = {}
_SERVERS_LOCK = threading.Lock()


def bundled_server(shared: bool = False) -> ModelServer:
    """The process-wide ``ModelServer`` of the bundled model (one per model file and settings),
    not started yet: the first answer, ``start_in_background`` or ``prestart_bundled_model`` starts it.

    Raises:
        ModelServer.ConfigError: a RAG_LLM_* setting is out of range.
    """
    from rag.models.bundled import model_path

    config = ServerConfig.from_env(model_path())
    with _SERVERS_LOCK:
        key = (config, shared)
        if key not in _SERVERS:
            announce = (lambda line: print(line, file=sys.stderr, flush=True)) if shared else None
            _SERVERS[key] = ModelServer(config, shared=shared, announce=announce)
        return _SERVERS[key]


def prestart_bundled_model(warm_up: list[dict] | None = None) -> ModelServer | None:
    """Start the bundled model's process now, in the background, when the settings ask for it.

    ``python app.py`` and ``rag serve`` call this first thing (this module imports nothing
    heavy), so the model loads while the app imports, opens the index and builds its page.
    Problems are left to the first answer, which names them.

    Args:
        warm_up: messages for the process to read as soon as it serves (``warm_up_with``).
    """
    from rag.config import Settings
    from rag.models.bundled import is_usable

    try:
        if Settings.load().llm != "local" or not is_usable():
            return None
        server = bundled_server()
    except Exception:  # a bad setting: the app names it where the mode is offered
        return None
    if warm_up:
        server.warm_up_with(warm_up)
    server.start_in_background()
    return server


# --- the child: llama_cpp.server with a lifeline --------------------------------------------------


def _exit_when_parent_goes() -> None:
    """Owned: stdin is the parent's pipe; end of file means the parent is gone (even SIGKILLed)."""
    with contextlib.suppress(Exception):
        while sys.stdin.buffer.read(4096):
            pass
    os._exit(0)


def _exit_when_idle(lease: Path, idle_s: float) -> None:
    """Shared: exit once nobody has used the server for ``idle_s``, or the state file names
    another process (replaced) or is gone (stopped)."""
    while True:
        time.sleep(min(2.0, idle_s / 4))
        try:
            owner = json.loads(lease.read_text()).get("pid")
            idle = time.time() - lease.stat().st_mtime
        except (OSError, ValueError):
            owner, idle = None, 0.0
            if not lease.exists():
                os._exit(0)
        if (owner is not None and owner != os.getpid()) or idle > idle_s:
            os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """``python -m rag.models.server (--lifeline | --lease FILE --idle S) -- LLAMA_CPP_SERVER_ARGS``."""
    import argparse
    import runpy

    argv = sys.argv[1:] if argv is None else argv
    ours, theirs = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(prog="python -m rag.models.server")
    parser.add_argument("--lifeline", action="store_true", help="exit when stdin closes (the parent is gone)")
    parser.add_argument("--lease", type=Path, help="a shared server's state file")
    parser.add_argument("--idle", type=float, default=DEFAULT_IDLE_S)
    args = parser.parse_args(ours)
    if args.lifeline:
        threading.Thread(target=_exit_when_parent_goes, daemon=True, name="lifeline").start()
    elif args.lease:
        threading.Thread(target=_exit_when_idle, args=(args.lease, args.idle), daemon=True, name="lease").start()
    sys.argv = ["llama_cpp.server", *theirs]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
