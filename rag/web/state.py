"""One browser session's chat, as ``gr.State`` holds it.

Gradio keeps a deep copy of the initial value per session and hands the stored value to each
event: so the state is a plain dataclass of lists, dicts and strings (copyable and picklable),
and handlers never change the value they are given: they return a new one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from rag.index.conversations import new_id


@dataclass
class Turn:
    """What an answer showed beside it, to show again when the answer is clicked."""

    sources: str  # the sources panel's HTML
    table: dict | None = None  # the comparison (``AnswerResult.table``), None without one
    # The answer as a plain dict (``rag.export.answer_record``): what downloads and the
    # conversation store read; None for turns made before it was kept.
    record: dict | None = None


@dataclass
class Conversation:
    """The messages shown, the standalone questions asked (for follow-ups), each answer's
    ``Turn`` by its message position, whether an answer is being written, and the id the
    conversation is kept under (``rag.index.conversations``; empty until the first question)."""

    messages: list[dict] = field(default_factory=list)  # Gradio's chat messages: role, content
    standalone: list[str] = field(default_factory=list)
    turns: dict[int, Turn] = field(default_factory=dict)
    pending: bool = False
    id: str = ""

    @classmethod
    def of(cls, value: Conversation | None) -> Conversation:
        """The session's conversation; a new one when there is none yet."""
        return value if isinstance(value, Conversation) else cls()

    def asking(self, question: str) -> Conversation:
        """The conversation with the question and an answer placeholder added, pending."""
        messages = self.messages + [user_message(question), assistant_message("…")]
        # The id is given with the first question, not in the initial value: Gradio copies that
        # value into every session, which would give them all the same id.
        return dataclasses.replace(self, messages=messages, pending=True, id=self.id or new_id())

    def settled(self, messages: list[dict]) -> Conversation:
        """The conversation with these messages and no answer pending (stopped or failed)."""
        return dataclasses.replace(self, messages=messages, pending=False)

    def answered(self, messages: list[dict], standalone: str, turn: Turn) -> Conversation:
        """The conversation with a finished answer: its standalone question and its ``Turn``."""
        return dataclasses.replace(self, messages=messages, pending=False, standalone=self.standalone + [standalone],
                                   turns={**self.turns, len(messages) - 1: turn})


    def answer_indexes(self) -> list[int]:
        """The message positions of the answers (assistant messages), in order."""
        return [i for i, m in enumerate(self.messages) if m.get("role") == "assistant"]

    def answer_number(self, index: int) -> int | None:
        """The 1-based number of the answer at message ``index`` (as links and file names say it)."""
        answers = self.answer_indexes()
        return answers.index(index) + 1 if index in answers else None

    def answer_index(self, number: int | str | None) -> int | None:
        """The message position of answer ``number`` (1-based); None when there is no such answer."""
        try:
            n = int(str(number).strip())
        except (TypeError, ValueError):
            return None
        answers = self.answer_indexes()
        return answers[n - 1] if 1 <= n <= len(answers) else None

    def last_turn_index(self) -> int | None:
        """The message position of the last answer that has a ``Turn``."""
        return max(self.turns, default=None)


def user_message(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant_message(text: str) -> dict:
    return {"role": "assistant", "content": text}
