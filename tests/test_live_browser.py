"""Live in a real Chromium: the form's live tick submits a live job, whose page's live figure
grows as files arrive, without a reload."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .browser_helpers import Browser, require_chromium, shot, wait_dash_idle
from .test_dash_browser import _login, _open

pytestmark = [pytest.mark.browser, pytest.mark.redis,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:dash.development.base_component")]

POINTS = "() => { const g = document.querySelector('#hs-live-main .js-plotly-plot');" \
         " return g && g.data && g.data.length ? g.data[0].x.length : 0; }"


@pytest.fixture
def service_settings(service_settings, tmp_path):
    """The detector folder lies under a data root (HISCI_DATA_ROOTS)."""
    return service_settings.model_copy(update={"data_roots": (tmp_path,)})


@pytest.fixture(scope="module")
def browser() -> Any:
    b = Browser(require_chromium())
    yield b
    b.close()


def test_live_figure_updates_as_items_arrive(browser: Browser, live_service: Any, tmp_path: Path) -> None:
    folder = tmp_path / "detector"
    folder.mkdir()
    admin = live_service.service.users.authenticate(live_service.tokens.admin)
    errors: list[str] = []
    page = browser.page(errors)
    try:
        _login(page, live_service.url, live_service.tokens.admin, "admin")
        # the form: without a file for the required input, submit stays disabled until live is ticked
        _open(page, f"{live_service.url}/plugins/live_plugin", "#hs-live-on")
        assert page.locator("#hs-submit").is_disabled()
        page.locator("#hs-live-on input[type=checkbox]").check()
        page.locator("#hs-live-address").fill(str(folder))
        page.locator("#hs-live-address").press("Enter")
        page.wait_for_function("() => !document.querySelector('#hs-submit').disabled", timeout=15000)
        shot(page, tmp_path, "live-form")
        page.click("#hs-submit")
        page.wait_for_url("**/jobs/*")
        job_id = page.url.rstrip("/").rsplit("/", 1)[-1]
        record = live_service.service.get(admin, job_id)
        assert record["live_spec"]["watch"] == {"frames": str(folder)} and record["timeout"] == -1
        page.wait_for_selector("#hs-live-panel")
        wait_dash_idle(page)
        page.evaluate("() => { window.__hisciMarker = 1; }")  # gone if the page reloads
        (folder / "a.bin").write_bytes(os.urandom(32))
        page.wait_for_function(f"() => ({POINTS})() >= 1", timeout=20000)
        shot(page, tmp_path, "live-1")
        for name in ("b.bin", "c.bin"):
            (folder / name).write_bytes(os.urandom(32))
        page.wait_for_function(f"() => ({POINTS})() >= 3", timeout=20000)
        page.wait_for_selector('#hs-live-lag:text("processed 3")', timeout=20000)
        assert page.evaluate("() => window.__hisciMarker") == 1
        shot(page, tmp_path, "live-3")
        live_service.service.cancel(admin, job_id)
        page.wait_for_selector('[data-status="cancelled"]', timeout=20000)
        assert errors == [], "\n".join(errors)
    finally:
        page.context.close()
