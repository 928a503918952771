"""Evaluation: question sets, answer matching, the harness behind ``rag eval``, its reports,
run comparison, the naive baseline and the optional LLM judge."""
