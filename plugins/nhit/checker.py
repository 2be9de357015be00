"""The paper's format checker: validate an event file against nhit.md section 4.1.

:func:`check_event_file` walks the file, reports the first violation with its
byte offset and field, and gathers per-event statistics. :func:`read_event_file`
is the strict reader built on it (raises on the first violation).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .eventfile import (
    EVENT_HEADER_SIZE,
    EVENT_MARKER,
    FILE_HEADER_DTYPE,
    FILE_HEADER_SIZE,
    FORMAT_VERSION,
    NAME_FIELD_SIZE,
)
from .hitstream import ED, HIT_DTYPE
from .trigger import EventBlock

_EVENT = struct.Struct("<IIIIIIqI")


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (byte offset, field, event number) and what."""

    offset: int
    field: str
    message: str
    event: int | None = None

    def __str__(self) -> str:
        where = f"event {self.event}, " if self.event is not None else ""
        return f"byte {self.offset} ({where}{self.field}): {self.message}"


@dataclass
class CheckReport:
    """Result of :func:`check_event_file`.

    ``violation`` is the first violation in file order (None when valid); the
    statistics cover the events read before it.
    """

    path: Path
    violation: Violation | None
    run_number: int = 0
    start_ns: int = 0
    end_ns: int = 0
    name: str = ""
    offsets: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    times: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    type_tags: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    n_hits: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    n_ed: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    hits: np.ndarray = field(default_factory=lambda: np.empty(0, HIT_DTYPE))

    @property
    def valid(self) -> bool:
        return self.violation is None

    @property
    def events(self) -> int:
        return len(self.times)

    def summary(self) -> dict:
        """JSON-ready statistics and the first violation."""
        span_s = (self.end_ns - self.start_ns) * 1e-9
        n_hits = int(self.n_hits.sum())
        n_ed = int(self.n_ed.sum())
        return {
            "valid": self.valid,
            "violation": None if self.violation is None else {
                "offset": self.violation.offset, "field": self.violation.field,
                "event": self.violation.event, "message": self.violation.message},
            "run_number": self.run_number, "file_name": self.name,
            "start_ns": self.start_ns, "end_ns": self.end_ns,
            "events": self.events, "hits": n_hits, "ed_hits": n_ed, "md_hits": n_hits - n_ed,
            "event_rate_hz": self.events / span_s if span_s > 0 else None,
            "mean_hits_per_event": n_hits / self.events if self.events else 0.0,
            "mean_ed_hits_per_event": n_ed / self.events if self.events else 0.0,
            "type_tags": {str(k): int(v) for k, v in
                          zip(*np.unique(self.type_tags, return_counts=True))},
        }


def check_event_file(path, threshold: int | None = None, *, keep_hits: bool = False
                     ) -> CheckReport:
    """Validate an event file; report the first violation with its byte offset and field.

    Parameters
    ----------
    path : path-like
        The event file.
    threshold : int, optional
        The trigger's ``N``; when given, every type-1 event must hold more than N
        ED hits (type 2: more than N hits).
    keep_hits : bool
        Keep every hit record in ``report.hits`` (for :func:`read_event_file`).

    Returns
    -------
    CheckReport

    Notes
    -----
    Rules (nhit.md 4.1): header fields consistent (version 1, name size <= 200,
    padding and reserved bytes zero, end >= start); every event starts with the
    marker, has header length 36, a total length that fits in the file and leaves
    a payload that is a multiple of 16; type tag 1 or 2; event numbers consecutive
    from 0; event times non-decreasing and within the file's time range; hits in
    an event ordered by ``(time, det, channel)`` with det 0 or 1; the smallest ED
    time equals the event time (type 2: the smallest hit time); no trailing bytes.
    """
    path = Path(path)
    size = path.stat().st_size
    data = np.memmap(path, np.uint8, mode="r") if size else np.empty(0, np.uint8)
    report = CheckReport(path, None)
    bad = _check_file_header(data, report)
    if bad is not None:
        report.violation = bad
        return report
    offsets, payloads, bad = _walk_events(data, report)
    hit_bad = _check_hits(data, report, offsets, payloads, threshold, keep_hits)
    candidates = [v for v in (bad, hit_bad) if v is not None]
    report.violation = min(candidates, key=lambda v: v.offset) if candidates else None
    return report


def _check_file_header(data: np.ndarray, report: CheckReport) -> Violation | None:
    if len(data) < FILE_HEADER_SIZE:
        return Violation(len(data), "file header",
                         f"file is {len(data)} bytes, shorter than the 256-byte file header")
    h = data[:FILE_HEADER_SIZE].view(FILE_HEADER_DTYPE)[0]
    report.run_number = int(h["run_number"])
    report.start_ns, report.end_ns = int(h["start_ns"]), int(h["end_ns"])
    if int(h["version"]) != FORMAT_VERSION:
        return Violation(0, "version", f"format version {int(h['version'])}, expected 1")
    if report.end_ns < report.start_ns:
        return Violation(16, "end time",
                         f"file end time {report.end_ns} ns < start time {report.start_ns} ns")
    size = int(h["name_size"])
    if size > NAME_FIELD_SIZE:
        return Violation(224, "file name size", f"name size {size} > {NAME_FIELD_SIZE}")
    name = bytes(data[24 : 24 + NAME_FIELD_SIZE])
    if any(name[size:]):
        pos = size + next(i for i, b in enumerate(name[size:]) if b)
        return Violation(24 + pos, "file name padding", "bytes after the file name must be zero")
    try:
        report.name = name[:size].decode("utf-8")
    except UnicodeDecodeError as exc:
        return Violation(24 + exc.start, "file name", "file name is not valid UTF-8")
    reserved = data[228:FILE_HEADER_SIZE]
    if reserved.any():
        return Violation(228 + int(np.argmax(reserved != 0)), "reserved",
                         "reserved header bytes must be zero")
    return None


def _walk_events(data: np.ndarray, report: CheckReport):
    """Walk event headers; returns (event offsets, payload offsets, first violation)."""
    buf = memoryview(data)
    size = len(data)
    offsets, payloads, times, tags, counts = [], [], [], [], []
    pos, expected, last_time = FILE_HEADER_SIZE, 0, report.start_ns
    bad = None
    while pos < size:
        if size - pos < EVENT_HEADER_SIZE:
            bad = Violation(pos, "trailing bytes",
                            f"{size - pos} bytes after the last event, too short for an event "
                            "header")
            break
        marker, hlen, ext, total, tag, number, t, _ = _EVENT.unpack_from(buf, pos)
        ev = expected
        if marker != EVENT_MARKER:
            bad = Violation(pos, "marker", f"marker {marker:#010x}, expected {EVENT_MARKER:#010x}"
                            " (bytes ee 34 12 ee)", ev)
        elif hlen != EVENT_HEADER_SIZE:
            bad = Violation(pos + 4, "header length", f"header length {hlen}, expected 36", ev)
        elif total < EVENT_HEADER_SIZE + ext:
            bad = Violation(pos + 12, "total length",
                            f"total length {total} < header 36 + extension {ext}", ev)
        elif pos + total > size:
            bad = Violation(pos + 12, "total length",
                            f"total length {total} runs past the end of the file "
                            f"({size - pos} bytes left)", ev)
        elif (total - EVENT_HEADER_SIZE - ext) % HIT_DTYPE.itemsize:
            bad = Violation(pos + 12, "total length",
                            f"payload of {total - EVENT_HEADER_SIZE - ext} bytes is not a "
                            "multiple of the 16-byte hit record", ev)
        elif tag not in (1, 2):
            bad = Violation(pos + 16, "type tag", f"type tag {tag}, expected 1 or 2", ev)
        elif number != expected:
            bad = Violation(pos + 20, "event number",
                            f"event number {number}, expected {expected} (numbers are "
                            "consecutive from 0)", ev)
        elif t < last_time:
            what = "the previous event's" if expected else "the file start"
            bad = Violation(pos + 24, "event time",
                            f"event time {t} ns is before {what} time {last_time} ns", ev)
        elif t > report.end_ns:
            bad = Violation(pos + 24, "event time",
                            f"event time {t} ns is after the file end time {report.end_ns} ns", ev)
        if bad is not None:
            break
        offsets.append(pos)
        payloads.append(pos + EVENT_HEADER_SIZE + ext)
        times.append(t)
        tags.append(tag)
        counts.append((total - EVENT_HEADER_SIZE - ext) // HIT_DTYPE.itemsize)
        last_time = t
        expected += 1
        pos += total
    report.offsets = np.array(offsets, np.int64)
    report.times = np.array(times, np.int64)
    report.type_tags = np.array(tags, np.int64)
    report.n_hits = np.array(counts, np.int64)
    return report.offsets, np.array(payloads, np.int64), bad


def _check_hits(data: np.ndarray, report: CheckReport, offsets: np.ndarray,
                payloads: np.ndarray, threshold: int | None, keep_hits: bool = False,
                chunk_hits: int = 1 << 20) -> Violation | None:
    """Hit-level rules, a chunk of events at a time (memory stays bounded)."""
    n_ev = len(offsets)
    counts = report.n_hits
    report.n_ed = np.zeros(n_ev, np.int64)
    found: list[Violation] = []
    kept = []
    cum = np.concatenate(([0], np.cumsum(counts)))
    e0 = 0
    while e0 < n_ev:
        e1 = max(e0 + 1, int(np.searchsorted(cum, cum[e0] + chunk_hits, "right")) - 1)
        e1 = min(e1, n_ev)
        hits = _check_chunk(data, report, offsets, payloads, e0, e1, found)
        if keep_hits:
            kept.append(hits)
        e0 = e1
    if keep_hits:
        report.hits = np.concatenate(kept) if kept else np.empty(0, HIT_DTYPE)
    small = _first_small_event(report, offsets, threshold)
    if small is not None:
        found.append(small)
    return min(found, key=lambda v: v.offset) if found else None


def _check_chunk(data, report, offsets, payloads, e0, e1, found) -> np.ndarray:
    """Check the hits of events ``e0 .. e1 - 1``; append violations; return their hits."""
    counts = report.n_hits[e0:e1]
    rec = HIT_DTYPE.itemsize
    ev_of_hit = np.repeat(np.arange(e0, e1), counts)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(ev_of_hit)) - first[ev_of_hit - e0]
    hit_off = payloads[ev_of_hit] + rec * rank
    hits = np.asarray(data[(hit_off[:, None] + np.arange(rec)).ravel()]).view(HIT_DTYPE)
    if len(hits) == 0:
        return hits
    is_ed = hits["det"] == ED
    report.n_ed[e0:e1] = np.bincount(ev_of_hit - e0, weights=is_ed, minlength=e1 - e0)
    bad_det = np.flatnonzero(hits["det"] > 1)
    if len(bad_det):
        i = bad_det[0]
        found.append(Violation(int(hit_off[i]) + 10, "hit det",
                               f"hit det {int(hits['det'][i])}, expected 0 (ED) or 1 (MD)",
                               int(ev_of_hit[i])))
    key_t, key_d, key_c = hits["time"], hits["det"].astype(np.int64), hits["channel"]
    same = ev_of_hit[1:] == ev_of_hit[:-1]
    dt = key_t[1:] - key_t[:-1]
    dd = key_d[1:] - key_d[:-1]
    dc = key_c[1:].astype(np.int64) - key_c[:-1]
    disorder = same & ((dt < 0) | ((dt == 0) & ((dd < 0) | ((dd == 0) & (dc < 0)))))
    if disorder.any():
        i = int(np.argmax(disorder)) + 1
        found.append(Violation(int(hit_off[i]), "hit time order",
                               "hits in an event must be ordered by (time, det, channel)",
                               int(ev_of_hit[i])))
    # the smallest decision-hit time of each event must equal the event time
    big = np.iinfo(np.int64).max
    type2 = report.type_tags[ev_of_hit] == 2
    t_min = np.full(e1 - e0, big)
    np.minimum.at(t_min, ev_of_hit - e0, np.where(is_ed | type2, key_t, big))
    wrong = np.flatnonzero(t_min != report.times[e0:e1])
    if len(wrong):
        k = e0 + int(wrong[0])
        what = "smallest hit time" if report.type_tags[k] == 2 else "smallest ED hit time"
        got = "none" if t_min[k - e0] == big else f"{int(t_min[k - e0])} ns"
        found.append(Violation(int(offsets[k]) + 24, "event time",
                               f"event time {int(report.times[k])} ns != {what} ({got})", k))
    return hits


def _first_small_event(report: CheckReport, offsets: np.ndarray,
                       threshold: int | None) -> Violation | None:
    if threshold is None or len(offsets) == 0:
        return None
    count = np.where(report.type_tags == 2, report.n_hits, report.n_ed)
    small = np.flatnonzero(count <= threshold)
    if not len(small):
        return None
    k = int(small[0])
    what = "hits" if report.type_tags[k] == 2 else "ED hits"
    return Violation(int(offsets[k]) + 12, "hit count",
                     f"event holds {int(count[k])} {what}, the trigger needs more than "
                     f"N = {threshold}", k)


def read_event_file(path, threshold: int | None = None) -> tuple[CheckReport, EventBlock]:
    """Read a valid event file; raise ``ValueError`` naming the first violation.

    Returns
    -------
    report : CheckReport
    events : EventBlock
        Event times and hits (``stop`` and ``n_max`` are not stored in the file and
        are returned as -1).
    """
    report = check_event_file(path, threshold, keep_hits=True)
    if report.violation is not None:
        raise ValueError(f"{path}: {report.violation}")
    minus = np.full(report.events, -1, np.int64)
    return report, EventBlock(report.times, minus, minus.copy(), report.n_hits, report.n_ed,
                              np.array(report.hits))
