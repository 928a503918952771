"""Which OCR engine reads scanned reports better: RapidOCR (the one rag.ingest.ocr uses) or
Tesseract (Debian's ``tesseract-ocr`` + ``tesseract-ocr-chi-sim``, run as the ``tesseract``
command when it is installed).

A bundled report is printed as an office prints it and scanned (bench/pdf_corpus.py); each engine
reads the scan's page images, and the script prints, per engine and resolution: character
accuracy (characters of the printed text found in order in the OCR text, on the matching form:
punctuation width and script aside, whitespace ignored), characters the OCR text has in excess,
the report's figures (value and unit, rag.text.figures) recovered, and seconds per page on this
machine (wall clock; other load on the machine counts). Run:

    .venv/bin/python bench/ocr_engines.py [--report mianyang-2024] [--engines rapidocr,tesseract]
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _form(text: str) -> str:
    from rag.text.normalize import matching_form

    return re.sub(r"\s", "", matching_form(text))


def _figures(text: str) -> Counter:
    from rag.text.figures import extract_figures

    return Counter((f.value, f.unit) for f in extract_figures(text))


def _rapidocr(image) -> str:
    from rag.ingest.ocr import read_image

    return "\n".join(line.text for line in read_image(image))


def _tesseract(image) -> str:
    with tempfile.NamedTemporaryFile(suffix=".png") as handle:
        image.save(handle.name)
        run = subprocess.run(["tesseract", handle.name, "-", "-l", "chi_sim", "--psm", "6"],
                             capture_output=True, text=True, check=True)
    return run.stdout


ENGINES = {"rapidocr": _rapidocr, "tesseract": _tesseract}


def main(argv: list[str] | None = None) -> int:
    """Print the comparison table."""
    import pypdfium2

    from bench.pdf_corpus import REPORTS, print_report, scan_pdf
    from rag.ingest.pdf_layout import drop_page_numbers

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", default="mianyang-2024", help="a bundled report's name")
    parser.add_argument("--engines", default="rapidocr,tesseract")
    parser.add_argument("--dpi", default="150,300", help="resolutions the scan's pages are read at")
    parser.add_argument("--rough", action="store_true",
                        help="a poor scan: 1° skew, blurred, grainy, JPEG quality 40")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ocr-engines-"))
    printed = print_report(REPORTS / f"{args.report}.txt", work / "printed.pdf")
    rough = dict(skew=1.0, blur=1.0, noise=40, quality=40) if args.rough else {}
    scan = scan_pdf(work / "printed.pdf", work / "scan.pdf", dpi=300, **rough)
    reference = "\n".join(([printed.title] if printed.title else []) + printed.paragraphs + printed.signature)
    ref_form, ref_figures = _form(reference), _figures(reference)
    print(f"{args.report}: {printed.pages} pages, {len(ref_form)} characters, "
          f"{sum(ref_figures.values())} figures; scanned at 300 dpi, "
          + ("rough: skewed 1°, blurred, grainy, JPEG 40" if args.rough else "skewed 0.3°"))
    print(f"{'engine':<10} {'dpi':>4} {'char acc':>9} {'extra':>6} {'figures':>9} {'s/page':>7}")
    for name in args.engines.split(","):
        if name == "tesseract" and not shutil.which("tesseract"):
            print(f"{name:<10} (not installed: apt-get install tesseract-ocr tesseract-ocr-chi-sim)")
            continue
        read = ENGINES[name]
        for dpi in (int(d) for d in args.dpi.split(",")):
            document = pypdfium2.PdfDocument(str(scan))
            images = [page.render(scale=dpi / 72, grayscale=True).to_pil() for page in document]
            document.close()
            if name == "rapidocr":
                read(images[0].crop((0, 0, 200, 200)))  # load the models outside the timing
            started = time.perf_counter()
            pages = [drop_page_numbers(read(image)) for image in images]
            seconds = (time.perf_counter() - started) / len(images)
            text = "\n".join(pages)
            form = _form(text)
            matcher = difflib.SequenceMatcher(None, ref_form, form, autojunk=False)
            matched = sum(block.size for block in matcher.get_matching_blocks())
            found = sum((ref_figures & _figures(text)).values())
            print(f"{name:<10} {dpi:>4} {matched / len(ref_form):>8.2%} {len(form) - matched:>6} "
                  f"{found:>4}/{sum(ref_figures.values()):<4} {seconds:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
