"""xas_match in chunks of spectra: database matching and batch LCF, a range of spectra each.

``plan`` counts the spectra of every input file and splits them into index ranges (PCA
needs every spectrum at once, so a PCA request, or one without spectra, runs whole).
Each chunk normalises and fits its own spectra; an LCF chunk also carries the batch's first
spectrum, whose energy points define the fit window of the whole batch, so every chunk fits
on the same points as a single run. ``merge`` concatenates the tables in spectrum order,
joins ``normalized.h5`` and keeps the per-spectrum figures of the first spectra.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from hisci import InputError
from hisci.parallel import ChunkPart, split_range

from .analysis import combinations_table, lcf_table, match_all, run_lcf
from .figures import fractions_figure, lcf_figure, match_figure
from .library import normalize_spectra
from .xas_io import read_spectra

TABLES = ("normalization.csv", "matches.csv", "lcf.csv", "lcf_combinations.csv")


def _raw_spectra(ctx: Any) -> list:
    signal = ctx.params["extra"].get("signal", "auto")
    spectra = []
    for path in ctx.inputs("spectra"):
        try:
            spectra += read_spectra(path, signal)
        except ValueError as exc:
            raise InputError(f"spectra: {exc}", file=str(path), pointer="/data/spectra") from None
    return spectra


def plan(ctx: Any) -> list[dict[str, Any]] | None:
    """Ranges of spectrum indices; None (run whole) for PCA or without spectra."""
    extra = ctx.params["extra"]
    if extra.get("mode", "match") not in ("match", "lcf") or not ctx.has_input("spectra"):
        return None
    n = len(_raw_spectra(ctx))
    return [{"spectra": [a, b]} for a, b in split_range(0, n, ctx)]


def run_chunk(ctx: Any, chunk: dict[str, Any]) -> dict[str, Any]:
    """Normalise and match (or fit) spectra ``chunk["spectra"]``; tables and figures here."""
    from .plugin import MAX_FIGURES, _database, _safe, _save_normalized, read_settings

    extra = ctx.params["extra"]
    mode = extra.get("mode", "match")
    a, b = (int(v) for v in chunk["spectra"])
    fit_range = tuple(float(v) for v in extra.get("fit_range", [-20, 80]))
    shift_range = float(extra.get("shift_range", 5.0))
    settings = read_settings(ctx)
    lib = _database(ctx, settings)
    raw = _raw_spectra(ctx)
    anchor = mode == "lcf" and a > 0
    picked = ([raw[0]] if anchor else []) + raw[a:b]
    try:
        normalized = normalize_spectra(picked, settings)
    except ValueError as exc:
        raise InputError(f"spectra: {exc}", pointer="/data/spectra") from None
    mine = normalized[1:] if anchor else normalized
    for ns in mine:
        try:
            lib.for_edge(ns.element, ns.edge)
        except ValueError as exc:
            raise InputError(f"database: spectrum {ns.name} is {ns.element} {ns.edge} "
                               f"(E0 {ns.e0:.1f} eV) but {exc}", pointer="/data/database") from None
    _save_normalized(ctx, mine)
    result: dict[str, Any] = {"spectra": [a, b], "e0": {ns.name: round(ns.e0, 2) for ns in mine},
                              "figures": []}
    try:
        if mode == "match":
            metric, top_k = extra.get("metric", "pearson"), int(extra.get("top_k", 5))
            table, found = match_all(mine, lib, metric, top_k, shift_range, fit_range, xp=ctx.xp,
                                     progress=lambda f, m: ctx.progress(f, m))
            table.to_csv(ctx.output_dir / "matches.csv", index=False)
            result["best"] = {ns.name: {"reference": m[0].reference, "score": round(m[0].score, 6),
                                        "shift_eV": round(m[0].shift_eV, 3)}
                              for ns, m in zip(mine, found)}
            for i, (ns, matches) in enumerate(zip(mine, found)):
                if a + i < MAX_FIGURES:
                    path = ctx.save_figure(match_figure(ns, matches, lib, fit_range), f"match_{_safe(ns.name)}")
                    result["figures"].append(path.name)
        else:
            outcome = run_lcf(normalized, lib, list(extra.get("standards") or []), fit_range,
                              bool(extra.get("sum_to_one")), bool(extra.get("vary_shift")),
                              shift_range, bool(extra.get("combinatorics")))
            skip = 1 if anchor else 0
            table = lcf_table(outcome, normalized).iloc[skip:]
            table.to_csv(ctx.output_dir / "lcf.csv", index=False)
            if len(outcome.combinations) > 1:
                combos = combinations_table(outcome, normalized)
                if anchor:
                    combos = combos[combos["spectrum"] != normalized[0].name]
                combos.to_csv(ctx.output_dir / "lcf_combinations.csv", index=False)
            sub = lib.for_edge(normalized[0].element, normalized[0].edge)
            for i, ns in enumerate(mine):
                if a + i < MAX_FIGURES:
                    path = ctx.save_figure(lcf_figure(outcome, i + skip, ns.name, ns.edge_energy, sub),
                                           f"lcf_{_safe(ns.name)}")
                    result["figures"].append(path.name)
            result["standards"] = outcome.standards
    except ValueError as exc:
        raise InputError(f"{mode}: {exc}", pointer="/extra") from None
    return result


def merge(ctx: Any, parts: list[ChunkPart]) -> dict[str, Any]:
    """Tables in spectrum order, one normalized.h5, the first spectra's figures, the summary."""
    import h5py

    from .library import load_library
    from .plugin import read_settings

    extra = ctx.params["extra"]
    mode = extra.get("mode", "match")
    parts = sorted(parts, key=lambda p: p.result["spectra"][0])
    for name in TABLES:
        frames = [pd.read_csv(Path(p.output_dir) / name) for p in parts
                  if (Path(p.output_dir) / name).exists()]
        if frames:
            table = pd.concat(frames, ignore_index=True)
            if name == "lcf_combinations.csv":
                table = table.sort_values(["spectrum", "rank"], kind="stable").reset_index(drop=True)
            table.to_csv(ctx.output_dir / name, index=False)
    with h5py.File(ctx.output_dir / "normalized.h5", "w") as out:
        k = 0
        for p in parts:
            with h5py.File(Path(p.output_dir) / "normalized.h5", "r") as src:
                for key in sorted(src):
                    src.copy(src[key], out, name=f"{k:05d}")
                    k += 1
    for p in parts:
        for fig in p.result.get("figures", []):
            for suffix in (".json", ".html"):
                shutil.copyfile(Path(p.output_dir) / Path(fig).with_suffix(suffix),
                                ctx.output_dir / Path(fig).with_suffix(suffix).name)
            ctx.figures.append(fig)
    lib = load_library(ctx.inputs("database") if ctx.has_input("database")
                       else [Path(ctx.plugin_dir) / "reference_db"], settings=read_settings(ctx))
    e0: dict[str, float] = {}
    for p in parts:
        e0.update(p.result["e0"])
    summary: dict[str, Any] = {"mode": mode, "references": len(lib),
                               "edges": [f"{el} {ed}" for el, ed in lib.edges],
                               "spectra": len(e0), "e0": dict(list(e0.items())[:50])}
    if mode == "match":
        best: dict[str, Any] = {}
        for p in parts:
            best.update(p.result["best"])
        summary.update(metric=extra.get("metric", "pearson"), best=dict(list(best.items())[:100]))
    else:
        table = pd.read_csv(ctx.output_dir / "lcf.csv")
        standards = parts[0].result["standards"]
        if len(table) > 1:
            ctx.save_figure(fractions_figure(table, standards), "lcf_fractions")
        summary.update(standards=standards,
                       weights={r["spectrum"]: {s: round(r[s], 4) for s in standards}
                                for r in table.head(100).to_dict("records")},
                       r_factor_max=float(table["r_factor"].max()))
    return summary
