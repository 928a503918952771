"""The index: embeddings (with their cache), the BM25 keyword index, the Chroma store of
reports, chunks and figures, the audit log of its changes, backups (and restores) of it, and the
token check in front of a Chroma server."""
