"""``/report/{doc_id}?chunk=N&hl=S-E,...``: a whole report, scrolled to a cited passage."""

from __future__ import annotations

import html
import re

# Not under TYPE_CHECKING: FastAPI reads the endpoint's hints to pass the request.
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from rag.web.messages import friendly_error
from rag.web.render import report_page
from rag.web.backend import Services


def report_route(services: Services) -> APIRoute:
    """The route the sources panel's 在全文中查看 links open (served beside the Gradio app)."""

    def report(request: Request, doc_id: str):
        chunk = request.query_params.get("chunk", "")
        marks = [(int(a), int(b)) for a, b in re.findall(r"(\d{1,6})-(\d{1,6})", request.query_params.get("hl", ""))]
        try:
            page = report_page(services.ready().index, doc_id, int(chunk) if chunk.isdigit() else None, marks)
        except Exception as exc:
            return HTMLResponse(f"<p>{html.escape(friendly_error(exc, services.settings))}</p>", status_code=503)
        if page is None:
            return HTMLResponse(f"<p>库中没有这份报告（{html.escape(doc_id)}）。</p>", status_code=404)
        return HTMLResponse(page)

    return APIRoute("/report/{doc_id}", report, methods=["GET"], response_class=HTMLResponse)
