"""Analytic ellipse phantoms with exact line integrals, noisy scans and Data Exchange files.

The geometry is the one every ``ct_recon`` module uses (see the plugin README):

* image pixel ``(i, j)`` (row, column) has its centre at ``x = j - c``, ``y = c - i``
  where ``c`` is the image centre in pixel-index units, so ``+x`` is "right" (increasing
  column) and ``+y`` is "up" (decreasing row) when row 0 is drawn at the top;
* the projection at angle ``theta`` (radians) is the line integral along the direction
  ``(-sin theta, cos theta)``, recorded at detector coordinate ``s = x cos theta + y sin theta``;
  detector column ``k`` sits at ``s = k - center``, ``center`` being the rotation axis in
  detector-pixel units (pixel ``k``'s centre at ``k``).

This is scikit-image's ``radon`` convention. Values are attenuation per pixel (``mu * dx``), so a
sinogram is ``-log(I / I0)`` and sums of pixel values along a row give line integrals.

Line integrals are evaluated analytically at detector-bin centres (no pixel projector, so
reconstructions from these sinograms commit no "inverse crime"). The truth image is the
pixel-area average, approximated by ``supersample**2`` point samples per pixel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "ELLIPSE_COLUMNS",
    "asymmetric_ellipses",
    "line_integrals",
    "make_scan",
    "rasterize",
    "shepp_logan_ellipses",
    "simulate_counts",
    "write_data_exchange",
    "write_nxtomo",
]

#: Column order of an ellipse table: value (per pixel), semi-axis a, semi-axis b (pixels),
#: centre x0, y0 (pixels, relative to the image centre, +y up) and rotation phi (radians,
#: counter-clockwise from +x to the a axis).
ELLIPSE_COLUMNS = ("value", "a", "b", "x0", "y0", "phi")

# Modified Shepp-Logan (Toft 1996): value, a, b, x0, y0, phi (deg), in units of the half-width.
_TOFT = np.array(
    [
        [1.0, 0.69, 0.92, 0.0, 0.0, 0.0],
        [-0.8, 0.6624, 0.8740, 0.0, -0.0184, 0.0],
        [-0.2, 0.1100, 0.3100, 0.22, 0.0, -18.0],
        [-0.2, 0.1600, 0.4100, -0.22, 0.0, 18.0],
        [0.1, 0.2100, 0.2500, 0.0, 0.35, 0.0],
        [0.1, 0.0460, 0.0460, 0.0, 0.1, 0.0],
        [0.1, 0.0460, 0.0460, 0.0, -0.1, 0.0],
        [0.1, 0.0460, 0.0230, -0.08, -0.605, 0.0],
        [0.1, 0.0230, 0.0230, 0.0, -0.606, 0.0],
        [0.1, 0.0230, 0.0460, 0.06, -0.605, 0.0],
    ]
)

# Extra features that break every mirror symmetry: a bright blob upper right, a dark
# tilted bar lower left and a small dense dot on the right edge.
_ASYMMETRIC_EXTRA = np.array(
    [
        [0.6, 0.12, 0.06, 0.35, 0.55, 30.0],
        [-0.15, 0.22, 0.05, -0.30, -0.45, -35.0],
        [0.8, 0.035, 0.035, 0.55, -0.15, 0.0],
    ]
)


def _scale(table: np.ndarray, n: int, value_scale: float | None) -> np.ndarray:
    half = n / 2.0
    k = 4.0 / n if value_scale is None else value_scale
    out = np.empty_like(table, dtype=np.float64)
    out[:, 0] = table[:, 0] * k
    out[:, 1:5] = table[:, 1:5] * half
    out[:, 5] = np.deg2rad(table[:, 5])
    return out


def shepp_logan_ellipses(n: int, value_scale: float | None = None) -> np.ndarray:
    """Modified Shepp-Logan (Toft) phantom scaled to an ``n``-pixel-wide field of view.

    Parameters
    ----------
    n : int
        Width of the field of view in pixels; the phantom spans ``[-n/2, n/2]``.
    value_scale : float, optional
        Attenuation per pixel of the outer ellipse. Default ``4 / n`` (as in ct.md), which keeps
        the largest line integral near 1.1 at any ``n``.

    Returns
    -------
    ndarray of shape (10, 6)
        Ellipse table in pixel units, columns :data:`ELLIPSE_COLUMNS`.
    """
    return _scale(_TOFT, n, value_scale)


def asymmetric_ellipses(n: int, value_scale: float | None = None) -> np.ndarray:
    """Shepp-Logan plus three off-axis features, so that any flip or rotation is detectable.

    Returns an ellipse table of shape (13, 6); see :func:`shepp_logan_ellipses`.
    """
    return _scale(np.vstack([_TOFT, _ASYMMETRIC_EXTRA]), n, value_scale)


def line_integrals(
    ellipses: np.ndarray, theta: np.ndarray, n_det: int, center: float | None = None
) -> np.ndarray:
    """Exact parallel-beam sinogram of an ellipse phantom at detector-bin centres.

    Parameters
    ----------
    ellipses : ndarray of shape (n_ellipses, 6)
        Table in pixel units (:data:`ELLIPSE_COLUMNS`).
    theta : ndarray of shape (n_angles,)
        Projection angles in radians.
    n_det : int
        Number of detector columns.
    center : float, optional
        Rotation-axis position in detector pixels (pixel ``k`` centred at ``k``).
        Default ``(n_det - 1) / 2``.

    Returns
    -------
    ndarray of shape (n_angles, n_det), float64
        Line integrals (dimensionless, ``-log`` transmission).

    Notes
    -----
    For an ellipse of value ``v``, semi-axes ``a, b``, centre ``(x0, y0)`` and rotation ``phi``,
    the chord at ``s`` for angle ``theta`` has length ``2 a b sqrt(r^2 - t^2) / r^2`` with
    ``r^2 = a^2 cos^2(theta - phi) + b^2 sin^2(theta - phi)`` and
    ``t = s - x0 cos theta - y0 sin theta`` (Kak & Slaney, *Principles of Computerized
    Tomographic Imaging*, 1988, eq. 3.15).
    """
    theta = np.asarray(theta, dtype=np.float64)
    c = (n_det - 1) / 2.0 if center is None else float(center)
    s = np.arange(n_det, dtype=np.float64) - c
    sino = np.zeros((theta.size, n_det))
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    for v, a, b, x0, y0, phi in np.asarray(ellipses, dtype=np.float64):
        t = s[None, :] - (x0 * cos + y0 * sin)
        ang = theta[:, None] - phi
        r2 = (a * np.cos(ang)) ** 2 + (b * np.sin(ang)) ** 2
        inside = np.clip(r2 - t**2, 0.0, None)
        sino += 2.0 * v * a * b * np.sqrt(inside) / r2
    return sino


def rasterize(
    ellipses: np.ndarray, n: int, center: float | None = None, supersample: int = 4
) -> np.ndarray:
    """Pixel-area-averaged image of an ellipse phantom (the reconstruction's truth).

    Parameters
    ----------
    ellipses : ndarray of shape (n_ellipses, 6)
        Table in pixel units.
    n : int
        Output is ``n x n`` pixels.
    center : float, optional
        Pixel-index position of the phantom origin (the rotation axis), in both axes.
        Default ``(n - 1) / 2``, the geometric centre, which is where ``ct_recon`` puts the axis.
    supersample : int
        Point samples per pixel along each axis.

    Returns
    -------
    ndarray of shape (n, n), float64
        Attenuation per pixel; row ``i``, column ``j`` at ``x = j - center``, ``y = center - i``.
    """
    c = (n - 1) / 2.0 if center is None else float(center)
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    coord = (np.arange(n)[:, None] + sub[None, :]).ravel() - c
    table = np.asarray(ellipses, dtype=np.float64)
    out = np.empty((n, n))
    step = max(1, 2**22 // (coord.size * supersample))  # image rows per chunk, bounded memory
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        x = coord[None, :]
        y = -coord[i0 * supersample : i1 * supersample, None]
        img = np.zeros((y.size, coord.size))
        for v, a, b, x0, y0, phi in table:
            cp, sp = np.cos(phi), np.sin(phi)
            dx, dy = x - x0, y - y0
            u = (dx * cp + dy * sp) / a
            w = (-dx * sp + dy * cp) / b
            img += v * (u**2 + w**2 <= 1.0)
        out[i0:i1] = img.reshape(i1 - i0, supersample, n, supersample).mean(axis=(1, 3))
    return out


def simulate_counts(
    sinogram: np.ndarray,
    n_rows: int = 1,
    flat_counts: float = 2.0e4,
    dark_counts: float = 100.0,
    n_flats: int = 4,
    n_darks: int = 4,
    rng: np.random.Generator | int | None = 0,
    noise: bool = True,
    row_scale: np.ndarray | None = None,
    column_gain: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn a sinogram into uint16 projections, flats and darks with Poisson noise.

    Parameters
    ----------
    sinogram : ndarray of shape (n_angles, n_det)
        Line integrals.
    n_rows : int
        Detector rows; every row sees ``sinogram * row_scale[row]``.
    flat_counts, dark_counts : float
        Mean open-beam counts (above dark) and mean dark counts per pixel.
    n_flats, n_darks : int
        Number of flat and dark frames.
    rng : Generator, int or None
        Random source (seeded for reproducible tests).
    noise : bool
        Draw Poisson counts; False gives the rounded expectation.
    row_scale : ndarray of shape (n_rows,), optional
        Per-row multiplier of the sinogram (default all ones).
    column_gain : ndarray of shape (n_det,), optional
        Detector gain per column applied to projections but *not* to flats, which makes
        ring/stripe artefacts for the stripe filters to remove.

    Returns
    -------
    projections : ndarray of shape (n_angles, n_rows, n_det), uint16
    flats : ndarray of shape (n_flats, n_rows, n_det), uint16
    darks : ndarray of shape (n_darks, n_rows, n_det), uint16
    """
    rng = np.random.default_rng(rng)
    scale = np.ones(n_rows) if row_scale is None else np.asarray(row_scale, dtype=np.float64)
    gain = 1.0 if column_gain is None else np.asarray(column_gain, dtype=np.float64)
    n_det = sinogram.shape[1]
    mean = flat_counts * np.exp(-sinogram[:, None, :] * scale[None, :, None]) * gain
    mean = mean + dark_counts

    def draw(lam: np.ndarray) -> np.ndarray:
        counts = rng.poisson(lam) if noise else np.rint(lam)
        return np.clip(counts, 0, 65535).astype(np.uint16)

    projections = draw(mean)
    flats = draw(np.full((n_flats, n_rows, n_det), flat_counts + dark_counts))
    darks = draw(np.full((n_darks, n_rows, n_det), dark_counts))
    return projections, flats, darks


def write_data_exchange(
    path: str | Path,
    projections: np.ndarray,
    flats: np.ndarray | None,
    darks: np.ndarray | None,
    theta_deg: np.ndarray | None,
    *,
    pixel_size_um: float | None = None,
    chunk_rows: bool = True,
) -> Path:
    """Write a scan in the Data Exchange layout (``/exchange/data``, ``data_white``,
    ``data_dark``, ``theta`` in degrees).

    Any of flats, darks and theta may be None to make deliberately incomplete files.
    """
    import h5py

    path = Path(path)
    with h5py.File(path, "w") as f:
        f.attrs["implements"] = "exchange:measurement"
        ex = f.create_group("exchange")
        chunks = (1, 1, projections.shape[2]) if chunk_rows else None
        ex.create_dataset("data", data=projections, chunks=chunks)
        if flats is not None:
            ex.create_dataset("data_white", data=flats)
        if darks is not None:
            ex.create_dataset("data_dark", data=darks)
        if theta_deg is not None:
            th = ex.create_dataset("theta", data=np.asarray(theta_deg, dtype=np.float64))
            th.attrs["units"] = "degrees"
        if pixel_size_um is not None:
            res = f.create_dataset(
                "measurement/instrument/detection_system/objective/resolution",
                data=float(pixel_size_um),
            )
            res.attrs["units"] = "um"
    return path


def write_nxtomo(
    path: str | Path,
    projections: np.ndarray,
    flats: np.ndarray,
    darks: np.ndarray,
    theta_deg: np.ndarray,
) -> Path:
    """Write a scan as NeXus NXtomo: one frame stack with ``image_key`` (0 projection,
    1 flat, 2 dark) and ``rotation_angle`` in degrees; darks, then flats, then projections."""
    import h5py

    path = Path(path)
    frames = np.concatenate([darks, flats, projections], axis=0)
    key = np.concatenate(
        [np.full(len(darks), 2), np.full(len(flats), 1), np.zeros(len(projections))]
    ).astype(np.int32)
    angle = np.concatenate([np.zeros(len(darks) + len(flats)), np.asarray(theta_deg, float)])
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.create_dataset("definition", data="NXtomo")
        det = entry.create_group("instrument/detector")
        det.attrs["NX_class"] = "NXdetector"
        det.create_dataset("data", data=frames, chunks=(1, 1, frames.shape[2]))
        det.create_dataset("image_key", data=key)
        sample = entry.create_group("sample")
        sample.attrs["NX_class"] = "NXsample"
        ra = sample.create_dataset("rotation_angle", data=angle)
        ra.attrs["units"] = "degree"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data["data"] = det["data"]
        data["rotation_angle"] = ra
        data["image_key"] = det["image_key"]
    return path


def make_scan(
    n_det: int = 128,
    n_angles: int = 180,
    n_rows: int = 8,
    *,
    center: float | None = None,
    asymmetric: bool = True,
    flat_counts: float = 2.0e4,
    noise: bool = True,
    seed: int = 0,
    full_circle: bool = False,
) -> dict[str, np.ndarray]:
    """A complete simulated scan: angles, exact sinogram, truth image and uint16 frames.

    Parameters
    ----------
    n_det : int
        Detector width (the phantom fills ``0.92 n_det``).
    n_angles : int
        Number of angles over ``[0, 180)`` degrees (``[0, 360)`` if ``full_circle``), no endpoint.
    n_rows : int
        Detector rows. Row ``r`` carries the phantom scaled by ``1 - 0.5 (r / n_rows - 0.5)^2``
        so that the volume is not constant along the axis.
    center : float, optional
        Rotation axis in detector pixels; default ``(n_det - 1) / 2``.

    Returns
    -------
    dict
        ``theta_deg`` (n_angles,), ``sinogram`` (n_angles, n_det) line integrals of the
        unscaled phantom, ``truth`` (n_det, n_det) with the axis at the image centre,
        ``row_scale`` (n_rows,), ``ellipses``, ``projections``, ``flats``, ``darks`` (uint16).
    """
    span = 360.0 if full_circle else 180.0
    theta_deg = np.arange(n_angles) * span / n_angles
    ell = asymmetric_ellipses(n_det) if asymmetric else shepp_logan_ellipses(n_det)
    sino = line_integrals(ell, np.deg2rad(theta_deg), n_det, center)
    row_scale = 1.0 - 0.5 * (np.arange(n_rows) / max(n_rows, 1) - 0.5) ** 2
    proj, flats, darks = simulate_counts(
        sino, n_rows, flat_counts=flat_counts, rng=seed, noise=noise, row_scale=row_scale
    )
    return {
        "theta_deg": theta_deg,
        "sinogram": sino,
        "truth": rasterize(ell, n_det),
        "row_scale": row_scale,
        "ellipses": ell,
        "projections": proj,
        "flats": flats,
        "darks": darks,
    }
