"""Citations: numbered passages for the answerer, and ``[n]`` markers resolved back to passages.

Passages go to the answerer numbered 1..k. In the answer, markers are renumbered in order of
first use (the first cited passage becomes [1]); markers pointing at no passage are removed,
and passages given but not cited are not listed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rag.text.markers import MARKER, marker_numbers
from rag.types import Citation  # noqa: F401 - defined in rag.types

if TYPE_CHECKING:  # only for annotations: keeps this module (and rag.eval.matching) light to import
    from rag.types import Passage



def passage_label(p: Passage) -> str:
    """Where a passage comes from, in one line: 太原市 2024年《…》（六）依法有效化解社会矛盾纠纷"""
    parts = [p.region or "地区未知", f"{p.year}年" if p.year else "", f"《{p.title}》" if p.title else "",
             p.section or "", f"第{p.page}页" if p.page else ""]
    return " ".join(x for x in parts if x)


def number_passages(passages: list[Passage]) -> str:
    """The passages as the LLM sees them: ``[n] place year`` then the text, quoted as data.

    Only place and year: titles and section headings cost prompt tokens (time, on a CPU) and
    the model needs neither to answer; the citations shown to the user carry them.
    """
    blocks = []
    for n, p in enumerate(passages, start=1):
        where = f"{p.region or '地区未知'} {p.year}年" if p.year else (p.region or "地区未知")
        blocks.append(f"[{n}] 来源：{where}\n<passage>{p.text}</passage>")
    return "\n".join(blocks)


def resolve_citations(answer: str, passages: list[Passage]) -> tuple[str, list[Citation]]:
    """Renumber the answer's markers to the passages actually cited.

    Returns the answer with markers renumbered (``[3]`` first used -> ``[1]``), and the cited
    passages in that order. A marker naming no passage is dropped.
    """
    order: dict[int, int] = {}

    def replace(match: re.Match) -> str:
        new = []
        for n in marker_numbers(match.group(1)):
            if 1 <= n <= len(passages):
                order.setdefault(n, len(order) + 1)
                if order[n] not in new:
                    new.append(order[n])
        return "".join(f"[{m}]" for m in sorted(new))

    text = MARKER.sub(replace, answer)
    citations = []
    for old, new in sorted(order.items(), key=lambda item: item[1]):
        p = passages[old - 1]
        citations.append(Citation(n=new, doc_id=p.doc_id, region=p.region, year=p.year, title=p.title,
                                  section=p.section, text=p.text, source=p.source, page=p.page,
                                  chunk_id=p.id))
    return text, citations
