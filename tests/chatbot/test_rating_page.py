"""The rating page and the chat page in headless Chromium, against a real uvicorn.

A rater types their name, picks two scores and submits: the progress line must
move on, the next conversation must show with no score picked, and the rating
must be in the SQLite file. Reloading the page and typing the same name
resumes at the first conversation not rated yet. The browser is driven the way
tests/ui drives JupyterLab (Debian's Chromium through Playwright's sync API),
but these tests run in a plain ``pytest tests/chatbot``: they need no
WORKBOOK_UI_TESTS, only Chromium, and are skipped with the reason when it is
missing.
"""

from __future__ import annotations

import pytest

from tests.chatbot.test_api import CONVERSATIONS, make_app, serve
from tests.ui.lab import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium, "
    "or set WORKBOOK_CHROMIUM to a Chromium or Chrome binary)",
)

TIMEOUT_MS = 15_000  # generous: two cores may be busy with other tests


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return make_app(tmp_path_factory.mktemp("rating-page") / "ratings.sqlite3")


@pytest.fixture(scope="module")
def url(app):
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"the page raised JavaScript errors: {errors}"


def rate(page, appropriateness: int, fluency: int) -> None:
    page.check(f"input[name=appropriateness][value='{appropriateness}']")
    page.check(f"input[name=fluency][value='{fluency}']")
    page.click("#submit")


def test_rate_one_conversation_then_the_next(page, url, app):
    from playwright.sync_api import expect

    page.goto(url + "/rate")
    expect(page.locator("#progress")).to_have_text(f"0 / {len(CONVERSATIONS)} rated")
    expect(page.locator("#title")).to_have_text("Conversation 1 of 5")
    expect(page.locator("#context")).to_contain_text("question number 0?")
    expect(page.locator("#reply")).to_have_text("answer 0")

    page.click("#submit")  # nothing filled in: the page says what is missing
    expect(page.locator("#status")).to_have_text("Type your name first (1 to 50 characters).")
    page.fill("#rater", "page-ana")
    page.check("input[name=fluency][value='2']")
    page.click("#submit")
    expect(page.locator("#status")).to_contain_text("Pick a score from 1 to 5 for both")

    rate(page, 4, 5)
    expect(page.locator("#progress")).to_have_text("1 / 5 rated")
    expect(page.locator("#title")).to_have_text("Conversation 2 of 5")
    expect(page.locator("#reply")).to_have_text("answer 1")
    expect(page.locator("input[type=radio]:checked")).to_have_count(0)
    rows = [row for row in app.state.store.rows() if row["rater"] == "page-ana"]
    assert [(r["conversation_id"], r["appropriateness"], r["fluency"]) for r in rows] == [(0, 4, 5)]

    page.click("#skip")  # leaves conversation 2 for later
    expect(page.locator("#title")).to_have_text("Conversation 3 of 5")
    rate(page, 1, 2)
    expect(page.locator("#progress")).to_have_text("2 / 5 rated")

    # Coming back later: the same name resumes at the first conversation not rated.
    page.reload()
    expect(page.locator("#progress")).to_have_text("0 / 5 rated")
    page.fill("#rater", "page-ana")
    page.locator("#rater").blur()  # fires change, which asks /rate/progress
    expect(page.locator("#progress")).to_have_text("2 / 5 rated")
    expect(page.locator("#title")).to_have_text("Conversation 2 of 5")
    for done in (3, 4, 5):
        # One at a time, as a person does: the next conversation's buttons are
        # only there once the page has shown it.
        rate(page, 3, 3)
        expect(page.locator("#progress")).to_have_text(f"{done} / 5 rated")
    expect(page.locator("#status")).to_have_text("All 5 conversations rated. Thank you!")
    expect(page.locator("#rating")).to_be_hidden()
    assert len([r for r in app.state.store.rows() if r["rater"] == "page-ana"]) == 5


def test_a_refused_rating_is_shown_not_lost(page, url):
    from playwright.sync_api import expect

    page.goto(url + "/rate")
    expect(page.locator("#title")).to_have_text("Conversation 1 of 5")
    page.fill("#rater", "x" * 50)
    page.evaluate("document.getElementById('rater').value = 'y'.repeat(60)")  # past maxlength
    rate(page, 2, 2)
    expect(page.locator("#status")).to_contain_text("Not saved: The rater's name has 60 characters")
    expect(page.locator("#progress")).to_have_text("0 / 5 rated")
    expect(page.locator("#title")).to_have_text("Conversation 1 of 5")


def test_the_chat_page_shows_three_responses_and_errors(page, url):
    from playwright.sync_api import expect

    page.goto(url + "/")
    page.fill("#message", "hello zorblax")
    page.press("#message", "Enter")
    expect(page.locator("#responses li")).to_have_count(3)
    expect(page.locator("#responses li").first).to_contain_text("hello!")
    expect(page.locator("#unknown")).to_have_text("Words the model does not know: zorblax")
    expect(page.locator("#timings")).to_contain_text("encode 0.50 ms")
    page.fill("#message", "   ")
    page.press("#message", "Enter")
    expect(page.locator("#error")).to_have_text(
        "The message is empty: type a few words to get a reply."
    )
    expect(page.locator("#responses li")).to_have_count(0)
