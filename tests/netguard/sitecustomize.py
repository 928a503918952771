"""Loopback-only networking for every Python process the tests start.

``tests/conftest.py`` puts this folder on ``PYTHONPATH`` and names the allowed hosts in
``RAG_TEST_ALLOWED_HOSTS``, so `rag` subprocesses and the servers the tests run are held to
the same rule as the test process itself (pytest-socket): nothing can quietly download.
"""

import os

_hosts = os.environ.get("RAG_TEST_ALLOWED_HOSTS")
if _hosts:
    try:
        from pytest_socket import socket_allow_hosts
    except ImportError:  # a process outside the test virtualenv: nothing to guard with
        pass
    else:
        socket_allow_hosts(_hosts.split(","), allow_unix_socket=True)
