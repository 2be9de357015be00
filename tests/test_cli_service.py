"""hicli against a running service: submit, status, logs -f, fetch, cancel, jobs, user."""

from __future__ import annotations

import json
import os
import stat

import pytest
from click.testing import CliRunner

from hicli.main import cli as hicli
from hisci.jobs import UserStore

pytestmark = pytest.mark.redis


@pytest.fixture
def env(live_service, monkeypatch):
    monkeypatch.setenv("HISCI_URL", live_service.url)
    monkeypatch.setenv("HISCI_TOKEN", live_service.tokens.alice)
    monkeypatch.setenv("HISCI_PLUGIN_PATH", str(live_service.settings.plugin_path[0]))
    monkeypatch.setenv("HISCI_NO_ENTRY_POINTS", "1")
    return live_service


def test_submit_wait_status_logs_fetch(env, tmp_path) -> None:
    runner = CliRunner()
    submitted = runner.invoke(hicli, ["submit", "table_plot", "--example", "--set", "extra.chart_type=line", "--wait"])
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.strip()
    assert len(job_id) == 16 and "\n" not in job_id
    status = runner.invoke(hicli, ["status", job_id, "--json"])
    record = json.loads(status.stdout)
    assert record["status"] == "succeeded" and record["params"]["extra"]["chart_type"] == "line"
    logs = runner.invoke(hicli, ["logs", job_id, "-f"])
    assert "progress  70% saving the figure" in logs.stdout
    fetched = runner.invoke(hicli, ["fetch", job_id, "-o", str(tmp_path / "out")])
    assert fetched.exit_code == 0, fetched.output
    assert json.loads((tmp_path / "out" / "result.json").read_text())["rows"] == 36
    listing = json.loads(runner.invoke(hicli, ["jobs", "--json"]).stdout)
    assert [j["id"] for j in listing["jobs"]] == [job_id]


def test_submit_uploads_local_input_files(env, tmp_path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n3,4\n")
    result = CliRunner().invoke(hicli, ["submit", "table_plot", "--input", f"datTable={table}", "--wait"])
    assert result.exit_code == 0, result.output
    record = env.service.store.read(result.stdout.strip())
    assert record["inputs"][0]["path"].startswith(str(env.settings.data_dir))


def test_failed_job_exit_2_and_cancel(env) -> None:
    runner = CliRunner()
    failed = runner.invoke(hicli, ["submit", "failing_plugin", "--wait"])
    assert failed.exit_code == 2
    assert "failed: ZeroDivisionError: deliberate failure for the tests" in failed.output
    slow = runner.invoke(hicli, ["submit", "slow_plugin", "--set", "seconds=30"]).stdout.strip()
    cancelled = runner.invoke(hicli, ["cancel", slow])
    assert cancelled.exit_code == 0 and slow in cancelled.output


def test_unreachable_service_exit_4(monkeypatch, isolated_env) -> None:
    monkeypatch.setenv("HISCI_URL", "http://127.0.0.1:9")
    result = CliRunner().invoke(hicli, ["status", "0123456789abcdef"])
    assert result.exit_code == 4
    assert "cannot reach the hisci service at http://127.0.0.1:9" in result.output


def test_unknown_job_exit_1(env) -> None:
    result = CliRunner().invoke(hicli, ["status", "0123456789abcdef"])
    assert result.exit_code == 1 and "job '0123456789abcdef' not found" in result.output


def test_user_add_prints_only_the_token(isolated_env, tmp_path) -> None:
    result = CliRunner().invoke(hicli, ["user", "add", "carol", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0
    token = result.stdout.strip()
    store = UserStore.open(tmp_path)
    assert store.authenticate(token).name == "carol"
    index = tmp_path / "index.sqlite"
    assert token.encode() not in index.read_bytes() and stat.S_IMODE(os.stat(index).st_mode) == 0o600
    again = CliRunner().invoke(hicli, ["user", "add", "carol", "--data-dir", str(tmp_path)])
    assert again.exit_code == 1 and "user 'carol' exists" in again.output


def test_gpu_worker_refuses_without_a_gpu(isolated_env, monkeypatch) -> None:
    monkeypatch.setenv("HISCI_REDIS_URL", "redis://127.0.0.1:9/0")
    result = CliRunner().invoke(hicli, ["worker", "--queue", "gpu", "--gpu"])
    assert result.exit_code == 1
    assert "no usable GPU (cupy missing or no CUDA device)" in result.output
    assert "pip install 'hisci[gpu]'" in result.output


def test_hicli_serve_starts_everything_in_one_command(tmp_path, isolated_env) -> None:
    """Embedded redis-server, a worker, the API: `hicli serve` on a fresh data dir."""
    import subprocess
    import sys
    import time

    import httpx

    from hisci.jobs.redis_server import free_port

    port = free_port()
    env = {**os.environ, "HISCI_DATA_DIR": str(tmp_path / "data")}
    env.pop("HISCI_REDIS_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "hicli.main", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"{url}/api/v1/health", timeout=1).json()
                if health["queues"]["cpu"]["workers"] >= 1:
                    break
            except (httpx.TransportError, KeyError, ValueError):
                pass
            time.sleep(0.3)
        else:
            raise AssertionError("hicli serve did not come up with a worker")
        token_file = tmp_path / "data" / "admin.token"
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        token = token_file.read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        job = httpx.post(f"{url}/api/v1/jobs", headers=headers, json={"plugin": "table_plot", "request": {
            "textarea": {"datTable": "x\ty\n1\t2\n2\t3\n"}}}).json()
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/api/v1/jobs/{job['id']}", headers=headers).json()["status"] != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "hisci serving" in out and f"at {url}" in out and f"admin token: {token}" in out


def test_reload_needs_admin_and_rediscovers(env, monkeypatch) -> None:
    runner = CliRunner()
    denied = runner.invoke(hicli, ["reload"])
    assert denied.exit_code == 1 and "not found" in denied.output
    monkeypatch.setenv("HISCI_TOKEN", env.tokens.admin)
    done = runner.invoke(hicli, ["reload"])
    assert done.exit_code == 0, done.output
    assert f"registry reloaded: {len(env.service.registry)} plugins" in done.output


def test_status_of_a_job_group_shows_children_with_worker_and_host(env) -> None:
    import time

    from hisci.jobs import ChildSpec, GroupSpec

    request = env.service.registry.get("table_plot").example_request()
    parent = env.service.submit_group(env.service.users.authenticate(env.tokens.alice), GroupSpec(kind="parallel", plugin="table_plot"),
                                      [ChildSpec(name=f"chunk-{i}", plugin="table_plot", request=request, kind="chunk")
                                       for i in range(2)])
    deadline = time.monotonic() + 60
    while env.service.book.get(parent["id"]).state.value != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.2)
    runner = CliRunner()
    record = json.loads(runner.invoke(hicli, ["status", parent["id"], "--json"]).stdout)
    assert record["status"] == "succeeded" and record["kind"] == "parallel"
    assert [c["name"] for c in record["children"]] == ["chunk-0", "chunk-1"]
    assert all(c["status"] == "succeeded" and c["worker"] and c["host"] for c in record["children"])
    text = runner.invoke(hicli, ["status", record["children"][0]["id"]]).stdout
    assert f"worker: {record['children'][0]['worker']}  host: {record['children'][0]['host']}" in text
    tree = runner.invoke(hicli, ["status", parent["id"]]).stdout
    assert tree.count("  - ") == 2 and "chunk-1  table_plot  succeeded  100%" in tree


def test_jobs_pages_with_cursor_and_filters(env) -> None:
    runner = CliRunner()
    ids = [runner.invoke(hicli, ["submit", "table_plot", "--example"]).stdout.strip() for _ in range(2)]
    slow = runner.invoke(hicli, ["submit", "slow_plugin", "--set", "seconds=0.1"]).stdout.strip()

    def page(*args: str) -> dict:
        result = runner.invoke(hicli, ["jobs", "--json", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    first = page("--limit", "2")
    assert [j["id"] for j in first["jobs"]] == [slow, ids[1]] and first["next_cursor"]
    rest = page("--limit", "2", "--cursor", first["next_cursor"])
    assert [j["id"] for j in rest["jobs"]] == [ids[0]] and rest["next_cursor"] is None
    assert [j["id"] for j in page("--q", "slow")["jobs"]] == [slow]
    created = first["jobs"][1]["created"]  # ids[1]'s creation time
    assert [j["id"] for j in page("--created-after", created)["jobs"]] == [slow]
    assert [j["id"] for j in page("--created-before", created)["jobs"]] == [ids[0]]
    text = runner.invoke(hicli, ["jobs", "--limit", "1", "--status", "queued", "--created-after", "2999-01-01T00:00:00"])
    assert text.exit_code == 0 and text.stdout == ""
    bad = runner.invoke(hicli, ["jobs", "--created-after", "yesterday"])
    assert bad.exit_code != 0 and "created_after: 'yesterday' is not an ISO 8601 time" in bad.output
    wrong = runner.invoke(hicli, ["jobs", "--cursor", "nonsense"])
    assert wrong.exit_code != 0 and "cursor is not one this server gave out" in wrong.output
