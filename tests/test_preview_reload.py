"""`hicli preview`: the page follows edits of the plugin's files on disk (real Chromium)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from .browser_helpers import Browser, require_chromium, serve_wsgi, shot

pytestmark = [pytest.mark.browser,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:dash.development.base_component")]
TABLE_PLOT = Path(__file__).parents[1] / "plugins" / "table_plot"


def _edit(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    time.sleep(0.05)  # a distinct mtime even on coarse filesystems
    path.write_text(json.dumps(document, indent=2))


def test_preview_reloads_form_problems_and_code_from_disk(tmp_path: Path) -> None:
    from dash_app.preview import create_preview_app

    folder = tmp_path / "my_chart"
    shutil.copytree(TABLE_PLOT, folder, ignore=shutil.ignore_patterns("__pycache__"))
    app = create_preview_app(folder)
    browser = Browser(require_chromium())
    errors: list[str] = []
    try:
        with serve_wsgi(app.server) as url:
            page = browser.page(errors)
            page.goto(f"{url}/preview?plugin=my_chart")
            page.wait_for_selector("#hs-pv-valid")
            _edit(folder / "ui.json", lambda u: u["extra"]["marker_size"].update(label={"en": "Dot size"}))
            page.wait_for_selector('#hs-pv-form [data-field="extra/marker_size"] :text("Dot size")')
            shot(page, tmp_path, "preview-reloaded")
            _edit(folder / "ui.json", lambda u: u["extra"]["opacity"].update(type="sliderr"))
            page.wait_for_selector('#hs-pv-problems [data-pointer="/extra/opacity/type"]')
            _edit(folder / "ui.json", lambda u: u["extra"]["opacity"].update(type="slider"))
            page.wait_for_selector("#hs-pv-valid")
            code = (folder / "plugin.py").read_text().replace('"traces": len(fig.data),',
                                                               '"traces": len(fig.data), "edited": True,')
            (folder / "plugin.py").write_text(code)
            time.sleep(1.5)  # one watcher tick
            page.click("#hs-pv-run")
            page.wait_for_selector('#hs-pv-status [data-status="succeeded"]', timeout=60000)
            assert '"edited": true' in page.inner_text("#hs-pv-result-json")
            shot(page, tmp_path, "preview-run-edited")
            page.close()  # before the server stops, so its polling never hits a closed socket
    finally:
        browser.close()
    assert errors == []
