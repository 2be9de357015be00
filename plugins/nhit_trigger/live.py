"""nhit_trigger in live mode: fragments from ZeroMQ (framing in :mod:`nhit.wire` and the
README) are triggered as they arrive; events are written in fragment order as soon as they
are decided, so the event file equals the offline run of the same stream byte for byte.

A fragment is decided when the next message arrives (the last fragment closes open events
at the stream's end, and only the end-of-run message says which one is last). Decided
fragments are triggered by a pool of threads (the numba kernels release the GIL), at most
``depth`` at a time, and written in order; after each write the run commits the checkpoint
of that fragment's message with the event file's flushed size and the counts through it.
A retry cuts the partial event file back to that size and the source replays its journal
from the next message.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hisci import InputError
from hisci.builtin_plugins.nhit import figures, wire
from hisci.builtin_plugins.nhit.checker import read_event_file
from hisci.builtin_plugins.nhit.config import load_config, whole_number
from hisci.builtin_plugins.nhit.eventfile import EventFileWriter, encode_file_header
from hisci.builtin_plugins.nhit.hitstream import STREAM_HEADER_DTYPE
from hisci.builtin_plugins.nhit.pipeline import EventStats, warm_up
from hisci.builtin_plugins.nhit.trigger import BufferPool, EventBlock, process_fragment

OUTPUT_NAME = "events.dat"
PUBLISH_EVERY_S = 0.5
#: The end time in the partial file's header until the run's stop is known (rewritten then),
#: so the partial file reads back as a valid event file on a resume.
OPEN_END_NS = 2**63 - 1
_COUNTS = ("fragments", "hits", "bytes", "next_index", "missing", "last_end_ns")


class _Fragment:
    """A received fragment: where it lies, its message, and the run's counts through it."""

    __slots__ = ("index", "begin", "end", "message", "seq", "counts")

    def __init__(self, index: int, begin: int, end: int, message, seq: int, counts: dict) -> None:
        self.index, self.begin, self.end, self.message, self.seq, self.counts = index, begin, end, message, seq, counts


class _Run:
    """State of one live run: the header, the fragment waiting for its successor, the
    fragments being triggered, counts."""

    def __init__(self, ctx, config, run_number: int, workers: int) -> None:
        self.ctx, self.config, self.run_number = ctx, config, run_number
        self.header = None
        self.writer: EventFileWriter | None = None
        self.pending: _Fragment | None = None
        self.inflight: deque[list] = deque()  # [fragment, block or None], in fragment order
        self.depth = workers + 1
        self._cond = threading.Condition()
        self.error: BaseException | None = None
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="nhit-live") if workers > 1 else None
        self._local = threading.local()
        self.stats = EventStats()
        self.fragments = self.hits = self.bytes = 0
        self.missing: list[int] = []
        self.end: dict | None = None
        self.next_index = 0
        self.last_end_ns = 0
        self.t0 = time.perf_counter()
        self._mark = (self.t0, 0, 0, 0)  # time, bytes, events, stream ns at the last publish

    def _part(self):
        return self.ctx.output_dir / "live" / f"{OUTPUT_NAME}.part"

    def _counts(self) -> dict:
        return {"fragments": self.fragments, "hits": self.hits, "bytes": self.bytes, "next_index": self.next_index,
                "missing": list(self.missing), "last_end_ns": self.last_end_ns}

    def state(self, counts: dict | None = None) -> dict:
        """What a retry needs: the header, the file's flushed size and events, and the counts
        through the last written fragment (``counts``; the run's own when None)."""
        return {"header": self.header, "file_bytes": self.writer.bytes if self.writer else 0,
                "events": self.writer.events if self.writer else 0, **(counts or self._counts())}

    def resume(self, state: dict) -> None:
        """Continue a crashed run from its committed ``state``."""
        self.header = state["header"]
        if self.header is not None:
            self.writer = EventFileWriter(self.ctx.output_dir / OUTPUT_NAME, run_number=self.run_number,
                                          start_ns=self.header["start_ns"], end_ns=OPEN_END_NS,
                                          type_tag=self.config.type_tag, part=self._part(),
                                          resume=(state["file_bytes"], state["events"]))
            self.writer.flush()
            _report, block = read_event_file(self._part())  # the figures cover the events before the crash
            self.stats.add(block)
        self.fragments, self.hits, self.bytes = state["fragments"], state["hits"], state["bytes"]
        self.next_index, self.missing, self.last_end_ns = state["next_index"], state["missing"], state["last_end_ns"]
        self.ctx.logger.info("live hits: resuming at fragment %d with %d events written", self.next_index,
                             state["events"])

    def settled(self, seq: int) -> None:
        """Message ``seq`` (not a fragment) is handled: checkpoint it when nothing before it is
        still undecided."""
        with self._cond:
            if self.pending is None and not self.inflight:
                if self.writer is not None:
                    self.writer.flush()
                self.ctx.live.commit("hits", seq, self.state())

    def start(self, message) -> None:
        if self.header is not None:
            raise InputError("live hits: a second start-of-run message arrived in one run", pointer="/live/zmq/hits")
        h = np.frombuffer(message, STREAM_HEADER_DTYPE, count=1)[0]
        self.header = {k: int(h[k]) for k in ("n_ed", "n_md", "fragment_ns", "overlap_ns", "start_ns")}
        self.writer = EventFileWriter(self.ctx.output_dir / OUTPUT_NAME, run_number=self.run_number,
                                      start_ns=self.header["start_ns"], end_ns=OPEN_END_NS,
                                      type_tag=self.config.type_tag, part=self._part())
        self.bytes += len(message)

    def fragment(self, message, seq: int = 0) -> None:
        if self.header is None:
            raise InputError("live hits: a fragment arrived before the start-of-run message (the 64-byte "
                              "stream header)", pointer="/live/zmq/hits", hint="see the framing in the README")
        head, hits = wire.decode_fragment(message)
        index = int(head["index"])
        if self.pending is not None:
            self._decide(last=False)
        expected = self.next_index
        if index != expected:
            self.missing.extend(range(expected, index))
            self.ctx.logger.warning("live hits: fragments %d..%d never arrived", expected, index - 1)
        self.fragments += 1
        self.hits += len(hits)
        self.bytes += len(message)
        self.next_index = index + 1
        end = int(head["end_ns"])
        self.pending = _Fragment(index, int(head["begin_ns"]), end, message, seq,
                                 {**self._counts(), "last_end_ns": end})

    def finish(self, message) -> None:
        self.end = wire.decode_end(message)
        self.bytes += len(message)
        if self.pending is not None:
            self._decide(last=True)
        self.drain()

    def _trigger(self, fragment: _Fragment, last: bool) -> EventBlock:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = BufferPool()
        _head, hits = wire.decode_fragment(fragment.message)
        return process_fragment(hits, self.config, begin_ns=fragment.begin, end_ns=fragment.end,
                                overlap_ns=self.header["overlap_ns"], first=fragment.index == 0, last=last, pool=pool)

    def _decide(self, last: bool) -> None:
        """Trigger the pending fragment (in the pool, or here with one worker); at most
        ``depth`` fragments wait to be written."""
        fragment, self.pending = self.pending, None
        entry: list = [fragment, None]  # [fragment, its EventBlock (or the error) once triggered]
        with self._cond:
            self.inflight.append(entry)
        if self._pool is None:
            self._done(entry, self._trigger, fragment, last)
        else:
            self._pool.submit(self._done, entry, self._trigger, fragment, last)
        with self._cond:
            while len(self.inflight) > self.depth and self.error is None:
                self._cond.wait()
        self._raise()
        self._publish()

    def _done(self, entry: list, trigger, fragment: _Fragment, last: bool) -> None:
        """Trigger one fragment, then write every fragment ready at the head of the line."""
        try:
            block = trigger(fragment, last)
        except BaseException as exc:  # noqa: BLE001 - raised in the run's thread by _raise
            block = exc
        with self._cond:
            entry[1] = block
            try:
                self._write_ready()
            except BaseException as exc:  # noqa: BLE001
                self.error = self.error or exc
            self._cond.notify_all()

    def _write_ready(self) -> None:
        """(Holding the lock) write the triggered fragments in order and commit the last one."""
        written = None
        while self.inflight and self.inflight[0][1] is not None and self.error is None:
            fragment, block = self.inflight[0]
            if isinstance(block, BaseException):
                self.error = block
                break
            self.inflight.popleft()
            self.writer.write(block)
            self.stats.add(block)
            self.last_end_ns = max(self.last_end_ns, fragment.end)
            written = fragment
        if written is not None:
            self.writer.flush()
            self.ctx.live.commit("hits", written.seq, self.state(written.counts))

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def drain(self) -> None:
        """Wait until every triggered fragment is written."""
        with self._cond:
            while self.inflight and self.error is None:
                self._cond.wait()
        self._raise()

    def close(self) -> None:
        """Stop the trigger threads (what they were doing is dropped: the retry redoes it)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _publish(self, force: bool = False) -> None:
        now = time.perf_counter()
        t, b, e, _ = self._mark
        if not force and now - t < PUBLISH_EVERY_S:
            return
        events = self.writer.events
        stream_s = (self.last_end_ns - self.header["start_ns"]) * 1e-9
        self.ctx.publish("rates", {
            "wall_s": round(now - self.t0, 3), "stream_s": round(stream_s, 6),
            "input_mb_s": round((self.bytes - b) / 1e6 / max(now - t, 1e-9), 2),
            "trigger_rate_hz": round(events / stream_s, 3) if stream_s > 0 else None,
            "events": events, "fragments": self.fragments, "hits": self.hits})
        self._mark = (now, self.bytes, events, self.last_end_ns)


def run_live(ctx) -> dict:
    """Trigger fragments from the live source ``hits`` until the end-of-run message.

    ``extra.workers`` threads (0: ``ctx.threads``, the job's cores) trigger decided
    fragments side by side while the source thread receives."""
    config = load_config(ctx)
    with ctx.field("run_number") as text:
        run_number = whole_number(text)
    workers = int(ctx.params["extra"].get("workers") or 0) or ctx.threads
    warm_up()  # compile the kernels before the first fragment, not while the stream backs up
    run = _Run(ctx, config, run_number, max(1, workers))
    state = ctx.live.resume_state("hits")
    if state:
        run.resume(state)
    unknown, seq = 0, None
    try:
        for item in ctx.live_items("hits"):
            kind, seq = wire.kind(item.data), item.seq
            if kind == "fragment":
                run.fragment(item.data, item.seq)
                continue
            if kind == "start":
                run.start(item.data)
            elif kind == "end":
                run.finish(item.data)
                ctx.live.stop("end of run")
            else:
                unknown += 1
                ctx.logger.warning("live hits: message %d is not a start, fragment or end message "
                                   "(first bytes %r); skipped", item.seq, bytes(item.data[:8]))
            run.settled(item.seq)
        if run.writer is None:
            return {"fragments_received": 0, "events": 0, "complete": False, "note": "no start-of-run message"}
        if run.pending is not None:  # stopped (cancel, idle) before the end: the last fragment closes the run
            run._decide(last=True)
        run.drain()
        stop_ns = run.end["stop_ns"] if run.end else run.last_end_ns
        path = run.writer.close()
        _rewrite_end(path, run, stop_ns)
        if seq is not None:  # all finished: the journal may go
            ctx.live.commit("hits", seq, None, force=True)
    except BaseException:
        run.close()
        if run.writer is not None:  # keep the partial file for a retry that resumes the checkpoint
            run.writer.suspend()
        raise
    run.close()
    run._publish(force=True)
    return _summary(ctx, run, config, stop_ns, unknown)


def _rewrite_end(path, run: _Run, stop_ns: int) -> None:
    """The file header's end time is the stream's stop, known only at the end of the run."""
    header = encode_file_header(run_number=run.run_number, start_ns=run.header["start_ns"], end_ns=stop_ns,
                                name=path.name)
    with open(path, "r+b") as fh:
        fh.write(header)


def _summary(ctx, run: _Run, config, stop_ns: int, unknown: int) -> dict:
    seconds = (stop_ns - run.header["start_ns"]) * 1e-9
    wall = time.perf_counter() - run.t0
    st = run.stats
    times = st.array("time")
    expected = run.end or {}
    complete = (bool(run.end) and not run.missing and expected.get("n_fragments") == run.fragments
                and expected.get("n_hits") == run.hits and not unknown)
    if not complete:
        ctx.logger.warning("live hits: INCOMPLETE: received %d fragments / %d hits, the sender announced %s; "
                           "missing fragments %s", run.fragments, run.hits, expected or "no end-of-run",
                           run.missing[:20])
    ctx.save_figure(figures.trigger_rate(times, run.header["start_ns"], stop_ns), "trigger_rate")
    ctx.save_figure(figures.histogram(st.array("n_ed"), "ED hits per event", "ED hits", vline=config.threshold),
                    "ed_multiplicity")
    return {
        "fragments_received": run.fragments, "hits_received": run.hits, "bytes_received": run.bytes,
        "fragments_sent": expected.get("n_fragments"), "hits_sent": expected.get("n_hits"),
        "missing_fragments": run.missing, "unknown_messages": unknown, "complete": complete,
        "events": run.writer.events, "stream_seconds": seconds,
        "trigger_rate_hz": run.writer.events / seconds if seconds > 0 else None,
        "wall_time_s": wall, "mb_per_s": run.bytes / 1e6 / wall if wall > 0 else None,
        "output_bytes": run.writer.bytes, "threshold": config.threshold, "window_ns": config.window_ns,
        "trigger": config.mode, "output": OUTPUT_NAME,
    }
