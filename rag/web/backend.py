"""The index, retriever and answer modes behind the page, opened on first use."""

from __future__ import annotations

import threading

from rag.config import Settings
from rag.index.store import ReportIndex
from rag.ingest.uploads import UploadPolicy
from rag.retrieve.hybrid import HybridRetriever
from rag.web.access import Access
from rag.web.modes import AnswerModes


class Services:
    """The index, retriever and answer modes, opened lazily so that the page starts even when the
    index cannot be opened (a Chroma server that is down); each request tries again.

    Args:
        settings: where the index lives, which models to use.
        uploads: where uploaded reports are stored and what is accepted.
        embeddings: the embedding model (default: the one the settings name).
    """

    def __init__(self, settings: Settings, uploads: UploadPolicy, embeddings=None):
        self.settings = settings
        self.uploads = uploads
        self._embeddings = embeddings
        self._lock = threading.Lock()
        self.ingest_lock = threading.Lock()  # one upload batch at a time writes the index
        self.access = Access(settings)  # logins, role checks, questions in flight per user
        self.index: ReportIndex | None = None
        self.retriever: HybridRetriever | None = None
        self.modes: AnswerModes | None = None

    def ready(self) -> "Services":
        """Open the index if it is not open yet.

        Raises:
            IndexUnavailable, EmbeddingsError, EmbeddingModelMismatch: with the reason.
        """
        with self._lock:
            if self.index is None:
                from rag.services import open_index, query_embeddings

                if self._embeddings is None:
                    self._embeddings = query_embeddings(self.settings)
                index = open_index(self.settings, embeddings=self._embeddings)
                index.reports()  # reach the database now: a server that is down fails here
                self.retriever = HybridRetriever(index=index, k=8)
                self.modes = AnswerModes(self.settings, self.retriever)
                self.index = index
        return self

    def mode_choices(self) -> AnswerModes:
        """The answer modes (available even when the index is not: they depend on settings only)."""
        if self.modes is not None:
            return self.modes
        return AnswerModes(self.settings, None)  # type: ignore[arg-type] - no answers without an index
