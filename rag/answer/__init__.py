"""Passages -> a cited answer: the extractive answer, the LLM chain and its checks (grounding,
citations), comparison tables and charts, highlighting, notes, and the answerer that runs them."""
