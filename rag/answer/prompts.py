"""The answer prompt's texts: the templates in ``prompts/`` and the language rules.

Standard library only, so that ``python app.py`` can hand the prompt's fixed part to the model
process before anything heavy is imported (``fixed_prompt_messages``); ``generate`` builds the
LangChain prompt from the same texts.
"""

from __future__ import annotations

from pathlib import Path

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"

LANGUAGE_RULES = {
    "zh": "用中文回答。",
    "en": "The question is in English: answer in English, keeping Chinese names of documents and places where useful.",
}


def templates() -> tuple[str, str]:
    """The system and user templates (``prompts/answer_system.txt``, ``prompts/answer_user.txt``)."""
    return ((PROMPTS / "answer_system.txt").read_text(encoding="utf-8"),
            (PROMPTS / "answer_user.txt").read_text(encoding="utf-8"))


def fixed_prompt_messages() -> list[dict]:
    """The answer prompt with no passages and no question, as OpenAI chat messages: its fixed part
    (the system prompt, the user message's opening), for a model process to read at start. The
    same formatting as the LangChain prompt (``str.format`` of the same templates)."""
    system, user = templates()
    return [{"role": "system", "content": system.format(language_rule=LANGUAGE_RULES["zh"])},
            {"role": "user", "content": user.format(passages="", question="")}]
