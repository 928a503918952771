"""A Chroma server that asks for a token: ``chroma run`` on loopback, behind a token check.

``chroma run`` (chromadb 1.5.9, the Rust server) has no authentication: its server-side auth is
a no-op, and ``CHROMA_SERVER_AUTHN_*`` settings are ignored; chromadb's Python server, which
has token authentication, needs ``opentelemetry-instrumentation-fastapi``, which chromadb does
not install. So ``rag chroma-server`` starts ``chroma run`` on a free loopback port and serves,
on the public address, the check Chroma's ``TokenAuthenticationServerProvider`` makes: every
request must carry ``Authorization: Bearer <token>`` (or ``X-Chroma-Token: <token>``), which is
what chromadb's ``TokenAuthClientProvider`` sends (``RAG_CHROMA_TOKEN``, see
``rag.index.store``); other requests get Chroma's own 401 answer, which its clients raise as
``AuthorizationError``. As in Chroma, the heartbeat and version stay open (health checks).
"""

from __future__ import annotations

import contextlib
import hmac
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

OPEN_PATHS = {"/api/v2/heartbeat", "/api/v2/version", "/api/v2", "/api/v1/heartbeat", "/api/v1/version"}
# Hop-by-hop headers (RFC 9110 7.6.1), and those the proxy sets itself: the length (httpx
# recomputes it) and, in answers, the encoding (httpx has decoded the body).
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
        "proxy-authenticate", "content-length"}
_DROP_ASKED = _HOP | {"host", "authorization"}
_DROP_ANSWERED = _HOP | {"content-encoding"}


def token_ok(headers, token: str) -> bool:
    """Whether request headers carry ``token`` the way Chroma's token authentication reads it."""
    bearer = headers.get("authorization", "")
    given = bearer[len("Bearer "):] if bearer.startswith("Bearer ") else headers.get("x-chroma-token", "")
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def gate_app(upstream: str, token: str):
    """The ASGI app: checks the token, then passes the request on to ``upstream`` (``http://127.0.0.1:N``)."""
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(600.0))

    async def forward(request: Request) -> Response:
        if request.url.path not in OPEN_PATHS and not token_ok(request.headers, token):
            return JSONResponse({"error": "AuthorizationError",
                                 "message": "this Chroma server needs a token: set RAG_CHROMA_TOKEN"}, status_code=401)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_ASKED}
        upstream_response = await client.request(request.method, request.url.path, params=request.query_params,
                                                 content=await request.body(), headers=headers)
        return Response(upstream_response.content, status_code=upstream_response.status_code,
                        headers={k: v for k, v in upstream_response.headers.items()
                                 if k.lower() not in _DROP_ANSWERED})

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await client.aclose()

    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)], lifespan=lifespan)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_gated(path: str, host: str, port: int, token: str) -> int:
    """Run ``chroma run --path PATH`` on loopback and the token gate on ``host:port`` until stopped.

    Args:
        path: Chroma's data folder.
        host, port: where clients connect (``RAG_CHROMA_URL=http://host:port``).
        token: the token every client must send (``RAG_CHROMA_TOKEN``).
    """
    import uvicorn

    if len(token) < 16:
        raise ValueError("RAG_CHROMA_TOKEN must have at least 16 characters (e.g. `openssl rand -hex 24`)")
    inner = _free_port()
    chroma = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen([str(chroma), "run", "--path", path, "--host", "127.0.0.1", "--port", str(inner)],
                            stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:  # the gate opens once Chroma answers
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{inner}/api/v2/heartbeat", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"chroma run --path {path} did not start (exit {proc.poll()})")
                time.sleep(0.3)
        print(f"Chroma (data in {path}) with token authentication on http://{host}:{port}", file=sys.stderr)
        # uvicorn re-raises SIGTERM after its shutdown; as an exception, the `finally` below still
        # stops chroma run (with the default action the process would end and leave it running).
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(gate_app(f"http://127.0.0.1:{inner}", token), host=host, port=port, log_level="warning")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return 0
