"""Benchmark: one MUSER-I 5-s batch (8 frames -> 128 images of 512 x 512), per-step split.

From frames on disk to files: read and split target.bin, validate, weather flag,
calibrate (gains solved once per dataset from calibrator.bin), uvw, PSFs (one per
channel, shared by L and R), 128 dirty images with w-correction, Clark CLEAN of 300
iterations on every image, restore, write dirty.npy and clean.npy.

Run: ``python benchmarks/muser.py [--threads 2] [--clean clark] [--size 512] [--batches 3]``.
The first (cold) batch includes the PSFs; the next batches, within a minute, reuse
them from the cache (the stream-mode steady state; the first warm batch often pays
for the memory freed by the cold one being handed back). numba kernels are compiled
(and cached) by a warm-up call that is not timed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hisci.builtin_plugins.muser_imaging import dataset as D
from hisci.builtin_plugins.muser_imaging import pipeline as P
from hisci.builtin_plugins.muser_imaging import simulate as S


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clean", default="clark", choices=["none", "hogbom", "clark"])
    ap.add_argument("--size", default="512")
    ap.add_argument("--niter", type=int, default=300)
    ap.add_argument("--no-w", action="store_true", help="w = 0 quick look")
    ap.add_argument("--double", action="store_true", help="float64 gridding")
    ap.add_argument("--major-cycles", type=int, default=0,
                    help="exact visibility major cycles (plugin default 2; 0 = real-time mode)")
    ap.add_argument("--batches", type=int, default=3,
                    help="batches to time (the first one cold, the others warm)")
    ap.add_argument("--psf-w0", action="store_true",
                    help="PSFs without w-gridding (about 8x cheaper)")
    args = ap.parse_args()
    size = args.size if args.size == "auto" else int(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ds"
        S.simulate_dataset(folder, n_batches=max(args.batches, 1), seed=1)
        cfg = P.ImagingConfig(polarizations=("L", "R"), image_size=size, cell_arcsec="auto",
                              w_correction=not args.no_w, clean=args.clean,
                              clean_niter=args.niter, nthreads=args.threads,
                              single=not args.double, major_cycles=args.major_cycles,
                              psf_w_correction=False if args.psf_w0 else None)
        # warm-up: compile the numba kernels on a tiny problem (not timed)
        warm = P.ImagingConfig(channels=(0,), image_size=64, cell_arcsec=60.0, clean=args.clean,
                               clean_niter=5, nthreads=1)
        ds = D.open_dataset(folder)
        cal = P.solve_calibration(D.read_frames(ds.files["calibrator"]).frames,
                                  ds.calibrator_flux)
        t_ref = D.parse_utc(ds.observation["start_utc"])
        b0 = D.group_batches(D.read_frames(ds.files["target"]).frames, t_ref)[0]
        P.process_batch(ds, b0, cal, warm)

        cache = P.PsfCache(60.0)
        out = Path(tmp) / "out"
        out.mkdir()
        summary = []
        for k in range(max(args.batches, 1)):
            t = {}
            t0 = time.perf_counter()
            ds = D.open_dataset(folder)
            t["open"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            rep = D.read_frames(ds.files["target"], k * 800_000, (k + 1) * 800_000)
            batch = D.group_batches(rep.frames, D.parse_utc(ds.observation["start_utc"]))[0]
            t["read+split"] = time.perf_counter() - t1
            t2 = time.perf_counter()
            if k == 0:
                cal = P.solve_calibration(D.read_frames(ds.files["calibrator"]).frames,
                                          ds.calibrator_flux)
            t["solve gains"] = time.perf_counter() - t2
            res = P.process_batch(ds, batch, cal, cfg, cache)
            for key, v in res.summary["timings_s"].items():
                if key != "total":
                    t[key] = v
            cpu = res.summary["cpu_s"]
            t3 = time.perf_counter()
            d = out / f"batch_{batch.index}"
            d.mkdir(exist_ok=True)
            np.save(d / "dirty.npy", res.dirty)
            if res.restored is not None:
                np.save(d / "clean.npy", res.restored)
            (d / "images.json").write_text(json.dumps(res.summary, default=float))
            t["write"] = time.perf_counter() - t3
            total = time.perf_counter() - t0
            label = "cold (PSFs computed)" if k == 0 else "warm (PSFs from cache)"
            shape = res.dirty.shape
            print(f"batch {batch.index} {label}: {shape[0] * shape[1]} images "
                  f"{shape[2]}x{shape[3]}, clean={args.clean} niter={args.niter} "
                  f"major_cycles={args.major_cycles}, w_correction={not args.no_w}, "
                  f"psf_w={not args.psf_w0 and not args.no_w}, threads={args.threads}")
            for key, v in t.items():
                print(f"  {key:12s} {v:7.3f} s")
            print(f"  {'TOTAL':12s} {total:7.3f} s  (real time: < 5 s)")
            print("  process CPU seconds (all threads; / threads = wall time on idle cores): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
            summary.append(total)
        print("TOTAL per batch: " + ", ".join(
            f"{'cold' if k == 0 else 'warm'} {v:.3f} s" for k, v in enumerate(summary)))


if __name__ == "__main__":
    main()
