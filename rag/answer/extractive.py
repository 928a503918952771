"""Extractive answers: the report's own sentences that answer the question, each cited.

No language model is involved, so nothing can be invented: the answer is made of sentences
copied from the retrieved passages. A sentence is scored by how much of the question's
weighted terms it contains (rare terms like "新收" weigh more than common ones like "工作",
and a term the corpus never uses weighs most: asking for it means the reports likely do not
say). A question that asks for a figure needs a sentence that holds one, and any number named
in the question must appear in it. Below a calibrated coverage the answer is a refusal.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field

from rag.index.keywords import KeywordIndex
from rag.retrieve.query import QueryAnalysis
from rag.types import Passage
from rag.text.lexicons import LEXICONS
from rag.text.normalize import matching_form
from rag.text.sentences import split_sentences

# Coverage a sentence needs to count as an answer, calibrated on the project's question set
# (docs/answering.md); below it the reports are taken not to say. The values and the word list
# are data: rag/text/data/thresholds.toml [extractive] and light_verbs.txt.
MIN_COVERAGE = LEXICONS.threshold("extractive", "min_coverage")
MAX_SENTENCES = 3
MAX_LIST_SENTENCES = 5  # "有哪些基地": each sentence may name another one
# Work verbs that reports use interchangeably (开展/完成/办理审计项目) weigh less than the nouns
# that name the metric.
LIGHT_VERBS = LEXICONS.light_verbs
LIGHT_WEIGHT = LEXICONS.threshold("extractive", "light_weight")
# One Han character left over by the tokenizer (枫桥式 -> 枫桥 + 式) names little on its own.
FRAGMENT_WEIGHT = LEXICONS.threshold("extractive", "fragment_weight")

MIN_SENTENCE_CHARS = 5  # 好。/ 对。: too short for an answer to rest on
_FIGURE = re.compile(r"\d")
_QUESTION_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?%?")


@dataclass
class Sentence:
    """One sentence of a retrieved passage."""

    text: str
    passage: int  # 1-based number of its passage among the contexts
    region: str | None
    year: int | None
    form: str = ""
    coverage: float = 0.0
    covered: frozenset[str] = field(default_factory=frozenset)

    @property
    def has_figure(self) -> bool:
        return bool(_FIGURE.search(re.sub(r"(19|20)\d{2}年", "", self.form)))


@dataclass
class ExtractiveAnswer:
    """The chosen sentences (in answer order) and whether they support an answer."""

    lines: list[str]
    sentences: list[Sentence]
    support: float
    refused: bool


def stated_numbers(analysis: QueryAnalysis) -> list[str]:
    """The figures the question states (years aside): an answering sentence must hold them."""
    return [n for n in _QUESTION_NUMBER.findall(analysis.stated) if not re.fullmatch(r"(19|20)\d{2}", n)]


def holds_numbers(form: str, numbers: list[str]) -> bool:
    """Whether a sentence's matching form holds every one of ``numbers`` as a whole number."""
    return all(re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", form) for n in numbers)


def candidate_sentences(text: str) -> list[str]:
    """The sentences of a passage an answer may quote (``rag.text.sentences``, the very short left out)."""
    return split_sentences(text, min_chars=MIN_SENTENCE_CHARS)


class ExtractiveAnswerer:
    """Answer from the passages' own sentences.

    Args:
        keywords: the BM25 index, whose document frequencies weigh the question's terms.
        min_coverage: the refusal threshold (share of the question's term weight a sentence holds).

    Example:
        >>> answer = ExtractiveAnswerer(keywords).run(analysis, terms, passages)
        >>> answer.lines
        ['市政府行政复议局全年新收行政复议案件1274件,同比增长204%。[1]']
    """

    def __init__(self, keywords: KeywordIndex, min_coverage: float = MIN_COVERAGE):
        if not 0 < min_coverage <= 1:
            raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage}")
        self.keywords = keywords
        self.min_coverage = min_coverage

    def weights(self, terms: list[str]) -> dict[str, float]:
        """Weight of each question term: its IDF; terms the corpus never uses get the highest."""
        n = max(len(self.keywords), 1)
        unseen = math.log(1 + (n + 0.5) / 0.5)
        weights = {}
        for term in dict.fromkeys(terms):
            factor = LIGHT_WEIGHT if term in LIGHT_VERBS else 1.0
            if len(term) == 1 and "\u4e00" <= term <= "\u9fff":
                factor = min(factor, FRAGMENT_WEIGHT)
            weights[term] = (self.keywords.idf(term) or unseen) * factor
        return weights

    @staticmethod
    def coverage(form: str, weights: dict[str, float], alternatives: list[list[list[str]]] = ()
                 ) -> tuple[float, frozenset[str]]:
        """Share of the question's term weight found in ``form``, and the terms found.

        With alternatives ("枫桥经验"或"枫桥式"), the best choice of one alternative per group
        counts; the other alternatives' terms are left out of both sides.
        """
        found = frozenset(t for t in weights if t in form)
        total = sum(weights.values())
        best = (sum(weights[t] for t in found) / total if total else 0.0, found)
        for choice in itertools.product(*alternatives):
            kept = set().union(*choice)
            dropped = {t for group in alternatives for option in group for t in option} - kept
            rest = sum(w for t, w in weights.items() if t not in dropped)
            if rest:
                share = sum(weights[t] for t in found if t not in dropped) / rest
                if share > best[0]:
                    best = (share, found - dropped)
        return best

    def run(self, analysis: QueryAnalysis, terms: list[str], passages: list[Passage]) -> ExtractiveAnswer:
        """Pick the answer sentences.

        Args:
            analysis: the question's analysis (scope, regions, whether it asks for a figure).
            terms: the question's search terms in matching form (places and years removed).
            passages: the retrieved passages, numbered 1.. in this order.
        """
        weights = self.weights(terms)
        total = sum(weights.values())
        # A figure the question states must be in the answering sentence, except a threshold it
        # asks about (超过1000件了吗).
        numbers = stated_numbers(analysis)
        sentences = []
        for number, passage in enumerate(passages, start=1):
            for text in candidate_sentences(passage.text):
                s = Sentence(text=text, passage=number, region=passage.region, year=passage.year,
                             form=matching_form(text))
                s.coverage, s.covered = self.coverage(s.form, weights, analysis.alternatives)
                if not self._eligible(s, analysis, numbers):
                    s.coverage = 0.0
                sentences.append(s)

        if analysis.scope in ("several", "all") and len({p.region for p in passages}) > 1:
            chosen = self._per_place(sentences, passages, weights, total, named=analysis.scope == "several")
        else:
            chosen = self._cover(sentences, weights, total, listing=bool(analysis.instance))
        support = max((s.coverage for s in chosen), default=0.0)
        if not chosen or support < self.min_coverage * (0.75 if analysis.scope == "several" else 1.0):
            return ExtractiveAnswer(lines=[], sentences=[], support=support, refused=True)
        lines = []
        for s in chosen:
            prefix = f"{s.region}（{s.year}年）：" if analysis.scope in ("several", "all") and s.region else ""
            lines.append(f"{prefix}{s.text}[{s.passage}]")
        return ExtractiveAnswer(lines=lines, sentences=chosen, support=support, refused=False)

    # --- parts ---------------------------------------------------------------------------

    @staticmethod
    def _eligible(s: Sentence, analysis: QueryAnalysis, numbers: list[str]) -> bool:
        if analysis.asks_figure and not s.has_figure:
            return False
        if analysis.instance and not re.search(analysis.instance, s.form):
            return False  # "哪些文件": a sentence naming no 《…》 names none
        # "出庭应诉率达到100%": a sentence without that figure does not answer it.
        return holds_numbers(s.form, numbers)

    def _cover(self, sentences: list[Sentence], weights: dict[str, float], total: float,
               listing: bool = False) -> list[Sentence]:
        """Greedy cover: the best sentence, then sentences adding terms the first ones missed.

        Args:
            listing: the question asks which ones ("有哪些基地"): a further sentence that names
                one (every candidate does, ``_eligible``) and answers the question as well as
                the bar asks is another item of the list, though it adds no new term.
        """
        ranked = sorted(sentences, key=lambda s: (-s.coverage, s.passage))
        if not ranked or ranked[0].coverage <= 0:
            return []
        chosen = [ranked[0]]
        covered = set(ranked[0].covered)
        for s in ranked[1:]:
            if len(chosen) >= (MAX_LIST_SENTENCES if listing else MAX_SENTENCES):
                break
            gain = sum(weights[t] for t in s.covered - covered) / total if total else 0.0
            another_item = listing and s.coverage >= self.min_coverage
            if ((gain >= 0.15 or another_item) and s.coverage >= self.min_coverage * 0.8
                    and s.text not in {c.text for c in chosen}):
                chosen.append(s)
                covered |= s.covered
        return chosen

    def _per_place(self, sentences: list[Sentence], passages: list[Passage], weights: dict[str, float],
                   total: float, named: bool) -> list[Sentence]:
        """One line per place: each place's best sentence (places without support are left out)."""
        chosen = []
        # A place the question names gets its best sentence at a lower bar: the reports word the
        # same figure differently (开展/完成审计项目), and leaving a named place out misleads more.
        bar = self.min_coverage * (0.75 if named else 1.0)
        for region in dict.fromkeys(p.region for p in passages):
            best = self._cover([s for s in sentences if s.region == region], weights, total)[:1]
            if best and best[0].coverage >= bar:
                chosen.extend(best)
        return chosen
