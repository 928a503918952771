"""The 数字浏览 tab in a real browser (Debian's chromium through playwright, as tests/test_browser.py).

Opens the tab, filters by place and metric words, sees the rows and their count, opens a row's
passage in the whole report, and saves a screenshot (``RAG_SCREENSHOT_EXPLORER=docs/explorer.png``
keeps it).
"""

import os
import shutil

import pytest

from test_browser import browser_page  # noqa: F401 - the fixture


@pytest.mark.slow
def test_the_figures_explorer_filters_and_links_in_chromium(browser_page, app_server, tmp_path):  # noqa: F811
    page = browser_page
    from rag.index.figures_query import FigureFilter, query_figures

    url, app = app_server
    page.goto(url)
    page.locator("#chatbot").wait_for()
    page.get_by_role("tab", name="数字浏览").click()
    page.locator("#fig-table").wait_for()
    page.wait_for_function("() => document.querySelector('#fig-count').innerText.includes('共 ')")
    total = page.locator("#fig-count").inner_text()

    page.locator("#fig-regions input").fill("太原市")
    page.locator("#fig-regions input").press("Enter")
    page.locator("#fig-words textarea, #fig-words input").first.fill("行政复议")
    page.locator("#fig-search").click()
    wanted = query_figures(app.services.index, FigureFilter(regions=["太原市"], metric="行政复议"))
    page.wait_for_function("(line) => document.querySelector('#fig-count').innerText.includes(line)",
                           arg=f"共 {len(wanted)} 个数字")
    page.wait_for_function("() => !document.querySelector('#fig-table').innerText.includes('侯马市')")
    table = page.locator("#fig-table").inner_text()
    assert "太原市" in table and "1274" in table and "绵阳市" not in table and total != f"共 {len(wanted)} 个数字"
    assert "在全文中查看" in table

    page.wait_for_timeout(300)
    shot = tmp_path / "explorer.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("RAG_SCREENSHOT_EXPLORER"):
        shutil.copy(shot, os.environ["RAG_SCREENSHOT_EXPLORER"])

    # Clicking a row picks its figure for the correction form; then its link opens the passage
    # (Gradio's table takes the first click on a cell that is not selected yet for the selection).
    page.get_by_text("更正提取错误（需要编辑角色）").click()
    page.locator("#fig-table").get_by_text("1274件", exact=True).filter(visible=True).first.click()
    page.wait_for_function("() => { const box = document.querySelector('#fig-id textarea, #fig-id input');"
                           " return box && box.value.includes(':f'); }")
    assert page.locator("#fig-value input").input_value() == "1274"
    link = page.locator("#fig-table a:visible", has_text="在全文中查看").first
    link.click()  # selects its cell
    with page.context.expect_page() as opened:
        link.click()
    report = opened.value
    report.wait_for_load_state()
    assert report.locator("#cited mark, .cited mark").count() >= 1
    report.close()
