"""hicli run, and the Hiplot-compatible invocation (hicli -i -c -t -m -o)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from hisci import Registry, Settings, run_plugin
from hisci.assignments import assign_files, parse_assignments
from hisci.errors import InputError
from hisci.plugin import Plugin
from hisci.runner import RunResult, build_request

from .errors import EXIT_CANCELLED, EXIT_FAILED, handle_errors


def request_options(func: Any) -> Any:
    """The options shared by `run` and `submit`."""
    for option in reversed([
        click.option("--set", "assignments", multiple=True, metavar="SECTION.KEY=VALUE",
                     help="Set a parameter, e.g. --set extra.alpha=0.5 (lists: a,b,c)."),
        click.option("--input", "input_pairs", multiple=True, metavar="NAME=PATH",
                     help="An input file; repeat a name for multi-file inputs."),
        click.option("-i", "input_files", multiple=True, metavar="FILE",
                     help="An input file for the plugin's single required input (or the one input "
                          "whose extensions match); repeatable."),
        click.option("--params", "params_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="A JSON request (Hiplot params or {extra: ...})."),
        click.option("--example", "example", is_flag=True, help="Start from the plugin's exampleData."),
        click.option("--example-index", default=0, show_default=True, help="Which exampleData entry."),
    ]):
        func = option(func)
    return func


def live_options(func: Any) -> Any:
    """The live options shared by `run` and `submit` (hisci.live)."""
    for option in reversed([
        click.option("--live", "live", is_flag=True, help="Process items as they arrive (runtime.live plugins)."),
        click.option("--watch", "watch", multiple=True, metavar="NAME=FOLDER",
                     help="Live input NAME: new complete files in FOLDER."),
        click.option("--zmq", "zmq", multiple=True, metavar="NAME=URL",
                     help="Live input NAME: ZeroMQ messages ([pull+|sub+][bind:]tcp://HOST:PORT)."),
        click.option("--bluesky", "bluesky", multiple=True, metavar="NAME=URL|JSON",
                     help="Live input NAME: a Bluesky 0MQ proxy (tcp://HOST:PORT or a JSON object)."),
        click.option("--until", type=int, default=None, help="Stop after N items."),
        click.option("--idle", type=float, default=None, help="Stop after SECONDS without a new item."),
        click.option("--live-set", "live_set", multiple=True, metavar="KEY=VALUE",
                     help="Other live settings: settle, pattern, completion, memory_mb, spool_mb, journal, zmq_end."),
    ]):
        func = option(func)
    return func


def assemble_live(live: bool, watch: tuple[str, ...], zmq: tuple[str, ...], bluesky: tuple[str, ...],
                  until: int | None, idle: float | None, live_set: tuple[str, ...]) -> dict[str, Any] | None:
    """The request's ``live`` part from the command line (None without --live)."""
    from hisci.live import parse_pairs

    given = watch or zmq or bluesky or until is not None or idle is not None or live_set
    if not live:
        if given:
            raise click.UsageError("--watch/--zmq/--bluesky/--until/--idle/--live-set need --live")
        return None
    spec: dict[str, Any] = {"watch": parse_pairs(watch, "--watch"), "zmq": parse_pairs(zmq, "--zmq"),
                            "bluesky": parse_pairs(bluesky, "--bluesky"), "until": until, "idle": idle}
    spec.update(parse_pairs(live_set, "--live-set"))
    return spec


def assemble_request(plugin: Plugin, assignments: tuple[str, ...], input_pairs: tuple[str, ...],
                     params_file: Path | None, example: bool, example_index: int,
                     input_files: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, list[str]]]:
    request: dict[str, Any] = {}
    if params_file:
        try:
            request = plugin.params.normalize(json.loads(params_file.read_text("utf-8")))
        except json.JSONDecodeError as exc:
            raise InputError(f"{params_file}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                             f"{exc.msg}", file=str(params_file)) from None
    for section, values in parse_assignments(list(assignments), plugin.parameter_schema()).items():
        request.setdefault(section, {}).update(values)
    inputs: dict[str, list[str]] = {}
    for pair in input_pairs:
        name, sep, path = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not NAME=PATH", param_hint="--input")
        if name not in plugin.ui.data:
            from hisci.errors import did_you_mean

            raise click.BadParameter(
                f"unknown input {name!r}{did_you_mean(name, plugin.ui.data)}; inputs: "
                f"{', '.join(plugin.ui.data)}", param_hint="--input")
        inputs.setdefault(name, []).append(path)
    for name, paths in assign_files(plugin, list(input_files)).items():
        inputs.setdefault(name, []).extend(paths)
    request = build_request(plugin, request, inputs=_single(inputs, plugin), example=example,
                            example_index=example_index)
    return request, inputs


def _single(inputs: dict[str, list[str]], plugin: Plugin) -> dict[str, Any]:
    return {k: (v if plugin.ui.data[k].multiple or len(v) > 1 else v[0]) for k, v in inputs.items()}


@click.command("run")
@click.argument("plugin_id")
@request_options
@click.option("-o", "--output", "output_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder (created).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--jobs", "-j", "jobs", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Processes: independent workflow steps, or the chunks of a parallel plugin "
                   "(runtime.parallel), run side by side.")
@click.option("--chunks", type=click.IntRange(1, 100_000), default=None,
              help="Split a parallel plugin's job into N chunks (default: one per process).")
@click.option("--sweep", "sweep_text", default=None, metavar="KEY=VALUES",
              help="Run once per value: extra.center=1020:1030:0.5 (stop included) or extra.a=0.2,0.5.")
@click.option("--no-cache", is_flag=True,
              help="Workflows: re-run every step even when a matching succeeded step exists.")
@live_options
@handle_errors
def run_cmd(plugin_id: str, assignments: tuple[str, ...], input_pairs: tuple[str, ...],
            input_files: tuple[str, ...], params_file: Path | None, example: bool, example_index: int,
            output_dir: Path, quiet: bool, jobs: int, chunks: int | None, sweep_text: str | None,
            no_cache: bool, live: bool, watch: tuple[str, ...], zmq: tuple[str, ...], bluesky: tuple[str, ...],
            until: int | None, idle: float | None, live_set: tuple[str, ...]) -> None:
    """Run a plugin or a workflow locally; results, figures and log go to OUTPUT."""
    settings = Settings.from_env()
    registry = Registry.discover(settings)
    plugin = registry.get(plugin_id)
    live_spec = assemble_live(live, watch, zmq, bluesky, until, idle, live_set)
    request, _ = assemble_request(plugin, assignments, input_pairs, params_file, example, example_index,
                                  input_files)
    if sweep_text:
        run_sweep(plugin, request, sweep_text, output_dir, jobs=jobs, chunks=chunks)
        return
    with progress_bar(not quiet and sys.stderr.isatty(), plugin.id) as bar, stop_on_signals(bool(live_spec)) as stop:
        if plugin.is_workflow:
            from hisci.workflow.cache import StepCache
            from hisci.workflow.local import run_workflow

            result = run_workflow(plugin, request, registry=registry, output_dir=output_dir,
                                  jobs=jobs, progress=bar,
                                  cache=None if no_cache else StepCache(settings.step_cache_dir))
        else:
            result = run_plugin(plugin, request, output_dir=output_dir, progress=bar, jobs=jobs, chunks=chunks,
                                live=live_spec, stop_event=stop)
    finish(result)


@contextmanager
def stop_on_signals(enabled: bool) -> Iterator[Any]:
    """For a live run, Ctrl-C (and SIGTERM) stop a live run after the current item, then the plugin writes
    its final outputs; a second Ctrl-C interrupts at once."""
    import signal
    import threading

    if not enabled:
        yield None
        return
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        click.echo("stopping after the current item (Ctrl-C again to abort)", err=True)
        stop.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def run_sweep(plugin: Plugin, request: dict[str, Any], sweep_text: str, output_dir: Path,
              *, jobs: int, chunks: int | None) -> None:
    """One run per swept value, in OUTPUT/000, OUTPUT/001, ...; sweep.json lists them."""
    from hisci.storage import write_json
    from hisci.sweep import parse_sweep

    sweep = parse_sweep(sweep_text, plugin)
    for req in sweep.requests(request):  # every child validates before any runs
        plugin.validate_request(req)
    rows, failed = [], 0
    for i, (value, req) in enumerate(zip(sweep.values, sweep.requests(request), strict=True)):
        result = run_plugin(plugin, req, output_dir=output_dir / f"{i:03d}", jobs=jobs, chunks=chunks)
        failed += not result.ok
        rows.append({"value": value, "folder": f"{i:03d}", "status": result.status,
                     "summary": result.summary, "reason": result.error})
        click.echo(f"{sweep.key}={value}: {result.status}", err=True)
    write_json(output_dir / "sweep.json", {**sweep.to_json(), "plugin": plugin.id, "children": rows})
    click.echo(json.dumps(rows, indent=2, default=str))
    if failed:
        raise SystemExit(EXIT_FAILED)


def finish(result: RunResult) -> None:
    """Print where the results are; exit 2 on failure, 3 when cancelled."""
    if result.ok:
        click.echo(json.dumps(result.summary, indent=2, default=str))
        click.echo(f"succeeded: results in {result.output_dir}", err=True)
        return
    click.echo(f"error: plugin {result.record['plugin']['id']} {result.status}: {result.error} "
               f"(log: {result.output_dir / 'log.txt'})", err=True)
    raise SystemExit(EXIT_CANCELLED if result.status == "cancelled" else EXIT_FAILED)


@contextmanager
def progress_bar(enabled: bool, label: str) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), TextColumn("{task.fields[message]}"), transient=True) as bar:
        task = bar.add_task(label, total=1.0, message="")
        yield lambda fraction, message: bar.update(task, completed=fraction, message=message)


@click.command("hiplot-run", hidden=True)
@handle_errors
def hiplot_run(input_file: str, conf_file: str, output_prefix: str, tool: str, module: str,
               example: bool, simple: bool) -> None:
    """hicli -i a.txt[,b.txt] -c data.json -t tool [-m module] [-e] -o out/prefix"""
    registry = Registry.discover()
    plugin = registry.find_tool(tool, module or None)
    request: dict[str, Any] = {}
    if conf_file:
        path = Path(conf_file)
        if not path.is_file():
            raise InputError(f"-c {conf_file}: file not found", file=conf_file, hint="give the plugin's data.json")
        try:
            conf = json.loads(path.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{conf_file}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                             file=conf_file) from None
        # Like Hiplot: a data.json (has "tool") contributes params.config, else it is the config.
        request = conf["params"] if "tool" in conf else conf
    files = [f for f in input_file.split(",") if f] if input_file else []
    table_ids = list(plugin.ui.data)  # Hiplot binds -i files to the inputs by position
    if len(files) > len(table_ids):
        raise InputError(f"-i gives {len(files)} files but {plugin.id} has {len(table_ids)} inputs "
                         f"({', '.join(table_ids)})", pointer="/data")
    inputs = {table_ids[i]: f for i, f in enumerate(files)}
    prefix = Path(output_prefix or f"{plugin.id}-out/{plugin.id}")
    full = build_request(plugin, request, inputs=inputs, example=example)
    for key in inputs:  # an uploaded file replaces the pasted example table
        full.get("textarea", {}).pop(key, None)
    result = run_plugin(plugin, full, output_dir=prefix.parent)
    for figure in result.record.get("figures", []):
        html = (prefix.parent / figure).with_suffix(".html")
        if html.exists():
            shutil.copyfile(html, f"{prefix}.plotly.html")
            break
    finish(result)
