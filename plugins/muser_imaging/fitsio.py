"""FITS images and random-groups UVFITS of calibrated visibilities (astropy.io.fits).

Image WCS: equatorial SIN projection centred on the Sun (``RA---SIN``/``DEC--SIN``,
``CDELT1 = -cell``, ``CDELT2 = +cell``, ``CRPIX = N/2 + 1``), which is exact for the
direction cosines (l, m) of the imager; an alternate WCS ``A`` gives the offsets from
the Sun centre in arcsec (east, north), the helioprojective-like frame of the plugin.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np

from .geometry import C_LIGHT


def image_hdu(
    image: np.ndarray,
    *,
    cell_arcsec: float,
    freq_hz: float,
    time: _dt.datetime,
    sun_ra_deg: float | None,
    sun_dec_deg: float,
    polarization: str,
    beam: tuple[float, float, float] | None = None,
    bunit: str = "CAL/BEAM",
    name: str | None = None,
):
    """One image HDU with its WCS.

    Parameters
    ----------
    image : ndarray, shape (N, N)
        ``img[iy, ix]`` (east left, north up).
    cell_arcsec : float
    freq_hz : float
    time : datetime.datetime
        Observation time (UTC).
    sun_ra_deg, sun_dec_deg : float
        Apparent Sun centre (the phase centre); RA may be None (then CRVAL1 = 0).
    polarization : {"L", "R", "I"}
    beam : (bmaj_arcsec, bmin_arcsec, bpa_deg), optional
        Restoring beam (BMAJ/BMIN/BPA written in degrees).
    """
    from astropy.io import fits

    n = image.shape[0]
    hdu = fits.ImageHDU(np.asarray(image, np.float32), name=name)
    h = hdu.header
    cell_deg = cell_arcsec / 3600.0
    stokes = {"I": 1, "R": -1, "L": -2}[polarization]
    cards = [
        ("CTYPE1", "RA---SIN", "east offsets in l (left)"),
        ("CUNIT1", "deg", ""),
        ("CRPIX1", n / 2 + 1, "Sun centre (phase centre)"),
        ("CRVAL1", 0.0 if sun_ra_deg is None else float(sun_ra_deg), "Sun RA"),
        ("CDELT1", -cell_deg, ""),
        ("CTYPE2", "DEC--SIN", ""),
        ("CUNIT2", "deg", ""),
        ("CRPIX2", n / 2 + 1, ""),
        ("CRVAL2", float(sun_dec_deg), "Sun declination"),
        ("CDELT2", cell_deg, ""),
        ("WCSNAMEA", "SUN-OFFSET", "offsets from the Sun centre"),
        ("CTYPE1A", "SOLAR-EX", "offset east of Sun centre"),
        ("CUNIT1A", "arcsec", ""),
        ("CRPIX1A", n / 2 + 1, ""),
        ("CRVAL1A", 0.0, ""),
        ("CDELT1A", -cell_arcsec, ""),
        ("CTYPE2A", "SOLAR-NY", "offset north of Sun centre"),
        ("CUNIT2A", "arcsec", ""),
        ("CRPIX2A", n / 2 + 1, ""),
        ("CRVAL2A", 0.0, ""),
        ("CDELT2A", cell_arcsec, ""),
        ("RESTFRQ", float(freq_hz), "Hz"),
        ("FREQ", float(freq_hz), "channel centre, Hz"),
        ("STOKES", stokes, "AIPS code (I=1, RR=-1, LL=-2)"),
        ("POLAR", polarization, ""),
        ("DATE-OBS", time.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"), "UTC"),
        ("TIMESYS", "UTC", ""),
        ("RADESYS", "GCRS", "apparent place"),
        ("BUNIT", bunit, "calibrator flux units"),
        ("TELESCOP", "MUSER-I", ""),
        ("OBJECT", "Sun", ""),
    ]
    if beam is not None:
        cards += [
            ("BMAJ", beam[0] / 3600.0, "deg"),
            ("BMIN", beam[1] / 3600.0, "deg"),
            ("BPA", beam[2], "deg, north through east"),
        ]
    for key, value, comment in cards:
        h[key] = (value, comment)
    return hdu


def write_image_fits(path: str | Path, hdus: list) -> Path:
    """Write image HDUs (after an empty primary) to ``path``."""
    from astropy.io import fits

    path = Path(path)
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(path, overwrite=True)
    return path


def write_uvfits(
    path: str | Path,
    *,
    uvw_metres: np.ndarray,
    ant1: np.ndarray,
    ant2: np.ndarray,
    vis: np.ndarray,
    weights: np.ndarray,
    freq0_hz: float,
    dfreq_hz: float,
    time: _dt.datetime,
    sun_ra_deg: float | None,
    sun_dec_deg: float,
) -> Path:
    """Random-groups UVFITS of one snapshot (one group per baseline).

    Parameters
    ----------
    uvw_metres : ndarray, shape (B, 3)
    ant1, ant2 : ndarray of int, shape (B,)
        0-based antennas; BASELINE = 256 (a1 + 1) + (a2 + 1).
    vis : ndarray of complex, shape (B, C, 2)
        Calibrated visibilities per channel and Stokes (LL, RR).
    weights : ndarray, shape (B, C, 2)
    freq0_hz, dfreq_hz : float
        First channel centre and channel spacing.
    """
    from astropy.io import fits
    from astropy.time import Time

    b, c, s = vis.shape
    data = np.zeros((b, 1, 1, c, s, 3), np.float32)
    data[..., 0] = vis.real.reshape(b, 1, 1, c, s)
    data[..., 1] = vis.imag.reshape(b, 1, 1, c, s)
    data[..., 2] = weights.reshape(b, 1, 1, c, s)
    jd = Time(time.astimezone(_dt.UTC).replace(tzinfo=None), scale="utc").jd
    jd1 = np.floor(jd - 0.5) + 0.5
    sec = uvw_metres / C_LIGHT
    params = [sec[:, 0], sec[:, 1], sec[:, 2], np.full(b, jd1), np.full(b, jd - jd1),
              256.0 * (np.asarray(ant1) + 1) + (np.asarray(ant2) + 1)]
    gd = fits.GroupData(data, parnames=["UU", "VV", "WW", "DATE", "DATE", "BASELINE"],
                        pardata=params, bitpix=-32)
    hdu = fits.GroupsHDU(gd)
    h = hdu.header
    axes = [("COMPLEX", 1.0, 1.0, 1.0), ("STOKES", -2.0, -1.0, 1.0),
            ("FREQ", freq0_hz, dfreq_hz, 1.0),
            ("RA", 0.0 if sun_ra_deg is None else sun_ra_deg, 1.0, 1.0),
            ("DEC", sun_dec_deg, 1.0, 1.0)]
    for i, (name, crval, cdelt, crpix) in enumerate(axes, start=2):
        h[f"CTYPE{i}"] = name
        h[f"CRVAL{i}"] = crval
        h[f"CDELT{i}"] = cdelt
        h[f"CRPIX{i}"] = crpix
    h["OBJECT"] = "Sun"
    h["TELESCOP"] = "MUSER-I"
    h["DATE-OBS"] = time.astimezone(_dt.UTC).strftime("%Y-%m-%d")
    h["BUNIT"] = "CAL"
    h["EPOCH"] = 2000.0
    path = Path(path)
    hdu.writeto(path, overwrite=True)
    return path


def write_batch_fits(folder: Path, result: Any) -> list[Path]:
    """``dirty_<pol>.fits`` and ``clean_<pol>.fits`` of one imaged batch (one HDU per channel).

    Parameters
    ----------
    folder : the batch's output folder.
    result : a :class:`~.pipeline.BatchResult` with images.
    """
    from .dataset import parse_utc

    s = result.summary
    eph = next(iter(s["ephemeris"].values()))
    written = []
    for kind, cube in (("dirty", result.dirty), ("clean", result.restored)):
        if cube is None:
            continue
        for pi, pol in enumerate(s["polarizations"]):
            hdus = []
            for ci, ch in enumerate(s["channels"]):
                if np.isnan(cube[pi, ci]).all():
                    continue
                e = s["ephemeris"].get(str(ch // 16), eph)
                beam = s["beam"][ci]
                hdus.append(image_hdu(
                    cube[pi, ci], cell_arcsec=s["cell_arcsec"][ci], freq_hz=s["freq_hz"][ci],
                    time=parse_utc(e["utc"]), sun_ra_deg=e["sun_ra_deg"],
                    sun_dec_deg=e["sun_dec_deg"], polarization=pol,
                    beam=(beam["bmaj_arcsec"], beam["bmin_arcsec"], beam["bpa_deg"])
                    if beam and kind == "clean" else None,
                    name=f"CH{ch:02d}"))
            if hdus:
                written.append(write_image_fits(Path(folder) / f"{kind}_{pol}.fits", hdus))
    return written


def write_batch_uvfits(folder: Path, result: Any) -> Path:
    """``vis.uvfits``: the batch's calibrated visibilities, all 64 channels, LL and RR."""
    from . import frames as F
    from .dataset import parse_utc

    vis = np.zeros((F.N_BASELINES, 64, 2), np.complex64)
    wgt = np.zeros((F.N_BASELINES, 64, 2), np.float32)
    uvw0 = None
    for b, (uvw, v, valid) in sorted(result.calibrated.items()):
        uvw0 = uvw if uvw0 is None else uvw0
        for p in (0, 1):
            ok = ~np.isnan(v[p]).any(axis=1)
            vis[:, 16 * b:16 * b + 16, p] = np.nan_to_num(v[p]).T
            wgt[:, 16 * b:16 * b + 16, p] = (valid[:, None] & ok[None, :])
    e = next(iter(result.summary["ephemeris"].values()))
    return write_uvfits(Path(folder) / "vis.uvfits", uvw_metres=uvw0, ant1=F.ANT1, ant2=F.ANT2, vis=vis,
                        weights=wgt, freq0_hz=F.all_frequencies()[0], dfreq_hz=25e6,
                        time=parse_utc(e["utc"]), sun_ra_deg=e["sun_ra_deg"], sun_dec_deg=e["sun_dec_deg"])
