"""One browser session's chat, as ``gr.State`` holds it.

Gradio keeps a deep copy of the initial value per session and hands the stored value to each
event: so the state is a plain dataclass of lists, dicts and strings (copyable and picklable),
and handlers never change the value they are given: they return a new one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class Turn:
    """What an answer showed beside it, to show again when the answer is clicked."""

    sources: str  # the sources panel's HTML
    table: dict | None = None  # the comparison (``AnswerResult.table``), None without one


@dataclass
class Conversation:
    """The messages shown, the standalone questions asked (for follow-ups), each answer's
    ``Turn`` by its message position, and whether an answer is being written."""

    messages: list[dict] = field(default_factory=list)  # Gradio's chat messages: role, content
    standalone: list[str] = field(default_factory=list)
    turns: dict[int, Turn] = field(default_factory=dict)
    pending: bool = False

    @classmethod
    def of(cls, value: Conversation | None) -> Conversation:
        """The session's conversation; a new one when there is none yet."""
        return value if isinstance(value, Conversation) else cls()

    def asking(self, question: str) -> Conversation:
        """The conversation with the question and an answer placeholder added, pending."""
        messages = self.messages + [user_message(question), assistant_message("…")]
        return dataclasses.replace(self, messages=messages, pending=True)

    def settled(self, messages: list[dict]) -> Conversation:
        """The conversation with these messages and no answer pending (stopped or failed)."""
        return dataclasses.replace(self, messages=messages, pending=False)

    def answered(self, messages: list[dict], standalone: str, turn: Turn) -> Conversation:
        """The conversation with a finished answer: its standalone question and its ``Turn``."""
        return dataclasses.replace(self, messages=messages, pending=False, standalone=self.standalone + [standalone],
                                   turns={**self.turns, len(messages) - 1: turn})


def user_message(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant_message(text: str) -> dict:
    return {"role": "assistant", "content": text}
