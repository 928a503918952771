"""Detect a report's place, year, title, publisher and date from its text.

Evidence is read in order of trust: the title line, the opening sentences
("2024年,石家庄市委、市政府…"), the signature block at the end ("中共侯马市委 侯马市人民政府 /
2024年1月19日"), the page-information lines the cleaner removed ("来源: 太原市司法局"), and
only then the file name. The year is the year the report is *about*: a report signed in
January 2025 covers 2024, and a page header's publication date is never taken for it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.text.places import Gazetteer, PlaceMention
from rag.text.normalize import arabic_years, detect_script, matching_form
from rag.text.years import DATE_CN, DATE_ISO, YEAR, YEAR_NIAN, years_before_nian

_TITLE_WORDS = re.compile(r"(报告|情况|工作|总结|年度|年报|法治政府|依法行政)")
_SIGNATURE_ORG = re.compile(r"(人民政府|委员会|政府办公室|办公厅|办公室|司法局|市委|县委|区委|省委|法治政府建设.*办公室)$")
_PUBLISHER_FIELD = re.compile(r"(?:信息来源|来源|发文机关)\s*[:：]\s*(\S+)")
# Words that follow a place name when the report speaks about that place itself.
_SELF_REFERENCE = re.compile(r"^(委|人民政府|政府|全面|坚持|深入|认真|积极|深化|持续|紧紧|法治|以|始终|聚焦|在)")


SCAN_CHARS = 200_000  # about ten long reports: place names and years are counted in this much
SIGNATURE_CHARS = 2_000  # the end of a longer text, where the signature block is


@dataclass
class ReportMetadata:
    """A report's descriptive fields. ``None`` means not found."""

    region: str | None = None
    province: str | None = None
    year: int | None = None
    title: str | None = None
    publisher: str | None = None
    date: str | None = None  # ISO date the report was signed or published
    lang: str = "zh-Hans"
    warnings: list[str] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)  # which clue gave which field, for `rag list --json`

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("warnings")
        data.pop("evidence")
        return data


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def _find_title(lines: list[str]) -> str | None:
    """The first short line near the top that reads like a report title."""
    for line in lines[:6]:
        form = matching_form(line)
        if 8 <= len(form) <= 60 and _TITLE_WORDS.search(form) and not form.endswith(("。", "；", ";")):
            if YEAR_NIAN.search(arabic_years(form)) or "报告" in form or "情况" in form:
                return line.strip()
    return None


def _signature(lines: list[str]) -> tuple[list[str], str | None]:
    """The signing organisations and date at the end of the report."""
    orgs: list[str] = []
    date = None
    for line in reversed(lines[-6:]):
        form = arabic_years(matching_form(line))
        if len(form) > 60:
            break
        m = DATE_CN.fullmatch(form.replace(" ", "")) or DATE_ISO.fullmatch(form.replace(" ", ""))
        if m and date is None:
            date = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
            continue
        if re.fullmatch(r"(19|20)\d{2}\s*年.*日", form):  # "2025年 月 日": a blank signing date
            continue
        parts = form.split(" ")
        if all(_SIGNATURE_ORG.search(p) for p in parts):
            orgs = line.strip().split() + orgs
            continue
        if form in ("特此报告。", "特此报告"):
            continue
        break
    return orgs, date


def _narrowest(choice: PlaceMention, mentions: list[PlaceMention]) -> str:
    """A place inside the chosen one, if the text names it too (山西省太原市 -> 太原市)."""
    inside = [m for m in mentions if m.name != choice.name
              and any(p.province == choice.name or p.city == choice.name for p in m.candidates)]
    return _narrowest(inside[0], mentions) if inside else choice.name


def _place_of(mentions: list[PlaceMention], text_form: str, fallback) -> str | None:
    """The place a stretch of text speaks about.

    A name followed by 委/人民政府/全面… ("侯马市委、市政府坚持") is the text speaking of itself;
    otherwise ``fallback`` picks among the names.
    """
    if not mentions:
        return None
    for m in mentions:
        if _SELF_REFERENCE.match(text_form[m.end:m.end + 4]):
            return _narrowest(m, mentions)
    return _narrowest(fallback(mentions), mentions)


# Size: the clues for place, year and title are weighed against each other in one place, so
# that a reviewer sees their precedence in one read.
def detect_metadata(text: str, path: str | Path, info_lines: list[str] | None = None,
                    gazetteer: Gazetteer | None = None) -> ReportMetadata:
    """Detect the metadata of a cleaned report.

    Args:
        text: the cleaned report text.
        path: the file it came from (the last clue, for region and year).
        info_lines: page-information lines the cleaner removed (publisher, publication date).
        gazetteer: place names; the bundled one by default.
    """
    gazetteer = gazetteer or Gazetteer.default()
    # Clues sit in the opening pages and the signature: a huge file is read at both ends only,
    # so detection takes the same bounded time and memory for 50 KB and 50 MB.
    head = text[:SCAN_CHARS]
    meta = ReportMetadata(lang=detect_script(head))
    lines = _lines(head)
    if len(text) > SCAN_CHARS:
        lines += _lines(text[-SIGNATURE_CHARS:])
    form = arabic_years(matching_form(head))
    whole_counts = Counter(m.name for m in gazetteer.find(form))

    title = _find_title(lines)
    title_form = arabic_years(matching_form(title)) if title else ""
    body_lines = [l for l in lines if l.strip() != (title or "").strip()]
    opening = arabic_years(matching_form(" ".join(body_lines[:2])))[:400]
    sig_orgs, sig_date = _signature(lines)
    sig_form = matching_form(" ".join(sig_orgs))
    info_form = arabic_years(matching_form(" ".join(info_lines or [])))
    name_form = arabic_years(matching_form(Path(path).stem))

    # --- region ---
    clues = [("title", title_form), ("opening", opening), ("signature", sig_form),
             ("page info", info_form)]
    first = lambda ms: ms[0]
    most_named = lambda ms: max(ms, key=lambda m: (whole_counts[m.name], -m.start))
    for clue, clue_text in clues:
        # An opening names other places too ("山西省、临汾市、侯马市实施方案"): without a
        # self-reference, take the place the whole report names most.
        fallback = most_named if clue == "opening" else first
        region = _place_of(gazetteer.find(clue_text), clue_text, fallback)
        if region:
            meta.region, meta.evidence["region"] = region, clue
            break
    if meta.region is None and whole_counts:
        # "我市" throughout, the city named elsewhere in the text.
        meta.region, meta.evidence["region"] = whole_counts.most_common(1)[0][0], "body"
    if meta.region is None:
        mentions = gazetteer.find(name_form)
        if mentions:
            meta.region, meta.evidence["region"] = mentions[0].name, "file name"
    if meta.region:
        meta.province = gazetteer.province_of(meta.region)

    # --- year ---
    for clue, clue_text in (("title", title_form), ("opening", opening[:60])):
        m = YEAR_NIAN.search(clue_text)
        if m:
            meta.year, meta.evidence["year"] = int(m.group(1)), clue
            break
    if meta.year is None and sig_date:
        meta.year, meta.evidence["year"] = int(sig_date[:4]) - 1, "signature date"
    if meta.year is None:
        years = Counter(years_before_nian(form))
        if years:
            meta.year, meta.evidence["year"] = years.most_common(1)[0][0], "body"
    if meta.year is None:
        m = YEAR.search(name_form)
        if m:
            meta.year, meta.evidence["year"] = int(m.group(1)), "file name"

    # --- title, publisher, date ---
    if title:
        meta.title, meta.evidence["title"] = title, "text"
    elif meta.region and meta.year:
        meta.title, meta.evidence["title"] = f"{meta.region}{meta.year}年法治政府建设情况", "built"
    else:
        meta.title, meta.evidence["title"] = Path(path).stem, "file name"
    if sig_orgs:
        meta.publisher = " ".join(sig_orgs)
    else:
        m = _PUBLISHER_FIELD.search(" ".join(info_lines or []))
        if m:
            meta.publisher = m.group(1)
    if sig_date:
        meta.date = sig_date
    else:
        m = DATE_ISO.search(info_form)
        if m:
            meta.date = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"

    if meta.region is None:
        meta.warnings.append("place not detected; pass --region or add a .meta.json sidecar")
    if meta.year is None:
        meta.warnings.append("year not detected; pass --year or add a .meta.json sidecar")
    return meta
