"""xas_lcf_combos: combinatorial LCF over the best-ranked references of a match table.

For each spectrum, the ``top_k`` references ranked first for it in ``matches.csv`` (the
output of xas_match in mode ``match``) are combined in every subset of 1 to
``max_components`` standards, and each subset is fitted by LCF (xas_match's exact
constrained least squares). ``lcf.csv`` has xas_match's LCF columns plus ``rank``: one
row per tried combination, best (lowest R-factor) first within each spectrum.
"""

from __future__ import annotations

import itertools
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hisci import InputError, RunContext

from hisci.builtin_plugins.xas_match.analysis import common_window
from hisci.builtin_plugins.xas_match.lcf import lcf_batch
from hisci.builtin_plugins.xas_match.library import Library, NormSettings, load_library, normalize_spectra
from hisci.builtin_plugins.xas_match.xas_io import read_spectra


def _library(ctx: RunContext) -> Library:
    if ctx.has_input("database"):
        paths = ctx.inputs("database")
    else:
        paths = [Path(str(resources.files("hisci.builtin_plugins.xas_match") / "reference_db"))]
    with ctx.field("/data/database"):
        return load_library(paths, settings=NormSettings())


def _matches(ctx: RunContext) -> pd.DataFrame:
    path = ctx.input("matches")
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"matches: cannot read {path.name}: {exc}", pointer="/data/matches") from None
    missing = {"spectrum", "rank", "reference"} - set(table.columns)
    if missing:
        raise InputError(f"matches: {path.name} lacks column(s) {', '.join(sorted(missing))}; give the "
                     "matches.csv that xas_match writes in mode match", pointer="/data/matches")
    return table


def fit_combinations(ns: Any, lib: Library, names: list[str], max_components: int,
                     fit_range: tuple[float, float], sum_to_one: bool) -> pd.DataFrame:
    """Every combination of 1..max_components of ``names`` fitted to one spectrum, best first."""
    sub = lib.for_edge(ns.element, ns.edge)
    rows_all = sub.index(names)
    x, y = common_window([ns], sub.subset(rows_all), fit_range)
    std = sub.norm[rows_all].astype(float)
    rows = []
    for k in range(1, min(max_components, len(names)) + 1):
        for combo in itertools.combinations(range(len(names)), k):
            idx = list(combo)
            res = lcf_batch(x, y, sub.grid, std[idx], [names[j] for j in idx],
                            sum_to_one=sum_to_one)
            w = dict(zip(res.standards, res.weights[0]))
            err = dict(zip(res.standards, res.stderr[0]))
            row: dict[str, Any] = {"spectrum": ns.name}
            row.update({s: float(w.get(s, 0.0)) for s in names})
            row.update(sum=float(res.weights[0].sum()), r_factor=float(res.r_factor[0]),
                       reduced_chi2=float(res.reduced_chi2[0]), chi2=float(res.chi2[0]),
                       n_points=int(x.size), combination=" + ".join(res.standards))
            row.update({f"{s}_stderr": float(err.get(s, 0.0)) for s in names})
            row.update({f"{s}_shift_eV": 0.0 for s in names})
            row.update({f"{s}_shift_stderr": 0.0 for s in names})
            rows.append(row)
    table = pd.DataFrame(rows).sort_values("r_factor", kind="stable").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table


def run(ctx: RunContext) -> dict:
    """Rank-limited combinatorial LCF of every spectrum; writes ``lcf.csv`` (best first)."""
    extra = ctx.params["extra"]
    top_k, max_components = int(extra["top_k"]), int(extra["max_components"])
    fit_range = tuple(float(v) for v in extra["fit_range"])
    ctx.progress(0.05, "loading the reference database")
    lib = _library(ctx)
    matches = _matches(ctx)
    spectra = []
    for path in ctx.inputs("spectra"):
        with ctx.field("/data/spectra", file=path):
            spectra += read_spectra(path)
    spectra = normalize_spectra(spectra, NormSettings())
    tables, best = [], {}
    for i, ns in enumerate(spectra):
        ranked = matches[matches["spectrum"] == ns.name].sort_values("rank")
        names = list(dict.fromkeys(ranked["reference"].astype(str)))[:top_k]
        if not names:
            raise InputError(f"matches: no rows for spectrum {ns.name!r}; run xas_match (mode match) "
                         "on the same spectra", pointer="/data/matches")
        ctx.progress(0.1 + 0.85 * i / len(spectra), f"LCF of {ns.name} over {len(names)} candidates")
        with ctx.field("fit_range"):
            table = fit_combinations(ns, lib, names, max_components, fit_range, bool(extra["sum_to_one"]))
        tables.append(table)
        first = table.iloc[0]
        best[ns.name] = {"combination": first["combination"], "r_factor": float(first["r_factor"]),
                         "fractions": {s: round(float(first[s]), 4) for s in names if first[s] > 0},
                         "stderr": {s: round(float(first[f"{s}_stderr"]), 4) for s in names
                                    if first[s] > 0},
                         "runners_up": list(table["combination"].iloc[1:4])}
    out = pd.concat(tables, ignore_index=True).fillna(0.0)
    out.to_csv(ctx.output_dir / "lcf.csv", index=False)
    ctx.progress(1.0, "done")
    return {"best": best, "combinations": int(len(out))}
