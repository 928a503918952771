"""Figure queries: the figures extracted at ingest, filtered, searched and ranked for browsing.

``rag figures`` and the app's 数字浏览 tab both call ``query_figures``; each returned
``FigureRow`` names the report (``doc_id``) and the chunk (``chunk_id``, ``chunk_index``) it
comes from, and the figure's offsets in that chunk, so a row links to the passage.

Example:
    >>> rows = query_figures(index, FigureFilter(regions=["太原"], metric="行政复议"))
    >>> [(r.region, r.metric, r.value, r.unit) for r in rows][:1]
    [('太原市', '市政府行政复议局全年新收行政复议案件', 1274.0, '件')]
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from rag.index.store import get_all
from rag.text.figures import Figure
from rag.text.normalize import matching_form
from rag.text.places import Gazetteer

if TYPE_CHECKING:
    from rag.index.store import ReportIndex

SIMILAR_LIMIT = 20  # figures a --similar search returns when no limit is given
SORTS = ("reading", "value_desc", "value_asc", "metric", "similarity")


@dataclass
class FigureFilter:
    """What to show.

    Args:
        regions: places (user spellings: 太原, 太倉市); empty: every place.
        years: report years; empty: every year.
        metric: words the metric must contain (all of them, space separated), compared in the
            matching form (simplified, half-width, lower case).
        similar: a phrase to rank figures by meaning (the metric-phrase vectors of the figures
            collection, the query embedded by the same model).
        limit: at most this many rows (``similar`` defaults to ``SIMILAR_LIMIT``).
        sort: ``reading`` (place, year, reading order), ``value_desc``, ``value_asc``,
            ``metric`` or ``similarity`` (the default with ``similar``).
        include_removed: also the figures a user marked as wrong extractions (``status`` removed).
    """

    regions: list[str] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    metric: str = ""
    similar: str = ""
    limit: int | None = None
    sort: str = ""
    include_removed: bool = False


@dataclass
class FigureRow:
    """One figure with its report and passage.

    Attributes:
        similarity: the cosine similarity to ``FigureFilter.similar`` (None without it).
        id: the figure's record id (what ``ReportIndex.correct_figure`` takes).
        status: '' (as extracted), ``corrected`` or ``removed`` (a user's correction).
        original: what the extractor read, for a corrected figure (``1274 件 新收…案件``).
    """

    region: str | None
    year: int | None
    metric: str
    value: float
    unit: str
    text: str
    qualifiers: str
    change: str
    approximate: bool
    sentence: str
    clause: str
    doc_id: str
    chunk_id: str
    chunk_index: int
    start: int
    end: int
    title: str | None = None
    source: str = ""
    similarity: float | None = None
    id: str = ""
    status: str = ""
    original: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def link(self) -> str:
        """The whole-report page scrolled to the passage, the figure marked (``rag.web.report_route``)."""
        return f"report/{self.doc_id}?chunk={self.chunk_index}&hl={self.start}-{self.end}#cited"


def resolve_places(regions: list[str] | None) -> list[str]:
    """Official names for user spellings (太原 -> 太原市, 太倉 -> 太仓市); unknown names kept."""
    gazetteer = Gazetteer.default()
    names: list[str] = []
    for r in regions or []:
        if not str(r).strip():
            continue
        for name in gazetteer.resolve(r) or [matching_form(r)]:
            if name not in names:
                names.append(name)
    return names


def _where(regions: list[str], years: list[int]) -> dict | None:
    clauses = []
    if regions:
        clauses.append({"region": {"$in": regions}})
    if years:
        clauses.append({"year": {"$in": [int(y) for y in years]}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _cosine(a, b) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _original(meta: dict) -> str:
    """What the extractor read, for a corrected figure: ``1274 件 新收行政复议案件``."""
    if not meta.get("fix_original"):
        return ""
    original = json.loads(meta["fix_original"])
    value = original.get("value")
    number = f"{value:g}" if isinstance(value, (int, float)) else str(value or "")
    return " ".join(x for x in (number, original.get("unit") or "", original.get("metric") or "") if x)


def query_figures(index: ReportIndex, wanted: FigureFilter | None = None) -> list[FigureRow]:
    """The committed reports' figures that ``wanted`` selects, sorted as it asks.

    Args:
        index: the index; ``index.embeddings`` is needed only for ``wanted.similar``.
        wanted: filters, search and order (default: every figure, in reading order).

    Raises:
        ValueError: ``similar`` without an embedding model, or an unknown sort.
    """
    wanted = wanted or FigureFilter()
    sort = wanted.sort or ("similarity" if wanted.similar else "reading")
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; use one of {', '.join(SORTS)}")
    if wanted.similar and index.embeddings is None:
        raise ValueError("--similar needs the embedding model; open the index with embeddings")
    reports = {r.doc_id: r for r in index.reports()}
    regions = resolve_places(wanted.regions)
    where = _where(regions, [int(y) for y in wanted.years or []])
    include = ["metadatas", "embeddings"] if wanted.similar else ["metadatas"]
    got = get_all(index.figures_collection, include=include, **({"where": where} if where else {}))
    words = [matching_form(w) for w in (wanted.metric or "").split() if w.strip()]
    anchor = index.embeddings.embed_documents([wanted.similar.strip()])[0] if wanted.similar else None
    rows: list[FigureRow] = []
    for i, meta in enumerate(got["metadatas"]):
        report = reports.get(meta.get("doc_id"))
        if report is None or meta.get("version") != report.version:
            continue  # a version being written, or one left over by a crash: not committed
        status = meta.get("fix_status") or ""
        if status == "removed" and not wanted.include_removed:
            continue  # a user marked it a wrong extraction
        figure = Figure(**{k: meta[k] for k in Figure.__dataclass_fields__ if k in meta})
        metric_form = matching_form(figure.metric)
        if words and not all(w in metric_form for w in words):
            continue
        rows.append(FigureRow(
            region=report.region, year=report.year, metric=figure.metric, value=figure.value, unit=figure.unit,
            text=figure.text, qualifiers=figure.qualifiers, change=figure.change, approximate=figure.approximate,
            sentence=figure.sentence, clause=figure.clause, doc_id=report.doc_id, chunk_id=meta["chunk_id"],
            chunk_index=int(meta["chunk_index"]), start=figure.start, end=figure.end, title=report.title,
            source=report.source,
            similarity=round(_cosine(anchor, got["embeddings"][i]), 4) if anchor is not None else None,
            id=got["ids"][i], status=status, original=_original(meta)))
    rows.sort(key=lambda r: (r.region or "~", r.year or 0, r.doc_id, r.chunk_index, r.start))
    if sort == "value_desc":
        rows.sort(key=lambda r: -r.value)
    elif sort == "value_asc":
        rows.sort(key=lambda r: r.value)
    elif sort == "metric":
        rows.sort(key=lambda r: matching_form(r.metric))
    elif sort == "similarity" and anchor is not None:
        rows.sort(key=lambda r: -(r.similarity or 0.0))
    limit = wanted.limit if wanted.limit is not None else (SIMILAR_LIMIT if wanted.similar else None)
    return rows[:limit] if limit is not None else rows


def figure_choices(index: ReportIndex) -> tuple[list[str], list[int]]:
    """The places and years that have reports, for the explorer's dropdowns."""
    reports = index.reports()
    return (sorted({r.region for r in reports if r.region}), sorted({r.year for r in reports if r.year}))
