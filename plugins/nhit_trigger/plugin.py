"""hisci plugin ``nhit_trigger``: the KM2A N-Hit software trigger over a ``.hits`` stream."""

from __future__ import annotations

from typing import Any

import numpy as np

from hisci import InputError, RunContext
from hisci.builtin_plugins.nhit import figures
from hisci.builtin_plugins.nhit.analysis import efficiency_curve, truth_report
from hisci.builtin_plugins.nhit.config import load_config, open_stream, whole_number
from hisci.builtin_plugins.nhit.pipeline import run_trigger
from hisci.builtin_plugins.nhit.simulate import Truth
from hisci.builtin_plugins.nhit.trigger import TriggerConfig

from .live import run_live  # noqa: F401 - live mode (runtime.live)
from .parallel import merge, plan, run_chunk  # noqa: F401 - runtime.parallel: chunks of fragments

OUTPUT_NAME = "events.dat"


def run(ctx: RunContext) -> dict:
    extra = ctx.params["extra"]
    config = load_config(ctx)
    with ctx.field("run_number") as text:
        run_number = whole_number(text)
    stream_path = ctx.input("hits")
    stream = open_stream(stream_path)
    ctx.logger.info("stream %s: %d fragments, %d hits, %d ED + %d MD channels",
                    stream_path.name, len(stream), stream.n_hits, stream.header.n_ed,
                    stream.header.n_md)
    ctx.progress(0.02, f"triggering {len(stream)} fragments")

    with ctx.progress_span(0.02, 0.9) as step, ctx.field("/data/hits", file=stream_path):
        result = run_trigger(stream_path, ctx.output_dir / OUTPUT_NAME, config,
                             workers=extra["workers"] if extra["workers"] > 0 else ctx.threads,
                             run_number=run_number, log=ctx.logger,
                             progress=lambda done, total: step(done, total, f"fragment {done}/{total}"))
    head = stream.header
    seconds = (head.stop_ns - head.start_ns) * 1e-9
    st = result.stats
    n_hits, n_ed = st.array("n_hits"), st.array("n_ed")
    summary = {
        "hits_read": result.hits_read,
        "bytes_read": result.bytes_read,
        "stream_seconds": seconds,
        "events": result.events,
        "trigger_rate_hz": result.events / seconds if seconds > 0 else None,
        "mb_per_s": result.mb_per_s,
        "wall_time_s": result.wall_s,
        "workers": result.workers,
        "mean_hits_per_event": float(n_hits.mean()) if len(n_hits) else 0.0,
        "mean_ed_hits_per_event": float(n_ed.mean()) if len(n_ed) else 0.0,
        "output_bytes": result.bytes_written,
        "output_input_ratio": result.bytes_written / result.bytes_read,
        "threshold": config.threshold, "window_ns": config.window_ns, "trigger": config.mode,
        "run_number": run_number, "output": OUTPUT_NAME,
    }
    return finish_summary(ctx, summary, config, head, st)


def finish_summary(ctx: RunContext, summary: dict, config: TriggerConfig, head: Any, st: Any) -> dict:
    """The trigger's figures (and the truth comparison when given) for a finished event file."""
    times, stop, n_ed = st.array("time"), st.array("stop"), st.array("n_ed")
    ctx.progress(0.92, "figures")
    ctx.save_figure(figures.trigger_rate(times, head.start_ns, head.stop_ns), "trigger_rate")
    ctx.save_figure(figures.histogram(n_ed, "ED hits per event", "ED hits",
                                      vline=config.threshold), "ed_multiplicity")
    ctx.save_figure(figures.histogram(st.array("n_max"), "Largest window count per event",
                                      "n_max", vline=config.threshold), "n_max")
    ctx.save_figure(figures.histogram(stop - times, "Event duration", "range length (ns)"),
                    "event_duration")
    if ctx.has_input("truth"):
        summary["truth"] = _truth_summary(ctx, config, times, stop)
    return summary


def _truth_summary(ctx: RunContext, config: TriggerConfig, times: np.ndarray, stop: np.ndarray) -> dict:
    path = ctx.input("truth")
    try:
        truth = Truth.load(path)
    except (ValueError, OSError, KeyError) as exc:
        raise InputError(f"{path.name}: cannot read the truth file: {exc}", file=str(path),
                         pointer="/data/truth") from None
    rep = truth_report(truth, times, stop, config.threshold, config.window_ns,
                       all_dets=config.mode == "ed+md")
    edges = np.unique(np.round(np.logspace(0, np.log10(max(truth.n_ed, 2) + 1), 30)))
    centers, eff, counts = efficiency_curve(rep["k_own"], rep["triggered"], edges)
    ctx.save_figure(figures.efficiency(centers, eff, counts, config.threshold,
                                       "own ED hits in the densest window"), "efficiency")
    ctx.save_figure(figures.noise_rate(rep["noise_only_rate_hz"], rep["poisson_prediction_hz"],
                                       config.threshold), "noise_rate")
    return {k: v for k, v in rep.items() if not isinstance(v, np.ndarray)}
