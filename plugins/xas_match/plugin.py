"""xas_match: normalise XAS spectra, match them against a reference database, PCA and LCF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hisci import InputError, RunContext

from .analysis import (
    combinations_table,
    lcf_table,
    match_all,
    normalization_table,
    run_lcf,
    run_pca,
)
from .figures import fractions_figure, lcf_figure, match_figure, pca_figure, target_figure
from .library import Library, NormSettings, load_library, normalize_spectra
from .live import run_live  # noqa: F401 - live mode (runtime.live)
from .parallel import merge, plan, run_chunk  # noqa: F401 - runtime.parallel: chunks of spectra
from .xas_io import read_spectra

MAX_FIGURES = 12  # per-spectrum figures written for a batch (the tables hold every spectrum)


def energy_range(text: Any) -> tuple[float | None, float | None]:
    """Parse a text-field range: "auto" -> (None, None); "-150, -30" -> (-150.0, -30.0).

    Raises
    ------
    ValueError
        Neither 'auto' nor two numbers.
    """
    if text is None or str(text).strip().lower() in ("", "auto"):
        return None, None
    if isinstance(text, (list, tuple)) and len(text) == 2:
        return float(text[0]), float(text[1])
    parts = str(text).replace(";", ",").replace(" ", ",").split(",")
    parts = [p for p in parts if p]
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected 'auto' or two numbers 'lo, hi' (eV from E0); got {text!r}") from None
    return lo, hi


def read_settings(ctx: RunContext) -> NormSettings:
    """The normalisation settings of the request."""
    with ctx.field("pre_edge_range") as text:
        pre1, pre2 = energy_range(text)
    with ctx.field("post_edge_range") as text:
        norm1, norm2 = energy_range(text)
    nnorm = ctx.params["extra"]["nnorm"]
    return NormSettings(pre1, pre2, norm1, norm2, None if str(nnorm) == "auto" else int(nnorm))


def _database(ctx: RunContext, settings: NormSettings) -> Library:
    paths = ctx.inputs("database") if ctx.has_input("database") else [
        Path(ctx.plugin_dir) / "reference_db"]
    with ctx.field("/data/database", hint="give XDI files, a folder of them, or a library .h5 built with build_db"):
        return load_library(paths, settings=settings)


def _spectra(ctx: RunContext, signal: str, settings: NormSettings) -> list:
    spectra = []
    for path in ctx.inputs("spectra"):
        with ctx.field("/data/spectra", file=path, hint="XDI, Athena .prj, HDF5 (energy + mu/norm) or "
                                                        "columns with an 'energy' header"):
            spectra += read_spectra(path, signal)
    with ctx.field("/data/spectra"):
        return normalize_spectra(spectra, settings)


def _save_normalized(ctx: RunContext, spectra: list) -> Path:
    import h5py

    path = ctx.output_dir / "normalized.h5"
    with h5py.File(path, "w") as h5:
        for i, ns in enumerate(spectra):
            g = h5.create_group(f"{i:05d}")
            g.attrs.update(name=ns.name, element=ns.element, edge=ns.edge, e0=ns.e0,
                           edge_step=ns.edge_step, edge_energy=ns.edge_energy)
            g["energy"], g["mu"], g["norm"] = ns.energy, ns.spectrum.mu, ns.norm
            for key in ("flat", "pre_edge", "post_edge"):
                if getattr(ns, key) is not None:
                    g[key] = getattr(ns, key)
    normalization_table(spectra).to_csv(ctx.output_dir / "normalization.csv", index=False)
    return path


def run(ctx: RunContext) -> dict:
    extra = ctx.params["extra"]
    mode = extra["mode"]
    fit_range = tuple(float(v) for v in extra["fit_range"])
    shift_range = float(extra["shift_range"])
    settings = read_settings(ctx)

    ctx.progress(0.02, "loading the reference database")
    lib = _database(ctx, settings)
    ctx.logger.info("database: %d references (%s)", len(lib),
                    ", ".join(f"{el} {ed}" for el, ed in lib.edges))
    summary: dict[str, Any] = {"mode": mode, "references": len(lib),
                               "edges": [f"{el} {ed}" for el, ed in lib.edges]}
    if extra["build_db"]:
        lib.save(ctx.output_dir / "library.h5")
        summary["library"] = "library.h5"
    if not ctx.has_input("spectra"):
        if extra["build_db"]:
            return summary
        raise InputError("input 'spectra' was not given", pointer="/data/spectra",
                           hint="upload one or more spectra (XDI, .prj, HDF5, columns)")

    ctx.progress(0.1, "reading and normalising spectra")
    spectra = _spectra(ctx, extra["signal"], settings)
    _save_normalized(ctx, spectra)
    summary["spectra"] = len(spectra)
    summary["e0"] = {ns.name: round(ns.e0, 2) for ns in spectra[:50]}
    if mode != "pca":
        for ns in spectra:
            try:
                lib.for_edge(ns.element, ns.edge)
            except ValueError as exc:
                raise InputError(f"database: spectrum {ns.name} is {ns.element} {ns.edge} "
                                   f"(E0 {ns.e0:.1f} eV) but {exc}",
                                   pointer="/data/database") from None
    analyses = {"match": _match, "lcf": _lcf, "pca": _pca}
    with ctx.field("/extra"):
        summary.update(analyses[mode](ctx, extra, spectra, lib, fit_range, shift_range))
    ctx.progress(1.0, "done")
    return summary


def _match(ctx: RunContext, extra: dict, spectra: list, lib: Library, fit_range: tuple,
           shift_range: float) -> dict:
    metric = extra["metric"]
    with ctx.progress_span(0.15, 0.85):
        table, found = match_all(spectra, lib, metric, extra["top_k"], shift_range, fit_range, xp=ctx.xp,
                                 progress=ctx.progress)
    table.to_csv(ctx.output_dir / "matches.csv", index=False)
    for ns, matches in list(zip(spectra, found))[:MAX_FIGURES]:
        ctx.save_figure(match_figure(ns, matches, lib, fit_range), f"match_{_safe(ns.name)}")
    return {"metric": metric, "best": {ns.name: {"reference": m[0].reference,
                                                 "score": round(m[0].score, 6),
                                                 "shift_eV": round(m[0].shift_eV, 3)}
                                       for ns, m in list(zip(spectra, found))[:100]}}


def _lcf(ctx: RunContext, extra: dict, spectra: list, lib: Library, fit_range: tuple,
         shift_range: float) -> dict:
    ctx.progress(0.2, "linear combination fitting")
    outcome = run_lcf(spectra, lib, list(extra["standards"] or []), fit_range, bool(extra["sum_to_one"]),
                      bool(extra["vary_shift"]), shift_range, bool(extra["combinatorics"]))
    table = lcf_table(outcome, spectra)
    table.to_csv(ctx.output_dir / "lcf.csv", index=False)
    if len(outcome.combinations) > 1:
        combinations_table(outcome, spectra).to_csv(ctx.output_dir / "lcf_combinations.csv",
                                                    index=False)
    sub = lib.for_edge(spectra[0].element, spectra[0].edge)
    for i, ns in enumerate(spectra[:MAX_FIGURES]):
        ctx.save_figure(lcf_figure(outcome, i, ns.name, ns.edge_energy, sub),
                        f"lcf_{_safe(ns.name)}")
    if len(spectra) > 1:
        ctx.save_figure(fractions_figure(table, outcome.standards), "lcf_fractions")
    return {"standards": outcome.standards,
            "weights": {r["spectrum"]: {s: round(r[s], 4) for s in outcome.standards}
                        for r in table.head(100).to_dict("records")},
            "r_factor_max": float(table["r_factor"].max())}


def _pca(ctx: RunContext, extra: dict, spectra: list, lib: Library, fit_range: tuple,
         shift_range: float) -> dict:
    ctx.progress(0.2, "principal component analysis")
    outcome = run_pca(spectra, lib, list(extra["standards"] or []), fit_range)
    outcome.table.to_csv(ctx.output_dir / "pca.csv", index=False)
    outcome.targets.to_csv(ctx.output_dir / "pca_targets.csv", index=False)
    m = outcome.model
    comps = np.column_stack([m.x + spectra[0].edge_energy, m.mean, m.components.T])
    header = ",".join(["energy", "mean"] + [f"pc{i + 1}" for i in range(m.components.shape[0])])
    np.savetxt(ctx.output_dir / "pca_components.csv", comps, delimiter=",", header=header,
               comments="")
    ctx.save_figure(pca_figure(outcome, spectra[0].edge_energy), "pca")
    if outcome.target_fits:
        sub = lib.for_edge(spectra[0].element, spectra[0].edge)
        best = outcome.targets["standard"].head(6)
        pairs = {n: (np.interp(m.x, sub.grid, sub.norm[sub.index([n])[0]]),
                     outcome.target_fits[n]) for n in best}
        ctx.save_figure(target_figure(outcome, pairs, spectra[0].edge_energy), "pca_targets")
    return {"nsig": m.nsig, "variances": [round(float(v), 5) for v in m.variances],
            "targets": outcome.targets.head(20).to_dict("records")}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
