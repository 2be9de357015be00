"""hisci plugin ``nhit_check``: the paper's event-file format checker (nhit.md 4.1)."""

from __future__ import annotations

from hisci.builtin_plugins.nhit import figures
from hisci.builtin_plugins.nhit.checker import check_event_file
from hisci.builtin_plugins.nhit.config import load_config, open_stream
from hisci.builtin_plugins.nhit.glue import as_int, input_error
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


def run(ctx):
    extra = ctx.params["extra"]
    threshold = as_int(extra.get("threshold", 0), "threshold", minimum=0)
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
    if extra.get("compare", False):
        summary["compare"] = _compare(ctx, extra, report, path)
    return summary


def _compare(ctx, extra: dict, report, path) -> dict:
    if not ctx.has_input("hits"):
        raise input_error("extra.compare is on but no source stream was given: add the "
                          "'hits' input or switch compare off", pointer="/data/hits")
    config = load_config({**extra, "threshold": extra.get("threshold") or 20})
    stream_path = ctx.input("hits")
    open_stream(stream_path)
    rerun_dir = ctx.output_dir / "rerun"
    rerun_dir.mkdir(exist_ok=True)
    name = report.name or path.name
    ctx.progress(0.3, "re-running the trigger on the source stream")
    run = run_trigger(stream_path, rerun_dir / name, config,
                      workers=as_int(extra.get("workers", 1), "workers", minimum=0),
                      run_number=report.run_number, log=ctx.logger,
                      progress=lambda d, t: ctx.progress(0.3 + 0.6 * d / t, f"fragment {d}/{t}"))
    offset = first_difference(path.read_bytes(), run.path.read_bytes())
    return {"identical": offset is None, "first_difference_offset": offset,
            "rerun_events": run.events, "threshold": config.threshold,
            "window_ns": config.window_ns, "trigger": config.mode}
