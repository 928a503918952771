"""The composition root: everything the settings describe, built in one place.

The CLI, the app, the evaluation and the benchmarks get their embeddings, index, retriever and
answerer from here, so the wiring (which embeddings for queries and which for ingest, which
chat model, shared or owned model process) is written once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.config import Settings
from rag.index.embeddings import embeddings_from_settings, make_embeddings
from rag.index.store import ReportIndex

if TYPE_CHECKING:  # imported where used: `rag list` opens the index and nothing of the answer stack
    from langchain_core.embeddings import Embeddings

    from rag.answer.answerer import Answerer
    from rag.retrieve.hybrid import HybridRetriever


def query_embeddings(settings: Settings) -> Embeddings:
    """The embedding model for questions (not behind the cache: questions are rarely repeated)."""
    return make_embeddings(settings.embeddings, settings.llm_base_url, settings.llm_api_key)


def open_index(settings: Settings, *, for_ingest: bool = False, embeddings: Embeddings | None = None) -> ReportIndex:
    """The index the settings name.

    Args:
        for_ingest: it will store vectors: the embedding model behind the embedding cache.
            Otherwise no embedding model is loaded unless ``embeddings`` is given (listing,
            removing and correcting reports need none).
        embeddings: the embedding model to use instead.
    """
    if embeddings is None and for_ingest:
        embeddings = embeddings_from_settings(settings)
    return ReportIndex(settings, embeddings)


def build_retriever(settings: Settings, *, k: int = 8, embeddings: Embeddings | None = None) -> HybridRetriever:
    """The hybrid retriever over the index, with the query embedding model."""
    from rag.retrieve.hybrid import HybridRetriever

    return HybridRetriever(index=open_index(settings, embeddings=embeddings or query_embeddings(settings)), k=k)


def build_answerer(settings: Settings, *, mode: str | None = None, k: int = 8,
                   share_server: bool = False) -> Answerer:
    """The answerer the settings describe; the chat model is set up only when ``mode`` may use it.

    Args:
        mode: ``extractive`` needs no chat model; otherwise the settings' one is set up (its
            absence is recorded as the reason, and answers are extractive).
        share_server: run the bundled model in a process shared with other CLI runs.
    """
    from rag.answer.answerer import Answerer, ContextBudget
    from rag.models.chat import ChatModelUnavailable, make_chat_model

    retriever = build_retriever(settings, k=k)
    chat_model, reason = None, None
    if mode != "extractive":
        try:
            chat_model = make_chat_model(settings, share_server=share_server)
        except ChatModelUnavailable as exc:
            reason = str(exc)
    return Answerer(retriever, chat_model, k=k, unavailable_reason=reason, budget=ContextBudget.for_llm(settings.llm))
