"""ct_recon input/output: Data Exchange and NXtomo reading, bad-input messages, block-wise
memory use, the plugin end to end, and the TomoPy-compatible functions."""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np
import pytest

from hisci.builtin_plugins.ct_recon import phantom, pipeline, scanio, tomopy_compat
from hisci.builtin_plugins.ct_recon.plugin import parse_center, parse_rows

from .ct_recon_helpers import disc, rmse


@pytest.fixture(scope="module")
def scan():
    return phantom.make_scan(96, 120, 6, center=47.5 + 1.75, seed=4)


def _write(tmp_path, scan, name="scan.h5", **override):
    parts = {k: scan[k] for k in ("projections", "flats", "darks")}
    parts["theta_deg"] = scan["theta_deg"]
    parts.update(override)
    return phantom.write_data_exchange(tmp_path / name, parts["projections"], parts["flats"],
                                       parts["darks"], parts["theta_deg"])


def _plugin():
    from hisci import Registry

    registry = Registry.discover()
    assert not [p for p in registry.problems if "ct_recon" in str(p)], registry.problems
    return registry.get("ct_recon")


def _run(tmp_path, path, **extra):
    from hisci import run_plugin

    return run_plugin(_plugin(), {"extra": extra}, inputs={"scan": path}, output_dir=tmp_path / "run")


# --- reading ---------------------------------------------------------------------------------

def test_data_exchange_and_nxtomo_read_the_same_rows(tmp_path, scan):
    dx = _write(tmp_path, scan)
    nx = phantom.write_nxtomo(tmp_path / "nx.h5", scan["projections"], scan["flats"], scan["darks"],
                              scan["theta_deg"])
    with scanio.open_scan(dx) as a, scanio.open_scan(nx) as b:
        assert (a.layout, b.layout) == ("data-exchange", "nxtomo")
        np.testing.assert_allclose(a.theta, np.deg2rad(scan["theta_deg"]))
        np.testing.assert_allclose(b.theta, a.theta)
        for x, y in zip(a.read_rows(2, 4), b.read_rows(2, 4)):
            np.testing.assert_array_equal(x, y)


def test_theta_in_radians_when_the_units_attribute_says_so(tmp_path, scan):
    path = _write(tmp_path, scan)
    with h5py.File(path, "r+") as f:
        del f["exchange/theta"]
        f["exchange/theta"] = np.deg2rad(scan["theta_deg"])
        f["exchange/theta"].attrs["units"] = "radians"
    with scanio.open_scan(path) as s:
        np.testing.assert_allclose(s.theta, np.deg2rad(scan["theta_deg"]))


# --- bad input: each message names the dataset and the fix --------------------------------------

def test_missing_exchange_data_is_named(tmp_path, scan):
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_group("exchange")
        f["exchange/theta"] = scan["theta_deg"]
    with pytest.raises(scanio.ScanError, match=r"/exchange/data: missing.*Fix: write projections as /exchange/data"):
        scanio.open_scan(path)


def test_theta_length_mismatch_is_named(tmp_path, scan):
    path = _write(tmp_path, scan, theta_deg=scan["theta_deg"][:-3])
    with pytest.raises(scanio.ScanError, match=r"/exchange/theta: has 117 angles but /exchange/data has 120 .*one angle per projection"):
        scanio.open_scan(path)


def test_flats_of_the_wrong_shape_are_named(tmp_path, scan):
    path = _write(tmp_path, scan, flats=scan["flats"][:, :, :-8])
    with pytest.raises(scanio.ScanError, match=r"/exchange/data_white: flat frames are 6x88 .* projections are 6x96.*Fix: give flat frames"):
        scanio.open_scan(path)


def test_centre_outside_the_detector_is_refused():
    with pytest.raises(ValueError, match=r"center 120.0 is outside the detector \(0 to 95 pixels"):
        parse_center("120", 96)
    assert parse_center("auto", 96) == "auto"
    assert parse_center("47.25", 96) == 47.25


def test_rows_are_parsed():
    assert parse_rows("all", 10) == (0, 10)
    assert parse_rows("2:5", 10) == (2, 5)
    assert parse_rows("7", 10) == (7, 8)
    with pytest.raises(ValueError, match="outside the detector's rows 0:10"):
        parse_rows("8:12", 10)


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("no-data", "/exchange/data: missing"),
        ("theta", "/exchange/theta: has 117 angles"),
        ("flats", "/exchange/data_white: flat frames are 6x88"),
        ("centre", "center 500.0 is outside the detector"),
    ],
)
def test_plugin_fails_with_the_dataset_named(tmp_path, scan, case, expect):
    extra = {}
    if case == "no-data":
        path = tmp_path / "empty.h5"
        with h5py.File(path, "w") as f:
            f["exchange/theta"] = scan["theta_deg"]
    elif case == "theta":
        path = _write(tmp_path, scan, theta_deg=scan["theta_deg"][:-3])
    elif case == "flats":
        path = _write(tmp_path, scan, flats=scan["flats"][:, :, :-8])
    else:
        path = _write(tmp_path, scan)
        extra["center"] = "500"
    from hisci.errors import InputError

    try:
        result = _run(tmp_path, path, **extra)
    except InputError as exc:  # a runner may refuse before starting
        assert expect in str(exc)
        return
    assert result.status == "failed"
    assert expect in (result.error or "")


# --- memory: row blocks ------------------------------------------------------------------------

def test_scan_is_read_and_written_in_row_blocks(tmp_path, scan, monkeypatch):
    path = _write(tmp_path, scan)
    reads: list[tuple[int, int]] = []
    original = scanio.Scan.read_rows

    def spy(self, r0, r1, **kw):
        reads.append((r0, r1))
        return original(self, r0, r1, **kw)

    monkeypatch.setattr(scanio.Scan, "read_rows", spy)
    budget_gb = 1.2 * 1024**2 / 1024**3  # ~1.2 MB: two rows per block at this size
    outs = {}
    for name, budget in (("small", budget_gb), ("large", 4.0)):
        reads.clear()
        opts = pipeline.ReconOptions(center=48.25, memory_budget_gb=budget)
        with scanio.open_scan(path) as s:
            res = pipeline.reconstruct_scan(
                s, lambda shape, c, n=name: scanio.VolumeWriter(tmp_path / f"{n}.h5", shape, {"center": c}),
                opts,
            )
        outs[name] = (res.rows_per_block, list(reads))
    small_block, small_reads = outs["small"]
    assert small_block < 6
    assert all(r1 - r0 <= small_block for r0, r1 in small_reads)
    with h5py.File(tmp_path / "small.h5") as a, h5py.File(tmp_path / "large.h5") as b:
        large = b["exchange/data"][()]
        # the NUFFT is asked for 1e-4 (relative) in both; blocks change only how slices are batched
        np.testing.assert_allclose(a["exchange/data"][()], large, rtol=0, atol=1e-4 * np.abs(large).max())


def test_rows_per_block_fits_a_12_gb_scan_in_a_24_gb_budget():
    class Fake:
        n_proj, n_rows, n_cols = 1442, 2048, 2048
        nbytes_per_row = 1442 * 2048 * 2

    rows = scanio.rows_per_block(Fake(), 2048, memory_budget_gb=16)
    per_row = 1442 * 2048 * (2 + 8 + 16) + 12 * 2048 * 2048
    assert 1 <= rows and rows * per_row <= 16 * 1024**3


# --- the plugin end to end ------------------------------------------------------------------

def test_example_runs_and_reports_the_centre(tmp_path):
    from hisci import run_plugin

    result = run_plugin(_plugin(), example=True, output_dir=tmp_path / "ex")
    assert result.status == "succeeded", result.error
    s = result.summary
    assert s["shape"] == [8, 128, 128]
    assert abs(s["center"] - (63.5 + 2.25)) <= 0.5  # the example's axis (see README)
    assert s["backend"] == "ducc0-nufft"
    for fig in ("slices", "sinogram", "centre_search"):
        assert (result.output_dir / f"{fig}.json").exists()
    with h5py.File(result.output_dir / "recon.h5") as f:
        ds = f["exchange/data"]
        assert ds.dtype == np.float32 and ds.shape == (8, 128, 128)
        assert ds.attrs["center"] == pytest.approx(s["center"])
        assert ds.attrs["algorithm"] == "gridrec"
        assert json.loads(ds.attrs["params"])["filter"] == "shepp"


@pytest.mark.parametrize("algorithm", ["fbp", "cgls"])
def test_plugin_reconstructs_rows_with_a_given_centre_and_tiff(tmp_path, scan, algorithm):
    import tifffile

    path = _write(tmp_path, scan)
    result = _run(tmp_path, path, rows="2:4", center="49.25", algorithm=algorithm, save_tiff=True,
                  stripe="sorting", stripe_size=5, flat_interpolation=True)
    assert result.status == "succeeded", result.error
    assert result.summary["shape"] == [2, 96, 96] and result.summary["center"] == 49.25
    with h5py.File(result.output_dir / "recon.h5") as f:
        vol = f["exchange/data"][()]
    np.testing.assert_array_equal(tifffile.imread(result.output_dir / "recon.tif"), vol)
    truth = scan["truth"] * scan["row_scale"][2]
    m = disc(96, 0.95)
    assert np.corrcoef(vol[0][m], truth[m])[0, 1] > 0.95
    assert rmse(vol[0], truth, m) < 0.15 * 4 / 96  # 96 px, 120 angles, noisy: 10-13 % of k


def test_plugin_reads_nxtomo_and_reconstructs_one_row(tmp_path, scan):
    path = phantom.write_nxtomo(tmp_path / "nx.h5", scan["projections"], scan["flats"], scan["darks"],
                                scan["theta_deg"])
    result = _run(tmp_path, path, rows="3", center="auto")
    assert result.status == "succeeded", result.error
    s = result.summary
    assert s["layout"] == "nxtomo" and s["shape"] == [1, 96, 96]
    assert abs(s["center"] - 49.25) <= 0.5
    assert s["center_cross_correlation"] is not None and abs(s["center_cross_correlation"] - 49.25) <= 1.0


def test_cancel_stops_within_one_block(tmp_path, scan, monkeypatch):
    class Cancelled(Exception):
        pass

    path = _write(tmp_path, scan)
    reads: list[tuple[int, int]] = []
    original = scanio.Scan.read_rows
    monkeypatch.setattr(scanio.Scan, "read_rows", lambda self, a, b, **kw: reads.append((a, b)) or original(self, a, b, **kw))
    seen: list[str] = []

    def progress(fraction, message):
        seen.append(message)
        if len(seen) == 2:  # the job is cancelled while the first block runs
            raise Cancelled

    opts = pipeline.ReconOptions(center=48.25, memory_budget_gb=1.2 * 1024**2 / 1024**3)
    with scanio.open_scan(path) as s, pytest.raises(Cancelled):
        pipeline.reconstruct_scan(
            s, lambda shape, c: scanio.VolumeWriter(tmp_path / "v.h5", shape, {}), opts, progress=progress
        )
    assert len([r for r in reads if r[1] - r[0] > 1]) == 1  # one block read, then stopped
    with h5py.File(tmp_path / "v.h5") as f:  # the writer was closed: the file is readable
        assert f["exchange/data"].shape == (6, 96, 96)


def test_plugin_reports_cancelled(tmp_path):
    from hisci import run_plugin

    result = run_plugin(_plugin(), example=True, output_dir=tmp_path / "c", cancel_check=lambda: True)
    assert result.status == "cancelled"


def test_tomopy_gridrec_is_refused_with_the_reason_when_tomopy_is_missing(tmp_path, scan, monkeypatch):
    # A None entry in sys.modules makes find_spec return None and `import tomopy` fail, so
    # the refusal is tested even where TomoPy is installed (e.g. a conda environment).
    monkeypatch.setitem(sys.modules, "tomopy", None)
    assert not pipeline.tomopy_available()
    from hisci.errors import InputError

    path = _write(tmp_path, scan)
    try:
        result = _run(tmp_path, path, algorithm="tomopy_gridrec")
    except InputError as exc:
        assert "TomoPy" in str(exc)
        return
    assert result.status == "failed" and "not on PyPI" in (result.error or "")


# --- TomoPy-style API -----------------------------------------------------------------------

def test_tomopy_compat_recon_uses_tomopy_conventions(scan):
    proj = scan["projections"]
    tomo = tomopy_compat.minus_log(tomopy_compat.normalize(proj, scan["flats"], scan["darks"]))
    theta = np.deg2rad(scan["theta_deg"])
    center = tomopy_compat.find_center_vo(tomo)
    assert abs(center - 49.25) <= 0.5
    rec = tomopy_compat.recon(tomo, theta, center=center, algorithm="gridrec", filter_name="shepp")
    assert rec.shape == (6, 96, 96) and rec.dtype == np.float32
    ref, _ = pipeline.reconstruct_block(np.swapaxes(tomo, 0, 1), theta, center, "gridrec", "shepp")
    np.testing.assert_allclose(rec, ref, rtol=0, atol=1e-4 * np.abs(ref).max())  # NUFFT eps 1e-4
    with pytest.raises(ValueError, match="supported: gridrec, fbp, sirt, cgls"):
        tomopy_compat.recon(tomo, theta, algorithm="mlem")
    assert tomopy_compat.angles(181)[-1] == pytest.approx(np.pi)  # TomoPy includes the end point
