"""Throughput of the N-Hit trigger (issue 7): MB/s of .hits input processed end to end.

Simulates a KM2A-like stream once (default: 2 s at full scale, about 546 MB/s of
hits, nhit.md section 5), then times the trigger (read, order, window, pack,
write) with 1 and 2 worker processes, and a plain numpy implementation
(``argsort(kind="stable")`` of every fragment + ``searchsorted`` window state
machine + slice packing, one process) as the reference. Both outputs must be
byte-identical.

Usage::

    python benchmarks/nhit.py                      # 2 s, scale 1, workers 1 and 2
    python benchmarks/nhit.py --seconds 0.5 --scale 0.1 --workers 1 2 4
    python benchmarks/nhit.py --stream /tmp/full.hits   # reuse a stream

Figures printed: wall time, MB/s, real-time factor against 546 MB/s (full
KM2A) and 230 MB/s (the paper's field test), CPU seconds, MB per CPU second,
peak RSS, trigger rate, hits per event, output/input ratio, and the ratio of
our best MB/s to the numpy reference.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from hisci.builtin_plugins.nhit.eventfile import EventFileWriter
from hisci.builtin_plugins.nhit.hitstream import ED, HitStream
from hisci.builtin_plugins.nhit.kernel import scan_windows_numpy
from hisci.builtin_plugins.nhit.pipeline import run_trigger, warm_up
from hisci.builtin_plugins.nhit.simulate import SimulationConfig, simulate_stream
from hisci.builtin_plugins.nhit.trigger import EventBlock, TriggerConfig, own_ranges

FULL_RATE, FIELD_RATE = 546.0, 230.0  # MB/s: full KM2A (ED+MD), the paper's field test (ED)


def numpy_reference(stream_path: Path, out_path: Path, config: TriggerConfig) -> int:
    """Plain numpy: argsort every fragment, vectorised window, slice packing. Returns events."""
    stream = HitStream(stream_path)
    head = stream.header
    writer = EventFileWriter(out_path, run_number=0, start_ns=head.start_ns, end_ns=head.stop_ns,
                             type_tag=config.type_tag)
    n = len(stream)
    for k, frag in enumerate(stream.fragments):
        hits = np.asarray(stream.hits(k))
        hits = hits[np.argsort(hits["time"], kind="stable")]
        t = hits["time"]
        dec = t if config.mode == "ed+md" else t[hits["det"] == ED]
        ranges = scan_windows_numpy(dec, config.threshold, config.window_ns)
        owned = own_ranges(ranges, config, begin_ns=frag.begin_ns, end_ns=frag.end_ns,
                           overlap_ns=head.overlap_ns, first=k == 0, last=k == n - 1)
        lo = np.searchsorted(t, owned.start, "left")
        hi = np.searchsorted(t, owned.stop, "left")
        parts = []
        for a, b in zip(lo, hi):
            ev = hits[a:b]
            parts.append(ev[np.lexsort((ev["channel"], ev["det"], ev["time"]))])
        packed = np.concatenate(parts) if parts else hits[:0]
        n_hits = (hi - lo).astype(np.int64)
        n_ed = np.array([np.sum(p["det"] == ED) for p in parts], np.int64)
        writer.write(EventBlock(owned.start, owned.stop, owned.n_max, n_hits, n_ed, packed))
    writer.close()
    return writer.events


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn):
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, cpu_seconds() - cpu0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threshold", type=int, default=20)
    ap.add_argument("--window-ns", type=int, default=400)
    ap.add_argument("--trigger", default="ed", choices=["ed", "ed+md"])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3, help="runs per setting; best is reported")
    ap.add_argument("--stream", type=Path, help="reuse this .hits file (else simulate one)")
    ap.add_argument("--no-reference", action="store_true", help="skip the numpy reference")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="nhit-bench-"))
    stream_path = args.stream
    if stream_path is None:
        stream_path = work / "bench.hits"
        cfg = SimulationConfig(seconds=args.seconds, scale=args.scale, seed=args.seed)
        _, wall, _ = timed(lambda: simulate_stream(stream_path, cfg))
        print(f"simulated {args.seconds} s at scale {args.scale}: "
              f"{stream_path.stat().st_size / 1e6:.0f} MB in {wall:.1f} s")
    stream = HitStream(stream_path)
    size_mb = stream.nbytes / 1e6
    seconds = (stream.header.stop_ns - stream.header.start_ns) * 1e-9
    print(f"stream: {size_mb:.0f} MB, {stream.n_hits / 1e6:.1f} M hits, {len(stream)} fragments, "
          f"{seconds:g} s of data ({size_mb / seconds:.0f} MB/s of data)")
    print(f"machine: {os.cpu_count()} CPUs visible, affinity {len(os.sched_getaffinity(0))}, "
          f"load average {os.getloadavg()[0]:.1f}")
    config = TriggerConfig(args.threshold, args.window_ns, args.trigger)
    warm_up()
    stream_path.read_bytes()  # page cache warm, as for a stream arriving from the network

    best: dict[str, float] = {}
    result = None
    for w in args.workers:
        for r in range(args.repeat):
            out = work / f"events_w{w}.dat"
            result, wall, cpu = timed(
                lambda out=out, w=w: run_trigger(stream_path, out, config, workers=w))
            rate = size_mb / wall
            best[f"workers={w}"] = max(best.get(f"workers={w}", 0.0), rate)
            print(f"trigger workers={w} run {r}: {wall:6.2f} s  {rate:7.1f} MB/s  "
                  f"x{rate / FULL_RATE:.2f} of 546 MB/s  x{rate / FIELD_RATE:.2f} of 230 MB/s  "
                  f"cpu {cpu:5.2f} s  {size_mb / cpu:6.1f} MB/cpu-s")
    ours = work / f"events_w{args.workers[-1]}.dat"
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of a worker process: {peak:.0f} MiB "
          f"(parent {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, "
          "includes the page-cache warm-up read)")
    st = result.stats
    n_hits = st.array("n_hits")
    print(f"events {result.events}: {result.events / seconds:.0f} Hz, "
          f"{n_hits.mean():.1f} hits/event ({st.array('n_ed').mean():.1f} ED), "
          f"output/input {result.bytes_written / result.bytes_read:.2%}")
    if not args.no_reference:
        ref_out = work / "events_numpy.dat"
        ref_rates = []
        for r in range(max(1, args.repeat - 1)):
            _, wall, _ = timed(lambda: numpy_reference(stream_path, ref_out, config))
            ref_rates.append(size_mb / wall)
            print(f"numpy argsort+window reference run {r}: {wall:6.2f} s  "
                  f"{size_mb / wall:7.1f} MB/s")
        same = ref_out.read_bytes()[256:] == ours.read_bytes()[256:]
        print(f"reference output identical to ours: {same}")
        top = max(best.values())
        print(f"ratio of our best ({max(best, key=best.get)}, {top:.0f} MB/s) to the numpy "
              f"reference ({max(ref_rates):.0f} MB/s): x{top / max(ref_rates):.2f}")
        by_w1 = best.get("workers=1")
        if by_w1:
            print(f"single-process ratio: x{by_w1 / max(ref_rates):.2f}")
    for p in work.glob("events_*.dat"):
        p.unlink()
    if args.stream is None:
        stream_path.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
