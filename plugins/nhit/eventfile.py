"""The event file (nhit.md section 4.1): 256-byte file header, then events.

Each event is a 36-byte header (marker ``ee 34 12 ee``, header length 0x24,
extension length, total length, type tag, event number, event time, stream
flag) followed by its hits as 16-byte records (:data:`HIT_DTYPE`). Little-endian.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .hitstream import HIT_DTYPE
from .trigger import EventBlock

FORMAT_VERSION = 1
FILE_HEADER_SIZE = 256
NAME_FIELD_SIZE = 200
EVENT_MARKER = 0xEE1234EE
EVENT_HEADER_SIZE = 36

FILE_HEADER_DTYPE = np.dtype(
    [
        ("version", "<u4"),
        ("run_number", "<u4"),
        ("start_ns", "<i8"),
        ("end_ns", "<i8"),
        ("name", f"S{NAME_FIELD_SIZE}"),
        ("name_size", "<u4"),
        ("reserved", "V28"),
    ]
)
EVENT_HEADER_DTYPE = np.dtype(
    [
        ("marker", "<u4"),
        ("header_length", "<u4"),
        ("extension_length", "<u4"),
        ("total_length", "<u4"),
        ("type_tag", "<u4"),
        ("number", "<u4"),
        ("time", "<i8"),
        ("stream", "<u4"),
    ]
)
assert FILE_HEADER_DTYPE.itemsize == FILE_HEADER_SIZE
assert EVENT_HEADER_DTYPE.itemsize == EVENT_HEADER_SIZE


def encode_file_header(*, run_number: int, start_ns: int, end_ns: int, name: str) -> bytes:
    """The 256-byte file header.

    Raises
    ------
    ValueError
        If the UTF-8 name is longer than 200 bytes, ``end_ns < start_ns`` or the
        run number does not fit in uint32.
    """
    raw = name.encode("utf-8")
    if len(raw) > NAME_FIELD_SIZE:
        raise ValueError(f"file name {name!r} is {len(raw)} bytes in UTF-8; at most 200 fit")
    if end_ns < start_ns:
        raise ValueError(f"file end time {end_ns} ns is before its start time {start_ns} ns")
    if not 0 <= run_number < 2**32:
        raise ValueError(f"run number {run_number} does not fit in uint32 (0..4294967295)")
    head = np.zeros(1, FILE_HEADER_DTYPE)
    head[0]["version"] = FORMAT_VERSION
    head[0]["run_number"] = run_number
    head[0]["start_ns"] = start_ns
    head[0]["end_ns"] = end_ns
    head[0]["name"] = raw
    head[0]["name_size"] = len(raw)
    return head.tobytes()


def encode_events(block: EventBlock, *, first_number: int, type_tag: int,
                  stream_flag: int = 0) -> np.ndarray:
    """Serialise the events of ``block``, numbered from ``first_number``.

    Returns
    -------
    ndarray of uint8
        ``len(block)`` events, each header + hits, back to back (written as it is: a
        buffer, no copy to bytes).
    """
    n_ev = len(block)
    if n_ev == 0:
        return np.empty(0, np.uint8)
    heads = np.zeros(n_ev, EVENT_HEADER_DTYPE)
    heads["marker"] = EVENT_MARKER
    heads["header_length"] = EVENT_HEADER_SIZE
    heads["total_length"] = EVENT_HEADER_SIZE + HIT_DTYPE.itemsize * block.n_hits
    heads["type_tag"] = type_tag
    heads["number"] = first_number + np.arange(n_ev)
    heads["time"] = block.time
    heads["stream"] = stream_flag
    total = heads["total_length"].astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(total)[:-1]))
    out = np.empty(int(total.sum()), np.uint8)
    out[(offsets[:, None] + np.arange(EVENT_HEADER_SIZE)).ravel()] = heads.view(np.uint8)
    if len(block.hits):
        first_hit = np.concatenate(([0], np.cumsum(block.n_hits)[:-1]))
        event_of_hit = np.repeat(np.arange(n_ev), block.n_hits)
        rank = np.arange(len(block.hits)) - first_hit[event_of_hit]
        hit_off = offsets[event_of_hit] + EVENT_HEADER_SIZE + HIT_DTYPE.itemsize * rank
        rec = np.ascontiguousarray(block.hits, HIT_DTYPE).view(np.uint8).reshape(-1, 16)
        out[(hit_off[:, None] + np.arange(HIT_DTYPE.itemsize)).ravel()] = rec.ravel()
    return out


class EventFileWriter:
    """Write an event file through a temporary name, renamed into place on :meth:`close`.

    A run that is cancelled or fails calls :meth:`abort` and leaves no
    half-written file under the final name.

    Parameters
    ----------
    path : path-like
        Final file name (its base name goes into the file header).
    run_number : int
    start_ns, end_ns : int
        File start/end record time, ns (the stream's start and stop).
    type_tag : int
        1 (ED-triggered) or 2 (ED+MD-triggered).
    part : path-like, optional
        The temporary file (default: a hidden name with the process id next to ``path``).
    resume : (bytes, events), optional
        Continue the partial file ``part`` of a crashed run: cut it to ``bytes`` (a size
        recorded after a :meth:`flush`) holding ``events`` events, and append from there.
    """

    def __init__(self, path, *, run_number: int, start_ns: int, end_ns: int, type_tag: int,
                 part=None, resume: tuple[int, int] | None = None):
        self.path = Path(path)
        self._tmp = Path(part) if part else self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        self.type_tag = type_tag
        if resume is not None:
            size, self.events = int(resume[0]), int(resume[1])
            if not self._tmp.exists() or self._tmp.stat().st_size < size:
                raise ValueError(f"cannot resume {self._tmp}: it is missing or shorter than the "
                                 f"{size} bytes the checkpoint recorded")
            self._fh = open(self._tmp, "r+b")  # noqa: SIM115 - closed by close()/abort()
            self._fh.truncate(size)
            self._fh.seek(size)
            self.bytes = size
            return
        header = encode_file_header(run_number=run_number, start_ns=start_ns, end_ns=end_ns,
                                    name=self.path.name)
        self.events = 0
        self.bytes = len(header)
        self._tmp.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self._tmp, "wb")  # noqa: SIM115 - closed by close()/abort()
        self._fh.write(header)

    def write(self, block: EventBlock) -> None:
        """Append the events of ``block``, numbered after those already written."""
        data = encode_events(block, first_number=self.events, type_tag=self.type_tag)
        self._fh.write(data)
        self.events += len(block)
        self.bytes += len(data)

    def flush(self) -> None:
        """Hand what was written to the operating system (it survives a crash of this process)."""
        self._fh.flush()

    def close(self) -> Path:
        """Flush and rename the file into place."""
        self._fh.close()
        os.replace(self._tmp, self.path)
        return self.path

    def suspend(self) -> None:
        """Close the partial file and keep it (a live run resumes it on retry)."""
        if not self._fh.closed:
            self._fh.close()

    def abort(self) -> None:
        """Drop the partial file."""
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)


def write_event_file(path, block: EventBlock, *, run_number: int, start_ns: int, end_ns: int,
                     type_tag: int) -> Path:
    """Write ``block`` as a complete event file (events numbered from 0)."""
    writer = EventFileWriter(path, run_number=run_number, start_ns=start_ns, end_ns=end_ns,
                             type_tag=type_tag)
    try:
        writer.write(block)
    except BaseException:
        writer.abort()
        raise
    return writer.close()
