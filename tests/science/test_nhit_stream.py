"""The .hits format, fragment ownership (nhit.md 3.3) and the parallel pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from hisci.builtin_plugins.nhit.eventfile import write_event_file
from hisci.builtin_plugins.nhit.hitstream import (
    HIT_DTYPE,
    HitStream,
    StreamFormatError,
    write_stream,
)
from hisci.builtin_plugins.nhit.pipeline import run_trigger
from hisci.builtin_plugins.nhit.scheduler import Scheduler
from hisci.builtin_plugins.nhit.simulate import SimulationConfig, simulate_stream
from hisci.builtin_plugins.nhit.trigger import (
    EventBlock,
    OverlapTooShortError,
    TriggerConfig,
    process_fragment,
    trigger_hits,
)

from .nhit_trigger_helpers import make_hits, random_hits


@pytest.fixture(scope="module")
def sim_stream(tmp_path_factory):
    """0.2 s at scale 0.05 (~5.5 MB), 20 fragments of 10 ms."""
    path = tmp_path_factory.mktemp("nhit") / "sim.hits"
    simulate_stream(path, SimulationConfig(seconds=0.2, scale=0.05, seed=3))
    return path


def whole_file(stream_path, out, config: TriggerConfig) -> bytes:
    """The single-pass reference: de-duplicated stream, one scan, one file."""
    stream = HitStream(stream_path)
    block = trigger_hits(stream.all_hits(), config)
    write_event_file(out, block, run_number=0, start_ns=stream.header.start_ns,
                     end_ns=stream.header.stop_ns, type_tag=config.type_tag)
    return out.read_bytes()


def test_stream_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    hits = random_hits(rng, span_ns=50_000)
    path = write_stream(tmp_path / "x.hits", hits, n_ed=12, n_md=4, fragment_ns=7_000,
                        overlap_ns=1_000)
    stream = HitStream(path)
    assert stream.header.n_ed == 12 and stream.header.overlap_ns == 1_000
    assert len(stream) == -(-(int(hits["time"].max()) + 1) // 7_000)
    for k, frag in enumerate(stream.fragments):
        t = stream.hits(k)["time"]
        upper = frag.end_ns + 1_000 if k < len(stream) - 1 else frag.end_ns
        assert t.min() >= frag.begin_ns and t.max() < upper
    back = stream.all_hits()
    key = lambda h: np.lexsort((h["channel"], h["det"], h["time"]))
    np.testing.assert_array_equal(back[key(back)], hits[key(hits)])


def test_simulated_stream_is_ordered_per_channel_only(sim_stream):
    stream = HitStream(sim_stream)
    hits = stream.hits(3)
    gid = hits["channel"].astype(np.int64) * 2 + hits["det"]
    order = np.argsort(gid, kind="stable")
    same = gid[order][1:] == gid[order][:-1]
    assert np.all(np.diff(hits["time"][order])[same] >= 0)  # each channel in time order
    assert np.any(np.diff(hits["time"]) < 0)  # but not across channels
    # ~54.6 MB/s at scale 1 -> 2.73 MB/s at scale 0.05 (overlap copies add ~0.2 %)
    assert stream.nbytes / 0.2 / 1e6 == pytest.approx(546 * 0.05, rel=0.06)


@pytest.mark.parametrize("threshold, mode", [(20, "ed"), (5, "ed"), (12, "ed+md")])
def test_parallel_equals_serial_equals_whole_stream_byte_for_byte(sim_stream, tmp_path,
                                                                 threshold, mode):
    config = TriggerConfig(threshold, 400, mode)
    for name in "abc":
        (tmp_path / name).mkdir()
    serial = run_trigger(sim_stream, tmp_path / "a" / "events.dat", config, workers=1)
    parallel = run_trigger(sim_stream, tmp_path / "b" / "events.dat", config, workers=2)
    whole = whole_file(sim_stream, tmp_path / "c" / "events.dat", config)
    assert serial.events > 5
    assert serial.path.read_bytes() == parallel.path.read_bytes() == whole
    assert parallel.workers == 2


def test_fragments_in_any_order_give_the_whole_stream_events(sim_stream):
    stream = HitStream(sim_stream)
    config = TriggerConfig(8, 400)
    n = len(stream)
    blocks = {}
    for k in np.random.default_rng(0).permutation(n):
        f = stream.fragments[k]
        blocks[k] = process_fragment(stream.hits(k), config, begin_ns=f.begin_ns,
                                     end_ns=f.end_ns, overlap_ns=stream.header.overlap_ns,
                                     first=k == 0, last=k == n - 1)
    joined = EventBlock.concat([blocks[k] for k in range(n)])
    whole = trigger_hits(stream.all_hits(), config)
    np.testing.assert_array_equal(joined.time, whole.time)
    np.testing.assert_array_equal(joined.hits, whole.hits)


def test_events_at_fragment_edges(tmp_path):
    """Bursts straddling, touching and just after fragment boundaries."""
    frag, overlap = 10_000, 4_000
    times = []
    # a burst straddling the core boundary, one starting on it, and two starting just
    # before / on the ownership cut b + G (G = O / 2 = 2 us)
    for start in (10_000 - 150, 20_000, 30_000 + 1_990, 40_000 + 2_000):
        times += [start + 13 * i for i in range(30)]
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 50_000, 200).tolist()
    hits = make_hits(times + noise, channel=np.arange(len(times) + len(noise)) % 97)
    hits = hits[np.lexsort((hits["time"], hits["channel"]))]  # per-channel order only
    path = write_stream(tmp_path / "edge.hits", hits, n_ed=97, n_md=1, fragment_ns=frag,
                        overlap_ns=overlap, stop_ns=50_000)
    config = TriggerConfig(10, 400)
    run = run_trigger(path, tmp_path / "events.dat", config, workers=1)
    assert run.events == 4
    assert run.path.read_bytes()[256:] == whole_file(path, tmp_path / "w.dat", config)[256:]


def test_overlap_too_short_is_an_error_not_a_wrong_event(tmp_path):
    # a 3 us dense train across a boundary with O = 1 us: ownership cannot be exact
    times = np.arange(8_000, 11_000, 10)
    path = write_stream(tmp_path / "long.hits", make_hits(times), n_ed=400, n_md=1,
                        fragment_ns=10_000, overlap_ns=1_000, stop_ns=20_000)
    with pytest.raises(OverlapTooShortError, match="overlap"):
        run_trigger(path, tmp_path / "events.dat", TriggerConfig(5, 400), workers=1)
    assert not list(tmp_path.glob("*.dat*")) and not list(tmp_path.glob(".*part"))


def _corrupt(src, dst, offset, data: bytes):
    raw = bytearray(src.read_bytes())
    raw[offset : offset + len(data)] = data
    dst.write_bytes(bytes(raw))
    return dst


@pytest.mark.parametrize("case, field", [
    ("magic", "magic"), ("record_size", "record_size"), ("truncated", "fragment count"),
    ("frag_magic", "fragment magic"), ("trailing", "trailing bytes"),
])
def test_bad_streams_are_rejected_with_offset_and_nothing_is_written(sim_stream, tmp_path,
                                                                    case, field):
    raw = sim_stream.read_bytes()
    bad = tmp_path / "bad.hits"
    if case == "magic":
        _corrupt(sim_stream, bad, 0, b"NOTHITS!")
    elif case == "record_size":
        _corrupt(sim_stream, bad, 12, np.uint32(24).tobytes())
    elif case == "truncated":
        bad.write_bytes(raw[: len(raw) - 100])
    elif case == "frag_magic":
        _corrupt(sim_stream, bad, 64, b"GARF")
    else:
        bad.write_bytes(raw + b"\0" * 7)
    with pytest.raises(StreamFormatError) as info:
        run_trigger(bad, tmp_path / "events.dat", TriggerConfig(), workers=1)
    assert info.value.field == field and str(bad) in str(info.value)
    if case == "magic":
        assert info.value.offset == 0 and "not a .hits stream" in str(info.value)
    if case == "record_size":
        assert info.value.offset == 12 and "16" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.hits"]


def test_threshold_zero_is_rejected_before_anything_is_written(sim_stream, tmp_path):
    with pytest.raises(ValueError, match="threshold N must be an integer > 0"):
        run_trigger(sim_stream, tmp_path / "events.dat", TriggerConfig(0), workers=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_between_fragments_leaves_no_event_file(sim_stream, tmp_path, workers):
    class Cancelled(Exception):
        pass

    def progress(done, total):
        if done == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        run_trigger(sim_stream, tmp_path / "events.dat", TriggerConfig(), workers=workers,
                    progress=progress)
    assert list(tmp_path.iterdir()) == []


def test_scheduler_is_least_loaded_with_lowest_id_ties():
    s = Scheduler(3)
    assert [s.request() for _ in range(4)] == [0, 1, 2, 0]
    s.clear(1)
    assert s.request() == 1
    s.clear(2)
    s.clear(2) if s.table[2].tasks else None
    assert s.request() == 2
    with pytest.raises(ValueError, match="no task in flight"):
        Scheduler(1).clear(0)
    weighted = Scheduler(2)
    weighted.table[1].workers = 4  # node 1 has four workers: takes four tasks per one on node 0
    picks = [weighted.request() for _ in range(5)]
    assert picks.count(1) == 4
    assert "load" in weighted.format_table()


def test_empty_hit_array_dtype():
    assert HIT_DTYPE.itemsize == 16
    assert len(trigger_hits(np.empty(0, HIT_DTYPE), TriggerConfig())) == 0


@pytest.mark.slow
def test_full_scale_parallel_equals_whole_stream(tmp_path):
    """0.2 s of the full array (~110 MB, 6.8 M hits): 2 workers == 1 == whole stream."""
    path = tmp_path / "full.hits"
    simulate_stream(path, SimulationConfig(seconds=0.2, scale=1.0, seed=8))
    config = TriggerConfig(20, 400)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = run_trigger(path, tmp_path / "a" / "events.dat", config, workers=1)
    two = run_trigger(path, tmp_path / "b" / "events.dat", config, workers=2)
    assert one.events == pytest.approx(0.2 * 4100, rel=0.2)  # nhit.md 6: ~4.1 kHz
    assert one.path.read_bytes() == two.path.read_bytes() == whole_file(
        path, tmp_path / "events.dat", config)
