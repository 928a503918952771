"""The ``rag`` command line (``rag.cli:main``, ``python -m rag.cli``) and ``rag doctor``."""

from rag.cli.main import main

__all__ = ["main"]
