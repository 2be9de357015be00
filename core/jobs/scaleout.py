"""Parallel jobs and sweeps in the service, built on job groups (:mod:`hisci.jobs.groups`).

A parallel job is a group of kind ``parallel``: the plan runs at submit time (it reads the
inputs' shapes, fixes e.g. the CT rotation centre, and may save figures into the group's
plan folder), then one ``chunk`` child per chunk spec and one ``merge`` child that waits for
all of them. Each chunk child runs ``run_chunk`` in its own job folder on whichever worker
takes it (any host that shares the data dir) and leaves ``part.json``; the merge child
copies the plan folder into its own folder and calls the plugin's ``merge`` with the parts.
The group mechanism gives the rest: one progress (the children's mean), cancel of every
child, a lost chunk retried alone, the worker and host of each child.

A sweep is a group of kind ``sweep``: one ``point`` child per value, each a plain job.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..context import RunContext
from ..errors import InputError
from ..parallel import ChunkPart, make_plan, parallel_entry
from ..runner import RunResult, run_plugin
from ..storage import write_json
from ..sweep import DEFAULT_SWEEP_LIMIT, sweep_from
from .groups import ChildSpec, GroupSpec
from .routing import live_workers, route
from .worker import worker_host

if TYPE_CHECKING:
    from ..plugin import Plugin
    from .service import JobService
    from .users import User

CHUNK_RUNNER = "hisci.jobs.scaleout:run_chunk_job"
MERGE_RUNNER = "hisci.jobs.scaleout:run_merge_job"
#: A chunk whose worker is lost is retried (alone) at least this many times.
CHUNK_RETRIES = 2



def wanted_chunks(service: JobService, plugin: Plugin, chunks: int | None) -> int | None:
    """``chunks`` when given; else the number of live workers on the plugin's queue when
    more than one could take chunks; else None (run whole)."""
    if chunks is not None:
        return int(chunks)
    redis = service._redis()
    n = len(live_workers(redis, route(plugin, redis).queue))
    return n if n > 1 else None


def submit_parallel(service: JobService, user: User, plugin_id: str, request: dict[str, Any],
                    chunks: int | None = None) -> dict[str, Any] | None:
    """Submit a parallel plugin's job as a group; None when it should run whole (not a
    parallel plugin, one worker and no ``chunks``, or a plan that does not split)."""
    plugin = service._runnable(plugin_id)
    funcs = parallel_entry(plugin)
    if funcs is None:
        if chunks is not None and chunks > 1:
            raise InputError(f"plugin {plugin_id} does not run in chunks (no runtime.parallel with "
                             "plan/run_chunk/merge)", pointer="/chunks", given=chunks,
                             hint="leave chunks out")
        return None
    wanted = wanted_chunks(service, plugin, chunks)
    if wanted is None:
        return None
    params, files = service._checked(user, plugin, request)  # validated, confined to what the user may read
    plan_dir = service.settings.data_dir / "plans" / uuid.uuid4().hex
    plan_dir.mkdir(parents=True)
    logger = logging.getLogger(f"hisci.plan.{plan_dir.name}")
    ctx = RunContext(params, files, plan_dir, plugin.folder, logger)
    try:
        plan = make_plan(funcs, ctx, wanted)
    except BaseException:
        shutil.rmtree(plan_dir, ignore_errors=True)
        raise
    if plan is None:
        shutil.rmtree(plan_dir, ignore_errors=True)
        return None
    write_json(plan_dir / "plan-figures.json", ctx.figures)
    retries = max(CHUNK_RETRIES, plugin.runtime.retries if plugin.runtime else 0)
    children = [ChildSpec(name=f"chunk-{i}", plugin=plugin_id, request=request, kind="chunk",
                          runner=CHUNK_RUNNER, retries=retries, fields={"chunk": c, "index": i})
                for i, c in enumerate(plan)]
    merge = ChildSpec(name="merge", plugin=plugin_id, request=request, kind="merge", runner=MERGE_RUNNER,
                      retries=retries, fields={"plan_dir": str(plan_dir), "chunks": len(plan)})
    return service.submit_group(
        user, GroupSpec(kind="parallel", plugin=plugin_id, request=request,
                        fields={"chunks": len(plan), "over": funcs.spec.over, "plan_dir": str(plan_dir)}),
        children, finish=merge)


def submit_sweep(service: JobService, user: User, plugin_id: str, request: dict[str, Any],
                 sweep: dict[str, Any]) -> dict[str, Any]:
    """One ``point`` child per value of the one swept parameter (``{"extra.center": [..]}``
    or the text form ``{"extra.center": "1020:1030:0.5"}``)."""
    if not isinstance(sweep, dict) or len(sweep) != 1:
        raise InputError("sweep one parameter at a time: {\"extra.name\": [values]}", pointer="/sweep",
                         given=sorted(sweep) if isinstance(sweep, dict) else sweep)
    plugin = service._runnable(plugin_id)
    (key, values), = sweep.items()
    limit = int(getattr(user, "sweep_limit", None) or service.settings.sweep_limit or DEFAULT_SWEEP_LIMIT)
    swept = sweep_from(key, values, plugin, limit)
    children = [ChildSpec(name=f"{swept.key}={value}", plugin=plugin_id, request=child, kind="point",
                          fields={"sweep_key": swept.key, "sweep_value": value})
                for value, child in zip(swept.values, swept.requests(request), strict=True)]
    return service.submit_group(user, GroupSpec(kind="sweep", plugin=plugin_id, request=request,
                                                fields={"sweep": swept.to_json()}), children)


def run_chunk_job(plugin: Plugin, *, params: dict[str, Any], record: dict[str, Any], output_dir: Path,
                  progress: Any = None, cancel_check: Any = None, xp: Any = None, book: Any = None,
                  **_: Any) -> RunResult:
    """The runner of a ``chunk`` child: ``run_chunk`` in the child's own folder, then
    ``part.json`` (index, chunk, result, host, worker)."""
    funcs = parallel_entry(plugin)
    if funcs is None:
        raise InputError(f"plugin {plugin.id} on this worker does not run in chunks",
                         hint="install the same plugin version on every worker")

    def entry(ctx: RunContext) -> dict[str, Any]:
        ctx.parallel = funcs.spec
        result = funcs.run_chunk(ctx, record["chunk"]) or {}
        write_json(ctx.output_dir / "part.json", {
            "index": record["index"], "chunk": record["chunk"], "result": result,
            "host": worker_host(), "pid": os.getpid()})
        return result

    return run_plugin(plugin, params=params, record=record, output_dir=output_dir, progress=progress,
                      cancel_check=cancel_check, xp=xp, book=book, entry=entry)


def run_merge_job(plugin: Plugin, *, params: dict[str, Any], record: dict[str, Any], output_dir: Path,
                  progress: Any = None, cancel_check: Any = None, xp: Any = None, book: Any = None,
                  **_: Any) -> RunResult:
    """The runner of the ``merge`` child: the plan folder's files, then ``merge`` of the
    chunk children's parts (in plan order)."""
    funcs = parallel_entry(plugin)
    if funcs is None:
        raise InputError(f"plugin {plugin.id} on this worker does not run in chunks")
    plan_dir = Path(record["plan_dir"])

    def entry(ctx: RunContext) -> dict[str, Any]:
        ctx.parallel = funcs.spec
        shutil.copytree(plan_dir, ctx.output_dir, dirs_exist_ok=True)
        ctx.figures.extend(json.loads((plan_dir / "plan-figures.json").read_text("utf-8")))
        chunks = sorted((c for c in book.children(record["parent_id"]) if c.kind == "chunk"),
                        key=lambda c: c.data["index"])
        parts = []
        for child in chunks:
            folder = book.store.folder(child.id)
            part = json.loads((folder / "part.json").read_text("utf-8"))
            parts.append(ChunkPart(part["index"], part["chunk"], folder, part.get("result") or {},
                                   part.get("host") or child.data.get("host") or ""))
        ctx.progress(0.05, f"merging {len(parts)} chunks")
        summary = funcs.merge(ctx, parts) or {}
        hosts = {p.host for p in parts}
        return {**summary, "chunks": len(parts), "chunk_hosts": sorted(hosts)}

    return run_plugin(plugin, params=params, record=record, output_dir=output_dir, progress=progress,
                      cancel_check=cancel_check, xp=xp, book=book, entry=entry)
