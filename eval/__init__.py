"""Evaluation: question sets, answer matching and the harness behind ``rag eval``."""
