"""Uploaded report files: checked, renamed safely and stored under the upload folder.

A browser gives a file name that the user (or anyone) chose. It is never used as a path:
only its last component is kept, reduced to letters, digits, CJK characters, ``-``, ``_`` and
``.``; the suffix must be one of the report formats; the size is checked while copying; and
an existing file is never overwritten (``taiyuan-2024-2.txt`` instead). The stored file always
lies inside the upload folder.

The content decides, not the suffix: before anything is stored, a ``.pdf`` must be a PDF (and
have at most ``RAG_MAX_PAGES`` pages, 2,000 by default), a ``.docx`` a zip holding
``word/document.xml`` that does not unpack to more than four times the size limit (nor, past
16 MB, to more than 100 times its own size: a zip bomb), a ``.doc`` an OLE2 file, and a text
or web page no known binary format. The ingest that follows checks the rest (rag.ingest.word97
the Word stream inside a ``.doc``, the loaders the text).

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
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from rag.ingest.loaders import SUPPORTED_SUFFIXES

DEFAULT_UPLOAD_DIR = "data/uploads"
DEFAULT_MAX_MB = 50.0
DEFAULT_MAX_PAGES = 2000
# A .docx is a zip: its parts may unpack to this many times the upload limit, and to at most
# this many times the file's own size once past a few MB (report XML packs about 10:1).
UNPACKED_LIMIT_FACTOR = 4
MAX_PACKING_RATIO = 100
_RATIO_FLOOR_BYTES = 16 << 20
_MAX_ZIP_ENTRIES = 10_000
# What a file's first bytes say it is, for messages: (signature, name in Chinese).
PDF, ZIP, OLE2, RTF = "PDF 文件", "ZIP 压缩包（如 .docx）", "OLE2 文件（如 Word 97 .doc）", "RTF 文档"
_SIGNATURES = (
    (b"%PDF-", PDF),
    (b"PK\x03\x04", ZIP),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", OLE2),
    (b"{\\rtf", RTF),
    (b"\x89PNG", "PNG 图片"),
    (b"\xff\xd8\xff", "JPEG 图片"),
    (b"GIF8", "GIF 图片"),
    (b"\x1f\x8b", "gzip 压缩包"),
    (b"Rar!", "RAR 压缩包"),
    (b"7z\xbc\xaf", "7z 压缩包"),
    (b"MZ", "Windows 程序"),
    (b"\x7fELF", "Linux 程序"),
)
_TEXT_SUFFIXES = (".txt", ".md", ".html", ".htm")
_MAX_STEM_CHARS = 80
_UNSAFE = re.compile(r"[^0-9A-Za-z_\-.\u3400-\u4dbf\u4e00-\u9fff]+")
_COPY_BLOCK = 1 << 20


class UploadRejected(ValueError):
    """An uploaded file is refused (type, size, name or content); the message says why, in Chinese."""


def _megabytes(n_bytes: float) -> str:
    return f"{n_bytes / 1048576:.1f} MB"


def sniff(head: bytes) -> str | None:
    """What a file is by its first bytes (``"PDF 文件"``, ``"ZIP 压缩包（如 .docx）"``…), or None."""
    return next((what for signature, what in _SIGNATURES if head.startswith(signature)), None)


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
    max_pages: int = DEFAULT_MAX_PAGES

    @classmethod
    def from_env(cls) -> "UploadPolicy":
        """``RAG_UPLOAD_DIR`` (default ``data/uploads``), ``RAG_MAX_UPLOAD_MB`` (default 50) and
        ``RAG_MAX_PAGES`` (default 2000, the most pages a PDF may have).

        Raises:
            ValueError: ``RAG_MAX_UPLOAD_MB`` or ``RAG_MAX_PAGES`` is not a positive number.
        """
        raw = os.environ.get("RAG_MAX_UPLOAD_MB", "") or str(DEFAULT_MAX_MB)
        try:
            mb = float(raw)
        except ValueError:
            raise ValueError(f"RAG_MAX_UPLOAD_MB must be a number of megabytes, got {raw!r}") from None
        if mb <= 0:
            raise ValueError(f"RAG_MAX_UPLOAD_MB must be positive, got {raw!r}")
        raw_pages = os.environ.get("RAG_MAX_PAGES", "") or str(DEFAULT_MAX_PAGES)
        if not raw_pages.strip().isdigit() or int(raw_pages) <= 0:
            raise ValueError(f"RAG_MAX_PAGES must be a positive whole number of pages, got {raw_pages!r}")
        return cls(folder=Path(os.environ.get("RAG_UPLOAD_DIR") or DEFAULT_UPLOAD_DIR),
                   max_bytes=int(mb * 1024 * 1024), max_pages=int(raw_pages))

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
        self.check_content(temp, name)
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

    def check_content(self, path: str | os.PathLike, name: str | None = None) -> None:
        """Refuse a file whose content is not what its suffix says, or that would unpack or
        paginate past the limits; reads only what the check needs.

        Args:
            path: the file to check.
            name: the name to show in messages (default: ``path``'s name); its suffix decides
                what the content must be.

        Raises:
            UploadRejected: the reason, naming the file.
        """
        path = Path(path)
        name = name or path.name
        suffix = Path(name).suffix.lower()
        with path.open("rb") as handle:
            head = handle.read(1024)
        found = sniff(head)
        if suffix == ".pdf":
            # PDF readers accept up to 1 KB of junk before the header (a mail or web-server prefix).
            if found != PDF and (found is not None or b"%PDF-" not in head):
                raise UploadRejected(f"“{name}”不是 PDF 文件（内容是{found or '其他格式'}）；请上传真正的 PDF")
            self._check_pages(path, name)
        elif suffix == ".docx":
            self._check_docx(path, name, found)
        elif suffix == ".doc" and found != OLE2:
            hint = "；请把扩展名改为 .docx" if found == ZIP else ""
            raise UploadRejected(f"“{name}”不是 Word 97 .doc 文件（没有 OLE2 文件头 D0 CF 11 E0 A1 B1 1A E1，"
                                 f"内容是{found or '其他格式'}）{hint}")
        # Binary formats have NUL bytes near the start; text that merely begins with "MZ" has none.
        elif suffix in _TEXT_SUFFIXES and found is not None and (b"\x00" in head or found in (PDF, RTF)):
            raise UploadRejected(f"“{name}”的扩展名是 {suffix}，内容却是{found}；请改成正确的扩展名再上传")

    def _check_pages(self, path: Path, name: str) -> None:
        from pypdf import PdfReader

        try:
            pages = len(PdfReader(path).pages)
        except Exception:  # noqa: BLE001 - a damaged PDF is named by the loader, with its reason
            return
        if pages > self.max_pages:
            raise UploadRejected(f"“{name}”有 {pages} 页，超过上限 {self.max_pages} 页（RAG_MAX_PAGES）")

    def _check_docx(self, path: Path, name: str, found: str | None) -> None:
        try:
            with zipfile.ZipFile(path) as archive:
                entries = archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError):
            raise UploadRejected(f"“{name}”不是 .docx 文件（不是完整的 ZIP 包，内容是{found or '其他格式'}）") from None
        if len(entries) > _MAX_ZIP_ENTRIES:
            raise UploadRejected(f"“{name}”含 {len(entries)} 个部件，不像 Word 文档（上限 {_MAX_ZIP_ENTRIES}）")
        if not any(e.filename == "word/document.xml" for e in entries):
            raise UploadRejected(f"“{name}”是 ZIP 包，但没有 word/document.xml：不是 Word .docx 文档")
        # Declared sizes bound what zipfile inflates (it stops reading at file_size), so they are
        # a safe measure of what python-docx would have to hold.
        unpacked = sum(e.file_size for e in entries)
        packed = max(path.stat().st_size, 1)
        limit = UNPACKED_LIMIT_FACTOR * self.max_bytes
        if unpacked > limit:
            raise UploadRejected(f"“{name}”解压后有 {_megabytes(unpacked)}，超过上限 {_megabytes(limit)}"
                                 f"（上传上限的 {UNPACKED_LIMIT_FACTOR} 倍）：疑似压缩炸弹")
        if unpacked > _RATIO_FLOOR_BYTES and unpacked > MAX_PACKING_RATIO * packed:
            raise UploadRejected(f"“{name}”只有 {_megabytes(packed)}，解压后却有 {_megabytes(unpacked)}"
                                 f"（超过 {MAX_PACKING_RATIO} 倍）：疑似压缩炸弹")

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
