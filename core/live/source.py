"""The base of every live source: a producer thread filling a queue of ready items."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque

from .items import Counters, LiveItem


class Source(ABC):
    """A live source: ``start`` a producer thread, ``get`` ready items in order, ``close``.

    Subclasses implement ``_produce`` (one round of work; returns False when the source has
    ended) and may override ``_take`` (how a ready item leaves the buffer).

    Parameters
    ----------
    name : the live input name.
    next_seq : the sequence number the next new item gets (checkpoint + 1 on a resume).
    """

    def __init__(self, name: str, next_seq: int = 1, logger: logging.Logger | None = None) -> None:
        self.name = name
        self.next_seq = next_seq
        self.counters = Counters()
        self.log = logger or logging.getLogger(f"hisci.live.{name}")
        self._ready: deque[LiveItem] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ended = False
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # -- producer side -----------------------------------------------------------------------
    def start(self) -> Source:
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"live-{self.name}")
        self._thread.start()
        return self

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                if self._produce() is False:
                    break
        except BaseException as exc:  # noqa: BLE001 - reported to the consumer by get()
            self.log.exception("live source %s failed", self.name)
            self.error = exc
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    @abstractmethod
    def _produce(self) -> bool | None:
        """One round of reading from the source; False ends the source."""

    def _new_seq(self) -> int:
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        return seq

    def _push(self, item: LiveItem) -> None:
        with self._cond:
            self._ready.append(item)
            self._cond.notify_all()

    # -- consumer side -----------------------------------------------------------------------
    def get(self, timeout: float) -> LiveItem | None:
        """The next ready item, or None after ``timeout`` seconds (or when ended and empty)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._has_ready():
                if self._ended:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
        if self.error is not None and not self._has_ready():
            raise RuntimeError(f"live source {self.name!r} failed: {self.error}") from self.error
        return self._take()

    def _has_ready(self) -> bool:
        return bool(self._ready)

    def _take(self) -> LiveItem | None:
        with self._cond:
            return self._ready.popleft() if self._ready else None

    def commit(self, seq: int) -> None:
        """Every item up to ``seq`` is finished (checkpointed); a source may free what it kept."""
        return None

    @property
    def ended(self) -> bool:
        """The producer stopped (end-of-run, or closed) and nothing is left to take."""
        with self._cond:
            return self._ended and not self._has_ready()

    def waiting(self) -> int:
        """Items received and not yet taken."""
        with self._cond:
            return len(self._ready)

    def oldest(self) -> float | None:
        """Arrival time of the oldest waiting item (None when none waits)."""
        with self._cond:
            return self._ready[0].arrived if self._ready else None

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)
