"""Live jobs (issue 19): PDF latency, ZeroMQ N-Hit throughput, MUSER seconds per 5-s batch.

1. **pdf**: a writer renames frames of the Ni example (HDF5, 512 x 512) into a watched
   folder every ``--pdf-interval`` s; latency = time the G(r) is in the job's event stream
   minus the time the file was complete (renamed into place). The first frame builds the
   integrator (reported apart); the others measure the warm path. Goal: p95 < 1 s.
2. **nhit**: a sender process (a simulated DAQ) pushes a simulated full-scale KM2A stream
   (``--nhit-seconds`` of data at ``--nhit-scale``, looped with shifted times for
   ``--nhit-duration`` s, paced at ``--nhit-rate`` MB/s, default 600, 0 = unpaced) over
   ZeroMQ PUSH/PULL in the live framing (nhit/wire.py); the live nhit_trigger job (journal
   mode ``--nhit-journal``, default the live default) decides events as fragments arrive. Throughput = bytes received /
   (last decision - first send). Goal: >= 546 MB/s with no loss (every fragment and hit
   counted). The sender shares the 2 cores with the job here; a DAQ is another machine.
3. **muser**: frame files of a simulated dataset arrive in a watched folder; seconds per
   5-s batch on the warm path (PSFs cached). Goal: < 5 s.

Usage::

    python benchmarks/live.py                       # all three, short runs
    python benchmarks/live.py --only nhit --nhit-duration 60
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from hisci import Registry, Settings, run_plugin
from hisci.live import read_events

ROOT = Path(__file__).parents[1]
FULL_RATE = 546.0


def registry() -> Registry:
    return Registry.discover(Settings(plugin_path=(), builtins=True, entry_points=False))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_thread(plugin, request, out, live) -> tuple[threading.Thread, dict]:
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", run_plugin(plugin, request, output_dir=out,
                                                                            live=live)), daemon=True)
    thread.start()
    return thread, box


def wait_running(out: Path) -> None:
    import json

    while not ((out / "job.json").exists() and json.loads((out / "job.json").read_text())["status"] == "running"):
        time.sleep(0.02)


# ------------------------------------------------------------------------------------ pdf
def bench_pdf(tmp: Path, frames: int, interval: float) -> None:
    import h5py

    pdf = registry().get("pdf")
    example = ROOT / "plugins" / "pdf" / "example"
    with h5py.File(example / "Ni_example.h5") as fh:
        image = fh["entry/data/data"][()]
    request = pdf.example_request()
    del request["data"]["image"]
    for entry in request["data"].values():
        entry["link"] = str(ROOT / "plugins" / "pdf" / entry["link"])
    folder, out = tmp / "pdf_in", tmp / "pdf_out"
    folder.mkdir()
    thread, box = in_thread(pdf, request, out, {"watch": {"image": str(folder)}, "until": frames, "settle": 0,
                                                "poll": 0.05, "pattern": "*.h5"})
    wait_running(out)
    rng = np.random.default_rng(0)
    complete: dict[str, float] = {}
    for k in range(frames):
        tmp_file = folder / f".frame{k:04d}.tmp"
        with h5py.File(tmp_file, "w") as fh:
            fh.create_dataset("entry/data/data", data=image + rng.poisson(1, image.shape).astype(image.dtype))
        tmp_file.rename(folder / f"frame{k:04d}.h5")
        complete[f"frame{k:04d}"] = time.time()
        if k == 0:  # the first frame builds the integrator (cold); the rest measure the warm path
            while not any(e["type"] == "live" for e in read_events(out / "live" / "events.jsonl")):
                time.sleep(0.05)
        time.sleep(interval)
    thread.join(300)
    result = box["r"]
    events = [e for e in read_events(out / "live" / "events.jsonl") if e["type"] == "live"]
    latency = np.array([e["time"] - complete[e["data"]["label"].split(":")[0].split("#")[0]] for e in events])
    compute = np.array([e["data"]["seconds"] for e in events])
    p95 = float(np.percentile(latency[1:], 95))
    print(f"pdf: {len(events)} frames, status {result.status}; file complete -> G(r) in the event stream: "
          f"median {np.median(latency[1:]):.3f} s, p95 {p95:.3f} s, max {latency[1:].max():.3f} s "
          f"(warm frames; the first, which builds the integrator, {latency[0]:.3f} s); "
          f"compute per frame median {np.median(compute[1:]):.3f} s")
    print(f"pdf: goal p95 < 1 s: {'met' if p95 < 1 else 'NOT met'} (ratio to goal {p95 / 1.0:.2f})")


# ----------------------------------------------------------------------------------- nhit
def _sender(path: str, port: int, duration: float, rate: float, started, done) -> None:
    """A simulated DAQ: the stream's fragments looped with shifted times for ``duration`` s,
    at ``rate`` MB/s (0: as fast as the job takes them).

    Each fragment lives in one buffer, shifted in place once per loop (the time fields only)
    and sent zero-copy; the next loop waits until ZeroMQ has put it on the wire (a tracker),
    so the sender's CPU is the shift and the kernel's socket copy, as a DAQ's would be."""
    import zmq

    from hisci.builtin_plugins.nhit import wire
    from hisci.builtin_plugins.nhit.hitstream import FRAGMENT_HEADER_DTYPE, HitStream

    stream = HitStream(path)
    messages = wire.messages(path)
    start, frags = messages[0], messages[1:-1]
    span = stream.header.stop_ns - stream.header.start_ns
    n = len(frags)
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, 16)
    sock.connect(f"tcp://127.0.0.1:{port}")
    buffers = [bytearray(m) for m in frags]
    heads = [np.frombuffer(b, FRAGMENT_HEADER_DTYPE, count=1) for b in buffers]
    times = [np.frombuffer(b, np.int64, offset=FRAGMENT_HEADER_DTYPE.itemsize).reshape(-1, 2)[:, 0]
             for b in buffers]  # the first 8 bytes of each 16-byte hit record
    hits_per_loop = sum(len(t) for t in times)
    trackers: list = [None] * n
    t0 = time.time()
    started.send(t0)
    sock.send(start)
    sent = len(start)
    r = 0
    while True:
        for k, buf in enumerate(buffers):
            if r:
                trackers[k].wait()  # ZeroMQ is done with last loop's send of this buffer
                heads[k]["index"] += n
                heads[k]["begin_ns"] += span
                heads[k]["end_ns"] += span
                times[k] += span
            if rate:  # a DAQ's fixed rate: hold the next message until it is due
                delay = t0 + sent / (rate * 1e6) - time.time()
                if delay > 0:
                    time.sleep(delay)
            trackers[k] = sock.send(buf, copy=False, track=True)
            sent += len(buf)
        r += 1
        if time.time() - t0 >= duration:
            break
    end = wire.encode_end(stream.header.start_ns + r * span, r * n, r * hits_per_loop)
    sock.send(end)
    sent += len(end)
    sock.close(linger=-1)
    zmq.Context.instance().term()  # blocks until every queued message is on the wire
    done.send((sent, r * n, r * hits_per_loop, time.time() - t0))


def bench_nhit(tmp: Path, seconds: float, scale: float, duration: float, rate: float,
               journal: str | None = None) -> None:
    from hisci.builtin_plugins.nhit.simulate import SimulationConfig, simulate_stream

    path = tmp / "stream.hits"
    t = time.perf_counter()
    simulate_stream(path, SimulationConfig(seconds=seconds, scale=scale, seed=1))
    size = path.stat().st_size
    print(f"nhit: simulated {seconds} s at scale {scale}: {size / 1e6:.0f} MB ({size / 1e6 / seconds:.0f} MB/s of "
          f"data) in {time.perf_counter() - t:.1f} s")
    trigger = registry().get("nhit_trigger")
    port = free_port()
    out = tmp / "nhit_out"
    thread, box = in_thread(trigger, {"extra": {"threshold": 20, "window_ns": 400}}, out,
                            {"zmq": {"hits": f"bind:tcp://127.0.0.1:{port}"}, "idle": 120,
                             **({"journal": journal} if journal else {})})
    wait_running(out)
    import resource

    cpu0 = time.process_time()
    ctx = mp.get_context("fork")
    started_r, started_w = ctx.Pipe(False)
    done_r, done_w = ctx.Pipe(False)
    sender = ctx.Process(target=_sender, args=(str(path), port, duration, rate, started_w, done_w))
    sender.start()
    t_first = started_r.recv()
    thread.join(duration * 4 + 120)
    sent, frags, hits, send_s = done_r.recv()
    sender.join(30)
    job_cpu = time.process_time() - cpu0  # this process: the job's receiver and trigger threads
    sender_cpu = sum(getattr(resource.getrusage(resource.RUSAGE_CHILDREN), f) for f in ("ru_utime", "ru_stime"))
    result = box["r"]
    s = result.summary
    events = [e for e in read_events(out / "live" / "events.jsonl") if e["type"] == "live"]
    t_last = events[-1]["time"]
    throughput = s["bytes_received"] / 1e6 / (t_last - t_first)
    lag = result.record["live"]["sources"]["hits"]
    lags = [e for e in read_events(out / "live" / "events.jsonl") if e["type"] == "lag"]
    behind = max((e["seconds_behind"] for e in lags), default=0.0)
    mode = result.record["live_spec"]["journal"]
    print(f"nhit: journal={mode}; sender paced at {rate or 'unpaced'} MB/s: sent {sent / 1e6:.0f} MB "
          f"({sent / 1e6 / send_s:.0f} MB/s; {frags} fragments, {hits} hits) in {send_s:.1f} s; most behind "
          f"{behind:.2f} s; received "
          f"{s['bytes_received'] / 1e6:.0f} MB, {s['fragments_received']} fragments, {s['hits_received']} hits; "
          f"complete={s['complete']}, dropped {lag['dropped']}, spooled {lag['spooled']}; events {s['events']}; "
          f"stopped: {result.record['live']['stop']}")
    if not s["complete"]:
        print("nhit: log warnings:\n" + "\n".join(line for line in (out / "log.txt").read_text().splitlines()
                                                   if "WARNING" in line or "ERROR" in line)[-2000:])
    print(f"nhit: CPU: the live job {job_cpu:.1f} s ({s['bytes_received'] / 1e6 / job_cpu:.0f} MB per CPU-second, "
          f"{FULL_RATE / (s['bytes_received'] / 1e6 / job_cpu):.2f} of a core at {FULL_RATE:.0f} MB/s); "
          f"the sender {sender_cpu:.1f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"nhit: sustained {throughput:.0f} MB/s from first send to last decision over {t_last - t_first:.1f} s; "
          f"goal >= {FULL_RATE:.0f} MB/s with no loss: "
          f"{'met' if throughput >= FULL_RATE and s['complete'] and not lag['dropped'] else 'NOT met'} "
          f"(ratio {throughput / FULL_RATE:.2f})")


# ---------------------------------------------------------------------------------- muser
def bench_muser(tmp: Path, batches: int, major_cycles: int) -> None:
    from hisci.builtin_plugins.muser_imaging import frames as F
    from hisci.builtin_plugins.muser_imaging import simulate as S

    S.simulate_dataset(tmp / "ds", n_batches=batches, seed=5)
    raw = (tmp / "ds" / "target.bin").read_bytes()
    muser = registry().get("muser_imaging")
    folder, out = tmp / "muser_in", tmp / "muser_out"
    folder.mkdir()
    # plugin defaults (64 channels, L+R, 512 px, w-correction, Clark 300) but the major cycles:
    # 0 is the real-time mode of benchmarks/muser.py
    request = {"data": {"dataset": {"link": str(tmp / "ds")}}, "extra": {"clean_major_cycles": major_cycles}}
    thread, box = in_thread(muser, request, out, {"watch": {"frames": str(folder)}, "idle": 3, "settle": 0,
                                                  "pattern": "*.bin"})
    wait_running(out)
    per_batch = 8 * F.FRAME_SIZE
    for k in range(0, len(raw), per_batch):
        (folder / f".b{k}").write_bytes(raw[k:k + per_batch])
        (folder / f".b{k}").rename(folder / f"batch_{k // per_batch:03d}.bin")
        time.sleep(0.2)
    thread.join(900)
    s = box["r"].summary
    seconds = [b["seconds"] for b in s["batches"]]
    warm = s["seconds_per_batch_warm"]
    print(f"muser: {len(seconds)} batches of {s['image_size']} px, {major_cycles} major cycles, seconds per batch "
          f"{seconds} "
          f"(first: cold, PSFs made); warm median {warm} s")
    print(f"muser: goal < 5 s per 5-s batch warm: {'met' if warm is not None and warm < 5 else 'NOT met'} "
          f"(ratio {warm / 5 if warm else float('nan'):.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["pdf", "nhit", "muser"])
    ap.add_argument("--pdf-frames", type=int, default=20)
    ap.add_argument("--pdf-interval", type=float, default=0.5)
    ap.add_argument("--nhit-seconds", type=float, default=0.5)
    ap.add_argument("--nhit-scale", type=float, default=1.0)
    ap.add_argument("--nhit-duration", type=float, default=15.0)
    ap.add_argument("--nhit-rate", type=float, default=600.0,
                    help="the sender's rate, MB/s (default 600: 10%% over the full KM2A rate; 0: unpaced)")
    ap.add_argument("--nhit-journal", choices=["always", "behind"],
                    help="the ZeroMQ journal mode (default: the live default, always)")
    ap.add_argument("--muser-batches", type=int, default=3)
    ap.add_argument("--muser-major-cycles", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hisci-live-bench-") as tmp:
        tmp = Path(tmp)
        if args.only in (None, "pdf"):
            bench_pdf(tmp, args.pdf_frames, args.pdf_interval)
        if args.only in (None, "nhit"):
            bench_nhit(tmp, args.nhit_seconds, args.nhit_scale, args.nhit_duration, args.nhit_rate,
                       args.nhit_journal)
        if args.only in (None, "muser"):
            bench_muser(tmp, args.muser_batches, args.muser_major_cycles)


if __name__ == "__main__":
    main()
