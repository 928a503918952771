"""The comparison path: a question comparing a figure across reports is answered from the
figures table, one line per report, then a conclusion computed from the values.

Both modes answer this way: the conclusion is arithmetic on extracted figures, and no model
rewrites the numbers.
"""

from __future__ import annotations

from rag.answer.arithmetic import Computation, Operand
from rag.answer.citations import resolve_citations
from rag.answer.compare import ComparisonBuilder, ComparisonTable, conclude
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.notes import Note
from rag.index.keywords import KeywordIndex
from rag.index.store import ReportIndex
from rag.retrieve.hybrid import resolve_regions
from rag.retrieve.query import QueryAnalysis
from rag.text.figures import Figure
from rag.types import AnswerResult, Passage, ReportRecord


def comparison_table(index: ReportIndex, keywords: KeywordIndex, analysis: QueryAnalysis,
                     reports: list[ReportRecord], regions: list[str] | None,
                     years: list[int] | None) -> ComparisonTable | None:
    """The figures table for a question comparing a figure across reports, else None."""
    places = resolve_regions(regions) if regions else list(analysis.regions)
    if not analysis.asks_figure or not (analysis.scope in ("several", "all") or len(places) > 1):
        return None
    return ComparisonBuilder(index, keywords).run(analysis, reports_in_scope(reports, analysis, regions, years))


def reports_in_scope(reports: list[ReportRecord], analysis: QueryAnalysis, regions: list[str] | None,
                     years: list[int] | None) -> list[ReportRecord]:
    """The reports a question is about: its places (or the filters'), in the order it names them."""
    places = resolve_regions(regions) if regions else list(analysis.regions)
    wanted_years = [int(y) for y in years] if years else list(analysis.filter_years)
    # A place named with its own year ("侯马（2023年）") is taken in that year only.
    own = {} if years else analysis.place_years
    chosen = [r for r in reports if r.region and (not places or r.region in places)
              and (not wanted_years or r.year in wanted_years) and (r.region not in own or r.year in own[r.region])]
    order = {place: i for i, place in enumerate(places)}
    chosen.sort(key=lambda r: (order.get(r.region, len(order)), r.region, r.year or 0))
    return chosen


def _row_parts(table: ComparisonTable, said: dict, pool: list[Passage]) -> list[list[tuple[str, str]]]:
    """Each row's text with the chunk ids it cites: the figure's clauses, else a sentence, else none.

    A report without the figure gets its best extractive sentence when one passes the bar (the
    question may be answered in words: 废止了哪些规章).
    """
    row_parts = []
    for row in table.rows:
        if row.found:
            parts = [(row.clause, row.chunk_id)] + [(f.clause, c) for f, c in row.others]
        elif row.region in said:
            sentence = said[row.region]
            parts = [(sentence.text, pool[sentence.passage - 1].id)]
        else:
            parts = []
        row_parts.append(parts)
        if not row.found and parts:
            row.worded = True
    return row_parts


def table_answer(question: str, analysis: QueryAnalysis, passages: list[Passage], table: ComparisonTable,
                 mode: str, keywords: KeywordIndex, index: ReportIndex) -> AnswerResult:
    """One line per report (its figure's clause, cited, or 未提及), then the computed conclusion."""
    by_id = {p.id: p for p in passages}
    wanted = [cid for r in table.found for cid in [r.chunk_id] + [c for _, c in r.others]]
    missing = [cid for cid in dict.fromkeys(wanted) if cid not in by_id]
    for doc in index.chunks_by_id(missing):  # the figure's passage was not among the retrieved ones
        by_id[doc.id] = Passage.from_document(doc)
    pool = list(dict.fromkeys([*wanted, *(p.id for p in passages)]))
    pool = [by_id[c] for c in pool if c in by_id]
    words = ExtractiveAnswerer(keywords).run(analysis, analysis.terms, pool)
    said = {s.region: s for s in words.sentences} if not words.refused else {}
    row_parts = _row_parts(table, said, pool)

    # Numbers follow the order of first use.
    en = analysis.language == "en"
    sep = ": " if en else "："
    order = list(dict.fromkeys(c for parts in row_parts for _, c in parts if c in by_id))
    given = [by_id[c] for c in order] + [p for p in pool if p.id not in order]
    number = {c: i + 1 for i, c in enumerate(order)}
    lines = []
    for row, parts in zip(table.rows, row_parts):
        row.citation = number.get(row.chunk_id) if row.found else None
        if parts:
            cited = "；".join(f"{text.rstrip('。；;，,')}[{number[c]}]" for text, c in parts)
            lines.append(f"{row.label}{sep}{cited}")
        else:
            lines.append(f"{row.label}{sep}" + ("the report does not give this figure." if en
                                                else f"报告中未提及{table.metric}的数字。"))
    table.conclusion = conclude(table, analysis.language)
    lines.append(("Conclusion: " if en else "结论：") + table.conclusion)
    found = [row for row in table.rows if row.found and row.value is not None]
    computed = Computation(analysis).run_rows(
        [Operand(figure=Figure(metric=row.metric or "", value=row.value, unit=row.unit or "", text=row.figure or "",
                               qualifiers=row.qualifiers), n=row.citation, line=i) for i, row in enumerate(found)],
        labels=[row.label for row in found])
    if computed:
        label = ("Order: " if en else "排序：") if analysis.operation == "rank" else ("Computed: " if en else "计算：")
        lines.append(label + computed)
    text, citations = resolve_citations("\n".join(lines), given)
    result = AnswerResult(question=question, answer=text, refused=False,
                          citations=citations, contexts=given, mode=mode, table=table.to_dict())
    result.notes.append(Note("comparison_table"))
    return result
