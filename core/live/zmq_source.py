"""ZeroMQ source: messages from a PULL (no loss: PUSH blocks at the high-water mark) or SUB
socket, kept in memory up to a budget and written to an on-disk journal (bounded; over the
limit a message is dropped, counted, never silent): every message before it is handed on
(``journal="always"``), or only those over the memory budget (``"behind"``: the backlog
spills to disk when processing falls behind). A retry replays the journal's entries after
the checkpoint before it reads the socket; in ``"behind"`` mode the messages that were only
in memory at a crash are counted as ``lost`` when the checkpoint had seen them."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from .items import LiveItem
from .journal import Journal
from .source import Source
from .spec import zmq_endpoint


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
    journal_dir : the journal's folder (in the job folder).
    memory_bytes, spool_bytes : the in-memory backlog and the on-disk journal budgets.
    checkpoint : the last finished sequence number of a previous run; the journal's later
        entries are replayed first (counted as ``replayed``).
    journal : ``always`` (write-ahead: every message on disk before it is processed) or
        ``behind`` (only messages over ``memory_bytes`` go to disk).
    received : the last sequence number a previous run had received when it wrote its
        checkpoint; those after ``checkpoint`` missing from the journal were lost in a crash.
    """

    def __init__(self, name: str, address: str, journal_dir: Path, *, memory_bytes: int = 256 << 20,
                 spool_bytes: int = 4 << 30, end: bytes = b"", checkpoint: int = 0, journal: str = "always",
                 received: int = 0, logger=None) -> None:
        super().__init__(name, checkpoint + 1, logger)
        zmq = _zmq()
        self.kind, bind, self.url = zmq_endpoint(address)
        self.memory_bytes, self.end = int(memory_bytes), end
        self.write_ahead = journal == "always"
        self._memory = 0
        # (seq, frame or None, journal reference or None, arrival)
        self._frames: deque[tuple[int, object, object, float]] = deque()
        self._journal = Journal(journal_dir, name, spool_bytes)
        self._committed = checkpoint
        self._ended_by_replay = False
        for seq, ref, arrived in self._journal.recover(checkpoint):
            self._frames.append((seq, None, ref, arrived))
            self.next_seq = max(self.next_seq, seq + 1)
            if self.end and self._journal.read(ref)[:len(self.end)] == self.end:
                self._ended_by_replay = True
        self.counters.add(replayed=len(self._frames))
        if self._frames:
            self.log.info("live.zmq.%s: replaying %d received messages (#%d..#%d) from the journal", name,
                          len(self._frames), self._frames[0][0], self._frames[-1][0])
        lost = set(range(checkpoint + 1, max(received, self.next_seq - 1) + 1)) - {f[0] for f in self._frames}
        if lost:  # held only in memory ("behind" mode) when the previous run died
            self.next_seq = max(self.next_seq, received + 1)
            self.counters.add(lost=len(lost))
            self.log.warning("live.zmq.%s: %d messages received before the crash were not in the journal and "
                             "are LOST (#%d..#%d); journal=always writes every message first", name, len(lost),
                             min(lost), max(lost))
        self.peak_waiting = len(self._frames)
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PULL if self.kind == "pull" else zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, 1000)
        self._sock.setsockopt(zmq.LINGER, 0)
        if self.kind == "sub":
            self._sock.setsockopt(zmq.SUBSCRIBE, b"")
        (self._sock.bind if bind else self._sock.connect)(self.url)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)

    def _produce(self) -> bool | None:
        if self._ended_by_replay:  # the end-of-run already arrived before the crash
            return False
        if not self._poller.poll(100):
            self._journal.trim(self._committed)
            return None
        zmq = _zmq()
        while True:
            try:
                frame = self._sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return None
            now = time.time()
            data = frame.buffer
            seq = self._new_seq()
            last = bool(self.end) and data[:len(self.end)] == self.end
            self.counters.add(received=1, bytes=len(data))
            self._store(seq, frame, data, now)
            if last:
                return False

    def _store(self, seq: int, frame, data, now: float) -> None:
        size = len(data)
        with self._cond:  # only this thread adds to the memory held: a fit stays a fit
            fits = self._memory + size <= self.memory_bytes
        ref = None
        if self.write_ahead or not fits:
            self._journal.trim(self._committed)  # finished segments go first, making room
            ref = self._journal.append(data, seq, now)  # on disk before anyone processes it
            if ref is None:
                self.counters.add(dropped=1, dropped_bytes=size)
                dropped = self.counters.values["dropped"]
                if dropped in (1, 10, 100, 1000) or dropped % 10000 == 0:
                    self.log.warning("live.zmq.%s: backlog over the journal's %d MB: dropped %d messages",
                                     self.name, self._journal.limit >> 20, dropped)
                return
        with self._cond:
            if fits:
                self._memory += size
            else:  # over the memory budget: read back from the journal when its turn comes
                frame = None
                self.counters.add(spooled=1)
            self._frames.append((seq, frame, ref, now))
            self.peak_waiting = max(self.peak_waiting, len(self._frames))
            self._cond.notify_all()

    def _has_ready(self) -> bool:
        return bool(self._frames)

    def _take(self) -> LiveItem | None:
        with self._cond:
            if not self._frames:
                return None
            seq, frame, ref, arrived = self._frames.popleft()
            if frame is not None:
                data = frame.buffer
                self._memory -= len(data)
        if frame is None:  # the journal's disk read runs outside the lock
            data = self._journal.read(ref)
        last = bool(self.end) and data[:len(self.end)] == self.end
        return LiveItem(seq, self.name, data=data, arrived=arrived, last=last, meta={"size": len(data)})

    def commit(self, seq: int) -> None:
        """Every message up to ``seq`` is finished: its journal segments may go (the receiver
        thread deletes them between messages, off the plugin's path)."""
        self._committed = max(self._committed, seq)

    @property
    def received(self) -> int:
        """The last sequence number received (recorded with each checkpoint)."""
        return self.next_seq - 1

    @property
    def journal_bytes(self) -> int:
        return self._journal.bytes

    def waiting(self) -> int:
        with self._cond:
            return len(self._frames)

    def oldest(self) -> float | None:
        with self._cond:
            return self._frames[0][3] if self._frames else None

    def close(self) -> None:
        super().close()
        self._sock.close(0)
        self._journal.close(self._committed)
