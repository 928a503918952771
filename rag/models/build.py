"""What the bundled model's runtime was built for, and what this CPU can run.

llama-cpp-python is compiled here from its sdist (the Makefile's ``LLAMA_CMAKE_ARGS``). A native
build on a Xeon with AMX takes llama.cpp's AMX path and segfaults in the first decode, so the
build has explicit flags (AVX2/FMA/F16C; AVX-512 only where the CPU has it; never AMX), and this
module checks that it stayed so and that this CPU can run it.
The library is only ever loaded in a child process: a build this CPU cannot run (no AVX2) dies
there with SIGILL instead of taking the caller down.

``python -m rag.models.build --check`` (run by ``make install``) exits 1 when the installed build
has AMX, lacks AVX2, or needs what this CPU lacks.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# What every build must have, what none may have (AMX crashes in the first decode), and the CPU
# flags each optional feature of a build needs (an AVX-512 build on a CPU without it: SIGILL).
REQUIRED_FEATURES = ("AVX", "AVX2", "FMA", "F16C")
FORBIDDEN_PREFIXES = ("AMX",)
CPU_FLAGS_FOR = {
    "AVX": ("avx",), "AVX2": ("avx2",), "FMA": ("fma",), "F16C": ("f16c",), "BMI2": ("bmi2",),
    "SSSE3": ("ssse3",), "AVX_VNNI": ("avx_vnni",),
    "AVX512": ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"),
    "AVX512_VBMI": ("avx512vbmi",), "AVX512_VNNI": ("avx512_vnni",), "AVX512_BF16": ("avx512_bf16",),
}
FIX_BUILD = "rm -f .venv/.installed && make install"

_PROBE = "import llama_cpp, sys; sys.stdout.write(llama_cpp.llama_print_system_info().decode())"
_FEATURE = re.compile(r"([A-Z][A-Z0-9_]*)\s*=\s*(\d+)")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (``avx2``, ``avx512f``, ``amx_tile`` …); empty when unknown."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_can_run_build(flags: set[str] | None = None) -> tuple[bool, str]:
    """Whether this CPU has what every build needs (AVX2, FMA, F16C), and why not."""
    flags = cpu_flags() if flags is None else flags
    if not flags:  # not Linux, or /proc hidden: let the model process find out (it is isolated)
        return True, "CPU flags unknown"
    missing = [f for f in ("avx2", "fma", "f16c") if f not in flags]
    if missing:
        return False, (f"this CPU lacks {', '.join(missing)}, which the bundled model's build needs; "
                       "answers are extractive (or set RAG_LLM=openai for a hosted model)")
    return True, "CPU has AVX2, FMA and F16C"


@dataclass
class BuildInfo:
    """The features llama.cpp reports for the installed build (``llama_print_system_info``)."""

    system_info: str
    features: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, system_info: str) -> "BuildInfo":
        return cls(system_info.strip(), {name: int(value) for name, value in _FEATURE.findall(system_info)})

    @property
    def enabled(self) -> list[str]:
        return [name for name, on in self.features.items() if on]

    def problems(self, cpu: set[str] | None = None) -> list[str]:
        """What keeps this build from running here (empty: it is fine).

        Args:
            cpu: the CPU's flags (default: this machine's); unknown flags check nothing.
        """
        cpu = cpu_flags() if cpu is None else cpu
        out = []
        amx = [name for name, on in self.features.items() if on and name.startswith(FORBIDDEN_PREFIXES)]
        if amx:
            out.append(f"built with {', '.join(amx)} (a native build; AMX crashes in the first decode)")
        missing = [f for f in REQUIRED_FEATURES if not self.features.get(f)]
        if missing:
            out.append(f"built without {', '.join(missing)}")
        if cpu:
            unsupported = [name for name in self.enabled
                           if any(flag not in cpu for flag in CPU_FLAGS_FOR.get(name, ()))]
            if unsupported:
                out.append(f"built with {', '.join(unsupported)}, which this CPU lacks (built on another machine?)")
        return out


def exit_reason(code: int) -> str:
    """A process's return code in words: ``signal 9`` or ``exit status 1``."""
    return f"signal {-code}" if code < 0 else f"exit status {code}"


class BuildProbeError(RuntimeError):
    """llama-cpp-python could not be loaded to read its build (not installed, or it crashed)."""


def probe_build(timeout: float = 60.0) -> BuildInfo:
    """Load llama-cpp-python in a child process and read the features it was built with.

    Raises:
        BuildProbeError: the library is missing, or loading it crashed (e.g. SIGILL on a CPU
            without AVX2); the message carries the child's last output.
    """
    try:
        run = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BuildProbeError(f"loading llama_cpp took over {timeout:g} s") from exc
    if run.returncode != 0:
        raise BuildProbeError(f"loading llama_cpp failed ({exit_reason(run.returncode)}): {run.stderr.strip()[-400:]}")
    return BuildInfo.parse(run.stdout)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        info = probe_build()
    except BuildProbeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    problems = info.problems()
    if "--check" in argv and problems:
        print(f"error: llama-cpp-python cannot be used here: {'; '.join(problems)}.\n"
              f"  {info.system_info}\n  fix: {FIX_BUILD}", file=sys.stderr)
        return 1
    print(f"llama-cpp-python build: {' '.join(info.enabled)}" + ("" if problems else " (explicit flags, no AMX)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
