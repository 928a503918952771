"""The Gradio app: ask questions with cited answers, search passages, browse the library.

Run with ``python app.py`` or ``rag serve``. The full chat front end (streaming, follow-ups,
uploads) is built on top of this in the app issue.
"""

from __future__ import annotations

import os

# No analytics or version-check calls: the app runs without network.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.embeddings import make_embeddings
from rag.index import ReportIndex
from rag.answer import Answerer, QuestionError
from rag.llm import ChatModelUnavailable, make_chat_model
from rag.retrieve import HybridRetriever

LIBRARY_COLUMNS = ["地区", "年份", "标题", "片段数", "来源文件", "加入时间", "doc_id"]


def build_app(settings: Settings | None = None) -> gr.Blocks:
    """Build the Blocks app over the configured index."""
    settings = settings or Settings.load()
    index = ReportIndex(settings, make_embeddings(settings.embeddings, settings.llm_base_url,
                                                  settings.llm_api_key))
    retriever = HybridRetriever(index=index, k=8)
    try:
        chat_model, reason = make_chat_model(settings), None
    except ChatModelUnavailable as exc:
        chat_model, reason = None, str(exc)
    answerer = Answerer(retriever, chat_model, unavailable_reason=reason)

    def library_rows():
        return [[r.region or "未知", r.year or "", r.title or "", r.chunks, r.source, r.added_at, r.doc_id]
                for r in index.reports()]

    def choices():
        reports = index.reports()
        return (sorted({r.region for r in reports if r.region}),
                sorted({r.year for r in reports if r.year}, reverse=True))

    def search(query: str, regions: list[str], years: list[str]):
        if not query or not query.strip():
            return "请输入要检索的内容。"
        if not index.reports():
            return "索引为空：请先运行 `rag ingest data/reports` 导入报告。"
        try:
            passages = retriever.passages(query, k=5, regions=regions or None,
                                          years=[int(y) for y in years] if years else None)
        except Exception as exc:  # shown in the page, never as a traceback
            return f"检索失败：{exc}"
        if not passages:
            return "没有找到相关段落。"
        blocks = []
        for n, p in enumerate(passages, 1):
            where = f"{p.region or '未知地区'} · {p.year or '年份未知'} · 《{p.title}》"
            section = f" · {p.section}" if p.section else ""
            page = f" · 第{p.page}页" if p.page else ""
            blocks.append(f"**[{n}] {where}{section}{page}**（相关度 {p.score:.2f}）\n\n> {p.text}")
        return "\n\n".join(blocks)

    def ask(question: str, regions: list[str], years: list[str], mode: str):
        """Stream the answer into the page; the checked answer and its sources replace it at the end."""
        if not index.reports():
            yield "索引为空：请先运行 `rag ingest data/reports` 导入报告。", ""
            return
        streamed = ""
        try:
            for event in answerer.stream(question, mode=mode or None, regions=regions or None,
                                         years=[int(y) for y in years] if years else None):
                if isinstance(event, str):
                    streamed += event
                    yield streamed, "（生成中…）"
                else:
                    result = event
        except QuestionError as exc:
            yield f"无法提问：{exc}", ""
            return
        except Exception as exc:  # shown in the page, never as a traceback
            yield f"回答失败：{exc}", ""
            return
        answer = result.answer + "".join(f"\n\n*注：{note}*" for note in result.notes)
        sources = []
        for c in result.citations:
            where = " · ".join(x for x in (c.region or "未知地区", f"{c.year}年" if c.year else "",
                                            f"《{c.title}》" if c.title else "", c.section,
                                            f"第{c.page}页" if c.page else "") if x)
            sources.append(f"**[{c.n}] {where}**\n\n> {c.text}")
        yield answer, "\n\n".join(sources) or "（无引用）"

    regions, years = choices()
    with gr.Blocks(title="政府年度报告问答") as app:
        gr.Markdown("# 政府年度报告问答\n就已导入的法治政府建设年度报告提问：每个事实都标注来源段落 [n]；报告中没有的，会明确说“未提及”。")
        with gr.Tab("问答"):
            with gr.Row():
                question = gr.Textbox(label="问题", placeholder="例如：太原和绵阳2024年新收行政复议案件各多少？", scale=4)
                ask_button = gr.Button("提问", variant="primary", scale=1)
            with gr.Row():
                ask_regions = gr.Dropdown(regions, multiselect=True, label="地区（可选）")
                ask_years = gr.Dropdown([str(y) for y in years], multiselect=True, label="年份（可选）")
                mode = gr.Radio(["extractive", "llm"], value=answerer.default_mode, label="回答方式",
                                info="extractive：摘录原文句子；llm：" + ("模型生成" if chat_model else f"不可用（{reason}）"))
            answer_box = gr.Markdown(label="回答")
            sources_box = gr.Markdown(label="来源")
            gr.Examples(["太原市2024年新收行政复议案件多少件？", "太原和绵阳2024年新收行政复议案件各多少？",
                         "太倉市2024年新收行政復議申請多少件？", "How many legal aid cases did Mianyang handle in 2024?"],
                        inputs=question)
            ask_button.click(ask, [question, ask_regions, ask_years, mode], [answer_box, sources_box], api_name="ask")
            question.submit(ask, [question, ask_regions, ask_years, mode], [answer_box, sources_box])
        with gr.Tab("检索原文"):
            with gr.Row():
                query = gr.Textbox(label="检索内容", placeholder="例如：太原市新收行政复议案件", scale=4)
                button = gr.Button("检索", variant="primary", scale=1)
            with gr.Row():
                region_filter = gr.Dropdown(regions, multiselect=True, label="地区")
                year_filter = gr.Dropdown([str(y) for y in years], multiselect=True, label="年份")
            results = gr.Markdown()
            gr.Examples(["太原市新收行政复议案件", "行政机关负责人出庭应诉率", "太倉市人民調解"], inputs=query)
            button.click(search, [query, region_filter, year_filter], results, api_name="search")
            query.submit(search, [query, region_filter, year_filter], results)
        with gr.Tab("报告库"):
            table = gr.Dataframe(library_rows(), headers=LIBRARY_COLUMNS, interactive=False)
            refresh = gr.Button("刷新")
            refresh.click(lambda: library_rows(), None, table, api_name="library")
    app.queue(default_concurrency_limit=4)
    return app


def serve(host: str = "127.0.0.1", port: int = 7860) -> None:
    build_app().launch(server_name=host, server_port=port, show_error=False)


if __name__ == "__main__":
    serve(os.environ.get("RAG_HOST", "127.0.0.1"), int(os.environ.get("RAG_PORT", "7860")))
