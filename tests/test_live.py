"""Live runs (hisci.live): folder and ZeroMQ sources, stopping, checkpoint/resume, backpressure."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq  # the live extra (make test installs it)

from hisci import run_plugin
from hisci.errors import InputError
from hisci.live import parse_live, read_events
from tests.conftest import FIXTURE_PLUGINS


@pytest.fixture
def live_plugin(registry_from):
    return registry_from(FIXTURE_PLUGINS).get("live_plugin")


def _run_in_thread(plugin, out: Path, live: dict, **kw):
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", run_plugin(
        plugin, {"extra": kw.pop("extra", {})}, output_dir=out, live=live, **kw)), daemon=True)
    thread.start()
    return thread, box


def _items(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "items").glob("*.json"))]


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_folder_source_waits_for_a_partially_written_file(live_plugin, tmp_path):
    folder, out = tmp_path / "run42", tmp_path / "out"
    folder.mkdir()
    thread, box = _run_in_thread(live_plugin, out, {"watch": {"frames": str(folder)}, "until": 3, "settle": 0.4,
                                                    "poll": 0.05})
    first = os.urandom(1000)
    (folder / "a.bin").write_bytes(first)
    _wait_for(lambda: len(_items(out)) == 1)
    # b.bin grows for 0.4 s (settle time 0.4 s): the source must not take the partial file
    second = os.urandom(4000)
    with open(folder / "b.bin", "wb") as fh:
        fh.write(second[:2000])
        fh.flush()
        time.sleep(0.15)
        fh.write(second[2000:2100])
        fh.flush()
        time.sleep(0.25)
        assert len(_items(out)) == 1, "took b.bin while it was still growing"
        fh.write(second[2100:])
    third = os.urandom(10)
    (folder / "c.bin").write_bytes(third)
    (folder / "c.bin.done").write_bytes(b"")  # a marker completes at once
    thread.join(20)
    result = box["result"]
    assert result.ok, result.error
    items = _items(out)
    # c.bin's marker completes it at once, while b.bin still has to stay unchanged for 0.4 s
    assert [i["name"] for i in items] == ["a.bin", "c.bin", "b.bin"]
    assert [i["seq"] for i in items] == [1, 2, 3]
    assert [i["sha256"] for i in items] == [hashlib.sha256(x).hexdigest() for x in (first, third, second)]
    live = result.record["live"]
    assert live["stop"] == "until 3 items" and live["processed"] == 3 and live["dropped"] == 0
    events = read_events(out / "live" / "events.jsonl")
    published = [e for e in events if e["type"] == "live"]
    assert [e["seq"] for e in published] == [1, 2, 3]
    assert all(0 <= e["latency"] < 5 for e in published)
    assert any(e["type"] == "lag" for e in events) and events[-1]["type"] == "live_end"
    assert json.loads((out / "all.json").read_text())[2]["size"] == 4000


def test_idle_timeout_stops_and_final_outputs_are_written(live_plugin, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.bin").write_bytes(b"xyz")
    t0 = time.monotonic()
    result = run_plugin(live_plugin, {}, output_dir=tmp_path / "out",
                        live={"watch": {"frames": str(folder)}, "idle": 0.5, "settle": 0})
    assert result.ok and 0.5 <= time.monotonic() - t0 < 5
    assert result.summary["items"] == 1 and result.record["live"]["stop"] == "idle 0.5 s"


def test_cancel_stops_after_the_current_item(live_plugin, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        (folder / f"f{i}.bin").write_bytes(bytes([i]) * 10)
    cancel = threading.Event()
    thread, box = _run_in_thread(live_plugin, tmp_path / "out", {"watch": {"frames": str(folder)}, "settle": 0},
                                 extra={"seconds": 0.3}, cancel_check=cancel.is_set)
    _wait_for(lambda: len(_items(tmp_path / "out")) >= 1)
    cancel.set()
    thread.join(10)
    result = box["result"]
    assert result.status == "cancelled" and "final outputs written" in result.error
    assert result.record["live"]["stop"] == "cancelled"
    assert 1 <= result.summary["items"] <= 2  # the one in progress finished, no more started
    assert (tmp_path / "out" / "all.json").exists()


def test_resume_skips_finished_items(live_plugin, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(5):
        (folder / f"f{i}.bin").write_bytes(os.urandom(50))
    first = run_plugin(live_plugin, {}, output_dir=out, live={"watch": {"frames": str(folder)}, "until": 2,
                                                              "settle": 0})
    assert first.record["live"]["checkpoint"] == {"frames": 2}
    pids = {i["seq"]: i["pid"] for i in _items(out)}
    (folder / "f5.bin").write_bytes(os.urandom(50))
    again = run_plugin(live_plugin, {}, output_dir=out, live={"watch": {"frames": str(folder)}, "idle": 0.4,
                                                              "settle": 0})
    live = again.record["live"]
    assert live["resumed_after"] == {"frames": 2} and live["processed"] == 4
    assert [i["name"] for i in _items(out)] == [f"f{i}.bin" for i in range(6)]
    assert {i["seq"]: i["pid"] for i in _items(out) if i["seq"] <= 2} == pids


def test_live_settings_are_checked(live_plugin, registry_from, tmp_path):
    with pytest.raises(InputError, match="unknown live setting 'wacth'"):
        parse_live({"wacth": {"frames": "/x"}})
    with pytest.raises(InputError, match="not an input of this plugin"):
        parse_live({"watch": {"image": "/x"}}, ("frames",))
    with pytest.raises(InputError, match="not a ZeroMQ address"):
        parse_live({"zmq": {"frames": "localhost:5555"}})
    with pytest.raises(InputError, match="live.until must be >= 1"):
        parse_live({"watch": {"frames": "/x"}, "until": 0})
    with pytest.raises(InputError, match="folder not found") as err:
        run_plugin(live_plugin, {}, output_dir=tmp_path / "o", live={"watch": {"frames": str(tmp_path / "nope")}})
    assert err.value.problems[0].pointer == "/live/watch/frames"
    slow = registry_from(FIXTURE_PLUGINS).get("slow_plugin")
    with pytest.raises(InputError, match="has no live mode"):
        run_plugin(slow, {}, output_dir=tmp_path / "o2", live={"watch": {"table": str(tmp_path)}})


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_zmq_push_pull_counts_every_message_and_spools_the_backlog(live_plugin, tmp_path):
    port = _free_port()
    out = tmp_path / "out"
    # 1 MB memory budget, 60 kB messages and a slow plugin: the backlog must go to the spool
    thread, box = _run_in_thread(live_plugin, out, {"zmq": {"frames": f"bind:tcp://127.0.0.1:{port}"},
                                                    "zmq_end": "END", "memory_mb": 1}, extra={"seconds": 0.01})
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    messages = [os.urandom(60_000) for _ in range(60)]
    for m in messages:
        push.send(m)
    push.send(b"END of run")
    thread.join(30)
    push.close(0)
    result = box["result"]
    assert result.ok, result.error
    live = result.record["live"]
    counts = live["sources"]["frames"]
    assert counts["received"] == 61 and counts["dropped"] == 0 and counts["spooled"] > 0
    assert live["stop"] == "end of run" and live["processed"] == 61
    digests = [i["sha256"] for i in _items(out)]
    assert digests[:60] == [hashlib.sha256(m).hexdigest() for m in messages]
    assert not (out / "live" / "spool").exists()  # all finished: the journal is gone


def test_zmq_drops_are_counted_when_the_spool_is_full(live_plugin, tmp_path):
    port = _free_port()
    out = tmp_path / "out"
    thread, box = _run_in_thread(live_plugin, out, {"zmq": {"frames": f"bind:tcp://127.0.0.1:{port}"},
                                                    "zmq_end": "END", "memory_mb": 0.1, "spool_mb": 0.2},
                                 extra={"seconds": 0.05})
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    for _ in range(40):
        push.send(os.urandom(50_000))
    push.send(b"END")
    thread.join(30)
    push.close(0)
    result = box["result"]
    counts = result.record["live"]["sources"]["frames"]
    assert counts["received"] == 41 and counts["dropped"] > 0
    assert counts["dropped"] + result.record["live"]["processed"] == 41
    assert result.summary["items"] == 41 - counts["dropped"]
    seqs = [i["seq"] for i in _items(out)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # gaps mark the drops
    log = (out / "log.txt").read_text()
    assert "dropped" in log and f"dropped {counts['dropped']}" in log


def test_hicli_live_run_killed_and_rerun_resumes_without_duplicates(tmp_path):
    """A live run killed with SIGKILL mid-run, rerun into the same folder, takes every file once."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(8):
        (folder / f"f{i}.bin").write_bytes(os.urandom(100))
    env = {**os.environ, "HISCI_PLUGIN_PATH": str(FIXTURE_PLUGINS), "HISCI_NO_ENTRY_POINTS": "1"}
    cmd = [sys.executable, "-m", "hicli.main", "run", "live_plugin", "--live", "--watch", f"frames={folder}",
           "--idle", "1", "--live-set", "settle=0", "--set", "extra.seconds=0.25", "-o", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(lambda: len(_items(out)) >= 3, 30)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    before = {i["seq"]: i["pid"] for i in _items(out)}
    checkpoint = json.loads((out / "live" / "checkpoint.json").read_text())["sources"]["frames"]
    assert checkpoint >= 2
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    items = _items(out)
    assert [i["name"] for i in items] == [f"f{i}.bin" for i in range(8)]
    assert all(items[s - 1]["pid"] == before[s] for s in range(1, checkpoint + 1))  # not redone
    assert all(i["pid"] != proc.pid for i in items if i["seq"] > checkpoint + 1)
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["live"]["resumed_after"] == {"frames": checkpoint}
    assert summary["live"]["processed"] == 8 - checkpoint


def test_final_outputs_may_report_progress_after_a_cancel(live_plugin, tmp_path, monkeypatch):
    """A plugin's batch code calls ctx.progress while writing the final outputs of a cancelled
    live run; that must not abort them."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"abc")
    module = __import__(live_plugin.load_entry().__module__, fromlist=["run_live"])
    original = module.run_live

    def run_live(ctx):
        summary = original(ctx)
        ctx.progress(1.0, "final outputs")  # after the live loop ended on the cancel
        return {**summary, "progress_ok": True}

    monkeypatch.setattr(module, "run_live", run_live)
    seen = []
    result = run_plugin(live_plugin, {}, output_dir=tmp_path / "out", live={"watch": {"frames": str(folder)},
                                                                            "settle": 0},
                        cancel_check=lambda: bool(seen.append(1)) or len(seen) > 3)
    assert result.status == "cancelled" and result.summary["progress_ok"] and result.summary["items"] <= 1


def test_journal_replays_after_the_checkpoint_cuts_a_torn_entry_and_trims_segments(tmp_path):
    from hisci.live.journal import Journal

    folder = tmp_path / "spool"
    journal = Journal(folder, "hits", limit=1 << 20, segment_bytes=1)  # 64 kB segments (the floor)
    messages = [os.urandom(40_000) for _ in range(6)]
    refs = [journal.append(m, seq, 100.0 + seq) for seq, m in enumerate(messages, 1)]
    assert [Journal.read(r) for r in refs] == messages
    assert len(list(folder.glob("hits.*.journal"))) == 3  # two 40 kB messages per segment
    journal.trim(3)  # segment 1 (#1, #2) is all finished; segment 2 still holds #4
    assert len(list(folder.glob("hits.*.journal"))) == 2 and journal.bytes == 4 * (40_000 + 24)
    # a crash: the last entry is half written, the process never closes the journal
    last = sorted(folder.glob("hits.*.journal"))[-1]
    with open(last, "r+b") as fh:
        fh.truncate(last.stat().st_size - 1000)
    again = Journal(folder, "hits", limit=1 << 20, segment_bytes=1)
    entries = again.recover(after=3)
    assert [(seq, arrived) for seq, _, arrived in entries] == [(4, 104.0), (5, 105.0)]
    assert [Journal.read(ref) for _, ref, _ in entries] == messages[3:5]
    assert again.append(messages[5], 6, 106.0) is not None  # the retry's next message follows
    assert again.bytes == 4 * (40_000 + 24)  # #3, #4 (segment 2), #5 and the new #6 (segment 3)
    too_big = Journal(tmp_path / "small", "x", limit=50_000)
    assert too_big.append(messages[0], 1, 0.0) is not None and too_big.append(messages[1], 2, 0.0) is None
    again.close(committed=6)
    assert not folder.exists()


def test_journal_behind_spills_only_the_backlog_and_a_crash_counts_what_was_only_in_memory(tmp_path):
    """journal=behind: messages within memory_mb stay off the disk; the backlog over it goes to
    the journal. A retry replays the journal and counts the messages that only lived in memory
    at the crash as lost (seen by the checkpoint's 'received'), never reusing their numbers."""
    from hisci.live.zmq_source import ZmqSource

    with pytest.raises(InputError, match="unknown live.journal") as err:
        parse_live({"zmq": {"frames": "tcp://127.0.0.1:5"}, "journal": "sometimes"})
    assert err.value.problems[0].pointer == "/live/journal"
    assert parse_live({"zmq": {"frames": "tcp://127.0.0.1:5"}}).journal == "always"
    spool = tmp_path / "spool"
    port = _free_port()
    source = ZmqSource("frames", f"bind:tcp://127.0.0.1:{port}", spool, memory_bytes=100_000,
                       journal="behind").start()
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    messages = [os.urandom(40_000) for _ in range(5)]
    for m in messages:
        push.send(m)
    _wait_for(lambda: source.counters.snapshot()["received"] == 5)
    first = source.get(1.0)
    assert first.seq == 1 and bytes(first.data) == messages[0]
    counts = source.counters.snapshot()
    assert counts["spooled"] == 3 and source.journal_bytes == 3 * (40_000 + 24)  # #1, #2 in memory; #3..#5 on disk
    source.close()  # the process dies here: #1 finished (checkpoint 1), #2 was only in memory
    push.close(0)
    retry = ZmqSource("frames", f"bind:tcp://127.0.0.1:{_free_port()}", spool, memory_bytes=100_000,
                      journal="behind", checkpoint=1, received=5).start()
    try:
        counts = retry.counters.snapshot()
        assert counts["replayed"] == 3 and counts["lost"] == 1 and retry.next_seq == 6
        items = [retry.get(1.0) for _ in range(3)]
        assert [(i.seq, bytes(i.data)) for i in items] == [(3, messages[2]), (4, messages[3]), (5, messages[4])]
    finally:
        retry.close()
