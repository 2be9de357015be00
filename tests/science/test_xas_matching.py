"""xas_match database matching: real standards, shift search, metrics, vectorised scoring."""

from __future__ import annotations

import numpy as np
import pytest

from hisci.builtin_plugins.xas_match.library import (
    DEFAULT_GRID,
    Library,
    build_library,
    load_library,
    normalize_spectra,
)
from hisci.builtin_plugins.xas_match.matching import METRICS, match_spectrum, score_pairs

from .xas_match_helpers import MN_EDGE, QUERIES, REF_DB, builtin_library, read_one, shifted_noisy

STANDARDS = sorted(REF_DB.rglob("*.xdi"))
CU_FOILS = {"cu_metal_rt", "Cu_Foil_rt_2016Foils"}  # two scans of the same compound


def _match(ns, lib: Library, **kw):
    sub = lib.for_edge(ns.element, ns.edge)
    return match_spectrum(ns.energy - ns.edge_energy, ns.norm, sub, **kw)


@pytest.mark.parametrize("metric", ["pearson", "r_factor", "deriv_pearson"])
def test_every_real_standard_shifted_and_noisy_ranks_itself_first(metric):
    """Issue: a random shift of up to ±3 eV and noise; right compound first, shift ±0.2 eV."""
    lib = builtin_library()
    rng = np.random.default_rng(20261125)
    for path in STANDARDS:
        sp = read_one(path)
        shift = float(rng.uniform(-3.0, 3.0))
        ns = normalize_spectra([shifted_noisy(sp, shift, 0.003, rng)])[0]
        best = _match(ns, lib, metric=metric, top_k=3, shift_range=5.0)[0]
        right = CU_FOILS if sp.name in CU_FOILS else {sp.name}
        assert best.reference in right, (sp.name, shift, best)
        if sp.name not in CU_FOILS:  # the two Cu foils differ in calibration by ~0.4 eV
            assert best.shift_eV == pytest.approx(-shift, abs=0.2), (sp.name, shift)


# README item 2: Pearson r and MSE of query vs own compound / best wrong one, 6530-6620 eV
README_MATCH = {
    "MnO": (0.99981, 0.950, 5.7e-5, 1.2e-2),
    "Mn2O3": (0.99957, 0.974, 3.0e-4, 2.1e-2),
    "Mn3O4": (0.99995, 0.966, 1.3e-5, 1.1e-2),
    "MnO2": (0.99992, 0.976, 4.4e-5, 2.1e-2),
}


@pytest.mark.parametrize("query", QUERIES, ids=lambda p: p.stem)
def test_second_scans_match_their_own_compound_with_readme_scores(query):
    lib = load_library([REF_DB / "Mn"])
    ns = normalize_spectra([read_one(query)])[0]
    window = (6530 - MN_EDGE, 6620 - MN_EDGE)
    compound = query.stem.replace("_rt_02", "")
    r_own, r_wrong, mse_own, mse_wrong = README_MATCH[compound]
    for metric in METRICS:  # every metric must give the right top-1
        res = _match(ns, lib, metric=metric, top_k=4, shift_range=0.0, fit_range=window)
        assert res[0].reference == f"{compound}_rt_01", metric
    pear = _match(ns, lib, metric="pearson", top_k=2, shift_range=0.0, fit_range=window)
    assert pear[0].score == pytest.approx(r_own, abs=3e-4)
    assert pear[1].score == pytest.approx(r_wrong, abs=5e-3)
    mse = _match(ns, lib, metric="mse", top_k=2, shift_range=0.0, fit_range=window)
    assert mse[0].score == pytest.approx(mse_own, rel=0.15)
    assert mse[1].score == pytest.approx(mse_wrong, rel=0.15)


def test_a_query_measured_4_ev_high_is_aligned_back_and_still_matches():
    # README item 3: +4.0 eV on Mn3O4_rt_02; MSE search (0.1 eV steps) gives -4.0 ± 0.2
    lib = load_library([REF_DB / "Mn"])
    sp = read_one(QUERIES[[q.stem for q in QUERIES].index("Mn3O4_rt_02")])
    sp.energy = sp.energy + 4.0
    ns = normalize_spectra([sp])[0]
    res = _match(ns, lib, metric="mse", top_k=4, shift_range=5.0, fit_range=(-9, 81),
                 fine_step=0.1)
    assert res[0].reference == "Mn3O4_rt_01"
    assert res[0].shift_eV == pytest.approx(-4.0, abs=0.2)
    assert res[0].score == pytest.approx(1.3e-5, rel=0.3)
    assert min(r.score for r in res[1:]) >= 2.7e-3


def test_reported_scores_equal_a_direct_computation_at_the_found_shift():
    lib = load_library([REF_DB / "Fe"])
    ns = normalize_spectra([read_one(REF_DB / "Fe" / "FeO_rt_01.xdi")])[0]
    res = _match(ns, lib, metric="pearson", top_k=7, shift_range=4.0, fit_range=(-20, 60))
    sl = lib.window(-20.0, 60.0)
    g = lib.grid[sl]
    for m in res:
        q = np.interp(g - m.shift_eV, ns.energy - ns.edge_energy, ns.norm)
        r = lib.norm[m.row, sl]
        for metric in ("pearson", "cosine", "r_factor", "mse"):
            assert m.scores[metric] == pytest.approx(score_pairs(q, r, metric)[0], rel=1e-9)
    assert [m.score for m in res] == sorted((m.score for m in res), reverse=True)


def _decoy_library(n: int = 3000) -> Library:
    """The 4 Mn standards plus n decoys: 30-70 % mixtures of two different compounds, one
    shifted by up to ±6 eV."""
    base = load_library([REF_DB / "Mn"])
    rng = np.random.default_rng(7)
    i = rng.integers(0, 4, n)
    j = (i + rng.integers(1, 4, n)) % 4  # a different compound
    a = rng.uniform(0.3, 0.7, n)[:, None]
    shifts = rng.uniform(-6, 6, n)
    rows = [a[k] * np.interp(DEFAULT_GRID - shifts[k], base.grid, base.norm[i[k]]) +
            (1 - a[k]) * np.interp(DEFAULT_GRID, base.grid, base.norm[j[k]]) for k in range(n)]
    decoys = np.where(np.isfinite(base.norm[0]), np.stack(rows), np.nan).astype(np.float32)
    return Library(base.grid, np.concatenate([base.norm, decoys]),
                   base.names + [f"decoy{k}" for k in range(n)], ["Mn"] * (n + 4),
                   ["K"] * (n + 4), [""] * (n + 4), [""] * (n + 4),
                   np.zeros(n + 4), np.full(n + 4, MN_EDGE))


def test_a_large_synthesised_library_still_finds_the_true_reference():
    """Thousands of shifted/mixed decoys: the matrix search keeps the real standard first."""
    big = _decoy_library()
    for query in QUERIES:
        ns = normalize_spectra([read_one(query)])[0]
        res = _match(ns, big, metric="pearson", top_k=3, shift_range=3.0, fit_range=(-9, 81))
        assert res[0].reference == query.stem.replace("_rt_02", "_rt_01")


def test_a_database_of_another_edge_is_refused_with_the_edges_it_holds():
    lib = load_library([REF_DB / "Mn"])
    ns = normalize_spectra([read_one(REF_DB / "Fe" / "FeO_rt_01.xdi")])[0]
    with pytest.raises(ValueError, match=r"holds no Fe K-edge references \(it holds Mn K\)"):
        _match(ns, lib)


def test_bad_choices_list_the_allowed_values():
    lib = load_library([REF_DB / "Mn"])
    ns = normalize_spectra([read_one(QUERIES[0])])[0]
    with pytest.raises(ValueError, match="metric must be one of pearson, deriv_pearson"):
        _match(ns, lib, metric="euclid")
    with pytest.raises(ValueError, match="fit window is too short"):
        _match(ns, lib, fit_range=(150, 200))


def test_library_round_trips_through_hdf5(tmp_path):
    lib = build_library([read_one(p) for p in sorted((REF_DB / "Mn").glob("*.xdi"))])
    path = lib.save(tmp_path / "mn.h5")
    back = load_library([path])
    assert back.names == lib.names and back.edges == [("Mn", "K")]
    np.testing.assert_array_equal(back.norm, lib.norm)
    np.testing.assert_allclose(back.e0, lib.e0)


def test_the_low_rank_index_gives_the_same_top_matches_as_the_exact_search(monkeypatch):
    from hisci.builtin_plugins.xas_match import matching

    queries = [normalize_spectra([read_one(q)])[0] for q in QUERIES]

    def run(lib):
        return [match_spectrum(ns.energy - ns.edge_energy, ns.norm, lib, metric=m, top_k=5,
                               shift_range=3.0, fit_range=(-9, 81))
                for ns in queries for m in METRICS]

    exact = run(_decoy_library(1000))
    monkeypatch.setattr(matching, "LOWRANK_MIN", 0)  # force the factorised coarse stage
    lowrank_lib = _decoy_library(1000)
    got = run(lowrank_lib)
    assert any(k[0] == "index" and v.basis is not None for k, v in lowrank_lib._cache.items()
               if isinstance(k, tuple))
    for ref, res in zip(exact, got):
        assert [m.reference for m in res] == [m.reference for m in ref]
        assert [m.shift_eV for m in res] == [m.shift_eV for m in ref]
