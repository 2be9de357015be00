"""The three modes on normalised spectra: tables (pandas) and the arrays the figures need.

Energies here are relative to the tabulated edge energy (see :mod:`.library`);
``fit_range`` is in the same frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .lcf import LcfResult, lcf_batch, lcf_combinations
from .library import Library, NormalizedSpectrum
from .matching import METRICS, Match, match_spectrum
from .pca import PcaResult, pca_train, target_transform

__all__ = ["LcfOutcome", "PcaOutcome", "common_window", "lcf_table", "match_all",
           "normalization_table", "run_lcf", "run_pca"]

Progress = Callable[[float, str], None]


def normalization_table(spectra: list[NormalizedSpectrum]) -> pd.DataFrame:
    """One row per spectrum: E0, edge step, element, edge and the fit ranges used."""
    rows = []
    for ns in spectra:
        rows.append({"spectrum": ns.name, "source": ns.spectrum.source, "kind": ns.spectrum.kind,
                     "element": ns.element, "edge": ns.edge, "edge_energy": ns.edge_energy,
                     "e0": ns.e0, "edge_step": ns.edge_step, **ns.ranges})
    return pd.DataFrame(rows)


def match_all(spectra: list[NormalizedSpectrum], lib: Library, metric: str, top_k: int,
              shift_range: float, fit_range: tuple[float, float], xp: Any = np,
              progress: Progress | None = None) -> tuple[pd.DataFrame, list[list[Match]]]:
    """Match every spectrum against the references of its own edge.

    Returns
    -------
    table : DataFrame
        Columns spectrum, rank, reference, metric, score, shift_eV, then one column per
        metric (its score at the found shift) and the reference's compound and source.
    matches : list of list of Match
    """
    rows, found = [], []
    subsets: dict[tuple[str, str], Library] = {}
    for i, ns in enumerate(spectra):
        key = (ns.element, ns.edge)
        if key not in subsets:
            subsets[key] = lib.for_edge(*key)
        sub = subsets[key]
        res = match_spectrum(ns.energy - ns.edge_energy, ns.norm, sub, metric=metric,
                             top_k=top_k, shift_range=shift_range, fit_range=fit_range, xp=xp)
        found.append(res)
        for m in res:
            rows.append({"spectrum": ns.name, "rank": m.rank, "reference": m.reference,
                         "metric": metric, "score": m.score, "shift_eV": round(m.shift_eV, 4),
                         **{f"score_{k}": v for k, v in m.scores.items()},
                         "compound": sub.compound[m.row], "e0_reference": sub.e0[m.row]})
        if progress:
            progress((i + 1) / len(spectra), f"matched {ns.name}")
    cols = ["spectrum", "rank", "reference", "metric", "score", "shift_eV"]
    return pd.DataFrame(rows, columns=cols + [f"score_{k}" for k in METRICS] +
                        ["compound", "e0_reference"]), found


def common_window(spectra: list[NormalizedSpectrum], lib: Library,
                  fit_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Fit energies (relative eV) and the spectra on them, shape (n,) and (s, n).

    The energies are the first spectrum's own points inside ``fit_range`` and the
    references' common range (larch fits on the data's points too); the other spectra
    are interpolated onto them and must cover them.
    """
    lo, hi = lib.coverage()
    lo, hi = max(lo, fit_range[0]), min(hi, fit_range[1])
    first = spectra[0]
    rel = first.energy - first.edge_energy
    x = rel[(rel >= lo) & (rel <= hi)]
    if x.size < 5:
        raise ValueError(
            f"fewer than 5 points of {first.name} in the fit window {lo:.1f}..{hi:.1f} eV from "
            f"the {first.element} {first.edge} edge; widen fit_range"
        )
    ys = []
    for ns in spectra:
        r = ns.energy - ns.edge_energy
        if r[0] > x[0] + 1e-6 or r[-1] < x[-1] - 1e-6:
            raise ValueError(f"{ns.name} ({r[0]:.1f}..{r[-1]:.1f} eV from the edge) does not "
                             f"cover the fit window {x[0]:.1f}..{x[-1]:.1f} eV; narrow fit_range")
        ys.append(np.interp(x, r, ns.norm))
    return x, np.stack(ys)


@dataclass
class LcfOutcome:
    """LCF of a batch: the chosen fit per spectrum and every combination tried."""

    x: np.ndarray
    y: np.ndarray
    best: list[LcfResult]          # per spectrum: a one-spectrum LcfResult
    combinations: list[LcfResult]  # every combination (all spectra each)
    standards: list[str]


def _one(res: LcfResult, i: int) -> LcfResult:
    take = lambda a: a[i:i + 1]
    return LcfResult(res.standards, take(res.weights), take(res.stderr), take(res.shifts),
                     take(res.shift_stderr), take(res.fit), take(res.r_factor), take(res.chi2),
                     take(res.reduced_chi2))


def run_lcf(spectra: list[NormalizedSpectrum], lib: Library, standards: list[str],
            fit_range: tuple[float, float], sum_to_one: bool, vary_shift: bool,
            shift_range: float, combinatorics: bool) -> LcfOutcome:
    """Fit every spectrum with the named standards (or all 2..4-subsets of them)."""
    if not standards:
        raise ValueError("LCF needs standards: name 2 to 4 references of the database "
                         f"(e.g. {', '.join(lib.names[:3])})")
    sub = lib.for_edge(spectra[0].element, spectra[0].edge)
    rows = sub.index(list(standards))
    names = [sub.names[r] for r in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"standards are repeated: {', '.join(standards)}")
    if not combinatorics and len(names) > 6:
        raise ValueError(f"{len(names)} standards in one fit; use at most 6, or switch on "
                         "combinatorics to fit every combination of 2 to 4")
    x, y = common_window(spectra, sub.subset(rows), fit_range)
    kw = {"sum_to_one": sum_to_one, "vary_shift": vary_shift, "shift_range": shift_range}
    std = sub.norm[rows].astype(float)
    if combinatorics and len(names) > 2:
        combos = lcf_combinations(x, y, sub.grid, std, names, 2, 4, **kw)
    else:
        combos = [lcf_batch(x, y, sub.grid, std, names, **kw)]
    redchi = np.stack([c.reduced_chi2 for c in combos])  # (combos, spectra)
    pick = redchi.argmin(axis=0)
    best = [_one(combos[c], i) for i, c in enumerate(pick)]
    return LcfOutcome(x, y, best, combos, names)


def lcf_table(outcome: LcfOutcome, spectra: list[NormalizedSpectrum]) -> pd.DataFrame:
    """lcf.csv: spectrum, one column per standard, sum, r_factor, reduced_chi2, then details."""
    rows = []
    for ns, res in zip(spectra, outcome.best):
        w = dict(zip(res.standards, res.weights[0]))
        row: dict[str, Any] = {"spectrum": ns.name}
        row.update({s: float(w.get(s, 0.0)) for s in outcome.standards})
        row.update(sum=float(res.weights[0].sum()), r_factor=float(res.r_factor[0]),
                   reduced_chi2=float(res.reduced_chi2[0]), chi2=float(res.chi2[0]),
                   n_points=int(outcome.x.size), combination=" + ".join(res.standards))
        err = dict(zip(res.standards, res.stderr[0]))
        row.update({f"{s}_stderr": float(err.get(s, 0.0)) for s in outcome.standards})
        sh = dict(zip(res.standards, res.shifts[0]))
        she = dict(zip(res.standards, res.shift_stderr[0]))
        row.update({f"{s}_shift_eV": float(sh.get(s, 0.0)) for s in outcome.standards})
        row.update({f"{s}_shift_stderr": float(she.get(s, 0.0)) for s in outcome.standards})
        rows.append(row)
    return pd.DataFrame(rows)


def combinations_table(outcome: LcfOutcome, spectra: list[NormalizedSpectrum]) -> pd.DataFrame:
    """Every combination for every spectrum, ranked by reduced chi-square."""
    rows = []
    for i, ns in enumerate(spectra):
        for res in outcome.combinations:
            row: dict[str, Any] = {"spectrum": ns.name, "combination": " + ".join(res.standards)}
            w = dict(zip(res.standards, res.weights[i]))
            row.update({s: float(w.get(s, 0.0)) for s in outcome.standards})
            row.update(sum=float(res.weights[i].sum()), r_factor=float(res.r_factor[i]),
                       reduced_chi2=float(res.reduced_chi2[i]))
            rows.append(row)
    df = pd.DataFrame(rows)
    df["rank"] = df.groupby("spectrum")["reduced_chi2"].rank(method="first").astype(int)
    return df.sort_values(["spectrum", "rank"], kind="stable").reset_index(drop=True)


@dataclass
class PcaOutcome:
    model: PcaResult
    table: pd.DataFrame
    targets: pd.DataFrame
    target_fits: dict[str, np.ndarray]


def run_pca(spectra: list[NormalizedSpectrum], lib: Library | None, standards: list[str],
            fit_range: tuple[float, float]) -> PcaOutcome:
    """PCA of the spectra on the fit window and target transformation of candidate standards.

    Candidates are the named ``standards``, or every reference of the spectra's edge.
    """
    if len(spectra) < 3:
        raise ValueError(f"PCA needs at least 3 spectra; got {len(spectra)}")
    sub = None
    if lib is not None:
        try:
            sub = lib.for_edge(spectra[0].element, spectra[0].edge)
        except ValueError:
            if standards:
                raise
    if sub is not None:
        rows = sub.index(list(standards)) if standards else list(range(len(sub)))
        sub = sub.subset(rows)
        x, y = common_window(spectra, sub, fit_range)
    else:
        x, y = common_window(spectra, _everything(spectra), fit_range)
    model = pca_train(x, y)
    k = np.arange(1, model.eigenvalues.size + 1)
    ind = np.append(model.ind, np.nan)
    table = pd.DataFrame({"component": k, "variance": model.variances,
                          "cumulative_variance": np.cumsum(model.variances),
                          "raw_eigenvalue": model.eigenvalues,
                          "raw_cumulative": model.cumulative, "ind": ind,
                          "significant": k <= model.nsig})
    trows, fits = [], {}
    if sub is not None:
        for i, name in enumerate(sub.names):
            t = np.interp(x, sub.grid, sub.norm[i].astype(float))
            tt = target_transform(model, t)
            fits[name] = tt["fit"]
            trows.append({"standard": name, "ncomp": model.nsig, "r_factor": tt["r_factor"],
                          "chi2": tt["chi2"], "rms": tt["rms"]})
    targets = pd.DataFrame(trows, columns=["standard", "ncomp", "r_factor", "chi2", "rms"])
    return PcaOutcome(model, table, targets.sort_values("r_factor", kind="stable"), fits)


def _everything(spectra: list[NormalizedSpectrum]) -> Library:
    """A stand-in library whose coverage is unlimited (PCA without references)."""
    grid = np.array([-1e6, 1e6])
    return Library(grid, np.zeros((1, 2), np.float32), ["_"], [spectra[0].element],
                   [spectra[0].edge], ["_"], ["_"], np.zeros(1), np.zeros(1))
