"""The demo page at / in headless Chromium (Playwright): type a text, see the probabilities.

Needs Debian's `chromium` (apt-get install -y chromium); skipped with a reason
only when no Chromium is installed, and failed instead with CI=true (`.ci/run` installs it, so a
missing browser there means the demo page went untested). The screenshot is kept under
tests/serving/artifacts/ (git-ignored) or $SERVING_ARTIFACTS_DIR.
"""

import os
import shutil

import pytest
from serving_helpers import LABEL_NAMES, TEXTS, in_process_probabilities, shared_server

from electra_tf.serving.serving_config import ServingConfig

CHROMIUM = next((path for path in (os.environ.get("CHROMIUM_PATH"), shutil.which("chromium"),
                                   shutil.which("chromium-browser")) if path), None)
ARTIFACTS = os.environ.get("SERVING_ARTIFACTS_DIR",
                           os.path.join(os.path.dirname(__file__), "artifacts"))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_chromium():
    """Skips a browser test where no Chromium is installed, except under CI, where it fails."""
    if CHROMIUM is None:
        message = "no Chromium browser installed (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(f"{message}: .ci/run installs it, so CI=true must have it")
        pytest.skip(message)


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    require_chromium()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 900, "height": 640})
        yield page
        browser.close()


def test_demo_page_shows_probability_bars(page):
    server = shared_server()
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-state=ready]", timeout=30_000)
    assert "sentiment" in page.inner_text("#meta")
    page.fill("#input-text", TEXTS[0])
    page.click("#predict")
    page.wait_for_selector("body[data-state=done]", timeout=30_000)

    expected = in_process_probabilities(TEXTS[:1])[0]
    rows = page.query_selector_all("#result .row")
    assert [row.query_selector(".name").inner_text() for row in rows] == [
        "negative", "neutral", "positive"]
    shown = [float(row.query_selector(".value").inner_text().rstrip("%")) for row in rows]
    assert shown == pytest.approx(100 * expected, abs=0.051)  # one decimal on screen
    top = rows[int(expected.argmax())]
    assert "top" in top.get_attribute("class")
    width = top.query_selector(".bar").evaluate("bar => bar.style.width")
    assert float(width.rstrip("%")) == pytest.approx(100 * expected.max(), abs=0.051)
    assert page.inner_text("#label").endswith(LABEL_NAMES[expected.argmax()])

    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, "demo_page.png")
    page.screenshot(path=path, full_page=True)
    print(f"demo page screenshot: {path}")
    assert os.path.getsize(path) > 1000


def test_demo_page_shows_the_servers_error(page):
    server = shared_server()
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-state=ready]", timeout=30_000)
    page.evaluate("() => { document.getElementById('input-text').maxLength = 100000; }")
    page.fill("#input-text", "word " * 500)  # longer than the server's --max-text-length 2000
    page.click("#predict")
    page.wait_for_selector("#error", timeout=30_000)
    assert "at most 2000 are allowed" in page.inner_text("#error")
    assert ServingConfig().max_text_length > 2000  # the test server lowered the limit

