"""The Dash app in a real Chromium (Debian's package, driven by Playwright).

Part 1 serves the app alone (no job service): catalogue, forms (conditional fields, inline
errors), preview (broken and fixed ui.json, Run example), language toggle.
Part 2 (when tests/conftest_service.py provides ``live_service``) drives the whole product:
log in, load the example, submit, watch the job succeed, see the figure; another user's job
is "not found". Screenshots of every page land in the test's tmp dir; no console errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dash_app import create_dash_app
from hisci import Registry, Settings

from .browser_helpers import (
    Browser,
    choose,
    field,
    require_chromium,
    serve_wsgi,
    shot,
    wait_dash_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::DeprecationWarning:dash.development.base_component")]

ROOT = Path(__file__).parents[1]
SAMPLES = Path(__file__).parent / "data" / "hiplot-samples"


def _broken(folder: Path) -> Path:
    """A copy of table_plot whose ui.json names an unknown widget type."""
    import shutil

    target = folder / "broken_plot"
    shutil.copytree(ROOT / "plugins" / "table_plot", target, ignore=shutil.ignore_patterns("__pycache__"))
    ui = json.loads((target / "ui.json").read_text("utf-8"))
    ui["extra"]["marker_size"]["type"] = "slidr"
    (target / "ui.json").write_text(json.dumps(ui), "utf-8")
    return target


@pytest.fixture(scope="module")
def browser() -> Any:
    b = Browser(require_chromium())
    yield b
    b.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    extra = tmp_path_factory.mktemp("plugins")
    folders = tuple(p for p in SAMPLES.iterdir() if p.is_dir()) + (_broken(extra),)
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), plugin_path=folders,
                        entry_points=False)
    app = create_dash_app(settings, Registry.discover(settings))
    with serve_wsgi(app.server) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Any:
    errors: list[str] = []
    p = browser.page(errors)
    p.errors = errors  # type: ignore[attr-defined]
    yield p
    p.context.close()


def _no_console_errors(page: Any) -> None:
    assert page.errors == [], "\n".join(page.errors)


def _open(page: Any, url: str, selector: str) -> None:
    page.goto(url)
    page.wait_for_selector(selector)
    wait_dash_idle(page)


def _visible(page: Any, section: str, key: str) -> bool:
    return field(page, section, key).is_visible()


def _set_text(page: Any, section: str, key: str, text: str) -> None:
    box = field(page, section, key).locator("input[type=text]").first
    box.fill(text)
    wait_dash_idle(page)


def test_catalogue_search_tags_and_invalid(page: Any, app_url: str, tmp_path: Path) -> None:
    _open(page, app_url + "/", ".hs-card")
    cards = page.locator(".hs-card")
    assert cards.count() >= 10
    invalid = page.locator('.hs-card.hs-invalid[data-plugin="broken_plot"]')
    assert invalid.is_visible()
    assert "invalid" in invalid.inner_text()
    assert invalid.locator('[data-pointer="/extra/marker_size/type"]').count() == 1
    shot(page, tmp_path, "catalogue")
    page.locator("#hs-cat-search").fill("volcano")
    page.wait_for_function("() => document.querySelectorAll('.hs-card').length === 1")
    assert page.locator('.hs-card[data-plugin="basic-volcano"]').is_visible()
    page.locator("#hs-cat-search").fill("")
    page.wait_for_function("() => document.querySelectorAll('.hs-card').length > 5")
    choose_tag = page.locator("#hs-cat-tag")
    choose_tag.click()
    page.get_by_role("option", name="example", exact=True).click()
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.querySelectorAll('.hs-card').length === 1")
    assert page.locator('.hs-card[data-plugin="table_plot"]').is_visible()
    # an invalid plugin's own page lists its problems instead of a blank page or a 500
    _open(page, app_url + "/plugins/broken_plot", ".hs-problems")
    assert "/extra/marker_size/type" in page.inner_text(".hs-problems")
    _open(page, app_url + "/plugins/no_such_plugin", "h2")
    assert "not found" in page.inner_text("h2").lower()
    _no_console_errors(page)


def test_form_example_conditional_field_and_inline_error(page: Any, app_url: str, tmp_path: Path) -> None:
    _open(page, app_url + "/plugins/table_plot", '[data-field="extra/chart_type"]')
    table_error = field(page, "data", "datTable").locator(".hs-error")
    assert "datTable" in table_error.inner_text()  # required table is empty
    assert page.locator("#hs-submit").is_disabled()
    page.click("#hs-load-example")
    page.wait_for_selector('.dash-spreadsheet-container :text("dose")')
    wait_dash_idle(page)
    assert field(page, "dataArg", "datTable/0").inner_text().strip().endswith("dose")
    assert not page.locator("#hs-submit").is_disabled()  # no service: enabled but says so
    shot(page, tmp_path, "form-example")

    assert _visible(page, "extra", "marker_size")
    choose(page, "extra", "chart_type", "bar")
    page.wait_for_selector('[data-field="extra/marker_size"]', state="hidden")
    choose(page, "extra", "chart_type", "scatter")
    page.wait_for_selector('[data-field="extra/marker_size"]', state="visible")

    _set_text(page, "extra", "color", "not a colour!")
    error = field(page, "extra", "color").locator(".hs-error")
    page.wait_for_function(
        "() => document.querySelector('[data-field=\"extra/color\"] .hs-error').innerText.length > 0")
    assert "does not match" in error.inner_text() or "colour" in error.inner_text().lower() \
        or "pattern" in error.inner_text().lower()
    assert page.locator("#hs-submit").is_disabled()
    shot(page, tmp_path, "form-invalid")
    _set_text(page, "extra", "color", "#ff0000")
    page.wait_for_function(
        "() => document.querySelector('[data-field=\"extra/color\"] .hs-error').innerText === ''")
    assert not page.locator("#hs-submit").is_disabled()
    _no_console_errors(page)


BROKEN_TYPE = ("extra", "marker_size", "type", "slidr", "/extra/marker_size/type")
BROKEN_EXPR = ("extra", "marker_size", "if_func", "this.params.config.extra.chart_type ===",
               "/extra/marker_size/if_func")


def test_preview_broken_then_fixed_and_run_example(page: Any, app_url: str, tmp_path: Path) -> None:
    _open(page, app_url + "/preview?plugin=table_plot", "#hs-pv-valid")
    assert field(page, "extra", "marker_size").count() == 1
    good = page.locator("#hs-pv-ui").input_value()
    for section, key, attr, value, pointer in (BROKEN_TYPE, BROKEN_EXPR):
        ui = json.loads(good)
        ui[section][key][attr] = value
        page.locator("#hs-pv-ui").fill(json.dumps(ui, indent=2))
        page.wait_for_selector(f'#hs-pv-problems [data-pointer="{pointer}"]')
        assert page.locator(f'#hs-pv-problems [data-pointer="{pointer}"]').get_attribute("data-file") == "ui.json"
        shot(page, tmp_path, f"preview-broken-{attr}")
    page.locator("#hs-pv-ui").fill("{ not json")
    page.wait_for_selector('#hs-pv-problems [data-file="ui.json"] :text("invalid JSON")')
    fixed = json.loads(good)
    fixed["extra"]["marker_size"]["label"] = {"en": "Point size", "zh_cn": "点大小"}
    page.locator("#hs-pv-ui").fill(json.dumps(fixed, indent=2))
    page.wait_for_selector("#hs-pv-valid")
    page.wait_for_selector('#hs-pv-form [data-field="extra/marker_size"] :text("Point size")')
    assert '"marker_size"' in (page.locator("#hs-pv-schema").text_content() or "")
    page.click("#hs-pv-run")
    page.wait_for_selector('#hs-pv-status [data-status="succeeded"]', timeout=60000)
    page.wait_for_selector("#hs-pv-result .js-plotly-plot")
    assert '"rows": 36' in page.inner_text("#hs-pv-result-json")
    shot(page, tmp_path, "preview-run")
    _no_console_errors(page)


def test_every_widget_type_draws(page: Any, app_url: str, tmp_path: Path) -> None:
    seen: set[str] = set()
    for plugin_id in ("basic-pseudo-enhanced-ma", "advance-gsea", "basic-ggdag", "basic-ggpubr-boxplot",
                      "advance-clusterprofiler-go-kegg", "basic-volcano", "basic-heatmap"):
        _open(page, app_url + f"/plugins/{plugin_id}", ".hs-form")
        fields = page.locator("[data-field]")
        for i in range(fields.count()):
            seen.add(fields.nth(i).get_attribute("data-type") or "")
        for kind, selector in (("codemirror", "textarea"), ("cloud-file", "input[type=file]"),
                               ("range-slider", ".dash-range-slider, [role=slider]"),
                               ("hiplot-textarea", ".dash-spreadsheet-container")):
            wrappers = page.locator(f'[data-type="{kind}"]')
            for i in range(wrappers.count()):
                assert wrappers.nth(i).locator(selector).count() >= 1, (plugin_id, kind)
        shot(page, tmp_path, f"form-{plugin_id}")
    assert {"slider", "range-slider", "switch", "select", "autocomplete", "combobox", "text-field",
            "color-picker", "hiplot-textarea", "cloud-file", "codemirror"} <= seen
    # dataArg selects follow the table's header: paste a table, see its columns offered
    _open(page, app_url + "/plugins/basic-volcano", '[data-field="dataArg/datTable/0"]')
    page.locator("details.hs-paste summary").first.click()
    page.locator("details.hs-paste textarea").first.fill("gene\tpval\tfc\nTP53\t0.01\t2\n")
    page.locator("details.hs-paste button").first.click()
    wait_dash_idle(page)
    choose(page, "dataArg", "datTable/1", "pval")
    assert field(page, "dataArg", "datTable/1").inner_text().strip().endswith("pval")
    table = field(page, "data", "datTable")
    table.get_by_role("button", name="Add column").click()
    table.get_by_role("button", name="Add row").click()
    page.wait_for_function("() => document.querySelectorAll('[data-field=\"data/datTable\"] th.dash-header').length === 4")
    wait_dash_idle(page)
    choose(page, "dataArg", "datTable/2", "V4")  # a new column is offered at once
    _no_console_errors(page)


def test_language_toggle(page: Any, app_url: str) -> None:
    _open(page, app_url + "/plugins/table_plot", '[data-field="extra/chart_type"]')
    page.click("#hs-lang-toggle")
    page.wait_for_selector('[data-field="extra/chart_type"] :text("图表类型")')
    assert "载入示例" in page.inner_text("#hs-load-example")
    page.click("#hs-lang-toggle")
    page.wait_for_selector('[data-field="extra/chart_type"] :text("Chart type")')
    _no_console_errors(page)


# ---------------------------------------------------------------- part 2: the whole product

def _login(page: Any, url: str, token: str, name: str) -> None:
    _open(page, url + "/login", "#hs-login-token")
    page.locator("#hs-login-token").fill(token)
    page.click("#hs-login-btn")
    page.wait_for_selector(f'#hs-user:text("{name}")')
    page.wait_for_selector(".hs-card")


@pytest.mark.redis
def test_end_to_end_login_submit_watch_and_isolation(browser: Browser, live_service: Any, tmp_path: Path) -> None:
    url, tokens = live_service.url, live_service.tokens
    errors: list[str] = []
    page = browser.page(errors)
    try:
        _open(page, url + "/jobs", ".hs-panel")
        assert "log in" in page.inner_text(".hs-panel").lower()
        page.goto(url + "/login")
        page.wait_for_selector("#hs-login-token")
        page.locator("#hs-login-token").fill("not-a-token")
        page.click("#hs-login-btn")
        page.wait_for_selector('#hs-login-msg:text("not valid")')
        shot(page, tmp_path, "0-login")
        _login(page, url, tokens.alice, "alice")
        cookie = [c for c in page.context.cookies() if c["name"] == "hisci_token"]
        assert cookie and cookie[0]["httpOnly"]  # for the API's download links
        shot(page, tmp_path, "1-catalogue")

        _open(page, url + "/plugins/table_plot", '[data-field="extra/chart_type"]')
        page.click("#hs-load-example")
        page.wait_for_selector('.dash-spreadsheet-container :text("dose")')
        wait_dash_idle(page)
        choose(page, "extra", "chart_type", "bar")
        page.wait_for_selector('[data-field="extra/marker_size"]', state="hidden")
        choose(page, "extra", "chart_type", "scatter")
        page.wait_for_selector('[data-field="extra/marker_size"]', state="visible")
        _set_text(page, "extra", "color", "bogus colour")
        page.wait_for_function(
            "() => document.querySelector('[data-field=\"extra/color\"] .hs-error').innerText.length > 0")
        assert page.locator("#hs-submit").is_disabled()
        shot(page, tmp_path, "2-form-invalid")
        _set_text(page, "extra", "color", "#2b8a3e")
        page.wait_for_function("() => !document.querySelector('#hs-submit').disabled")
        shot(page, tmp_path, "3-form-ready")
        page.click("#hs-submit")
        page.wait_for_url("**/jobs/*")
        job_id = page.url.rstrip("/").rsplit("/", 1)[-1]
        page.wait_for_selector("#hs-job-status")
        page.wait_for_selector('#hs-job-status [data-status="succeeded"]', timeout=120000)
        page.wait_for_selector("#hs-job-figures .js-plotly-plot", timeout=20000)
        assert "chart.json" in page.inner_text("#hs-job-files")
        assert "started" in page.inner_text("#hs-job-log")
        params = json.loads(page.inner_text("#hs-job-params"))
        assert params["extra"]["color"] == "#2b8a3e" and params["dataArg"]["datTable"][0]["value"] == "dose"
        href = page.locator("#hs-job-files a", has_text="chart.json").first.get_attribute("href")
        assert href == f"/api/v1/jobs/{job_id}/files/chart.json"
        response = page.request.get(url + href, headers={"Authorization": f"Bearer {tokens.alice}"})
        assert response.status == 200 and b'"data"' in response.body()
        zip_href = page.locator("#hs-job-zip").get_attribute("href")
        assert page.request.get(url + zip_href, headers={"Authorization": f"Bearer {tokens.alice}"}).status == 200
        shot(page, tmp_path, "4-job-succeeded")

        page.click("#hs-job-again")
        page.wait_for_selector('[data-field="extra/color"]')
        wait_dash_idle(page)
        assert field(page, "extra", "color").locator("input[type=text]").input_value() == "#2b8a3e"

        _open(page, url + "/jobs", f'tr[data-job="{job_id}"]')
        assert "succeeded" in page.inner_text(f'tr[data-job="{job_id}"]')
        page.locator(f'tr[data-job="{job_id}"] button').click()  # retry
        page.wait_for_function("() => document.querySelectorAll('tr[data-job]').length === 2")
        shot(page, tmp_path, "5-my-jobs")

        # a slow job: live progress on its page, cancel from there
        alice = live_service.service.users.authenticate(tokens.alice)
        slow = live_service.service.submit(alice, "slow_plugin", {"extra": {"seconds": 60}})
        _open(page, url + f"/jobs/{slow['id']}", "#hs-job-status")
        page.wait_for_selector('#hs-job-status [data-status="running"]', timeout=60000)
        page.wait_for_function("() => document.querySelector('#hs-job-message').innerText.startsWith('step')")
        page.wait_for_function("() => parseFloat(document.querySelector('#hs-job-bar').style.width) > 0")
        shot(page, tmp_path, "5b-job-running")
        page.click("#hs-job-cancel")
        page.wait_for_selector('#hs-job-status [data-status="cancelled"]', timeout=30000)

        # the preview page of the served product: error at its pointer, then the fixed form
        _open(page, url + "/preview?plugin=table_plot", "#hs-pv-valid")
        good = page.locator("#hs-pv-ui").input_value()
        broken = json.loads(good)
        broken["extra"]["chart_type"]["type"] = "selekt"
        page.locator("#hs-pv-ui").fill(json.dumps(broken))
        page.wait_for_selector('#hs-pv-problems [data-pointer="/extra/chart_type/type"]')
        assert "selekt" in page.inner_text("#hs-pv-problems")
        shot(page, tmp_path, "5c-preview-broken")
        page.locator("#hs-pv-ui").fill(good)
        page.wait_for_selector("#hs-pv-valid")
        page.wait_for_selector('#hs-pv-form [data-field="extra/chart_type"]')
        shot(page, tmp_path, "5d-preview-fixed")

        page.click("#hs-logout")
        page.wait_for_selector("#hs-login-token")
        _login(page, url, tokens.bob, "bob")
        _open(page, url + f"/jobs/{job_id}", "#hs-job-not-found")
        assert page.request.get(url + href, headers={"Authorization": f"Bearer {tokens.bob}"}).status == 404
        shot(page, tmp_path, "6-other-users-job")
        _open(page, url + "/jobs", ".hs-muted")
        assert job_id not in page.inner_text("#hs-page")
        assert errors == [], "\n".join(errors)
    finally:
        page.context.close()


def test_cloud_file_upload_feeds_items_func_and_if_func(page: Any, app_url: str, tmp_path: Path) -> None:
    _open(page, app_url + "/plugins/advance-gsea", '[data-field="data/2-cls"]')
    assert not _visible(page, "extra", "enable_versus_rest")  # this.unique_line.length > 2
    cls = b"6 3 1\n# A B C\nA A B B C C\n"
    field(page, "data", "2-cls").locator("input[type=file]").set_input_files(
        files=[{"name": "groups.cls", "mimeType": "text/plain", "buffer": cls}])
    page.wait_for_selector('[data-field="data/2-cls"] .hs-file-info:text("groups.cls (26 B)")')
    page.wait_for_selector('[data-field="extra/enable_versus_rest"]', state="visible")
    choose(page, "extra", "test_groups", "B")
    assert "B" in field(page, "extra", "test_groups").inner_text()
    assert "2-cls" not in field(page, "data", "2-cls").locator(".hs-error").inner_text()
    shot(page, tmp_path, "gsea-upload")
    _no_console_errors(page)


@pytest.mark.redis
def test_service_preview_runs_as_a_job_and_leaving_the_page_removes_it(browser: Browser, live_service: Any,
                                                                        tmp_path: Path) -> None:
    """In a service "Run example" is a preview job on the worker: the page polls it, draws the
    result and deletes the job; a run still going when the user leaves the page is deleted."""
    from hisci.jobs.preview import preview_ids

    from .conftest_service import wait_for

    url, service = live_service.url, live_service.service
    errors: list[str] = []
    page = browser.page(errors)
    try:
        _login(page, url, live_service.tokens.alice, "alice")
        _open(page, url + "/preview?plugin=slow_plugin", "#hs-pv-valid")
        page.click("#hs-pv-run")
        page.wait_for_selector('#hs-pv-status [data-status="succeeded"]', timeout=60000)
        assert '"slept": 0.1' in page.inner_text("#hs-pv-result-json")
        shot(page, tmp_path, "preview-job-succeeded")
        wait_for(lambda: preview_ids(service) == [], timeout=10)

        data = json.loads(page.locator("#hs-pv-data").input_value())
        data["exampleData"] = {"config": {"extra": {"seconds": 60}}}
        page.locator("#hs-pv-data").fill(json.dumps(data))
        wait_dash_idle(page)
        page.click("#hs-pv-run")
        page.wait_for_selector('#hs-pv-status [data-status="running"]', timeout=60000)
        running = preview_ids(service)
        assert len(running) == 1
        page.click("#hs-nav >> text=My jobs")  # another page of the app: the beacon closes the preview
        wait_for(lambda: preview_ids(service) == [], timeout=20)
        assert errors == []
    finally:
        page.close()
