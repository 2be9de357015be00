"""Regenerate example/phantom_scan.h5 and the README's orientation figure.

    python plugins/ct_recon/example/make_example.py

The example: 128 columns, 180 angles over [0, 180) degrees, 8 rows, asymmetric ellipse
phantom, rotation axis at column 65.75 (63.5 + 2.25), Poisson noise (2e4 counts), 4 flats,
4 darks, seed 11, written in the Data Exchange layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hisci.builtin_plugins.ct_recon import phantom
from hisci.builtin_plugins.ct_recon.fourier import gridrec_reconstruct

HERE = Path(__file__).resolve().parent


def make_scan(path: Path = HERE / "phantom_scan.h5") -> Path:
    sc = phantom.make_scan(128, 180, 8, center=63.5 + 2.25, seed=11)
    return phantom.write_data_exchange(path, sc["projections"], sc["flats"], sc["darks"],
                                       sc["theta_deg"], pixel_size_um=0.65)


def make_figure(path: Path = HERE.parent / "orientation.png") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, na = 256, 360
    theta_deg = np.arange(na) * 180.0 / na
    ell = phantom.asymmetric_ellipses(n)
    sino = phantom.line_integrals(ell, np.deg2rad(theta_deg), n)
    truth = phantom.rasterize(ell, n)
    rec = gridrec_reconstruct(sino, np.deg2rad(theta_deg))
    fig, ax = plt.subplots(1, 3, figsize=(11, 3.8))
    ax[0].imshow(truth, cmap="gray")
    ax[0].set_title("object (truth), row 0 at top")
    ax[0].annotate("", xy=(200, 128), xytext=(128, 128), arrowprops={"color": "r", "width": 1.5})
    ax[0].annotate("", xy=(128, 56), xytext=(128, 128), arrowprops={"color": "c", "width": 1.5})
    ax[0].text(204, 124, "+x", color="r")
    ax[0].text(132, 52, "+y", color="c")
    ax[1].imshow(sino, cmap="gray", aspect="auto", extent=(-0.5, n - 0.5, 180, 0))
    ax[1].set_title("sinogram: s = x cos\u03b8 + y sin\u03b8")
    ax[1].set_xlabel("detector column (s = column - centre)")
    ax[1].set_ylabel("\u03b8 (degrees)")
    ax[2].imshow(rec, cmap="gray", vmin=truth.min(), vmax=truth.max())
    ax[2].set_title("ct_recon gridrec (same orientation)")
    for a in (ax[0], ax[2]):
        a.set_xlabel("column j (x = j - (n-1)/2)")
        a.set_ylabel("row i (y = (n-1)/2 - i)")
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(make_scan(), make_figure())
