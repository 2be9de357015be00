"""Keeps ``hicli serve``'s children alive: the embedded redis-server and the workers.

A child that exits is started again after a backoff (``backoff_base`` doubling per quick
death, at most ``backoff_max``), at most ``max_per_minute`` times in any 60 s; past that it
waits for the window to clear (state ``limited``, which health reports as not ok). Every
restart is logged (logger ``hisci.supervisor``) and kept in ``<data dir>/run/supervisor.json``,
which ``GET /health`` shows under ``supervisor``. ``stop()`` stops the workers first (each
interrupts its running job, see :class:`hisci.jobs.worker.HisciWorker`), then Redis.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..storage import read_json, write_json

log = logging.getLogger("hisci.supervisor")
STATUS_FILE = ("run", "supervisor.json")
#: A child that ran at least this long before it died starts again after ``backoff_base``.
HEALTHY_AFTER_S = 10.0


@dataclass
class Child:
    """One supervised process; ``start`` returns the new ``Popen`` (or raises)."""

    name: str
    start: Callable[[], subprocess.Popen]
    stop_timeout: float = 10.0
    process: subprocess.Popen | None = None
    state: str = "starting"
    started_at: float = 0.0
    next_try: float = 0.0
    quick_deaths: int = 0
    total_restarts: int = 0
    last_exit: int | None = None
    recent: deque = field(default_factory=deque)

    def summary(self) -> dict[str, Any]:
        return {"state": self.state, "pid": self.process.pid if self.process else None,
                "restarts": self.total_restarts, "restarts_last_minute": len(self.recent),
                "last_exit": self.last_exit}


class Supervisor:
    """Start children with :meth:`add`, then :meth:`start` a thread that checks them every
    ``interval`` seconds; :meth:`stop` ends the thread and stops the children."""

    def __init__(self, data_dir: Path, max_per_minute: int = 5, backoff_base: float = 0.5,
                 backoff_max: float = 30.0, interval: float = 0.5) -> None:
        self.data_dir = Path(data_dir)
        self.max_per_minute, self.backoff_base, self.backoff_max = max_per_minute, backoff_base, backoff_max
        self.interval = interval
        self.children: list[Child] = []
        self.events: deque[dict[str, Any]] = deque(maxlen=50)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add(self, name: str, start: Callable[[], subprocess.Popen], stop_timeout: float = 10.0) -> Child:
        """Start ``name`` now (an error at first start is raised to the caller)."""
        child = Child(name, start, stop_timeout)
        child.process = start()
        child.state, child.started_at = "running", time.monotonic()
        self.children.append(child)
        self._write()
        return child

    # -- the loop ---------------------------------------------------------------------------
    def check(self) -> list[str]:
        """One pass: restart children that died (when their backoff and limit allow)."""
        restarted = []
        now = time.monotonic()
        with self._lock:
            before = [c.summary() for c in self.children]
            for child in self.children:
                while child.recent and now - child.recent[0] > 60.0:
                    child.recent.popleft()
                if child.state == "running" and child.process is not None and child.process.poll() is not None:
                    self._died(child, now)
                if child.state in ("backoff", "limited") and now >= child.next_try:
                    if len(child.recent) >= self.max_per_minute:
                        child.state, child.next_try = "limited", child.recent[0] + 60.0
                        continue
                    if self._restart(child, now):
                        restarted.append(child.name)
            changed = before != [c.summary() for c in self.children]
        if changed:
            self._write()
        return restarted

    def _died(self, child: Child, now: float) -> None:
        child.last_exit = child.process.returncode if child.process else None
        lived = now - child.started_at
        child.quick_deaths = child.quick_deaths + 1 if lived < HEALTHY_AFTER_S else 0
        delay = min(self.backoff_base * 2 ** max(child.quick_deaths - 1, 0), self.backoff_max)
        child.state, child.next_try = "backoff", now + delay
        log.warning("%s exited with %s after %.1f s; restarting in %.1f s", child.name, child.last_exit, lived, delay)
        self._event(child, "exited", exit_code=child.last_exit, restart_in_s=round(delay, 2))

    def _restart(self, child: Child, now: float) -> bool:
        child.recent.append(now)
        try:
            child.process = child.start()
        except Exception as exc:  # noqa: BLE001 - a failed start is one more death
            log.error("%s failed to start: %s", child.name, exc)
            self._event(child, "start failed", error=str(exc)[:300])
            child.started_at = now
            child.process = None
            child.quick_deaths += 1
            delay = min(self.backoff_base * 2 ** (child.quick_deaths - 1), self.backoff_max)
            child.state, child.next_try = "backoff", now + delay
            return False
        child.state, child.started_at = "running", time.monotonic()
        child.total_restarts += 1
        log.warning("%s restarted (pid %s, restart %d)", child.name, child.process.pid, child.total_restarts)
        self._event(child, "restarted", pid=child.process.pid)
        return True

    def _event(self, child: Child, action: str, **details: Any) -> None:
        self.events.append({"time": time.time(), "child": child.name, "action": action, **details})

    def start(self) -> Supervisor:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    self.check()
                except Exception:  # noqa: BLE001 - the supervisor must outlive any one failure
                    log.exception("supervisor check failed")
            self._stop_children()

        self._thread = threading.Thread(target=loop, daemon=True, name="hisci-supervisor")
        self._thread.start()
        return self

    def stop(self) -> None:
        """No more restarts; workers get SIGTERM (and SIGKILL after their timeout), then the
        rest. Children are stopped by the thread that started them (PR_SET_PDEATHSIG is tied
        to that thread), so nothing outlives it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(sum(c.stop_timeout for c in self.children) + 5)
        else:
            self._stop_children()

    def _stop_children(self) -> None:
        with self._lock:
            for child in self.children:
                child.state = "stopping"
            for child in self.children:  # workers were added after redis: stop them first
                if child.name.startswith("worker"):
                    _terminate(child)
            for child in self.children:
                if not child.name.startswith("worker"):
                    _terminate(child)
                child.state = "stopped"
        self._write()

    # -- status -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "updated": time.time(),
                "max_restarts_per_minute": self.max_per_minute,
                "children": {c.name: c.summary() for c in self.children}, "events": list(self.events)}

    def _write(self) -> None:
        try:
            write_json(self.data_dir.joinpath(*STATUS_FILE), self.status())
        except OSError as exc:
            log.warning("cannot write the supervisor status: %s", exc)


def _terminate(child: Child) -> None:
    process = child.process
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(child.stop_timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The status ``hicli serve``'s supervisor wrote, or None (none, or its serve is gone)."""
    path = Path(data_dir).joinpath(*STATUS_FILE)
    try:
        status = read_json(path)
    except (OSError, ValueError):
        return None
    if status.get("host") == socket.gethostname() and not _alive(int(status.get("pid", 0))):
        return None
    return status


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
