"""table_plot: the small example every plugin copies (read a table, plot, summarise)."""

from __future__ import annotations

from hisci import InputError, RunContext

from .chart import build_figure


def run(ctx: RunContext) -> dict:
    frame = ctx.table("datTable")
    ctx.progress(0.2, f"read {len(frame)} rows")
    columns = [item.get("value") or None for item in ctx.params["dataArg"]["datTable"]]
    x, y, group = (columns + [None, None, None])[:3]
    x = x or frame.columns[0]
    y = y or (frame.columns[1] if len(frame.columns) > 1 else None)
    if y is None:
        raise InputError("the table needs at least two columns (x and y)", pointer="/data/datTable")
    extra = ctx.params["extra"]
    with ctx.field("/dataArg/datTable"):
        fig = build_figure(frame, x, y, group, extra["chart_type"], extra["opacity"],
                           extra["marker_size"], extra["log_y"], extra["color"], extra["title"])
    ctx.progress(0.7, "saving the figure")
    ctx.save_figure(fig, "chart")
    png = _try_png(fig, ctx)
    return {"rows": int(len(frame)), "columns": list(map(str, frame.columns)), "x": x, "y": y,
            "group": group, "traces": len(fig.data), "png": png}


def _try_png(fig, ctx: RunContext) -> bool:
    """PNG only when kaleido (and its browser) is present; the plotly JSON is the figure."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    try:
        fig.write_image(ctx.output_dir / "chart.png")
        return True
    except Exception as exc:  # noqa: BLE001 - kaleido needs a browser; say so, don't fail
        ctx.logger.warning("PNG export skipped: %s", exc)
        return False
