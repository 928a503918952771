"""The Gradio app, started for real on a free port and used through gradio_client."""

import pytest

from conftest import copy_reports, free_port
from ingest.pipeline import Ingestor
from rag.config import Settings
from rag.index import ReportIndex


@pytest.fixture
def running_app(tmp_path, real_embeddings):
    from app import build_app

    settings = Settings(index_dir=str(tmp_path / "index"))
    Ingestor(ReportIndex(settings, real_embeddings), progress=False).run(
        [copy_reports(tmp_path / "reports", {"taiyuan-2024.txt"})])
    app = build_app(settings)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def test_search_and_library_through_the_api(running_app):
    from gradio_client import Client

    client = Client(running_app, verbose=False)
    answer = client.predict("新收行政复议案件", ["太原市"], ["2024"], api_name="/search")
    assert "[1] 太原市 · 2024" in answer and "太原市2024年法治政府建设年度报告" in answer
    reply, sources = client.predict("太原市2024年新收行政复议案件多少件？", [], [], "extractive", api_name="/ask")
    assert "1274" in reply and "[1]" in reply
    assert sources.startswith("**[1] 太原市") and "1274" in sources
    # The bundled model streams into the page; the final state is the checked answer and its sources.
    job = client.submit("太原市2024年新收行政复议案件多少件？", [], [], "llm", api_name="/ask")
    reply, sources = job.result()
    assert "1274" in reply and "[1]" in reply and sources.startswith("**[1] 太原市")
    assert len(job.outputs()) > 2  # intermediate streamed states came before the final one
    refusal, _ = client.predict("成都市2024年新收行政复议案件多少件？", [], [], "extractive", api_name="/ask")
    assert "库中没有成都市" in refusal and "太原市2024年" in refusal
    assert "请输入" in client.predict("  ", [], [], api_name="/search")
    library = client.predict(api_name="/library")
    rows = library["data"] if isinstance(library, dict) else library
    assert rows[0][0] == "太原市" and int(rows[0][1]) == 2024
