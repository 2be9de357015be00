"""Reference data and a simulated 2-D Ni image for the `pdf` plugin tests.

The real files (tests/data/pdf, see SOURCE.md there) come from xpdAcq/PDFstream
(BSD-3). The 2-D images are simulated here the way tests/data/pdf/README.md
describes its `Ni_sim_*.edf`: the real Ni 1-D pattern (spike removed) projected with
``AzimuthalIntegrator.calcfrom1d`` onto the real geometry (optionally binned), with solid
angle and polarization 0.99 applied, plus bgscale x a smooth background, Poisson noise,
hot pixels, a dead column and a beam stop, and the matching mask.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data" / "pdf"

SHA256 = {
    "Ni_chi_file.chi": "22455014e923ba2dbe0bafaead901bc8fa087d806225ed8dec223c52eacd9657",
    "Ni_gr_file.gr": "178835d59adab3c9b0a14ad9a47991200037f14785a1002225da1f1c450b3160",
    "Ni_poni_file.poni": "6dda0e647772a279c5ba234ac3fbf7f215a7b5706256be2b71eaeabcce881d94",
    "Ni_sim.poni": "b8c6b7e1066317f1486a5d090cb2295d87f3bed0c72dcbd8a6eedd436ecb77ca",
    "Ni_cfg_file.cfg": "73ed2375d2c53b15d59cddf3a773867a481bcfd9b2386410ebc46766714d8e19",
}

#: fcc Ni lattice constant (Å) and its first shells a/√2, a, a√1.5, a√2
NI_A = 3.524
NI_SHELLS = NI_A * np.sqrt([0.5, 1.0, 1.5, 2.0])
#: Bragg peaks of Ni at this wavelength (Å⁻¹), README item 3
NI_BRAGG_Q = {"111": 3.088, "200": 3.566, "220": 5.043, "311": 5.913, "222": 6.176}
#: Fourier config of the reference Ni_gr_file.gr
NI_CONFIG = {"composition": "Ni", "qmin": 0.0, "qmax": 24.0, "qmaxinst": 25.0, "rpoly": 2.0,
                 "rmin": 0.0, "rmax": 60.0, "rstep": 0.01}

SPIKE_Q = 15.872  # the hot-pixel spike in Ni_chi_file.chi


def data_file(name: str) -> Path:
    """Path of a reference file, after checking its SHA-256."""
    path = DATA / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == SHA256[name], f"{name}: SHA-256 {digest} != recorded {SHA256[name]}"
    return path


def load_chi(despike: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Ni_chi_file.chi as (Q Å⁻¹, I); with despike the Q = 15.872 spike -> 7-point median."""
    q, inten = np.loadtxt(data_file("Ni_chi_file.chi"), comments="#").T
    if despike:
        i = int(np.argmin(np.abs(q - SPIKE_Q)))
        inten = inten.copy()
        inten[i] = np.median(inten[i - 3:i + 4])
    return q, inten


def load_reference_gr() -> tuple[np.ndarray, np.ndarray]:
    """PDFgetX3's G(r) for the Ni data: (r Å, G Å⁻²)."""
    text = data_file("Ni_gr_file.gr").read_text(encoding="utf-8")
    body = text.split("#### start data", 1)[1]
    rows = [ln.split() for ln in body.splitlines() if ln.strip() and not ln.startswith("#")]
    arr = np.asarray(rows, float)
    return arr[:, 0], arr[:, 1]


def background_curve(q: np.ndarray) -> np.ndarray:
    """A smooth Kapton/air-like amorphous background (same units as the Ni .chi)."""
    q = np.asarray(q, float)
    return (25.0 * np.exp(-q / 2.5) + 18.0 * np.exp(-0.5 * ((q - 1.2) / 0.35) ** 2)
            + 8.0 * np.exp(-0.5 * ((q - 4.2) / 1.2) ** 2) + 1.5 * np.exp(-q / 12.0))


@dataclass
class SimulatedImages:
    """Simulated sample/background images, mask and the geometry they were made with."""

    sample: np.ndarray
    background: np.ndarray
    mask: np.ndarray
    poni: Path
    bgscale: float
    count_scale: float
    hot: np.ndarray
    dead_column: int


def write_binned_poni(path: Path, binning: int) -> Path:
    """The real geometry with the 2048x2048 Perkin detector binned by `binning`."""
    src = data_file("Ni_poni_file.poni").read_text()
    pixel = 0.0002 * binning
    size = 2048 // binning
    lines = []
    for line in src.splitlines():
        if line.startswith("Detector_config"):
            line = (f'Detector_config: {{"pixel1": {pixel:g}, "pixel2": {pixel:g}, '
                    f'"max_shape": [{size}, {size}]}}')
        elif line.startswith("Detector:"):
            line = "Detector: Detector"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


def simulate(poni: Path, bgscale: float = 0.85, count_scale: float = 40.0, seed: int = 7,
             n_hot: int = 40, beamstop_q: float = 0.66) -> SimulatedImages:
    """Simulate Ni sample + background images on the detector of ``poni``.

    The sample image is count_scale·(I_Ni + bgscale·I_bg) projected with solid angle and
    polarization 0.99, Poisson noise, ``n_hot`` pixels at 2**24 and a dead column at
    value 0. The mask (True = masked) covers beam stop (Q < beamstop_q) and its arm, the
    dead column, the hot pixels and a 2-pixel frame.
    """
    import pyFAI

    ai = pyFAI.load(str(poni))
    shape = tuple(ai.detector.shape)
    q, ni = load_chi(despike=True)
    bg = background_curve(q)
    rng = np.random.default_rng(seed)

    def project(curve):
        img = ai.calcfrom1d(q, curve, shape=shape, dim1_unit="q_A^-1", correctSolidAngle=True,
                            polarization_factor=0.99)
        return np.asarray(img, float)

    sample = rng.poisson(np.clip(count_scale * project(ni + bgscale * bg), 0, None)).astype(np.int32)
    background = rng.poisson(np.clip(count_scale * project(bg), 0, None)).astype(np.int32)
    qarr = ai.qArray(shape) / 10.0
    cy, cx = np.unravel_index(np.argmin(qarr), shape)
    yy, xx = np.indices(shape)
    shadow = qarr < beamstop_q
    arm_half = max(2, shape[0] // 200)
    shadow |= (np.abs(yy - cy) <= arm_half) & (xx >= cx)
    sample[shadow] = rng.poisson(3.0, int(shadow.sum()))
    background[shadow] = rng.poisson(3.0, int(shadow.sum()))
    mask = shadow.copy()
    mask[:2, :] = mask[-2:, :] = True
    mask[:, :2] = mask[:, -2:] = True
    dead = int(shape[1] * 0.76)
    sample[:, dead] = 0
    background[:, dead] = 0
    mask[:, dead] = True
    hot = np.stack([rng.integers(10, shape[0] - 10, n_hot), rng.integers(10, shape[1] - 10, n_hot)], 1)
    sample[hot[:, 0], hot[:, 1]] = 2**24
    mask[hot[:, 0], hot[:, 1]] = True
    return SimulatedImages(sample, background, mask, Path(poni), bgscale, count_scale, hot, dead)


def write_example(folder: Path, binning: int = 4) -> dict[str, Path]:
    """Write the plugin's example inputs (binned Ni image, background, mask, poni).

    Images are NeXus-like HDF5 (``/entry/data/data``, gzip) to stay small; the mask is
    a compressed .npz. Used once to create plugins/pdf/example/ and by a test that
    checks the committed example still matches this recipe.
    """
    import h5py

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    poni = write_binned_poni(folder / "Ni_example.poni", binning)
    sim = simulate(poni, n_hot=10)
    out = {"poni": poni}
    for key, name, arr in (("image", "Ni_example.h5", sim.sample),
                           ("background", "Ni_example_bkg.h5", sim.background)):
        path = folder / name
        with h5py.File(path, "w") as h5:
            entry = h5.create_group("entry")
            entry.attrs["NX_class"] = "NXentry"
            grp = entry.create_group("data")
            grp.attrs["NX_class"] = "NXdata"
            grp.attrs["signal"] = "data"
            grp.create_dataset("data", data=arr, compression="gzip", compression_opts=9, shuffle=True)
        out[key] = path
    np.savez_compressed(folder / "Ni_example_mask.npz", mask=sim.mask.astype(np.uint8))
    out["mask"] = folder / "Ni_example_mask.npz"
    return out
