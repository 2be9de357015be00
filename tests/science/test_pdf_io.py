"""Tests of file I/O, background subtraction and spike removal of the `pdf` plugin."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hisci.builtin_plugins.pdf import background as B
from hisci.builtin_plugins.pdf import fileio as F

from .pdf_helpers import SPIKE_Q, data_file, load_chi, load_reference_gr


def test_read_pyfai_chi_detects_q_unit_and_wavelength():
    q, _inten, info = F.read_pattern(data_file("Ni_chi_file.chi"))
    assert info["dataformat"] == "QA" and info["wavelength"] == pytest.approx(0.1671)
    assert q.size == 1480 and q[0] == pytest.approx(0.09560906) and q[-1] == pytest.approx(31.54, abs=0.01)
    np.testing.assert_allclose(np.diff(q), 0.02126, atol=1e-4)        # README: ΔQ = 0.02126


def test_read_twotheta_and_nm_patterns(tmp_path):
    q, inten = load_chi()
    wl = 0.1671
    tth = np.degrees(2 * np.arcsin(q * wl / (4 * math.pi)))
    p = tmp_path / "ni.xy"
    np.savetxt(p, np.c_[tth, inten], header="2th_deg I")
    with pytest.raises(ValueError, match="wavelength"):
        F.read_pattern(p)
    q2, _i2, info = F.read_pattern(p, wavelength=wl)
    assert info["dataformat"] == "twotheta"
    np.testing.assert_allclose(q2, q, rtol=1e-10)
    p_nm = tmp_path / "ni.dat"
    np.savetxt(p_nm, np.c_[10 * q, inten], delimiter=",")
    q3, _, _ = F.read_pattern(p_nm, "Qnm")
    np.testing.assert_allclose(q3, q, rtol=1e-12)
    with pytest.raises(ValueError, match="dataformat 'deg'.*allowed"):
        F.read_pattern(p_nm, "deg")
    empty = tmp_path / "empty.chi"
    empty.write_text("# nothing\n1 2\n")
    with pytest.raises(ValueError, match="empty.chi.*numeric rows"):
        F.read_pattern(empty)


def test_pdfgetx3_file_round_trip_and_layout(tmp_path):
    r, g = load_reference_gr()
    out = F.write_pdfgetx3(tmp_path / "x.gr", r, g, "gr",
                           {"composition": "Ni", "qmax": 24.0, "bgscale": 1.0, "backgroundfile": None})
    text = out.read_text(encoding="utf-8")
    assert text.startswith("[DEFAULT]")
    assert "#### start data\n#S 1\n#L r(Å)  G(Å$^{-2}$)\n" in text
    assert "composition = Ni" in text and "outputtype = gr" in text
    r2, g2, cfg = F.read_pdfgetx3(out)
    np.testing.assert_allclose(r2, r)
    np.testing.assert_allclose(g2, g, rtol=1e-7, atol=1e-12)
    assert cfg["qmax"] == "24" and cfg["backgroundfile"] == ""
    # the PDFgetX3 reference itself reads back with the same reader
    r3, _g3, cfg3 = F.read_pdfgetx3(data_file("Ni_gr_file.gr"))
    assert cfg3["rpoly"] == "2" and r3.size == 6001


def test_iter_frames_hdf5_stack_and_edf(tmp_path):
    import fabio
    import h5py

    stack = np.arange(3 * 4 * 5, dtype=np.int32).reshape(3, 4, 5)
    with h5py.File(tmp_path / "scan.h5", "w") as h5:
        h5["entry/data/data"] = stack
        h5["entry/other"] = np.zeros(7)
    frames = list(F.iter_frames(tmp_path / "scan.h5"))
    assert [lbl for lbl, _ in frames] == ["scan_00000", "scan_00001", "scan_00002"]
    np.testing.assert_array_equal(frames[2][1], stack[2])
    explicit = list(F.iter_frames(f"{tmp_path / 'scan.h5'}::/entry/data/data"))
    assert len(explicit) == 3
    fabio.edfimage.EdfImage(data=stack[1]).write(str(tmp_path / "one.edf"))
    (label, frame), = F.iter_frames(tmp_path / "one.edf")
    assert label == "one"
    np.testing.assert_array_equal(frame, stack[1])
    (tmp_path / "junk.tif").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="junk.tif"):
        list(F.iter_frames(tmp_path / "junk.tif"))


def test_read_mask_formats(tmp_path):
    m = np.zeros((6, 7), np.int8)
    m[2, 3] = 1
    np.save(tmp_path / "m.npy", m)
    np.savez_compressed(tmp_path / "m.npz", mask=m)
    import fabio

    fabio.edfimage.EdfImage(data=m).write(str(tmp_path / "m.edf"))
    for name in ("m.npy", "m.npz", "m.edf"):
        got = F.read_mask(tmp_path / name)
        assert got.dtype == bool and got.sum() == 1 and got[2, 3]


def test_remove_spikes_finds_only_the_hot_pixel_bin():
    # README: one spike in the real .chi at Q = 15.872 (I = 2226 vs ~109 around)
    q, inten = load_chi(despike=False)
    for factor in (1.0, 40.0, 1e-3):                          # scale-free
        cleaned, n = B.remove_spikes(factor * inten)
        assert n == 1
        changed = np.nonzero(cleaned != factor * inten)[0]
        assert q[changed[0]] == pytest.approx(SPIKE_Q, abs=1e-3)
        assert cleaned[changed[0]] / factor == pytest.approx(109, rel=0.1)


def test_auto_bgscale_recovers_scale_when_sample_leaves_a_gap():
    q = np.linspace(0.5, 25, 1200)
    bg = 30 * np.exp(-q / 3) + 10 * np.exp(-0.5 * ((q - 1.5) / 0.4) ** 2)
    sample_signal = np.where(q > 2.5, 5 + np.sin(3 * q) ** 2, 0.0)   # nothing below 2.5 Å⁻¹
    s = B.auto_bgscale(0.85 * bg + sample_signal, bg)
    assert s == pytest.approx(0.85, abs=1e-6)
    # an upper bound when the sample scatters everywhere
    assert B.auto_bgscale(0.85 * bg + 1.0, bg) > 0.85
    with pytest.raises(ValueError, match="shape"):
        B.auto_bgscale(bg, bg[:-1])


def test_subtract_background_and_bad_scale():
    a, b = np.array([3.0, 4.0]), np.array([1.0, 2.0])
    np.testing.assert_allclose(B.subtract_background(a, b, 0.5), [2.5, 3.0])
    np.testing.assert_allclose(B.subtract_background(a, None, 0.5), a)
    with pytest.raises(ValueError, match="bgscale = -1"):
        B.subtract_background(a, b, -1)


def test_read_image_averages_a_multi_frame_dark(tmp_path):
    import h5py

    with h5py.File(tmp_path / "dark.h5", "w") as h5:
        h5["entry/data/data"] = np.stack([np.full((4, 4), 10), np.full((4, 4), 20)]).astype(np.int32)
    np.testing.assert_allclose(F.read_image(tmp_path / "dark.h5"), 15.0)
