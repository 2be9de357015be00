"""nhit_trigger in live mode: fragments from ZeroMQ (framing in :mod:`nhit.wire` and the
README) are triggered as they arrive; events are written in fragment order as soon as they
are decided, so the event file equals the offline run of the same stream byte for byte.

A fragment is decided when the next message arrives (the last fragment closes open events
at the stream's end, and only the end-of-run message says which one is last). So after each
message the run commits the checkpoint of the message before it (the fragment in hand is not
decided yet) with the event file's flushed size and the counts; a retry cuts the partial
event file back to that size and the source replays its journal from the fragment in hand.
"""

from __future__ import annotations

import time

import numpy as np

from hisci import InputError
from hisci.builtin_plugins.nhit import figures, wire
from hisci.builtin_plugins.nhit.checker import read_event_file
from hisci.builtin_plugins.nhit.config import load_config, whole_number
from hisci.builtin_plugins.nhit.eventfile import EventFileWriter, encode_file_header
from hisci.builtin_plugins.nhit.hitstream import STREAM_HEADER_DTYPE
from hisci.builtin_plugins.nhit.pipeline import EventStats, warm_up
from hisci.builtin_plugins.nhit.trigger import BufferPool, process_fragment

OUTPUT_NAME = "events.dat"
PUBLISH_EVERY_S = 0.5
#: The end time in the partial file's header until the run's stop is known (rewritten then),
#: so the partial file reads back as a valid event file on a resume.
OPEN_END_NS = 2**63 - 1


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
        self.next_index = 0
        self.last_end_ns = 0
        self.t0 = time.perf_counter()
        self._mark = (self.t0, 0, 0, 0)  # time, bytes, events, stream ns at the last publish

    def _part(self):
        return self.ctx.output_dir / "live" / f"{OUTPUT_NAME}.part"

    def state(self) -> dict:
        """What a retry needs: the file's flushed size and events, the counts (the fragment in
        hand, not decided yet, is not in them: the retry receives it again)."""
        return {"header": self.header, "file_bytes": self.writer.bytes if self.writer else 0,
                "events": self.writer.events if self.writer else 0, "fragments": self.fragments,
                "hits": self.hits, "bytes": self.bytes, "next_index": self.next_index,
                "missing": list(self.missing), "last_end_ns": self.last_end_ns}

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

    def commit(self, seq: int) -> None:
        """Checkpoint: everything before the fragment in hand is in the (flushed) file."""
        if self.writer is not None:
            self.writer.flush()
        if self.pending is not None:
            self.ctx.live.commit("hits", self.pending[4] - 1, self._before)
        else:
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
        self._before = self.state()  # the committed state: this fragment is not decided yet
        expected = self.next_index
        if index != expected:
            self.missing.extend(range(expected, index))
            self.ctx.logger.warning("live hits: fragments %d..%d never arrived", expected, index - 1)
        self.fragments += 1
        self.hits += len(hits)
        self.bytes += len(message)
        self.next_index = index + 1
        self.pending = (index, int(head["begin_ns"]), int(head["end_ns"]), message, seq)

    def finish(self, message) -> None:
        self.end = wire.decode_end(message)
        self.bytes += len(message)
        if self.pending is not None:
            self._decide(last=True)

    def _decide(self, last: bool) -> None:
        index, begin, end, message, _seq = self.pending
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
    state = ctx.live.resume_state("hits")
    if state:
        run.resume(state)
    unknown, seq = 0, None
    try:
        for item in ctx.live_items("hits"):
            kind, seq = wire.kind(item.data), item.seq
            if kind == "fragment":
                run.fragment(item.data, item.seq)
            elif kind == "start":
                run.start(item.data)
            elif kind == "end":
                run.finish(item.data)
                ctx.live.stop("end of run")
            else:
                unknown += 1
                ctx.logger.warning("live hits: message %d is not a start, fragment or end message "
                                   "(first bytes %r); skipped", item.seq, bytes(item.data[:8]))
            run.commit(item.seq)
        if run.writer is None:
            return {"fragments_received": 0, "events": 0, "complete": False, "note": "no start-of-run message"}
        if run.pending is not None:  # stopped (cancel, idle) before the end: the last fragment closes the run
            run._decide(last=True)
        stop_ns = run.end["stop_ns"] if run.end else run.last_end_ns
        path = run.writer.close()
        _rewrite_end(path, run, stop_ns)
        if seq is not None:  # all finished: the journal may go
            ctx.live.commit("hits", seq, None, force=True)
    except BaseException:
        if run.writer is not None:  # keep the partial file for a retry that resumes the checkpoint
            run.writer.suspend()
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
