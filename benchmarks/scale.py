"""Scale-out (issue 18): speed-up of chunked runs, per-chunk overhead, scheduler overhead.

1. ct_recon (default 2048 columns x 1500 angles x 32 rows, gridrec) and nhit_trigger
   (default 2 s of the full array), each run whole in one process and split over 2 worker
   processes (`hicli run --jobs 2`, the same plan/run_chunk/merge the service uses):
   speed-up and efficiency; the outputs are checked equal (CT: max |diff| <= 1e-6 of the
   range; N-Hit: byte-identical events.dat). Reference: the single-process run with one
   thread (``HISCI_WORKER_THREADS=1``, one worker's share of a 2-worker host, as each chunk
   process has); goal >= 1.8x. CT also reports the single run with every core's threads.
   Both runs start warm (each plugin's example runs first, whole and chunked), and the input
   checksum is computed once before them (its time is reported on its own).
2. The service's overhead per chunk: 64 chunks of a no-op plugin (the test fixture
   ``chunk_sum``) through Redis and 2 real `hicli worker` processes: enqueue-to-start per
   chunk (median, p90) and the merge child's time.
3. A simulation of 8 and 32 workers: chunks of ``--work`` seconds (sleep) scheduled greedily
   on W workers, each chunk paying the measured enqueue-to-start overhead, plus the plan and
   the merge: the scheduler's share of the makespan must stay under 5 %.

Usage::

    python benchmarks/scale.py                        # full sizes (a few minutes on 2 cores)
    python benchmarks/scale.py --small                # 512 columns x 360 angles x 16 rows, 0.5 s N-Hit
    python benchmarks/scale.py --skip-ct --skip-nhit  # only the overhead parts
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


class one_thread:
    """A single run as one worker of a 2-worker host runs it: ``HISCI_WORKER_THREADS=1``
    (ctx.threads, hence ducc0/scipy.fft threads), as each chunk process of ``--jobs 2`` has.
    Without it the "1 process" run uses every core in its FFTs and NUFFT."""

    def __enter__(self):
        self.old = os.environ.get("HISCI_WORKER_THREADS")
        os.environ["HISCI_WORKER_THREADS"] = "1"

    def __exit__(self, *exc):
        if self.old is None:
            os.environ.pop("HISCI_WORKER_THREADS", None)
        else:
            os.environ["HISCI_WORKER_THREADS"] = self.old


def warm(plugin_id: str, tmp: Path) -> None:
    """Run the plugin's example whole and in 2 chunks before any clock starts, so that both
    timed runs find the same warm process (imports, plotly's templates, numba caches): the
    first timed run used to pay them alone."""
    from hisci import Registry, run_plugin

    plugin = Registry.discover().get(plugin_id)
    for jobs in (1, 2):
        result = run_plugin(plugin, example=True, output_dir=tmp / f"warm-{plugin_id}-{jobs}", jobs=jobs)
        assert result.ok, result.error


def bench_ct(tmp: Path, cols: int, angles: int, rows: int) -> dict:
    import h5py

    from hisci import Registry, run_plugin
    from hisci.builtin_plugins.ct_recon.phantom import make_scan, write_data_exchange

    scan = make_scan(n_det=cols, n_angles=angles, n_rows=rows, noise=True, seed=1)
    path = write_data_exchange(tmp / "scan.h5", scan["projections"], scan["flats"], scan["darks"],
                               scan["theta_deg"])
    from hisci.builtin_plugins.ct_recon import fourier
    from hisci.storage import sha256
    from hisci.threads import usable_cores

    warm("ct_recon", tmp)
    _, hash_s = timed(lambda: sha256(path))  # the record's input checksum, once for all runs
    plugin = Registry.discover().get("ct_recon")
    request = {"extra": {"center": (cols - 1) / 2, "algorithm": "gridrec"}}

    def run(name: str, jobs: int = 1):
        # no NUFFT plan cached by an earlier run (chunk processes fork from this one)
        fourier._GEOMETRY_CACHE.clear()
        return timed(lambda: run_plugin(plugin, request, inputs={"scan": path}, output_dir=tmp / name, jobs=jobs))

    with one_thread():
        one, t1 = run("ct1")
    two, t2 = run("ct2", jobs=2)
    threaded, t1_all = run("ct1t")
    assert one.ok and two.ok and threaded.ok, (one.error, two.error, threaded.error)
    with h5py.File(tmp / "ct1/recon.h5") as a, h5py.File(tmp / "ct2/recon.h5") as b:
        va, vb = a["exchange/data"][()], b["exchange/data"][()]
    rel = float(np.abs(va - vb).max() / (va.max() - va.min()))
    return {"case": f"ct_recon {cols}x{angles}x{rows}", "one_s": t1, "two_s": t2, "speedup": t1 / t2,
            "efficiency": t1 / t2 / 2, "one_all_threads_s": t1_all, "input_sha256_s": hash_s,
            "check": f"max|diff|/range = {rel:.2e} (<= 1e-6: {rel <= 1e-6}); 1 process with "
                     f"{usable_cores()} threads {t1_all:.2f} s (2 processes {t1_all / t2:.2f}x faster)"}


def bench_nhit(tmp: Path, seconds: float, scale: float) -> dict:
    from hisci import Registry, run_plugin
    from hisci.builtin_plugins.nhit.simulate import SimulationConfig, simulate_stream

    stream = tmp / "stream.hits"
    simulate_stream(stream, SimulationConfig(seconds=seconds, scale=scale, seed=0))
    from hisci.builtin_plugins.nhit.pipeline import warm_up

    warm_up()  # numba compiles (or loads its cache) before the clock starts, for both runs
    warm("nhit_trigger", tmp)
    from hisci.storage import sha256

    # the record's input checksum (0.86 s at 1 GB, the same serial cost in both runs) is
    # computed once here, so both runs time the trigger; its time is reported on its own
    _, hash_s = timed(lambda: sha256(stream))
    plugin = Registry.discover().get("nhit_trigger")
    request = {"extra": {"threshold": 20, "workers": 1}}
    with one_thread():  # "workers": 1 already keeps the trigger in one process
        one, t1 = timed(lambda: run_plugin(plugin, request, inputs={"hits": stream}, output_dir=tmp / "n1"))
    two, t2 = timed(lambda: run_plugin(plugin, request, inputs={"hits": stream}, output_dir=tmp / "n2", jobs=2))
    assert one.ok and two.ok, (one.error, two.error)
    same = (tmp / "n1/events.dat").read_bytes() == (tmp / "n2/events.dat").read_bytes()
    mb = stream.stat().st_size / 1e6
    return {"case": f"nhit_trigger {seconds:g} s x scale {scale:g} ({mb:.0f} MB)", "one_s": t1, "two_s": t2,
            "speedup": t1 / t2, "efficiency": t1 / t2 / 2, "input_sha256_s": hash_s,
            "check": f"events.dat byte-identical: {same}; input checksum {hash_s:.2f} s (once, before both runs)"}


def _ts(text: str | None) -> float:
    return datetime.fromisoformat(text).timestamp() if text else float("nan")


def bench_overhead(tmp: Path, n_chunks: int = int(os.environ.get("SCALE_CHUNKS", 64)), n_workers: int = 2) -> dict:
    """64 no-op chunks through a real Redis and real worker processes."""
    from redis import Redis

    from hisci import Registry, Settings
    from hisci.jobs import EmbeddedRedis, JobService, User
    from hisci.jobs.reaper import Reaper
    from hisci.jobs.routing import live_workers

    redis_server = EmbeddedRedis(tmp / "redis").start()
    settings = Settings(data_dir=tmp / "data", redis_url=redis_server.url, plugin_path=(FIXTURES,),
                        entry_points=False)
    env = {**os.environ, "HISCI_REDIS_URL": redis_server.url, "HISCI_DATA_DIR": str(settings.data_dir),
           "HISCI_PLUGIN_PATH": str(FIXTURES), "HISCI_NO_ENTRY_POINTS": "1"}
    workers = [subprocess.Popen([sys.executable, "-m", "hicli.main", "worker", "--queue", "cpu"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n_workers)]
    redis = Redis.from_url(redis_server.url)
    service = JobService(settings, Registry.discover(settings))
    reaper = Reaper(settings, redis, service.book).start()
    try:
        deadline = time.monotonic() + 60
        while len(live_workers(redis, "cpu")) < n_workers and time.monotonic() < deadline:
            time.sleep(0.2)
        user = User("bench")
        t0 = time.time()
        parent = service.submit(user, "chunk_sum", {"extra": {"n": 6400, "seconds": 0}}, chunks=n_chunks)
        t_submit = time.time() - t0
        while service.get(user, parent["id"])["status"] not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.2)
        done = service.get(user, parent["id"])
        assert done["status"] == "succeeded", done.get("reason")
        records = [service.book.get(c["id"]).data for c in done["children"]]
        chunks = [r for r in records if r.get("kind") == "chunk"]
        merge = next(r for r in records if r.get("kind") == "merge")
        waits = sorted(_ts(r["started"]) - _ts(r["created"]) for r in chunks)
        runs = sorted(_ts(r["finished"]) - _ts(r["started"]) for r in chunks)
        makespan = _ts(merge["finished"]) - t0
        # enqueue-to-start net of queueing behind other chunks: a worker's gap between jobs
        by_worker: dict[str, list[dict]] = {}
        for r in chunks:
            by_worker.setdefault(r.get("worker") or "?", []).append(r)
        gaps = []
        for rs in by_worker.values():
            rs.sort(key=lambda r: _ts(r["started"]))
            gaps += [_ts(b["started"]) - _ts(a["finished"]) for a, b in zip(rs, rs[1:])]
        return {"submit_s": t_submit, "makespan_s": makespan, "per_chunk_overhead_s": statistics.median(gaps + runs[:1]),
                "gap_median_s": statistics.median(gaps) if gaps else float("nan"),
                "gap_p90_s": float(np.percentile(gaps, 90)) if gaps else float("nan"),
                "chunk_run_median_s": statistics.median(runs), "first_start_s": waits[0],
                "merge_s": _ts(merge["finished"]) - _ts(merge["started"]),
                "merge_wait_s": _ts(merge["started"]) - max(_ts(r["finished"]) for r in chunks),
                "chunks": n_chunks, "workers": n_workers}
    finally:
        reaper.stop()
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(15)
        redis_server.stop()


def simulate(workers: int, chunks: int, work_s: float, overhead_s: float, plan_s: float, merge_s: float) -> dict:
    """Greedy list scheduling of equal chunks; returns makespan and the overhead share."""
    free = [0.0] * workers
    for _ in range(chunks):
        k = min(range(workers), key=free.__getitem__)
        free[k] += overhead_s + work_s
    makespan = plan_s + max(free) + merge_s
    ideal = chunks * work_s / workers
    return {"workers": workers, "chunks": chunks, "work_s": work_s, "makespan_s": makespan,
            "overhead_share": 1 - ideal / makespan}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="small sizes (a quick check)")
    ap.add_argument("--skip-ct", action="store_true")
    ap.add_argument("--skip-nhit", action="store_true")
    ap.add_argument("--skip-service", action="store_true")
    ap.add_argument("--work", type=float, default=10.0, help="seconds of work per simulated chunk")
    args = ap.parse_args()
    cols, angles, rows = (512, 360, 16) if args.small else (2048, 1500, 32)
    n_seconds, n_scale = (0.5, 0.25) if args.small else (2.0, 1.0)
    results = []
    with tempfile.TemporaryDirectory(prefix="hisci-scale-") as tmp:
        tmp = Path(tmp)
        if not args.skip_ct:
            (tmp / "ct").mkdir()
            results.append(bench_ct(tmp / "ct", cols, angles, rows))
        if not args.skip_nhit:
            (tmp / "nhit").mkdir()
            results.append(bench_nhit(tmp / "nhit", n_seconds, n_scale))
        for r in results:
            print(f"{r['case']}: 1 process {r['one_s']:.2f} s, 2 processes {r['two_s']:.2f} s -> "
                  f"speed-up {r['speedup']:.2f}x (goal >= 1.8x), efficiency {100 * r['efficiency']:.0f} %; {r['check']}")
        over = None
        if not args.skip_service:
            (tmp / "svc").mkdir()
            over = bench_overhead(tmp / "svc")
            print(f"service, {over['chunks']} no-op chunks on {over['workers']} workers: makespan "
                  f"{over['makespan_s']:.2f} s (submit incl. plan {over['submit_s']:.2f} s); between two chunks "
                  f"on one worker {1000 * over['gap_median_s']:.0f} ms median, {1000 * over['gap_p90_s']:.0f} ms p90; "
                  f"a no-op chunk runs {1000 * over['chunk_run_median_s']:.0f} ms; merge "
                  f"{1000 * over['merge_s']:.0f} ms (+{1000 * over['merge_wait_s']:.0f} ms to start)")
            per_chunk = over["gap_median_s"] + over["chunk_run_median_s"]
            plan_s, merge_s = over["submit_s"], over["merge_s"] + over["merge_wait_s"]
            for workers in (8, 32):
                sim = simulate(workers, 4 * workers, args.work, per_chunk, plan_s, merge_s)
                print(f"simulation: {workers} workers, {sim['chunks']} chunks of {args.work:g} s: makespan "
                      f"{sim['makespan_s']:.1f} s, scheduler overhead {100 * sim['overhead_share']:.1f} % "
                      f"(goal < 5 %)")
        print(json.dumps({"runs": results, "service": over}, default=float))


if __name__ == "__main__":
    main()
