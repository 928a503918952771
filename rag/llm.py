"""Chat models from the settings: an OpenAI-compatible server or the bundled local model.

``make_chat_model`` never raises for a missing model: it returns ``None`` with the reason,
and the answerer falls back to extractive answers and says why.
"""

from __future__ import annotations

import os
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from rag.config import Settings

# Where `make model` puts the bundled GGUF (outside the tracked files).
DEFAULT_LOCAL_MODEL = Path(os.environ.get("RAG_LOCAL_MODEL", ".venv/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"))


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
                          api_key=settings.llm_api_key or "not-needed", temperature=0,
                          timeout=120, max_retries=1)
    path = DEFAULT_LOCAL_MODEL
    if not path.is_file():
        raise ChatModelUnavailable(f"the bundled model is not installed ({path} missing; run `make model`)")
    try:
        from langchain_community.chat_models import ChatLlamaCpp
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ChatModelUnavailable(f"llama-cpp-python is not installed: {exc}") from exc
    try:
        return ChatLlamaCpp(model_path=str(path), n_ctx=4096, n_threads=os.cpu_count() or 2,
                            temperature=0, max_tokens=512, verbose=False)
    except Exception as exc:
        raise ChatModelUnavailable(f"cannot load the bundled model {path}: {exc}") from exc
