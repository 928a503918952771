"""Lexicons and thresholds: the reviewed data that matching and answering run on.

Each lives in a file of ``rag/text/data/`` that a reviewer reads and diffs like code: the English
glossary, stop words, words about the report itself, light verbs, and the thresholds of the
extractive answer and of comparisons. They are loaded once (``LEXICONS``); ``describe()`` is
what every ``rag eval`` run records, so that ``rag eval compare`` can say when two runs ran on
different data.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).with_name("data")
FILES = ("glossary.toml", "stopwords.txt", "meta_words.txt", "light_verbs.txt", "thresholds.toml", "parts.toml",
         "synonyms.toml", "arithmetic.toml", "list_kinds.toml",
         "issuers.toml", "units.toml", "stages.toml")  # issuers: read by rag.text.places; listed so every eval run records it


def _words(text: str) -> frozenset[str]:
    return frozenset(w for line in text.splitlines() if not line.lstrip().startswith("#") for w in line.split())


@dataclass(frozen=True)
class Lexicons:
    """The loaded data.

    Args:
        glossary: English phrase -> the reports' Chinese terms.
        stopwords: question words and fillers, never matched.
        meta_words: words about the report rather than its content.
        light_verbs: interchangeable work verbs, weighed less.
        thresholds: section -> name -> value (``thresholds.toml``).
        parts: the report parts' vocabulary (``parts.toml``, read by ``rag.text.parts``).
        synonyms: report term -> the everyday words a question uses for it (``synonyms.toml``).
        arithmetic: what a question asks to compute (``arithmetic.toml``, read by ``rag.answer.arithmetic``).
        list_kinds: list questions' category words and what names their instances (``list_kinds.toml``).
        asked_units: a measure word a question asks for -> the units of a figure that answer it
            (``units.toml``, read by ``rag.answer.refusals``).
        stages: a case's stages (received, settled) -> the words the reports use for each
            (``stages.toml``, read by ``rag.answer.refusals``).
        fingerprints: file name -> the first 12 hex digits of its SHA-256.
        folder: where the files were read from (named in errors).
    """

    glossary: dict[str, str]
    stopwords: frozenset[str]
    meta_words: frozenset[str]
    light_verbs: frozenset[str]
    thresholds: dict[str, dict[str, float]]
    parts: dict
    synonyms: dict[str, list[str]]
    arithmetic: dict
    list_kinds: list[dict]
    asked_units: dict[str, list[str]]
    stages: dict[str, list[str]]
    fingerprints: dict[str, str]
    folder: Path = DATA

    class DataError(ValueError):
        """A data file is missing or malformed; the message names it."""

    @classmethod
    def load(cls, folder: Path = DATA) -> "Lexicons":
        """Raises: Lexicons.DataError: naming the file and what is wrong with it."""
        texts, fingerprints = {}, {}
        for name in FILES:
            path = folder / name
            try:
                raw = path.read_bytes()
                texts[name] = raw.decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise Lexicons.DataError(f"{path}: cannot be read as UTF-8 text: {exc}") from exc
            fingerprints[name] = hashlib.sha256(raw).hexdigest()[:12]
        try:
            glossary = tomllib.loads(texts["glossary.toml"])["glossary"]
            thresholds = tomllib.loads(texts["thresholds.toml"])
            parts = tomllib.loads(texts["parts.toml"])
            synonyms = tomllib.loads(texts["synonyms.toml"])["synonyms"]
            arithmetic = tomllib.loads(texts["arithmetic.toml"])
            list_kinds = tomllib.loads(texts["list_kinds.toml"])["kinds"]
            asked_units = tomllib.loads(texts["units.toml"])["asked"]
            stages = tomllib.loads(texts["stages.toml"])["stages"]
        except (tomllib.TOMLDecodeError, KeyError) as exc:
            raise Lexicons.DataError(f"{folder}: glossary.toml needs a [glossary] table, synonyms.toml a [synonyms] "
                                     f"table, and thresholds.toml and parts.toml must be valid TOML: {exc}") from exc
        bad_synonyms = [k for k, v in synonyms.items() if not (isinstance(v, list) and all(isinstance(w, str) for w in v))]
        if bad_synonyms:
            raise Lexicons.DataError(f"{folder / 'synonyms.toml'}: entries must be a term -> a list of words: {bad_synonyms[:5]}")
        bad = [k for k, v in glossary.items() if not isinstance(v, str) or k != k.lower()]
        if bad:
            raise Lexicons.DataError(f"{folder / 'glossary.toml'}: entries must be lower-case English -> Chinese text: {bad[:5]}")
        return cls(glossary=glossary, stopwords=_words(texts["stopwords.txt"]),
                   meta_words=_words(texts["meta_words.txt"]), light_verbs=_words(texts["light_verbs.txt"]),
                   thresholds=thresholds, parts=parts, synonyms=synonyms, arithmetic=arithmetic, list_kinds=list_kinds,
                   asked_units=asked_units, stages=stages, fingerprints=fingerprints, folder=folder)

    def threshold(self, section: str, name: str) -> float:
        """Raises: Lexicons.DataError: the threshold is not in thresholds.toml."""
        try:
            return float(self.thresholds[section][name])
        except (KeyError, TypeError, ValueError) as exc:
            raise Lexicons.DataError(f"{self.folder / 'thresholds.toml'}: [{section}] {name} is missing or not a number") from exc

    def describe(self) -> dict:
        """What an evaluation run records: the thresholds, and each file's size and fingerprint."""
        sizes = {"glossary.toml": len(self.glossary), "stopwords.txt": len(self.stopwords),
                 "meta_words.txt": len(self.meta_words), "light_verbs.txt": len(self.light_verbs),
                 "synonyms.toml": len(self.synonyms), "units.toml": len(self.asked_units),
                 "stages.toml": sum(len(words) for words in self.stages.values())}
        return {"thresholds": self.thresholds,
                "files": {name: {"sha256": self.fingerprints[name], **({"entries": sizes[name]} if name in sizes else {})}
                          for name in FILES}}


LEXICONS = Lexicons.load()
