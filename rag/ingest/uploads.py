"""Uploaded report files: checked, renamed safely and stored under the upload folder.

A browser gives a file name that the user (or anyone) chose. It is never used as a path:
only its last component is kept, reduced to letters, digits, CJK characters, ``-``, ``_`` and
``.``; the suffix must be one of the report formats; the size is checked while copying; and
an existing file is never overwritten (``taiyuan-2024-2.txt`` instead). The stored file always
lies inside the upload folder.

Example:
    >>> policy = UploadPolicy.from_env()
    >>> stored = policy.store("/tmp/gradio/abc/太原 2024.txt", "../../太原 2024.txt")
    >>> stored.name
    '太原_2024.txt'
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from rag.ingest.loaders import SUPPORTED_SUFFIXES

DEFAULT_UPLOAD_DIR = "data/uploads"
DEFAULT_MAX_MB = 50.0
_MAX_STEM_CHARS = 80
_UNSAFE = re.compile(r"[^0-9A-Za-z_\-.\u3400-\u4dbf\u4e00-\u9fff]+")
_COPY_BLOCK = 1 << 20


class UploadRejected(ValueError):
    """An uploaded file is refused (type, size, name or content); the message says why, in Chinese."""


def _megabytes(n_bytes: float) -> str:
    return f"{n_bytes / 1048576:.1f} MB"


def safe_name(original: str, suffixes: tuple[str, ...] = SUPPORTED_SUFFIXES) -> str:
    """A file name safe to create: the last path component of ``original``, cleaned.

    Args:
        original: the name the browser sent (may hold ``../``, ``\\``, control characters).
        suffixes: the allowed suffixes, lower case with the dot.

    Raises:
        UploadRejected: no name is left, or the suffix is not allowed.
    """
    name = unicodedata.normalize("NFKC", original or "")
    # Both separators: a Windows browser may send C:\\Users\\x\\report.txt.
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem.strip(" ."):
        raise UploadRejected(f"文件名“{original}”没有可用的名称或扩展名；支持的格式：{' '.join(suffixes)}")
    suffix = "." + suffix.lower()
    if suffix not in suffixes:
        raise UploadRejected(f"“{name}”的格式 {suffix} 不受支持；支持的格式：{' '.join(suffixes)}")
    stem = _UNSAFE.sub("_", stem).strip("._-")[:_MAX_STEM_CHARS].rstrip("._-")
    return f"{stem or 'report'}{suffix}"


@dataclass(frozen=True)
class UploadPolicy:
    """Where uploads go and what is accepted.

    Args:
        folder: the upload folder (created on first use); nothing is written outside it.
        max_bytes: the largest file accepted.
        suffixes: the accepted file types.
    """

    folder: Path = Path(DEFAULT_UPLOAD_DIR)
    max_bytes: int = int(DEFAULT_MAX_MB * 1024 * 1024)
    suffixes: tuple[str, ...] = field(default=SUPPORTED_SUFFIXES)

    @classmethod
    def from_env(cls) -> "UploadPolicy":
        """``RAG_UPLOAD_DIR`` (default ``data/uploads``) and ``RAG_MAX_UPLOAD_MB`` (default 50).

        Raises:
            ValueError: ``RAG_MAX_UPLOAD_MB`` is not a positive number.
        """
        raw = os.environ.get("RAG_MAX_UPLOAD_MB", "") or str(DEFAULT_MAX_MB)
        try:
            mb = float(raw)
        except ValueError:
            raise ValueError(f"RAG_MAX_UPLOAD_MB must be a number of megabytes, got {raw!r}") from None
        if mb <= 0:
            raise ValueError(f"RAG_MAX_UPLOAD_MB must be positive, got {raw!r}")
        return cls(folder=Path(os.environ.get("RAG_UPLOAD_DIR") or DEFAULT_UPLOAD_DIR),
                   max_bytes=int(mb * 1024 * 1024))

    @property
    def max_mb(self) -> float:
        return self.max_bytes / (1024 * 1024)

    def contains(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` lies inside the upload folder (a stored upload)."""
        try:
            Path(path).resolve().relative_to(self.folder.resolve())
            return True
        except ValueError:
            return False

    def store(self, temp_path: str | os.PathLike, original_name: str | None = None) -> Path:
        """Copy an uploaded temporary file into the upload folder under a safe, unused name.

        Args:
            temp_path: the file the web server saved.
            original_name: the name the user gave (default: ``temp_path``'s name).

        Returns:
            The stored file's path (inside ``folder``).

        Raises:
            UploadRejected: wrong type, too large, empty, or not a file.
        """
        temp = Path(temp_path)
        name = safe_name(original_name or temp.name, self.suffixes)
        if not temp.is_file():
            raise UploadRejected(f"“{name}”：上传的文件不存在或不是普通文件")
        size = temp.stat().st_size
        if size == 0:
            raise UploadRejected(f"“{name}”是空文件")
        if size > self.max_bytes:
            raise UploadRejected(f"“{name}”有 {_megabytes(size)}，超过上限 {_megabytes(self.max_bytes)}"
                                 "（RAG_MAX_UPLOAD_MB）")
        self.folder.mkdir(parents=True, exist_ok=True)
        target, handle = self._create_unique(name)
        written = 0
        try:
            with handle, temp.open("rb") as source:
                while block := source.read(_COPY_BLOCK):
                    written += len(block)
                    if written > self.max_bytes:  # the file grew after the check
                        raise UploadRejected(f"“{name}”超过上限 {_megabytes(self.max_bytes)}")
                    handle.write(block)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    def _create_unique(self, name: str):
        """Create ``name`` (or ``stem-2.ext``, ``stem-3.ext``…) exclusively: never overwrite."""
        folder = self.folder.resolve()
        stem, suffix = name[: -len(Path(name).suffix)], Path(name).suffix
        for n in range(1, 10_000):
            candidate = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
            if candidate.parent != folder:  # cannot happen after safe_name; checked anyway
                raise UploadRejected(f"“{name}”：文件名不安全")
            try:
                # O_EXCL: two uploads of the same name at once still get two files.
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            return candidate, os.fdopen(fd, "wb")
        raise UploadRejected(f"“{name}”：同名文件过多，请改名后再上传")
