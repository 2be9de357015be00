"""muser_imaging end to end: the plugin through hisci's runner, output files, FITS WCS,
UVFITS, stream mode and the errors a user sees."""

from __future__ import annotations

import json
import shutil
import threading
import time

import numpy as np
import pytest

from hisci import Registry, run_plugin
from hisci.builtin_plugins.muser_imaging import frames as F
from hisci.builtin_plugins.muser_imaging import stream

from .muser_imaging_helpers import SOURCES, make_dataset


@pytest.fixture(scope="module")
def plugin():
    registry = Registry.discover()
    assert "muser_imaging" not in [p.id for p in registry.problems]
    return registry.get("muser_imaging")


def test_example_runs_and_writes_the_documented_outputs(plugin, tmp_path):
    result = run_plugin(plugin, example=True, output_dir=tmp_path / "run")
    assert result.status == "succeeded", result.error
    out = result.output_dir / "batch_0"
    dirty, clean = np.load(out / "dirty.npy"), np.load(out / "clean.npy")
    assert dirty.dtype == np.float32 and dirty.shape == (3, 8, 256, 256) == clean.shape
    meta = json.loads((out / "images.json").read_text())
    assert meta["state"] == "imaged" and meta["polarizations"] == ["L", "R", "I"]
    assert meta["channels"] == list(range(0, 64, 8))
    assert len(meta["freq_hz"]) == len(meta["cell_arcsec"]) == 8
    assert meta["freq_hz"][0] == 412.5e6 and meta["cell_arcsec"][0] == 8.0
    assert {"dirty", "psf", "clean", "restore", "total"} <= set(meta["timings_s"])
    # the example sky (simulate.DEFAULT_SOURCES): the brightest source in Stokes I at 1 GHz
    iy, ix = np.unravel_index(np.nanargmax(clean[2, 3]), clean.shape[2:])  # channel 24
    assert (ix, iy) == (128 + 50, 128 + 31)  # l = -400", m = +250" at 8"/pixel, rounded
    for name in ("stokes_i.json", "dynamic_spectrum.json", "gains.json", "calibration.json"):
        assert (result.output_dir / name).is_file(), name
    assert (out / "clean_I.fits").is_file() and (out / "dirty_L.fits").is_file()
    assert result.summary["n_images"] == 24


def test_fits_headers_carry_the_wcs_and_the_beam(plugin, tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    make_dataset(tmp_path / "ds", seed=21)
    result = run_plugin(plugin, {"extra": {"channels": "40", "polarizations": ["I"],
                                           "image_size": 256, "cell_arcsec": "10",
                                           "output": ["npy", "fits", "uvfits"],
                                           "clean_niter": 100}},
                        inputs={"dataset": tmp_path / "ds"}, output_dir=tmp_path / "run")
    assert result.status == "succeeded", result.error
    out = result.output_dir / "batch_0"
    with fits.open(out / "clean_I.fits") as hdul:
        h = hdul[1].header
        assert h["CDELT1"] == pytest.approx(-10 / 3600) and h["CDELT2"] == pytest.approx(10 / 3600)
        assert h["CRPIX1"] == h["CRPIX2"] == 129
        assert h["FREQ"] == pytest.approx(F.all_frequencies()[40])
        assert 0 < h["BMIN"] <= h["BMAJ"] < 0.1
        offsets = WCS(h, key="A")
        src = SOURCES[0]  # l = -400" east, m = +250" north
        x, y = offsets.world_to_pixel_values(src.l_arcsec, src.m_arcsec)
        assert (x, y) == pytest.approx((128 + 40, 128 + 25))  # 0-based pixel = array index
        img = hdul[1].data
        assert np.unravel_index(np.argmax(img), img.shape) == (128 + 25, 128 + 40)
        sky = WCS(h)
        ra, dec = sky.pixel_to_world_values(128, 128)
        assert dec == pytest.approx(h["CRVAL2"]) and ra == pytest.approx(h["CRVAL1"])
    with fits.open(out / "vis.uvfits") as hdul:
        g = hdul[0]
        assert g.header["GROUPS"] and len(g.data) == 780
        assert g.data.par("BASELINE")[0] == 256 * 1 + 2 and g.data.par("BASELINE")[-1] == 256 * 39 + 40
        assert g.data.data.shape[1:] == (1, 1, 64, 2, 3)


def test_weather_flagged_batch_has_no_image_and_says_why(plugin, tmp_path):
    make_dataset(tmp_path / "ds", n_batches=2, weather_bad_batches=[0], seed=22)
    result = run_plugin(plugin, {"extra": {"channels": "0-1", "image_size": 256,
                                           "clean": "none"}},
                        inputs={"dataset": tmp_path / "ds"}, output_dir=tmp_path / "run")
    assert result.status == "succeeded", result.error
    meta = json.loads((result.output_dir / "batch_0" / "images.json").read_text())
    assert meta["state"].startswith("flagged: weather") and "wind" in meta["state"]
    assert not (result.output_dir / "batch_0" / "dirty.npy").exists()
    assert (result.output_dir / "batch_1" / "dirty.npy").exists()
    assert [b["state"][:7] for b in result.summary["batches"]] == ["flagged", "imaged"]


def test_dataset_archive_is_accepted_and_a_missing_file_is_named(plugin, tmp_path):
    make_dataset(tmp_path / "ds", seed=23)
    (tmp_path / "ds" / "ephemeris.csv").unlink()
    archive = shutil.make_archive(str(tmp_path / "upload"), "gztar", tmp_path, "ds")
    result = run_plugin(plugin, {"extra": {"channels": "0"}}, inputs={"dataset": archive},
                        output_dir=tmp_path / "run")
    assert result.status == "failed"
    assert "ephemeris.csv" in result.error and "missing file" in result.error


def test_broken_frame_is_reported_and_the_rest_imaged(plugin, tmp_path):
    make_dataset(tmp_path / "ds", broken=[(0, 6)], seed=24)
    result = run_plugin(plugin, {"extra": {"channels": "40,50", "image_size": 256,
                                           "clean": "none", "polarizations": ["L", "R"]}},
                        inputs={"dataset": tmp_path / "ds"}, output_dir=tmp_path / "run")
    assert result.status == "succeeded", result.error
    meta = json.loads((result.output_dir / "batch_0" / "images.json").read_text())
    assert meta["state"] == "partial"
    assert meta["flags"]["dropped_frames"][0]["index"] == 6
    dirty = np.load(result.output_dir / "batch_0" / "dirty.npy")
    assert np.isnan(dirty[0, 1]).all() and np.isfinite(dirty[1, 1]).all()  # band 3 L lost
    assert np.isfinite(dirty[:, 0]).all()


def test_stream_mode_yields_batches_as_frames_are_appended(tmp_path):
    make_dataset(tmp_path / "ds", n_batches=3, seed=25)
    data = (tmp_path / "ds" / "target.bin").read_bytes()
    live = tmp_path / "live.bin"
    live.write_bytes(b"")
    step = 4 * F.FRAME_SIZE

    def writer():
        for k in range(0, len(data), step):
            time.sleep(0.05)
            with open(live, "ab") as fh:
                fh.write(data[k:k + step])

    thread = threading.Thread(target=writer)
    thread.start()
    got = []
    for batch, arrived in stream.follow_batches(live, None, 5.0, poll_s=0.01,
                                                idle_timeout_s=1.0):
        got.append((batch.index, len(batch.frames), time.monotonic() - arrived))
    thread.join()
    assert [(k, n) for k, n, _ in got] == [(0, 8), (1, 8), (2, 8)]
    assert all(lat < 0.5 for *_, lat in got)  # yielded as soon as the 8th frame is read


def test_plugin_stream_mode_reports_latency(plugin, tmp_path):
    make_dataset(tmp_path / "ds", n_batches=2, seed=26)
    result = run_plugin(plugin, {"extra": {"stream": True, "stream_timeout_s": 1,
                                           "channels": "3", "image_size": 256, "clean": "none"}},
                        inputs={"dataset": tmp_path / "ds"}, output_dir=tmp_path / "run")
    assert result.status == "succeeded", result.error
    lat = [b["latency_s"] for b in result.summary["batches"]]
    assert len(lat) == 2 and all(0 <= x < 5 for x in lat)


def test_bad_channel_list_is_a_clear_input_error(plugin, tmp_path):
    make_dataset(tmp_path / "ds", seed=27)
    result = run_plugin(plugin, {"extra": {"channels": "0-70"}},
                        inputs={"dataset": tmp_path / "ds"}, output_dir=tmp_path / "run")
    assert result.status == "failed" and "channels" in result.error and "0..63" in result.error


def test_auto_image_size_and_cell_follow_the_beam(plugin, tmp_path):
    make_dataset(tmp_path / "ds", seed=28)
    result = run_plugin(plugin, {"extra": {"channels": "0", "image_size": "auto",
                                           "cell_arcsec": "auto", "clean": "none",
                                           "polarizations": ["I"]}},
                        inputs={"dataset": tmp_path / "ds"}, output_dir=tmp_path / "run")
    assert result.status == "succeeded", result.error
    meta = json.loads((result.output_dir / "batch_0" / "images.json").read_text())
    # (lambda / 3000 m) / 3 at 412.5 MHz = 16.66"; 36' needs 130 pixels -> 256
    assert meta["cell_arcsec"][0] == pytest.approx(16.66, abs=0.01)
    assert meta["image_size"] == 256 == result.summary["image_size"]


def test_batches_parameter_selects_batches(plugin, tmp_path):
    make_dataset(tmp_path / "ds", n_batches=3, seed=29)
    result = run_plugin(plugin, {"extra": {"batches": "1-2", "channels": "5", "image_size": 256,
                                           "clean": "none"}},
                        inputs={"dataset": tmp_path / "ds"}, output_dir=tmp_path / "run")
    assert result.status == "succeeded", result.error
    assert [b["batch"] for b in result.summary["batches"]] == [1, 2]
    assert not (result.output_dir / "batch_0").exists()
    t = [b["time_utc"] for b in result.summary["batches"]]
    assert t == ["2015-11-01T04:08:55+00:00", "2015-11-01T04:09:00+00:00"]
