"""Question -> passages: query analysis, hybrid (dense + BM25) retrieval, follow-up rewriting."""
