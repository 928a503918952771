"""govreport-rag: cited answers over Chinese government annual reports.

The pipeline, one package per layer; imports only go down (checked by ``lint-imports``):

    cli/, web/     the ``rag`` command line, the Gradio app
    eval/          question sets, the harness behind ``rag eval``, reports, the naive baseline
    services       the composition root: settings -> embeddings -> index -> retriever -> answerer
    answer/        passages -> a cited answer (extractive or LLM, checked)
    retrieve/      question -> passages (query analysis, hybrid retrieval, follow-ups)
    ingest/        files -> clean text -> metadata -> chunks, into the index
    index/         embeddings, BM25, the Chroma store
    models/        the LLMs (the bundled model's build and process, the OpenAI-compatible client)
    text/          normalisation, tokens, places, glossary, figures
    config, errors settings, and the base of user-facing errors
"""

__version__ = "0.1.0"
