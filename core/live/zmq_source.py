"""ZeroMQ source: messages from a PULL (no loss: PUSH blocks at the high-water mark) or SUB
socket, buffered in memory up to a budget, then spooled to disk up to a limit, then dropped
(counted, never silent)."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from .items import LiveItem
from .source import Source
from .spec import zmq_endpoint
from .spool import Spool


def _zmq():
    try:
        import zmq
    except ImportError:  # pragma: no cover - the live extra is missing
        from ..errors import InputError

        raise InputError("ZeroMQ sources need pyzmq", hint="pip install 'hisci[live]'") from None
    return zmq


class ZmqSource(Source):
    """Every message becomes one item (``item.data``: the message bytes, a memoryview while in
    memory); ``seq`` counts received messages. A message starting with ``end`` (bytes, when
    given) is the end-of-run: it is yielded with ``last=True`` and the source stops.

    Parameters
    ----------
    address : ``[pull+|sub+][bind:]tcp://HOST:PORT``.
    spool_path : the spool file (in the job folder).
    memory_bytes, spool_bytes : the in-memory and on-disk backlog budgets.
    """

    def __init__(self, name: str, address: str, spool_path: Path, *, memory_bytes: int = 256 << 20,
                 spool_bytes: int = 4 << 30, end: bytes = b"", next_seq: int = 1, logger=None) -> None:
        super().__init__(name, next_seq, logger)
        zmq = _zmq()
        self.kind, bind, self.url = zmq_endpoint(address)
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PULL if self.kind == "pull" else zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, 1000)
        self._sock.setsockopt(zmq.LINGER, 0)
        if self.kind == "sub":
            self._sock.setsockopt(zmq.SUBSCRIBE, b"")
        (self._sock.bind if bind else self._sock.connect)(self.url)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self.memory_bytes, self.end = int(memory_bytes), end
        self._memory = 0
        self._frames: deque[tuple[int, object, float]] = deque()
        self._spool = Spool(spool_path, spool_bytes)
        self.peak_waiting = 0

    def _produce(self) -> bool | None:
        if not self._poller.poll(100):
            return None
        zmq = _zmq()
        while True:
            try:
                frame = self._sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return None
            now = time.time()
            data = frame.buffer
            size = len(data)
            seq = self._new_seq()
            last = bool(self.end) and bytes(data[:len(self.end)]) == self.end
            self.counters.add(received=1, bytes=size)
            self._store(seq, frame, data, size, now)
            if last:
                return False

    def _store(self, seq: int, frame, data, size: int, now: float) -> None:
        with self._cond:
            if not len(self._spool) and self._memory + size <= self.memory_bytes:
                self._frames.append((seq, frame, now))
                self._memory += size
                self.peak_waiting = max(self.peak_waiting, len(self._frames))
                self._cond.notify_all()
                return
        # over the memory budget (or already spooling, to keep the order): to disk, outside the lock
        stored = self._spool.put(data, seq, now)
        with self._cond:
            if stored:
                self.counters.add(spooled=1)
            else:
                self.counters.add(dropped=1, dropped_bytes=size)
                dropped = self.counters.values["dropped"]
                if dropped in (1, 10, 100, 1000) or dropped % 10000 == 0:
                    self.log.warning("live.zmq.%s: backlog over memory %d MB + spool %d MB: dropped %d messages",
                                     self.name, self.memory_bytes >> 20, self._spool.limit >> 20, dropped)
            self.peak_waiting = max(self.peak_waiting, len(self._frames) + len(self._spool))
            self._cond.notify_all()

    def _has_ready(self) -> bool:
        return bool(self._frames) or len(self._spool) > 0

    def _take(self) -> LiveItem | None:
        with self._cond:
            if self._frames:
                seq, frame, arrived = self._frames.popleft()
                data = frame.buffer
                self._memory -= len(data)
            elif not len(self._spool):
                return None
            else:
                frame = None
        if frame is None:  # the spool's disk read runs outside the lock
            data, seq, arrived = self._spool.get()
        last = bool(self.end) and bytes(data[:len(self.end)]) == self.end
        return LiveItem(seq, self.name, data=data, arrived=arrived, last=last, meta={"size": len(data)})

    def waiting(self) -> int:
        with self._cond:
            return len(self._frames) + len(self._spool)

    def oldest(self) -> float | None:
        with self._cond:
            if self._frames:
                return self._frames[0][2]
            return self._spool.oldest()

    def close(self) -> None:
        super().close()
        self._sock.close(0)
        self._spool.close()
