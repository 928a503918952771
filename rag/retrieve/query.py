"""Query analysis: what a question is about before anything is retrieved.

A question names places and years ("太原和绵阳2024年…"), asks about one report, several or
all of them ("各地", "哪些城市"), and is written in Chinese (simplified or traditional) or
English. The analysis turns this into metadata filters for retrieval and decides up front
when the index cannot answer: a place or year that no indexed report covers is refused
before retrieval, with the list of reports that do exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from rag.text.glossary import english_to_chinese
from rag.types import Language, ReportRecord, Scope
from rag.index.keywords import question_terms
from rag.text.places import Gazetteer, short_name
from rag.text.normalize import arabic_years, matching_form
from rag.text.arithmetic import Operation, Superlative, asked_operation, asked_superlative, without_operation
from rag.text.lists import asked_kind
from rag.text.parts import Part, ReportParts
from rag.text.synonyms import Synonyms
from rag.text.years import QUESTION_YEAR, YearSpan, year_span, years_in_question

# Words that make a question about every report rather than the ones it names.
_ALL_SCOPE = re.compile(
    r"哪些(城市|地方|地区|市|区|县|报告)|哪(个|座|几个|几座)(城市|地方|地区|市|区|县)|各(地|市|区|县|城市|地区|报告)"
    r"|这些(报告|城市|地方)|这几(个|座)(报告|城市|地方|地区)|所有(报告|城市|地方|地区)|全部(报告|城市)|每(个|座)城市|每份报告"
    r"|\bwhich (cities|places|regions|reports|city|place)\b|\b(each|every|all) (city|cities|report|reports|place|places)\b"
    r"|\bacross (the )?(cities|reports|places)\b")
_COMPARE = re.compile(r"比较|对比|相比|哪个(更)?(多|少|高|低|大|小)|谁(更)?(多|少|高|低)|更(多|少|高|低)|差距|分别"
                      r"|各(是)?多少|\bcompare|\bcomparison|\bhigher\b|\blower\b|\bmore\b|\bfewer\b|\bversus\b|\bvs\b")
# A year in brackets right after a place: "侯马（2023年）" (matching form: half-width brackets).
_BRACKET_YEAR = re.compile(r"\s*\(\s*((?:19|20)\d{2})\s*年?度?\s*\)")
# "哪个多", "谁更多", "which had more": a comparison of amounts asks for the figures, though it says no 多少.
_COMPARE_AMOUNT = re.compile(r"哪(?:个|一个|座|家)?(?:市|城市|地方|地区|区|县|单位|部门)?(?:的)?(?:更|要)?(?:多|少|高|低|大|小)"
                             r"|哪[^，,。？?；;]{0,24}?(?:更|要)(?:多|少|高|低|大|小)|谁(?:更|要)?(?:多|少|高|低|大|小)|\bwhich\b.*\b(?:more|fewer|higher|lower|larger|smaller)\b")
_COMPARISON_WORD = re.compile(r"(?:更|要)?(?:多|少|高|低|大|小)(?:一些|一点|些)?|一些|一点")
_ASKS_FIGURE = re.compile(r"多少|几(件|个|次|人|项|家|起|名|场|所|万|%|条|份|支|批|户|位|篇)|比例|比率|百分|[^a-z]率|金额|数量|增长|下降|同比"
                          r"|(件|人|次|个|家|项|户)数|数目"
                          r"|\bhow (many|much)\b|\bwhat (percentage|share|proportion|rate|number)\b|\brate\b"
                          r"|\bnumber of\b|\bpercent")
_WORD = re.compile(r"[a-z]+")
# Words asking how a figure moved over the years (the trend path answers them with the figures
# themselves, so they leave the terms: no report sentence says "变化趋势").
_TREND_WORDS = re.compile(r"(?:的)?(?:增减)?(?:变化|变动|趋势|走势)(?:情况|趋势|如何|怎样|怎么样)?|怎么变|如何变"
                          r"|\bhow (?:did|has|have|do|does)\b|\b(?:change[sd]?|changing|trend|trends|evolve[sd]?)\b")
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")
# Where a phrase offered as an alternative starts or ends.
_PHRASE_EDGE = re.compile(r"[\"'“”‘’「」『』,，。?？!！、:：;；()（）\s]|的|了|提到|提及|把|对|在|关于")
_OR = re.compile(r"或者|或是|或|还是|\bor\b")
_GLOSS = re.compile(r"[(（](?P<body>[^()（）]*[、/或][^()（）]*)[)）]")
# Where one ask of a question may end: a question mark or semicolon, a comma or enumeration comma,
# and in English ", and" before the next "how many".
_CLAUSE_END = re.compile(r"(?<=[?？;；,，、])|(?=\s*,?\s*\band (?:how|what)\b)", re.IGNORECASE)


def split_asks(question: str) -> list[str]:
    """The question cut into clauses that each ask for a figure (the text between two asks goes
    with the ask that follows it; text after the last ask goes with that ask).

    >>> split_asks("侯马市2023年公布重大决策事项多少项？对多少件文件草案进行了合法性审核？")
    ['侯马市2023年公布重大决策事项多少项？', '对多少件文件草案进行了合法性审核？']
    >>> split_asks("新收、办结各多少件？")
    ['新收、办结各多少件？']
    """
    clauses: list[str] = []
    current, asked = "", False
    for piece in (p for p in _CLAUSE_END.split(question) if p):
        asks = bool(_ASKS_FIGURE.search(matching_form(piece)))
        if asks and asked:
            clauses.append(current)
            current, asked = piece, True
        else:
            current += piece
            asked = asked or asks
    if current:
        if asked or not clauses:
            clauses.append(current)
        else:
            clauses[-1] += current
    return clauses


def _phrase_before(text: str, end: int) -> tuple[int, int]:
    i = end
    while i > 0 and not _PHRASE_EDGE.match(text, i - 1):
        i -= 1
    return i, end


def _phrase_after(text: str, start: int) -> tuple[int, int]:
    while start < len(text) and text[start] in " “\"'「『":
        start += 1
    i = start
    while i < len(text) and not _PHRASE_EDGE.match(text, i):
        i += 1
    return start, i


def alternatives(topic: str, terms: list[str]) -> list[list[list[str]]]:
    """Groups of alternative term lists in a question's topic.

    ``X或Y`` offers X and Y; a gloss in brackets listing forms (免交证明（"无证明城市"、免证办）)
    offers the phrase before it and each form. Each alternative keeps only the question's terms.

    Example:
        >>> alternatives('报告提到"枫桥经验"或"枫桥式"司法所', ['枫桥', '经验', '式', '司法', '所'])
        [[['枫桥', '经验'], ['枫桥', '式']]]
    """
    groups: list[list[str]] = []
    for match in _OR.finditer(topic):
        left_end = match.start()
        while left_end > 0 and topic[left_end - 1] in " ”\"'」』":
            left_end -= 1
        left = topic[slice(*_phrase_before(topic, left_end))]
        right = topic[slice(*_phrase_after(topic, match.end()))]
        if left.strip() and right.strip():
            groups.append([left, right])
    for match in _GLOSS.finditer(topic):
        before = topic[slice(*_phrase_before(topic, match.start()))]
        forms = [f for f in re.split(r"[、/]|或", match["body"]) if f.strip(" “”\"'")]
        groups.append(([before] if before.strip() else []) + forms)
    result = []
    for group in groups:
        options = [[t for t in terms if t in question_terms(phrase) or t in phrase] for phrase in group]
        options = [o for o in options if o]
        if len(options) > 1:
            result.append(options)
    return result


@dataclass(frozen=True)
class Ask:
    """One of several figures a question asks for ("…公布了多少项？对多少件草案进行了审核？").

    Attributes:
        text: the clause as asked (for "报告中未提及：…").
        normalised: its matching form (the figures it states are checked against it).
        terms: its own search terms.
        alternatives: its own groups of alternative terms.
    """

    text: str
    normalised: str
    terms: tuple[str, ...]
    alternatives: tuple = ()


@dataclass
class QueryAnalysis:
    """What a question asks about.

    Attributes:
        question: the question as asked.
        normalised: its matching form (simplified, half-width, lower case).
        language: ``zh`` or ``en``.
        regions: indexed regions it names (official names, e.g. 太原市), in order of mention.
        years: years it names (all years, whether indexed or not).
        scope: ``one`` / ``several`` named reports, ``all`` reports, or ``any`` (no place named).
        comparative: it asks to compare ("哪个多", "对比").
        asks_figure: it asks for a number, share or amount.
        missing_regions: places it names that no indexed report covers.
        missing_years: named years for which no report of the named places exists.
        filter_years: the years to filter retrieval on (the named years that exist).
        topic: the normalised question without its place names and years (what it asks about).
        terms: the topic's search terms, without question words (哪些/几个/多少); for English
            questions, the Chinese terms the glossary gives.
        place_spans: where indexed places are named in ``normalised`` (start, end).
        place_years: years written in brackets after one place ("侯马（2023年）、太原、太仓"),
            for that place alone, when the question names no year for all; the places
            without one are taken in any year (``filter_years`` is then empty).
        alternatives: groups of terms the question offers as alternatives ("枫桥经验"或"枫桥式",
            免交证明（"无证明城市"、免证办）); a passage answers if it has any one of each group.
        operation: what it asks to compute from stated figures (sum, share, average, ...), and
            ``operation_text`` the words saying so (``rag/text/data/arithmetic.toml``).
        superlative: ``most`` or ``least`` when it asks which report's figure is largest or
            smallest ("哪个城市…最少"), a figure asked without 多少.
        part: the part of the report it asks about (shortcomings, plans …; ``rag.text.parts``).
        asks: the figures it asks for one by one when it asks for two or more in separate
            clauses ("多少项？…多少件？"), each with its own terms (``split_asks``); else empty.
        span, trend, trend_years, trend_missing: a figure of one place over several years
            ("太原市近三年新收行政复议案件的变化", "X区2023年和2024年…"): the years resolved against
            the place's indexed reports, and those asked for that no report covers.
    """

    question: str
    normalised: str
    language: Language = "zh"
    regions: list[str] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    scope: Scope = "any"
    comparative: bool = False
    asks_figure: bool = False
    missing_regions: list[str] = field(default_factory=list)
    missing_years: list[int] = field(default_factory=list)
    filter_years: list[int] = field(default_factory=list)
    topic: str = ""
    terms: list[str] = field(default_factory=list)
    place_spans: list[tuple[int, int]] = field(default_factory=list)
    place_years: dict[str, list[int]] = field(default_factory=dict)
    alternatives: list[list[list[str]]] = field(default_factory=list)
    operation: Operation | None = None
    operation_text: str = ""
    superlative: Superlative | None = None
    part: Part | None = None
    span: YearSpan | None = None  # "近三年", "历年", "2022—2024年" for one place (rag.text.years)
    trend: bool = False  # one place, one figure, several years: the trend path (rag.answer.trend)
    trend_years: list[int] = field(default_factory=list)  # the place's indexed years it covers
    trend_missing: list[int] = field(default_factory=list)  # years it asks for that the index lacks
    instance: str = ""  # for "哪些文件/荣誉": the pattern a sentence naming one matches (rag.text.lists)
    asks: list[Ask] = field(default_factory=list)  # two or more figures asked in separate clauses

    @property
    def stated(self) -> str:
        """The normalised question without its operation words: what it states (a threshold it
        asks about, 超过1000件了吗, is not a figure it states)."""
        return self.normalised.replace(self.operation_text, " ") if self.operation_text else self.normalised

    @property
    def refusal_reason(self) -> str | None:
        """Why the index cannot answer at all, or None when retrieval should go ahead."""
        if self.missing_regions and not self.regions:
            return "region"
        if self.years and not self.filter_years and not self.place_years:
            return "year"
        return None


@lru_cache(maxsize=None)  # called for every indexed province on every question
def _pinyin(name: str) -> str:
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(name)).lower()


@lru_cache(maxsize=1)
def _outside_places_by_pinyin() -> dict[str, str]:
    """English (pinyin) names of provinces and prefecture-level cities: 'chengdu' -> 成都市."""
    gazetteer = Gazetteer.default()
    names: dict[str, str] = {}
    for name in gazetteer.names(levels=("province", "city")):
        spelled = _pinyin(short_name(name))
        if len(spelled) >= 4:
            names.setdefault(spelled, name)
    return names


def _is_place_word(word: str) -> bool:
    """Whether jieba's tagger reads a short name in a question as a place (ns), not a common word."""
    import jieba.posseg as posseg

    tagged = list(posseg.cut(word))
    return len(tagged) == 1 and tagged[0].flag.startswith("ns")


# Size: one question's reading (places, years, scope, terms, operation); place matching
# (_places) is the longest part because of the spellings it accepts (太原/太原市/taiyuan).
class QueryAnalyzer:
    """Analyse questions against the reports in the index.

    Example:
        >>> analyzer = QueryAnalyzer(index.reports())
        >>> a = analyzer.run("太原和绵阳2024年新收行政复议案件各多少？")
        >>> a.regions, a.years, a.scope
        (['太原市', '绵阳市'], [2024], 'several')
    """

    def __init__(self, reports: list[ReportRecord], gazetteer: Gazetteer | None = None):
        self.reports = [r for r in reports if r.region]
        self.gazetteer = gazetteer or Gazetteer.default()
        self._years_of: dict[str, set[int]] = {}
        for r in self.reports:
            self._years_of.setdefault(r.region, set()).update([r.year] if r.year else [])
        # Every spelling of an indexed region: 太原市, 太原, taiyuan (traditional forms match
        # because the question is simplified first).
        self._aliases: dict[str, str] = {}
        self._english: dict[str, str] = {}
        for region in self._years_of:
            form = matching_form(region)
            self._aliases[form] = region
            short = short_name(form)
            if len(short) >= 2:
                self._aliases.setdefault(short, region)
            self._english[_pinyin(short)] = region
        # A township or district named with the place it lies in (太仓市城厢镇, 杭州西湖区) is one
        # place, not two: the whole spelling is an alias, taken before its parts (longest first).
        # Townships have no short form: 城厢 alone is too common a word.
        for r in self.reports:
            if r.parent:
                for parent in {matching_form(r.parent), short_name(matching_form(r.parent))}:
                    self._aliases.setdefault(parent + matching_form(r.region), r.region)
        # A province holding indexed places (山西省 -> 太原市, 侯马市) means those places.
        self._provinces: dict[str, list[str]] = {}
        for r in self.reports:
            if r.province and r.region not in self._provinces.setdefault(r.province, []):
                self._provinces[r.province].append(r.region)

    # --- public --------------------------------------------------------------------------

    def run(self, question: str, *, split: bool = True) -> QueryAnalysis:
        """The question's analysis (``split=False``: without ``asks``, for one of its clauses)."""
        normalised = matching_form(arabic_years(question or ""))
        analysis = QueryAnalysis(question=question, normalised=normalised)
        han = sum(1 for ch in normalised if "\u4e00" <= ch <= "\u9fff")
        latin = sum(len(w) for w in _WORD.findall(normalised))
        analysis.language = "en" if latin > 2 * han else "zh"

        named, outside, spans, analysis.place_spans = self._places(normalised)
        topic = list(normalised)
        for start, end in spans:
            topic[start:end] = " " * (end - start)
        analysis.topic = QUESTION_YEAR.sub(" ", "".join(topic))
        # Several years of one place: the span words and "变化/趋势" leave the topic (the figure is
        # what the reports state, year by year).
        span = year_span(normalised) if len(named) == 1 else None
        several_years = span is not None or (len(named) == 1 and len(years_in_question(normalised)) > 1)
        if span is not None:
            analysis.span = span
            analysis.topic = analysis.topic.replace(QUESTION_YEAR.sub(" ", span.text), " ")
        if several_years and _TREND_WORDS.search(analysis.topic):
            analysis.topic = _TREND_WORDS.sub(" ", analysis.topic)
            analysis.trend = True  # asked how it changed: a figure, even without 多少
        analysis.part = ReportParts.default().asked(normalised)
        kind = asked_kind(analysis.topic)
        if kind:
            # "有哪些荣誉": sentences say 被评为…, not 荣誉; the word leaves the terms, the pattern stays.
            # Unless it is all the question names ("报告提到了哪些品牌"): then it is the topic too.
            without = analysis.topic.replace(kind[0], " ")  # every time: "获得了全国性荣誉？分别是什么荣誉"
            if question_terms(without):
                analysis.topic = without
            analysis.instance = kind[1]
        analysis.operation, analysis.operation_text = asked_operation(analysis.topic)
        if analysis.operation:
            # No sentence holds "合计" or "百分之几" for the figures it states: those words go.
            analysis.topic = without_operation(analysis.topic, analysis.operation)
            if analysis.operation in ("share", "threshold"):
                # A rate asked of counts ("成功率…占…的比例", "采纳率超过三分之一"): the count is stated.
                analysis.topic = without_operation(analysis.topic, "rate")
        analysis.superlative, superlative_text = asked_superlative(analysis.topic)
        if analysis.superlative:
            analysis.topic = analysis.topic.replace(superlative_text, " ", 1)  # no sentence says 最少
        either: list[list[list[str]]] = []
        if analysis.language == "en":
            # Chinese the question quotes ("八五" plan) counts as much as the glossary's terms.
            analysis.terms = list(dict.fromkeys(question_terms(english_to_chinese(analysis.topic))
                                                + question_terms(" ".join(_HAN_RUN.findall(analysis.topic)))))
        else:
            # Everyday words read as the reports' terms (案子 -> 案件); see rag/text/data/synonyms.toml.
            analysis.topic, either = Synonyms.default().rewrite(analysis.topic)
            analysis.terms = question_terms(analysis.topic)
        analysis.alternatives = alternatives(analysis.topic, analysis.terms)
        if analysis.language != "en" and either:
            analysis.terms += [t for group in either for option in group for t in option if t not in analysis.terms]
            analysis.alternatives += either
        analysis.regions = named
        analysis.missing_regions = outside
        analysis.years = years_in_question(normalised)
        if span is not None and span.kind == "range":
            analysis.years = sorted(set(analysis.years) | set(range(span.start, span.end + 1)))
        analysis.comparative = bool(_COMPARE.search(normalised)) or len(named) > 1
        compares_amounts = len(named) > 1 and bool(_COMPARE_AMOUNT.search(analysis.topic))
        if compares_amounts:
            # "哪个更大", "多一些": the comparison asked, not words a report sentence holds.
            analysis.terms = [t for t in analysis.terms if not _COMPARISON_WORD.fullmatch(t)]
        # "哪个城市…最少", "A和B哪个多", "从多到少排列" and "平均每个…" ask for figures without 多少.
        analysis.asks_figure = (bool(_ASKS_FIGURE.search(normalised)) or analysis.trend or compares_amounts
                                or analysis.superlative is not None or analysis.operation is not None)

        if len(named) > 1:
            analysis.scope = "several"
        elif named:
            analysis.scope = "one"
        elif _ALL_SCOPE.search(normalised):
            analysis.scope = "all"
        self._resolve_years(analysis)
        if several_years:
            self._resolve_trend(analysis)
        # A rate asked beside a count ("留言多少件？办结率是多少？") is one ask of two, not the whole.
        if split and analysis.asks_figure and analysis.operation in (None, "rate") and not analysis.trend:
            analysis.asks = self._asks(question)
        return analysis

    def _asks(self, question: str) -> list[Ask]:
        """The question's figure asks, each analysed on its own; empty unless there are two or more
        with two terms or more each (a clause of one term, "留下了多少支", says too little alone)."""
        asks: list[Ask] = []
        for clause in split_asks(question):
            sub = self.run(clause, split=False)
            if len(set(sub.terms)) < 2 and asks:
                previous = asks.pop()
                clause = previous.text + clause
                sub = self.run(clause, split=False)
            asks.append(Ask(text=clause, normalised=sub.normalised, terms=tuple(sub.terms),
                            alternatives=tuple(sub.alternatives)))
        return asks if len(asks) > 1 and all(len(set(a.terms)) >= 2 for a in asks) else []

    def place_names(self) -> dict[str, str]:
        """Every spelling of every indexed region (太原, 太原市, taiyuan) -> its official name."""
        return {**self._aliases, **self._english}

    def describe_reports(self, language: str = "zh") -> str:
        """The indexed reports as one line, for refusals: 太原市2024年、侯马市2023年…"""
        pairs = sorted({(r.region, r.year) for r in self.reports})
        if language == "en":
            return ", ".join(f"{region} {year or '(year unknown)'}" for region, year in pairs) or "none"
        return "、".join(f"{region}{year or '（年份未知）'}年" if year else f"{region}（年份未知）"
                        for region, year in pairs) or "无"

    # --- parts ---------------------------------------------------------------------------

    def _resolve_place_years(self, analysis: QueryAnalysis) -> bool:
        """Years in brackets after some of the places named ("侯马（2023年）、太仓、太原"), when no
        year is named for all: each is that place's, and the others are taken in any year.
        False when that is not the question's form (the years then filter every place)."""
        text = analysis.normalised
        attached: dict[str, list[int]] = {}
        rest = text
        for start, end in analysis.place_spans:
            m = _BRACKET_YEAR.match(text, end)
            region = self._aliases.get(text[start:end]) or self._english.get(text[start:end])
            if m and region:
                attached.setdefault(region, []).append(int(m.group(1)))
                rest = rest[:m.start()] + " " * (m.end() - m.start()) + rest[m.end():]
        if not attached or years_in_question(rest) or all(r in attached for r in analysis.regions):
            return False
        for region, years in attached.items():
            have = [y for y in dict.fromkeys(years) if y in self._years_of.get(region, set())]
            analysis.missing_years += [y for y in years if y not in have and y not in analysis.missing_years]
            if have:
                analysis.place_years[region] = have
            elif region in analysis.regions:  # no report of that place for its year
                analysis.regions.remove(region)
                analysis.missing_regions.append(region)
        analysis.filter_years = []
        return True

    def _places(self, text: str) -> tuple[list[str], list[str], list[tuple[int, int]], list[tuple[int, int]]]:
        """Indexed regions named in the text, named places that are not indexed, and their spans."""
        found: list[tuple[int, str]] = []
        taken: list[tuple[int, int]] = []

        def free(start: int, end: int) -> bool:
            return all(end <= s or start >= e for s, e in taken)

        # Longest aliases first, so 石家庄市 is taken before 石家庄. Only those in the text are
        # searched: a regex per alias for thousands of indexed places costs tens of ms.
        for alias in sorted((a for a in self._aliases if a in text), key=len, reverse=True):
            for m in re.finditer(re.escape(alias), text):
                if free(m.start(), m.end()):
                    found.append((m.start(), self._aliases[alias]))
                    taken.append((m.start(), m.end()))
        for m in _WORD.finditer(text):
            region = self._english.get(m.group())
            if region:
                found.append((m.start(), region))
                taken.append((m.start(), m.end()))

        for province, regions in self._provinces.items():
            # Longest first (山西省 before 山西): a set's order changes from run to run.
            for alias in sorted({matching_form(province), short_name(matching_form(province))}, key=len, reverse=True):
                for m in re.finditer(re.escape(alias), text):
                    if len(alias) >= 2 and free(m.start(), m.end()):
                        found.extend((m.start(), region) for region in regions)
                        taken.append((m.start(), m.end()))
            spelled = _pinyin(short_name(province))
            for m in _WORD.finditer(text):
                if m.group() == spelled and free(m.start(), m.end()):
                    found.extend((m.start(), region) for region in regions)
                    taken.append((m.start(), m.end()))

        indexed_spans = list(taken)
        outside: list[tuple[int, str]] = []
        for mention in self.gazetteer.find(text):
            if free(mention.start, mention.end) and mention.name not in self._years_of:
                # A county named inside an indexed city's name is not a second place.
                outside.append((mention.start, mention.name))
                taken.append((mention.start, mention.end))
        for name in self.gazetteer.names(levels=("province", "city")):
            short = short_name(name)
            if len(short) < 2 or name in self._years_of or short not in text:
                continue
            for m in re.finditer(re.escape(short), text):
                if free(m.start(), m.end()) and _is_place_word(short):
                    outside.append((m.start(), name))
                    taken.append((m.start(), m.end()))
        english_outside = _outside_places_by_pinyin()
        for m in _WORD.finditer(text):
            name = english_outside.get(m.group())
            if name and name not in self._years_of and free(m.start(), m.end()):
                outside.append((m.start(), name))
                taken.append((m.start(), m.end()))

        def ordered(pairs: list[tuple[int, str]]) -> list[str]:
            names: list[str] = []
            for _, name in sorted(pairs):
                if name not in names:
                    names.append(name)
            return names

        return ordered(found), ordered(outside), taken, sorted(indexed_spans)

    def _resolve_trend(self, analysis: QueryAnalysis) -> None:
        """A figure of one place over several years: the years its indexed reports cover.

        "近三年" counts back from the place's latest report, "历年/逐年" takes every year held,
        "2022—2024年" and "2023年和2024年" the years named; years without a report are kept
        apart (``trend_missing``) for the answer to name.
        """
        if len(analysis.regions) != 1 or not analysis.asks_figure:
            analysis.trend = False
            return
        held = sorted(self._years_of.get(analysis.regions[0], set()))
        if analysis.span is not None and analysis.span.kind != "range":
            analysis.trend_years, analysis.trend_missing = analysis.span.resolve(held)
            analysis.filter_years = list(analysis.trend_years)  # retrieval covers the same years
        else:
            analysis.trend_years = list(analysis.filter_years)
            analysis.trend_missing = list(analysis.missing_years)
        # One year held is no series: the ordinary paths answer it (the report's own 同比 figure
        # for "比2023年增长多少" asked of a 2024 report), and the answer names the years missing.
        analysis.trend = len(analysis.trend_years) > 1

    def _resolve_years(self, analysis: QueryAnalysis) -> None:
        if not analysis.years:
            return
        if self._resolve_place_years(analysis):
            return
        regions = analysis.regions or list(self._years_of)
        available = set().union(*(self._years_of.get(r, set()) for r in regions)) if regions else set()
        years = list(analysis.years)
        if ReportParts.default().asked(analysis.question) == "plans":
            # "2025年的工作安排" is in the 2024 report: a report plans the year after its own.
            years = [y - 1 if y not in available and y - 1 in available else y for y in years]
        analysis.filter_years = list(dict.fromkeys(y for y in years if y in available))
        analysis.missing_years = [y for y in years if y not in available]
        if analysis.regions and analysis.filter_years:
            # A named place without a report for any named year cannot be answered for it.
            uncovered = [r for r in analysis.regions
                         if not self._years_of.get(r, set()) & set(analysis.filter_years)]
            for region in uncovered:
                analysis.regions.remove(region)
                analysis.missing_regions.append(region)
            if not analysis.regions:
                analysis.filter_years = []
