"""xas_match normalisation against xraylarch's pre_edge and the data README's E0 values."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from hisci.builtin_plugins.xas_match.library import normalize_spectra
from hisci.builtin_plugins.xas_match.normalize import find_e0, normalize, normalize_batch

from .xas_match_helpers import AU_SETTINGS, AU_TIMES, DATA, REF_DB, au_groups, larch_xdi, read_one


@pytest.mark.parametrize("path", larch_xdi(), ids=lambda p: p.name)
def test_pre_edge_agrees_with_larch_on_every_real_spectrum(path):
    """Issue: within 0.5 eV in E0 and 1 % in edge step of xraylarch's pre_edge (defaults)."""
    larch = importlib.import_module("larch")
    from larch.xafs import pre_edge

    sp = read_one(path)
    group = larch.Group(energy=sp.energy, mu=sp.mu)
    pre_edge(group)
    got = normalize(sp.energy, sp.mu)
    assert abs(got.e0[0] - group.e0) <= 0.5
    assert got.edge_step[0] == pytest.approx(group.edge_step, rel=0.01)
    details = group.pre_edge_details
    assert (got.pre1[0], got.pre2[0], got.norm1[0], got.nnorm[0]) == pytest.approx(
        (details.pre1, details.pre2, details.norm1, details.nnorm))
    np.testing.assert_allclose(got.norm[0], group.norm, atol=1e-6)
    np.testing.assert_allclose(got.flat[0], group.flat, atol=1e-6)


def test_pre_edge_with_athena_ranges_agrees_with_larch_on_the_au_series():
    larch = importlib.import_module("larch")
    from larch.xafs import pre_edge

    kw = {"pre1": -150, "pre2": -30, "norm1": 150, "norm2": 850, "nnorm": 1}
    for name, sp in au_groups().items():
        group = larch.Group(energy=sp.energy, mu=sp.mu)
        pre_edge(group, **kw)
        got = normalize(sp.energy, sp.mu, **kw)
        assert abs(got.e0[0] - group.e0) <= 0.5, name
        assert got.edge_step[0] == pytest.approx(group.edge_step, rel=0.01), name


# README item 1 (larch defaults; ±1 eV, Mn ±1.5 eV on its 1 eV grid)
README_E0 = {
    "Cu/cu_metal_rt.xdi": (8980.5, 2.729, 1.0), "Cu/Cu_Foil_rt_2016Foils.xdi": (8980.1, 2.641, 1.0),
    "Fe/Fe_metal_rt_01.xdi": (7111.0, None, 1.0), "Fe/FeO_rt_01.xdi": (7122.9, None, 1.0),
    "Fe/Fe2O3_rt_01.xdi": (7125.6, None, 1.0), "Fe/Fe3O4_rt_01.xdi": (7123.5, None, 1.0),
    "Fe/FeS2_rt_01.xdi": (7117.0, None, 1.0), "Fe/Fe3C_rt_01.xdi": (7122.0, None, 1.0),
    "Fe/FeN_rt_01.xdi": (7111.0, None, 1.0), "Mn/MnO_rt_01.xdi": (6544.0, None, 1.5),
    "Mn/Mn3O4_rt_01.xdi": (6546.3, None, 1.5), "Mn/Mn2O3_rt_01.xdi": (6552.7, None, 1.5),
    "Mn/MnO2_rt_01.xdi": (6551.7, None, 1.5),
}


@pytest.mark.parametrize("name", sorted(README_E0), ids=str)
def test_e0_and_edge_step_match_the_data_readme(name):
    e0, step, tol = README_E0[name]
    sp = read_one(REF_DB / name)
    got = normalize(sp.energy, sp.mu)
    assert abs(got.e0[0] - e0) <= tol
    if step is not None:
        assert got.edge_step[0] == pytest.approx(step, abs=0.005)


def test_mn_edge_positions_follow_the_oxidation_state():
    # README item 1: MnO < Mn3O4 < Mn2O3 ~ MnO2
    e0 = {n: normalize_spectra([read_one(REF_DB / "Mn" / f"{n}_rt_01.xdi")])[0].e0
          for n in ("MnO", "Mn3O4", "Mn2O3", "MnO2")}
    assert e0["MnO"] < e0["Mn3O4"] < min(e0["Mn2O3"], e0["MnO2"])
    assert abs(e0["Mn2O3"] - e0["MnO2"]) < 1.5


def test_cu_foil_e0_lands_near_the_tabulated_edge():
    got = normalize_spectra([read_one(DATA / "cu_metal_rt.xdi")])[0]
    assert 8978.0 <= got.e0 <= 8982.0 and (got.element, got.edge) == ("Cu", "K")


def test_batch_normalisation_equals_one_spectrum_at_a_time():
    sp = read_one(REF_DB / "Fe" / "Fe3O4_rt_01.xdi")
    rng = np.random.default_rng(3)
    scale = rng.uniform(0.5, 2.0, 40)
    mu = scale[:, None] * sp.mu + rng.normal(0, 0.003, (40, sp.mu.size)) + rng.uniform(-1, 1, 40)[:, None]
    batch = normalize_batch(sp.energy, mu)
    for i in (0, 17, 39):
        one = normalize(sp.energy, mu[i])
        assert batch.e0[i] == one.e0[0]
        assert batch.edge_step[i] == pytest.approx(one.edge_step[0], rel=1e-10)
        np.testing.assert_allclose(batch.norm[i], one.norm[0], atol=1e-10)
    np.testing.assert_allclose(batch.edge_step / scale, batch.edge_step[0] / scale[0], rtol=0.02)


def test_find_e0_of_an_arctan_step_is_its_centre():
    e = np.linspace(8900, 9100, 801)
    assert find_e0(e, np.arctan((e - 8979.0) / 1.5))[0] == pytest.approx(8979.0, abs=0.25)


def test_au_series_normalises_with_the_readme_ranges():
    groups = au_groups()
    got = normalize_spectra([groups[t] for t in AU_TIMES], AU_SETTINGS)
    assert all(11917.0 < g.e0 < 11922.0 for g in got)
    assert all(g.ranges["nnorm"] == 1 and g.ranges["norm2"] <= 850 for g in got)


def test_invalid_grids_are_rejected_with_the_reason():
    e = np.linspace(6500, 6600, 50)
    with pytest.raises(ValueError, match="increase strictly"):
        normalize(e[::-1], e)
    with pytest.raises(ValueError, match="NaN"):
        normalize(e, np.where(e > 6550, np.nan, 1.0))
