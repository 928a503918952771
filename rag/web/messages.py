"""The Chinese text the page shows for failures and notes; the details go to the server log."""

from __future__ import annotations

import logging
import re

from rag.answer.answerer import QuestionError
from rag.answer.notes import in_chinese
from rag.config import Settings
from rag.index.store import EmbeddingModelMismatch, IndexUnavailable

log = logging.getLogger("govreport.app")

# Answers and searches say this; the status line has its own wording (``LibraryHandlers``).
EMPTY_INDEX = "索引中还没有报告：请先在「报告库」上传报告，或运行 `rag ingest data/reports`。"


def friendly_error(exc: BaseException, settings: Settings) -> str:
    """A readable Chinese message for a failure; the details go to the server log."""
    if isinstance(exc, QuestionError):
        text = str(exc)
        if "empty" in text:
            return "请输入问题。"
        if "characters long" in text:
            return "问题太长了：请控制在 1000 字以内。"
        return f"无法提问：{text}"
    if isinstance(exc, EmbeddingModelMismatch):
        return ("索引是用另一个嵌入模型建立的，不能混用。请把 RAG_EMBEDDINGS 改回原来的设置，"
                f"或重建索引：`rag ingest data/reports --rebuild`。（{exc}）")
    server = settings.chroma_url
    text = f"{type(exc).__name__}: {exc}"
    if server and isinstance(exc, IndexUnavailable) and "RAG_CHROMA_TOKEN" in text:  # rag.index.store: a refused token
        state = "有误" if settings.chroma_token else "未设置"
        return f"索引服务器 {server} 拒绝了访问：RAG_CHROMA_TOKEN {state}。请把它设为服务器启动时使用的令牌。"
    if server and (isinstance(exc, IndexUnavailable) or re.search(r"connect|refused|unreachable|timed? ?out",
                                                                   text, re.I)):
        return (f"无法连接索引服务器 {server}：请确认 Chroma 服务器已启动"
                f"（`chroma run --path DIR --host 127.0.0.1 --port N`），或取消 RAG_CHROMA_URL 改用本地索引。")
    if isinstance(exc, IndexUnavailable):
        return f"无法打开索引 {settings.index_dir}：{exc}"
    log.error("request failed", exc_info=exc)
    return f"处理时出错（{type(exc).__name__}：{str(exc)[:200]}）。请稍后再试；问题持续时请查看服务器日志。"


def note_zh(note: str) -> str:
    """The answerer's note in Chinese (``rag.answer.notes``; text that is not a note is kept)."""
    return in_chinese(note)
