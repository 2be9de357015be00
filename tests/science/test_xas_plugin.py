"""xas_match end to end through the registry and runner: examples, outputs, bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from hisci import Registry, run_plugin

from .xas_match_helpers import DATA, QUERIES, REF_DB, au_groups, write_xdi_like


@pytest.fixture(scope="module")
def plugin():
    registry = Registry.discover()
    assert "xas_match" not in {p.id for p in registry.problems}, registry.problems
    return registry.get("xas_match")


def _run(plugin, tmp_path, extra=None, **inputs):
    return run_plugin(plugin, {"extra": extra or {}}, inputs=inputs, output_dir=tmp_path / "run")


@pytest.mark.parametrize("index,mode", [(0, "match"), (1, "lcf"), (2, "pca")],
                         ids=["match", "lcf", "pca"])
def test_every_example_runs_and_writes_its_table(plugin, tmp_path, index, mode):
    result = run_plugin(plugin, example=True, example_index=index, output_dir=tmp_path / mode)
    assert result.status == "succeeded", result.error
    out = result.output_dir
    assert (out / "normalized.h5").exists() and (out / "normalization.csv").exists()
    if mode == "match":
        table = pd.read_csv(out / "matches.csv")
        assert list(table.columns[:6]) == ["spectrum", "rank", "reference", "metric", "score",
                                           "shift_eV"]
        top = table[table["rank"] == 1].set_index("spectrum")["reference"]
        assert all(top[q.stem] == q.stem.replace("_rt_02", "_rt_01") for q in QUERIES)
        assert any(p.name.startswith("match_") and p.suffix == ".json" for p in out.iterdir())
    elif mode == "lcf":
        table = pd.read_csv(out / "lcf.csv")
        assert list(table.columns[:7]) == ["spectrum", "Au_foil", "Au3_Cl_aq", "Au_sulphide",
                                           "sum", "r_factor", "reduced_chi2"]
        assert table["Au_foil"].iloc[0] == pytest.approx(0.020, abs=0.03)  # README item 4
        assert (out / "lcf_fractions.json").exists()
    else:
        table = pd.read_csv(out / "pca.csv")
        assert table["variance"].iloc[:3].tolist() == pytest.approx([0.544, 0.312, 0.131],
                                                                    abs=0.01)
        assert result.summary["nsig"] == 3 and (out / "pca_targets.csv").exists()


def test_lcf_combinatorics_and_shifts_write_every_combination(plugin, tmp_path):
    stds = ["Au_foil", "Au3_Cl_aq", "Au_sulphide", "Au_cyanide"]
    files = sorted((REF_DB.parent / "example" / "au_timeseries").glob("*.xdi"))[:2]
    result = _run(plugin, tmp_path, {"mode": "lcf", "standards": stds, "combinatorics": True,
                                     "vary_shift": True, "sum_to_one": True,
                                     "shift_range": 2, "fit_range": [-49, 31]}, spectra=files)
    assert result.status == "succeeded", result.error
    combos = pd.read_csv(result.output_dir / "lcf_combinations.csv")
    assert len(combos) == 2 * (6 + 4 + 1)
    lcf = pd.read_csv(result.output_dir / "lcf.csv")
    assert lcf["sum"].to_numpy() == pytest.approx(1.0)
    assert {f"{s}_shift_eV" for s in stds} <= set(lcf.columns)


def test_build_db_writes_a_library_that_serves_as_database(plugin, tmp_path):
    built = _run(plugin, tmp_path / "a", {"build_db": True},
                 database=sorted((REF_DB / "Mn").glob("*.xdi")))
    assert built.status == "succeeded", built.error
    lib = built.output_dir / "library.h5"
    with h5py.File(lib) as h5:
        assert h5.attrs["format"] == "hisci-xas-library" and h5["norm"].shape[0] == 4
    again = _run(plugin, tmp_path / "b", {"top_k": 2}, spectra=QUERIES, database=lib)
    assert again.status == "succeeded", again.error
    assert again.summary["best"]["MnO_rt_02"]["reference"] == "MnO_rt_01"


def test_an_hdf5_series_is_matched_spectrum_by_spectrum(plugin, tmp_path):
    sp = au_groups()["720"]
    path = tmp_path / "series.h5"
    with h5py.File(path, "w") as h5:
        h5["energy"] = sp.energy
        h5["mu"] = np.stack([sp.mu, 1.5 * sp.mu + 0.1])
        h5.attrs["element"], h5.attrs["edge"] = "Au", "L3"
    result = _run(plugin, tmp_path, {"top_k": 3}, spectra=path)
    assert result.status == "succeeded", result.error
    table = pd.read_csv(result.output_dir / "matches.csv")
    assert table["spectrum"].nunique() == 2


def _bad(tmp_path, name, header, data):
    return write_xdi_like(tmp_path / name, ["XDI/1.0", *header, "///"], data)


def test_bad_inputs_fail_with_a_clear_reason(plugin, tmp_path):
    e = np.linspace(6500, 6640, 120)
    mu_cols = np.column_stack([e, np.full_like(e, 2.0), np.exp(-np.arctan(e - 6545))])
    cases = {
        "no energy column": (_bad(tmp_path, "a.xdi", ["Column.1: angle deg", "Column.2: i0",
                                                       "Column.3: itrans"], mu_cols),
                             "no energy column; columns are angle, i0, itrans"),
        "non-monotonic": (_bad(tmp_path, "b.xdi", ["Column.1: energy eV", "Column.2: i0",
                                                   "Column.3: itrans"],
                               mu_cols[[0, 1, 2, 4, 3, *range(5, 120)]]),
                          "energy is not strictly increasing"),
        "edge not covered": (_bad(tmp_path, "c.xdi", ["Column.1: energy eV", "Column.2: i0",
                                                      "Column.3: itrans", "Element.symbol: Mn",
                                                      "Element.edge: K"],
                                  np.column_stack([e + 200, mu_cols[:, 1:]])),
                             "does not cover the Mn K edge at 6539.0 eV"),
    }
    for label, (path, message) in cases.items():
        result = _run(plugin, tmp_path / label.replace(" ", "_"), spectra=path)
        assert result.status == "failed", label
        assert message in result.error, (label, result.error)
    other = _run(plugin, tmp_path / "other", spectra=DATA / "cu_metal_rt.xdi",
                 database=sorted((REF_DB / "Mn").glob("*.xdi")))
    assert other.status == "failed"
    assert "is Cu K" in other.error and "it holds Mn K" in other.error


def test_lcf_with_an_unknown_standard_suggests_the_close_name(plugin, tmp_path):
    files = sorted((REF_DB.parent / "example" / "au_timeseries").glob("*.xdi"))[:1]
    result = _run(plugin, tmp_path, {"mode": "lcf", "standards": ["Au_foi", "Au_sulphide"]},
                  spectra=files)
    assert result.status == "failed" and "Did you mean Au_foil" in result.error
