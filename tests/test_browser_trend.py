"""A trend question in a real browser (Debian's chromium through playwright, as tests/test_browser.py).

Over the three-year index of tests/test_trends.py (Taiyuan 2022 and 2023 are test copies of the
bundled 2024 report with figures changed), the answer shows each year's change as a formula, the
table has a row per year and the line chart is drawn; ``RAG_SCREENSHOT_TREND=docs/trend.png``
keeps the screenshot (the README's picture).
"""

import os
import shutil

import pytest

from test_browser import _ask, browser_page  # noqa: F401 - the fixture
from test_trends import trend_index  # noqa: F401 - the fixture


@pytest.mark.slow
def test_a_trend_question_shows_the_series_changes_and_line_chart_in_chromium(
        browser_page, trend_index, real_embeddings, tmp_path):  # noqa: F811
    from conftest import free_port
    from rag.ingest.uploads import UploadPolicy
    from rag.web.app import build_app

    app = build_app(trend_index.settings, UploadPolicy(folder=tmp_path / "uploads"), embeddings=real_embeddings)
    port = free_port()
    app.launch("127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        page = browser_page
        page.goto(f"http://127.0.0.1:{port}/")
        page.locator("#chatbot").wait_for()
        page.locator("#mode").get_by_text("摘录原文（不用模型）").click()
        answer = _ask(page, "太原市近三年新收行政复议案件的变化", "逐年增加")
        assert "+219件（+21.9%）" in answer and "+55件（+4.5%）" in answer
        page.locator("#trend-plot canvas, #trend-plot svg").first.wait_for()
        assert not page.locator("#compare-plot").is_visible()  # a series is drawn as a line, not bars
        table = page.locator("#compare-table").inner_text()
        for year, value in (("2022", "1000件"), ("2023", "1219件"), ("2024", "1274件")):
            assert year in table and value in table
        page.wait_for_timeout(800)  # the chart's drawing settles
        shot = tmp_path / "trend.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("RAG_SCREENSHOT_TREND"):
            shutil.copy(shot, os.environ["RAG_SCREENSHOT_TREND"])
    finally:
        app.close()
