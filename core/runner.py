"""The local runner: one plugin run in this process, the same for hicli, workers and preview."""

from __future__ import annotations

import copy
import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from .context import ProgressSink, RunContext
from .errors import InputError, JobCancelled
from .inputs import resolve_inputs
from .jobs.record import FolderBook, JobRecord, JobState
from .live import LiveSession, LiveSpec, live_spec_for, split_live
from .live.publish import Sink
from .plugin import Plugin
from .record import new_record, write_task_status
from .storage import write_json

InputsArg = dict[str, "str | Path | list[str | Path]"]


@dataclass
class RunResult:
    """What a run left behind (the folder holds the rest)."""

    status: str
    output_dir: Path
    record: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: the run failed and the retry rule put the record back on ``queued`` (the job service
    #: then enqueues the next attempt)
    requeued: bool = False

    @property
    def ok(self) -> bool:
        return self.status == JobState.SUCCEEDED.value


def build_request(plugin: Plugin, request: dict[str, Any] | None = None, *,
                  inputs: InputsArg | None = None, example: bool = False,
                  example_index: int = 0) -> dict[str, Any]:
    """exampleData (if asked) + request + ``inputs`` as ``data.<id>.link``."""
    merged = plugin.example_request(example_index) if example else {}
    for section, values in plugin.params.normalize(request or {}).items():
        if isinstance(values, dict):
            merged.setdefault(section, {}).update(copy.deepcopy(values))
    for name, value in (inputs or {}).items():
        links = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
        merged.setdefault("data", {})[name] = {"value": links, "link": links}
    return merged


def existing_inputs(plugin: Plugin, request: dict[str, Any], base: Path | None = None) -> dict[str, list[Path]]:
    """The input files a request names that exist, for judging the form's visibility
    (a missing one is reported by :func:`resolve_inputs` after validation)."""
    found: dict[str, list[Path]] = {}
    for name, entry in (request.get("data") or {}).items():
        links = (entry.get("link") or entry.get("value")) if isinstance(entry, dict) else None
        for link in [links] if isinstance(links, str) else (links or []):
            path = Path(str(link)).expanduser()
            for candidate in [path] if path.is_absolute() else [(base or Path.cwd()) / path, plugin.folder / path]:
                if link and candidate.is_file():
                    found.setdefault(name, []).append(candidate)
                    break
    return found


#: Pointer of problems with the output folder (front ends name their own option for it).
OUTPUT_POINTER = "/output_dir"


def prepare_output(output_dir: Path) -> Path:
    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = output_dir / ".hisci-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"output folder {output_dir} is not writable: {exc.strerror}",
                         file=str(output_dir), pointer=OUTPUT_POINTER,
                         hint="choose a writable output folder") from None
    return output_dir


def run_plugin(
    plugin: Plugin,
    request: dict[str, Any] | None = None,
    *,
    inputs: InputsArg | None = None,
    output_dir: Path,
    example: bool = False,
    example_index: int = 0,
    progress: ProgressSink | None = None,
    cancel_check: Callable[[], bool] | None = None,
    xp: ModuleType | None = None,
    job_id: str | None = None,
    owner: str | None = None,
    params: dict[str, Any] | None = None,
    record: dict[str, Any] | None = None,
    book: Any = None,
    jobs: int = 1,
    chunks: int | None = None,
    entry: Callable[[RunContext], Any] | None = None,
    live: dict[str, Any] | LiveSpec | None = None,
    stop_event: threading.Event | None = None,
    live_sink: Sink | None = None,
) -> RunResult:
    """Validate, run and record one plugin run in ``output_dir``.

    Bad requests and missing inputs raise (``ParamsError``, ``InputError``) before anything
    runs. Once the plugin starts, every outcome is recorded: a plugin that raises leaves
    status ``failed``, the traceback in log.txt and a one-line reason in job.json.

    Parameters
    ----------
    params : already validated params (the job worker passes the ones stored at submit).
    record : an existing job record to continue (the job layer's, with owner and queue).
    book : where record changes go (``JobBook`` in the service; by default job.json in
        ``output_dir``). Every change is a ``JobRecord`` transition.
    jobs, chunks : run a parallel plugin (``runtime.parallel`` with plan/run_chunk/merge) in
        ``jobs`` local processes and ``chunks`` chunks (default: one per process). A plugin
        without them, or ``jobs == 1`` with no ``chunks``, runs whole as usual.
    entry : call this with the RunContext instead of the plugin's entry point (the job
        service's chunk and merge children, :mod:`hisci.jobs.scaleout`).
    live : the live settings (``request["live"]`` is taken too); the run then calls the
        plugin's ``run_live`` with ``ctx.live`` set (``hisci.live``).
    stop_event : set it to stop a live run after the current item (Ctrl-C).
    live_sink : forwards live events (the service's Redis stream).
    """
    import numpy

    request, in_request = split_live(request)
    live_spec = live_spec_for(plugin, live if live is not None else in_request)
    if params is None:
        request = build_request(plugin, request, inputs=inputs, example=example, example_index=example_index)
        params = plugin.validate_request(request, files=existing_inputs(plugin, request),
                                         live_inputs=live_spec.names if live_spec else ())
    entry = entry or (plugin.load_live_entry() if live_spec else plugin.load_entry())
    files = resolve_inputs(plugin, params)
    if jobs > 1 or chunks:
        from .parallel import local_parallel_entry, parallel_entry

        funcs = parallel_entry(plugin)
        if funcs is not None:
            entry = local_parallel_entry(plugin, funcs, files, max(1, jobs), chunks)
    output_dir = prepare_output(output_dir)
    if record is None:
        record = new_record(plugin, params, files, job_id=job_id, owner=owner)
    if live_spec:
        record.setdefault("live_spec", live_spec.to_json())
    book = book or FolderBook(output_dir, record)
    job = JobRecord(record)
    logger, handler = _file_logger(job.id, output_dir / "log.txt")

    def save(change: Callable[[JobRecord], Any]) -> None:
        nonlocal job
        job = book.apply(job.id, change)

    last_write = [0.0]

    def report(fraction: float, message: str) -> None:
        if time.monotonic() - last_write[0] > 0.2 or fraction >= 1:
            last_write[0] = time.monotonic()
            # another writer may have ended the job meanwhile (cancel, lost worker): then skip
            save(lambda r: r.state == JobState.RUNNING and r.progress(fraction, message))
        if progress:
            progress(fraction, message)

    session = None
    if live_spec:  # a missing folder or a busy port is bad input: raise before the run starts
        try:
            session = LiveSession(live_spec, output_dir, idle_default=plugin.runtime.idle_timeout,
                                  cancel_check=cancel_check, sink=live_sink, progress=report, logger=logger,
                                  stop_event=stop_event)
        except BaseException:
            logger.removeHandler(handler)
            handler.close()
            raise
    ctx = RunContext(params, files, output_dir, plugin.folder, logger, report, cancel_check,
                     xp or numpy, live=session)
    live_summary: dict[str, Any] = {}
    if job.state != JobState.RUNNING:
        save(lambda r: r.start(host=socket.gethostname()))
    write_task_status(output_dir, 2)
    logger.info("plugin %s %s started (job %s)", plugin.id, plugin.version, job.id)
    try:
        summary = entry(ctx) or {}
        if session is not None:
            summary["live"] = live_summary = session.summary()
            _log_live(logger, live_summary)
        write_json(output_dir / "result.json", summary)
        state, reason = JobState.SUCCEEDED, None
        if session is not None and session.stop_reason == "cancelled":
            state, reason = JobState.CANCELLED, (f"cancelled by request (live: stopped cleanly after "
                                                 f"{live_summary['processed']} items; final outputs written)")
    except JobCancelled:
        logger.warning("cancelled")
        summary, state, reason = {}, JobState.CANCELLED, "cancelled by request"
    except Exception as exc:  # noqa: BLE001 - any plugin failure is recorded, not raised
        logger.error("plugin failed:\n%s", traceback.format_exc())
        summary, state, reason = {}, JobState.FAILED, _reason(exc, plugin, job.data)
    finally:
        if session is not None:
            live_summary = live_summary or session.summary()
            session.close()
        logger.removeHandler(handler)
        handler.close()
    outputs = sorted(str(p.relative_to(output_dir)) for p in output_dir.rglob("*") if p.is_file())
    extra_fields = {"live": live_summary} if live_summary else {}
    ended = [False]

    def end(r: JobRecord) -> bool:
        if r.state != JobState.RUNNING:
            return False  # another writer ended it meanwhile (cancel, lost worker)
        fields = {"figures": ctx.figures, "outputs": outputs, **extra_fields}
        ended[0] = r.fail(reason, **fields) if state == JobState.FAILED else r.finish(state, reason, **fields)
        return ended[0]

    save(end)
    write_task_status(output_dir, 4 if state == JobState.SUCCEEDED else 2,
                      failed=state != JobState.SUCCEEDED)
    requeued = ended[0] and job.state == JobState.QUEUED
    state = job.state if job.state.finished else state
    return RunResult(state.value, output_dir, job.data, summary, job.reason if job.state.finished else reason,
                     requeued=requeued)


def _log_live(logger: logging.Logger, live: dict[str, Any]) -> None:
    logger.info("live: stopped (%s) after %d items; checkpoint %s", live["stop"], live["processed"],
                live["checkpoint"])
    for name, counts in live["sources"].items():
        level = logging.WARNING if counts["dropped"] or counts.get("lost") else logging.INFO
        logger.log(level, "live source %s: received %d (%d bytes), processed %d, spooled %d, dropped %d, "
                   "lost in a crash %d, rejected %d", name, counts["received"], counts["bytes"], counts["processed"],
                   counts["spooled"], counts["dropped"], counts.get("lost", 0), counts["rejected"])


def _reason(exc: BaseException, plugin: Plugin, record: dict[str, Any]) -> str:
    # RQ's death penalty raises JobTimeoutException inside the plugin when the job's timeout
    # passes: runtime.timeout, or the setting the record names (a preview's HISCI_PREVIEW_TIMEOUT).
    if type(exc).__name__ == "JobTimeoutException" and plugin.runtime:
        seconds = float(record.get("timeout") or plugin.runtime.timeout)
        return f"timed out after {seconds:g} s ({record.get('timeout_setting') or 'runtime.timeout'})"
    return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _file_logger(job_id: str, path: Path) -> tuple[logging.Logger, logging.Handler]:
    logger = logging.getLogger(f"hisci.run.{job_id}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger, handler


