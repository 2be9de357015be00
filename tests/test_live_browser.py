"""A live job's page in a real Chromium: its live figure grows as files arrive, without a reload."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from hisci.jobs import User

from .browser_helpers import Browser, require_chromium, shot
from .test_dash_browser import _login, _open

pytestmark = [pytest.mark.browser, pytest.mark.redis,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:dash.development.base_component")]

POINTS = "() => { const g = document.querySelector('#hs-live-main .js-plotly-plot');" \
         " return g && g.data && g.data.length ? g.data[0].x.length : 0; }"


@pytest.fixture(scope="module")
def browser() -> Any:
    b = Browser(require_chromium())
    yield b
    b.close()


def test_live_figure_updates_as_items_arrive(browser: Browser, live_service: Any, tmp_path: Path) -> None:
    folder = tmp_path / "detector"
    folder.mkdir()
    record = live_service.service.submit(User("alice"), "live_plugin", {
        "live": {"watch": {"frames": str(folder)}, "settle": 0, "poll": 0.05}})
    errors: list[str] = []
    page = browser.page(errors)
    try:
        _login(page, live_service.url, live_service.tokens.alice, "alice")
        _open(page, f"{live_service.url}/jobs/{record['id']}", "#hs-live-panel")
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
        live_service.service.cancel(User("alice"), record["id"])
        page.wait_for_selector('[data-status="cancelled"]', timeout=20000)
        assert errors == [], "\n".join(errors)
    finally:
        page.context.close()
