"""N-Hit trigger over hit arrays: per-fragment processing and the ownership rule.

A fragment is processed on all of its hits (core ``[a, b)`` and overlap
``[b, b + O)``) and keeps the events whose start lies in ``[a + G, b + G)`` with
``G = O / 2`` (nhit.md section 3.3); the first fragment has no lower bound and the
last no upper bound. Concatenated in fragment order, the kept events equal the
whole-stream result exactly, provided every kept event is short enough; this
module checks that condition on every fragment and raises instead of writing a
wrong event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .hitstream import ED, HIT_DTYPE
from .kernel import NO_TIME, BucketGrid, Ranges, scan_hits, select_hits

TRIGGER_MODES = {"ed": 1, "ed+md": 2}
"""Trigger mode -> event type tag: ED hits decide (1) or ED and MD hits decide (2)."""


@dataclass(frozen=True)
class TriggerConfig:
    """Parameters of the N-Hit rule.

    Parameters
    ----------
    threshold : int
        ``N``: an event opens when a window holds more than N decision hits.
    window_ns : int
        ``Tw``, window width in ns.
    mode : {"ed", "ed+md"}
        Which hits decide; all ED and MD hits in the range are packed either way.
    """

    threshold: int = 20
    window_ns: int = 400
    mode: str = "ed"

    def __post_init__(self) -> None:
        if isinstance(self.threshold, bool) or int(self.threshold) != self.threshold \
                or self.threshold <= 0:
            raise ValueError(f"threshold N must be an integer > 0, got {self.threshold!r}")
        if isinstance(self.window_ns, bool) or int(self.window_ns) != self.window_ns \
                or self.window_ns <= 0:
            raise ValueError(f"window_ns must be an integer > 0 (ns), got {self.window_ns!r}")
        if self.mode not in TRIGGER_MODES:
            raise ValueError(f"trigger mode {self.mode!r} is not one of {sorted(TRIGGER_MODES)}")
        object.__setattr__(self, "threshold", int(self.threshold))
        object.__setattr__(self, "window_ns", int(self.window_ns))

    @property
    def type_tag(self) -> int:
        """Event type tag written to the event header (1 or 2)."""
        return TRIGGER_MODES[self.mode]


@dataclass
class EventBlock:
    """Events found in one fragment (or a whole stream), not yet numbered.

    Attributes
    ----------
    time, stop : ndarray of int64, shape (E,)
        Event time ``t_s`` and exclusive range end ``t_e + Tw``, ns.
    n_max : ndarray of int64, shape (E,)
        Largest window count while open.
    n_hits : ndarray of int64, shape (E,)
        Hits packed into each event (ED + MD).
    n_ed : ndarray of int64, shape (E,)
        ED hits among them.
    hits : ndarray of HIT_DTYPE, shape (sum(n_hits),)
        Packed hits, event after event, each event sorted by ``(time, det, channel)``.
    """

    time: np.ndarray
    stop: np.ndarray
    n_max: np.ndarray
    n_hits: np.ndarray
    n_ed: np.ndarray
    hits: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def empty(cls) -> EventBlock:
        z = np.empty(0, np.int64)
        return cls(z, z, z, z, z, np.empty(0, HIT_DTYPE))

    @classmethod
    def concat(cls, blocks: list[EventBlock]) -> EventBlock:
        """Join blocks in the given (time) order."""
        if not blocks:
            return cls.empty()
        return cls(*(np.concatenate([getattr(b, f) for b in blocks])
                     for f in ("time", "stop", "n_max", "n_hits", "n_ed", "hits")))


class BufferPool:
    """Reusable per-worker buffers (the paper's memory pool, numpy flavour).

    Each named buffer is kept and grown by doubling, so a worker stops allocating
    once it has seen its largest fragment.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, size: int, dtype=np.int64) -> np.ndarray:
        """A buffer of at least ``size`` elements (contents undefined)."""
        buf = self._buffers.get(name)
        if buf is None or len(buf) < size or buf.dtype != np.dtype(dtype):
            cap = max(size, 2 * len(buf) if buf is not None else 0, 1024)
            buf = self._buffers[name] = np.empty(cap, dtype)
        return buf

    @property
    def nbytes(self) -> int:
        """Bytes held by the pool."""
        return sum(b.nbytes for b in self._buffers.values())


def find_ranges(hits: np.ndarray, config: TriggerConfig, pool: BufferPool | None = None
                ) -> tuple[Ranges, BucketGrid | None]:
    """Run the window state machine over the decision hits of ``hits``.

    Hits need not be ordered across channels: :func:`~.kernel.scan_hits` puts the
    decision hits that matter in time order (the same ordered times as the
    paper's merge of the per-channel ordered runs).

    Returns
    -------
    ranges : Ranges
    grid : BucketGrid or None
        Pass to :func:`pack_events`.
    """
    pool = pool or BufferPool()
    return scan_hits(hits, config.threshold, config.window_ns, config.mode == "ed+md", pool.get)


def pack_events(hits: np.ndarray, ranges: Ranges, pool: BufferPool | None = None,
                grid: BucketGrid | None = None) -> EventBlock:
    """Collect every ED and MD hit inside each range, sorted by ``(time, det, channel)``."""
    if len(ranges) == 0:
        return EventBlock.empty()
    pool = pool or BufferPool()
    idx = select_hits(hits["time"], ranges, grid, pool.get)
    packed = np.asarray(hits[idx])
    packed = packed[np.lexsort((packed["channel"], packed["det"], packed["time"]))]
    bounds = np.searchsorted(packed["time"], ranges.start, "left")
    n_hits = np.diff(np.append(bounds, len(packed)))
    is_ed = (packed["det"] == ED).astype(np.int64)
    n_ed = np.add.reduceat(is_ed, bounds) if len(packed) else np.zeros(len(ranges), np.int64)
    n_ed = np.where(n_hits > 0, n_ed, 0)
    return EventBlock(ranges.start.copy(), ranges.stop.copy(), ranges.n_max.copy(),
                      n_hits.astype(np.int64), n_ed.astype(np.int64), packed)


def trigger_hits(hits: np.ndarray, config: TriggerConfig) -> EventBlock:
    """Whole-array trigger: every event in ``hits`` (the single-pass reference).

    Parameters
    ----------
    hits : ndarray of HIT_DTYPE, shape (n,)
        Each hit once (e.g. :meth:`HitStream.all_hits`), any order across channels.
    config : TriggerConfig

    Returns
    -------
    EventBlock
    """
    hits = np.asarray(hits, HIT_DTYPE)
    ranges, grid = find_ranges(hits, config)
    return pack_events(hits, ranges, grid=grid)


class OverlapTooShortError(ValueError):
    """An event is too long for the stream's fragment overlap (ownership would be unsafe)."""


def own_ranges(ranges: Ranges, config: TriggerConfig, *, begin_ns: int, end_ns: int,
               overlap_ns: int, first: bool, last: bool) -> Ranges:
    """Apply the ownership rule of nhit.md 3.3 and check that it is exact here.

    Parameters
    ----------
    ranges : Ranges
        Scan result over the fragment's core ``[begin_ns, end_ns)`` plus overlap.
    begin_ns, end_ns : int
        Fragment core, ns.
    overlap_ns : int
        ``O``, ns; ``G = O // 2``.
    first, last : bool
        Whether this is the first / last fragment (no lower / upper bound).

    Returns
    -------
    Ranges
        The events this fragment owns.

    Raises
    ------
    OverlapTooShortError
        When a kept event could differ from the whole-stream result: its closing
        hit's window (and any merge it could take part in) reaches past the data,
        or nothing resets the state machine between the fragment start and the
        first kept event.
    """
    g = overlap_ns // 2
    tw = config.window_ns
    keep = np.ones(len(ranges), bool)
    if not first:
        keep &= ranges.start >= begin_ns + g
    if not last:
        keep &= ranges.start < end_ns + g
    owned = ranges.select(keep)
    if len(owned) == 0:
        return owned
    data_end = end_ns + overlap_ns
    if not last:
        late = (owned.close == NO_TIME) | (owned.close > data_end - 2 * tw)
        if late.any():
            t_s = int(owned.start[np.argmax(late)])
            raise OverlapTooShortError(
                f"event at t = {t_s} ns does not end {2 * tw} ns before the end of the "
                f"fragment overlap ({data_end} ns): the stream's overlap O = {overlap_ns} ns is "
                f"too short for events this long; raise the threshold or rewrite the stream "
                f"with a larger overlap"
            )
    if not first and ranges.sync > int(owned.start[0]) - tw:
        raise OverlapTooShortError(
            f"no window below N = {config.threshold} between the fragment start {begin_ns} ns "
            f"and the first owned event at {int(owned.start[0])} ns: the overlap "
            f"O = {overlap_ns} ns is too short to resynchronise; raise the threshold or the overlap"
        )
    return owned


def process_fragment(hits: np.ndarray, config: TriggerConfig, *, begin_ns: int, end_ns: int,
                     overlap_ns: int, first: bool, last: bool,
                     pool: BufferPool | None = None) -> EventBlock:
    """Trigger one fragment (core + overlap hits) and pack the events it owns."""
    pool = pool or BufferPool()
    ranges, grid = find_ranges(hits, config, pool)
    owned = own_ranges(ranges, config, begin_ns=begin_ns, end_ns=end_ns,
                       overlap_ns=overlap_ns, first=first, last=last)
    return pack_events(hits, owned, pool, grid)
