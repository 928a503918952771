"""PDFs printed the way offices print reports come back as the reports' own lines.

Each bundled report is printed with bench/pdf_corpus.py (reportlab, A4, a centred larger title,
paragraphs indented and wrapped at the margin, justified or ragged, page numbers in the footer,
some with a running header) into tmp_path, then read by the real loader (pdfplumber's line
positions, rag.ingest.pdf_layout's reflow). Nothing here needs OCR or a model.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.pdf_corpus import STYLES, PrintStyle, print_pdf, print_report, report_parts
from conftest import EXPECTED
from rag.ingest.cleaning import clean
from rag.ingest.loaders import load_document
from rag.ingest.metadata import detect_metadata
from rag.text.normalize import matching_form

REPORTS = Path(__file__).resolve().parents[1] / "data" / "reports"
NAMES = sorted(p.stem for p in REPORTS.glob("*.txt"))


def _printable(line: str) -> str:
    # STSong-Light, reportlab's built-in Chinese font, has no glyph for the middle dot "·" (and
    # em spaces): those characters are not in the PDF at all, so they cannot come back.
    return line.replace("·", "").replace("\u2003", "")


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    """Every bundled report printed in its own office's style: {name: (PrintedReport, pdf path)}."""
    folder = tmp_path_factory.mktemp("printed")
    return {name: (print_report(REPORTS / f"{name}.txt", folder / f"{name}.pdf"), folder / f"{name}.pdf")
            for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_every_printed_paragraph_comes_back_as_one_line(printed, name):
    report, path = printed[name]
    assert report.pages >= 2  # page breaks happen inside paragraphs
    document = load_document(path)
    lines = document.text.split("\n")
    expected = ([report.title] if report.title else []) + report.paragraphs + report.signature
    expected = [_printable(line) for line in expected]
    # Exactly the report's lines, in order: titles, headings, paragraphs and the signature block
    # on lines of their own, every wrapped paragraph joined, no page number or header left.
    assert [re.sub(r"\s", "", line) for line in lines] == [re.sub(r"\s", "", line) for line in expected]
    for number in range(1, report.pages + 1):
        for furniture in (f"- {number} -", f"— {number} —", f"第{number}页", f"第 {number} 页"):
            assert furniture not in document.text
    header = STYLES[name].running_header
    if header:  # taicang's header is its title: printed once as the title, never as a header
        assert lines.count(header) == (1 if header == report.title else 0)


@pytest.mark.parametrize("name", NAMES)
def test_metadata_finds_the_same_title_place_and_year_as_in_the_text_file(printed, name):
    _, path = printed[name]
    txt = clean(load_document(REPORTS / f"{name}.txt"))
    pdf = clean(load_document(path))
    from_txt = detect_metadata(txt.text, REPORTS / f"{name}.txt", txt.info_lines)
    from_pdf = detect_metadata(pdf.text, path, pdf.info_lines)
    region, year, _ = EXPECTED[f"{name}.txt"]
    assert (from_pdf.region, from_pdf.year) == (region, year)
    # shijiazhuang and houma print no title: the one built from place and year, as for the txt;
    # mianyang's title is not mistaken for a section heading, nor shijiazhuang's for a sentence.
    assert from_pdf.title == from_txt.title
    assert from_pdf.evidence["title"] == from_txt.evidence["title"]


def test_title_wrapped_over_two_lines_is_one_line(tmp_path):
    report = report_parts(REPORTS / "mianyang-2024.txt")
    path = tmp_path / "big-title.pdf"
    # 16-point body in 2.54 cm margins: the 22-point title does not fit on one line.
    print_pdf(report, path, PrintStyle(body_size=16, margin=72))
    document = load_document(path)
    first, second = document.text.split("\n")[:2]
    assert first == "绵阳市人民政府2024年度法治政府建设工作情况"
    assert second == report.paragraphs[0]


def test_paragraph_over_a_page_break_is_joined_and_kept_on_its_first_page(printed):
    import pdfplumber

    report, path = printed["taiyuan-2024"]
    paragraphs = [_printable(p) for p in report.paragraphs]
    with pdfplumber.open(path) as pdf:
        tops = [page.extract_text_lines()[0]["text"] for page in pdf.pages]
    # Pages whose first printed line goes on with a paragraph from the page before.
    continued = [n for n, top in enumerate(tops) if n and not any(p.startswith(top) for p in paragraphs)]
    assert continued  # the fixture does break paragraphs over pages

    document = load_document(path)
    starts = document.page_starts
    assert len(starts) == report.pages
    bounds = starts + [len(document.text)]
    for n in continued:
        paragraph, = [p for p in paragraphs if tops[n] in p]
        at = document.text.find(paragraph)
        # Whole, and in the text of the page it starts on (n - 1), which ends before page n's.
        assert bounds[n - 1] <= at and at + len(paragraph) <= bounds[n], paragraph[:30]
    assert all(start in (0, len(document.text)) or document.text[start - 1] == "\n" for start in starts)


def test_ragged_and_justified_lines_and_numbers_moved_down_are_joined(tmp_path):
    # houma is printed ragged (not justified): a number that does not fit at the end of a line
    # goes down whole and leaves the line visibly short; the paragraph still runs on.
    report = report_parts(REPORTS / "houma-2023.txt")
    for justify in (False, True):
        path = tmp_path / f"houma-{justify}.pdf"
        print_pdf(report, path, PrintStyle(body_size=12, margin=54, justify=justify))
        lines = load_document(path).text.split("\n")
        for paragraph in report.paragraphs:
            assert _printable(paragraph) in lines, (justify, paragraph[:30])


def test_unindented_pdf_falls_back_to_sentence_ends(tmp_path):
    # A PDF without paragraph indents (every line at the margin, cut at 30 characters, as
    # tests/test_loaders.py prints): a line that ends a sentence or precedes a heading ends its
    # paragraph, other lines run on.
    from test_loaders import _write_pdf

    paragraphs = ["(一)持续提升行政效能", "对照《山西省6类依申请行政权力事项清单》,逐项梳理确认依申请类政务服务事项,"
                  "规范事项要素,编制办事指南。", "二、存在的不足", "部分领导干部运用法治思维和法治方式深化改革、推动发展的能力还需进一步提高。"]
    path = tmp_path / "flat.pdf"
    _write_pdf(path, paragraphs)
    assert load_document(path).text.split("\n") == paragraphs


def test_text_of_each_page_matches_the_matching_form_of_the_report(printed):
    # Characters are not changed by the layout step: the whole text equals the printed text.
    report, path = printed["taicang-2024"]
    text = load_document(path).text
    printed_text = "".join(([report.title] if report.title else []) + report.paragraphs + report.signature)
    assert matching_form(re.sub(r"\s", "", text)) == matching_form(re.sub(r"\s", "", _printable(printed_text)))
