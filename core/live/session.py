"""LiveSession: the platform side of a live run (sources, stopping, checkpoint, lag, publish)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..storage import write_json
from .items import LiveItem
from .publish import EventLog, Sink
from .source import Source
from .spec import LiveSpec

STATE_DIR = "live"
CHECKPOINT = "live/checkpoint.json"
LAG_EVERY_S = 1.0
#: A plugin's own commits (``LiveSession.commit``) reach the checkpoint file at most this often.
CHECKPOINT_EVERY_S = 0.25


class LiveSession:
    """Opens the sources of ``spec`` and hands their items to the plugin.

    The session checkpoints each source's last finished sequence number in
    ``<output>/live/checkpoint.json`` when the plugin asks for the next item, so a retried
    run (same output folder) skips what was finished. It stops on cancel, ``stop()``
    (Ctrl-C), ``until`` items, ``idle`` seconds without an item, or when every source ended.
    A plugin whose output lags its input (it holds an item until the next one arrives) calls
    ``commit`` itself instead, with the state it needs to resume (``resume_state`` on retry).

    Parameters
    ----------
    spec : the validated live settings.
    output_dir : the job folder (state, spool and event log go to its ``live/``).
    idle_default : the plugin's ``runtime.idle_timeout`` (``spec.idle`` overrides it).
    cancel_check : returns True when the job was cancelled.
    sink : forwards published events (the service's Redis stream).
    progress : ``(fraction, message)`` for lag reports.
    stop_event : set by a signal handler (Ctrl-C) to stop after the current item.
    """

    def __init__(self, spec: LiveSpec, output_dir: Path, *, idle_default: float | None = 600,
                 cancel_check: Callable[[], bool] | None = None, sink: Sink | None = None,
                 progress: Callable[[float, str], None] | None = None,
                 logger: logging.Logger | None = None, stop_event: threading.Event | None = None) -> None:
        self.spec = spec
        self.output_dir = Path(output_dir)
        self.state_dir = self.output_dir / STATE_DIR
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.idle = spec.idle if spec.idle is not None else idle_default
        self.log = logger or logging.getLogger("hisci.live")
        self._cancel = cancel_check or (lambda: False)
        self._progress = progress
        self._stop = stop_event or threading.Event()
        self.stop_reason: str | None = None
        self.checkpoint, self.states, self._received = self._read_checkpoint()
        self.resumed = dict(self.checkpoint)
        self._manual: set[str] = set()
        self._checkpoint_lock = threading.RLock()  # a plugin may commit from its own threads
        self._written_at = 0.0  # time.monotonic() of the last checkpoint file write
        self._unwritten = False  # a plugin commit not yet in the file
        self.events = EventLog(self.output_dir, sink)
        self.processed: dict[str, int] = {}
        self.skipped: dict[str, int] = {}
        self.current: LiveItem | None = None
        self.started = time.time()
        self._last_item = time.monotonic()
        self._last_lag = 0.0
        self._latency: list[float] = []
        self.sources: dict[str, Source] = {}
        try:
            self._open_sources()
        except BaseException:
            self.close()
            raise
        if self.resumed:
            self.log.info("live: resuming after %s", ", ".join(f"{k} #{v}" for k, v in self.resumed.items()))

    # -- setup ---------------------------------------------------------------------------------
    def _read_checkpoint(self) -> tuple[dict[str, int], dict[str, Any], dict[str, int]]:
        import json

        path = self.output_dir / CHECKPOINT
        if not path.exists():
            return {}, {}, {}
        document = json.loads(path.read_text("utf-8"))
        return ({k: int(v) for k, v in document.get("sources", {}).items()}, dict(document.get("states", {})),
                {k: int(v) for k, v in document.get("received", {}).items()})

    def _open_sources(self) -> None:
        from .folder import FolderSource

        spec = self.spec
        for name, folder in spec.watch.items():
            self.sources[name] = FolderSource(
                name, folder, self.state_dir / f"{name}.index", pattern=spec.pattern, completion=spec.completion,
                settle=spec.settle, poll=spec.poll, checkpoint=self.checkpoint.get(name, 0), logger=self.log)
        for name, address in spec.zmq.items():
            from .zmq_source import ZmqSource

            self.sources[name] = ZmqSource(
                name, address, self.state_dir / "spool",
                memory_bytes=int(spec.memory_mb * 2**20), spool_bytes=int(spec.spool_mb * 2**20),
                end=spec.zmq_end.encode(), checkpoint=self.checkpoint.get(name, 0), journal=spec.journal,
                received=self._received.get(name, 0), logger=self.log)
        for name, bspec in spec.bluesky.items():
            from .bluesky_source import BlueskySource

            self.sources[name] = BlueskySource(name, bspec, next_seq=self.checkpoint.get(name, 0) + 1,
                                               logger=self.log)
        for source in self.sources.values():
            source.start()

    # -- the plugin's side ---------------------------------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        """Ask the session to stop after the current item (Ctrl-C, SIGTERM)."""
        self.stop_reason = self.stop_reason or reason
        self._stop.set()

    def items(self, name: str | None = None) -> Iterator[LiveItem]:
        """Items of source ``name`` (the only one when None), in sequence order, until stopped."""
        source = self._source(name)
        total = lambda: sum(self.processed.values())  # noqa: E731
        while True:
            reason = self._stop_reason(source, total())
            if reason:
                self.stop_reason = self.stop_reason or reason
                self.report(force=True)
                return
            item = source.get(timeout=min(0.2, self.idle or 0.2))
            self.report()
            if item is None:
                self._write_late_commits()
                continue
            if item.seq <= self.checkpoint.get(source.name, 0):
                self.skipped[source.name] = self.skipped.get(source.name, 0) + 1
                continue
            self.current, self._last_item = item, time.monotonic()
            yield item
            self._finish(item)

    def resume_state(self, name: str) -> Any:
        """The state a plugin committed with source ``name``'s checkpoint in a previous run
        (None on a fresh run)."""
        return self.states.get(name)

    def commit(self, name: str, seq: int, state: Any = None, *, force: bool = False) -> None:
        """Checkpoint source ``name`` at ``seq`` with the plugin's resume ``state`` (JSON).

        From the first call on, the session no longer checkpoints that source by itself: a
        retry replays every item after ``seq`` and the plugin reads ``resume_state(name)``.
        Call it only once the outputs up to ``seq`` are written (flushed). The checkpoint
        file is written at most every ``CHECKPOINT_EVERY_S`` (``force``: now) and when the
        session closes; the source frees its items (journal) only once the file holds them,
        so a retry after a crash replays from the last written commit, never past it."""
        with self._checkpoint_lock:
            self._manual.add(name)
            self.checkpoint[name] = int(seq)
            self.states[name] = state
            self._unwritten = True
            if force or time.monotonic() - self._written_at >= CHECKPOINT_EVERY_S:
                self._write_checkpoint()

    def _write_checkpoint(self) -> None:
        with self._checkpoint_lock:
            received = {name: source.received for name, source in self.sources.items()
                        if hasattr(source, "received")}
            write_json(self.output_dir / CHECKPOINT, {"sources": self.checkpoint, "states": self.states,
                                                      "received": received, "time": time.time()})
            self._written_at, self._unwritten = time.monotonic(), False
            for name in self._manual:  # what the file now holds may leave the sources
                self.sources[name].commit(self.checkpoint[name])

    def _write_late_commits(self) -> None:
        """While no item comes, the plugin's last commits reach the file without waiting."""
        if self._unwritten and time.monotonic() - self._written_at >= CHECKPOINT_EVERY_S:
            self._write_checkpoint()

    def publish(self, name: str, data: Any) -> None:
        """Publish one result (small JSON data or arrays) for the live page."""
        item = self.current
        self.events.emit("live", name=name, seq=item.seq if item else None,
                         source=item.source if item else None,
                         latency=round(time.time() - item.arrived, 4) if item else None, data=data)

    # -- accounting ----------------------------------------------------------------------------
    def _source(self, name: str | None) -> Source:
        if name is None:
            if len(self.sources) != 1:
                raise InputError(f"this run has live sources {', '.join(self.sources)}; name one in "
                                 "ctx.live_items(NAME)")
            return next(iter(self.sources.values()))
        if name not in self.sources:
            raise InputError(f"no live source {name!r} in this run (sources: {', '.join(self.sources) or 'none'})",
                             pointer=f"/live/{name}", hint=f"give input {name!r} a live source: a watched folder or a "
                             "ZeroMQ address tcp://HOST:PORT")
        return self.sources[name]

    def _stop_reason(self, source: Source, done: int) -> str | None:
        if self._stop.is_set():
            return self.stop_reason or "interrupted"
        if self._cancel():
            return "cancelled"
        if self.spec.until is not None and done >= self.spec.until:
            return f"until {self.spec.until} items"
        if source.ended:
            return "end of run" if source.error is None else f"source failed: {source.error}"
        if self.idle and time.monotonic() - self._last_item > self.idle and not source.waiting():
            return f"idle {self.idle:g} s"
        return None

    def _finish(self, item: LiveItem) -> None:
        self._latency.append(time.time() - item.arrived)
        self.processed[item.source] = self.processed.get(item.source, 0) + 1
        self.current = None
        if item.source in self._manual:
            self._write_late_commits()
            return
        with self._checkpoint_lock:
            self.checkpoint[item.source] = item.seq
            self._write_checkpoint()
        self.sources[item.source].commit(item.seq)

    def lag(self) -> dict[str, Any]:
        """Items waiting and seconds behind, per source and in total."""
        now = time.time()
        per: dict[str, Any] = {}
        for name, source in self.sources.items():
            oldest = source.oldest()
            per[name] = {"waiting": source.waiting(), "seconds_behind": round(now - oldest, 3) if oldest else 0.0,
                         "processed": self.processed.get(name, 0), **source.counters.snapshot()}
        return {"waiting": sum(p["waiting"] for p in per.values()),
                "seconds_behind": max((p["seconds_behind"] for p in per.values()), default=0.0),
                "dropped": sum(p["dropped"] for p in per.values()), "lost": sum(p["lost"] for p in per.values()),
                "sources": per}

    def report(self, force: bool = False) -> None:
        """A ``lag`` event and a progress message, at most once a second."""
        if not force and time.monotonic() - self._last_lag < LAG_EVERY_S:
            return
        self._last_lag = time.monotonic()
        lag = self.lag()
        self.events.emit("lag", **lag)
        if self._progress:
            done = sum(self.processed.values())
            fraction = done / self.spec.until if self.spec.until else 0.0
            message = f"live: {done} done, {lag['waiting']} waiting, {lag['seconds_behind']:.1f} s behind"
            if lag["dropped"]:
                message += f", {lag['dropped']} DROPPED"
            if lag["lost"]:
                message += f", {lag['lost']} LOST in a crash"
            self._progress(min(fraction, 0.99), message)

    def summary(self) -> dict[str, Any]:
        """What the run received, processed, skipped on resume and dropped, and why it stopped."""
        import numpy as np

        lag = self.lag()
        latency = np.asarray(self._latency) if self._latency else None
        return {
            "stop": self.stop_reason, "seconds": round(time.time() - self.started, 3),
            "processed": sum(self.processed.values()), "dropped": lag["dropped"], "lost": lag["lost"],
            "waiting_at_stop": lag["waiting"], "checkpoint": dict(self.checkpoint),
            "resumed_after": self.resumed, "skipped_on_resume": self.skipped,
            "latency_s": None if latency is None else {
                "median": round(float(np.median(latency)), 4), "p95": round(float(np.percentile(latency, 95)), 4),
                "max": round(float(latency.max()), 4)},
            "sources": lag["sources"],
        }

    def close(self) -> None:
        if getattr(self, "_unwritten", False):
            self._write_checkpoint()  # the plugin's threads are done: its last commit is final
        for source in self.sources.values():
            source.close()
        if hasattr(self, "events"):
            self.events.emit("live_end", stop=self.stop_reason)
            self.events.close()
