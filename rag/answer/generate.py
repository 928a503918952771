"""LLM answers: a LangChain runnable chain from numbered passages to a cited answer.

The prompt templates live in ``prompts/``. The chain only generates text; citations are
resolved (and checked) by the answerer afterwards.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from rag.answer.citations import number_passages
from rag.answer.prompts import LANGUAGE_RULES, templates
from rag.types import Passage
from rag.text.tokens import count_tokens

CONTEXT_TOKENS = 2500  # passages' share of a 4k window: room left for rules, question and answer
EXCERPT_CHARS = 110  # per passage; about 75 tokens of Chinese



@lru_cache(maxsize=1)
def answer_prompt() -> ChatPromptTemplate:
    """The answer prompt from ``prompts/answer_system.txt`` and ``prompts/answer_user.txt``."""
    system, user = templates()
    return ChatPromptTemplate.from_messages([("system", system), ("human", user)])


def excerpt(passage: Passage, terms: list[str], max_chars: int = EXCERPT_CHARS,
            first: set[str] | None = None) -> Passage:
    """The passage cut to its sentences that share most terms with the question.

    Sentences in ``first`` (the extractive answer's) lead and are always kept; the rest follow in
    reading order, within ``max_chars``.

    The model reads excerpts, not whole chunks: prompt processing dominates answer time on a
    CPU. Citations still point at the whole passage.
    """
    from rag.answer.extractive import candidate_sentences
    from rag.text.normalize import matching_form

    sentences = candidate_sentences(passage.text)
    if len(passage.text) <= max_chars or not sentences:
        return passage
    first = first or set()
    lead = [i for i, s in enumerate(sentences) if any(s in f for f in first)]
    scored = lead + sorted((i for i in range(len(sentences)) if i not in lead),
                           key=lambda i: (-sum(1 for t in terms if t in matching_form(sentences[i])), i))
    keep, used = set(), 0
    for i in scored:
        # The sentences the extractive answer rests on are read whole, all of them (a list or
        # several figures is not cut to its first sentence); the others fill what is left.
        if i not in lead and keep and used + len(sentences[i]) > max_chars:
            continue
        keep.add(i)
        used += len(sentences[i])
    order = [i for i in lead if i in keep] + sorted(i for i in keep if i not in lead)
    text = "……".join(sentences[i] for i in order)
    return replace(passage, text=text)


_PASSAGE_TAG = re.compile(r"<\s*/?\s*passage\b[^>]*>", re.IGNORECASE)


def as_data(passage: Passage) -> Passage:
    """The passage with anything that would end its ``<passage>`` quote defused.

    The prompt quotes each passage between ``<passage>`` tags, as data; a report whose text
    holds ``</passage>`` must not close the quote and go on as if it were the prompt.
    """
    text = _PASSAGE_TAG.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), passage.text)
    return passage if text == passage.text else replace(passage, text=text)


def fit_passages(passages: list[Passage], budget: int = CONTEXT_TOKENS) -> list[Passage]:
    """The leading passages that fit in ``budget`` tokens (at least one)."""
    kept, used = [], 0
    for p in passages:
        cost = count_tokens(p.text) + 30
        if kept and used + cost > budget:
            break
        kept.append(p)
        used += cost
    return kept


def build_answer_chain(chat_model: BaseChatModel) -> Runnable:
    """``{"question", "passages": list[Passage], "language"}`` -> answer text with ``[n]`` markers.

    Example:
        >>> chain = build_answer_chain(chat_model)
        >>> chain.invoke({"question": "太原市新收行政复议案件多少件？", "passages": passages, "language": "zh"})
        '太原市2024年新收行政复议案件1274件[1]。'
    """
    def inputs(values: dict) -> dict:  # noqa: D401 - the prompt's variables
        passages = [as_data(p) for p in values["passages"]]
        return {"question": values["question"], "passages": number_passages(passages),
                "language_rule": LANGUAGE_RULES.get(values.get("language", "zh"), LANGUAGE_RULES["zh"])}

    def inputs_fitted(values: dict) -> dict:
        return inputs({**values, "passages": fit_passages(values["passages"])})

    return (inputs_fitted | answer_prompt() | chat_model | StrOutputParser()).with_config(run_name="answer")
