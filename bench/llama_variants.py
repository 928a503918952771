"""Two builds of llama-cpp-python side by side: prompt reading (first token) and decoding speed.

How the Makefile's choice of the AVX-512 variant was measured (docs/model.md). Build the other
variant into a wheelhouse of its own, then compare::

    make llama-wheel LLAMA_VARIANT=avx2     # and avx512: .wheels/llama-cpp-python-0.3.36-<variant>-<hash>/
    python bench/llama_variants.py .wheels/llama-cpp-python-0.3.36-avx2-*/ .wheels/llama-cpp-python-0.3.36-avx512-*/

Each wheel is unpacked into a temporary folder and run in a child process of its own, with the
bundled model, two threads, the same prompts (a report passage and a question, as the answerer
sends them) and greedy decoding, three rounds; the medians are printed.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, sys, time
import llama_cpp
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=4096, n_threads=2, n_threads_batch=2, verbose=False)
passage = open(sys.argv[2], encoding="utf-8").read()[:900]
prompts = [f"根据以下段落回答问题。\n{passage}\n问题：太原市2024年新收行政复议案件多少件？",
           f"根据以下段落回答问题。\n{passage[300:]}\n问题：请概括这段内容。"]
runs = []
for _ in range(3):
    for prompt in prompts:
        llm.reset()
        started, first, tokens = time.perf_counter(), None, 0
        for chunk in llm.create_chat_completion([{"role": "user", "content": prompt}], max_tokens=64,
                                                temperature=0, stream=True):
            if chunk["choices"][0]["delta"].get("content"):
                first = first if first is not None else time.perf_counter() - started
                tokens += 1
        runs.append((first, tokens, time.perf_counter() - started))
print(json.dumps({"system_info": llama_cpp.llama_print_system_info().decode().strip(), "runs": runs}))
"""


def measure(wheelhouse: Path, model: Path) -> dict:
    wheel = next(wheelhouse.glob("llama_cpp_python-*.whl"))
    with tempfile.TemporaryDirectory(prefix="llama-variant-") as unpacked:
        zipfile.ZipFile(wheel).extractall(unpacked)
        done = subprocess.run([sys.executable, "-c", _CHILD, str(model), str(ROOT / "data/reports/taiyuan-2024.txt")],
                              capture_output=True, text=True, env={"PYTHONPATH": unpacked, "PATH": "/usr/bin:/bin"},
                              timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{wheel}: {done.stderr[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    runs = data["runs"]
    return {"wheel": str(wheel), "system_info": data["system_info"],
            "first_token_s": round(statistics.median(r[0] for r in runs), 2),
            "decode_tokens_per_s": round(statistics.median(r[1] / (r[2] - r[0]) for r in runs), 1)}


def main(argv: list[str]) -> None:
    from rag.models.bundled import model_path

    if len(argv) != 2:
        raise SystemExit(__doc__)
    for folder in argv:
        print(json.dumps(measure(Path(folder), model_path()), ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
