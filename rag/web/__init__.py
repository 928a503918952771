"""The Gradio app (``python app.py``, ``rag serve``).

Reading order: ``app`` (what the app is made of, how it is served), ``layout`` (the page and
which event calls which handler), ``handlers`` (what each event does), then what they use:
``state`` (a browser session's chat), ``render`` and ``templates/`` (the HTML and Markdown shown),
``report_route`` (``/report/{doc_id}``), ``streaming`` (answers that 停止 can interrupt),
``backend`` and ``modes`` (the index and the answer modes behind the page), ``access`` (the
login, role checks and questions in flight per user), ``messages`` (the Chinese text for failures).
"""

import os

# No analytics or version-check calls: the app runs without network. Set on importing the
# package, so before any of its modules imports gradio (or chromadb).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
