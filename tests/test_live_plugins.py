"""Built-in plugins in live mode: pdf (folder), nhit_trigger (ZeroMQ), xas_match (Bluesky)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq  # the live extra (make test installs it)

from hisci import Registry, Settings, run_plugin
from hisci.live import read_events

BUILTIN = Path(__file__).parents[1] / "plugins"


@pytest.fixture(scope="module")
def registry():
    return Registry.discover(Settings(plugin_path=(), builtins=True, entry_points=False))


def _write_h5(path: Path, image: np.ndarray) -> None:
    import h5py

    tmp = path.with_suffix(".writing")
    with h5py.File(tmp, "w") as fh:
        fh.create_dataset("entry/data/data", data=image)
    tmp.rename(path)


def test_pdf_live_frames_become_gr_and_match_the_batch_run(registry, tmp_path):
    import h5py

    pdf = registry.get("pdf")
    example = BUILTIN / "pdf" / "example"
    with h5py.File(example / "Ni_example.h5") as fh:
        image = fh["entry/data/data"][()]
    folder, out = tmp_path / "run42", tmp_path / "live"
    folder.mkdir()
    request = pdf.example_request()  # poni, mask, background, bgscale 0.85, rpoly 2, npt 800
    del request["data"]["image"]
    for entry in request["data"].values():
        entry["link"] = str(BUILTIN / "pdf" / entry["link"])
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", run_plugin(
        pdf, request, output_dir=out, live={"watch": {"image": str(folder)}, "until": 3, "settle": 0.1,
                                            "pattern": "*.h5", "poll": 0.05})))
    thread.start()
    rng = np.random.default_rng(1)
    frames = [image, (image * 1.05).astype(image.dtype), image + rng.poisson(2, image.shape).astype(image.dtype)]
    for k, frame in enumerate(frames):
        _write_h5(folder / f"frame{k}.h5", frame)
        time.sleep(0.3)
    thread.join(120)
    live = box["r"]
    assert live.ok, live.error
    published = [e for e in read_events(out / "live" / "events.jsonl") if e["type"] == "live"]
    assert [e["seq"] for e in published] == [1, 2, 3]
    for event in published:
        assert abs(event["data"]["first_peak_r"] - 2.49) < 0.05  # Ni nearest neighbours, a/sqrt(2)
        assert len(event["data"]["r"]) == len(event["data"]["gr"]) <= 600
    # warm integrator: frames after the first take well under a second of processing
    assert max(e["data"]["seconds"] for e in published[1:]) < 1.0
    # the final outputs equal a batch run over the same files
    batch = run_plugin(pdf, request, inputs={"image": sorted(str(p) for p in folder.glob("*.h5"))},
                       output_dir=tmp_path / "batch")
    assert batch.ok, batch.error
    np.testing.assert_allclose(np.load(out / "gr_stack.npy"), np.load(tmp_path / "batch" / "gr_stack.npy"),
                               rtol=1e-6, atol=1e-8)
    assert live.summary["n_frames"] == 3 and live.record["live"]["stop"] == "until 3 items"
    assert (out / "gr.json").exists()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _live_thread(plugin, request, out, live):
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", run_plugin(plugin, request, output_dir=out,
                                                                            live=live)), daemon=True)
    thread.start()
    return thread, box


def test_nhit_zmq_stream_events_equal_the_offline_run_byte_for_byte(registry, tmp_path):
    from hisci.builtin_plugins.nhit import wire

    trigger = registry.get("nhit_trigger")
    stream = BUILTIN / "nhit_trigger" / "example" / "stream.hits"
    request = {"extra": {"threshold": 20, "window_ns": 400, "workers": 1}}
    offline = run_plugin(trigger, request, inputs={"hits": str(stream)}, output_dir=tmp_path / "offline")
    assert offline.ok, offline.error
    port = _free_port()
    # two trigger threads decide fragments side by side; the file is still written in order
    thread, box = _live_thread(trigger, {"extra": {**request["extra"], "workers": 2}}, tmp_path / "live",
                               {"zmq": {"hits": f"bind:tcp://127.0.0.1:{port}"}, "idle": 30})
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    sent = wire.send_stream(push, stream)
    thread.join(60)
    push.close(linger=1000)
    live = box["r"]
    assert live.ok, live.error
    s = live.summary
    assert s["complete"] and s["missing_fragments"] == [] and s["bytes_received"] == sent
    assert s["fragments_received"] == s["fragments_sent"] == len(wire.messages(stream)) - 2
    assert s["hits_received"] == offline.summary["hits_read"]
    assert s["events"] == offline.summary["events"] > 0
    assert (tmp_path / "live" / "events.dat").read_bytes() == (tmp_path / "offline" / "events.dat").read_bytes()
    assert live.record["live"]["stop"] == "end of run" and live.record["live"]["dropped"] == 0
    rates = [e for e in read_events(tmp_path / "live" / "live" / "events.jsonl") if e["type"] == "live"]
    assert rates and rates[-1]["data"]["events"] == s["events"] and rates[-1]["data"]["hits"] == s["hits_received"]


def test_nhit_live_reports_a_lost_fragment(registry, tmp_path):
    from hisci.builtin_plugins.nhit import wire

    trigger = registry.get("nhit_trigger")
    stream = BUILTIN / "nhit_trigger" / "example" / "stream.hits"
    port = _free_port()
    thread, box = _live_thread(trigger, {"extra": {"threshold": 20}}, tmp_path / "live",
                               {"zmq": {"hits": f"bind:tcp://127.0.0.1:{port}"}, "idle": 30})
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    messages = wire.messages(stream)
    for k, message in enumerate(messages):
        if k != 2:  # fragment 1 is lost on the way
            push.send(message)
    thread.join(60)
    push.close(linger=1000)
    s = box["r"].summary
    assert not s["complete"] and s["missing_fragments"] == [1]
    assert s["fragments_received"] == s["fragments_sent"] - 1
    assert "INCOMPLETE" in (tmp_path / "live" / "log.txt").read_text()


def test_muser_frame_files_become_images_per_batch_as_they_arrive(registry, tmp_path):
    from hisci.builtin_plugins.muser_imaging import frames as F
    from tests.science.muser_imaging_helpers import make_dataset

    muser = registry.get("muser_imaging")
    make_dataset(tmp_path / "ds", n_batches=3, seed=31)
    raw = (tmp_path / "ds" / "target.bin").read_bytes()
    folder, out = tmp_path / "frames", tmp_path / "live"
    folder.mkdir()
    request = {"extra": {"channels": "3", "image_size": 256, "clean": "none"},
               "data": {"dataset": {"link": str(tmp_path / "ds")}}}
    thread, box = _live_thread(muser, request, out, {"watch": {"frames": str(folder)}, "idle": 2, "settle": 0.1,
                                                     "pattern": "*.bin"})
    half = 4 * F.FRAME_SIZE  # half a 5-s batch per file
    for k in range(0, len(raw), half):
        tmp = folder / f".part{k}"
        tmp.write_bytes(raw[k:k + half])
        tmp.rename(folder / f"frames_{k // half:03d}.bin")
        time.sleep(0.2)
    thread.join(120)
    live = box["r"]
    assert live.ok, live.error
    published = [e["data"] for e in read_events(out / "live" / "events.jsonl") if e["type"] == "live"]
    assert [p["batch"] for p in published] == [0, 1, 2]
    assert all(p["state"] == "imaged" and len(p["thumbnail"]) == 64 for p in published)
    offline = run_plugin(muser, {"extra": request["extra"]}, inputs={"dataset": str(tmp_path / "ds")},
                         output_dir=tmp_path / "offline")
    assert offline.ok, offline.error
    for b in range(3):
        np.testing.assert_array_equal(np.load(out / f"batch_{b}" / "dirty.npy"),
                                      np.load(tmp_path / "offline" / f"batch_{b}" / "dirty.npy"))
    assert live.record["live"]["processed"] == 6 and live.summary["seconds_per_batch_warm"] < 5


def _journaled(folder: Path) -> list[int]:
    """Sequence numbers in a live run's ZeroMQ journal (read-only: the run is still writing it)."""
    import struct

    head, seqs = struct.Struct("<QQd"), []
    for path in sorted(folder.glob("hits.*.journal")) if folder.exists() else []:
        data, offset = path.read_bytes(), 0
        while offset + head.size <= len(data):
            seq, length, _ = head.unpack_from(data, offset)
            if offset + head.size + length > len(data):
                break
            seqs.append(seq)
            offset += head.size + length
    return seqs


def test_nhit_live_run_killed_mid_stream_resumes_from_the_journal_byte_for_byte(registry, tmp_path):
    """hicli run killed with SIGKILL after receiving part of the stream; the rerun replays the
    journal after the checkpoint, then reads the rest from the socket: every fragment once, and
    the event file equals the offline run's."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from hisci.builtin_plugins.nhit import wire

    stream = BUILTIN / "nhit_trigger" / "example" / "stream.hits"
    offline = run_plugin(registry.get("nhit_trigger"), {"extra": {"threshold": 10}}, inputs={"hits": str(stream)},
                         output_dir=tmp_path / "offline")
    assert offline.ok, offline.error
    messages = wire.messages(stream)
    assert len(messages) == 7  # start, 5 fragments, end
    port, out = _free_port(), tmp_path / "live"
    cmd = [sys.executable, "-m", "hicli.main", "run", "nhit_trigger", "--live", "--zmq",
           f"hits=bind:tcp://127.0.0.1:{port}", "--idle", "60", "--set", "extra.threshold=10", "-o", str(out),
           "--live-set", "journal=always", "--quiet"]  # write-ahead: every received message survives the kill
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    for message in messages[:4]:  # the start and fragments 0..2
        push.send(message)
    checkpoint_file, deadline = out / "live" / "checkpoint.json", time.monotonic() + 60

    def checkpoint() -> int:
        try:
            return json.loads(checkpoint_file.read_text())["sources"]["hits"]
        except (FileNotFoundError, KeyError):
            return 0

    # kill once all four are in the journal and fragments 0, 1 (#2, #3) are decided and checkpointed
    while _journaled(out / "live" / "spool") != [1, 2, 3, 4] or checkpoint() < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    push.close(0)
    done = checkpoint()
    assert done == 3  # fragment 2 (#4) is decided only by its successor: never checkpointed
    state = json.loads(checkpoint_file.read_text())["states"]["hits"]
    part = out / "live" / "events.dat.part"
    assert part.stat().st_size >= state["file_bytes"] > 256 and state["events"] > 0 and not (out / "events.dat").exists()
    with open(part, "ab") as fh:  # events written after the checkpoint (a kill before its commit)
        fh.write(b"\xee" * 1000)

    rerun = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    push = ctx.socket(zmq.PUSH)  # the DAQ sends the rest of the run
    push.connect(f"tcp://127.0.0.1:{port}")
    for message in messages[4:]:
        push.send(message)
    stdout, stderr = rerun.communicate(timeout=120)
    push.close(0)
    assert rerun.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout[stdout.index("{"):])
    assert (out / "events.dat").read_bytes() == (tmp_path / "offline" / "events.dat").read_bytes()
    assert summary["complete"] and summary["missing_fragments"] == []
    assert summary["fragments_received"] == summary["fragments_sent"] == 5
    assert summary["hits_received"] == summary["hits_sent"] == offline.summary["hits_read"]
    assert summary["bytes_received"] == sum(len(m) for m in messages)
    assert summary["events"] == offline.summary["events"] > state["events"] > 0
    live = summary["live"]
    counts = live["sources"]["hits"]
    assert live["resumed_after"] == {"hits": done}
    assert counts["replayed"] == 4 - done and counts["received"] == 3 and counts["dropped"] == 0
    assert live["processed"] == 7 - done and live["stop"] == "end of run"
    assert not (out / "live" / "spool").exists() and not (out / "live" / "events.dat.part").exists()
