"""MUSER-I frame layout: encode/decode round trips and bad-frame handling
(layout: shared/research/muser.md sections 3.1-3.2)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from hisci.builtin_plugins.muser_imaging import frames as F

UTC = dt.UTC


def _random_frame_content(seed=1):
    rng = np.random.default_rng(seed)
    re = rng.integers(F.INT24_MIN, F.INT24_MAX + 1, (16, 780))
    im = rng.integers(F.INT24_MIN, F.INT24_MAX + 1, (16, 780))
    re[0, 0], im[0, 0] = F.INT24_MIN, F.INT24_MAX  # the 24-bit extremes
    re[15, 779], im[15, 779] = F.INT24_MAX, F.INT24_MIN
    re[3, 5], im[3, 5] = -1, 0
    autos = rng.integers(0, 2**32, (16, 40), dtype=np.int64)
    autos[0, 0], autos[1, 39] = 0, 2**32 - 1
    return re + 1j * im, autos


@pytest.mark.parametrize("loop_mode", [True, False], ids=["loop-code", "fixed-band-word"])
@pytest.mark.parametrize("band,pol", [(0, 0), (1, 1), (2, 0), (3, 1)])
def test_frame_round_trip_reproduces_every_field(loop_mode, band, pol):
    vis, autos = _random_frame_content(band * 2 + pol)
    t = dt.datetime(2015, 11, 1, 4, 8, 54, 354161, tzinfo=UTC)
    raw = F.encode_frame(t, band, pol, vis, autos, counter=123456, target="satellite",
                         loop_mode=loop_mode, nanoseconds=460)
    assert len(raw) == F.FRAME_SIZE == 100_000
    f = F.decode_frame(raw)
    assert f.time == t
    assert f.nanoseconds == 460
    assert (f.band, f.polarization, f.code) == (band, pol, 2 * band + pol)
    assert f.loop_mode is loop_mode
    assert f.counter == 123456
    assert f.target == 0x0101
    assert f.array_tag == 0 and f.version == 1 and f.bandwidth_code == 0x33333333
    np.testing.assert_array_equal(f.vis, vis)
    np.testing.assert_array_equal(f.autos[:, :40], autos)
    np.testing.assert_array_equal(f.autos[:, 40:], 0)
    # the 166 non-antenna correlator records stay zero
    others = np.setdiff1d(np.arange(F.N_RECORDS), F.BASELINE_RECORDS)
    assert others.size == 166 and not f.raw_vis[:, others].any()


def test_frame_header_bytes_follow_the_real_layout():
    vis, autos = _random_frame_content()
    t = dt.datetime(2020, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)
    raw = np.frombuffer(F.encode_frame(t, 2, 1, vis, autos, loop_mode=False), np.uint8)
    assert np.all(raw[:32] == 0x55)
    word = int(raw[188:192].view("<u4")[0])
    assert word >> 16 == 0xBBBB and word & 0xFFFF != 0x3333  # band 2, polarisation R
    # time stamp in Beijing time: 2020-07-01 07:59:59.999999
    stamp = int(raw[32:40].view("<u8")[0])
    assert (stamp >> 52) + 2000 == 2020 and stamp >> 48 & 0xF == 7 and stamp >> 43 & 0x1F == 1
    assert stamp >> 38 & 0x1F == 7 and stamp >> 16 & 0x3FF == 999 and stamp >> 6 & 0x3FF == 999
    # channel pair 0, record 0: byte k of value q at 4k + q; q = 3 is real of channel 0
    rec = raw[F.DATA_OFFSET:F.DATA_OFFSET + 12]
    v = int(rec[3]) | int(rec[7]) << 8 | int(rec[11]) << 16
    assert (v ^ 0x800000) - 0x800000 == int(vis[0, 0].real)


def test_int24_pack_unpack_extremes_and_range_check():
    vals = np.array([[F.INT24_MIN, F.INT24_MAX, -1, 0], [1, -2, 4096, -4097]])
    np.testing.assert_array_equal(F.unpack_int24(F.pack_int24(vals)), vals)
    with pytest.raises(ValueError, match="24-bit"):
        F.pack_int24(np.array([[F.INT24_MAX + 1, 0, 0, 0]]))


@pytest.mark.parametrize("ns", [0, 20, 980])
def test_time_stamp_round_trip_to_the_microsecond(ns):
    t = dt.datetime(2031, 12, 31, 16, 0, 0, 1, tzinfo=UTC)  # crosses midnight/new year in UTC+8
    back, ns_back = F.decode_time(F.encode_time(t, ns))
    assert back == t and ns_back == ns


def test_broken_sync_and_truncated_frames_are_dropped_and_reported():
    vis, autos = _random_frame_content()
    t = dt.datetime(2015, 11, 1, 4, 8, 50, tzinfo=UTC)
    good = [F.encode_frame(t + dt.timedelta(microseconds=3125 * c), c >> 1, c & 1, vis, autos,
                           counter=c) for c in range(3)]
    broken = b"\x00" * 32 + good[1][32:]
    rep = F.split_frames(good[0] + broken + good[2] + good[0][:5000])
    assert [f.counter for f in rep.frames] == [0, 2]
    assert [d["index"] for d in rep.dropped] == [1, 3]
    assert "sync" in rep.dropped[0]["reason"] and "truncated" in rep.dropped[1]["reason"]
    with pytest.raises(F.FrameError, match="truncated"):
        F.decode_frame(good[0][:-1])


def test_channel_frequencies_cover_400_to_2000_mhz_in_25_mhz_steps():
    f = F.all_frequencies()
    assert f.shape == (64,) and f[0] == 412.5e6 and f[-1] == 1987.5e6
    np.testing.assert_allclose(np.diff(f), 25e6)
