"""Chat models from the settings: an OpenAI-compatible server or the bundled local model.

``make_chat_model`` never raises for a missing model: it returns ``None`` with the reason,
and the answerer falls back to extractive answers and says why.
"""

from __future__ import annotations

import os
from functools import lru_cache

from langchain_core.language_models import BaseChatModel

from rag.config import Settings

LLM_TIMEOUT_S = float(os.environ.get("RAG_LLM_TIMEOUT", "60"))


class ChatModelUnavailable(RuntimeError):
    """The configured LLM cannot be used (not installed, not configured)."""


def make_chat_model(settings: Settings) -> BaseChatModel:
    """The chat model the settings ask for.

    Raises:
        ChatModelUnavailable: with a message saying what to install or set.
    """
    if settings.llm == "none":
        raise ChatModelUnavailable("RAG_LLM=none: extractive answers only")
    if settings.llm == "openai":
        if not settings.llm_base_url or not settings.llm_model:
            raise ChatModelUnavailable("RAG_LLM=openai needs RAG_LLM_BASE_URL and RAG_LLM_MODEL")
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(base_url=settings.llm_base_url, model=settings.llm_model,
                          api_key=settings.llm_api_key or "not-needed", temperature=0, max_tokens=512,
                          timeout=LLM_TIMEOUT_S, max_retries=0)
    from rag.bundled_model import is_installed, model_path

    path = model_path()
    # A model of the user's own (RAG_LOCAL_MODEL) is not hash-checked; the bundled one is.
    if not (path.is_file() if os.environ.get("RAG_LOCAL_MODEL") else is_installed(path)):
        raise ChatModelUnavailable(f"the bundled model is not installed ({path} missing; run `make model`)")
    try:
        import llama_cpp  # noqa: F401 - built by `make install` from the sdist
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ChatModelUnavailable(f"llama-cpp-python is not installed: {exc}") from exc
    try:
        return _local_model(str(path))
    except Exception as exc:
        raise ChatModelUnavailable(f"cannot load the bundled model {path}: {exc}") from exc


@lru_cache(maxsize=2)
def _local_model(path: str) -> BaseChatModel:
    """One loaded copy per model file and process (loading takes seconds and ~1.2 GB)."""
    from langchain_community.chat_models import ChatLlamaCpp

    return ChatLlamaCpp(model_path=path, n_ctx=4096, n_batch=512, n_threads=os.cpu_count() or 2,
                        temperature=0, max_tokens=400, verbose=False, streaming=True)
