"""nhit_trigger in live mode: fragments from ZeroMQ (framing in :mod:`nhit.wire` and the
README) are triggered as they arrive; events are written in fragment order as soon as they
are decided, so the event file equals the offline run of the same stream byte for byte.

A fragment is decided when the next message arrives (the last fragment closes open events
at the stream's end, and only the end-of-run message says which one is last).
"""

from __future__ import annotations

import time

import numpy as np

from hisci import InputError
from hisci.builtin_plugins.nhit import figures, wire
from hisci.builtin_plugins.nhit.config import load_config, whole_number
from hisci.builtin_plugins.nhit.eventfile import EventFileWriter, encode_file_header
from hisci.builtin_plugins.nhit.hitstream import STREAM_HEADER_DTYPE
from hisci.builtin_plugins.nhit.pipeline import EventStats, warm_up
from hisci.builtin_plugins.nhit.trigger import BufferPool, process_fragment

OUTPUT_NAME = "events.dat"
PUBLISH_EVERY_S = 0.5


class _Run:
    """State of one live run: the header, the fragment waiting for its successor, counts."""

    def __init__(self, ctx, config, run_number: int) -> None:
        self.ctx, self.config, self.run_number = ctx, config, run_number
        self.header = None
        self.writer: EventFileWriter | None = None
        self.pending: tuple | None = None
        self.pool = BufferPool()
        self.stats = EventStats()
        self.fragments = self.hits = self.bytes = 0
        self.missing: list[int] = []
        self.end: dict | None = None
        self.t0 = time.perf_counter()
        self._mark = (self.t0, 0, 0, 0)  # time, bytes, events, stream ns at the last publish

    def start(self, message) -> None:
        if self.header is not None:
            raise InputError("live hits: a second start-of-run message arrived in one run", pointer="/live/zmq/hits")
        h = np.frombuffer(message, STREAM_HEADER_DTYPE, count=1)[0]
        self.header = {k: int(h[k]) for k in ("n_ed", "n_md", "fragment_ns", "overlap_ns", "start_ns")}
        self.writer = EventFileWriter(self.ctx.output_dir / OUTPUT_NAME, run_number=self.run_number,
                                      start_ns=self.header["start_ns"], end_ns=self.header["start_ns"],
                                      type_tag=self.config.type_tag)
        self.bytes += len(message)

    def fragment(self, message) -> None:
        if self.header is None:
            raise InputError("live hits: a fragment arrived before the start-of-run message (the 64-byte "
                              "stream header)", pointer="/live/zmq/hits", hint="see the framing in the README")
        head, hits = wire.decode_fragment(message)
        index = int(head["index"])
        expected = self.pending[0] + 1 if self.pending else 0
        if index != expected:
            self.missing.extend(range(expected, index))
            self.ctx.logger.warning("live hits: fragments %d..%d never arrived", expected, index - 1)
        self.fragments += 1
        self.hits += len(hits)
        self.bytes += len(message)
        if self.pending is not None:
            self._decide(last=False)
        self.pending = (index, int(head["begin_ns"]), int(head["end_ns"]), message)

    def finish(self, message) -> None:
        self.end = wire.decode_end(message)
        self.bytes += len(message)
        if self.pending is not None:
            self._decide(last=True)

    def _decide(self, last: bool) -> None:
        index, begin, end, message = self.pending
        _head, hits = wire.decode_fragment(message)
        block = process_fragment(hits, self.config, begin_ns=begin, end_ns=end,
                                 overlap_ns=self.header["overlap_ns"], first=index == 0, last=last, pool=self.pool)
        self.writer.write(block)
        self.stats.add(block)
        self.last_end_ns = end
        self.pending = None
        self._publish()

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
    """Trigger fragments from the live source ``hits`` until the end-of-run message."""
    config = load_config(ctx)
    with ctx.field("run_number") as text:
        run_number = whole_number(text)
    warm_up()  # compile the kernels before the first fragment, not while the stream backs up
    run = _Run(ctx, config, run_number)
    unknown = 0
    try:
        for item in ctx.live_items("hits"):
            kind = wire.kind(item.data)
            if kind == "fragment":
                run.fragment(item.data)
            elif kind == "start":
                run.start(item.data)
            elif kind == "end":
                run.finish(item.data)
                ctx.live.stop("end of run")
            else:
                unknown += 1
                ctx.logger.warning("live hits: message %d is not a start, fragment or end message "
                                   "(first bytes %r); skipped", item.seq, bytes(item.data[:8]))
        if run.writer is None:
            return {"fragments_received": 0, "events": 0, "complete": False, "note": "no start-of-run message"}
        if run.pending is not None:  # stopped (cancel, idle) before the end: the last fragment closes the run
            run._decide(last=True)
        stop_ns = run.end["stop_ns"] if run.end else run.last_end_ns
        path = run.writer.close()
        _rewrite_end(path, run, stop_ns)
    except BaseException:
        if run.writer is not None:
            run.writer.abort()
        raise
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
