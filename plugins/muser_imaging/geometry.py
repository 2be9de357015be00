"""Array geometry: baseline uvw for the Sun, ephemeris look-up, beam, cell and image size.

Conventions follow ``shared/research/muser.md`` section 5: baseline (i, j), i < j, is
``r_j - r_i``; u points east, v north, w towards the Sun.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

C_LIGHT = 299_792_458.0
#: longest MUSER-I baseline used for the nominal resolution lambda / B (metres)
NOMINAL_BASELINE_M = 3000.0
#: the Sun (32') plus a margin: the field an image must cover
SUN_FIELD_ARCMIN = 36.0
ARCSEC = np.pi / (180.0 * 3600.0)


def baseline_vectors(enu: np.ndarray, ant1: np.ndarray, ant2: np.ndarray) -> np.ndarray:
    """ENU baseline vectors ``r_j - r_i`` in metres, shape (B, 3)."""
    enu = np.asarray(enu, dtype=np.float64)
    return enu[ant2] - enu[ant1]


def enu_to_xyz(enu: np.ndarray, lat_deg: float) -> np.ndarray:
    """Local ENU (E, N, U) to equatorial (X, Y, Z) components, shape (..., 3), metres.

    ``X = -sin(phi) N + cos(phi) U``, ``Y = E``, ``Z = cos(phi) N + sin(phi) U``.
    """
    phi = np.deg2rad(lat_deg)
    e, n, u = np.moveaxis(np.asarray(enu, dtype=np.float64), -1, 0)
    return np.stack(
        [-np.sin(phi) * n + np.cos(phi) * u, e, np.cos(phi) * n + np.sin(phi) * u], axis=-1
    )


def uvw_m(baselines_enu: np.ndarray, lat_deg: float, ha_deg: float, dec_deg: float) -> np.ndarray:
    """Baseline uvw in metres towards a source at hour angle ``ha_deg``, declination ``dec_deg``.

    Parameters
    ----------
    baselines_enu : ndarray, shape (B, 3)
        Baselines in local ENU metres.
    lat_deg : float
        Site latitude, degrees.
    ha_deg, dec_deg : float
        Hour angle and declination of the phase centre, degrees.

    Returns
    -------
    ndarray, shape (B, 3)
        (u, v, w) in metres; divide by the wavelength for wavelengths.
    """
    x, y, z = np.moveaxis(enu_to_xyz(baselines_enu, lat_deg), -1, 0)
    h, d = np.deg2rad(ha_deg), np.deg2rad(dec_deg)
    u = np.sin(h) * x + np.cos(h) * y
    v = -np.sin(d) * np.cos(h) * x + np.sin(d) * np.sin(h) * y + np.cos(d) * z
    w = np.cos(d) * np.cos(h) * x - np.cos(d) * np.sin(h) * y + np.sin(d) * z
    return np.stack([u, v, w], axis=-1)


class Ephemeris:
    """Sun hour angle and declination interpolated linearly in time.

    Parameters
    ----------
    times : sequence of datetime.datetime
        UTC sample times, increasing.
    ha_deg, dec_deg : array_like
        Hour angle and declination at those times, degrees.
    """

    def __init__(self, times, ha_deg, dec_deg, ra_deg=None):
        self.t = np.array([_posix(t) for t in times], dtype=np.float64)
        if len(self.t) < 1 or np.any(np.diff(self.t) <= 0):
            raise ValueError("ephemeris times must be increasing and non-empty")
        # unwrap the hour angle so that interpolation across +-180 deg is linear
        self.ha = np.rad2deg(np.unwrap(np.deg2rad(np.asarray(ha_deg, dtype=np.float64))))
        self.dec = np.asarray(dec_deg, dtype=np.float64)
        self.ra = None if ra_deg is None else np.rad2deg(
            np.unwrap(np.deg2rad(np.asarray(ra_deg, dtype=np.float64))))

    def ra_at(self, time: _dt.datetime) -> float | None:
        """Sun right ascension in degrees at ``time`` (None when the table has none)."""
        if self.ra is None:
            return None
        return float(np.interp(_posix(time), self.t, self.ra) % 360.0)

    def __call__(self, time: _dt.datetime) -> tuple[float, float]:
        """(hour angle, declination) in degrees at ``time``; raises outside the table."""
        t = _posix(time)
        slack = 10.0
        if t < self.t[0] - slack or t > self.t[-1] + slack:
            raise ValueError(
                f"time {time.isoformat()} is outside ephemeris.csv "
                f"({_dt.datetime.fromtimestamp(self.t[0], _dt.UTC).isoformat()} .. "
                f"{_dt.datetime.fromtimestamp(self.t[-1], _dt.UTC).isoformat()})"
            )
        if len(self.t) == 1:
            return float(self.ha[0]), float(self.dec[0])
        ha = np.interp(t, self.t, self.ha, left=np.nan, right=np.nan)
        dec = np.interp(t, self.t, self.dec, left=np.nan, right=np.nan)
        if np.isnan(ha):  # within the slack: extrapolate from the end segment
            i = 0 if t < self.t[0] else len(self.t) - 2
            f = (t - self.t[i]) / (self.t[i + 1] - self.t[i])
            ha = self.ha[i] + f * (self.ha[i + 1] - self.ha[i])
            dec = self.dec[i] + f * (self.dec[i + 1] - self.dec[i])
        return float(ha), float(dec)


def _posix(t: _dt.datetime) -> float:
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return t.timestamp()


def sun_position(time: _dt.datetime, lon_deg: float) -> tuple[float, float, float]:
    """Approximate apparent Sun (hour angle, declination, right ascension), degrees.

    Low-precision formulae of the Astronomical Almanac (about 0.01 deg, enough for
    simulated data; the real instrument needs a JPL ephemeris).

    Parameters
    ----------
    time : datetime.datetime
        UTC time.
    lon_deg : float
        Site east longitude, degrees.
    """
    jd = _posix(time) / 86400.0 + 2440587.5
    n = jd - 2451545.0
    mean_lon = (280.460 + 0.9856474 * n) % 360.0
    g = np.deg2rad((357.528 + 0.9856003 * n) % 360.0)
    ecl_lon = np.deg2rad(mean_lon + 1.915 * np.sin(g) + 0.020 * np.sin(2 * g))
    eps = np.deg2rad(23.439 - 0.0000004 * n)
    ra = np.rad2deg(np.arctan2(np.cos(eps) * np.sin(ecl_lon), np.cos(ecl_lon))) % 360.0
    dec = np.rad2deg(np.arcsin(np.sin(eps) * np.sin(ecl_lon)))
    gmst = (280.46061837 + 360.98564736629 * n) % 360.0
    ha = (gmst + lon_deg - ra + 180.0) % 360.0 - 180.0
    return float(ha), float(dec), float(ra)


def beam_arcsec(freq_hz: np.ndarray | float) -> np.ndarray:
    """Nominal resolution ``lambda / 3000 m`` in arcsec (51.6" at 400 MHz)."""
    return C_LIGHT / np.asarray(freq_hz, dtype=np.float64) / NOMINAL_BASELINE_M / ARCSEC


def auto_cell_arcsec(freq_hz: np.ndarray | float) -> np.ndarray:
    """Cell of the real pipeline: one third of the nominal beam, arcsec."""
    return beam_arcsec(freq_hz) / 3.0


def auto_image_size(cell_arcsec: np.ndarray, sizes=(256, 512, 1024, 2048)) -> int:
    """Smallest size in ``sizes`` whose field covers the Sun for every cell given."""
    need = SUN_FIELD_ARCMIN * 60.0 / np.min(np.asarray(cell_arcsec, dtype=np.float64))
    for n in sizes:
        if n >= need:
            return int(n)
    return int(sizes[-1])
