"""Playwright helpers for the browser tests: Debian's chromium, a served app, console checks.

    with serve_wsgi(app.server) as url, browser_page() as (page, errors):
        page.goto(url)
        ...
        assert not errors

Chromium comes from Debian (``apt-get install chromium``, done by ``make browser``) and is
driven through ``executable_path``; no browser download happens.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
#: Console messages that are not the app's fault.
IGNORED_CONSOLE = ("favicon.ico", "DevTools", "Download the React DevTools",
                   "was preloaded using link preload")


def chromium_path() -> str | None:
    for candidate in (os.environ.get("HISCI_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def require_chromium() -> str:
    """Debian's chromium; `make test` installs it, so a missing one fails (never skips) there."""
    path = chromium_path()
    if path is None:
        pytest.fail("Debian chromium is not installed: run `make browser` (apt-get install chromium)")
    import playwright  # noqa: F401 - a dev dependency; its absence is an install error
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_wsgi(wsgi_app: Any) -> Iterator[str]:
    """Serve a WSGI app (the Dash app's Flask server) on a free port in a thread."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", free_port(), wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


class Browser:
    """One chromium for a test module; ``page()`` opens a fresh context and tab."""

    def __init__(self, executable: str) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                                headless=True)

    def page(self, errors: list[str], viewport: dict[str, int] | None = None) -> Any:
        context = self.browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15000)

        def on_console(msg: Any) -> None:
            if msg.type == "error" and not any(s in msg.text for s in IGNORED_CONSOLE):
                errors.append(f"console: {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        return page

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.browser.close()
        with contextlib.suppress(Exception):
            self._pw.stop()


def wait_dash_idle(page: Any, timeout: float = 15000) -> None:
    """Wait until Dash has no callback in flight (the renderer marks loading states)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-dash-is-loading=\"true\"]')", timeout=timeout)


def shot(page: Any, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def field(page: Any, section: str, key: str) -> Any:
    """The wrapper of a form field (label, input, error) by its data-field attribute."""
    return page.locator(f'[data-field="{section}/{key}"]')


def choose(page: Any, section: str, key: str, option: str) -> None:
    """Pick ``option`` in the dropdown of a field (Dash 4 dropdown)."""
    wrapper = field(page, section, key)
    wrapper.locator(".dash-dropdown, [role=combobox], button").first.click()
    page.get_by_role("option", name=option, exact=True).first.click()
    page.keyboard.press("Escape")
