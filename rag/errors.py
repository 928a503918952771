"""The base of the errors a user can act on: the CLI prints their message, not a traceback.

It lives in a module of its own, with no imports, so that ``rag list`` can catch every such
error without importing the modules that raise them (the answer stack, the eval harness).
"""


class RagError(Exception):
    """An error whose message says what went wrong and what to do."""
