"""The LLMs: the bundled model (its file, its llama.cpp build, its supervised process) and the
one OpenAI-compatible client every model is reached through."""
