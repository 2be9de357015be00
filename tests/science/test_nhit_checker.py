"""Event-file writer and the format checker (nhit.md 4.1): every corruption, with its offset."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from hisci.builtin_plugins.nhit.checker import check_event_file, read_event_file
from hisci.builtin_plugins.nhit.eventfile import (
    EVENT_HEADER_SIZE,
    FILE_HEADER_SIZE,
    encode_file_header,
    write_event_file,
)
from hisci.builtin_plugins.nhit.trigger import TriggerConfig, trigger_hits

from .nhit_trigger_helpers import random_hits

N = 4


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A valid file with several events, and the block it was written from."""
    rng = np.random.default_rng(9)
    hits = random_hits(rng, span_ns=60_000, bursts=12, burst_size=20)
    block = trigger_hits(hits, TriggerConfig(N, 200))
    assert len(block) >= 5
    path = tmp_path_factory.mktemp("ev") / "events.dat"
    write_event_file(path, block, run_number=77, start_ns=0, end_ns=60_000, type_tag=1)
    return path, block


def event_offsets(path) -> list[int]:
    raw, pos, out = path.read_bytes(), FILE_HEADER_SIZE, []
    while pos < len(raw):
        out.append(pos)
        pos += struct.unpack_from("<I", raw, pos + 12)[0]
    return out


def patched(good_path, tmp_path, offset: int, data: bytes, *, append: bytes = b""):
    raw = bytearray(good_path.read_bytes())
    raw[offset : offset + len(data)] = data
    out = tmp_path / "bad.dat"
    out.write_bytes(bytes(raw) + append)
    return out


def test_writer_output_passes_the_checker(good):
    path, block = good
    report = check_event_file(path, threshold=N)
    assert report.valid, report.violation
    assert report.events == len(block) and report.run_number == 77 and report.name == "events.dat"
    s = report.summary()
    assert s["hits"] == int(block.n_hits.sum()) and s["type_tags"] == {"1": len(block)}
    # the header bytes of the first event, as the paper's Fig. 8 dump shows them
    raw = path.read_bytes()[FILE_HEADER_SIZE : FILE_HEADER_SIZE + 20]
    assert raw[:16] == bytes.fromhex("ee3412ee 24000000 00000000".replace(" ", "")) + raw[12:16]
    assert raw[16:20] == bytes.fromhex("01000000")


def test_reader_round_trip(good):
    path, block = good
    _, events = read_event_file(path)
    np.testing.assert_array_equal(events.time, block.time)
    np.testing.assert_array_equal(events.hits, block.hits)
    np.testing.assert_array_equal(events.n_ed, block.n_ed)


@pytest.mark.parametrize("case, field, rel", [
    ("marker", "marker", 0),
    ("header_length", "header length", 4),
    ("total_length_past_end", "total length", 12),
    ("total_length_not_multiple", "total length", 12),
    ("type_tag", "type tag", 16),
    ("event_number_gap", "event number", 20),
    ("time_order", "event time", 24),
])
def test_each_event_header_corruption_is_caught_at_its_offset(good, tmp_path, case, field, rel):
    path, _ = good
    k = 3
    pos = event_offsets(path)[k]
    raw = path.read_bytes()
    value = {
        "marker": b"\xee\x35\x12\xee",
        "header_length": struct.pack("<I", 40),
        "total_length_past_end": struct.pack("<I", len(raw)),
        "total_length_not_multiple": struct.pack("<I", struct.unpack_from("<I", raw, pos + 12)[0]
                                                 + 8),
        "type_tag": struct.pack("<I", 3),
        "event_number_gap": struct.pack("<I", k + 1),
        "time_order": struct.pack("<q", struct.unpack_from("<q", raw, event_offsets(path)[k - 1]
                                                           + 24)[0] - 1),
    }[case]
    report = check_event_file(patched(path, tmp_path, pos + rel, value), threshold=N)
    v = report.violation
    assert v is not None and (v.field, v.offset, v.event) == (field, pos + rel, k), v
    assert report.events == k  # statistics cover the events before the violation


def test_trailing_bytes(good, tmp_path):
    path, _ = good
    size = path.stat().st_size
    v = check_event_file(patched(path, tmp_path, 0, b"", append=b"\x01\x02\x03")).violation
    assert (v.field, v.offset) == ("trailing bytes", size)


def test_truncated_last_event(good, tmp_path):
    path, _ = good
    last = event_offsets(path)[-1]
    bad = tmp_path / "cut.dat"
    bad.write_bytes(path.read_bytes()[:-16])
    v = check_event_file(bad).violation
    assert (v.field, v.offset) == ("total length", last + 12)


def test_hit_level_rules(good, tmp_path):
    path, block = good
    k = 2
    pos = event_offsets(path)[k]
    first_hit = pos + EVENT_HEADER_SIZE
    raw = path.read_bytes()
    # swap the first two hit records of event k: time order broken at the second hit
    a, b = raw[first_hit : first_hit + 16], raw[first_hit + 16 : first_hit + 32]
    if a[:8] != b[:8]:
        v = check_event_file(patched(path, tmp_path, first_hit, b + a)).violation
        assert (v.field, v.offset, v.event) == ("hit time order", first_hit + 16, k)
    # det 7 on the last hit of event k
    last_hit = first_hit + 16 * (int(block.n_hits[k]) - 1)
    v = check_event_file(patched(path, tmp_path, last_hit + 10, b"\x07")).violation
    assert (v.field, v.offset) == ("hit det", last_hit + 10)
    # event time one ns early: no longer the smallest ED time
    t = struct.unpack_from("<q", raw, pos + 24)[0]
    v = check_event_file(patched(path, tmp_path, pos + 24, struct.pack("<q", t - 1))).violation
    assert (v.field, v.offset) == ("event time", pos + 24)
    # with a larger N than the trigger's, events are too small
    v = check_event_file(path, threshold=int(block.n_ed.min())).violation
    assert v.field == "hit count"
    assert check_event_file(path, threshold=None).valid


def test_file_header_rules(good, tmp_path):
    path, _ = good
    v = check_event_file(patched(path, tmp_path, 0, struct.pack("<I", 2))).violation
    assert (v.field, v.offset) == ("version", 0)
    v = check_event_file(patched(path, tmp_path, 230, b"\x01")).violation
    assert (v.field, v.offset) == ("reserved", 230)
    v = check_event_file(patched(path, tmp_path, 224, struct.pack("<I", 201))).violation
    assert (v.field, v.offset) == ("file name size", 224)
    v = check_event_file(patched(path, tmp_path, 24 + 20, b"x")).violation
    assert (v.field, v.offset) == ("file name padding", 44)
    short = tmp_path / "short.dat"
    short.write_bytes(b"\0" * 100)
    assert check_event_file(short).violation.field == "file header"
    with pytest.raises(ValueError, match="200"):
        encode_file_header(run_number=0, start_ns=0, end_ns=1, name="x" * 201)
    with pytest.raises(ValueError, match="before"):
        encode_file_header(run_number=0, start_ns=5, end_ns=1, name="x")


def test_checking_in_small_chunks_gives_the_same_report(good, tmp_path, monkeypatch):
    import functools

    from hisci.builtin_plugins.nhit import checker

    path, block = good
    whole = check_event_file(path, threshold=N)
    k = 4
    last_hit = event_offsets(path)[k] + EVENT_HEADER_SIZE + 16 * (int(block.n_hits[k]) - 1)
    bad = patched(path, tmp_path, last_hit + 10, b"\x05")
    want = check_event_file(bad).violation
    monkeypatch.setattr(checker, "_check_hits",
                        functools.partial(checker._check_hits, chunk_hits=7))
    small = check_event_file(path, threshold=N)
    assert small.valid and whole.valid
    np.testing.assert_array_equal(small.n_ed, whole.n_ed)
    assert check_event_file(bad).violation == want
    _, events = read_event_file(path)
    np.testing.assert_array_equal(events.hits, block.hits)
