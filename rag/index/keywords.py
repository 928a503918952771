"""Keyword search: BM25 (bm25s) over jieba tokens of each chunk's matching form.

Embeddings find passages that mean the same; BM25 finds the ones that *say* the same:
the exact metric phrase ("新收行政复议案件") and figures. Both are fused by the retriever.
The index is built from the committed chunks of the Chroma collection and rebuilt only when
the set of report versions changes; ``KeywordStore`` keeps it on disk (each report's tokens,
and the built index) so start-ups and changes re-tokenize only what is new.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from rag.text.lexicons import LEXICONS
from rag.text.normalize import matching_form

# Question words and fillers: matching them says nothing about a passage (rag/text/data/stopwords.txt).
STOPWORDS = LEXICONS.stopwords
# A token holding one of these only makes a sentence a question (几个, 哪一部, 各是, 多少).
_QUESTION_PART = re.compile(r"哪|几|多少|什么|谁|吗|怎样|如何|是否|各是|各有|各为|分别")
_WHICH_COUNT = re.compile(r"哪(?:[一二两三四五六七八九十]+|\d+)(?:个|份|项|种|类|家|条|件|部|位|名|支|批|本|篇|张|级|方面|大)?")
# Words about the report rather than its content ("哪些城市的报告列出了…数量"): meta_words.txt.
_META_WORDS = LEXICONS.meta_words
_TOKEN_OK = re.compile(r"[\w%.]", re.UNICODE)
# "报告中新收…": the 中 of "in the report" belongs to the report word, not to the next word (jieba
# cuts 报告 | 中新 | 收), and the whole phrase is about the report, not its content.
_IN_THE_REPORT = re.compile(r"报告(?:当中|中|里|内)")
# "三地", "两市", "四个城市": how many places the question names, not what their reports say.
_PLACE_COUNT = re.compile(r"[两二三四五六七八九十]+(?:个|座)?(?:地|市|城市|地方|地区|份报告|个报告)(?![\u4e00-\u9fff]{0,1}(?:联动|协同|一体))")


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Search tokens of a text: jieba's search-mode words of its matching form.

    Example:
        >>> tokenize("太倉市新收行政復議申請325件")
        ['太仓', '太仓市', '新收', '行政', '复议', '申请', '325', '件']
    """
    words = _jieba().cut_for_search(matching_form(text))
    tokens = []
    for word in words:
        word = word.strip()
        if not word or not _TOKEN_OK.search(word):
            continue
        if not keep_stopwords and word in STOPWORDS:
            continue
        tokens.append(word)
    return tokens


def question_terms(text: str) -> list[str]:
    """The content terms of a question: its tokens without question and meta words.

    Example:
        >>> question_terms("2024年完成了几个审计项目？")
        ['2024', '完成', '审计', '项目']
    """
    # "是哪三份文书": the count after 哪 belongs to the question word (jieba cuts 哪 | 三份), not to
    # the terms a sentence should hold; the sentence lists the three instead.
    text = _PLACE_COUNT.sub(" ", _IN_THE_REPORT.sub(" ", _WHICH_COUNT.sub(" ", matching_form(text))))
    # Whole words first (哪一部), so their parts (一部) are dropped with them.
    words = _jieba().cut(text)
    kept = " ".join(w for w in words if not _QUESTION_PART.search(w))
    return [t for t in tokenize(kept) if not _QUESTION_PART.search(t) and t not in _META_WORDS]


@dataclass
class KeywordHit:
    """A chunk id with its BM25 score."""

    id: str
    score: float


class KeywordIndex:
    """BM25 over a fixed set of chunks.

    Args:
        ids: chunk ids, one per text.
        texts: the text to index for each chunk (heading and passage).
        metadatas: each chunk's metadata, used by ``search``'s filter.

    Example:
        >>> kw = KeywordIndex(["a", "b"], ["新收行政复议案件1274件", "法律援助案件"], [{}, {}])
        >>> kw.search("新收行政复议案件", k=1)[0].id
        'a'
    """

    def __init__(self, ids: list[str], texts: list[str] | None, metadatas: Sequence[dict],
                 tokens: Iterable[list[str]] | None = None):
        import bm25s

        if tokens is None:
            if texts is None or len(texts) != len(ids):
                raise ValueError("ids and texts must have the same length")
            tokens = (tokenize(t) for t in texts)
        # Token ids made here, one document at a time (tokens may be a generator: the strings
        # of 50,000 chunks are never all in memory), faster than bm25s's own str->id step.
        # First: a generator may fill ids and metadatas as it goes.
        vocab: dict[str, int] = {}
        token_ids = [[vocab.setdefault(t, len(vocab)) for t in (doc or ["\u2205"])] for doc in tokens]
        self.ids = list(ids)
        # A sequence is kept as it is (the retriever's compact per-report metadata).
        self.metadatas = metadatas if isinstance(metadatas, Sequence) else list(metadatas)
        self._bm25 = bm25s.BM25()
        self._df: dict[str, int] | None = None
        if not (len(self.ids) == len(token_ids) == len(self.metadatas)):
            raise ValueError("ids, texts (or tokens) and metadatas must have the same length")
        if self.ids:
            self._bm25.index((token_ids, vocab), show_progress=False)

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: str | Iterable[str]) -> np.ndarray:
        """BM25 score of every chunk for a query (text, or tokens already made)."""
        if not self.ids:
            return np.zeros(0, dtype=np.float32)
        tokens = tokenize(query) if isinstance(query, str) else list(query)
        vocab = self._bm25.vocab_dict
        known = [t for t in tokens if t in vocab]
        if not known:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    def search(self, query: str | Iterable[str], k: int = 10,
               where: "callable | None" = None, mask: np.ndarray | None = None) -> list[KeywordHit]:
        """The ``k`` best chunks with a positive score.

        Args:
            query: the question's text or its tokens.
            k: how many.
            where: keep only chunks whose metadata it accepts.
            mask: keep only chunks whose entry is True (one per chunk; the retriever's
                place/year filter, which spares ``where`` a call per scored chunk).
        """
        scores = self.scores(query)
        if mask is not None and len(scores):
            scores = np.where(mask, scores, 0.0)
        candidates = np.flatnonzero(scores > 0)  # sort only these: a few hundred of 50,000
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        hits: list[KeywordHit] = []
        for i in order:
            if len(hits) >= k:
                break
            if where is None or where(self.metadatas[i]):
                hits.append(KeywordHit(self.ids[i], float(scores[i])))
        return hits

    def idf(self, token: str) -> float:
        """How rare a token is across the chunks (0 for an unknown token): weights sentence matching."""
        n = len(self.ids)
        if not n:
            return 0.0
        df = self._doc_freq().get(token, 0)
        if not df:
            return 0.0
        return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))

    def _doc_freq(self) -> dict[str, int]:
        if self._df is None:
            vocab = self._bm25.vocab_dict
            matrix = self._bm25.scores  # CSC data: per-token column of documents
            counts = np.diff(np.asarray(matrix["indptr"]))
            self._df = {token: int(counts[i]) for token, i in vocab.items() if i < len(counts)}
        return self._df


# --- persistence ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def tokenizer_fingerprint() -> str:
    """Changes whenever tokens would: the tokenizer's code, its word lists, jieba's version."""
    import inspect

    import jieba

    parts = [inspect.getsource(tokenize), " ".join(sorted(STOPWORDS)), _TOKEN_OK.pattern, jieba.__version__]
    return hashlib.sha1("\n".join(parts).encode("utf-8")).hexdigest()[:12]


@dataclass
class ReportChunks:
    """One report version's committed chunks as the retriever's snapshot needs them.

    Attributes:
        signature: a hash of the report's stored fields; a ``rag set`` or a new version changes it.
        tokens: each chunk's tokens joined by U+001F (a pickle of millions of separate
            strings loads far slower).
        vectors: the chunks' stored embeddings (float32, one row per chunk), for exact search
            within a place or year.
    """

    doc_id: str
    signature: str
    ids: list[str]
    texts: list[str]
    metadatas: list[dict]
    tokens: list[str]
    vectors: np.ndarray | None = None

    def token_lists(self) -> list[list[str]]:
        return [t.split("\x1f") if t else [] for t in self.tokens]


class KeywordStore:
    """BM25 snapshots on disk, so that neither a question nor a start-up re-tokenizes the corpus.

    Two kinds of files in ``folder``: ``reports/DOC@SIGNATURE.pkl``, one report version's
    chunks and tokens (written once, reused by every later snapshot), and ``snapshot.pkl``,
    the built index for one set of report versions (its key inside). A start-up whose key
    matches loads the snapshot; otherwise only reports without a file are tokenized and the
    BM25 matrix is rebuilt from the stored tokens. Files are replaced atomically, so several
    processes may share a folder.

    Args:
        folder: where the files go; None keeps nothing (tests, read-only places).
    """

    def __init__(self, folder: str | os.PathLike | None):
        self.folder = Path(folder).expanduser() if folder else None

    def _write(self, path: Path, value) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError as exc:  # a cache that cannot be written costs time, never an answer
            logging.getLogger(__name__).warning("keyword cache %s not written: %s", path, exc)

    @staticmethod
    def _read(path: Path):
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except FileNotFoundError:
            return None
        except Exception as exc:  # truncated or from an incompatible version: rebuilt
            logging.getLogger(__name__).warning("keyword cache %s unreadable (%s); rebuilding it", path, exc)
            return None

    def _report_path(self, doc_id: str, signature: str) -> Path:
        return self.folder / "reports" / f"{doc_id}@{signature}.pkl"

    def has_report(self, doc_id: str, signature: str) -> bool:
        return self.folder is not None and self._report_path(doc_id, signature).is_file()

    def load_report(self, doc_id: str, signature: str) -> ReportChunks | None:
        if self.folder is None:
            return None
        found = self._read(self._report_path(doc_id, signature))
        return found if isinstance(found, ReportChunks) else None

    def save_report(self, chunks: ReportChunks) -> None:
        if self.folder is not None:
            self._write(self._report_path(chunks.doc_id, chunks.signature), chunks)

    def load_snapshot(self, key: str) -> dict | None:
        """The snapshot saved for ``key`` (a dict), or None."""
        if self.folder is None:
            return None
        found = self._read(self.folder / "snapshot.pkl")
        return found if isinstance(found, dict) and found.get("key") == key else None

    def save_snapshot(self, key: str, value: dict, keep: set[tuple[str, str]]) -> None:
        """Save the snapshot for ``key``; report files not in ``keep`` (doc_id, signature) are deleted."""
        if self.folder is None:
            return
        self._write(self.folder / "snapshot.pkl", {**value, "key": key})
        wanted = {f"{doc}@{sig}.pkl" for doc, sig in keep}
        for path in (self.folder / "reports").glob("*.pkl"):
            if path.name not in wanted:
                path.unlink(missing_ok=True)
