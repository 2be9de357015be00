"""The N-Hit rule (nhit.md 3.2): hand-made cases and kernel == numpy == oracle on random streams."""

from __future__ import annotations

import numpy as np
import pytest

from hisci.builtin_plugins.nhit.hitstream import HIT_DTYPE, MD
from hisci.builtin_plugins.nhit.kernel import (
    NO_TIME,
    scan_hits,
    scan_windows,
    scan_windows_numpy,
    select_hits,
    select_in_ranges,
    window_counts,
)
from hisci.builtin_plugins.nhit.merge import channel_runs, merge_channel_runs
from hisci.builtin_plugins.nhit.trigger import TriggerConfig, trigger_hits

from .nhit_trigger_helpers import (
    make_hits,
    oracle_events,
    oracle_ranges,
    random_hits,
    shuffle_channels,
)

SCANS = [scan_windows, scan_windows_numpy]


def as_list(r):
    return list(zip(r.start.tolist(), r.stop.tolist(), r.n_max.tolist()))


@pytest.mark.parametrize("scan", SCANS)
def test_n_equal_to_threshold_never_opens(scan):
    # every window holds exactly N = 3 hits: start needs n > N
    t = [0, 10, 20, 1000, 1010, 1020]
    assert as_list(scan(np.array(t), 3, 100)) == [] == oracle_ranges(t, 3, 100)


@pytest.mark.parametrize("scan", SCANS)
def test_n_equal_to_threshold_keeps_an_open_event_open(scan):
    # n = 5, 4, 3, 3(==N keeps), ... the run of n == N = 3 does not close the event
    t = [0, 10, 20, 30, 40, 140, 150, 160, 260, 270, 280, 5000]
    r = scan(np.array(t), 3, 100)
    assert as_list(r) == oracle_ranges(t, 3, 100)
    assert len(r) == 1 and r.start[0] == 0
    # the first index with n < N closes: the last open index is the one before it
    n = window_counts(np.array(t), 100)
    e = int(np.flatnonzero(n < 3)[0]) - 1
    assert r.stop[0] == t[e] + 100


@pytest.mark.parametrize("scan", SCANS)
def test_drop_below_threshold_closes(scan):
    t = [0, 1, 2, 3, 4, 500]  # n = 5,4,3,2,1,1 with N = 2: opens at 0, n=2 keeps, n=1 closes
    r = scan(np.array(t), 2, 100)
    assert as_list(r) == [(0, 3 + 100, 5)] == oracle_ranges(t, 2, 100)
    assert r.close.tolist() == [4]


@pytest.mark.parametrize("scan", SCANS)
def test_overlapping_ranges_merge_and_touching_stay_apart(scan):
    # N = 3, Tw = 100: n = 4 opens at 39, n(53) = 2 closes -> [39, 150); n(98) = 4 reopens
    # at 98 < 150, so the two ranges merge; n(181) = 2 closes the merged event at 177 + 100
    t = [39, 50, 53, 98, 177, 181, 196]
    assert as_list(scan(np.array(t), 3, 100)) == [(39, 277, 4)] == oracle_ranges(t, 3, 100)
    # four tied hits at 0 open; n(50) = 2 closes -> [0, 100); n(100) = 4 opens exactly at
    # the previous stop: touching ranges stay two events
    t = [0, 0, 0, 0, 50, 100, 160, 170, 180]
    r = scan(np.array(t), 3, 100)
    assert as_list(r) == [(0, 100, 5), (100, 260, 4)] == oracle_ranges(t, 3, 100)


@pytest.mark.parametrize("scan", SCANS)
def test_ties_count_alike(scan):
    t = [5, 5, 5, 5, 300]  # every tied hit sees all four
    r = scan(np.array(t), 3, 10)
    assert as_list(r) == [(5, 15, 4)] == oracle_ranges(t, 3, 10)


@pytest.mark.parametrize("scan", SCANS)
def test_open_at_end_of_data_closes_on_the_last_hit(scan):
    t = [0, 1, 2, 3]  # N = 1: the last hit has n == N, so the event is still open
    r = scan(np.array(t), 1, 100)
    assert as_list(r) == [(0, 103, 4)] and r.close.tolist() == [NO_TIME]


@pytest.mark.parametrize("scan", SCANS)
def test_empty_and_single(scan):
    assert len(scan(np.array([], np.int64), 1, 10)) == 0
    assert len(scan(np.array([7]), 1, 10)) == 0
    assert scan(np.array([7]), 2, 10).sync == 7  # n = 1 < N: the state machine resyncs


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("threshold, window", [(0, 10), (-1, 10), (2, 0), (2.5, 10)])
def test_bad_rule_parameters_raise(scan, threshold, window):
    with pytest.raises(ValueError, match="threshold|window"):
        scan(np.array([1, 2, 3]), threshold, window)


def test_trigger_config_rejects_bad_values():
    for kw in ({"threshold": 0}, {"threshold": -3}, {"window_ns": 0}, {"mode": "md"}):
        with pytest.raises(ValueError):
            TriggerConfig(**kw)
    assert TriggerConfig(mode="ed+md").type_tag == 2


def test_kernel_matches_oracle_on_random_streams():
    rng = np.random.default_rng(2024)
    for trial in range(300):
        n = int(rng.integers(0, 120))
        t = np.sort(rng.integers(0, int(rng.integers(50, 3000)), n))
        threshold, window = int(rng.integers(1, 6)), int(rng.integers(1, 200))
        want = oracle_ranges(t, threshold, window)
        for scan in SCANS:
            assert as_list(scan(t, threshold, window)) == want, (trial, scan.__name__)


def test_kernel_and_numpy_agree_on_larger_streams():
    rng = np.random.default_rng(7)
    for _ in range(20):
        t = np.sort(rng.integers(0, 10**7, 50_000))
        a, b = scan_windows(t, 20, 400 * 40), scan_windows_numpy(t, 20, 400 * 40)
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_array_equal(x, y)
        assert a.sync == b.sync


@pytest.mark.parametrize("mode", ["ed", "ed+md"])
def test_packed_events_match_oracle_with_hits_out_of_order_across_channels(mode):
    rng = np.random.default_rng(11)
    for _ in range(40):
        hits = random_hits(rng)
        threshold = int(rng.integers(2, 8))
        block = trigger_hits(hits, TriggerConfig(threshold, 200, mode))
        want = oracle_events(hits, threshold, 200, all_dets=mode == "ed+md")
        assert len(block) == len(want)
        got = np.split(block.hits, np.cumsum(block.n_hits)[:-1]) if len(block) else []
        for k, (start, stop, nmax, sel) in enumerate(want):
            assert (block.time[k], block.stop[k], block.n_max[k]) == (start, stop, nmax)
            np.testing.assert_array_equal(got[k], sel)
            assert block.n_ed[k] == int(np.sum(sel["det"] == 0))


def test_shuffled_channel_order_gives_the_same_events():
    rng = np.random.default_rng(5)
    hits = random_hits(rng, bursts=8)
    cfg = TriggerConfig(4, 250)
    a = trigger_hits(hits, cfg)
    b = trigger_hits(shuffle_channels(hits, rng), cfg)
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_array_equal(a.hits, b.hits)


def test_md_hits_are_packed_but_do_not_decide_in_ed_mode():
    ed = make_hits([0, 5, 10, 15])
    md = make_hits([1, 2, 3, 4, 6, 7, 8, 9, 20, 150], det=MD)
    hits = np.concatenate([md, ed])
    block = trigger_hits(hits, TriggerConfig(3, 100))
    # ED n = 4, 3 (== N keeps), 2 (< N closes): last open hit at 5 -> range [0, 105)
    assert block.time.tolist() == [0] and block.stop.tolist() == [5 + 100]
    # every hit but the MD at 150; sorted by time
    assert block.n_hits.tolist() == [13] and block.n_ed.tolist() == [4]
    assert np.all(np.diff(block.hits["time"]) >= 0)
    both = trigger_hits(hits, TriggerConfig(3, 100, "ed+md"))
    # all hits decide: n(10) = 3 keeps, n(15) = 2 closes -> range [0, 110)
    assert both.stop.tolist() == [110] and both.n_hits.tolist() == [13]


def test_bucketed_scan_equals_sorted_scan_on_random_hits():
    """scan_hits (sorts only the hits that can reach n >= N) == sort + scan_windows."""
    rng = np.random.default_rng(99)
    for trial in range(1500):
        n = int(rng.integers(0, 300))
        hits = np.zeros(n, HIT_DTYPE)
        hits["time"] = rng.integers(0, int(rng.integers(10, 20_000)), n) - 500
        hits["det"] = rng.integers(0, 2, n)
        threshold, window = int(rng.integers(1, 12)), int(rng.integers(1, 700))
        all_dets = bool(rng.integers(0, 2))
        t = np.sort(hits["time"] if all_dets else hits["time"][hits["det"] == 0])
        want = scan_windows(t, threshold, window)
        got, grid = scan_hits(hits, threshold, window, all_dets)
        for x, y in zip(want[:4], got[:4]):
            np.testing.assert_array_equal(x, y, err_msg=f"trial {trial}")
        assert want.sync == got.sync
        np.testing.assert_array_equal(
            np.sort(select_hits(hits["time"], got, grid)),
            np.sort(select_in_ranges(hits["time"], want.start, want.stop)))


def test_bucketed_scan_on_dense_ties_and_sparse_data():
    burst = np.zeros(500, HIT_DTYPE)  # 500 hits at one ns: a long sorted segment
    burst["time"] = 1000
    r, _ = scan_hits(burst, 20, 400)
    assert as_list(r) == [(1000, 1400, 500)]
    sparse = np.zeros(3, HIT_DTYPE)  # huge gaps: the plain-sort fallback
    sparse["time"] = [0, 10**12, 2 * 10**12]
    r, grid = scan_hits(sparse, 2, 400)  # n = 1 < N everywhere
    assert len(r) == 0 and grid is None and r.sync == 0


def test_merge_of_channel_runs_gives_the_order_the_trigger_uses():
    """The paper's merge of per-channel ordered runs == np.sort; the trigger agrees."""
    rng = np.random.default_rng(4)
    for _ in range(20):
        hits = random_hits(rng, n_ed_ch=30, span_ns=40_000, bursts=10, burst_size=25)
        ed = hits[hits["det"] == 0]
        merged = merge_channel_runs(ed["time"], channel_runs(ed))
        np.testing.assert_array_equal(merged, np.sort(ed["time"]))
        want = scan_windows(merged, 6, 300)
        got, _ = scan_hits(hits, 6, 300)
        for x, y in zip(want[:4], got[:4]):
            np.testing.assert_array_equal(x, y)


def test_merge_rejects_broken_channel_order():
    with pytest.raises(ValueError, match="per-channel time order"):
        merge_channel_runs(np.array([1, 5, 3, 9]), np.array([0, 3, 4]))
