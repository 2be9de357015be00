"""nhit_trigger in chunks of time fragments: each chunk triggers a range of fragments.

A fragment's events depend only on its own hits (the stream's overlap carries the hits a
window needs from its neighbour, and ``first``/``last`` mark the stream's ends), so a chunk
triggers fragments ``a..b`` on its own and keeps the un-numbered events in ``events.npz``.
``merge`` writes them in fragment order through one :class:`EventFileWriter`, which numbers
the events: ``events.dat`` is byte-identical to a single-process run.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from hisci.builtin_plugins.nhit.config import load_config, open_stream, whole_number
from hisci.builtin_plugins.nhit.eventfile import EventFileWriter
from hisci.builtin_plugins.nhit.pipeline import EventStats, _process
from hisci.builtin_plugins.nhit.trigger import BufferPool, EventBlock
from hisci.parallel import ChunkPart, split_range

OUTPUT_NAME = "events.dat"
PLAN_FILE = "nhit_plan.json"
FIELDS = ("time", "stop", "n_max", "n_hits", "n_ed", "hits")


def plan(ctx: Any) -> list[dict[str, Any]]:
    """Ranges of fragment indices."""
    load_config(ctx)  # bad settings fail before any chunk runs
    stream = open_stream(ctx.input("hits"))
    ctx.save_json(f"chunks/{PLAN_FILE}", {"t0": time.time(), "fragments": len(stream)})
    return [{"fragments": [a, b]} for a, b in split_range(0, len(stream), ctx)]


def run_chunk(ctx: Any, chunk: dict[str, Any]) -> dict[str, Any]:
    """Trigger fragments ``chunk["fragments"]``; events (not numbered) in ``events.npz``."""
    config = load_config(ctx)
    stream = open_stream(ctx.input("hits"))
    a, b = (int(v) for v in chunk["fragments"])
    pool = BufferPool()
    blocks = []
    for k in range(a, b):
        blocks.append(_process(stream, k, config, pool))
        ctx.progress((k + 1 - a) / (b - a), f"fragment {k + 1 - a}/{b - a}")
    block = EventBlock(*(np.concatenate([getattr(bl, f) for bl in blocks]) if blocks
                         else getattr(EventBlock.empty(), f) for f in FIELDS))
    np.savez(ctx.output_dir / "events.npz", **{f: getattr(block, f) for f in FIELDS})
    return {"fragments": [a, b], "events": len(block), "file": "events.npz",
            "hits_read": int(sum(stream.fragments[k].count for k in range(a, b)))}


def merge(ctx: Any, parts: list[ChunkPart]) -> dict[str, Any]:
    """One events.dat in fragment order (events numbered here), figures and the summary."""
    from .plugin import finish_summary

    config = load_config(ctx)
    with ctx.field("run_number") as text:
        run_number = whole_number(text)
    stream = open_stream(ctx.input("hits"))
    head = stream.header
    info = json.loads((ctx.output_dir / "chunks" / PLAN_FILE).read_text("utf-8"))
    writer = EventFileWriter(ctx.output_dir / OUTPUT_NAME, run_number=run_number,
                             start_ns=head.start_ns, end_ns=head.stop_ns, type_tag=config.type_tag)
    st = EventStats()
    try:
        for part in sorted(parts, key=lambda p: p.result["fragments"][0]):
            path = part.output_dir / part.result["file"]
            with np.load(path, allow_pickle=False) as npz:
                block = EventBlock(*(npz[f] for f in FIELDS))
            writer.write(block)
            st.add(block)
            path.unlink()
        writer.close()
    except BaseException:
        writer.abort()
        raise
    wall = time.time() - float(info["t0"])
    seconds = (head.stop_ns - head.start_ns) * 1e-9
    n_hits, n_ed = st.array("n_hits"), st.array("n_ed")
    summary = {
        "hits_read": stream.n_hits, "bytes_read": stream.nbytes, "stream_seconds": seconds,
        "events": writer.events,
        "trigger_rate_hz": writer.events / seconds if seconds > 0 else None,
        "mb_per_s": stream.nbytes / 1e6 / wall if wall > 0 else None, "wall_time_s": wall,
        "workers": len({(p.host, p.index) for p in parts}),
        "mean_hits_per_event": float(n_hits.mean()) if len(n_hits) else 0.0,
        "mean_ed_hits_per_event": float(n_ed.mean()) if len(n_ed) else 0.0,
        "output_bytes": writer.bytes, "output_input_ratio": writer.bytes / stream.nbytes,
        "threshold": config.threshold, "window_ns": config.window_ns, "trigger": config.mode,
        "run_number": run_number, "output": OUTPUT_NAME, "hosts": sorted({p.host for p in parts}),
    }
    return finish_summary(ctx, summary, config, head, st)
