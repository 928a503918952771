"""govreport-rag: cited answers over Chinese government annual reports.

The pipeline, one package per stage:

    ingest/   files -> clean text -> report metadata -> section-aware chunks
    rag/      index (Chroma) -> retrieval -> answers -> CLI and app
    eval/     question sets and the evaluation harness
"""

__version__ = "0.1.0"
