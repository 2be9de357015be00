"""xas_match in live mode: spectra arrive one by one (files in a watched folder, or Bluesky
runs whose stop document closes an energy scan); each is normalised and fitted (LCF
fractions, or the best database matches) at once and published; when the run stops, the
batch outputs of every spectrum received are written as a normal run would.

Bluesky items (``mode: run``) carry the mapped data keys ``energy`` and ``mu`` (name them
with ``keys``, e.g. ``{"energy": "dcm_energy", "mu": "fluor_ratio"}``); the start
document's ``element`` and ``edge`` metadata, when present, name the edge.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hisci import InputError

from .analysis import match_all, run_lcf
from .library import normalize_spectra
from .xas_io import Spectrum, read_spectra


def _spectra_of(ctx: Any, item: Any, signal: str) -> list[Spectrum]:
    if item.path is not None:
        return read_spectra(item.path, signal)
    data, meta = item.data, item.meta
    missing = [k for k in ("energy", "mu") if k not in data]
    if missing:
        raise ValueError(f"the Bluesky run has no data key mapped to {', '.join(missing)} (got "
                         f"{', '.join(data) or 'none'}); map them with keys, e.g. "
                         '{"energy": "energy", "mu": "det"}')
    energy, mu = np.asarray(data["energy"], float), np.asarray(data["mu"], float)
    order = np.argsort(energy, kind="stable")
    name = f"scan {meta.get('scan_id', item.seq)}" + (f" {meta['sample']}" if meta.get("sample") else "")
    return [Spectrum(name, energy[order], mu[order], "mu", meta.get("element"), meta.get("edge"),
                     source=f"bluesky run {str(meta.get('uid', ''))[:8]}", meta=dict(meta))]


def run_live(ctx: Any) -> dict:
    """Fit each spectrum as it arrives; batch outputs of all of them at the end."""
    from . import plugin as batch  # request parsing and the batch outputs

    extra = ctx.params["extra"]
    mode = extra.get("mode", "match")
    if mode == "pca":
        raise InputError("extra.mode: pca needs the whole series; live mode fits each spectrum "
                         "as it arrives (lcf or match)", pointer="/extra/mode", given=mode,
                         allowed=["lcf", "match"])
    fit_range = tuple(float(v) for v in extra.get("fit_range", [-20, 80]))
    shift_range = float(extra.get("shift_range", 5.0))
    settings = batch.read_settings(ctx)
    lib = batch._database(ctx, settings)
    spectra: list = []
    rejected = 0
    for item in ctx.live_items("spectra"):
        try:
            new = normalize_spectra(_spectra_of(ctx, item, extra.get("signal", "auto")), settings)
            for ns in new:
                lib.for_edge(ns.element, ns.edge)
        except ValueError as exc:  # one bad spectrum is reported, the series goes on
            rejected += 1
            ctx.logger.warning("live spectrum %s rejected: %s", item.seq, exc)
            ctx.publish("rejected", {"seq": item.seq, "error": str(exc)[:300]})
            continue
        for ns in new:
            ctx.publish(mode, {"spectrum": ns.name, "index": len(spectra), "e0": round(ns.e0, 2),
                               "time": item.meta.get("time", item.arrived),
                               **_fit_one(ns, lib, extra, mode, fit_range, shift_range, ctx.xp)})
            spectra.append(ns)
    summary: dict[str, Any] = {"mode": mode, "references": len(lib), "spectra": len(spectra),
                               "rejected": rejected}
    if not spectra:
        ctx.logger.warning("live run stopped before any spectrum arrived: no outputs")
        return summary
    batch._save_normalized(ctx, spectra)
    summary["e0"] = {ns.name: round(ns.e0, 2) for ns in spectra[:50]}
    with ctx.field("/extra"):
        analysis = batch._lcf if mode == "lcf" else batch._match
        summary.update(analysis(ctx, extra, spectra, lib, fit_range, shift_range))
    return summary


def _fit_one(ns, lib, extra: dict, mode: str, fit_range, shift_range, xp) -> dict:
    if mode == "lcf":
        outcome = run_lcf([ns], lib, list(extra.get("standards") or []), fit_range,
                          bool(extra.get("sum_to_one")), bool(extra.get("vary_shift")), shift_range,
                          bool(extra.get("combinatorics")))
        best = outcome.best[0]
        return {"weights": {s: round(float(w), 5) for s, w in zip(best.standards, best.weights[0])},
                "r_factor": round(float(best.r_factor[0]), 6)}
    _table, found = match_all([ns], lib, extra.get("metric", "pearson"), int(extra.get("top_k", 5)),
                              shift_range, fit_range, xp=xp)
    return {"matches": [{"reference": m.reference, "score": round(m.score, 6), "shift_eV": round(m.shift_eV, 3)}
                        for m in found[0]]}
