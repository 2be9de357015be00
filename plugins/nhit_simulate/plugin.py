"""hisci plugin ``nhit_simulate``: a synthetic KM2A-like ``.hits`` stream with its truth."""

from __future__ import annotations

import numpy as np

from hisci.builtin_plugins.nhit import figures
from hisci.builtin_plugins.nhit.glue import as_int, input_error
from hisci.builtin_plugins.nhit.hitstream import HitStream
from hisci.builtin_plugins.nhit.simulate import SimulationConfig, simulate_stream

STREAM_NAME = "stream.hits"
TRUTH_NAME = "truth.npz"


def load_config(extra: dict) -> SimulationConfig:
    """The simulation parameters from ``params["extra"]``; bad values become input errors."""
    try:
        return SimulationConfig(
            seconds=float(extra["seconds"]), scale=float(extra["scale"]),
            seed=as_int(extra["seed"], "seed", minimum=0),
            shower_rate_hz=float(extra["shower_rate_hz"]),
            ed_noise_hz=float(extra["ed_noise_hz"]), md_noise_hz=float(extra["md_noise_hz"]),
            fragment_ns=as_int(extra["fragment_ms"] * 1_000_000, "fragment_ms", minimum=1),
            overlap_ns=as_int(extra["overlap_us"] * 1_000, "overlap_us", minimum=0),
        )
    except ValueError as exc:
        raise input_error(f"nhit_simulate: {exc}") from None


def run(ctx):
    cfg = load_config(ctx.params["extra"])
    ctx.logger.info("simulating %.3f s at scale %.3f: %d ED + %d MD channels, seed %d",
                    cfg.seconds, cfg.scale, cfg.n_ed, cfg.n_md, cfg.seed)
    path = ctx.output_dir / STREAM_NAME

    def progress(done: int, total: int) -> None:
        ctx.progress(0.05 + 0.85 * done / total, f"fragment {done}/{total}")

    ctx.progress(0.01, "drawing showers")
    truth = simulate_stream(path, cfg, truth_path=ctx.output_dir / TRUTH_NAME, progress=progress)
    stream = HitStream(path)
    ctx.save_figure(figures.histogram(truth.multiplicity, "Injected shower multiplicity",
                                      "fired EDs"), "multiplicity")
    return {
        "stream": STREAM_NAME, "truth": TRUTH_NAME,
        "seconds": cfg.seconds, "scale": cfg.scale, "seed": cfg.seed,
        "ed_channels": cfg.n_ed, "md_channels": cfg.n_md,
        "fragments": len(stream), "hits": stream.n_hits, "bytes": stream.nbytes,
        "data_rate_mb_per_s": stream.nbytes / 1e6 / cfg.seconds,
        "showers": len(truth),
        "showers_over_20_eds": int(np.sum(truth.multiplicity >= 20)),
    }
