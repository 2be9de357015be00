"""Preview jobs: the web app's "Run example" in a service runs on a worker like any job.

A preview job (kind ``preview``) carries a snapshot of the edited plugin folder, copied into
its job folder at submit (:func:`hisci.preview.snapshot`: size-capped, no links out). A
worker runs it through hisci's one job function with :func:`run_preview` as the runner: the
plugin is loaded from the snapshot (code of the installed base plugin, never anything the
request names), under the service's preview timeout (``HISCI_PREVIEW_TIMEOUT``, RQ's job
timeout) and address-space cap (``HISCI_PREVIEW_MEMORY_MB``, set in the work horse only).

Preview jobs belong to the logged-in user, stay out of job lists, cannot be retried, and are
deleted when the preview page has drawn the result or is closed, and at every service start
(:func:`purge_previews`).
"""

from __future__ import annotations

import logging
import resource
import shutil
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import HisciError, ParamsError, Problem
from ..plugin import Plugin, load_plugin
from ..preview import example_inputs, snapshot
from ..record import new_record
from ..settings import Settings
from .index import jobs
from .queueing import enqueue
from .record import JobRecord, JobState
from .routing import route
from .users import User

log = logging.getLogger("hisci.jobs.preview")
KIND = "preview"
RUNNER = "hisci.jobs.preview:run_preview"
#: the snapshot's place inside the job folder: ``<job>/snapshot/<plugin id>/``
SNAPSHOT = "snapshot"


def submit_preview(service: Any, user: User, folder: Path, base: Plugin | None = None) -> dict[str, Any]:
    """Queue a run of the example of the plugin folder ``folder`` (an edited preview) for ``user``.

    Parameters
    ----------
    service : the :class:`hisci.jobs.JobService`.
    folder : the edited plugin folder (the web app's preview folder).
    base : the installed plugin the edit started from; its folder is the only place the
        preview folder's links may lead, and its package the code the worker imports.

    Returns
    -------
    dict
        The new job record (kind ``preview``).

    Raises
    ------
    HisciError
        The folder is not a valid plugin, its example names files outside it, or the folder
        is too large; nothing is stored then.
    """
    from .service import RedisUnavailable, redis_or_503

    settings: Settings = service.settings
    plugin = load_plugin(Path(folder), "preview", package=base.package if base else None)
    if not plugin.runnable and not plugin.is_workflow:
        raise ParamsError([Problem("this plugin has no runtime block, so it cannot be run",
                                   pointer="/runtime", given=plugin.id)], plugin_id=plugin.id)
    example_inputs(plugin)  # refuse links out of the folder before anything is stored
    redis = service._redis()
    with redis_or_503():
        queue = route(plugin, redis).queue if plugin.runtime else "cpu"
    record = JobRecord(new_record(plugin, {}, {}, owner=user.name))
    record.note(owner_id=user.id, kind=KIND, parent_id=None, queue=queue, attempts=0, retries=0,
                held=False, message="", runner=RUNNER, timeout=settings.preview_timeout,
                timeout_setting="HISCI_PREVIEW_TIMEOUT",
                preview={"plugin": plugin.id, "base": base.id if base else None,
                         "memory_mb": settings.preview_memory_mb})
    job_folder = service.store.folder(record.id)
    try:
        snapshot(Path(folder), job_folder / SNAPSHOT / plugin.id, (base.folder,) if base else (),
                 int(settings.preview_max_mb * 2**20))
        service.book.create(record)
    except BaseException:
        shutil.rmtree(job_folder, ignore_errors=True)
        raise
    try:
        enqueue(redis, settings, record.data)
    except Exception as exc:  # noqa: BLE001 - Redis refused: nothing may stay behind
        service.book.delete(record.id)
        raise RedisUnavailable.from_error(exc) from None
    remove_stale(service)
    return record.data


def snapshot_plugin(registry: Any, record: JobRecord, job_folder: Path) -> Plugin:
    """The plugin of a preview job, loaded from its snapshot (worker side).

    The code imported is the base plugin's package (from the worker's registry) or the
    snapshot's own copy; modules of an earlier import of that id are dropped first (this runs
    in the work horse, which exits after the job)."""
    info = record.data.get("preview") or {}
    plugin_id = str(info.get("plugin") or record.plugin_id)
    folder = job_folder / SNAPSHOT / plugin_id
    if not folder.is_dir() or Path(plugin_id).name != plugin_id:
        raise HisciError(f"preview job {record.id} has no plugin snapshot", given=plugin_id)
    base = registry.plugins.get(info.get("base") or "")
    package = base.package if base is not None else None
    own = f"hisci_plugin_{plugin_id.replace('-', '_')}"
    for name in [n for n in sys.modules if n == own or n.startswith(own + ".")]:
        del sys.modules[name]
    return load_plugin(folder, "preview", package=package)


def run_preview(plugin: Plugin, *, params: dict[str, Any], record: dict[str, Any], output_dir: Path,
                book: Any, **run: Any) -> Any:
    """The runner of a preview job (``runner`` field; called by :func:`hisci.jobs.worker.execute`).

    Caps the work horse's address space, then runs the example of the snapshot; a workflow
    runs into ``run/`` and its outcome is written to the record here."""
    from ..runner import RunResult

    _cap_memory(float((record.get("preview") or {}).get("memory_mb") or 0))
    if not plugin.is_workflow:
        from ..runner import run_plugin

        return run_plugin(plugin, example=True, inputs=example_inputs(plugin), output_dir=output_dir,
                          record=record, book=book, **run)
    from ..preview import run_example

    report = run_example(plugin, output_dir / "run")
    state = JobState(report["status"]) if report["status"] in {s.value for s in JobState} else JobState.FAILED
    figures = [f"run/{name}" for name in report["figures"]]
    job = book.apply(record["id"], lambda r: r.state == JobState.RUNNING
                     and r.finish(state, report["error"], figures=figures))
    return RunResult(job.state.value, output_dir, job.data, report["summary"], job.reason)


def _cap_memory(memory_mb: float) -> None:
    """Let this process map at most ``memory_mb`` more than it has now (RLIMIT_AS)."""
    if memory_mb <= 0:
        return
    try:
        with open("/proc/self/statm") as fh:
            mapped = int(fh.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        mapped = 0
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = mapped + int(memory_mb * 2**20)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def close_preview(service: Any, user: User, job_id: str) -> None:
    """Remove a preview job of ``user`` (cancelled first when it still runs); other jobs and
    other users' previews are left alone."""
    from .store import JobNotFound

    try:
        if service.book.get(job_id).kind != KIND:
            return
        _remove(service, user, job_id)
    except JobNotFound:
        pass


def _remove(service: Any, user: User, job_id: str) -> None:
    """Cancel a job that has not started (so its folder goes at once), then delete it; a
    running one's folder is removed by the reaper once its work horse has stopped."""
    if service.book.get(job_id).state in (JobState.QUEUED, JobState.HELD):
        service.cancel(user, job_id)
    service.delete(user, job_id)


def preview_ids(service: Any, finished_before: float | None = None) -> list[str]:
    """Ids of every preview job (or of those that finished before the given time)."""
    query = sa.select(jobs.c.id).where(jobs.c.kind == KIND)
    if finished_before is not None:
        query = query.where(jobs.c.finished < finished_before)
    with service.book.engine.connect() as conn:
        return [row.id for row in conn.execute(query)]


def purge_previews(service: Any) -> int:
    """Delete every preview job and its folder (a service start: no page shows them now)."""
    admin = User("preview-purge", True, "preview-purge")
    ids = preview_ids(service)
    for job_id in ids:
        try:
            _remove(service, admin, job_id)
        except Exception:  # noqa: BLE001 - Redis away: the folder is marked, the reaper ends it
            log.warning("could not remove preview job %s", job_id, exc_info=True)
    return len(ids)


#: finished previews older than this were never drawn (the page went away): removed
STALE_S = 3600.0


def remove_stale(service: Any) -> None:
    import time

    admin = User("preview-purge", True, "preview-purge")
    for job_id in preview_ids(service, finished_before=time.time() - STALE_S):
        try:
            _remove(service, admin, job_id)
        except Exception:  # noqa: BLE001
            log.warning("could not remove preview job %s", job_id, exc_info=True)
