"""``python app.py``: serve the Gradio app (it lives in ``rag/web/app.py``)."""

import os

if __name__ == "__main__":
    import sys

    from rag.accounts import AccountError, serving_check
    from rag.config import Settings

    try:  # before the model starts: without accounts, loopback only
        serving_check(Settings.load().users_file, os.environ.get("RAG_HOST", "127.0.0.1"))
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    from rag.answer.prompts import fixed_prompt_messages
    from rag.models.server import prestart_bundled_model

    # The model loads in its own process and reads the prompt's fixed part while the app imports
    # and starts.
    prestart_bundled_model(warm_up=fixed_prompt_messages())
    from rag.web.app import serve

    serve(os.environ.get("RAG_HOST", "127.0.0.1"), int(os.environ.get("RAG_PORT", "7860")))
