"""``python app.py``: serve the Gradio app (it lives in ``rag/web/app.py``)."""

import os

from rag.web.app import serve

if __name__ == "__main__":
    serve(os.environ.get("RAG_HOST", "127.0.0.1"), int(os.environ.get("RAG_PORT", "7860")))
