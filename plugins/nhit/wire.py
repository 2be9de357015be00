"""The ZeroMQ framing of a live N-Hit stream: one ``.hits`` piece per message.

=============  ==========================================================================
message        bytes
=============  ==========================================================================
start of run   the 64-byte ``.hits`` stream header (magic ``HSCIHITS``); ``stop_ns`` and
               ``n_fragments`` may be 0 (not known yet)
fragment       the 32-byte fragment header (``FRAG``, index, core begin, core end, count)
               followed by ``count`` 16-byte hit records, exactly as in the file
end of run     32 bytes: magic ``HSCIEND\\0``, ``stop_ns`` (<i8), fragments sent (<u8),
               hit records sent (<u8)
=============  ==========================================================================

All little-endian. Fragments are sent in index order on a PUSH socket (which blocks at the
high-water mark instead of dropping). The receiver counts fragments and hit records and
compares them with the end-of-run message, so a loss is always reported.
"""

from __future__ import annotations

import numpy as np

from .hitstream import FRAGMENT_HEADER_DTYPE, HIT_DTYPE, STREAM_HEADER_DTYPE, STREAM_MAGIC, HitStream

END_MAGIC = b"HSCIEND\x00"
END_DTYPE = np.dtype([("magic", "S8"), ("stop_ns", "<i8"), ("n_fragments", "<u8"), ("n_hits", "<u8")])
assert END_DTYPE.itemsize == 32


def kind(message) -> str:
    """``start``, ``fragment``, ``end`` or ``unknown`` from a message's first bytes."""
    head = bytes(message[:8])
    if head == STREAM_MAGIC:
        return "start"
    if head[:4] == b"FRAG":
        return "fragment"
    if head == END_MAGIC:
        return "end"
    return "unknown"


def encode_end(stop_ns: int, n_fragments: int, n_hits: int) -> bytes:
    end = np.zeros(1, END_DTYPE)
    end[0] = (END_MAGIC, stop_ns, n_fragments, n_hits)
    return end.tobytes()


def decode_end(message) -> dict[str, int]:
    end = np.frombuffer(message, END_DTYPE, count=1)[0]
    return {"stop_ns": int(end["stop_ns"]), "n_fragments": int(end["n_fragments"]), "n_hits": int(end["n_hits"])}


def decode_fragment(message) -> tuple[np.ndarray, np.ndarray]:
    """(fragment header record, hit records) of a fragment message, without copying.

    Raises
    ------
    ValueError
        When the message length does not match the header's hit count.
    """
    head = np.frombuffer(message, FRAGMENT_HEADER_DTYPE, count=1)[0]
    size = FRAGMENT_HEADER_DTYPE.itemsize + int(head["count"]) * HIT_DTYPE.itemsize
    if len(message) != size:
        raise ValueError(f"fragment {int(head['index'])}: message is {len(message)} bytes, its header "
                         f"announces {int(head['count'])} hits ({size} bytes)")
    return head, np.frombuffer(message, HIT_DTYPE, offset=FRAGMENT_HEADER_DTYPE.itemsize)


def messages(path) -> list[memoryview]:
    """A ``.hits`` file cut into the messages of a live stream (views of one read of the file)."""
    stream = HitStream(path)
    raw = memoryview(open(path, "rb").read())  # noqa: SIM115 - read whole, closed by GC
    out = [raw[:STREAM_HEADER_DTYPE.itemsize]]
    for frag in stream.fragments:
        start = frag.offset - FRAGMENT_HEADER_DTYPE.itemsize
        out.append(raw[start:frag.offset + frag.count * HIT_DTYPE.itemsize])
    out.append(memoryview(encode_end(stream.header.stop_ns, len(stream), stream.n_hits)))
    return out


def send_stream(socket, path, repeat: int = 1) -> int:
    """Send ``path`` as a live stream on a ZeroMQ socket (a simulated DAQ); returns bytes sent."""
    sent = 0
    for message in messages(path):
        socket.send(message, copy=False)
        sent += len(message)
    return sent
