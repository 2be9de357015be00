"""The sweep toggle on the form and the comparison page, in Debian's chromium against the
full service (API + web + a real worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .browser_helpers import Browser, require_chromium, shot, wait_dash_idle
from .test_dash_browser import _login, _open

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def browser() -> Any:
    b = Browser(require_chromium())
    yield b
    b.close()


def test_sweep_from_the_form_and_comparison_page(browser: Browser, live_service: Any, tmp_path: Path) -> None:
    url, tokens = live_service.url, live_service.tokens
    errors: list[str] = []
    page = browser.page(errors)
    try:
        _login(page, url, tokens.alice, "alice")
        _open(page, url + "/plugins/table_plot", '[data-field="extra/chart_type"]')
        page.click("#hs-load-example")
        page.wait_for_selector('.dash-spreadsheet-container :text("dose")')
        wait_dash_idle(page)
        page.locator("#hs-sweep-on input[type=checkbox]").check()
        page.locator("#hs-sweep-values").fill("line,bar")
        wait_dash_idle(page)
        shot(page, tmp_path, "0-sweep-form")
        page.click("#hs-submit")
        page.wait_for_url("**/jobs/*")
        page.wait_for_selector('#hs-job-status [data-status="succeeded"]', timeout=120000)
        page.click("#hs-job-compare")
        page.wait_for_url("**/compare")
        page.wait_for_selector("#hs-compare-table")
        page.wait_for_function("() => document.querySelectorAll('#hs-compare-grid .js-plotly-plot').length == 2",
                               timeout=30000)
        values = page.locator("#hs-compare-grid .hs-compare-value").all_inner_texts()
        assert values == ['extra.chart_type = "line"', 'extra.chart_type = "bar"']
        table = page.inner_text("#hs-compare-table")
        assert "extra.chart_type" in table and '"line"' in table and '"bar"' in table
        shot(page, tmp_path, "1-compare")
        assert not [e for e in errors if "favicon" not in e], errors
    finally:
        page.context.close()
