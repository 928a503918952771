"""The bundled reports as a government office prints them, as PDFs and as scans; `make eval-pdf`.

``print_report`` lays a report out the way such reports are printed: A4, margins of 1.6-2.5 cm,
the title centred in a larger size (22/16 of the body), body paragraphs indented two characters
and justified to both margins or ragged, numbers and words never split across lines, closing
punctuation never at the start of a line, headings on their own lines, the signature block
right-aligned, page numbers (and on some reports a running header) outside the text block.
Each bundled report has its own variant (``STYLES``: body size 12, 14 or 16 points, page-number
style, header), as different offices print them. ``scan_pdf`` turns a PDF into an image-only
PDF (every page rendered to a grey-scale image, slightly skewed, as a scanner returns it), for
the OCR path.

Run as a script (``make eval-pdf``) it prints the five reports into a folder, ingests them into an
index of their own, runs the project's questions in extractive mode on that index and on an index
of the same reports as text, and prints both accuracies; exit 1 when the PDF index is more than
``--max-gap`` points behind. ``--whole-page`` prints each saved web page whole (breadcrumb, date
line, footers) instead of the cleaned report. The same comparison is a test
(tests/test_pdf_corpus.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
REPORTS = ROOT / "data" / "reports"
QUESTIONS = ROOT / "eval" / "questions" / "project.jsonl"

PAGE_WIDTH, PAGE_HEIGHT = 595.28, 841.89  # A4 in points
MARGIN = 72.0  # 2.54 cm on every side
BODY_SIZE = 16.0  # 三号, the body size of official documents
TITLE_SIZE = 22.0  # 二号
LEADING = 28.0
FOOTER_SIZE = 10.5
FONT = "STSong-Light"  # reportlab's built-in CID font: no font file needed
_CLOSING = set("，。、；：？！）》」』”’%,.;:?!)]")  # never starts a line
_OPENING = set("（《「『“‘([")  # never ends a line
_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.%/\-]*|.", re.S)  # a number or word is never split


@dataclass(frozen=True)
class PrintStyle:
    """How one office prints: page numbers and an optional running header.

    Args:
        page_number: a format with ``{n}`` (this page) and ``{total}``, centred in the footer.
        running_header: a line at the top of every page but the first (``None``: none).
        body_size: the body's font size in points (the title is 22/16 of it).
        margin: the page margins in points (at least 1.5 cm, 42.5 pt).
        justify: justify body lines to both margins (a word processor's default for Chinese);
            otherwise they end ragged, each where the next character or number no longer fits.
    """

    page_number: str = "- {n} -"
    running_header: str | None = None
    body_size: float = BODY_SIZE
    margin: float = MARGIN
    justify: bool = True


# Official documents use 16-point type (三号) in 2.5 cm margins; office printouts of reports often
# use 12-point (小四) in narrower ones, which puts the line ends on other characters.
STYLES = {
    "taiyuan-2024": PrintStyle("- {n} -"),
    "houma-2023": PrintStyle("第{n}页 共{total}页", body_size=12, margin=54, justify=False),
    "taicang-2024": PrintStyle("— {n} —", running_header="太倉市2024年度法治政府建設工作情況報告",
                                 body_size=14, margin=60),
    "mianyang-2024": PrintStyle("{n}", body_size=12, margin=45),
    "shijiazhuang-2024": PrintStyle("第 {n} 页", running_header="石家庄市人民政府办公室", body_size=12,
                                    margin=50, justify=False),
}


@dataclass
class PrintedReport:
    """What was printed: the title (or ``None``), the paragraphs, the signature lines, the lines
    printed above the title, and the number of pages."""

    title: str | None
    paragraphs: list[str]
    signature: list[str]
    above: list[str] = field(default_factory=list)
    pages: int = 0


def report_parts(txt_path: Path, whole_page: bool = False) -> PrintedReport:
    """A bundled report's printable content.

    The title is printed only when the report has one (metadata found it in the text); trailing
    short lines (the signing organisations and date) become the right-aligned signature block.

    Args:
        txt_path: the report.
        whole_page: print every line of the file, the saved web page's breadcrumb, date line and
            footers too (as someone prints the page itself); otherwise only the cleaned report.
    """
    from rag.ingest.chunking import HEADING
    from rag.ingest.cleaning import clean
    from rag.ingest.loaders import load_document
    from rag.ingest.metadata import detect_metadata
    from rag.text.normalize import matching_form

    cleaned = clean(load_document(txt_path))
    source = txt_path.read_text(encoding="utf-8") if whole_page else cleaned.text
    lines = [line.strip() for line in source.split("\n") if line.strip()]
    meta = detect_metadata(cleaned.text, txt_path, cleaned.info_lines)
    title = meta.title if meta.evidence.get("title") == "text" else None
    above: list[str] = []
    if title and title in lines:
        above = lines[:lines.index(title)]  # a saved page's breadcrumb is printed above the title
        lines = [line for line in lines[len(above):] if line != title]
    signature: list[str] = []
    while not whole_page and lines and len(lines[-1]) <= 24 and not lines[-1].endswith("。") \
            and not HEADING.match(matching_form(lines[-1])):
        signature.insert(0, lines.pop())
    return PrintedReport(title, lines, signature, above)


def _width(text: str, size: float) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return stringWidth(text, FONT, size)


def wrap(paragraph: str, width: float, size: float, indent: float) -> list[str]:
    """Break a paragraph into printed lines the way a word processor does for Chinese.

    Args:
        paragraph: one paragraph.
        width: the text block's width in points.
        size: the font size.
        indent: the first line's indent in points.
    """
    lines, current, room = [], "", width - indent
    for token in _RUN.findall(paragraph):
        if current and _width(current + token, size) > room and token[0] not in _CLOSING:
            moved = ""
            while current and current[-1] in _OPENING:  # an opening bracket goes down with its text
                moved, current = current[-1] + moved, current[:-1]
            lines.append(current)
            current, room = moved + token, width
        else:
            current += token
    if current:
        lines.append(current)
    return lines


def _register_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def print_pdf(report: PrintedReport, path: Path, style: PrintStyle = PrintStyle()) -> PrintedReport:
    """Print ``report`` to ``path``; returns it with its page count.

    Args:
        report: what to print.
        path: the PDF file to write.
        style: page numbers and running header.
    """
    from reportlab.pdfgen import canvas

    _register_font()
    margin, body = style.margin, style.body_size
    title_size, leading = body * TITLE_SIZE / BODY_SIZE, body * LEADING / BODY_SIZE
    width = PAGE_WIDTH - 2 * margin
    top, bottom = PAGE_HEIGHT - margin, margin
    # Rows: (text, x, size, justify to width or None).
    rows: list[tuple[str, float, float, float | None]] = []
    for line in report.above:
        rows.append((line, margin, body, None))
    if report.title:
        for line in wrap(report.title, width, title_size, 0):
            rows.append((line, margin + (width - _width(line, title_size)) / 2, title_size, None))
        rows.append(("", margin, body, None))
    indent = 2 * body
    for paragraph in report.paragraphs:
        printed = wrap(paragraph, width, body, indent)
        for i, line in enumerate(printed):
            x = margin + (indent if i == 0 else 0)
            last = i == len(printed) - 1 or not style.justify
            rows.append((line, x, body, None if last else margin + width - x))
    if report.signature:
        rows.append(("", margin, body, None))
        for line in report.signature:
            rows.append((line, margin + width - _width(line, body) - 2 * body, body, None))

    pages: list[list[tuple[str, float, float, float | None, float]]] = [[]]
    y = top
    for text, x, size, justify in rows:
        height = leading * (title_size / body if size == title_size else 1)
        if y - height < bottom:
            pages.append([])
            y = top
        y -= height
        pages[-1].append((text, x, size, justify, y))

    pdf = canvas.Canvas(str(path), pagesize=(PAGE_WIDTH, PAGE_HEIGHT))
    pdf.setTitle("")  # no document title: the title is only what is printed
    total = len(pages)
    for n, page in enumerate(pages, 1):
        if style.running_header and n > 1:
            pdf.setFont(FONT, FOOTER_SIZE)
            pdf.drawCentredString(PAGE_WIDTH / 2, PAGE_HEIGHT - margin / 2, style.running_header)
            pdf.line(margin, PAGE_HEIGHT - margin / 2 - 4, PAGE_WIDTH - margin, PAGE_HEIGHT - margin / 2 - 4)
        for text, x, size, justify, y in page:
            if not text:
                continue
            obj = pdf.beginText(x, y)
            obj.setFont(FONT, size)
            if justify is not None and len(text) > 1:
                # Justified: the spare width spread over the gaps between characters.
                obj.setCharSpace((justify - _width(text, size)) / (len(text) - 1))
            obj.textOut(text)
            pdf.drawText(obj)
        pdf.setFont(FONT, FOOTER_SIZE)
        pdf.drawCentredString(PAGE_WIDTH / 2, margin / 2, style.page_number.format(n=n, total=total))
        pdf.showPage()
    pdf.save()
    report.pages = total
    return report


def print_report(txt_path: Path, pdf_path: Path, style: PrintStyle | None = None,
                 whole_page: bool = False) -> PrintedReport:
    """Print a bundled report (a .txt file) as a PDF.

    Args:
        txt_path: the report.
        pdf_path: the PDF to write.
        style: page numbers and header; the report's own from ``STYLES`` by default.
        whole_page: print the saved page's every line (see ``report_parts``).
    """
    style = style or STYLES.get(txt_path.stem, PrintStyle())
    return print_pdf(report_parts(txt_path, whole_page), pdf_path, style)


def print_corpus(folder: Path, reports: Path = REPORTS, whole_page: bool = False) -> list[Path]:
    """Print every report in ``reports`` as ``folder/NAME.pdf``; returns the PDFs."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for txt in sorted(reports.glob("*.txt")):
        pdf = folder / f"{txt.stem}.pdf"
        print_report(txt, pdf, whole_page=whole_page)
        paths.append(pdf)
    return paths


def scan_pdf(pdf_path: Path, scan_path: Path, dpi: int = 200, skew: float = 0.3, blur: float = 0.0,
             noise: float = 0.0, quality: int = 75) -> Path:
    """An image-only copy of a PDF, as a scanner makes it: no text layer at all.

    Args:
        pdf_path: the PDF to scan.
        scan_path: the image-only PDF to write.
        dpi: the scan resolution.
        skew: degrees the paper lies askew on the glass.
        blur: Gaussian blur radius in pixels (a soft scan; 0: none).
        noise: standard deviation of grey-level noise (dust, paper grain; 0: none).
        quality: JPEG quality of the stored images.
    """
    import pypdfium2
    from PIL import Image, ImageFilter

    document = pypdfium2.PdfDocument(str(pdf_path))
    images = []
    try:
        for page in document:
            image = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            if skew:
                image = image.rotate(skew, fillcolor=255)
            if blur:
                image = image.filter(ImageFilter.GaussianBlur(blur))
            if noise:
                grain = Image.effect_noise(image.size, noise)
                image = Image.blend(image, grain, 0.25).point(lambda v: min(255, v + 32))
            images.append(image)
    finally:
        document.close()
    images[0].save(str(scan_path), "PDF", save_all=True, append_images=images[1:], resolution=dpi,
                   quality=quality)
    return scan_path


def _rag(*args: str, env: dict) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "rag"
    return subprocess.run([str(exe), *args], env={**os.environ, **env}, capture_output=True, text=True)


def eval_index(reports: Path, index_dir: Path, results: Path, questions: Path = QUESTIONS) -> float:
    """Ingest ``reports`` into ``index_dir`` and run ``questions`` extractively; returns the accuracy.

    Raises:
        RuntimeError: ``rag ingest`` or ``rag eval`` failed (their output is in the message).
    """
    env = {"RAG_INDEX_DIR": str(index_dir), "RAG_LLM": "none"}
    ingest = _rag("ingest", str(reports), "-q", env=env)
    if ingest.returncode != 0:
        raise RuntimeError(f"rag ingest {reports} failed:\n{ingest.stderr[-3000:]}")
    run = _rag("eval", str(questions), "--mode", "extractive", "--pipeline", "project",
               "--out", str(results), "-q", env=env)
    if run.returncode != 0:
        raise RuntimeError(f"rag eval on {index_dir} failed:\n{run.stderr[-3000:]}")
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sum(1 for r in rows if r["correct"]) / len(rows)


def main(argv: list[str] | None = None) -> int:
    """`make eval-pdf`: the PDF-only index against the text index on the project's questions."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="folder for the PDFs, indexes and results (default: a temporary one)")
    parser.add_argument("--max-gap", type=float, default=3.0, help="points the PDF index may trail (3)")
    parser.add_argument("--whole-page", action="store_true",
                        help="print every line of the saved pages (breadcrumbs, footers), not just the reports")
    args = parser.parse_args(argv)
    work = Path(args.out or tempfile.mkdtemp(prefix="pdf-eval-"))
    pdfs = work / "pdf"
    print_corpus(pdfs, whole_page=args.whole_page)
    print(f"printed {len(list(pdfs.glob('*.pdf')))} reports to {pdfs}", file=sys.stderr)
    txt = eval_index(REPORTS, work / "index-txt", work / "results-txt.jsonl")
    pdf = eval_index(pdfs, work / "index-pdf", work / "results-pdf.jsonl")
    gap = 100 * (txt - pdf)
    print(f"project questions, extractive: txt index {100 * txt:.1f}%, PDF index {100 * pdf:.1f}% "
          f"(gap {gap:.1f} points; at most {args.max_gap:g})")
    print(f"results: {work}/results-txt.jsonl, {work}/results-pdf.jsonl "
          f"(compare: rag eval compare {work}/results-txt.jsonl {work}/results-pdf.jsonl)")
    return 0 if gap <= args.max_gap else 1


if __name__ == "__main__":
    sys.exit(main())
