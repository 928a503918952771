"""Detect who issued a report, the year it covers, and its title, publisher and date.

The issuer is the government (or department) that issues the report, never a place it names in
passing (an honour, a visit, a partner city, the superior "在市委、市政府的坚强领导下"). It is read
from the clues in order of trust: the title line ("杭州市西湖区2023年…报告"), the file name, the
signature at the end ("南京市鼓楼区人民政府 / 2025年1月27日"), the self-references (我市, 我区,
我镇, 本机关) with the place they bind to, the first sentence's subject ("2023年，赣州市认真贯彻…"),
the page's 来源 line, and only then the place the body names most. Townships are recognised by
their shape (``Gazetteer.township_at``); departments by their name after their government's
("成都市司法局"). Every field records the clue it came from and a confidence: ``high`` (the title
or signature, or two clues that agree), ``medium`` (one clue), ``low`` (the body only, clues that
disagree, or nothing): a low one is shown to the user to confirm (``rag ingest``, the app).

The year is the year the report is *about*: a plan period (2021—2025年) is not one, a report
signed in January 2025 covers 2024, and a page header's publication date is never taken for it.
The title is the report's own title line, never a section heading or a body sentence; without
one it is built from issuer, year and genre.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from rag.text.normalize import arabic_years, detect_script, matching_form
from rag.text.places import Gazetteer, PlaceMention, issuer_words
from rag.text.years import DATE_CN, DATE_ISO, YEAR, YEAR_NIAN

SCAN_CHARS = 200_000  # about ten long reports: place names and years are counted in this much
SIGNATURE_CHARS = 2_000  # the end of a longer text, where the signature block is
TITLE_LINES = 8  # a title is among the first lines
OPENING_SENTENCES = 4  # the subject and year are read from the first sentences

_GENRE = re.compile(r"(报告|情况|总结|年报|工作|法治政府|依法行政|法治建设)")
_TITLE_END = re.compile(r"(报告|情况|总结|年报|要点|汇报)$")
_HEADING = re.compile(r"^([一二三四五六七八九十]+[、.]|\([一二三四五六七八九十\d]+\)|\d+[、.]|第[一二三四五六七八九十]+[章部分节])")
_ATTACHMENT = re.compile(r"^附件\s*\d*\s*[:：]?$")
_PUBLISHER_FIELD = re.compile(r"(?:信息来源|来源|发文机关)\s*[:：]\s*(\S+)")
# A plan period (2021—2025年, 2021-2025年, 2021年至2025年): no report covers five years.
_PERIOD = re.compile(r"(?:19|20)\d{2}\s*年?\s*(?:[-—–~～至到]+|—+)\s*(?:19|20)\d{2}\s*年?")
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])")
_CLAUSE = re.compile(r"[,，;；:：]")
# The issuer named by its level alone: 市政府, 县委, 省司法厅, 市市场监管局.
_UNNAMED_SELF = re.compile(r"^(省|市|县|区|旗|镇|乡|街道)(委|人民政府|政府|党委|党工委|办事处|([\u4e00-\u9fff]{1,12}?(局|厅|委员会|办公室)))")

_CLUE_NAMES = {"title": "标题", "file name": "文件名", "signature": "落款", "self-reference": "自称",
               "opening": "首句", "page info": "网页来源", "body": "正文", "signature date": "落款日期",
               "user": "用户更正", "sidecar": "附带的 .meta.json"}
_RANK = {"high": 2, "medium": 1, "low": 0}


@dataclass
class Issuer:
    """The government or department a stretch of text names as the report's issuer."""

    region: str | None  # the place: 城厢镇, 西湖区, 成都市 (a department's government)
    level: str | None = None  # province | city | county | township
    parent: str | None = None  # the county a township lies in, the city (or municipality) of a county
    department: str | None = None  # 司法局, when a department issues the report
    province: str | None = None


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
    level: str | None = None  # the issuer's level: province | city | county | township
    parent: str | None = None  # the place the issuer lies in (county of a township, city of a county)
    department: str | None = None  # the issuing department of ``region``'s government (司法局)
    confidence: str = "low"  # high | medium | low: how sure place and year are (low ones are asked)
    warnings: list[str] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)  # which clue gave which field, and its words

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("warnings")
        data.pop("evidence")
        return data

    def apply_overrides(self, overrides: dict, clue: str = "sidecar") -> None:
        """Put fields given by a ``.meta.json`` sidecar or ``--region/--year`` over the detected ones.

        An overridden place or year is ``confirmed``; the place's level and parent follow it.

        Args:
            overrides: field -> value (region, province, year, title, publisher, date, level, parent, department).
            clue: where they came from, for the evidence (``sidecar``, ``user``).
        """
        gazetteer = Gazetteer.default()
        detected_region = self.region
        for key, value in overrides.items():
            setattr(self, key, value)
        if "region" in overrides:
            if "province" not in overrides:
                self.province = gazetteer.province_of(overrides["region"]) or (
                    self.province if overrides["region"] == detected_region else None)
            if overrides["region"] != detected_region:  # another place: its own level and parent
                level, parent = gazetteer.level_and_parent(overrides["region"])
                self.level = overrides.get("level", level)
                self.parent = overrides.get("parent", parent)
                self.department = overrides.get("department")
            self.warnings = [w for w in self.warnings if not w.startswith("place")]
        if "year" in overrides:
            self.warnings = [w for w in self.warnings if not w.startswith("year")]
        for key in ("region", "year"):
            if key in overrides:
                self.evidence[key], self.evidence[f"{key}_confidence"] = clue, "confirmed"
                self.evidence.pop(f"{key}_text", None)
        if "region" in overrides or "year" in overrides:
            self.evidence.pop("doubts", None)
        sure = [self.evidence.get(f"{k}_confidence", "low") for k in ("region", "year")]
        if self.region is None or self.year is None or "low" in sure:
            self.confidence = "low"
        elif all(s == "confirmed" for s in sure):
            self.confidence = "confirmed"
        else:
            self.confidence = "medium" if "medium" in sure else "high"
        self.evidence["confidence"] = self.confidence

    def fix_command(self, doc_id: str) -> str:
        """The ``rag set`` command that confirms or corrects this report's place and year."""
        return f"rag set {doc_id} --region {self.region or '地区名'} --year {self.year or '年份'}"

    def explain(self) -> str:
        """The evidence in one Chinese line: 地区取自落款“南京市鼓楼区人民政府”；年份取自首句“2024年”."""
        parts = []
        for key, label in (("region", "地区"), ("year", "年份")):
            clue = self.evidence.get(key)
            words = self.evidence.get(f"{key}_text")
            if clue is None:
                parts.append(f"{label}未识别")
            else:
                parts.append(f"{label}取自{_CLUE_NAMES.get(clue, clue)}" + (f"“{words[:40]}”" if words else ""))
        for note in self.evidence.get("doubts", []):
            parts.append(note)
        return "；".join(parts)


def describe_confidence(evidence: dict) -> str:
    """The evidence of a stored report as one Chinese line (for the library and ``rag ingest``)."""
    meta = ReportMetadata(evidence=evidence or {})
    return meta.explain()


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def _form(text: str) -> str:
    return arabic_years(matching_form(text))


def _blank_periods(form: str) -> str:
    """The text with plan periods (2021—2025年) blanked, offsets kept."""
    return _PERIOD.sub(lambda m: " " * len(m.group()), form)


# --- title ---------------------------------------------------------------------------------------


def _title_like(form: str) -> bool:
    """A report's own title line: short, genre words, no sentence, no section heading."""
    if not 6 <= len(form) <= 60 or _HEADING.match(form) or re.search(r"[,，。；;!！?？]", form):
        return False
    if form.endswith((":", "：", "、")) or not _GENRE.search(form):
        return False
    return bool(YEAR_NIAN.search(_blank_periods(form))) or bool(_TITLE_END.search(form)) or "报告" in form


def _find_title(lines: list[str]) -> tuple[str | None, int | None]:
    """The title line near the top (and its index), or a title glued before the first sentence.

    A PDF's text layer may join the title to the paragraph after it
    ("…法治政府建设工作情况2024年，市政府坚持…"): the title is then the line's head.
    """
    for i, line in enumerate(lines[:TITLE_LINES]):
        form = _form(line)
        if _ATTACHMENT.match(form):
            continue
        if _title_like(form):
            return line.strip(), i
        glued = re.match(r"^(.{6,60}?(?:报告|情况|总结|年报))(?=(?:19|20)\d{2}\s*年|一年来|过去一年|今年以来)", form)
        if glued and _title_like(glued.group(1)):
            head = line.strip()
            return (head[:len(glued.group(1))] if len(_form(head)) == len(form) else glued.group(1)), None
        if len(form) > 60 and re.search(r"[。，,]", form):
            break  # the body has begun: a heading further down is no title
    return None, None


def _title_inside(lines: list[str], gazetteer: Gazetteer) -> str | None:
    """A title inside a run of joined page lines ("…通知公告绵阳市人民政府2024年度…工作情况发布日期:…").

    A PDF printed from a web page loses its line ends: the title is the issuer's name, a year
    and a genre word, read from the place name before the year to the genre word after it.
    """
    for line in lines[:2]:
        form = _form(line)[:400]
        for m in re.finditer(r"(?:19|20)\d{2}\s*年度?[\u4e00-\u9fff]{2,30}?(?:报告|情况|总结)", _blank_periods(form)):
            before = [p for p in gazetteer.find(form[:m.start()]) if m.start() - p.end <= 12]
            if not before:
                continue
            # From the start of the run of names nearest the year (北京市海淀区…).
            first = len(before) - 1
            while first > 0 and before[first - 1].end == before[first].start:
                first -= 1
            start = before[first].start
            if form[m.end():m.end() + 2] in ("如下", "的") or re.search(r"[,，。]", form[max(0, start - 8):m.start()]):
                continue  # "现将2022年度…情况报告如下": a sentence, not a title
            candidate = form[start:m.end()]
            if _title_like(candidate):
                return candidate
    return None


# --- issuers -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _department_pattern() -> re.Pattern:
    """A department's name: up to 16 characters ending 局/厅/委员会…, then a year, 关于 or a verb."""
    suffixes = "|".join(sorted(issuer_words()["department"]["suffixes"], key=len, reverse=True))
    followers = "|".join(map(re.escape, issuer_words()["subject"]["followers"]))
    return re.compile(rf"([\u4e00-\u9fff]{{1,15}}?(?:{suffixes}))(?=\d|关于|年|{followers}|[\s、,，:：(（]|$)")


def _department_at(form: str, start: int) -> str | None:
    """A department's name right after its government's (成都市|司法局)."""
    m = _department_pattern().match(form, start)
    if not m:
        return None
    name = m.group(1)
    words = issuer_words()["department"]
    frames = tuple(issuer_words()["subject"]["frames"])
    # "在宿迁市委": a superior after a frame word, not a department of the issuer.
    if (name in words["not_departments"] or name.startswith(("人民政府", "政府", "党委", "中共") + frames)
            or re.search(r"[省市县区旗镇乡]委$", name)):
        return None
    return name


def _chain(mentions: list[PlaceMention], i: int) -> list[PlaceMention]:
    """The mentions written one after the other from ``i`` (北京市|朝阳区|…)."""
    chain = [mentions[i]]
    for m in mentions[i + 1:]:
        if m.start != chain[-1].end:
            break
        chain.append(m)
    return chain


def _issuer_from_chain(chain: list[PlaceMention], form: str, gazetteer: Gazetteer,
                       context: tuple[str, ...] = ()) -> Issuer:
    """The issuer a run of place names ends with, and the township or department after it."""
    names = tuple(m.name for m in chain) + tuple(context)
    end = chain[-1].end
    place = gazetteer.pick(chain[-1].name, names)
    township = gazetteer.township_at(form, end)
    if township:
        department = _department_at(form, end + len(township))
        return Issuer(region=township, level="township", parent=chain[-1].name, department=department,
                      province=place.province if place else gazetteer.province_of(chain[-1].name))
    department = _department_at(form, end)
    if place is None:
        return Issuer(region=chain[-1].name, department=department, province=gazetteer.province_of(chain[-1].name))
    return Issuer(region=place.name, level=place.level, parent=gazetteer.parent_of(place),
                  department=department, province=place.province)


def _issuer_in(text: str, gazetteer: Gazetteer, context: tuple[str, ...] = ()) -> Issuer | None:
    """The issuer a title, file name or signature line names: 杭州市西湖区…, 城厢镇…, 成都市司法局….

    Args:
        text: matching-form text.
        gazetteer: place names.
        context: other places the report names, to tell namesakes apart (鼓楼区 of 南京市).
    """
    if not text:
        return None
    mentions = gazetteer.find(text)
    starts = [0] + [m.end() for m in re.finditer(r"[\s\d\-_、,，:：()（）《》<>\"“”]+|中共|关于", text)]
    townships = [(s, t) for s in starts if (t := gazetteer.township_at(text, s))]
    if townships and (not mentions or townships[0][0] < mentions[0].start):
        start, name = townships[0]
        return Issuer(region=name, level="township",
                      department=_department_at(text, start + len(name)))
    if not mentions:
        return None
    return _issuer_from_chain(_chain(mentions, 0), text, gazetteer, context)


def _suffix(name: str | None) -> str | None:
    """The administrative suffix a self-reference names: 市 for 我市, 街道 for 我街道."""
    if not name:
        return None
    for suffix in ("街道", "苏木"):
        if name.endswith(suffix):
            return suffix
    return name[-1]


def _self_reference(form: str) -> tuple[str | None, int]:
    """The first self-reference in the text: the suffix it names (市, 镇 …, ``department``) and where."""
    best: tuple[str | None, int] = (None, len(form) + 1)
    for suffix, words in issuer_words()["self_reference"].items():
        for word in words:
            at = form.find(word)
            if at != -1 and at < best[1]:
                best = (suffix, at)
    return best if best[0] else (None, -1)


def _subject_words() -> tuple[tuple[str, ...], tuple[str, ...], re.Pattern]:
    words = issuer_words()["subject"]
    time = "|".join(map(re.escape, words["time_phrases"]))
    lead = re.compile(rf"^\s*(?:(?:19|20)\d{{2}}\s*年度?(?:以来)?|{time})?\s*")
    return tuple(words["followers"]), tuple(words["frames"]), lead


@dataclass
class _Opening:
    """What the first sentences say about the issuer."""

    issuer: Issuer | None = None  # the place a clause opens with, speaking of itself
    self_suffix: str | None = None  # a self-reference in subject position (我区 -> 区)
    superiors: list[str] = field(default_factory=list)  # places in frames: 在太仓市委…领导下
    year: int | None = None
    subject_text: str = ""
    year_text: str = ""


def _read_opening(sentences: list[str], gazetteer: Gazetteer, context: tuple[str, ...]) -> _Opening:
    """The first sentences' subject (the issuer speaking of itself), the superiors they frame, the year."""
    found = _Opening()
    subject_at = _opening_subject(sentences[:OPENING_SENTENCES], gazetteer, context, found)
    # The subject's sentence dates the report ("2023年，赣州市…"); else the first sentence that
    # opens with a year ("2022年是“十四五”…关键之年。一年来，绍兴市委…").
    dated = []
    for i, sentence in enumerate(sentences[:OPENING_SENTENCES]):
        years = [int(y.group(1)) for clause in _CLAUSE.split(_blank_periods(sentence))
                 if (y := re.match(r"^\s*((?:19|20)\d{2})\s*年(?!\s*\d{1,2}\s*月)", clause))]
        if years:
            dated.append((i != subject_at, i, years[0], sentence[:30]))
    if dated:
        _, _, found.year, found.year_text = min(dated)
    return found


def _opening_subject(sentences: list[str], gazetteer: Gazetteer, context: tuple[str, ...],
                     found: _Opening) -> int | None:
    """Fill ``found`` with the first clause that opens with the issuer; return its sentence's index."""
    followers, frames, lead = _subject_words()
    self_words = {w: s for s, ws in issuer_words()["self_reference"].items() for w in ws}
    for i, sentence in enumerate(sentences):
        for clause in _CLAUSE.split(_blank_periods(sentence)):
            head = lead.sub("", clause.strip(), count=1)
            if not head:
                continue
            if head.startswith(frames):  # "在太仓市委、市政府的坚强领导下": superiors
                found.superiors += [m.name for m in gazetteer.find(head)]
                continue
            word = next((w for w in self_words if head.startswith(w)), None)
            if word:
                found.self_suffix = self_words[word]
            else:
                issuer = _clause_issuer(head, gazetteer, context, followers)
                if issuer is None:
                    unnamed = _UNNAMED_SELF.match(head)
                    if not unnamed:
                        continue  # a clause about something else ("2024年是…关键一年"): read on
                    # "市政府坚持…", "县自然资源和规划局在…": the issuer speaking of itself, unnamed.
                    found.self_suffix = "department" if unnamed.group(3) else unnamed.group(1)
                else:
                    found.issuer, found.subject_text = issuer, clause.strip()[:40]
            # "沭阳县在宿迁市委、市政府的坚强领导下": the places after 在 are its superiors.
            at = head.find("在", 2)
            if at != -1:
                found.superiors += [m.name for m in gazetteer.find(head[at:])]
            return i
    return None


def _clause_issuer(head: str, gazetteer: Gazetteer, context: tuple[str, ...], followers: tuple[str, ...]) -> Issuer | None:
    """The issuer a clause opens with, speaking of itself: "赣州市认真贯彻…", "霍口畲族乡党委、政府…"."""
    mentions = gazetteer.find(head)
    if mentions and mentions[0].start == 0:
        chain = _chain(mentions, 0)
        end = chain[-1].end
        if head[end:].startswith(followers) or gazetteer.township_at(head, end) or _department_at(head, end):
            return _issuer_from_chain(chain, head, gazetteer, context)
        return None
    town = gazetteer.township_at(head, 0)
    if town and head[len(town):].startswith(followers):
        return Issuer(region=town, level="township")
    return None


# --- signature -----------------------------------------------------------------------------------


def _signature(lines: list[str]) -> tuple[list[str], str | None]:
    """The signing organisations and date at the end of the report."""
    endings = tuple(issuer_words()["signature"]["endings"])
    orgs: list[str] = []
    date = None
    for line in reversed(lines[-6:]):
        form = _form(line)
        if len(form) > 80:
            break
        compact = form.replace(" ", "")
        m = DATE_CN.fullmatch(compact) or DATE_ISO.fullmatch(compact)
        if m and date is None:
            date = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
            continue
        if re.fullmatch(r"(19|20)\d{2}\s*年.*日", form):  # "2025年 月 日": a blank signing date
            continue
        # A PDF's text layer may join the signature and its date: "侯马市人民政府2024年1月19日".
        tail = DATE_CN.search(compact)
        if tail and tail.end() == len(compact) and date is None and tail.start() > 0:
            head = compact[:tail.start()]
            if head.endswith(endings) and len(head) <= 60:
                date = f"{int(tail.group(1)):04d}-{int(tail.group(2)):02d}-{int(tail.group(3)):02d}"
                orgs = [line.strip()[:len(head)] if len(_form(line.strip())) == len(form) else head] + orgs
                continue
        parts = form.split(" ")
        if all(p.endswith(endings) and len(p) <= 40 and not re.search(r"[,，。;；、]", p) for p in parts):
            orgs = line.strip().split() + orgs
            continue
        if form in ("特此报告。", "特此报告"):
            continue
        break
    return orgs, date


# --- the decision --------------------------------------------------------------------------------


def _bind_self_reference(suffix: str, form: str, gazetteer: Gazetteer) -> tuple[Issuer | None, str]:
    """The place a self-reference (我市) binds to: the one with that suffix the text speaks of as itself.

    Returns the issuer and how sure: ``medium`` when the place is named speaking of itself
    (绵阳市委、绵阳市司法局), ``low`` when it is only the most named of its kind.
    """
    followers, _, _ = _subject_words()
    if suffix in ("镇", "乡", "街道", "苏木"):
        # Only a township written as a government ("沙溪镇人民政府", "霍口畲族乡党委"): a body's
        # "开展乡镇…" or "枫桥镇经验" is no self-reference.
        own = ("人民政府", "政府", "党委", "党工委", "办事处", "委员会")
        counts = Counter(t for s in (0, *(m.end() for m in re.finditer(r"[\s,，。、;；:：]", form)))
                         if (t := gazetteer.township_at(form, s)) and _suffix(t) == suffix
                         and form[s + len(t):].startswith(own))
        if counts:
            return Issuer(region=counts.most_common(1)[0][0], level="township"), "medium"
        return None, "low"
    if suffix == "department":
        return None, "low"
    mentions = [m for m in gazetteer.find(form) if _suffix(m.name) == suffix]
    own = Counter(m.name for m in mentions
                  if form[m.end:m.end + 6].startswith(followers) or _department_at(form, m.end))
    counts = own or Counter(m.name for m in mentions)
    if not counts:
        return None, "low"
    name = counts.most_common(1)[0][0]
    place = gazetteer.pick(name, tuple(counts))
    issuer = Issuer(region=name, level=place.level if place else None,
                    parent=gazetteer.parent_of(place) if place else None,
                    province=place.province if place else gazetteer.province_of(name))
    return issuer, "medium" if own else "low"


def _fill(issuer: Issuer, gazetteer: Gazetteer, context: tuple[str, ...]) -> Issuer:
    """Level, parent and province from the gazetteer where the clue left them open."""
    if issuer.level is None and issuer.region:
        place = gazetteer.pick(issuer.region, context)
        if place:
            issuer.level, issuer.province = place.level, place.province
            issuer.parent = issuer.parent or gazetteer.parent_of(place)
    return issuer


def _township_parent(region: str, forms: list[str], superiors: list[str], gazetteer: Gazetteer) -> str | None:
    """The county a township lies in: named just before it (太仓市城厢镇), or as its superior."""
    for form in forms:
        at = form.find(region)
        if at > 0:
            before = [m for m in gazetteer.find(form[:at]) if m.end == at]
            if before:
                return before[-1].name
    counties = [s for s in superiors if any(p.level == "county" for p in gazetteer.lookup(s))]
    return counties[0] if counties else None


def _choose_issuer(meta: ReportMetadata, readings: list[tuple[str, Issuer, str]], self_suffix: str | None,
                   superiors: list[str], forms: list[str], gazetteer: Gazetteer, context: tuple[str, ...],
                   doubts: list[str]) -> str:
    """Fill ``meta``'s issuer fields from the most trusted reading; return how sure it is.

    Args:
        meta: the metadata to fill (region, level, parent, department, province, evidence).
        readings: (clue, issuer, its words), most trusted first.
        self_suffix: what the report calls itself (市 for 我市, ``department`` for 本机关).
        superiors: places the opening names as its superiors (在太仓市委…领导下).
        forms: title, file name and signature, where a township's county is written before it.
        gazetteer: place names.
        context: every place the report names, to tell namesakes apart.
        doubts: the reasons for a low confidence, appended to.
    """
    if not readings:
        return "low"
    region_sure = "low"
    clue, issuer, words = readings[0]
    issuer = _fill(issuer, gazetteer, context)
    agree = [c for c, i, _ in readings[1:] if i.region == issuer.region]
    differ = [(c, i.region) for c, i, _ in readings[1:]
              if i.region != issuer.region and c in ("title", "signature", "file name", "opening")
              and i.region not in (issuer.parent, issuer.province)]
    if clue in ("title", "signature") or agree:
        region_sure = "high"
    elif clue in ("file name", "self-reference", "opening"):
        region_sure = "medium"
    if differ:
        region_sure = "low"
        doubts.append("其他线索指向" + "、".join(f"{r}（{_CLUE_NAMES.get(c, c)}）" for c, r in differ))
    if self_suffix and self_suffix != "department" and _suffix(issuer.region) != self_suffix:
        # The report says 我区 but the clue names a city: a district's report, district unknown.
        if clue in ("body", "page info") or not agree and clue != "title":
            region_sure = "low"
            doubts.append(f"正文自称“我{self_suffix}”，与{issuer.region}不符")
    if issuer.level == "township" and not issuer.parent:
        issuer.parent = _township_parent(issuer.region, forms, superiors, gazetteer)
    if issuer.department is None:  # the page's 来源 is its web publisher, no issuer
        issuer.department = next((i.department for c, i, _ in readings
                                  if i.department and i.region == issuer.region and c != "page info"), None)
    if issuer.level == "township" and issuer.province is None and issuer.parent:
        issuer.province = gazetteer.province_of(issuer.parent)
    meta.region, meta.level, meta.parent = issuer.region, issuer.level, issuer.parent
    meta.department, meta.province = issuer.department, issuer.province
    meta.evidence["region"], meta.evidence["region_text"] = clue, words
    return region_sure


def _choose_year(meta: ReportMetadata, title: str | None, opening: _Opening, sig_date: str | None,
                 short_lines: list[str], form: str, name_form: str, doubts: list[str]) -> str:
    """Fill ``meta.year`` with the year the report covers; return how sure it is.

    Args:
        meta: the metadata to fill (year, evidence).
        title: the title line, if any.
        opening: what the first sentences say.
        sig_date: the signing date (ISO), if any.
        short_lines: the short lines under the title ("（2025年1月20日）").
        form: the report's matching form (for the body's most written year).
        name_form: the file name's matching form.
        doubts: the reasons for a lower confidence, appended to.
    """
    title_form = _form(title) if title else ""
    year_sure = "low"
    title_year = YEAR_NIAN.search(_blank_periods(title_form))
    sig_year = None
    if sig_date:
        y, month = int(sig_date[:4]), int(sig_date[5:7])
        sig_year = y if month >= 11 else y - 1  # signed early next year, or at the year's end
    top_dates = [DATE_CN.search(f) for f in short_lines]
    top_date = next((m for m in top_dates if m), None)  # "（2025年1月20日）" under the title
    if sig_year is None and top_date:
        y, month = int(top_date.group(1)), int(top_date.group(2))
        sig_year = y if month >= 11 else y - 1
    if title_year:
        meta.year, meta.evidence["year"], meta.evidence["year_text"] = int(title_year.group(1)), "title", title
        year_sure = "high"
    elif opening.year:
        meta.year, meta.evidence["year"], meta.evidence["year_text"] = opening.year, "opening", opening.year_text
        year_sure = "high"
    elif sig_year:
        meta.year, meta.evidence["year"] = sig_year, "signature date"
        meta.evidence["year_text"] = sig_date or top_date.group()
        year_sure = "medium"
    else:
        years = Counter(int(y) for y in YEAR_NIAN.findall(_blank_periods(form)))
        if years:
            meta.year, meta.evidence["year"] = years.most_common(1)[0][0], "body"
        else:
            m = YEAR.search(name_form)
            if m:
                meta.year, meta.evidence["year"] = int(m.group(1)), "file name"
    if meta.year and meta.evidence.get("year") in ("title", "opening"):
        others = [y for y in (opening.year if meta.evidence["year"] == "title" else None, sig_year) if y]
        if any(y != meta.year for y in others):
            year_sure = "medium"
            doubts.append("年份线索不一致：" + "、".join(str(y) for y in sorted({meta.year, *others})))
    return year_sure


# Size: the clues are gathered in their order of trust in one place, so that a reviewer sees
# their precedence in one read; _choose_issuer and _choose_year weigh them.
def detect_metadata(text: str, path: str | Path, info_lines: list[str] | None = None,
                    gazetteer: Gazetteer | None = None) -> ReportMetadata:
    """Detect the metadata of a cleaned report.

    Args:
        text: the cleaned report text.
        path: the file it came from (its name is a clue for issuer and year).
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
    form = _form(head)
    context = tuple(dict.fromkeys(m.name for m in gazetteer.find(form)))

    title, title_at = _find_title(lines)
    if title is None:
        title = _title_inside(lines, gazetteer)
    title_form = _form(title) if title else ""
    body_lines = [l for i, l in enumerate(lines[:TITLE_LINES + 4]) if i != title_at]
    if title is not None and title_at is None and body_lines:  # a glued title: the rest is the body
        body_lines[0] = body_lines[0].strip()[len(title):]
    body_forms = [_form(l) for l in body_lines]
    # The opening: sentences, not the addressee ("省政府："), a date line or "附件1".
    opening_lines = [f for f in body_forms if len(f) >= 20 or re.search(r"[。，,]", f)]
    short_lines = [f for f in body_forms[:4] if f not in opening_lines]
    sentences = [s for s in _SENTENCE_END.split(" ".join(opening_lines[:3])) if s.strip()]
    sig_orgs, sig_date = _signature(lines)
    info_form = _form(" ".join(info_lines or []))
    name_form = _form(Path(path).stem)
    opening = _read_opening(sentences, gazetteer, context)
    superiors = list(opening.superiors)
    for f in short_lines:  # "昆山市人民政府：" is the addressee, the issuer's superior
        if f.endswith((":", "：")):
            superiors += [m.name for m in gazetteer.find(f)]

    # --- issuer: every clue's reading, in order of trust ---
    readings: list[tuple[str, Issuer, str]] = []
    for clue, clue_text in (("title", title_form), ("file name", name_form)):
        issuer = _issuer_in(clue_text, gazetteer, context)
        if issuer and issuer.region:
            readings.append((clue, issuer, clue_text))
    sig_issuers = [i for org in sig_orgs if (i := _issuer_in(_form(org), gazetteer, context)) and i.region]
    if sig_issuers:
        # The narrowest signer: "中共沙溪镇委员会 沙溪镇人民政府" -> 沙溪镇; a department before its government.
        order = {"township": 0, "county": 1, "city": 2, "province": 3, None: 4}
        best = min(sig_issuers, key=lambda i: (order.get(i.level, 4), i.department is None))
        readings.append(("signature", best, " ".join(sig_orgs)))
    self_suffix, _ = _self_reference(" ".join(opening_lines[:6]))
    self_suffix = opening.self_suffix or self_suffix
    if self_suffix:
        bound, sure = _bind_self_reference(self_suffix, form, gazetteer)
        if bound and sure == "medium":
            word = next((w for w in issuer_words()["self_reference"][self_suffix] if w in form), "")
            readings.append(("self-reference", bound, f"{word}（{bound.region}）"))
    if opening.issuer:
        readings.append(("opening", opening.issuer, opening.subject_text))
    publisher = _PUBLISHER_FIELD.search(info_form)
    if publisher:
        issuer = _issuer_in(publisher.group(1), gazetteer, context)
        if issuer and issuer.region:
            readings.append(("page info", issuer, publisher.group(1)))
    if not readings:
        # "我市" throughout, the city named elsewhere in the text; or the place named most.
        bound, _ = _bind_self_reference(self_suffix, form, gazetteer) if self_suffix else (None, "low")
        if bound:
            readings.append(("body", bound, ""))
        elif context and not self_suffix:
            counts = Counter(m.name for m in gazetteer.find(form))
            name = counts.most_common(1)[0][0]
            readings.append(("body", _fill(Issuer(region=name), gazetteer, context), ""))

    doubts: list[str] = []
    region_sure = _choose_issuer(meta, readings, self_suffix, superiors,
                                 [title_form, name_form, _form(" ".join(sig_orgs))], gazetteer, context, doubts)
    if meta.region is None and self_suffix:
        doubts.append(f"正文自称“我{self_suffix}”，但未写明是哪里" if self_suffix != "department"
                      else "正文以本机关自称，但未写明机关名称")
        meta.parent = superiors[0] if superiors else None
    year_sure = _choose_year(meta, title, opening, sig_date, short_lines, form, name_form, doubts)
    if doubts:
        meta.evidence["doubts"] = doubts

    # --- title, publisher, date ---
    if title:
        meta.title, meta.evidence["title"] = title, "text"
    elif meta.region and meta.year:
        meta.title = f"{meta.region}{meta.department or ''}{meta.year}年法治政府建设情况"
        meta.evidence["title"] = "built"
    else:
        meta.title, meta.evidence["title"] = Path(path).stem, "file name"
    if sig_orgs:
        meta.publisher = " ".join(sig_orgs)
    elif publisher:
        meta.publisher = publisher.group(1)
    if sig_date:
        meta.date = sig_date
    else:
        m = DATE_ISO.search(info_form)
        if m:
            meta.date = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"

    meta.confidence = min(region_sure, year_sure, key=_RANK.__getitem__) if meta.region and meta.year else "low"
    meta.evidence.update(region_confidence=region_sure if meta.region else "low",
                         year_confidence=year_sure if meta.year else "low", confidence=meta.confidence)
    if meta.region is None:
        meta.warnings.append("place not detected; pass --region or add a .meta.json sidecar")
    if meta.year is None:
        meta.warnings.append("year not detected; pass --year or add a .meta.json sidecar")
    return meta
