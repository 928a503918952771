"""The index: embeddings (with their cache), the BM25 keyword index, and the Chroma store of
reports, chunks and figures."""
