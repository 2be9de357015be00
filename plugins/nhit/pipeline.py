"""Run the N-Hit trigger over a ``.hits`` file: fragments -> worker processes -> event file.

Fragments are handed to a pool of worker processes by the least-loaded
:class:`~.scheduler.Scheduler` (REQUEST / NEXTPRO / FRAGMENT / CLEAR); each worker
reuses its buffers (:class:`~.trigger.BufferPool`) and returns only the events it
owns. The parent writes the results in fragment order and numbers the events, so
the file is byte-identical whatever the number of workers. At most ``depth``
fragments per worker are in flight, which bounds memory by a few fragments per
worker. The file is written under a temporary name and renamed at the end, so a
cancelled or failed run leaves no half-written event file.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .eventfile import EventFileWriter
from .hitstream import HIT_DTYPE, HitStream
from .kernel import scan_hits, scan_windows, select_hits, select_in_ranges
from .scheduler import Scheduler
from .trigger import BufferPool, EventBlock, TriggerConfig, process_fragment

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(fragments_done, fragments_total)``; may raise to cancel."""


@dataclass
class EventStats:
    """Per-event numbers kept for the summary and figures (no hits)."""

    time: list = field(default_factory=list)
    stop: list = field(default_factory=list)
    n_max: list = field(default_factory=list)
    n_hits: list = field(default_factory=list)
    n_ed: list = field(default_factory=list)

    def add(self, block: EventBlock) -> None:
        for name in ("time", "stop", "n_max", "n_hits", "n_ed"):
            getattr(self, name).append(getattr(block, name))

    def array(self, name: str) -> np.ndarray:
        parts = getattr(self, name)
        return np.concatenate(parts) if parts else np.empty(0, np.int64)


@dataclass
class TriggerRun:
    """What :func:`run_trigger` did."""

    path: Path
    fragments: int
    hits_read: int
    bytes_read: int
    events: int
    bytes_written: int
    wall_s: float
    workers: int
    scheduler_table: str
    stats: EventStats

    @property
    def mb_per_s(self) -> float:
        """Input throughput, MB (1e6 bytes) per second of wall time."""
        return self.bytes_read / 1e6 / self.wall_s if self.wall_s > 0 else float("inf")


def default_workers() -> int:
    """Usable CPU cores of this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def warm_up() -> None:
    """Compile (or load from cache) the numba kernels before workers fork."""
    t = np.arange(8, dtype=np.int64)
    scan_windows(t, 1, 2)
    select_in_ranges(t, np.array([0]), np.array([4]))
    hits = np.zeros(8, HIT_DTYPE)
    hits["time"] = t
    ranges, grid = scan_hits(hits, 1, 4)
    select_hits(hits["time"], ranges, grid)


def _process(stream: HitStream, k: int, config: TriggerConfig, pool: BufferPool) -> EventBlock:
    frag = stream.fragments[k]
    nbytes = frag.count * HIT_DTYPE.itemsize
    hits = stream.read(k, pool.get("fragment", nbytes, np.uint8))
    return process_fragment(
        hits, config, begin_ns=frag.begin_ns, end_ns=frag.end_ns,
        overlap_ns=stream.header.overlap_ns, first=k == 0, last=k == len(stream) - 1, pool=pool)


def _worker_main(node: int, stream: HitStream, config: TriggerConfig, tasks, results) -> None:
    pool = BufferPool()
    while True:
        k = tasks.get()
        if k is None:
            return
        try:
            results.put((node, k, _process(stream, k, config, pool), None))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
            results.put((node, k, None, f"{type(exc).__name__}: {exc}"))


def run_trigger(stream_path, out_path, config: TriggerConfig, *, workers: int = 1,
                run_number: int = 0, progress: ProgressCallback | None = None,
                log: logging.Logger | None = None, depth: int = 2) -> TriggerRun:
    """Trigger a whole ``.hits`` file and write the event file.

    Parameters
    ----------
    stream_path : path-like
        Input ``.hits`` stream.
    out_path : path-like
        Event file to write (its base name goes into the file header).
    config : TriggerConfig
    workers : int
        Worker processes; 1 runs in this process, ``<= 0`` means all cores.
    run_number : int
        Written to the file header.
    progress : callable, optional
        ``progress(done, total)`` after each fragment is written; raising from it
        (e.g. a cancellation) stops the run and removes the partial file.
    log : logging.Logger, optional
        Receives the scheduler table and per-run figures.
    depth : int
        Fragments in flight per worker.

    Returns
    -------
    TriggerRun
    """
    log = log or logging.getLogger(__name__)
    workers = default_workers() if workers <= 0 else int(workers)
    stream = HitStream(stream_path)
    workers = max(1, min(workers, len(stream)))
    writer = EventFileWriter(out_path, run_number=run_number, start_ns=stream.header.start_ns,
                             end_ns=stream.header.stop_ns, type_tag=config.type_tag)
    scheduler = Scheduler(workers)
    stats = EventStats()
    t0 = time.perf_counter()
    try:
        emit = _Emitter(writer, stats, len(stream), progress, scheduler, log)
        if workers == 1:
            _run_serial(stream, config, scheduler, emit)
        else:
            _run_pool(stream, config, scheduler, emit, workers, depth)
        path = writer.close()
    except BaseException:
        writer.abort()
        raise
    wall = time.perf_counter() - t0
    log.info("scheduler table at the end:\n%s", scheduler.format_table())
    return TriggerRun(path, len(stream), stream.n_hits, stream.nbytes, writer.events,
                      writer.bytes, wall, workers, scheduler.format_table(), stats)


class _Emitter:
    """Writes fragment results in fragment order, numbering events as it goes."""

    def __init__(self, writer, stats, total, progress, scheduler, log):
        self.writer, self.stats, self.total = writer, stats, total
        self.progress, self.scheduler, self.log = progress, scheduler, log
        self.pending: dict[int, EventBlock] = {}
        self.next = 0
        self._log_every = max(1, total // 10)

    def put(self, k: int, block: EventBlock) -> None:
        self.pending[k] = block
        while self.next in self.pending:
            block = self.pending.pop(self.next)
            self.writer.write(block)
            self.stats.add(block)
            self.next += 1
            if self.next % self._log_every == 0:
                self.log.info("fragment %d/%d written; scheduler table:\n%s", self.next,
                              self.total, self.scheduler.format_table())
            if self.progress is not None:
                self.progress(self.next, self.total)


def _run_serial(stream, config, scheduler, emit) -> None:
    pool = BufferPool()
    for k in range(len(stream)):
        node = scheduler.request()
        block = _process(stream, k, config, pool)
        scheduler.clear(node)
        emit.put(k, block)


def _run_pool(stream, config, scheduler, emit, workers, depth) -> None:
    warm_up()
    stream.close()
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    tasks = [ctx.SimpleQueue() for _ in range(workers)]
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker_main, args=(i, stream, config, tasks[i], results),
                         daemon=True) for i in range(workers)]
    for p in procs:
        p.start()
    try:
        sent = 0
        while emit.next < len(stream):
            # bounded: few fragments in flight per worker, few finished ones waiting for
            # an earlier, slower one to be written
            while (sent < len(stream) and scheduler.in_flight < workers * depth
                   and sent - emit.next < 4 * workers * depth):
                tasks[scheduler.request()].put(sent)  # REQUEST -> NEXTPRO -> FRAGMENT
                sent += 1
            node, k, block, error = _get_result(results, procs)
            scheduler.clear(node)  # CLEAR
            if error is not None:
                raise ValueError(f"fragment {k}: {error}")
            emit.put(k, block)
        for q in tasks:
            q.put(None)
        for p in procs:
            p.join(timeout=10)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
        results.close()


def _get_result(results, procs, poll_s: float = 1.0):
    """Next result; raise if a worker died without answering."""
    import queue

    while True:
        try:
            return results.get(timeout=poll_s)
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(
                    f"trigger worker pid {dead[0].pid} died with exit code {dead[0].exitcode}") from None
