"""The Gradio app (``python app.py``, ``rag serve``)."""
