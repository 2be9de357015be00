"""xas_match LCF and PCA: synthetic mixtures of real standards and the real Au time series."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from scipy.optimize import minimize, nnls

from hisci.builtin_plugins.xas_match.analysis import common_window, run_lcf, run_pca
from hisci.builtin_plugins.xas_match.lcf import lcf_batch, lcf_combinations, solve_weights
from hisci.builtin_plugins.xas_match.pca import pca_train, target_transform

from .xas_match_helpers import AU_EDGE, AU_SETTINGS, au_samples, builtin_library

FE = ["Fe_metal_rt_01", "FeO_rt_01", "Fe2O3_rt_01", "Fe3O4_rt_01", "FeS2_rt_01"]
AU = ["Au_foil", "Au3_Cl_aq", "Au_sulphide"]


def _standards(names, x, shifts=None):
    lib = builtin_library()
    rows = lib.index(names)
    shifts = np.zeros(len(names)) if shifts is None else np.asarray(shifts)
    return lib, rows, np.stack([np.interp(x - s, lib.grid, lib.norm[r]) for r, s in
                                zip(rows, shifts)])


@pytest.mark.parametrize("names,fractions", [
    (["FeO_rt_01", "Fe2O3_rt_01"], [0.3, 0.7]),
    (["Fe_metal_rt_01", "Fe3O4_rt_01", "FeS2_rt_01"], [0.2, 0.5, 0.3]),
    (["Au_foil", "Au3_Cl_aq", "Au_sulphide"], [0.45, 0.35, 0.20]),
], ids=["FeO+Fe2O3", "Fe+Fe3O4+FeS2", "Au-3"])
@pytest.mark.parametrize("sum_to_one", [False, True], ids=["free-sum", "sum-to-one"])
def test_lcf_recovers_known_fractions_of_real_standards(names, fractions, sum_to_one):
    """Issue: a mixture of 2-3 real standards with known fractions, within 0.02."""
    x = np.arange(-20.0, 60.0, 0.5)
    lib, rows, std = _standards(names, x)
    rng = np.random.default_rng(11)
    y = np.asarray(fractions) @ std + rng.normal(0, 0.005, x.size)
    res = lcf_batch(x, y, lib.grid, lib.norm[rows], names, sum_to_one=sum_to_one)
    np.testing.assert_allclose(res.weights[0], fractions, atol=0.02)
    assert np.all(res.stderr[0] > 0) and np.all(res.stderr[0] < 0.02)
    assert res.r_factor[0] < 1e-3


def test_lcf_with_a_shift_per_standard_recovers_shifts_and_fractions():
    names = ["FeO_rt_01", "Fe2O3_rt_01", "Fe3O4_rt_01", "FeS2_rt_01"]
    x = np.arange(-20.0, 60.0, 0.25)
    true_shift = np.array([1.0, -0.8, 0.0, 0.5])
    fractions = np.array([0.25, 0.35, 0.15, 0.25])
    lib, rows, std = _standards(names, x, true_shift)
    y = fractions @ std + np.random.default_rng(5).normal(0, 0.002, x.size)
    res = lcf_batch(x, y, lib.grid, lib.norm[rows], names, vary_shift=True, shift_range=3.0)
    np.testing.assert_allclose(res.weights[0], fractions, atol=0.02)
    np.testing.assert_allclose(res.shifts[0], true_shift, atol=0.2)
    assert np.all(res.shift_stderr[0] > 0)


def test_combinatorics_finds_the_true_pair_and_extra_standards_stay_at_noise_level():
    x = np.arange(-20.0, 60.0, 0.5)
    lib, rows, std = _standards(FE, x)
    y = 0.4 * std[1] + 0.6 * std[3] + np.random.default_rng(2).normal(0, 0.003, x.size)
    fits = lcf_combinations(x, y, lib.grid, lib.norm[rows], FE, 2, 4)
    assert len(fits) == 10 + 10 + 5  # C(5,2) + C(5,3) + C(5,4)
    pairs = [f for f in fits if len(f.standards) == 2]
    pair = pairs[int(np.argmin([f.reduced_chi2[0] for f in pairs]))]
    assert pair.standards == ["FeO_rt_01", "Fe3O4_rt_01"]
    np.testing.assert_allclose(pair.weights[0], [0.4, 0.6], atol=0.02)
    # the overall best (by reduced chi-square) may add a standard, but only at noise level
    best = fits[int(np.argmin([f.reduced_chi2[0] for f in fits]))]
    w = dict(zip(best.standards, best.weights[0]))
    assert w.get("FeO_rt_01", 0) + w.get("Fe3O4_rt_01", 0) > 0.95 * sum(w.values())


def test_solve_weights_is_the_exact_constrained_optimum():
    rng = np.random.default_rng(0)
    for _ in range(30):
        a = rng.uniform(0, 1, (40, 4))
        y = rng.uniform(-0.5, 1.5, (40, 6))
        w = solve_weights(a, y)
        for k in range(y.shape[1]):
            np.testing.assert_allclose(w[:, k], nnls(a, y[:, k])[0], atol=1e-8)
        w1 = solve_weights(a, y[:, 0], sum_to_one=True)
        ref = minimize(lambda v, a=a, y0=y[:, 0]: ((a @ v - y0) ** 2).sum(), np.full(4, 0.25),
                       method="SLSQP", bounds=[(0, None)] * 4,
                       constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}],
                       options={"ftol": 1e-14, "maxiter": 500})
        assert w1.sum() == pytest.approx(1.0) and np.all(w1 >= 0)
        assert ((a @ w1 - y[:, 0]) ** 2).sum() <= ref.fun + 1e-9


# README item 4: weights (foil, Au(III)Cl, sulphide), ± 0.03, sums 1.01-1.09, R 0.6e-4-3.2e-4
README_LCF = {
    "0.12": (0.020, 0.676, 0.326), "2.42": (0.138, 0.573, 0.327), "4.73": (0.231, 0.501, 0.307),
    "7.03": (0.289, 0.453, 0.292), "9.33": (0.334, 0.418, 0.286), "20": (0.436, 0.419, 0.160),
    "33": (0.556, 0.432, 0.104), "720": (0.544, 0.264, 0.201),
}


def test_lcf_of_the_cyanobacteria_series_matches_the_published_fractions():
    spectra = au_samples()
    lib = builtin_library(AU_SETTINGS)
    window = (11870 - AU_EDGE, 11950 - AU_EDGE)
    out = run_lcf(spectra, lib, AU, window, sum_to_one=False, vary_shift=False,
                  shift_range=0.0, combinatorics=False)
    weights = np.stack([r.weights[0] for r in out.best])
    for ns, w in zip(spectra, weights):
        np.testing.assert_allclose(w, README_LCF[ns.name], atol=0.03, err_msg=ns.name)
    sums = weights.sum(axis=1)
    assert np.all((sums > 1.0) & (sums < 1.10))
    r = np.array([res.r_factor[0] for res in out.best])
    assert np.all((r > 0.4e-4) & (r < 3.5e-4))
    foil = weights[:7, 0]  # Au(0) rises over the first 33 h
    assert np.all(np.diff(foil) > 0) and foil[0] < 0.05 and foil[-1] > 0.5


def test_sum_to_one_stays_non_negative_on_the_cyanobacteria_series():
    # README item 4: larch (no bounds) gives 0.12 h a foil weight of -0.118 and 720 h
    # 0.488, 0.267, 0.245; a non-negative solver returns foil = 0 for 0.12 h
    spectra = au_samples()
    out = run_lcf(spectra, builtin_library(AU_SETTINGS), AU, (-49.0, 31.0), sum_to_one=True,
                  vary_shift=False, shift_range=0.0, combinatorics=False)
    w = {ns.name: r.weights[0] for ns, r in zip(spectra, out.best)}
    assert w["0.12"][0] == 0.0 and w["0.12"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(w["720"], (0.488, 0.267, 0.245), atol=0.03)


def test_lcf_uncertainties_agree_with_larch_lincombo_fit():
    larch = importlib.import_module("larch")
    from larch.math import lincombo_fit

    spectra = {ns.name: ns for ns in au_samples()}
    lib = builtin_library(AU_SETTINGS)
    comps = []
    for name in AU:
        row = lib.index([name])[0]
        ok = np.isfinite(lib.norm[row])
        comps.append(larch.Group(energy=lib.grid[ok] + AU_EDGE, norm=lib.norm[row][ok]
                                 .astype(float), label=name))
    ns = spectra["720"]
    group = larch.Group(energy=ns.energy, norm=ns.norm)
    ref = lincombo_fit(group, comps, xmin=11870, xmax=11950, sum_to_one=False)
    mine = run_lcf([ns], lib, AU, (-49.0, 31.0), False, False, 0.0, False).best[0]
    for i in range(3):
        p = ref.result.params[f"c{i}"]
        assert mine.weights[0, i] == pytest.approx(p.value, abs=2e-3)
        assert mine.stderr[0, i] == pytest.approx(p.stderr, rel=0.1)
    assert mine.reduced_chi2[0] == pytest.approx(ref.redchi, rel=0.05)


def test_pca_of_the_cyanobacteria_series_gives_the_readme_variances():
    # README item 5: 0.544, 0.312, 0.131 (± 0.01); 3 significant components (3 or 4 accepted)
    spectra = au_samples()
    x, y = common_window(spectra, builtin_library(AU_SETTINGS).for_edge("Au", "L3"),
                         (11870 - AU_EDGE, 12030 - AU_EDGE))
    model = pca_train(x, y)
    np.testing.assert_allclose(model.variances[:3], [0.544, 0.312, 0.131], atol=0.01)
    assert model.variances[:3].sum() > 0.98
    assert model.nsig in (3, 4)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_pca_of_mixtures_of_k_standards_finds_k_components(k):
    x = np.arange(-20.0, 80.0, 0.5)
    _, _, std = _standards(FE[:k], x)
    rng = np.random.default_rng(k)
    w = rng.dirichlet(np.ones(k), 25) * rng.uniform(0.9, 1.1, (25, 1))
    y = w @ std + rng.normal(0, 0.003, (25, x.size))
    model = pca_train(x, y)
    assert model.nsig == k
    member = target_transform(model, std[0])
    outsider = target_transform(model, _standards([FE[-1]], x)[2][0])
    assert member["r_factor"] < 1e-4 < outsider["r_factor"]


def test_pca_mode_ranks_true_end_members_first_by_target_transformation():
    spectra = au_samples()
    out = run_pca(spectra, builtin_library(AU_SETTINGS), [], (-49.0, 111.0))
    assert out.model.nsig == 3
    assert set(out.targets["standard"].head(4)) >= {"Au_foil"}
    assert out.targets["r_factor"].iloc[0] < 1e-3
