"""The optional LLM judge (``rag eval --judge``): is each answer sentence supported by what it cites?

A RAGAS-style faithfulness check. Each sentence of an answer is a claim; the judge model reads
the claim and the passages the sentence cites (``[n]`` markers; a sentence without markers is
judged against all of the answer's cited passages) and says whether the passages state it.
Faithfulness is the share of supported claims. Refusals are not judged. The figures are
reported apart from the exact-match metrics: a judge model can be wrong, and a small local one
often is, so it informs and never scores.

To keep prompts short on a CPU, each cited passage is cut to the few sentences that share the
most characters with the claim.
"""

from __future__ import annotations

import re
from typing import Iterable

from langchain_core.language_models import BaseChatModel

from rag.text.markers import MARKER, marker_numbers
from rag.text.sentences import split_sentences, char_bigrams
from rag.text.figures import same_value, stated_figures

JUDGE_PROMPT = ("你是严格的事实核查员。只根据下面的原文判断“陈述”是否被原文支持：陈述中的每个数字、地名和事实都必须在原文中出现或能直接得出。\n"
                "原文：\n{passages}\n\n陈述：{claim}\n\n"
                "只回答一个词：支持 或 不支持。")
SENTENCES_PER_PASSAGE = 3
_YES = re.compile(r"^\s*(支持|是|yes|supported)", re.IGNORECASE)
_NO = re.compile(r"不支持|不是|否|not supported|^\s*no\b|unsupported", re.IGNORECASE)


def claims(answer: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences with the passage numbers each cites (empty: cites none)."""
    pieces = split_sentences(answer or "")
    # Extractive answers put the marker after the full stop ("…1274件。[1]"): it belongs before.
    merged: list[str] = []
    for piece in pieces:
        lead = re.match(r"(\s*(?:%s)\s*)+" % MARKER.pattern, piece)
        if lead and merged:
            merged[-1] += lead.group(0).strip()
            piece = piece[lead.end():].strip()
        if piece:
            merged.append(piece)
    out = []
    for sentence in merged:
        numbers = sorted({n for m in MARKER.finditer(sentence) for n in marker_numbers(m.group(1))})
        text = MARKER.sub("", sentence).strip(" ，,：:")
        # A bare place label ("太原市（2024年）：") or a marker alone says nothing to check.
        if len(re.sub(r"\W", "", text)) >= 6:
            out.append((text, numbers))
    return out


def relevant_part(passage: str, claim: str, keep: int = SENTENCES_PER_PASSAGE) -> str:
    """The ``keep`` sentences of ``passage`` sharing the most character pairs with ``claim``, in order."""
    sentences = split_sentences(passage)
    if len(sentences) <= keep:
        return passage.strip()
    wanted = char_bigrams(claim)
    best = sorted(range(len(sentences)), key=lambda i: (-len(char_bigrams(sentences[i]) & wanted), i))[:keep]
    return "".join(sentences[i] for i in sorted(best))


def verdict(text: str) -> bool | None:
    """The judge's reply as True (supported), False, or None (unreadable)."""
    if _NO.search(text or ""):
        return False
    if _YES.search(text or ""):
        return True
    return None


class Judge:
    """Judges answers with a chat model.

    Args:
        chat_model: any LangChain chat model (the bundled one, or an OpenAI-compatible server).

    Example:
        >>> Judge(chat_model).judge_result(result)
        {'claims': 2, 'supported': 2, 'unreadable': 0, 'verdicts': [...]}
    """

    def __init__(self, chat_model: BaseChatModel):
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate

        self.chain = ChatPromptTemplate.from_template(JUDGE_PROMPT) | chat_model | StrOutputParser()

    def judge_claim(self, claim: str, passages: list[str]) -> bool | None:
        """Whether the passages support the claim (None: the model's reply was unreadable).

        The prompt's first rule, every figure of the claim in the passages, is checked exactly
        first: a small model reads "9999件" against "1274件" as support about as often as not.
        """
        stated = stated_figures(claim)
        if stated:
            sources = [f for p in passages for f in stated_figures(p)]
            if not all(same_value(f, sources) for f in stated):
                return False
        text = "\n".join(f"[{i}] {relevant_part(p, claim)}" for i, p in enumerate(passages, start=1))
        return verdict(self.chain.invoke({"passages": text, "claim": claim}))

    def judge_result(self, result: dict) -> dict | None:
        """The judge's verdicts on one result; None for a refusal or an answer with no citations."""
        if result.get("refused") or not result.get("citations"):
            return None
        cited = {int(c.get("n", i)): c.get("text", "") for i, c in enumerate(result["citations"], start=1)}
        verdicts = []
        for claim, numbers in claims(result.get("answer", "")):
            passages = [cited[n] for n in numbers if n in cited] or list(cited.values())
            verdicts.append({"claim": claim, "cites": numbers, "supported": self.judge_claim(claim, passages)})
        return {"claims": len(verdicts), "supported": sum(v["supported"] is True for v in verdicts),
                "unreadable": sum(v["supported"] is None for v in verdicts), "verdicts": verdicts}


def judge_results(results: list[dict], judge: Judge, progress: bool = True) -> dict:
    """Judge every result (adding a ``judge`` field to each) and return the aggregate figures."""
    from tqdm import tqdm

    errors = 0
    for row in tqdm(results, desc="judge", unit="q", disable=not progress):
        try:
            row["judge"] = judge.judge_result(row)
        except Exception as exc:  # the judge is optional: a failing call must not end the run
            row["judge"] = {"error": f"{type(exc).__name__}: {exc}"}
            errors += 1
    return judge_metrics(results, errors)


def judge_metrics(results: Iterable[dict], errors: int = 0) -> dict:
    """Faithfulness (supported claims / readable claims) and the share of fully supported answers."""
    judged = [r["judge"] for r in results if isinstance(r.get("judge"), dict) and "claims" in r["judge"]
              and r["judge"]["claims"]]
    readable = sum(j["claims"] - j["unreadable"] for j in judged)
    supported = sum(j["supported"] for j in judged)
    return {"answers": len(judged), "claims": sum(j["claims"] for j in judged),
            "faithfulness": round(supported / readable, 4) if readable else None,
            "fully_supported": (round(sum(j["supported"] == j["claims"] for j in judged) / len(judged), 4)
                                if judged else None),
            "unreadable": sum(j["unreadable"] for j in judged), "errors": errors}
