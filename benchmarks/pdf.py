"""Benchmark of the `pdf` plugin: 2048x2048 image -> G(r), single frame and batch.

Run: ``python benchmarks/pdf.py [--frames 100] [--method full]``

Uses the real PONI of tests/data/pdf (Perkin-Elmer 2048x2048, 200 µm) and an image
simulated from the real Ni pattern with pyFAI's calcfrom1d (Poisson noise, hot pixels,
beam stop, mask). Prints, as the issue asks:

* seconds from image to G(r) for one frame, cold (pyFAI.load + CSR build + transform
  plan) and warm (plan cached), with the integration / transform split, as a ratio to
  the goal of 1 s;
* frames/s over N frames in batch (integrator and transform plan reused), as a ratio to
  the goal of 20 frames/s;
* the ratio to a naive loop that calls ``pyFAI.load`` + ``integrate1d`` per frame.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "pdf"


def make_frames(n_distinct: int, seed: int = 3):
    import pyFAI

    ai = pyFAI.load(str(DATA / "Ni_poni_file.poni"))
    shape = tuple(ai.detector.shape)
    q, inten = np.loadtxt(DATA / "Ni_chi_file.chi", comments="#").T
    i = int(np.argmin(np.abs(q - 15.872)))
    inten[i] = np.median(inten[i - 3:i + 4])
    ideal = ai.calcfrom1d(q, 10.0 * inten, shape=shape, dim1_unit="q_A^-1",
                          correctSolidAngle=True, polarization_factor=0.99)
    rng = np.random.default_rng(seed)
    qarr = ai.qArray(shape) / 10.0
    mask = qarr < 0.66
    cy, cx = np.unravel_index(np.argmin(qarr), shape)
    mask[cy - 4:cy + 5, cx:] = True
    frames = []
    for _ in range(n_distinct):
        f = rng.poisson(np.clip(ideal, 0, None)).astype(np.float32)
        hot = rng.integers(0, shape[0], (50, 2))
        f[hot[:, 0], hot[:, 1]] = 2**20
        frames.append(f)
    return frames, mask


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--method", default="full", choices=["full", "bbox", "no"])
    parser.add_argument("--npt", type=int, default=2000)
    parser.add_argument("--naive", type=int, default=5, help="frames for the naive loop")
    args = parser.parse_args(argv)

    import pyFAI

    from hisci.builtin_plugins.pdf.integration import Integrator1D, load_geometry
    from hisci.builtin_plugins.pdf.transform import PDFConfig, PDFTransformer

    config = PDFConfig(composition="Ni", qmin=0.0, qmax=24.0, qmaxinst=25.0, rpoly=2.0,
                       rmin=0.0, rmax=30.0, rstep=0.01)
    poni = DATA / "Ni_poni_file.poni"
    print(f"pdf benchmark: 2048x2048, npt={args.npt}, method={args.method}, "
          f"cores={os.cpu_count()}, pyFAI {pyFAI.version}")
    frames, mask = make_frames(4)

    # -- one frame, cold: everything from scratch
    t0 = time.perf_counter()
    ai = load_geometry(poni)
    integ = Integrator1D(ai, frames[0].shape, npt=args.npt, mask=mask, method=args.method)
    t1 = time.perf_counter()
    res = integ.integrate(frames[0]).trimmed()
    t2 = time.perf_counter()
    transformer = PDFTransformer(res.q, config)
    t3 = time.perf_counter()
    out = transformer.transform(res.intensity)
    t4 = time.perf_counter()
    cold = t4 - t0
    print(f"cold, image -> G(r): {cold:.3f} s  (load {t1 - t0:.3f}, first integrate incl. CSR "
          f"build {t2 - t1:.3f}, transform plan {t3 - t2:.3f}, transform {t4 - t3:.4f})")

    # -- one frame, warm (plan cached); the same bins as the trimmed first frame
    lo = int(np.searchsorted(integ.integrate(frames[0]).q, res.q[0]))
    hi = lo + res.q.size
    reps = 10
    t_int = t_tr = 0.0
    for k in range(reps):
        a = time.perf_counter()
        r = integ.integrate(frames[k % len(frames)])
        b = time.perf_counter()
        transformer.transform(r.intensity[lo:hi])
        c = time.perf_counter()
        t_int += b - a
        t_tr += c - b
    warm = (t_int + t_tr) / reps
    print(f"warm, image -> G(r): {warm:.4f} s/frame  (integration {t_int / reps:.4f}, "
          f"transform {t_tr / reps:.5f}); ratio to 1 s goal: {warm / 1.0:.3f} "
          f"(cold: {cold / 1.0:.2f})")

    # -- batch, (a) pyFAI integrate1d per frame with the cached engine
    n_loop = min(args.frames, 20)
    t0 = time.perf_counter()
    for k in range(n_loop):
        integ.integrate(frames[k % len(frames)])
    loop_fps = n_loop / (time.perf_counter() - t0)
    print(f"pyFAI integrate1d loop, engine cached: {1e3 / loop_fps:.0f} ms/frame, "
          f"{loop_fps:.1f} frames/s (integration only, {n_loop} frames)")

    # -- batch, (b) integrate_many: pyFAI's CSR matrix applied to blocks of frames
    t0 = time.perf_counter()
    _q_all, rows = integ.integrate_many(frames[k % len(frames)] for k in range(args.frames))
    t1 = time.perf_counter()
    batch = transformer.transform(rows[:, lo:hi])
    t2 = time.perf_counter()
    fps = args.frames / (t2 - t0)
    print(f"batch of {args.frames} (integrate_many, fast path {integ.fast_path}): {t2 - t0:.2f} s, "
          f"{fps:.1f} frames/s (integration {(t1 - t0) / args.frames * 1e3:.1f} ms/frame, transform "
          f"{(t2 - t1) / args.frames * 1e3:.3f} ms/frame); ratio to 20 frames/s goal: {fps / 20:.2f}")
    assert batch.gr.shape == (args.frames, out.r.size)
    single = (t1 - t0) / args.frames + t_tr / reps
    print(f"warm single frame via the cached CSR matrix: {single:.4f} s; ratio to 1 s goal: {single:.3f}")

    # -- naive: pyFAI.load + integrate1d per frame (fresh integrator, CSR rebuilt)
    t0 = time.perf_counter()
    for k in range(args.naive):
        ai_k = pyFAI.load(str(poni))
        ai_k.integrate1d(frames[k % len(frames)], args.npt, unit="q_A^-1", mask=mask,
                         polarization_factor=0.99, correctSolidAngle=True,
                         method={"full": ("full", "csr", "cython"), "bbox": ("bbox", "csr", "cython"),
                                 "no": ("no", "csr", "cython")}[args.method])
    naive = (time.perf_counter() - t0) / args.naive
    print(f"naive per-frame pyFAI.load + integrate1d: {naive:.3f} s/frame; ratio naive/batch = "
          f"{naive * fps:.1f}, naive/(cached integrate1d loop) = {naive * loop_fps:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
