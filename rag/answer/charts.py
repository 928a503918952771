"""Charts of comparison tables: a bar per report, or a line over the years for one place's
series (a trend table), labelled in Chinese.

Matplotlib has no Chinese glyphs of its own and these machines have no CJK system font, so the
font comes from a PyPI package (mplfonts ships Noto Sans CJK SC) and is registered by path;
nothing is downloaded.

Example:
    >>> bar_chart(result.table, "compare.png")
    PosixPath('compare.png')
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

FONT_FILE = "NotoSansCJKsc-Regular.otf"


class ChartError(ValueError):
    """The table cannot be drawn as one bar chart (no figures, or figures in different units)."""


@lru_cache(maxsize=1)
def _font_name() -> str:
    """Register the bundled CJK font with matplotlib; returns its family name."""
    from matplotlib import font_manager

    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        raise ChartError("the mplfonts package (a CJK font for charts) is not installed; run `make install`")
    path = Path(list(spec.submodule_search_locations)[0]) / "fonts" / FONT_FILE
    if not path.is_file():
        raise ChartError(f"{path}: the CJK font file is missing; reinstall mplfonts")
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def chart_rows(table: dict) -> list[dict]:
    """The rows of a table that have a value, checked to share one unit.

    Raises:
        ChartError: no row has a figure, or the figures have different units.
    """
    rows = [r for r in table.get("rows", []) if r.get("found") and r.get("value") is not None]
    if not rows:
        raise ChartError("no report in the comparison gives a figure, so there is nothing to chart")
    units = sorted({r.get("unit") or "" for r in rows})
    if len(units) > 1:
        raise ChartError(f"the figures have different units ({'、'.join(units)}), so one bar chart would mislead")
    return rows


def bar_chart(table: dict, path: str | Path, title: str | None = None) -> Path:
    """Draw a comparison table (``AnswerResult.table``) as a PNG bar chart.

    Args:
        table: the table dict of a result (``metric``, ``rows`` with region, year, value, unit, figure).
        path: where to write the PNG.
        title: the chart title (default: the table's metric).

    Raises:
        ChartError: the table has no figures, or figures in different units.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    rows = chart_rows(table)
    unit = rows[0].get("unit") or ""
    labels = [f"{r.get('region') or '?'}\n{r.get('year') or ''}年" if r.get("year") else r.get("region") or "?"
              for r in rows]
    values = [float(r["value"]) for r in rows]
    with plt.rc_context({"font.family": [_font_name()], "axes.unicode_minus": False}):
        fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(rows) + 1.5), 3.6), dpi=120)
        bars = ax.bar(labels, values, color="#3b6ea8")
        for bar, row in zip(bars, rows):
            # The figure as the report writes it (1.26万余件), with its citation.
            mark = f"[{row['citation']}]" if row.get("citation") else ""
            ax.annotate(f"{row.get('figure') or row['value']}{mark}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points")
        ax.set_title(title or table.get("metric") or "", fontsize=11)
        ax.set_ylabel(unit)
        ax.spines[["top", "right"]].set_visible(False)
        ax.margins(y=0.15)
        return _save(fig, path)


def line_chart(table: dict, path: str | Path, title: str | None = None) -> Path:
    """Draw a trend table (``table["kind"] == "trend"``: one row per year) as a PNG line chart.

    Years whose report does not give the figure stay on the axis, marked 未提及 (无报告 for a year
    the index has no report of), with no point: a line drawn through a guess would mislead.

    Args:
        table: the table dict of a trend result (``rows`` with year, value, unit, figure, citation).
        path: where to write the PNG.
        title: the chart title (default: the place and the table's metric).

    Raises:
        ChartError: no year gives a figure, or the years' figures have different units.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    from rag.answer.trend import signed_value, units_agree

    # The series' own rule (件 and 个 count the same things), so its changes come with a chart.
    rows = [r for r in table.get("rows", []) if r.get("found") and r.get("value") is not None]
    if not rows:
        raise ChartError("no year gives a figure, so there is nothing to chart")
    units = sorted({r.get("unit") or "" for r in rows})
    if not units_agree(units):
        raise ChartError(f"the figures have different units ({'、'.join(units)}), so one line would mislead")
    unit = table.get("unit") or rows[-1].get("unit") or ""
    years = sorted({r["year"] for r in table.get("rows", []) if r.get("year")}
                   | set(table.get("missing_years") or []))
    found_years = {r["year"] for r in rows}
    xs = [r["year"] for r in rows]
    values = [float(signed_value(r["value"], r.get("qualifiers"))) for r in rows]  # a fall below zero
    with plt.rc_context({"font.family": [_font_name()], "axes.unicode_minus": False}):
        fig, ax = plt.subplots(figsize=(max(4.5, 1.3 * len(years) + 2.0), 3.6), dpi=120)
        ax.plot(xs, values, marker="o", linestyle="none", color="#3b6ea8")
        for (x0, v0), (x1, v1) in zip(zip(xs, values), zip(xs[1:], values[1:])):
            # Dashed over a year without the figure: the line there joins two reports, it is no value.
            ax.plot([x0, x1], [v0, v1], color="#3b6ea8", linestyle="-" if x1 - x0 == 1 else "--")
        for x, value, row in zip(xs, values, rows):
            mark = f"[{row['citation']}]" if row.get("citation") else ""
            ax.annotate(f"{row.get('figure') or row['value']}{mark}", (x, value), ha="center", va="bottom",
                        fontsize=9, xytext=(0, 4), textcoords="offset points")
        absent = set(table.get("missing_years") or [])  # no report of that year in the index
        ax.set_xticks(years)
        ax.set_xticklabels([f"{y}年" if y in found_years else f"{y}年\n{'无报告' if y in absent else '未提及'}"
                            for y in years])
        ax.set_xlim(years[0] - 0.5, years[-1] + 0.5)
        if unit not in ("%", "个百分点") and min(values) >= 0:
            ax.set_ylim(bottom=0)  # counts from zero, so a small change does not look steep
        region = table.get("region") or ""
        ax.set_title(title or f"{region}{table.get('metric') or ''}", fontsize=11)
        ax.set_ylabel(unit)
        ax.spines[["top", "right"]].set_visible(False)
        ax.margins(x=0.15, y=0.2)
        return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    """Lay out, write and close a chart (called inside its rc_context, so the CJK font applies)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def chart(table: dict, path: str | Path, title: str | None = None) -> Path:
    """The table's chart: a line over the years for a trend, else a bar per report."""
    return (line_chart if table.get("kind") == "trend" else bar_chart)(table, path, title)
