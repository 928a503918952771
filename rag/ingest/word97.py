"""Word 97-2003 ``.doc`` files: their text, read by Debian's ``catdoc``.

A ``.doc`` is an OLE2 compound file (it starts with D0 CF 11 E0 A1 B1 1A E1) holding a
``WordDocument`` stream. The container is checked with olefile first, so a file that only bears
the suffix (a .docx, an RTF or a web page saved as ``.doc``, an Excel sheet renamed) gets a
message saying what it is, and a password-protected one says so instead of yielding garbage.

Why catdoc and not antiword: both return the five bundled reports, simplified and traditional,
character for character once saved as Word 97 by LibreOffice; catdoc also reads short documents
(antiword stops with "the text stream of this file is too small to handle") and writes table
cells separated by tabs, as the .docx loader does, where antiword pads them with spaces and
``|``. Both write a character outside the BMP (𠮷, 𪚥: rare characters in names) as two UTF-8
encoded surrogates; they are joined back here.

Example:
    >>> word97_text(Path("太原市2024年法治政府建设年度报告.doc"))[:13]
    '太原市2024年法治政府建设'
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

from rag.ingest.errors import EmptyDocument, MissingTool, UnreadableDocument

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
TOOL = "catdoc"
DEBIAN_PACKAGE = "catdoc"
TIMEOUT_S = 120.0
# The FIB (File Information Block) opens the WordDocument stream: wIdent, nFib, ..., flags.
_WORD_IDENT = 0xA5EC  # Word 97 and later
# Word 6/95 stored text in the system's code page (GBK/Big5 on Chinese Windows), which catdoc
# knows only for single-byte code pages: its Chinese would come out as mojibake.
_WORD6_IDENT = 0xA5DC
_FIB_ENCRYPTED = 0x0100  # fEncrypted, bit 8 of the flags word at offset 10
# A surrogate pair written as two 3-byte UTF-8 sequences (CESU-8), as catdoc does.
_SURROGATE_PAIR = re.compile(rb"\xed[\xa0-\xaf][\x80-\xbf]\xed[\xb0-\xbf][\x80-\xbf]")


def _what_else(data: bytes) -> str:
    """What a file without the OLE2 signature is, in a phrase, with what to do about it."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"pk\x03\x04"):
        return "it is a zip file (a .docx saved with the wrong suffix?): rename it to .docx"
    if head.startswith(b"{\\rtf"):
        return "it is an RTF file: open it in Word or LibreOffice and save it as .docx"
    if head.startswith(b"%pdf-"):
        return "it is a PDF file: rename it to .pdf"
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<meta", b"<head")) or b"<html" in head:
        return "it is a web page (HTML/XML saved as .doc): rename it to .html"
    if head.startswith(b"mime-version:"):
        return "it is a single-file web page (MHT): open it in Word or LibreOffice and save it as .docx"
    return f"its first bytes are {data[:8].hex(' ')}"


def check_word97(data: bytes) -> None:
    """Check that ``data`` is an unencrypted Word document in an OLE2 container.

    Args:
        data: the file's bytes.

    Raises:
        EmptyDocument: no bytes.
        UnreadableDocument: no OLE2 signature, a damaged container, no ``WordDocument`` stream
            (another Office file), Word 6/95, or a password; the message says which.
    """
    import olefile

    if not data.strip():
        raise EmptyDocument("the file is empty")
    if not data.startswith(OLE2_MAGIC):
        raise UnreadableDocument("not a Word 97 .doc file (no OLE2 signature D0 CF 11 E0 A1 B1 1A E1): "
                                 + _what_else(data))
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            if not ole.exists("WordDocument"):
                # Names may start with a control character (\x05SummaryInformation): dropped.
                streams = sorted({"".join(ch for ch in "/".join(entry) if ch.isprintable())
                                  for entry in ole.listdir()})[:6]
                raise UnreadableDocument("an OLE2 file without a Word document inside (no WordDocument stream; "
                                         f"it holds {', '.join(streams) or 'nothing'}): an Excel or "
                                         "PowerPoint file named .doc?")
            fib = ole.openstream("WordDocument").read(12)
    except UnreadableDocument:
        raise
    except Exception as exc:  # olefile raises OSError, struct.error, IndexError… on damaged files
        raise UnreadableDocument(f"not a readable Word 97 .doc file: damaged OLE2 container "
                                 f"({type(exc).__name__}: {exc})") from exc
    ident = int.from_bytes(fib[0:2], "little") if len(fib) >= 2 else 0
    if ident == _WORD6_IDENT:
        raise UnreadableDocument("a Word 6/95 .doc file (before Unicode: its Chinese text cannot be read "
                                 "reliably); open it in Word or LibreOffice and save it as .docx")
    if ident != _WORD_IDENT:
        raise UnreadableDocument(f"not a readable Word 97 .doc file: its WordDocument stream does not start "
                                 f"with a Word header (0x{ident:04X})")
    if len(fib) >= 12 and int.from_bytes(fib[10:12], "little") & _FIB_ENCRYPTED:
        raise UnreadableDocument("the .doc file is protected with a password; save an unprotected copy")


def _join_surrogates(raw: bytes) -> bytes:
    return _SURROGATE_PAIR.sub(
        lambda m: m.group().decode("utf-8", "surrogatepass").encode("utf-16-le", "surrogatepass")
        .decode("utf-16-le").encode("utf-8"), raw)


def word97_text(path: str | Path, data: bytes | None = None, timeout: float = TIMEOUT_S) -> str:
    """The text of a Word 97-2003 ``.doc`` file: a paragraph a line, table cells separated by tabs.

    Args:
        path: the file.
        data: its bytes, when already read (checked before catdoc runs).
        timeout: seconds catdoc may take.

    Raises:
        EmptyDocument: the file is empty.
        UnreadableDocument: not a Word 97 document (with what it is instead), password-protected,
            or catdoc failed (with its message).
        MissingTool: catdoc is not installed; the message names the Debian package.
    """
    path = Path(path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UnreadableDocument(f"cannot read the file: {exc.strerror or exc}") from exc
    check_word97(data)
    tool = shutil.which(TOOL)
    if tool is None:
        raise MissingTool(f"reading .doc files needs {TOOL}, which is not installed; install the Debian "
                          f"package: apt-get install {DEBIAN_PACKAGE} (make install does it when run as root)")
    # -w: a paragraph per line (no wrapping at 72 columns); -d utf-8: the output encoding.
    # The absolute path keeps a name starting with "-" from being read as an option.
    try:
        done = subprocess.run([tool, "-w", "-d", "utf-8", str(path.resolve())], capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise UnreadableDocument(f"{TOOL} took more than {timeout:.0f} s on the .doc file; "
                                 "save it as .docx and try again") from None
    if done.returncode != 0:
        message = "; ".join(line.strip() for line in done.stderr.decode("utf-8", "replace").splitlines()
                            if line.strip()) or f"exit status {done.returncode}"
        raise UnreadableDocument(f"{TOOL} could not read the .doc file: {message[:200]}")
    text = _join_surrogates(done.stdout).decode("utf-8", "replace")
    return text.replace("\f", "\n")  # page breaks
