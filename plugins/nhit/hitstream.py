"""The ``.hits`` hit-stream format: record dtype, reader and writer.

Layout (``shared/research/nhit.md`` section 4.2, little-endian throughout)::

    stream header, 64 bytes   magic "HSCIHITS", version, record size, channel counts,
                              fragment length, overlap O, start, stop, fragment count
    fragment k                32-byte header ("FRAG", index, core begin a, core end b,
                              hit count) + count hit records with times in [a, b + O)

Hits are time-ordered only *within a channel*; across channels the order is
arbitrary. Hits in ``[b, b + O)`` duplicate the next fragment's first hits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HIT_DTYPE = np.dtype(
    [
        ("time", "<i8"),  # ns since the stream's time origin
        ("channel", "<u2"),  # detector index within its subsystem
        ("det", "u1"),  # 0 = ED, 1 = MD
        ("flags", "u1"),  # reserved, 0
        ("charge", "<f4"),  # particles (ED) / p.e.-equivalent (MD)
    ]
)
"""One hit, 16 bytes, no padding."""

ED, MD = 0, 1
STREAM_MAGIC = b"HSCIHITS"
FRAGMENT_MAGIC = b"FRAG"
STREAM_VERSION = 1

STREAM_HEADER_DTYPE = np.dtype(
    [
        ("magic", "S8"),
        ("version", "<u4"),
        ("record_size", "<u4"),
        ("n_ed", "<u4"),
        ("n_md", "<u4"),
        ("fragment_ns", "<i8"),
        ("overlap_ns", "<i8"),
        ("start_ns", "<i8"),
        ("stop_ns", "<i8"),
        ("n_fragments", "<u4"),
        ("pad", "<u4"),
    ]
)
FRAGMENT_HEADER_DTYPE = np.dtype(
    [
        ("magic", "S4"),
        ("index", "<u4"),
        ("begin_ns", "<i8"),
        ("end_ns", "<i8"),
        ("count", "<u4"),
        ("pad", "<u4"),
    ]
)
assert HIT_DTYPE.itemsize == 16
assert STREAM_HEADER_DTYPE.itemsize == 64
assert FRAGMENT_HEADER_DTYPE.itemsize == 32


class StreamFormatError(ValueError):
    """A file is not a valid ``.hits`` stream; the message names the file and byte offset."""

    def __init__(self, message: str, *, file: str | os.PathLike, offset: int, field: str):
        super().__init__(f"{file}: byte {offset} ({field}): {message}")
        self.file = str(file)
        self.offset = offset
        self.field = field


@dataclass(frozen=True)
class StreamHeader:
    """The decoded 64-byte stream header (times and lengths in ns)."""

    n_ed: int
    n_md: int
    fragment_ns: int
    overlap_ns: int
    start_ns: int
    stop_ns: int
    n_fragments: int


@dataclass(frozen=True)
class Fragment:
    """Where fragment ``index`` lies in the file: core ``[begin_ns, end_ns)``, ``count`` hits."""

    index: int
    begin_ns: int
    end_ns: int
    count: int
    offset: int  # byte offset of the first hit record


class HitStream:
    """A ``.hits`` file opened for reading; fragments are memory-mapped lazily.

    Opening reads and checks the stream header and walks the fragment headers
    (one 32-byte read per fragment), so a truncated or inconsistent file fails
    here, before any processing, with the byte offset of the first problem.

    Parameters
    ----------
    path : path-like
        The ``.hits`` file.

    Examples
    --------
    >>> stream = HitStream("run.hits")                       # doctest: +SKIP
    >>> hits = stream.hits(0)      # structured array, dtype HIT_DTYPE  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.size = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            self.header = _read_stream_header(fh, self.path, self.size)
            self.fragments = _walk_fragments(fh, self.path, self.size, self.header)
        self._map: np.memmap | None = None

    def __len__(self) -> int:
        return len(self.fragments)

    @property
    def n_hits(self) -> int:
        """Hit records in the file, overlap duplicates included."""
        return sum(f.count for f in self.fragments)

    @property
    def nbytes(self) -> int:
        """Size of the file in bytes."""
        return self.size

    def hits(self, index: int) -> np.ndarray:
        """Hit records of fragment ``index`` (core and overlap) as a read-only memmap view."""
        frag = self.fragments[index]
        if self._map is None:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        raw = self._map[frag.offset : frag.offset + frag.count * HIT_DTYPE.itemsize]
        return raw.view(HIT_DTYPE)

    def read(self, index: int, buffer: np.ndarray | None = None) -> np.ndarray:
        """Fragment ``index`` copied into ``buffer`` (a reusable uint8 array, grown if short).

        One ``readinto`` from the page cache; cheaper than faulting in a fresh memory
        map for every fragment, and memory stays at one buffer per worker.

        Returns
        -------
        ndarray of HIT_DTYPE
            A view into ``buffer`` (valid until the buffer is reused).
        """
        frag = self.fragments[index]
        nbytes = frag.count * HIT_DTYPE.itemsize
        if buffer is None or len(buffer) < nbytes:
            buffer = np.empty(nbytes, np.uint8)
        with open(self.path, "rb", buffering=0) as fh:
            fh.seek(frag.offset)
            view = memoryview(buffer)[:nbytes]
            got = fh.readinto(view)
            while got < nbytes:
                more = fh.readinto(view[got:])
                if not more:
                    raise StreamFormatError(f"fragment {index} ends early: file changed on disk?",
                                            file=self.path, offset=frag.offset + got,
                                            field="fragment data")
                got += more
        return buffer[:nbytes].view(HIT_DTYPE)

    def core_hits(self, index: int) -> np.ndarray:
        """Hits of fragment ``index`` with time in its core ``[begin, end)`` (each hit once)."""
        hits = self.hits(index)
        frag = self.fragments[index]
        keep = (hits["time"] >= frag.begin_ns) & (hits["time"] < frag.end_ns)
        return np.asarray(hits[keep])

    def all_hits(self) -> np.ndarray:
        """The whole de-duplicated stream (for tests and small files; copies everything)."""
        parts = [self.core_hits(k) for k in range(len(self))]
        return np.concatenate(parts) if parts else np.empty(0, HIT_DTYPE)

    def close(self) -> None:
        """Drop the memory map (views already handed out stay valid)."""
        self._map = None


def _read_stream_header(fh, path: Path, size: int) -> StreamHeader:
    raw = fh.read(STREAM_HEADER_DTYPE.itemsize)
    if len(raw) < 8 or raw[:8] != STREAM_MAGIC:
        raise StreamFormatError(
            f"not a .hits stream: magic is {raw[:8]!r}, expected {STREAM_MAGIC!r}",
            file=path, offset=0, field="magic",
        )
    if len(raw) < STREAM_HEADER_DTYPE.itemsize:
        raise StreamFormatError(
            f"file is {size} bytes, shorter than the 64-byte stream header",
            file=path, offset=size, field="header",
        )
    h = np.frombuffer(raw, STREAM_HEADER_DTYPE)[0]
    if int(h["version"]) != STREAM_VERSION:
        raise StreamFormatError(
            f"version {int(h['version'])} is not supported (expected {STREAM_VERSION})",
            file=path, offset=8, field="version",
        )
    if int(h["record_size"]) != HIT_DTYPE.itemsize:
        raise StreamFormatError(
            f"hit record size is {int(h['record_size'])} bytes; only 16-byte records "
            "(time i8, channel u2, det u1, flags u1, charge f4) are supported",
            file=path, offset=12, field="record_size",
        )
    if int(h["overlap_ns"]) < 0 or int(h["fragment_ns"]) <= 0:
        raise StreamFormatError(
            f"fragment length {int(h['fragment_ns'])} ns and overlap {int(h['overlap_ns'])} ns "
            "must be > 0 and >= 0",
            file=path, offset=24, field="fragment_ns",
        )
    return StreamHeader(
        n_ed=int(h["n_ed"]), n_md=int(h["n_md"]), fragment_ns=int(h["fragment_ns"]),
        overlap_ns=int(h["overlap_ns"]), start_ns=int(h["start_ns"]),
        stop_ns=int(h["stop_ns"]), n_fragments=int(h["n_fragments"]),
    )


def _walk_fragments(fh, path: Path, size: int, header: StreamHeader) -> list[Fragment]:
    frags: list[Fragment] = []
    offset = STREAM_HEADER_DTYPE.itemsize
    for k in range(header.n_fragments):
        fh.seek(offset)
        raw = fh.read(FRAGMENT_HEADER_DTYPE.itemsize)
        if len(raw) < FRAGMENT_HEADER_DTYPE.itemsize:
            raise StreamFormatError(
                f"truncated: fragment {k} of {header.n_fragments} has no complete header",
                file=path, offset=offset, field="fragment header",
            )
        f = np.frombuffer(raw, FRAGMENT_HEADER_DTYPE)[0]
        if bytes(f["magic"]) != FRAGMENT_MAGIC:
            raise StreamFormatError(
                f"fragment {k}: magic {bytes(f['magic'])!r}, expected {FRAGMENT_MAGIC!r}",
                file=path, offset=offset, field="fragment magic",
            )
        if int(f["index"]) != k:
            raise StreamFormatError(
                f"fragment index {int(f['index'])}, expected {k}",
                file=path, offset=offset + 4, field="fragment index",
            )
        begin, end, count = int(f["begin_ns"]), int(f["end_ns"]), int(f["count"])
        if end <= begin or (frags and begin != frags[-1].end_ns):
            raise StreamFormatError(
                f"fragment {k}: core [{begin}, {end}) ns is empty or not contiguous "
                "with the previous fragment",
                file=path, offset=offset + 8, field="fragment core",
            )
        data = offset + FRAGMENT_HEADER_DTYPE.itemsize
        if data + count * HIT_DTYPE.itemsize > size:
            raise StreamFormatError(
                f"truncated fragment {k}: header announces {count} hits "
                f"({count * HIT_DTYPE.itemsize} bytes) but only {size - data} bytes remain",
                file=path, offset=offset + 24, field="fragment count",
            )
        frags.append(Fragment(k, begin, end, count, data))
        offset = data + count * HIT_DTYPE.itemsize
    if offset != size:
        raise StreamFormatError(
            f"{size - offset} trailing bytes after the last of {header.n_fragments} fragments",
            file=path, offset=offset, field="trailing bytes",
        )
    return frags


class HitStreamWriter:
    """Write a ``.hits`` file fragment by fragment (a temp name renamed on ``close``).

    Parameters
    ----------
    path : path-like
        Destination file.
    n_ed, n_md : int
        Channel counts written to the header.
    fragment_ns, overlap_ns : int
        Fragment core length and overlap ``O``, ns.
    start_ns : int
        Stream start time, ns.
    """

    def __init__(self, path, *, n_ed: int, n_md: int, fragment_ns: int, overlap_ns: int,
                 start_ns: int = 0):
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".part")
        self._fh = open(self._tmp, "wb")  # noqa: SIM115 - closed by close()/abort()
        self._head = np.zeros(1, STREAM_HEADER_DTYPE)
        self._head[0] = (STREAM_MAGIC, STREAM_VERSION, HIT_DTYPE.itemsize, n_ed, n_md,
                         fragment_ns, overlap_ns, start_ns, start_ns, 0, 0)
        self._fh.write(self._head.tobytes())
        self._count = 0
        self._stop = start_ns

    def write_fragment(self, begin_ns: int, end_ns: int, hits: np.ndarray) -> None:
        """Append one fragment: core ``[begin_ns, end_ns)`` plus its overlap hits."""
        head = np.zeros(1, FRAGMENT_HEADER_DTYPE)
        head[0] = (FRAGMENT_MAGIC, self._count, begin_ns, end_ns, len(hits), 0)
        self._fh.write(head.tobytes())
        self._fh.write(np.ascontiguousarray(hits, dtype=HIT_DTYPE).tobytes())
        self._count += 1
        self._stop = end_ns

    def close(self) -> Path:
        """Finish the header, rename the temp file into place and return the path."""
        self._head[0]["stop_ns"] = self._stop
        self._head[0]["n_fragments"] = self._count
        self._fh.seek(0)
        self._fh.write(self._head.tobytes())
        self._fh.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the partial file."""
        self._fh.close()
        self._tmp.unlink(missing_ok=True)


def write_stream(path, hits: np.ndarray, *, n_ed: int, n_md: int, fragment_ns: int,
                 overlap_ns: int, start_ns: int = 0, stop_ns: int | None = None) -> Path:
    """Cut a whole hit array into fragments and write it as a ``.hits`` file.

    Parameters
    ----------
    hits : ndarray of HIT_DTYPE, shape (n,)
        All hits, each once, in any order that keeps every channel time-ordered
        (the relative order of the input is kept inside each fragment).
    stop_ns : int, optional
        End of the last fragment; default: one past the last hit time.

    Returns
    -------
    Path
        The file written.
    """
    hits = np.asarray(hits, HIT_DTYPE)
    if stop_ns is None:
        stop_ns = int(hits["time"].max()) + 1 if len(hits) else start_ns + fragment_ns
    writer = HitStreamWriter(path, n_ed=n_ed, n_md=n_md, fragment_ns=fragment_ns,
                             overlap_ns=overlap_ns, start_ns=start_ns)
    try:
        t = hits["time"]
        begin = start_ns
        while begin < stop_ns:
            end = min(begin + fragment_ns, stop_ns)
            upper = end + overlap_ns if end < stop_ns else end
            writer.write_fragment(begin, end, hits[(t >= begin) & (t < upper)])
            begin = end
    except BaseException:
        writer.abort()
        raise
    return writer.close()
