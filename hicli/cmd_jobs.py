"""hicli submit, status, logs, fetch, cancel, retry, jobs (through the API)."""

from __future__ import annotations

import io
import json
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import click

from hisci import Registry
from hisci.jobs.record import FINISHED as FINISHED_STATES
from hisci.jobs.record import STATES

from .client import Client
from .cmd_run import assemble_request, request_options
from .errors import EXIT_CANCELLED, EXIT_FAILED, handle_errors

FINISHED = tuple(s.value for s in FINISHED_STATES)


@click.command("submit")
@click.argument("plugin_id")
@request_options
@click.option("--wait", is_flag=True, help="Wait until the job ends; exit 2 if it failed.")
@click.option("--idempotency-key", "key", default=None,
              help="Sent as the Idempotency-Key header (default: a new random key); the same key "
                   "returns the first job instead of submitting again.")
@click.option("--chunks", type=click.IntRange(1, 4096), default=None,
              help="Split a parallel plugin's job into N chunks (default: automatic when more "
                   "than one worker could take them).")
@click.option("--sweep", "sweep_text", default=None, metavar="KEY=VALUES",
              help="One child job per value: extra.center=1020:1030:0.5 (stop included) or a,b,c.")
@handle_errors
def submit_cmd(plugin_id: str, assignments: tuple[str, ...], input_pairs: tuple[str, ...],
               input_files: tuple[str, ...], params_file: Path | None, example: bool, example_index: int,
               wait: bool, key: str | None, chunks: int | None, sweep_text: str | None) -> None:
    """Submit a job to the service; prints the job id alone on stdout.

    The request carries an Idempotency-Key; when the service is unreachable or answers 503
    (Redis down) it is sent again with the same key (3 tries), so a retry never duplicates."""
    plugin = Registry.discover().get(plugin_id)
    request, inputs = assemble_request(plugin, assignments, input_pairs, params_file, example, example_index,
                                       input_files)
    swept = None
    if sweep_text:
        from hisci.sweep import parse_sweep

        swept = parse_sweep(sweep_text, plugin)  # refused here, before anything is uploaded
    client = Client()
    for name, paths in inputs.items():
        links = [f"upload:{client.upload(Path(p))['id']}" for p in paths]
        value = links if plugin.ui.data[name].multiple or len(links) > 1 else links[0]
        request.setdefault("data", {})[name] = {"value": [Path(p).name for p in paths] if isinstance(value, list)
                                                else Path(paths[0]).name, "link": value}
    _relative_examples(plugin, request)
    body: dict[str, Any] = {"plugin": plugin_id, "request": request}
    if chunks is not None:
        body["chunks"] = chunks
    if swept is not None:
        body["sweep"] = {swept.key: list(swept.values)}
    record = client.submit(body, key)
    click.echo(record["id"])
    where = (f"{len(record['children'])} children ({record.get('kind')})" if record.get("children")
             else f"queue {record['queue']}")
    click.echo(f"submitted {plugin_id} as job {record['id']}, {where}"
               + (f" ({record['message']})" if record.get("message") else ""), err=True)
    if wait:
        _finish(_wait(client, record["id"]))


def _relative_examples(plugin: Any, request: dict[str, Any]) -> None:
    """Example links are paths inside the plugin folder; send them relative to it."""
    for entry in (request.get("data") or {}).values():
        if isinstance(entry, dict):
            for key in ("link", "value"):
                value = entry.get(key)
                if isinstance(value, str) and value.startswith(str(plugin.folder)):
                    entry[key] = str(Path(value).relative_to(plugin.folder))


def _wait(client: Client, job_id: str, interval: float = 0.5) -> dict[str, Any]:
    while True:
        record = client.json("GET", f"/jobs/{job_id}")
        if record["status"] in FINISHED:
            return record
        time.sleep(interval)


def _finish(record: dict[str, Any]) -> None:
    click.echo(f"{record['id']} {record['status']}" + (f": {record['reason']}" if record.get("reason") else ""),
               err=True)
    if record["status"] == "failed":
        raise SystemExit(EXIT_FAILED)
    if record["status"] == "cancelled":
        raise SystemExit(EXIT_CANCELLED)


@click.command("status")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def status_cmd(job_id: str, as_json: bool) -> None:
    """A job's status, progress and message."""
    record = Client().json("GET", f"/jobs/{job_id}")
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    click.echo(_status_line(record))
    where = "  ".join(f"{k}: {record[k]}" for k in ("worker", "host") if record.get(k))
    if where:
        click.echo(f"  {where}")
    for child in record.get("children") or []:
        click.echo("  - " + _status_line({**child, "plugin": {"id": child["plugin"]}}, name=child.get("name"))
                   + (f"  on {child['worker']}@{child['host']}" if child.get("worker") else ""))


def _status_line(record: dict[str, Any], name: str | None = None) -> str:
    line = (f"{record['id']}  {name + '  ' if name else ''}{record['plugin']['id']}  {record['status']}"
            f"  {100 * (record.get('progress') or 0):.0f}%")
    return (line + (f"  {record['message']}" if record.get("message") else "")
            + (f"  reason: {record['reason']}" if record.get("reason") else ""))


@click.command("logs")
@click.argument("job_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the job ends.")
@handle_errors
def logs_cmd(job_id: str, follow: bool) -> None:
    """Print a job's log (with -f, follow it live)."""
    client, offset = Client(), 0
    while True:
        chunk = client.json("GET", f"/jobs/{job_id}/log", params={"offset": offset})
        if chunk["text"]:
            sys.stdout.write(chunk["text"])
            sys.stdout.flush()
        offset = chunk["offset"]
        if not follow or chunk["status"] in FINISHED:
            if follow:  # the last lines may land just after the status changes
                rest = client.json("GET", f"/jobs/{job_id}/log", params={"offset": offset})
                sys.stdout.write(rest["text"])
            return
        time.sleep(0.5)


@click.command("fetch")
@click.argument("job_id")
@click.option("-o", "--output", "output_dir", required=True, type=click.Path(path_type=Path))
@handle_errors
def fetch_cmd(job_id: str, output_dir: Path) -> None:
    """Download every file of a job into OUTPUT."""
    response = Client().request("GET", f"/jobs/{job_id}/zip")
    output_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        for member in archive.infolist():
            relative = Path(member.filename).relative_to(job_id)
            target = (output_dir / relative).resolve()
            if output_dir.resolve() not in target.parents:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
    click.echo(f"fetched job {job_id} into {output_dir}", err=True)


@click.command("cancel")
@click.argument("job_id")
@handle_errors
def cancel_cmd(job_id: str) -> None:
    """Cancel a queued or running job."""
    record = Client().json("POST", f"/jobs/{job_id}/cancel")
    click.echo(f"{job_id} {record['status']}" + (f" ({record['message']})" if record.get("message") else ""))


@click.command("retry")
@click.argument("job_id")
@handle_errors
def retry_cmd(job_id: str) -> None:
    """Run a finished job again with the same params; prints the new id."""
    record = Client().json("POST", f"/jobs/{job_id}/retry")
    click.echo(record["id"])


@click.command("jobs")
@click.option("--status", type=click.Choice(list(STATES)), help="Only jobs in this state.")
@click.option("--plugin", help="Only jobs of this plugin id (exact).")
@click.option("--q", "q", help="Only jobs whose plugin id contains this text.")
@click.option("--created-after", metavar="TIME", help="ISO 8601 time, e.g. 2026-12-03T10:00:00+00:00.")
@click.option("--created-before", metavar="TIME", help="ISO 8601 time.")
@click.option("--owner", help="Admins: one user's jobs.")
@click.option("--parent", metavar="JOB_ID", help="The children of this job group.")
@click.option("--cursor", help="The next page: the cursor the previous page printed (next_cursor).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="The page as JSON: {jobs, limit, next_cursor}.")
@handle_errors
def jobs_cmd(status: str | None, plugin: str | None, q: str | None, created_after: str | None,
             created_before: str | None, owner: str | None, parent: str | None, cursor: str | None,
             limit: int, as_json: bool) -> None:
    """List your jobs, newest first, one page at a time (the filters of GET /jobs)."""
    given = {"status": status, "plugin": plugin, "q": q, "created_after": created_after,
             "created_before": created_before, "owner": owner, "parent": parent, "cursor": cursor,
             "limit": limit}
    listing = Client().json("GET", "/jobs", params={k: v for k, v in given.items() if v})
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    for record in listing["jobs"]:
        click.echo(f"{record['id']}  {record['plugin']['id']:<20} {record['status']:<10} {record['created'][:19]}")
    if listing.get("next_cursor"):
        click.echo(f"more: hicli jobs --cursor {listing['next_cursor']} (same filters)", err=True)


@click.command("reload")
@handle_errors
def reload_cmd() -> None:
    """Make a running service discover plugins again (after `pip install` of one); admin only."""
    counts = Client().json("POST", "/registry/reload")
    click.echo(f"registry reloaded: {counts['plugins']} plugins, {counts['problems']} invalid")
