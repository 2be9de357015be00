"""Parallel plugins: ``plan(ctx)`` -> chunk specs, ``run_chunk(ctx, chunk)``, ``merge(ctx, parts)``.

A plugin whose meta.json has ``runtime.parallel`` and whose entry module defines the three
functions can be split into chunks. This module holds what every executor shares: finding
the functions, sizing the chunks, running one chunk in its own folder (:func:`execute_chunk`,
used by the local process pool and by a service worker alike), and the local executor behind
``hicli run --jobs N [--chunks M]``.

Folder layout of a parallel run::

    OUTPUT/            the job: job.json, log.txt, result.json, merged outputs
    OUTPUT/chunks/plan.json
    OUTPUT/chunks/000/ one chunk: log.txt, part.json (its result, host, seconds), its files
    OUTPUT/chunks/CANCEL   written to stop every chunk
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .context import RunContext
from .errors import InputError, JobCancelled
from .models.meta import Parallel
from .plugin import Plugin, load_plugin
from .storage import write_json

CHUNKS_DIR = "chunks"
CANCEL_FLAG = "CANCEL"


@dataclass(frozen=True)
class ParallelEntry:
    """The three functions of a parallel plugin, and its ``runtime.parallel`` block."""

    spec: Parallel
    plan: Callable[[RunContext], list[dict[str, Any]] | None]
    run_chunk: Callable[[RunContext, dict[str, Any]], dict[str, Any] | None]
    merge: Callable[[RunContext, list[ChunkPart]], dict[str, Any] | None]


@dataclass(frozen=True)
class ChunkPart:
    """One finished chunk, as ``merge`` sees it.

    Attributes
    ----------
    index : position in the plan (0-based).
    chunk : the chunk spec ``plan`` returned.
    output_dir : the chunk's folder (what ``run_chunk`` wrote).
    result : what ``run_chunk`` returned (a JSON-able dict).
    host : the host that ran it.
    """

    index: int
    chunk: dict[str, Any]
    output_dir: Path
    result: dict[str, Any]
    host: str = ""


def parallel_entry(plugin: Plugin) -> ParallelEntry | None:
    """The plugin's plan/run_chunk/merge, or None when it does not run in chunks.

    A plugin runs in chunks only when ``runtime.parallel`` is set AND its entry module
    defines all three functions; with the block but without the functions it runs whole.
    """
    runtime = plugin.runtime
    if runtime is None or runtime.parallel is None:
        return None
    entry = plugin.load_entry()
    module = importlib.import_module(entry.__module__)
    funcs = [getattr(module, name, None) for name in ("plan", "run_chunk", "merge")]
    if not all(callable(f) for f in funcs):
        return None
    return ParallelEntry(runtime.parallel, *funcs)


def chunk_count(n_items: int, wanted: int, spec: Parallel) -> int:
    """How many chunks ``n_items`` items make: ``wanted``, capped by ``max_chunks`` and by
    ``min_chunk`` items per chunk; at least 1."""
    by_size = max(1, n_items // max(spec.min_chunk, 1))
    return max(1, min(int(wanted), spec.max_chunks, by_size, max(n_items, 1)))


def split_range(start: int, stop: int, ctx: RunContext, align: int = 1) -> list[tuple[int, int]]:
    """Split ``[start, stop)`` into ``ctx.chunk_target`` contiguous, nearly equal ranges
    (capped by the plugin's ``max_chunks``/``min_chunk``): the usual body of ``plan``.

    ``align``: every boundary but ``stop`` lies at ``start`` plus a multiple of it (ct_recon
    packs two rows into one complex transform, so its chunks start on even offsets).
    """
    n = stop - start
    if n <= 0:
        return []
    spec = ctx.parallel or Parallel(over="rows")
    align = max(1, int(align))
    units = -(-n // align)
    k = chunk_count(units, ctx.chunk_target, Parallel(
        over=spec.over, max_chunks=spec.max_chunks, min_chunk=max(1, -(-spec.min_chunk // align))))
    bounds = [min(stop, start + align * ((units * i) // k)) for i in range(k + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(k) if bounds[i + 1] > bounds[i]]


def chunk_dir(output_dir: Path, index: int) -> Path:
    return Path(output_dir) / CHUNKS_DIR / f"{index:03d}"


def chunk_context(plugin: Plugin, params: dict[str, Any], files: dict[str, list[Path]],
                  folder: Path, logger: logging.Logger,
                  progress: Callable[[float, str], None] | None = None,
                  cancel_check: Callable[[], bool] | None = None) -> RunContext:
    """The RunContext a chunk sees: the job's params and inputs, its own output folder."""
    return RunContext(params, files, folder, plugin.folder, logger, progress, cancel_check)


def execute_chunk(plugin_ref: tuple[str, str, str | None], params: dict[str, Any],
                  files: dict[str, list[str]], job_dir: str, index: int,
                  chunk: dict[str, Any]) -> dict[str, Any]:
    """Run chunk ``index`` of a job in ``job_dir/chunks/NNN`` (in any process, on any host
    that sees the data dir). Writes ``part.json`` (result, host, pid, seconds) and
    ``progress.json``; raises JobCancelled when ``chunks/CANCEL`` appears.

    ``plugin_ref`` is ``(folder, source, package)`` so that a fresh process can load the
    plugin without discovering the registry.
    """
    folder, source, package = plugin_ref
    plugin = load_plugin(Path(folder), source, package)
    funcs = parallel_entry(plugin)
    if funcs is None:
        raise RuntimeError(f"plugin {plugin.id} does not define plan/run_chunk/merge")
    out = chunk_dir(Path(job_dir), index)
    out.mkdir(parents=True, exist_ok=True)
    cancel_path = Path(job_dir) / CHUNKS_DIR / CANCEL_FLAG
    logger = logging.getLogger(f"hisci.chunk.{os.getpid()}.{index}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.FileHandler(out / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        if time.monotonic() - last[0] > 0.2 or fraction >= 1:
            last[0] = time.monotonic()
            write_json(out / "progress.json", {"progress": fraction, "message": message})

    host = os.environ.get("HISCI_WORKER_HOST") or socket.gethostname()
    ctx = chunk_context(plugin, params, {k: [Path(p) for p in v] for k, v in files.items()},
                        out, logger, progress, cancel_path.exists)
    ctx.parallel = funcs.spec
    t0 = time.perf_counter()
    logger.info("chunk %d of plugin %s on %s (pid %d): %s", index, plugin.id, host, os.getpid(),
                json.dumps(chunk, default=str))
    try:
        if cancel_path.exists():
            raise JobCancelled("the job was cancelled")
        result = funcs.run_chunk(ctx, chunk) or {}
    except JobCancelled:
        logger.warning("cancelled")
        raise
    except Exception:
        logger.error("chunk failed:\n%s", traceback.format_exc())
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()
    part = {"index": index, "chunk": chunk, "result": result, "host": host, "pid": os.getpid(),
            "seconds": round(time.perf_counter() - t0, 4)}
    write_json(out / "part.json", part)
    write_json(out / "progress.json", {"progress": 1.0, "message": "done"})
    return part


def read_parts(job_dir: Path, n_chunks: int) -> list[ChunkPart]:
    """The parts of every chunk from their part.json, in plan order; raises when one is missing."""
    parts = []
    for index in range(n_chunks):
        path = chunk_dir(job_dir, index) / "part.json"
        if not path.exists():
            raise RuntimeError(f"chunk {index} has no result ({path} is missing)")
        part = json.loads(path.read_text("utf-8"))
        parts.append(ChunkPart(index, part["chunk"], path.parent, part.get("result") or {},
                               part.get("host", "")))
    return parts


def chunk_progress(job_dir: Path, n_chunks: int) -> list[float]:
    """Each chunk's last reported progress (0 when it has not reported yet)."""
    values = []
    for index in range(n_chunks):
        path = chunk_dir(job_dir, index) / "progress.json"
        try:
            values.append(float(json.loads(path.read_text("utf-8"))["progress"]))
        except (OSError, ValueError, KeyError):
            values.append(0.0)
    return values


def make_plan(funcs: ParallelEntry, ctx: RunContext, wanted: int) -> list[dict[str, Any]] | None:
    """Call the plugin's ``plan`` for ``wanted`` chunks; check and store the plan.

    None means "these parameters do not split" (e.g. xas_match's PCA): the job runs whole.
    """
    ctx.chunk_target = max(1, int(wanted))
    ctx.parallel = funcs.spec
    plan = funcs.plan(ctx)
    if plan is None:
        return None
    plan = list(plan)
    if not plan:
        raise InputError("the plan has no chunks: nothing to do for these parameters",
                         hint="check the selection (rows, frames, spectra...)")
    for i, chunk in enumerate(plan):
        if not isinstance(chunk, dict):
            raise TypeError(f"plan() must return a list of dicts; item {i} is {type(chunk).__name__}")
    write_json(ctx.output_dir / CHUNKS_DIR / "plan.json", {"over": funcs.spec.over, "chunks": plan})
    return plan


def local_parallel_entry(plugin: Plugin, funcs: ParallelEntry, files: dict[str, list[Path]],
                         jobs: int, chunks: int | None) -> Callable[[RunContext], dict[str, Any]]:
    """An entry function for the runner that plans, runs the chunks in ``jobs`` processes
    and merges; progress is the mean of the chunks' progress, cancel reaches every chunk."""
    ref = (str(plugin.folder), plugin.source, plugin.package)
    str_files = {k: [str(p) for p in v] for k, v in files.items()}
    whole = plugin.load_entry()

    def entry(ctx: RunContext) -> dict[str, Any]:
        ctx._chunk_module = funcs.run_chunk.__module__  # preloaded by the forkserver
        ctx.progress(0.0, "planning")
        plan = make_plan(funcs, ctx, chunks or jobs)
        if plan is None:
            ctx.logger.info("the plan does not split these parameters: running whole")
            return whole(ctx) or {}
        n = len(plan)
        ctx.logger.info("%d chunks over %s, %d processes", n, funcs.spec.over, jobs)
        ctx.progress(0.05, f"{n} chunks")
        job_dir = ctx.output_dir
        if jobs <= 1:
            for i, chunk in enumerate(plan):
                _check_cancel(ctx, job_dir)
                execute_chunk(ref, ctx.params, str_files, str(job_dir), i, chunk)
                ctx.progress(0.05 + 0.85 * (i + 1) / n, f"{i + 1}/{n} chunks")
        else:
            _run_pool(ref, ctx, str_files, plan, jobs)
        parts = read_parts(job_dir, n)
        for part in parts:
            ctx.logger.info("chunk %d ran on %s", part.index, part.host)
        ctx.progress(0.9, "merging")
        summary = funcs.merge(ctx, parts) or {}
        return {**summary, "chunks": n}

    return entry


def _check_cancel(ctx: RunContext, job_dir: Path) -> None:
    if ctx.cancelled():
        cancel_chunks(job_dir)
        raise JobCancelled("the job was cancelled")


def cancel_chunks(job_dir: Path) -> None:
    """Tell every chunk of the job in ``job_dir`` to stop (they check at each progress call)."""
    flag = Path(job_dir) / CHUNKS_DIR / CANCEL_FLAG
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text("cancelled\n")


def _run_pool(ref: tuple[str, str, str | None], ctx: RunContext, files: dict[str, list[str]],
              plan: Sequence[dict[str, Any]], jobs: int) -> None:
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    mp = _pool_context(ctx)
    slot = mp.Value("i", 0)
    job_dir = ctx.output_dir
    n = len(plan)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp, initializer=_pin_worker,
                             initargs=(slot, jobs)) as pool:
        futures = {pool.submit(execute_chunk, ref, ctx.params, files, str(job_dir), i, c): i
                   for i, c in enumerate(plan)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.3, return_when=FIRST_EXCEPTION)
                for future in done:
                    if future.exception() is not None:
                        raise _chunk_error(futures[future], future.exception())
                fractions = chunk_progress(job_dir, n)
                finished = n - len(pending)
                ctx.progress(0.05 + 0.85 * sum(fractions) / n, f"{finished}/{n} chunks")
        except BaseException:
            cancel_chunks(job_dir)
            for future in pending:
                future.cancel()
            raise


def _pool_context(ctx: RunContext) -> Any:
    """How chunk processes start. fork while this process has started no OpenMP/numba
    thread pool (``hicli run``: the plan runs no parallel kernel), so chunks start with every
    import done; otherwise forkserver with the plugin's modules preloaded (forking a process
    whose OpenMP threads run is unsafe); spawn where neither exists."""
    import multiprocessing
    import sys

    methods = multiprocessing.get_all_start_methods()
    numba_pool = sys.modules.get("numba.np.ufunc.parallel")
    if "fork" in methods and not getattr(numba_pool, "_is_initialized", False):
        return multiprocessing.get_context("fork")
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    mp = multiprocessing.get_context("forkserver")
    modules = ["numpy", "hisci.parallel", "hisci.runner"]
    if ctx.parallel is not None and getattr(ctx, "_chunk_module", None):
        modules.append(ctx._chunk_module)
    mp.set_forkserver_preload(modules)
    return mp


def _chunk_error(index: int, exc: BaseException) -> BaseException:
    if isinstance(exc, (JobCancelled, InputError)):
        return exc
    return RuntimeError(f"chunk {index} failed: {type(exc).__name__}: {exc}")


def _pin_worker(slot: Any, jobs: int) -> None:
    """Give each pool process its share of this process's cores (threads follow)."""
    with slot.get_lock():
        mine = slot.value
        slot.value += 1
    if not hasattr(os, "sched_getaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    share = cores[mine % jobs::jobs] if len(cores) >= jobs else cores
    if share:
        os.sched_setaffinity(0, share)
        for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(len(share))
