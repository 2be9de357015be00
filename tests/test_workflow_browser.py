"""The workflow job page in a real Chromium: a submitted xas_auto_lcf job shows its step
graph and step list, each step coloured by state and linked to its own job page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hisci.jobs import User

from .browser_helpers import Browser, require_chromium, shot, wait_dash_idle

pytestmark = [pytest.mark.browser, pytest.mark.redis,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:dash.development.base_component")]


@pytest.fixture(scope="module")
def browser() -> Any:
    b = Browser(require_chromium())
    yield b
    b.close()


def test_workflow_job_page_draws_the_steps(browser: Browser, live_service: Any, tmp_path: Path) -> None:
    service = live_service.service
    plugin = service.registry.get("xas_auto_lcf")
    job = service.submit(User("alice"), "xas_auto_lcf", plugin.example_request())
    errors: list[str] = []
    page = browser.page(errors)
    try:
        page.goto(live_service.url + "/login")
        page.wait_for_selector("#hs-login-token")
        page.locator("#hs-login-token").fill(live_service.tokens.alice)
        page.click("#hs-login-btn")
        page.wait_for_selector('#hs-user:text("alice")')
        page.goto(live_service.url + f"/jobs/{job['id']}")
        page.wait_for_selector("#hs-job-stepgraph .js-plotly-plot")
        page.wait_for_selector('#hs-job-status [data-status="succeeded"]', timeout=180000)
        wait_dash_idle(page)
        page.wait_for_selector('#hs-job-steplist [data-status="succeeded"]')
        assert page.locator('#hs-job-steplist [data-status="succeeded"]').count() == 2
        page.wait_for_selector('#hs-job-wfoutputs a:text("lcf.csv")')
        href = page.locator('#hs-job-wfoutputs a:text("lcf.csv")').get_attribute("href")
        body = page.request.get(live_service.url + href,
                                headers={"Authorization": f"Bearer {live_service.tokens.alice}"}).body()
        assert body.startswith(b"spectrum,") and b"Mn2O3_rt_01 + MnO_rt_01" in body.splitlines()[1]
        shot(page, tmp_path, "workflow-job")
        children = {c["name"]: c["id"] for c in service.get(User("alice"), job["id"])["children"]}
        page.locator("#hs-job-steplist a", has_text="lcf (xas_lcf_combos)").click()
        page.wait_for_url(f"**/jobs/{children['lcf']}")
        page.wait_for_selector('#hs-job-files a:text("lcf.csv")', timeout=30000)
        assert errors == [], "\n".join(errors)
    finally:
        page.context.close()
