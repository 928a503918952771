"""The app in a real browser: Debian's chromium, driven by playwright (never a downloaded browser).

Types questions, waits for the streamed answers, checks the sources panel and the comparison
table, opens a cited passage in the whole report, uploads a report in the library tab, sees it
listed, removes it, and saves a screenshot (``RAG_SCREENSHOT=docs/screenshot.png`` keeps it;
``make screenshot`` does that). A computed answer shows its formula and a section summary its
numbered points (``RAG_SCREENSHOT_COMPUTED=/tmp/computed.png`` keeps the computed answer's picture).
"""

import os
import re
import shutil

import pytest

from conftest import NEW_REPORT

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 90_000  # a loaded two-core machine: generous waits, no timing assertions
# A browser that reaches nothing: no updates, no sync, no QUIC, a fresh profile.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser_page(tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); "
                    ".ci/run and `make test` do this when run as root")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            locale="zh-CN", viewport={"width": 1440, "height": 1000}, accept_downloads=False)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _ask(page, question: str, done_marker: str) -> str:
    """Type a question, press Enter, and wait until its answer shows ``done_marker``."""
    bots = page.locator("#chatbot [data-testid='bot']")
    count = bots.count() + 1
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(
        """([marker, count]) => {
               const bots = document.querySelectorAll("#chatbot [data-testid='bot']");
               return bots.length >= count && bots[count - 1].innerText.includes(marker);
           }""", arg=[done_marker, count])
    return bots.nth(count - 1).inner_text()


def test_chat_sources_comparison_and_library_in_chromium(browser_page, app_server, tmp_path):
    page = browser_page
    url, app = app_server
    page.goto(url)
    page.locator("#chatbot").wait_for()
    assert "政府年度报告问答" in page.title()
    # The empty chat offers the four kinds of example question.
    for kind in ("事实：", "对比：", "繁体：", "English："):
        assert page.get_by_text(kind, exact=False).first.is_visible()

    page.locator("#mode").get_by_text("摘录原文（不用模型）").click()
    page.wait_for_function("() => document.querySelector('#model-info').innerText.includes('不用模型')")

    answer = _ask(page, "太原市2024年新收行政复议案件多少件？", "秒")  # the footer comes last
    assert "1274" in answer and "[1]" in answer
    assert page.locator("#question textarea").input_value() == ""
    card = page.locator("#sources .src-card").first
    assert "太原市 · 2024年" in card.inner_text()
    assert "1274" in card.locator("mark").inner_text()
    assert not page.locator("#comparison").is_visible()

    # The cited passage opens in the whole report, scrolled to it.
    with page.context.expect_page() as opened:
        card.get_by_text("在全文中查看").click()
    report = opened.value
    report.wait_for_load_state()
    assert "1274" in report.locator("#cited").inner_text() or "1274" in report.locator(".cited mark").inner_text()
    assert report.locator("p").count() > 20
    report.close()

    answer = _ask(page, "太原和绵阳2024年新收行政复议案件各多少？哪个多？", "秒")
    assert "1472" in answer and "[2]" in answer
    assert page.locator("#sources .src-card").count() == 2
    page.locator("#comparison").wait_for(state="visible")
    table = page.locator("#compare-table").inner_text()
    assert "太原市" in table and "1274件" in table and "1472件" in table
    page.locator("#compare-plot canvas, #compare-plot svg").first.wait_for()

    page.wait_for_timeout(500)  # let the chart finish drawing before the picture
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    if os.environ.get("RAG_SCREENSHOT"):
        shutil.copy(shot, os.environ["RAG_SCREENSHOT"])

    # Library: upload a report, see it listed, remove it.
    page.get_by_role("tab", name="报告库").click()
    page.locator("#upload-files input[type=file]").set_input_files(str(NEW_REPORT))
    page.locator("#ingest").click()
    try:
        page.wait_for_function("() => document.querySelector('#upload-results').innerText.includes('已导入')")
        assert "大同市" in page.locator("#upload-results").inner_text()
        page.wait_for_function("() => document.querySelector('#library').innerText.includes('大同市')")
        assert re.search(r"已收录 6 份报告", page.locator("#status-line").inner_text())

        page.locator("#library").get_by_text("大同市", exact=True).first.click()
        page.wait_for_function("() => document.querySelector('#fix-region input, #fix-region textarea')"
                               ".value === '大同市'")
        page.locator("#remove-report").click()
        page.wait_for_function("() => document.querySelector('#library-message').innerText.includes('已删除')")
        page.wait_for_function("() => !document.querySelector('#library').innerText.includes('大同市')")
    finally:
        for record in app.services.index.reports():
            if record.region == "大同市":
                app.services.index.remove_report(record.doc_id)
    assert len(app.services.index.reports()) == 5


def test_computed_answers_show_their_formula_and_summaries_their_points(browser_page, app_server, tmp_path):
    page = browser_page
    url, _ = app_server
    page.goto(url)
    page.locator("#chatbot").wait_for()
    page.locator("#mode").get_by_text("摘录原文（不用模型）").click()
    page.wait_for_function("() => document.querySelector('#model-info').innerText.includes('不用模型')")

    answer = _ask(page, "太原市和绵阳市2024年新收行政复议案件合计多少件？", "秒")
    assert re.search(r"计算：(1274件\[1\] \+ 1472件\[2\]|1472件\[2\] \+ 1274件\[1\]) = 2746件", answer), answer
    bot = page.locator("#chatbot [data-testid='bot']").last
    # The formula line stands out: its label in bold, its figures as code, the markers plain text.
    assert bot.locator("strong", has_text="计算").count() == 1
    figures = bot.locator("code").all_inner_texts()
    assert {"1274件", "1472件", "2746件"} <= set(figures) and not any("[" in f for f in figures)
    # The sources panel shows both cited passages, the cited sentences marked.
    cards = page.locator("#sources .src-card").all_inner_texts()
    assert len(cards) == 2, cards
    assert any("太原市 · 2024年" in c for c in cards) and any("绵阳市 · 2024年" in c for c in cards), cards
    marks = " ".join(page.locator("#sources .src-card mark").all_inner_texts())
    assert "1274" in marks and "1472" in marks
    shot = tmp_path / "computed.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("RAG_SCREENSHOT_COMPUTED"):
        shutil.copy(shot, os.environ["RAG_SCREENSHOT_COMPUTED"])

    answer = _ask(page, "太原市2024年报告指出法治政府建设还存在哪些不足？", "秒")
    assert "太原市（2024年）报告「存在的不足」要点：" in answer, answer
    bot = page.locator("#chatbot [data-testid='bot']").last
    assert "要点" in bot.locator("strong").first.inner_text()
    points = bot.locator("ol > li").all_inner_texts()  # the numbered points: a list, not one paragraph
    assert len(points) >= 2 and all(re.search(r"\[\d+\]$", p.strip()) for p in points), points
    assert "太原市 · 2024年" in page.locator("#sources .src-card").first.inner_text()


def _bots(page, count: int, *texts: str) -> None:
    """Wait until the chat shows ``count`` answers, containing ``texts`` (in any of them)."""
    page.wait_for_function(
        """([count, texts]) => {
               const bots = [...document.querySelectorAll("#chatbot [data-testid='bot']")];
               const all = bots.map(b => b.innerText).join("\\n");
               return bots.length === count && texts.every(t => all.includes(t));
           }""", arg=[count, list(texts)])


def test_the_chat_survives_a_reload_the_list_reopens_it_and_a_link_opens_one_answer(browser_page, app_server):
    page = browser_page
    url, _ = app_server
    page.goto(url)
    page.locator("#chatbot").wait_for()
    page.locator("#mode").get_by_text("摘录原文（不用模型）").click()
    page.wait_for_function("() => document.querySelector('#model-info').innerText.includes('不用模型')")
    _ask(page, "太原市2024年新收行政复议案件多少件？", "秒")
    _ask(page, "太原和绵阳2024年新收行政复议案件各多少？哪个多？", "秒")
    # The download row and the link follow the last answer, then the one clicked.
    page.locator("#dl-table-xlsx").wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('#answer-link').innerText.includes('turn=2')")
    page.locator("#chatbot [data-testid='bot']").first.click()
    page.wait_for_function("() => document.querySelector('#answer-link').innerText.includes('turn=1')")
    assert not page.locator("#dl-table-xlsx").is_visible()  # the first answer has no table
    link = page.locator("#answer-link a").first.get_attribute("href")
    assert re.fullmatch(r"\?conv=[0-9a-f]{32}&turn=1", link), link

    # A reload: the same conversation, the last answer's sources and comparison beside it.
    page.reload()
    _bots(page, 2, "1274", "1472")
    assert "太原市2024年新收行政复议案件多少件？" in page.locator("#chatbot").inner_text()
    page.locator("#comparison").wait_for(state="visible")
    page.wait_for_function("() => document.querySelectorAll('#sources .src-card').length === 2")

    # 新对话 empties the chat; the list still has the conversation and reopens it.
    page.locator("#new-chat").click()
    page.wait_for_function("() => !document.querySelectorAll(\"#chatbot [data-testid='bot']\").length")
    page.locator("#history input").click()
    option = page.locator("li[data-testid='dropdown-option']").first
    assert "太原市2024年新收行政复议案件多少件？" in option.inner_text()
    option.click()
    _bots(page, 2, "1274", "1472")
    page.wait_for_function("() => document.querySelectorAll('#sources .src-card').length === 2")

    # The link opens that conversation at its first answer, with that answer's sources only.
    page.goto(url + link)
    _bots(page, 2, "1274", "1472")
    page.wait_for_function("() => document.querySelectorAll('#sources .src-card').length === 1")
    assert "太原市 · 2024年" in page.locator("#sources .src-card").first.inner_text()
    assert not page.locator("#comparison").is_visible()
    page.wait_for_function("() => document.querySelector('#chatbot .linked-answer') !== null")

    # Another browser (here: this one with its id forgotten) is refused the conversation.
    page.evaluate("() => localStorage.clear()")
    page.goto(url + link)
    page.get_by_text("只能打开自己的对话").first.wait_for()
    assert "1274" not in page.locator("#chatbot").inner_text()


@pytest.mark.slow
def test_stop_ends_a_waiting_answer_and_frees_the_bundled_model(browser_page, app_server):
    page = browser_page
    url, app = app_server
    page.goto(url)
    page.locator("#chatbot").wait_for()
    page.locator("#mode").get_by_text("内置模型（本机）").click()
    # Another user's answer holds the bundled model: this question has to wait, and is stopped.
    lock = app.services.mode_choices().model_lock
    assert lock.acquire(timeout=60)
    try:
        box = page.locator("#question textarea")
        box.fill("太原市2024年新收行政复议案件多少件？")
        box.press("Enter")
        page.wait_for_function("""() => {
            const bots = document.querySelectorAll("#chatbot [data-testid='bot']");
            return bots.length && bots[bots.length - 1].innerText.includes("请稍候");
        }""")
        page.locator("#stop").click()
        page.wait_for_function("""() => {
            const bots = document.querySelectorAll("#chatbot [data-testid='bot']");
            return bots[bots.length - 1].innerText.includes("已停止");
        }""")
        page.wait_for_timeout(1000)  # the other answer ends a little later
    finally:
        lock.release()
    assert "▌" not in page.locator("#chatbot [data-testid='bot']").last.inner_text()
    # The stopped answer gave the model back: the next question is answered by it.
    answer = _ask(page, "太原市2024年新收行政复议案件多少件？", "秒")
    assert "1274" in answer and "内置模型" in answer
    page.wait_for_timeout(1000)
    bots = page.locator("#chatbot [data-testid='bot']")
    assert bots.count() == 2 and "已停止" in bots.first.inner_text()  # the stopped one stayed stopped


def test_the_login_page_lets_only_accounts_in(browser_page, bundled_index, real_embeddings, tmp_path):
    from conftest import free_port
    from rag.accounts import Accounts
    from rag.config import Settings
    from rag.ingest.uploads import UploadPolicy
    from rag.web.app import LOGIN_MESSAGE, build_app

    Accounts(tmp_path / "users.toml").add("reader1", "reader", "reader-password")
    settings = Settings(index_dir=bundled_index.settings.index_dir, users_file=str(tmp_path / "users.toml"))
    app = build_app(settings, UploadPolicy(folder=tmp_path / "uploads"), embeddings=real_embeddings)
    port = free_port()
    app.launch("127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        page = browser_page
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text(LOGIN_MESSAGE).wait_for()  # the login page, not the app
        assert not page.locator("#chatbot").count()
        inputs = page.locator("input")
        inputs.nth(0).fill("reader1")
        inputs.nth(1).fill("wrong-password")
        inputs.nth(1).press("Enter")
        page.get_by_text("凭据不正确").wait_for()  # Gradio's own message, in the browser's language
        assert not page.locator("#chatbot").count()
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text(LOGIN_MESSAGE).wait_for()
        inputs.nth(0).fill("reader1")
        inputs.nth(1).fill("reader-password")
        inputs.nth(1).press("Enter")
        page.locator("#chatbot").wait_for()
        assert "政府年度报告问答" in page.title() and "已收录 5 份报告" in page.locator("#status-line").inner_text()
        page.get_by_text("当前用户：reader1（读者）").wait_for()
        page.get_by_role("tab", name="报告库").click()
        page.locator("#library").wait_for()
        assert not page.locator("#users-panel").is_visible()  # the 用户管理 panel is for admins only
        page.locator("#logout").click()  # back to the login page, and the app is closed to this browser
        page.get_by_text(LOGIN_MESSAGE).wait_for()
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text(LOGIN_MESSAGE).wait_for()
        assert not page.locator("#chatbot").count()
        # An admin sees the panel with the accounts.
        Accounts(tmp_path / "users.toml").add("admin1", "admin", "admin-password")
        inputs.nth(0).fill("admin1")
        inputs.nth(1).fill("admin-password")
        inputs.nth(1).press("Enter")
        page.locator("#chatbot").wait_for()
        page.get_by_role("tab", name="报告库").click()
        page.locator("#users-panel").wait_for()
        page.locator("#users-panel").get_by_text("用户管理（管理员）").click()
        page.locator("#users-table span").filter(has_text="reader1").first.wait_for()
    finally:
        app.close()
