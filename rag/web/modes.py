"""The answer modes the page offers (the bundled model, a hosted model, 摘录原文) and their answerers."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

from rag.answer.answerer import Answerer, ContextBudget
from rag.answer.prompts import fixed_prompt_messages
from rag.config import Settings
from rag.models.chat import ChatModelUnavailable, make_chat_model
from rag.retrieve.hybrid import HybridRetriever

log = logging.getLogger("govreport.app")


@dataclasses.dataclass(frozen=True)
class ModeChoice:
    """One answer mode the page offers."""

    key: str  # local | openai | extractive
    label: str  # the radio button's text
    description: str  # shown under the buttons: which model, where it runs


class AnswerModes:
    """The answer modes the settings allow, each with its answerer; chat models load on first use.

    Args:
        settings: the settings (``RAG_LLM`` decides which models are offered).
        retriever: the retriever every mode shares.
    """

    def __init__(self, settings: Settings, retriever: HybridRetriever):
        self.settings = settings
        self.retriever = retriever
        self._answerers: dict[str, Answerer] = {}
        self._load_lock = threading.Lock()
        # The bundled model's process answers one question at a time: others wait here, and are
        # told so, rather than silently in the model server's queue.
        self.model_lock = threading.Lock()
        self.choices: list[ModeChoice] = []
        self.unavailable: list[str] = []
        if settings.llm == "openai":
            if settings.llm_base_url and settings.llm_model:
                self.choices.append(ModeChoice("openai", f"托管模型（{settings.llm_model}）",
                                               f"**托管模型** `{settings.llm_model}`，OpenAI 兼容接口 "
                                               f"`{settings.llm_base_url}`。回答逐字生成，每个数字都与引用段落核对。"))
            else:
                self.unavailable.append("托管模型未配置（需要 RAG_LLM_BASE_URL 和 RAG_LLM_MODEL）")
        if settings.llm in ("local", "openai"):
            name = self._local_name()
            if name:
                self.choices.append(ModeChoice("local", "内置模型（本机）",
                                               f"**内置模型** {name}，llama.cpp 在本机运行，不联网。"
                                               "回答逐字生成，每个数字都与引用段落核对。"))
            elif settings.llm == "local":
                self.unavailable.append("内置模型未安装（运行 `make model` 安装）")
        self.choices.append(ModeChoice("extractive", "摘录原文（不用模型）",
                                       "**摘录原文**：不用模型，直接摘出报告中的原句并标注来源，最快。"))

    @staticmethod
    def _local_name() -> str | None:
        """The bundled model's display name, or None when it is not installed (cheap check)."""
        from rag.models.bundled import FILENAME, is_usable, model_path

        path = model_path()
        if not is_usable(path):
            return None
        bundled = path.name == FILENAME and not os.environ.get("RAG_LOCAL_MODEL")
        return "Qwen2.5-Coder-1.5B-Instruct（Q4_K_M）" if bundled else path.name

    @property
    def default(self) -> str:
        return self.choices[0].key

    def choice(self, key: str | None) -> ModeChoice:
        """The mode named ``key``; ``llm`` means the first model mode; unknown keys: the default."""
        if key == "llm":
            key = next((c.key for c in self.choices if c.key != "extractive"), "extractive")
        return next((c for c in self.choices if c.key == key), self.choices[0])

    def describe(self, key: str | None) -> str:
        """Markdown naming the model that answers in this mode (and what is not available)."""
        text = self.choice(key).description
        if self.unavailable:
            text += "\n\n" + "；".join(self.unavailable) + "。"
        return text

    def answerer(self, key: str) -> tuple[Answerer, str]:
        """The answerer for a mode and the answerer's own mode name (``llm`` or ``extractive``)."""
        key = self.choice(key).key
        with self._load_lock:
            if key not in self._answerers:
                chat_model, reason = None, None
                if key != "extractive":
                    try:
                        chat_model = make_chat_model(dataclasses.replace(self.settings, llm=key))
                    except ChatModelUnavailable as exc:
                        reason = str(exc)
                self._answerers[key] = Answerer(self.retriever, chat_model, unavailable_reason=reason,
                                                budget=ContextBudget.for_llm(key))
        return self._answerers[key], ("extractive" if key == "extractive" else "llm")

    def lock_for(self, key: str) -> threading.Lock | None:
        """The lock to hold while this mode answers (only the bundled model needs one)."""
        return self.model_lock if self.choice(key).key == "local" else None

    def preload(self) -> None:
        """Start the default model in the background so the first question does not wait for it
        (the bundled model's process loads in a few seconds while the page is already served)."""
        if self.default == "extractive":
            return

        def load() -> None:
            answerer, _ = self.answerer(self.default)
            server = getattr(answerer.chat_model, "server", None)
            if server is None:  # a hosted model: nothing to load, and no request it did not ask for
                return
            try:
                # Each time the process starts, it reads the prompt's fixed part before any question.
                server.warm_up_with(fixed_prompt_messages())
                server.start_in_background()  # usually loading already (prestart_bundled_model)
                # The first question's one-off costs (tokenizer dictionary, gazetteer, the index
                # snapshot) are paid here, not by the first user.
                answerer.run("法治政府建设情况", mode="extractive")
            except Exception as exc:  # the first question then starts (or explains) the model
                log.warning("preloading the %s model: %s", self.default, exc)

        threading.Thread(target=load, daemon=True, name="model-preload").start()
