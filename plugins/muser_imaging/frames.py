"""MUSER-I raw frames: encode, decode and split a byte stream into frames.

One frame is 100000 bytes, little-endian, and holds one band (16 channels of 25 MHz)
in one circular polarisation. The layout is the real MUSER-I frame as the open-source
MUSER reader implies it, plus the hisci v1 choices (frame counter, layout version);
see ``shared/research/muser.md`` sections 3.1 and 3.2.

Byte map (offsets from the start of the frame)::

    0      32   sync, all 0x55 (a frame is valid when its first 28 bytes are 0x55)
    32      8   time stamp, uint64 bit fields, Beijing time (UTC+8)
    44      4   hisci: uint32 frame counter
    48      4   hisci: uint32 layout version (1)
    172     4   bandwidth code (0x33333333 = 25 MHz)
    188     4   sub-band word: fixed mode high half 0x3333/0x7777/0xBBBB/0xCCCC,
                low half 0x3333 = L; 0 = loop mode
    192     2   target code (0x0000 Sun, 0x0101 satellite)
    194     2   array tag (0x0000 MUSER-I)
    208     1   loop mode code 0..7 (pol = code & 1, band = code >> 1)
    2944   8 x 12128 bytes, one block per channel pair p (channels 2p, 2p+1)

A channel-pair block is 946 records of 12 bytes (signed 24-bit values in three byte
planes), 40 reserved bytes, 11 groups of 64 bytes of auto-correlations and 32 reserved
bytes.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np

FRAME_SIZE = 100_000
SYNC_BYTE = 0x55
SYNC_CHECK = 28
N_INPUTS = 44
N_ANTENNAS = 40
N_RECORDS = N_INPUTS * (N_INPUTS - 1) // 2  # 946
N_BASELINES = N_ANTENNAS * (N_ANTENNAS - 1) // 2  # 780
N_CHANNELS = 16
N_BANDS = 4
N_CODES = 8
DATA_OFFSET = 2944
PAIR_BLOCK = 12128
RECORD_BYTES = 12
AUTO_OFFSET = N_RECORDS * RECORD_BYTES + 40  # inside a pair block
AUTO_GROUPS = 11
LAYOUT_VERSION = 1
BANDWIDTH_25MHZ = 0x33333333
BAND_WORDS = (0x3333, 0x7777, 0xBBBB, 0xCCCC)
TARGET_CODES = {"sun": 0x0000, "satellite": 0x0101, "other": 0x0202}
ARRAY_MUSER_I = 0x0000
INT24_MIN = -(1 << 23)
INT24_MAX = (1 << 23) - 1
BEIJING = _dt.timezone(_dt.timedelta(hours=8))

_I1, _I2 = np.triu_indices(N_INPUTS, 1)
#: indices of the 780 antenna baselines among the 946 correlator records
BASELINE_RECORDS = np.flatnonzero(_I2 < N_ANTENNAS)
#: antenna pairs (i, j), i < j, in record order (same as numpy.triu_indices(40, 1))
ANT1, ANT2 = (a.astype(np.int64) for a in np.triu_indices(N_ANTENNAS, 1))


@dataclass
class Frame:
    """One decoded frame.

    Attributes
    ----------
    time : datetime.datetime
        Frame time, timezone-aware UTC (microsecond resolution).
    band : int
        Band 0..3 (lower edge 400 + 400 band MHz).
    polarization : int
        0 = L, 1 = R.
    vis : ndarray of complex128, shape (16, 780)
        Raw cross-correlations (integer counts) per channel and baseline (i < j,
        ``numpy.triu_indices(40, 1)`` order).
    autos : ndarray of int64, shape (16, 44)
        Auto-correlations per channel and correlator input.
    counter : int
        hisci frame counter.
    target : int
        Target code (0x0000 Sun, 0x0101 satellite).
    loop_mode : bool
        True when the band came from the loop code at byte 208.
    bandwidth_code, array_tag, version : int
        Header words as stored.
    nanoseconds : int
        Sub-microsecond part of the time stamp (multiple of 20 ns).
    """

    time: _dt.datetime
    band: int
    polarization: int
    vis: np.ndarray
    autos: np.ndarray
    counter: int = 0
    target: int = 0
    loop_mode: bool = True
    bandwidth_code: int = BANDWIDTH_25MHZ
    array_tag: int = ARRAY_MUSER_I
    version: int = LAYOUT_VERSION
    nanoseconds: int = 0
    raw_vis: np.ndarray | None = field(default=None, repr=False)

    @property
    def code(self) -> int:
        """Loop code ``2 band + polarization`` (0..7)."""
        return 2 * self.band + self.polarization


def channel_frequencies(band: int) -> np.ndarray:
    """Centre frequencies in Hz of the 16 channels of a band.

    Channel ``k`` of band ``b`` is centred at ``400 + 400 b + 25 k + 12.5`` MHz.
    """
    return (400.0 + 400.0 * band + 25.0 * np.arange(N_CHANNELS) + 12.5) * 1e6


def all_frequencies() -> np.ndarray:
    """Centre frequencies in Hz of the 64 MUSER-I channels (band-major)."""
    return np.concatenate([channel_frequencies(b) for b in range(N_BANDS)])


# ---------------------------------------------------------------- time stamp

def encode_time(time: _dt.datetime, nanoseconds: int = 0) -> int:
    """Pack a time into the MUSER 64-bit time stamp (Beijing time).

    Parameters
    ----------
    time : datetime.datetime
        Timezone-aware time (naive times are taken as UTC).
    nanoseconds : int
        Sub-microsecond part, 0..999 ns; stored in units of 20 ns.
    """
    if time.tzinfo is None:
        time = time.replace(tzinfo=_dt.UTC)
    t = time.astimezone(BEIJING)
    if not 2000 <= t.year < 2000 + 4096:
        raise ValueError(f"time {time.isoformat()}: year must be 2000..6095 for the stamp")
    ms, us = divmod(t.microsecond, 1000)
    return (
        (nanoseconds // 20 & 0x3F)
        | us << 6
        | ms << 16
        | t.second << 26
        | t.minute << 32
        | t.hour << 38
        | t.day << 43
        | t.month << 48
        | (t.year - 2000) << 52
    )


def decode_time(stamp: int) -> tuple[_dt.datetime, int]:
    """Unpack a MUSER time stamp; returns (UTC datetime, nanoseconds)."""
    ns20 = stamp & 0x3F
    us = stamp >> 6 & 0x3FF
    ms = stamp >> 16 & 0x3FF
    sec = stamp >> 26 & 0x3F
    minute = stamp >> 32 & 0x3F
    hour = stamp >> 38 & 0x1F
    day = stamp >> 43 & 0x1F
    month = stamp >> 48 & 0xF
    year = (stamp >> 52 & 0xFFF) + 2000
    t = _dt.datetime(year, month, day, hour, minute, sec, ms * 1000 + us, tzinfo=BEIJING)
    return t.astimezone(_dt.UTC), (0 if ns20 >= 50 else ns20 * 20)


# ---------------------------------------------------------------- 24-bit records

def pack_int24(values: np.ndarray) -> np.ndarray:
    """Pack signed 24-bit values of shape (R, 4) into byte planes, shape (R, 12) uint8.

    Byte ``k`` (0 low, 1 middle, 2 high) of value ``q`` goes to record offset ``4 k + q``.
    """
    v = np.asarray(values, dtype=np.int64)
    if v.min(initial=0) < INT24_MIN or v.max(initial=0) > INT24_MAX:
        raise ValueError(
            f"visibility counts out of the signed 24-bit range [{INT24_MIN}, {INT24_MAX}]: "
            f"min {v.min()}, max {v.max()}; lower the simulated gain scale"
        )
    u = (v & 0xFFFFFF).astype(np.uint32)
    planes = np.stack([(u >> (8 * k)) & 0xFF for k in range(3)], axis=1)  # (R, 3, 4)
    return planes.astype(np.uint8).reshape(len(v), 12)


def unpack_int24(records: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_int24`: bytes (..., 12) -> signed int32 values (..., 4)."""
    b = records.reshape(records.shape[:-1] + (3, 4)).astype(np.int32)
    u = b[..., 0, :] | b[..., 1, :] << 8 | b[..., 2, :] << 16
    return (u ^ 0x800000) - 0x800000


# ---------------------------------------------------------------- encode / decode

def encode_frame(
    time: _dt.datetime,
    band: int,
    polarization: int,
    vis: np.ndarray,
    autos: np.ndarray,
    *,
    counter: int = 0,
    target: str | int = "sun",
    loop_mode: bool = True,
    nanoseconds: int = 0,
) -> bytes:
    """Build one 100000-byte hisci v1 frame.

    Parameters
    ----------
    time : datetime.datetime
        Frame time (UTC; stored as Beijing time).
    band, polarization : int
        Band 0..3 and polarisation 0 (L) / 1 (R).
    vis : ndarray, shape (16, 780) complex or (16, 946) complex
        Cross-correlation counts; real and imaginary parts are rounded to integers and
        must fit in signed 24 bits. With 780 columns the non-antenna inputs are zero.
    autos : ndarray, shape (16, 40) or (16, 44)
        Auto-correlation counts (uint32 range).
    counter : int
        Frame counter (hisci bytes 44-47).
    target : {"sun", "satellite", "other"} or int
        Target code.
    loop_mode : bool
        Store band/polarisation as a loop code at byte 208 (True) or in the fixed-mode
        sub-band word at byte 188 (False).
    nanoseconds : int
        Sub-microsecond time, 0..999.

    Returns
    -------
    bytes
        The frame, ``FRAME_SIZE`` long.
    """
    if band not in range(N_BANDS) or polarization not in (0, 1):
        raise ValueError(f"band must be 0..3 and polarization 0 or 1, got {band}, {polarization}")
    vis = np.asarray(vis)
    if vis.shape == (N_CHANNELS, N_BASELINES):
        full = np.zeros((N_CHANNELS, N_RECORDS), np.complex128)
        full[:, BASELINE_RECORDS] = vis
        vis = full
    if vis.shape != (N_CHANNELS, N_RECORDS):
        raise ValueError(f"vis must have shape (16, 780) or (16, 946), got {vis.shape}")
    autos = np.asarray(autos)
    if autos.shape == (N_CHANNELS, N_ANTENNAS):
        autos = np.concatenate([autos, np.zeros((N_CHANNELS, 4), autos.dtype)], axis=1)
    if autos.shape != (N_CHANNELS, N_INPUTS):
        raise ValueError(f"autos must have shape (16, 40) or (16, 44), got {autos.shape}")
    if autos.min() < 0 or autos.max() > 0xFFFFFFFF:
        raise ValueError("autos must fit in uint32")

    buf = np.zeros(FRAME_SIZE, np.uint8)
    buf[:32] = SYNC_BYTE
    hdr = buf[:DATA_OFFSET]
    hdr[32:40] = np.frombuffer(np.uint64(encode_time(time, nanoseconds)).tobytes(), np.uint8)
    hdr[44:48] = np.frombuffer(np.uint32(counter).tobytes(), np.uint8)
    hdr[48:52] = np.frombuffer(np.uint32(LAYOUT_VERSION).tobytes(), np.uint8)
    hdr[172:176] = np.frombuffer(np.uint32(BANDWIDTH_25MHZ).tobytes(), np.uint8)
    if loop_mode:
        hdr[208] = 2 * band + polarization
    else:
        word = BAND_WORDS[band] << 16 | (0x3333 if polarization == 0 else 0x7777)
        hdr[188:192] = np.frombuffer(np.uint32(word).tobytes(), np.uint8)
    code = TARGET_CODES[target] if isinstance(target, str) else int(target)
    hdr[192:194] = np.frombuffer(np.uint16(code).tobytes(), np.uint8)
    hdr[194:196] = np.frombuffer(np.uint16(ARRAY_MUSER_I).tobytes(), np.uint8)

    re = np.rint(vis.real).astype(np.int64)
    im = np.rint(vis.imag).astype(np.int64)
    blocks = buf[DATA_OFFSET : DATA_OFFSET + 8 * PAIR_BLOCK].reshape(8, PAIR_BLOCK)
    for p in range(8):
        c0, c1 = 2 * p, 2 * p + 1
        vals = np.stack([im[c1], re[c1], im[c0], re[c0]], axis=1)  # q = 0..3
        blocks[p, : N_RECORDS * RECORD_BYTES] = pack_int24(vals).ravel()
        auto = np.zeros((AUTO_GROUPS, 8), "<u4")
        auto[:, 0::2] = autos[c0].reshape(AUTO_GROUPS, 4)
        auto[:, 1::2] = autos[c1].reshape(AUTO_GROUPS, 4)
        groups = np.zeros((AUTO_GROUPS, 64), np.uint8)
        groups[:, :32] = auto.view(np.uint8).reshape(AUTO_GROUPS, 32)
        blocks[p, AUTO_OFFSET : AUTO_OFFSET + AUTO_GROUPS * 64] = groups.ravel()
    return buf.tobytes()


class FrameError(ValueError):
    """A frame that cannot be decoded (bad sync, truncated, unknown band code)."""


def frame_is_synced(raw: bytes | np.ndarray) -> bool:
    """True when the first 28 bytes are all 0x55."""
    head = np.frombuffer(bytes(raw[:SYNC_CHECK]), np.uint8)
    return len(head) == SYNC_CHECK and bool(np.all(head == SYNC_BYTE))


def decode_band_word(header: np.ndarray) -> tuple[int, int, bool]:
    """Band, polarisation and loop-mode flag from a frame header (uint8 array)."""
    word = int(header[188:192].view("<u4")[0])
    high = word >> 16
    if high in BAND_WORDS:
        return BAND_WORDS.index(high), 0 if word & 0xFFFF == 0x3333 else 1, False
    code = int(header[208])
    if code >= N_CODES:
        raise FrameError(f"loop code {code} at byte 208 is not 0..7")
    return code >> 1, code & 1, True


def decode_frame(raw: bytes | np.ndarray) -> Frame:
    """Decode one 100000-byte frame.

    Raises
    ------
    FrameError
        When the frame is truncated, its sync is broken or its band code is invalid.
    """
    buf = np.frombuffer(bytes(raw), np.uint8) if not isinstance(raw, np.ndarray) else raw
    if len(buf) != FRAME_SIZE:
        raise FrameError(f"frame is {len(buf)} bytes, expected {FRAME_SIZE} (truncated)")
    if not frame_is_synced(buf):
        raise FrameError("broken sync: the first 28 bytes are not all 0x55")
    hdr = buf[:DATA_OFFSET]
    time, ns = decode_time(int(hdr[32:40].view("<u8")[0]))
    band, pol, loop = decode_band_word(hdr)
    blocks = buf[DATA_OFFSET : DATA_OFFSET + 8 * PAIR_BLOCK].reshape(8, PAIR_BLOCK)
    recs = blocks[:, : N_RECORDS * RECORD_BYTES].reshape(8, N_RECORDS, 12)
    vals = unpack_int24(recs)  # (8, 946, 4): q = im(2p+1), re(2p+1), im(2p), re(2p)
    raw_vis = np.empty((N_CHANNELS, N_RECORDS), np.complex128)
    raw_vis[0::2] = vals[:, :, 3] + 1j * vals[:, :, 2]
    raw_vis[1::2] = vals[:, :, 1] + 1j * vals[:, :, 0]
    auto_bytes = blocks[:, AUTO_OFFSET : AUTO_OFFSET + AUTO_GROUPS * 64].reshape(8, AUTO_GROUPS, 64)
    auto = np.ascontiguousarray(auto_bytes[:, :, :32]).view("<u4").reshape(8, AUTO_GROUPS, 8)
    autos = np.empty((N_CHANNELS, N_INPUTS), np.int64)
    autos[0::2] = auto[:, :, 0::2].reshape(8, N_INPUTS)
    autos[1::2] = auto[:, :, 1::2].reshape(8, N_INPUTS)
    return Frame(
        time=time,
        band=band,
        polarization=pol,
        vis=raw_vis[:, BASELINE_RECORDS],
        autos=autos,
        counter=int(hdr[44:48].view("<u4")[0]),
        target=int(hdr[192:194].view("<u2")[0]),
        loop_mode=loop,
        bandwidth_code=int(hdr[172:176].view("<u4")[0]),
        array_tag=int(hdr[194:196].view("<u2")[0]),
        version=int(hdr[48:52].view("<u4")[0]),
        nanoseconds=ns,
        raw_vis=raw_vis,
    )


@dataclass
class SplitReport:
    """What :func:`split_frames` kept and dropped."""

    frames: list[Frame]
    dropped: list[dict]


def split_frames(data: bytes, *, start_offset: int = 0) -> SplitReport:
    """Cut a byte stream into frames, dropping broken-sync and truncated ones.

    The stream is read in steps of ``FRAME_SIZE``. A frame whose sync is broken is
    dropped and reported (its bytes are skipped, so the following frames stay aligned);
    a short tail is reported as truncated.

    Parameters
    ----------
    data : bytes
        Concatenated frames.
    start_offset : int
        Byte offset of ``data`` in its file (for the report only).

    Returns
    -------
    SplitReport
        Decoded frames in file order, and one dict per dropped frame
        (``index``, ``offset``, ``reason``).
    """
    frames: list[Frame] = []
    dropped: list[dict] = []
    buf = np.frombuffer(data, np.uint8)
    n_full = len(buf) // FRAME_SIZE
    for k in range(n_full):
        chunk = buf[k * FRAME_SIZE : (k + 1) * FRAME_SIZE]
        offset = start_offset + k * FRAME_SIZE
        try:
            frames.append(decode_frame(chunk))
        except (FrameError, ValueError) as exc:
            dropped.append({"index": offset // FRAME_SIZE, "offset": offset, "reason": str(exc)})
    tail = len(buf) - n_full * FRAME_SIZE
    if tail:
        offset = start_offset + n_full * FRAME_SIZE
        dropped.append(
            {
                "index": offset // FRAME_SIZE,
                "offset": offset,
                "reason": f"truncated frame: {tail} of {FRAME_SIZE} bytes",
            }
        )
    return SplitReport(frames, dropped)
