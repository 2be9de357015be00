"""hisci plugin ``nhit_check``: the paper's event-file format checker (nhit.md 4.1)."""

from __future__ import annotations

from hisci import InputError, RunContext
from hisci.builtin_plugins.nhit import figures
from hisci.builtin_plugins.nhit.checker import check_event_file
from hisci.builtin_plugins.nhit.config import load_config, open_stream
from hisci.builtin_plugins.nhit.pipeline import run_trigger


def first_difference(a: bytes, b: bytes) -> int | None:
    """Byte offset of the first difference of two byte strings (None if equal)."""
    if a == b:
        return None
    n = min(len(a), len(b))
    for lo in range(0, n, 1 << 16):
        if a[lo : lo + (1 << 16)] != b[lo : lo + (1 << 16)]:
            return lo + next(i for i, (x, y) in enumerate(zip(a[lo:], b[lo:])) if x != y)
    return n


def run(ctx: RunContext) -> dict:
    extra = ctx.params["extra"]
    threshold = extra["threshold"]  # 0: check only the format, no N-Hit rule
    path = ctx.input("events")
    ctx.progress(0.05, f"checking {path.name}")
    report = check_event_file(path, threshold or None)
    summary = report.summary()
    if report.violation is not None:
        ctx.logger.warning("%s: first violation at %s", path.name, report.violation)
    else:
        ctx.logger.info("%s: valid, %d events", path.name, report.events)
    if report.events:
        ctx.save_figure(figures.histogram(report.n_ed, "ED hits per event", "ED hits",
                                          vline=threshold or None), "ed_multiplicity")
    if extra["compare"]:
        summary["compare"] = _compare(ctx, report, path)
    return summary


def _compare(ctx: RunContext, report, path) -> dict:
    if not ctx.has_input("hits"):
        raise InputError("extra.compare is on but no source stream was given: add the "
                         "'hits' input or switch compare off", pointer="/data/hits")
    # a format-only check (threshold 0) re-runs with the paper's N = 20
    config = load_config(ctx, ctx.params["extra"]["threshold"] or 20)
    stream_path = ctx.input("hits")
    open_stream(stream_path)
    rerun_dir = ctx.output_dir / "rerun"
    rerun_dir.mkdir(exist_ok=True)
    name = report.name or path.name
    ctx.progress(0.3, "re-running the trigger on the source stream")
    with ctx.progress_span(0.3, 0.9) as step:
        run = run_trigger(stream_path, rerun_dir / name, config, workers=ctx.params["extra"]["workers"],
                          run_number=report.run_number, log=ctx.logger,
                          progress=lambda d, t: step(d, t, f"fragment {d}/{t}"))
    offset = first_difference(path.read_bytes(), run.path.read_bytes())
    return {"identical": offset is None, "first_difference_offset": offset,
            "rerun_events": run.events, "threshold": config.threshold,
            "window_ns": config.window_ns, "trigger": config.mode}
