"""Science tests of the pyFAI integration layer (plugins/pdf/integration.py).

The 2-D image is simulated from the real Ni pattern on the real (2x2 binned) geometry
(tests/science/pdf_helpers.py, same recipe as tests/data/pdf/README.md); expected
numbers are README items 1-3.
"""

from __future__ import annotations

import numpy as np
import pytest

from hisci.builtin_plugins.pdf import integration as I
from hisci.builtin_plugins.pdf.transform import PDFConfig, PDFTransformer, find_gr_peaks

from .pdf_helpers import NI_BRAGG_Q, NI_SHELLS, data_file, load_chi, simulate

RANGE = (0.0849, 31.5529)   # README item 2: reproduces the .chi's Q bins


@pytest.fixture(scope="module")
def sim():
    return simulate(data_file("Ni_sim.poni"))


@pytest.fixture(scope="module")
def integrator(sim):
    ai = I.load_geometry(sim.poni)
    return I.Integrator1D(ai, sim.sample.shape, npt=1480, mask=sim.mask, polarization=0.99,
                          radial_range=RANGE)


def test_geometry_matches_readme():
    # README item 1: Fit2D-equivalent of the real PONI
    ai = I.load_geometry(data_file("Ni_poni_file.poni"))
    f2d = ai.getFit2D()
    assert f2d["directDist"] == pytest.approx(248.776, abs=1e-3)
    assert f2d["centerX"] == pytest.approx(1005.196, abs=1e-3)
    assert f2d["centerY"] == pytest.approx(1026.245, abs=1e-3)
    assert f2d["tilt"] == pytest.approx(0.025, abs=1e-3)
    assert f2d["tiltPlanRotation"] == pytest.approx(-57.748, abs=1e-3)
    assert ai.wavelength == pytest.approx(1.671e-11)
    binned = I.load_geometry(data_file("Ni_sim.poni")).getFit2D()
    assert (binned["centerX"], binned["centerY"]) == pytest.approx((502.598, 513.122), abs=1e-3)


def test_integration_is_pyfai_exactly(sim, integrator):
    # we call pyFAI, so the result must be bit-identical to a direct integrate1d call
    ai = I.load_geometry(sim.poni)
    direct = ai.integrate1d(sim.sample, 1480, radial_range=RANGE, unit="q_A^-1", mask=sim.mask,
                            polarization_factor=0.99, correctSolidAngle=True,
                            method=("full", "csr", "cython"))
    ours = integrator.integrate(sim.sample)
    np.testing.assert_array_equal(ours.q, direct.radial)
    np.testing.assert_array_equal(ours.intensity, direct.intensity)


def test_integrated_image_reproduces_real_pattern(sim, integrator):
    # README item 2: (sample - 0.85 bkg)/40 vs the despiked .chi: Pearson ≥ 0.98 per band,
    # relative rms ≤ 0.20 below Q = 10 and ≤ 0.03 above 20.
    a = integrator.integrate(sim.sample)
    b = integrator.integrate(sim.background)
    corrected = (a.intensity - sim.bgscale * b.intensity) / sim.count_scale
    q, ref = load_chi(despike=True)
    np.testing.assert_allclose(a.q, q, atol=2e-4)
    for lo, hi, rms_bound in [(1, 5, 0.20), (5, 10, 0.20), (10, 15, None), (20, 30, 0.03)]:
        s = (q >= lo) & (q < hi)
        assert np.corrcoef(corrected[s], ref[s])[0, 1] >= 0.98, (lo, hi)
        if rms_bound:
            rms = np.sqrt(np.mean((corrected[s] - ref[s]) ** 2) / np.mean(ref[s] ** 2))
            assert rms <= rms_bound, (lo, hi, rms)


def test_bragg_peaks_of_integrated_image(sim, integrator):
    # README item 3: Q(111) ... Q(222) ± 0.02 Å⁻¹
    res = integrator.integrate(sim.sample).trimmed()
    q, y = res.q, res.intensity
    for hkl, q0 in NI_BRAGG_Q.items():
        s = np.abs(q - q0) < 0.1
        assert abs(q[s][np.argmax(y[s])] - q0) <= 0.02, hkl


def test_mask_is_honoured(sim):
    # without the mask the 2**24 hot pixels dominate their bins
    ai = I.load_geometry(sim.poni)
    masked = I.Integrator1D(ai, sim.sample.shape, npt=1480, mask=sim.mask, radial_range=RANGE)
    unmasked = I.Integrator1D(ai, sim.sample.shape, npt=1480, mask=None, radial_range=RANGE)
    q, _ref = load_chi(despike=True)
    good = masked.integrate(sim.sample).intensity
    bad = unmasked.integrate(sim.sample).intensity
    s = (q > 5) & (q < 25)
    assert np.max(bad[s] / np.maximum(good[s], 1)) > 10
    assert masked.q_limits()[0] == pytest.approx(0.66, abs=0.05)   # beam stop edge


def test_auto_mask_finds_hot_and_dead_pixels(sim):
    m = I.auto_mask(sim.sample, beamstop_threshold=None)
    assert m[sim.hot[:, 0], sim.hot[:, 1]].all()
    assert m[:, sim.dead_column].mean() > 0.99
    # almost nothing else (Bragg rings are not hot pixels): < 0.1 % of the detector extra
    extra = m & ~sim.mask
    extra[:, sim.dead_column] = False
    assert extra.sum() < 1e-3 * m.size
    shadow = I.auto_mask(sim.sample, dead=False, hot=False, beamstop_threshold=20)
    beamstop = I.load_geometry(sim.poni).qArray(sim.sample.shape) / 10 < 0.6
    assert shadow[beamstop].mean() > 0.99


def test_auto_masked_gr_matches_user_masked(sim):
    # automatic dead/hot + beam-stop masking alone gives the same G(r) first peak
    ai = I.load_geometry(sim.poni)
    auto = I.auto_mask(sim.sample, beamstop_threshold=20)
    integ = I.Integrator1D(ai, sim.sample.shape, npt=1480, mask=auto)
    res = integ.integrate(sim.sample).trimmed()
    bkg = integ.integrate(sim.background).trimmed()
    tr = PDFTransformer(res.q, PDFConfig(composition="Ni", qmax=24, qmaxinst=25, rpoly=2, rmax=10))
    g = tr.transform(res.intensity - 0.85 * bkg.intensity)
    peaks = find_gr_peaks(g.r, g.gr, rmin=1.5)
    # README item 5: from the simulated image the first peak sits at 2.52 Å (data start at 0.66)
    assert abs(peaks[0] - NI_SHELLS[0]) < 0.04


def test_dark_is_subtracted(sim):
    ai = I.load_geometry(sim.poni)
    dark = np.full(sim.sample.shape, 100.0, np.float32)
    a = I.Integrator1D(ai, sim.sample.shape, npt=500, mask=sim.mask, dark=dark)
    b = I.Integrator1D(ai, sim.sample.shape, npt=500, mask=sim.mask)
    ra = a.integrate(sim.sample.astype(np.float32) + dark)
    rb = b.integrate(sim.sample.astype(np.float32))
    ok = np.isfinite(rb.intensity) & (rb.weight > 0)
    np.testing.assert_allclose(ra.intensity[ok], rb.intensity[ok], rtol=1e-4, atol=1e-2)


def test_sigma_clip_option_runs_and_agrees(sim):
    ai = I.load_geometry(sim.poni)
    # same bins for both (pixel splitting changes the default Q range)
    plain = I.Integrator1D(ai, sim.sample.shape, npt=800, mask=sim.mask, radial_range=RANGE)
    clip = I.Integrator1D(ai, sim.sample.shape, npt=800, mask=sim.mask, sigma_clip=5,
                          radial_range=RANGE)
    a, b = plain.integrate(sim.sample), clip.integrate(sim.sample)
    s = (a.q > 5) & (a.q < 25)
    assert np.corrcoef(a.intensity[s], b.intensity[s])[0, 1] > 0.99


# ---------------------------------------------------------------- bad input

def test_bad_poni_names_the_file(tmp_path):
    bad = tmp_path / "broken.poni"
    bad.write_text("this is not a geometry\nDistance: banana\n")
    with pytest.raises(ValueError, match="broken.poni"):
        I.load_geometry(bad)
    no_wl = tmp_path / "nowl.poni"
    no_wl.write_text("\n".join(ln for ln in data_file("Ni_sim.poni").read_text().splitlines()
                               if not ln.startswith("Wavelength")))
    with pytest.raises(ValueError, match="nowl.poni.*Wavelength"):
        I.load_geometry(no_wl)


def test_mask_shape_mismatch_is_reported(sim):
    ai = I.load_geometry(sim.poni)
    with pytest.raises(ValueError, match=r"mask: shape 512x512 does not match the image shape 1024x1024"):
        I.Integrator1D(ai, sim.sample.shape, mask=np.zeros((512, 512), bool))
    with pytest.raises(ValueError, match="does not match the detector in the poni"):
        I.Integrator1D(ai, (2048, 2048))
    with pytest.raises(ValueError, match="method 'fast'.*allowed"):
        I.Integrator1D(ai, sim.sample.shape, method="fast")


@pytest.mark.parametrize("method", ["full", "no"])
def test_integrate_many_equals_pyfai_per_frame(sim, method):
    # the batch path applies pyFAI's own CSR matrix and corrections; it must agree with
    # integrate1d frame by frame to float32 rounding (measured ≤ 5e-6 relative)
    ai = I.load_geometry(sim.poni)
    dark = np.full(sim.sample.shape, 2.0, np.float32)
    integ = I.Integrator1D(ai, sim.sample.shape, npt=700, mask=sim.mask, method=method, dark=dark)
    frames = np.stack([sim.sample, sim.background, 3 * sim.sample]).astype(np.float32)
    q, rows = integ.integrate_many(iter(frames))
    assert integ.fast_path and rows.shape == (3, 700)
    for k, frame in enumerate(frames):
        ref = integ.integrate(frame)
        np.testing.assert_array_equal(q, ref.q)
        ok = ref.intensity != 0
        np.testing.assert_allclose(rows[k][ok], ref.intensity[ok], rtol=2e-5)
        assert np.all(rows[k][~ok] == 0)


def test_integrate_many_falls_back_with_sigma_clip(sim):
    ai = I.load_geometry(sim.poni)
    integ = I.Integrator1D(ai, sim.sample.shape, npt=300, mask=sim.mask, sigma_clip=5)
    _q, rows = integ.integrate_many([sim.sample, sim.sample])
    assert not integ.fast_path and rows.shape == (2, 300)
    np.testing.assert_allclose(rows[0], rows[1])
