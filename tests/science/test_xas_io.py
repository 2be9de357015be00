"""xas_match readers: XDI, Athena projects, column text, HDF5 series, and their errors."""

from __future__ import annotations

import gzip
import importlib

import h5py
import numpy as np
import pytest

from hisci.builtin_plugins.xas_match.xas_io import read_athena, read_columns, read_spectra, read_xdi

from .xas_match_helpers import (
    DATA,
    PRJ,
    QUERIES,
    REF_DB,
    all_xdi,
    checksums,
    sha256,
    write_xdi_like,
)


@pytest.mark.parametrize("folder", [DATA, REF_DB], ids=["tests-data", "reference_db"])
def test_real_files_match_their_recorded_checksums(folder):
    sums = checksums(folder)
    assert sums, "SHA256SUMS is empty"
    for name, digest in sums.items():
        assert sha256(folder / name) == digest, name


def test_xdi_reader_gives_mn_transmission_mu_with_header_fields():
    # data README: Mn files are energy i0 itrans irefer, 217 points, 6520-6630 eV
    sp = read_xdi(REF_DB / "Mn" / "MnO_rt_01.xdi")
    assert sp.energy.size == 217
    assert sp.energy[0] == pytest.approx(6520.003) and sp.energy[-1] == pytest.approx(6630, abs=1)
    assert (sp.element, sp.edge, sp.kind) == ("Mn", "K", "mu")
    raw = np.loadtxt(REF_DB / "Mn" / "MnO_rt_01.xdi")
    np.testing.assert_allclose(sp.mu, np.log(raw[:, 1] / raw[:, 2]))
    assert sp.meta["sample.formula"] == "MnO"


@pytest.mark.parametrize("path", all_xdi(), ids=lambda p: p.name)
def test_every_real_xdi_file_agrees_with_larch_read_xdi(path):
    larch_io = importlib.import_module("larch.io")
    ref = larch_io.read_xdi(str(path))
    sp = read_xdi(path)
    np.testing.assert_array_equal(sp.energy, ref.energy)
    expected = ref.mutrans if hasattr(ref, "mutrans") else (
        np.log(ref.i0 / ref.itrans) if hasattr(ref, "itrans") else ref.mu)
    np.testing.assert_allclose(sp.mu, expected, rtol=1e-12)


def test_athena_reader_equals_larch_read_athena_on_every_group():
    larch_io = importlib.import_module("larch.io")
    ref = larch_io.read_athena(str(PRJ), do_preedge=False)
    mine = read_athena(PRJ)
    assert len(mine) == 17 == len(list(ref.keys()))
    for sp, key in zip(mine, ref.keys()):
        np.testing.assert_array_equal(sp.energy, ref[key].energy)
        np.testing.assert_array_equal(sp.mu, ref[key].mu)
        assert (sp.element, sp.edge) == ("Au", "L3")
    labels = [s.name for s in mine]
    assert labels[:8] == ["0.12", "2.42", "4.73", "7.03", "9.33", "20", "33", "720"]
    assert "Au foil" in labels and "Au sulphide" in labels


def test_athena_reader_accepts_an_uncompressed_project(tmp_path):
    plain = tmp_path / "plain.prj"
    plain.write_bytes(gzip.decompress(PRJ.read_bytes()))
    assert [s.name for s in read_athena(plain)] == [s.name for s in read_athena(PRJ)]


def test_column_text_header_detection_and_kev_energies(tmp_path):
    sp = read_xdi(QUERIES[0])
    path = tmp_path / "scan.dat"
    header = "Some beamline header\noperator: x\nE(keV)  I0  It"
    rows = np.column_stack([sp.energy / 1000.0, np.exp(sp.mu), np.ones_like(sp.mu)])
    path.write_text(header + "\n" + "\n".join(" ".join(f"{v:.9g}" for v in r) for r in rows))
    got = read_columns(path)
    np.testing.assert_allclose(got.energy, sp.energy, rtol=1e-8)
    np.testing.assert_allclose(got.mu, sp.mu, rtol=1e-7)


def test_norm_column_is_used_as_it_is(tmp_path):
    path = tmp_path / "norm.txt"
    e = np.linspace(6500, 6600, 101)
    path.write_text("# energy norm\n" + "\n".join(f"{a} {b}" for a, b in zip(e, e / 1e4)))
    sp = read_spectra(path)[0]
    assert sp.kind == "norm"
    np.testing.assert_allclose(sp.mu, e / 1e4)


def test_hdf5_series_gives_one_spectrum_per_row(tmp_path):
    sp = read_xdi(QUERIES[0])
    path = tmp_path / "series.h5"
    with h5py.File(path, "w") as h5:
        g = h5.create_group("entry")
        g["energy"] = sp.energy
        g["mu"] = np.stack([sp.mu, 2 * sp.mu, 3 * sp.mu])
        g.attrs["element"], g.attrs["edge"] = "Mn", "K"
    got = read_spectra(path)
    assert len(got) == 3 and got[2].element == "Mn"
    np.testing.assert_allclose(got[1].mu, 2 * sp.mu)


def test_a_file_without_an_energy_column_names_the_columns_found(tmp_path):
    path = write_xdi_like(tmp_path / "noenergy.xdi",
                          ["XDI/1.0", "Column.1: time s", "Column.2: i0", "Column.3: itrans", "///"],
                          np.random.default_rng(0).uniform(1, 2, (20, 3)))
    with pytest.raises(ValueError, match=r"noenergy.xdi: no energy column; columns are time, "
                                         r"i0, itrans"):
        read_spectra(path)


def test_non_monotonic_energy_names_the_row(tmp_path):
    data = np.column_stack([np.linspace(6500, 6600, 30), np.full(30, 2.0), np.ones(30)])
    data[10, 0] = data[8, 0]
    path = write_xdi_like(tmp_path / "backwards.xdi",
                          ["XDI/1.0", "Column.1: energy eV", "Column.2: i0",
                           "Column.3: itrans", "///"], data)
    with pytest.raises(ValueError, match=r"backwards.xdi: energy is not strictly increasing at "
                                         r"row 11"):
        read_spectra(path)


def test_athena_json_variant_reads_like_the_perl_one(tmp_path):
    import json

    groups = read_athena(PRJ)
    doc = {"_____header1": "Athena project file -- JSON", "_____order": []}
    for k, sp in enumerate(groups):
        key = f"g{k}"
        doc["_____order"].append(key)
        doc[key] = {"x": sp.energy.tolist(), "y": sp.mu.tolist(),
                    "args": {"label": sp.name, "bkg_z": "Au", "fft_edge": "l3", "is_xmu": 1}}
    path = tmp_path / "athena_json.prj"
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    got = read_spectra(path)
    assert [s.name for s in got] == [s.name for s in groups]
    np.testing.assert_array_equal(got[3].mu, groups[3].mu)
