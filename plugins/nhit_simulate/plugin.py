"""hisci plugin ``nhit_simulate``: a synthetic KM2A-like ``.hits`` stream with its truth."""

from __future__ import annotations

import numpy as np

from hisci import RunContext
from hisci.builtin_plugins.nhit import figures
from hisci.builtin_plugins.nhit.config import whole_number
from hisci.builtin_plugins.nhit.hitstream import HitStream
from hisci.builtin_plugins.nhit.simulate import SimulationConfig, simulate_stream

STREAM_NAME = "stream.hits"
TRUTH_NAME = "truth.npz"


def load_config(ctx: RunContext) -> SimulationConfig:
    """The simulation parameters of the request."""
    extra = ctx.params["extra"]
    with ctx.field("seed") as text:
        seed = whole_number(text)
    with ctx.field("/extra"):
        return SimulationConfig(
            seconds=float(extra["seconds"]), scale=float(extra["scale"]), seed=seed,
            shower_rate_hz=float(extra["shower_rate_hz"]),
            ed_noise_hz=float(extra["ed_noise_hz"]), md_noise_hz=float(extra["md_noise_hz"]),
            fragment_ns=extra["fragment_ms"] * 1_000_000, overlap_ns=extra["overlap_us"] * 1_000,
        )


def run(ctx: RunContext) -> dict:
    cfg = load_config(ctx)
    ctx.logger.info("simulating %.3f s at scale %.3f: %d ED + %d MD channels, seed %d",
                    cfg.seconds, cfg.scale, cfg.n_ed, cfg.n_md, cfg.seed)
    path = ctx.output_dir / STREAM_NAME

    ctx.progress(0.01, "drawing showers")
    with ctx.progress_span(0.05, 0.9) as step:
        truth = simulate_stream(path, cfg, truth_path=ctx.output_dir / TRUTH_NAME,
                                progress=lambda done, total: step(done, total, f"fragment {done}/{total}"))
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
