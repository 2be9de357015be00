"""ct_recon and xas_match in chunks (two local processes) equal their whole runs."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from hisci import Registry, run_plugin


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover()


@pytest.mark.parametrize("extra", [{"center": "auto"}, {"center": 64.25, "stripe": "sorting", "algorithm": "fbp"}],
                         ids=["gridrec-auto-centre", "fbp-stripes"])
def test_ct_recon_in_row_chunks_equals_single_run(registry, tmp_path, extra) -> None:
    plugin = registry.get("ct_recon")
    whole = run_plugin(plugin, {"extra": extra}, example=True, output_dir=tmp_path / "whole")
    split = run_plugin(plugin, {"extra": extra}, example=True, output_dir=tmp_path / "split",
                       jobs=2, chunks=3)
    assert whole.ok and split.ok, split.error
    with h5py.File(tmp_path / "whole/recon.h5") as a, h5py.File(tmp_path / "split/recon.h5") as b:
        va, vb = a["exchange/data"][()], b["exchange/data"][()]
        assert dict(a["exchange/data"].attrs) == dict(b["exchange/data"].attrs)
    assert va.shape == vb.shape == (8, 128, 128)
    assert np.abs(va - vb).max() <= 1e-6 * (va.max() - va.min())
    assert split.summary["chunks"] == 3 and split.summary["center"] == whole.summary["center"]
    assert not list((tmp_path / "split/chunks").rglob("part.h5"))  # merged, then removed
    assert set(whole.record["figures"]) == set(split.record["figures"])


@pytest.mark.parametrize("index,table", [(0, "matches.csv"), (1, "lcf.csv")], ids=["match", "batch-lcf"])
def test_xas_match_in_spectrum_chunks_equals_single_run(registry, tmp_path, index, table) -> None:
    plugin = registry.get("xas_match")
    whole = run_plugin(plugin, example=True, example_index=index, output_dir=tmp_path / "whole")
    split = run_plugin(plugin, example=True, example_index=index, output_dir=tmp_path / "split",
                       jobs=2, chunks=3)
    assert whole.ok and split.ok, split.error
    a, b = pd.read_csv(tmp_path / "whole" / table), pd.read_csv(tmp_path / "split" / table)
    assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0
    numbers = a.select_dtypes("number").columns
    assert np.abs(a[numbers].to_numpy() - b[numbers].to_numpy()).max() <= 1e-9
    assert (a.drop(columns=numbers) == b.drop(columns=numbers)).all().all()
    assert (tmp_path / "whole/normalization.csv").read_bytes() == (tmp_path / "split/normalization.csv").read_bytes()
    assert sorted(whole.record["figures"]) == sorted(split.record["figures"])
    assert split.summary["spectra"] == whole.summary["spectra"]


def test_xas_pca_does_not_split(registry, tmp_path) -> None:
    result = run_plugin(registry.get("xas_match"), example=True, example_index=2,
                        output_dir=tmp_path / "pca", jobs=2)
    assert result.ok and "chunks" not in result.summary
    assert "running whole" in (tmp_path / "pca/log.txt").read_text()


def test_nhit_trigger_in_fragment_chunks_is_byte_identical(registry, tmp_path) -> None:
    sim = run_plugin(registry.get("nhit_simulate"), {"extra": {"seconds": 0.2, "scale": 0.1, "seed": 3}},
                     output_dir=tmp_path / "sim")
    assert sim.ok, sim.error
    hits = next((tmp_path / "sim").glob("*.hits"))
    trigger = registry.get("nhit_trigger")
    request = {"extra": {"threshold": 10, "workers": 1}}
    whole = run_plugin(trigger, request, inputs={"hits": hits}, output_dir=tmp_path / "whole")
    split = run_plugin(trigger, request, inputs={"hits": hits}, output_dir=tmp_path / "split",
                       jobs=2, chunks=5)
    assert whole.ok and split.ok, split.error
    a = (tmp_path / "whole/events.dat").read_bytes()
    assert whole.summary["events"] > 20 and len(a) > 10_000
    assert (tmp_path / "split/events.dat").read_bytes() == a
    assert split.summary["events"] == whole.summary["events"] and split.summary["chunks"] == 5
    assert not list((tmp_path / "split/chunks").rglob("events.npz"))


def test_pdf_series_in_frame_chunks_equals_single_run(registry, tmp_path) -> None:
    plugin = registry.get("pdf")
    example = plugin.folder / "example"
    with h5py.File(example / "Ni_example.h5") as h5:
        frame = h5["entry/data/data"][()].astype(np.float32)
    with h5py.File(tmp_path / "series.h5", "w") as h5:
        h5["entry/data/data"] = np.stack([frame * s for s in (1.0, 1.1, 0.9, 1.05, 0.95)])
    inputs = {"image": [tmp_path / "series.h5"], "poni": example / "Ni_example.poni",
              "mask": example / "Ni_example_mask.npz", "background": example / "Ni_example_bkg.h5"}
    request = {"extra": {"rpoly": 2.0, "rmax": 15.0, "npt": 800, "bgscale": 0.85}}
    whole = run_plugin(plugin, request, inputs=inputs, output_dir=tmp_path / "whole")
    split = run_plugin(plugin, request, inputs=inputs, output_dir=tmp_path / "split", jobs=2, chunks=3)
    assert whole.ok and split.ok, split.error
    assert split.summary["n_frames"] == whole.summary["n_frames"] == 5 and split.summary["chunks"] == 3
    a, b = np.load(tmp_path / "whole/gr_stack.npy"), np.load(tmp_path / "split/gr_stack.npy")
    assert a.shape == b.shape and np.abs(a - b).max() <= 1e-9 * np.abs(a).max()
    for i in range(5):
        assert (tmp_path / f"split/series_{i:05d}.gr").read_bytes() == (tmp_path / f"whole/series_{i:05d}.gr").read_bytes()


def test_muser_imaging_in_batch_chunks_equals_single_run(registry, tmp_path) -> None:
    from .muser_imaging_helpers import make_dataset

    make_dataset(tmp_path / "ds", n_batches=4, seed=31)
    plugin = registry.get("muser_imaging")
    request = {"extra": {"channels": "5", "image_size": 256, "clean_niter": 50, "polarizations": ["L", "R"]}}
    inputs = {"dataset": tmp_path / "ds"}
    whole = run_plugin(plugin, request, inputs=inputs, output_dir=tmp_path / "whole")
    split = run_plugin(plugin, request, inputs=inputs, output_dir=tmp_path / "split", jobs=2, chunks=3)
    assert whole.ok and split.ok, split.error
    assert [b["batch"] for b in split.summary["batches"]] == [b["batch"] for b in whole.summary["batches"]]
    assert len(whole.summary["batches"]) == 4 and split.summary["chunks"] == 3
    for i in range(4):
        for name in ("dirty.npy", "clean.npy"):
            a = np.load(tmp_path / f"whole/batch_{i}/{name}")
            b = np.load(tmp_path / f"split/batch_{i}/{name}")
            assert np.abs(a - b).max() <= 1e-6 * (np.nanmax(a) - np.nanmin(a)), (i, name)
    assert set(whole.record["figures"]) == set(split.record["figures"])
