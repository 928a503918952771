"""A gazetteer of Chinese administrative divisions, for tagging reports with their place.

The list of provinces, cities and counties comes from the ``cpca`` package's adcode table
(read directly; importing ``cpca`` itself would load pandas). Names are matched in their
simplified matching form. Townships (镇, 乡, 街道) are in no such table: they are recognised
by their shape where a report names its issuer (``township_at``), with the words of
``data/issuers.toml``.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

# Placeholder rows in the adcode table that are not places.
_NOT_PLACES = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划", "城区", "郊区", "矿区"}
_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "自治州", "自治县",
             "地区", "新区", "省", "市", "区", "县", "盟", "旗", "州")
_NAME_END = re.compile(r"[省市区县盟旗州]")
_ISSUERS = Path(__file__).with_name("data") / "issuers.toml"
# Characters no township name holds: grammar words, digits and punctuation. (市 may: 新市镇.)
_NOT_IN_TOWNSHIP = re.compile(r"[省的和与及在了年月日我本全各该其等第是为对被向从\d\W_a-z]")


@lru_cache(maxsize=1)
def issuer_words() -> dict:
    """The word lists of ``rag/text/data/issuers.toml`` (townships, self-references, subjects, departments)."""
    with _ISSUERS.open("rb") as f:
        return tomllib.load(f)


@lru_cache(maxsize=1)
def _township_pattern() -> re.Pattern:
    words = issuer_words()["township"]
    suffixes = "|".join(sorted(words["suffixes"], key=len, reverse=True))
    followers = "|".join(sorted(map(re.escape, words["followers"]), key=len, reverse=True))
    # Shortest name that a follower (or a digit, a separator, the end) closes: 新华街道办事处 -> 新华街道.
    return re.compile(rf"([\u4e00-\u9fff]{{2,7}}?(?:{suffixes}))(?=(?:{followers})|\d|[\s、,，:：(（]|$)")


@dataclass(frozen=True)
class Place:
    """One administrative division."""

    name: str  # official simplified name, e.g. 太仓市
    adcode: str
    level: str  # province | city | county
    province: str  # the province it lies in (itself for a province)
    city: str | None  # the prefecture-level city it lies in, for counties


@dataclass(frozen=True)
class PlaceMention:
    """A place name found in a text."""

    name: str
    start: int
    end: int
    candidates: tuple[Place, ...]  # more than one when the name is ambiguous (鼓楼区)


def _adcode_table() -> Path:
    spec = find_spec("cpca")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the cpca package (place names) is not installed; run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "adcodes.csv"


@lru_cache(maxsize=None)  # query analysis shortens thousands of names per question
def short_name(name: str) -> str:
    """The name without its administrative suffix (太原市 -> 太原), if at least two characters remain."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


class Gazetteer:
    """Look up places by name and find place names in text.

    Example:
        >>> g = Gazetteer.default()
        >>> g.lookup("太仓市")[0].province
        '江苏省'
    """

    def __init__(self, places: list[Place]):
        self._by_name: dict[str, list[Place]] = defaultdict(list)
        for place in places:
            self._by_name[place.name].append(place)
        self._max_len = max(len(n) for n in self._by_name)
        self._names: dict[tuple[str, ...], list[str]] = {}
        self._by_short: dict[str, set[str]] = defaultdict(set)
        for name in self._by_name:
            self._by_short[short_name(name)].add(name)

    @classmethod
    @lru_cache(maxsize=1)
    def default(cls) -> "Gazetteer":
        rows = []
        with _adcode_table().open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                rows.append((row["adcode"], row["name"].strip()))
        names = dict(rows)
        places = []
        for code, name in rows:
            if not name or name in _NOT_PLACES:
                continue
            province = names.get(code[:2] + "0" * 10, name)
            if code[2:] == "0" * 10:
                level, city = "province", None
            elif code[4:] == "0" * 8:
                level, city = "city", None
            else:
                level, city = "county", names.get(code[:4] + "0" * 8)
                if city in _NOT_PLACES:  # counties directly under a province or municipality
                    city = None
            places.append(Place(name=name, adcode=code, level=level, province=province, city=city))
        return cls(places)

    def lookup(self, name: str) -> list[Place]:
        """Places with exactly this official name (several for names like 鼓楼区)."""
        return list(self._by_name.get(name, ()))

    def resolve(self, name: str) -> list[str]:
        """Official names a user's spelling may mean: 太原 -> [太原市], 太倉市 -> [太仓市]."""
        from rag.text.normalize import matching_form

        form = matching_form(name).replace(" ", "")
        if form in self._by_name:
            return [form]
        return sorted(self._by_short.get(short_name(form), ()))

    def names(self, levels: tuple[str, ...] = ("province", "city", "county")) -> list[str]:
        """Every official name of places at the given levels."""
        if levels not in self._names:  # query analysis asks on every question
            self._names[levels] = [n for n, places in self._by_name.items() if any(p.level in levels for p in places)]
        return list(self._names[levels])

    def province_of(self, name: str) -> str | None:
        """The province of a place, when the name is unambiguous about it."""
        provinces = {p.province for p in self.lookup(name)}
        return provinces.pop() if len(provinces) == 1 else None

    def pick(self, name: str, context: tuple[str, ...] | list[str] = ()) -> Place | None:
        """The place a name means: the only one, or the one lying in a place of ``context``.

        Args:
            name: an official name (鼓楼区).
            context: other places the text names (南京市), to choose among namesakes.
        """
        places = self.lookup(name)
        if len(places) > 1:
            inside = [p for p in places if p.city in context or p.province in context]
            places = inside if len(inside) == 1 else places
        return places[0] if len(places) == 1 else None

    def parent_of(self, place: Place) -> str | None:
        """The place a county lies in: its city, or its province where no city is between (北京市海淀区)."""
        if place.level != "county":
            return None
        return place.city or place.province

    def level_and_parent(self, name: str) -> tuple[str | None, str | None]:
        """A place's level (province | city | county | township) and the place it lies in, by its name.

        Example:
            >>> Gazetteer.default().level_and_parent("海淀区"), Gazetteer.default().level_and_parent("城厢镇")
            (('county', '北京市'), ('township', None))
        """
        place = self.pick(name)
        if place:
            return place.level, self.parent_of(place)
        if self.lookup(name):  # a namesake (鼓楼区): the level is known, the parent is not
            return self.lookup(name)[0].level, None
        return ("township", None) if self.township_at(name) == name else (None, None)

    def township_at(self, text: str, start: int = 0) -> str | None:
        """The township name (城厢镇, 霍口畲族乡, 望京街道) that begins at ``start`` in ``text``, if any.

        Args:
            text: matching-form text.
            start: where the name must begin: after a county's name, a separator, or 中共.
        """
        m = _township_pattern().match(text, start)
        if not m:
            return None
        name = m.group(1)
        stem = name[:-2] if name.endswith(("街道", "苏木")) else name[:-1]
        words = issuer_words()["township"]
        if (name in words["not_names"] or name.endswith(tuple(words["not_endings"])) or _NOT_IN_TOWNSHIP.search(stem)
                or stem.startswith("中共")
                or self.resolve(name)  # 景德镇 is 景德镇市's short name, not a town
                or self.find(stem)):  # "太仓市城厢镇" read from its start would swallow its county
            return None
        return name

    def find(self, text: str) -> list[PlaceMention]:
        """Every full place name (with its suffix) in ``text``, longest match first, left to right.

        ``text`` should be in matching form (simplified characters).
        """
        mentions: list[PlaceMention] = []
        previous_end = 0
        for m in _NAME_END.finditer(text):
            end = m.end()
            # Longest name ending here that does not overlap the previous mention.
            for start in range(max(previous_end, end - self._max_len), end - 1):
                name = text[start:end]
                if name in self._by_name:
                    mentions.append(PlaceMention(name, start, end, tuple(self._by_name[name])))
                    previous_end = end
                    break
        return mentions
