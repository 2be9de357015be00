"""Simulated MUSER-I datasets: point sources on the Sun, visibilities by direct sum.

Writes the dataset folder of ``shared/research/muser.md`` section 3.2 (target.bin,
calibrator.bin, antennas.csv, ephemeris.csv, weather.csv, observation.json) with frames
byte-compatible with the real MUSER-I layout. Visibilities follow the hisci convention

    V_ij = g_i conj(g_j) sum_k S_k exp(-2 pi i (u l_k + v m_k + w (n_k - 1))) + noise

with uvw of baseline ``r_j - r_i`` in wavelengths, ``l`` east, ``m`` north. Every
visibility is a direct sum over the sources; nothing is computed on a pixel grid.

The antenna layout is a three-arm spiral built from the published description (one
centre antenna and three arms of 13 antennas, radii 8 m .. 1800 m); it is not the
instrument's surveyed table.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import frames as F
from .geometry import ARCSEC, C_LIGHT, Ephemeris, baseline_vectors, sun_position, uvw_m

SITE = {"lat_deg": 42.21183, "lon_deg": 115.2505, "alt_m": 1365.0}
ARM_RADII_M = (8, 20, 36, 55, 80, 115, 165, 238, 349, 517, 776, 1176, 1800)
BATCH_CADENCE_S = 5.0
FRAME_SPACING_US = 3125
DEFAULT_START = _dt.datetime(2015, 11, 1, 4, 8, 50, tzinfo=_dt.UTC)


@dataclass
class PointSource:
    """A point source on the Sun.

    Attributes
    ----------
    l_arcsec, m_arcsec : float
        Offsets from the Sun centre, east and north, arcsec (direction cosines
        ``l = l_arcsec * pi / 648000``).
    flux : float
        Stokes I flux in calibrator units at 1 GHz.
    circular : float
        Circular polarisation fraction pc: ``S_R = I (1 + pc)``, ``S_L = I (1 - pc)``.
    spectral_index : float
        ``S(f) = flux (f / 1 GHz) ** spectral_index``.
    """

    l_arcsec: float
    m_arcsec: float
    flux: float
    circular: float = 0.0
    spectral_index: float = 0.0

    def lmn(self) -> tuple[float, float, float]:
        """Direction cosines (l, m, n)."""
        l, m = self.l_arcsec * ARCSEC, self.m_arcsec * ARCSEC
        return l, m, float(np.sqrt(1.0 - l * l - m * m))

    def flux_at(self, freq_hz: np.ndarray, polarization: int) -> np.ndarray:
        """Flux in polarisation 0 (L) or 1 (R) at the given frequencies."""
        s = self.flux * (np.asarray(freq_hz) / 1e9) ** self.spectral_index
        return s * (1.0 + self.circular if polarization == 1 else 1.0 - self.circular)


DEFAULT_SOURCES = (
    PointSource(-400.0, 250.0, 40.0, 0.3),
    PointSource(600.0, -350.0, 20.0, -0.2),
    PointSource(150.0, 700.0, 10.0, 0.0),
)


@dataclass
class Truth:
    """What a simulated dataset contains (for tests)."""

    folder: Path
    antennas_enu: np.ndarray
    gains: np.ndarray  # (8 codes, 16 channels, 40 antennas) complex, counts^0.5 per unit
    sources: list[PointSource]
    start: _dt.datetime
    n_batches: int
    dead_antennas: list[int]
    weather_bad_batches: list[int]
    broken: list[tuple[int, int]]
    observation: dict = field(default_factory=dict)


def spiral_antennas(seed: int = 7) -> np.ndarray:
    """Local ENU positions (metres) of a 40-antenna three-arm spiral, shape (40, 3).

    Antenna 0 sits at the centre; arm ``a`` holds antennas ``1 + 13 a .. 13 + 13 a`` at
    the radii of :data:`ARM_RADII_M`; the azimuth advances 18 deg for the first four
    antennas of an arm and 36 deg after; arms are 120 deg apart. Outer antennas sit
    a few metres higher (deterministic from ``seed``), which keeps the array non-coplanar.
    """
    rng = np.random.default_rng(seed)
    pos = [np.zeros(3)]
    steps = [18.0] * 4 + [36.0] * (len(ARM_RADII_M) - 4)
    for arm in range(3):
        az = 90.0 + 120.0 * arm
        for k, r in enumerate(ARM_RADII_M):
            az += steps[k]
            up = rng.uniform(2.0, 10.0) if r > 500 else 0.0
            a = np.deg2rad(az)
            pos.append(np.array([r * np.cos(a), r * np.sin(a), up]))
    return np.array(pos)


def model_visibilities(
    uvw_metres: np.ndarray,
    freqs_hz: np.ndarray,
    sources: list[PointSource],
    polarization: int,
    *,
    w_term: bool = True,
) -> np.ndarray:
    """Sky visibilities by direct sum over point sources.

    Parameters
    ----------
    uvw_metres : ndarray, shape (B, 3)
        Baseline uvw in metres.
    freqs_hz : ndarray, shape (C,)
        Channel frequencies.
    sources : list of PointSource
    polarization : int
        0 (L) or 1 (R).
    w_term : bool
        Include ``w (n - 1)`` in the phase.

    Returns
    -------
    ndarray of complex128, shape (C, B)
    """
    freqs_hz = np.asarray(freqs_hz, dtype=np.float64)
    out = np.zeros((len(freqs_hz), len(uvw_metres)), np.complex128)
    inv_lam = freqs_hz[:, None] / C_LIGHT
    for s in sources:
        l, m, n = s.lmn()
        path = uvw_metres[:, 0] * l + uvw_metres[:, 1] * m
        if w_term:
            path = path + uvw_metres[:, 2] * (n - 1.0)
        out += s.flux_at(freqs_hz, polarization)[:, None] * np.exp(-2j * np.pi * inv_lam * path)
    return out


def random_gains(rng: np.random.Generator, scale: float) -> np.ndarray:
    """Per (code, channel, antenna) complex gains: amplitude ~ sqrt(scale) (1 +- 0.15),
    random phases. Shape (8, 16, 40)."""
    amp = np.sqrt(scale) * (1.0 + 0.15 * rng.standard_normal((F.N_CODES, F.N_CHANNELS, F.N_ANTENNAS)))
    phase = rng.uniform(-np.pi, np.pi, amp.shape)
    return np.clip(amp, 0.3 * np.sqrt(scale), None) * np.exp(1j * phase)


def simulate_dataset(
    folder: str | Path,
    *,
    n_batches: int = 1,
    sources=DEFAULT_SOURCES,
    start: _dt.datetime = DEFAULT_START,
    dead_antennas=(),
    weather_bad_batches=(),
    broken=(),
    noise: float = 0.05,
    system_noise: float = 500.0,
    gain_scale: float = 1000.0,
    calibrator_flux: float = 100.0,
    w_term: bool = True,
    loop_mode: bool = True,
    seed: int = 0,
) -> Truth:
    """Write a simulated MUSER-I dataset folder.

    Parameters
    ----------
    folder : path
        Created if missing; existing dataset files are overwritten.
    n_batches : int
        Number of 5-s batches (8 frames each) in target.bin.
    sources : sequence of PointSource
        The sky on the Sun.
    start : datetime.datetime
        UTC time of the first target frame; the calibrator loop is 60 s earlier.
    dead_antennas : sequence of int
        Antennas with zero autos and zero correlations in every frame.
    weather_bad_batches : sequence of int
        Batches at whose time the weather table reports 20 m/s wind.
    broken : sequence of (batch, code)
        Frames written with a broken sync word.
    noise : float
        Thermal noise rms per visibility (real and imaginary), calibrator units.
    system_noise : float
        System noise power added to the autos, calibrator units.
    gain_scale : float
        Mean ``|g|^2`` in counts per calibrator unit.
    calibrator_flux : float
        Flux of the calibrator (written to observation.json).
    w_term : bool
        Include the w-term in the visibilities (and say so in observation.json).
    loop_mode : bool
        Band encoding of the frames (loop code or fixed sub-band word).
    seed : int
        Seeds gains and noise.

    Returns
    -------
    Truth
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = list(sources)
    enu = spiral_antennas()
    gains = random_gains(rng, gain_scale)
    dead = sorted(int(a) for a in dead_antennas)
    alive = np.ones(F.N_ANTENNAS, bool)
    alive[dead] = False
    g_eff = gains * alive
    bl = baseline_vectors(enu, F.ANT1, F.ANT2)
    cal_time = start - _dt.timedelta(seconds=60)
    end = start + _dt.timedelta(seconds=BATCH_CADENCE_S * n_batches)

    eph_times = _time_grid(cal_time - _dt.timedelta(seconds=30), end + _dt.timedelta(seconds=30))
    eph_rows = [(t, *sun_position(t, SITE["lon_deg"])) for t in eph_times]
    ephem = Ephemeris([r[0] for r in eph_rows], [r[1] for r in eph_rows], [r[2] for r in eph_rows])

    def frame_bytes(t, code, target, sky_fn, counter):
        band, pol = code >> 1, code & 1
        freqs = F.channel_frequencies(band)
        sky, total = sky_fn(t, freqs, pol)
        g = g_eff[code]  # (16, 40)
        gi, gj = g[:, F.ANT1], g[:, F.ANT2]
        vis = gi * np.conj(gj) * sky
        if noise > 0:
            sigma = noise * np.abs(gi) * np.abs(gj)
            vis = vis + sigma * (rng.standard_normal(vis.shape) + 1j * rng.standard_normal(vis.shape))
        autos = np.abs(g) ** 2 * (total[:, None] + system_noise)
        return F.encode_frame(
            t, band, pol, vis, np.rint(autos).astype(np.int64),
            counter=counter, target=target, loop_mode=loop_mode,
        )

    def sun_sky(t, freqs, pol):
        ha, dec = ephem(t)
        uvw = uvw_m(bl, SITE["lat_deg"], ha, dec)
        sky = model_visibilities(uvw, freqs, sources, pol, w_term=w_term)
        total = sum((s.flux_at(freqs, pol) for s in sources), np.zeros(len(freqs)))
        return sky, total

    def cal_sky(t, freqs, pol):
        return (np.full((len(freqs), len(bl)), calibrator_flux, np.complex128),
                np.full(len(freqs), calibrator_flux))

    broken_set = {(int(b), int(c)) for b, c in broken}
    with open(folder / "calibrator.bin", "wb") as fh:
        for code in range(F.N_CODES):
            t = cal_time + _dt.timedelta(microseconds=FRAME_SPACING_US * code)
            fh.write(frame_bytes(t, code, "satellite", cal_sky, code))
    with open(folder / "target.bin", "wb") as fh:
        for k in range(n_batches):
            for code in range(F.N_CODES):
                t = start + _dt.timedelta(seconds=BATCH_CADENCE_S * k,
                                          microseconds=FRAME_SPACING_US * code)
                raw = frame_bytes(t, code, "sun", sun_sky, k * F.N_CODES + code)
                if (k, code) in broken_set:
                    raw = b"\x00" * 32 + raw[32:]
                fh.write(raw)

    with open(folder / "antennas.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["antenna", "east_m", "north_m", "up_m"])
        for a, (e, n, u) in enumerate(enu):
            w.writerow([a, f"{e:.4f}", f"{n:.4f}", f"{u:.4f}"])
    with open(folder / "ephemeris.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["utc", "sun_ha_deg", "sun_dec_deg", "sun_ra_deg"])
        for t, ha, dec, ra in eph_rows:
            w.writerow([_iso(t), f"{ha:.9f}", f"{dec:.9f}", f"{ra:.9f}"])
    bad = {int(b) for b in weather_bad_batches}
    with open(folder / "weather.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["utc", "wind_m_s", "rain_mm_h"])
        for t in eph_times:
            k = round((t - start).total_seconds() / BATCH_CADENCE_S)
            windy = k in bad and abs((t - start).total_seconds() - BATCH_CADENCE_S * k) < 1.0
            w.writerow([_iso(t), "20.0" if windy else "3.0", "0.0"])
    observation = {
        "layout": "hisci-muser-frame",
        "layout_version": F.LAYOUT_VERSION,
        "array": "MUSER-I",
        "site": dict(SITE),
        "frame_size": F.FRAME_SIZE,
        "frames_per_batch": F.N_CODES,
        "batch_cadence_s": BATCH_CADENCE_S,
        "start_utc": _iso(start),
        "calibrator_flux": calibrator_flux,
        "time_zone_hours": 8,
        "weather_limits": {"wind_m_s": 15.0, "rain_mm_h": 0.5},
        "w_term": bool(w_term),
        "files": {
            "target": "target.bin",
            "calibrator": "calibrator.bin",
            "antennas": "antennas.csv",
            "ephemeris": "ephemeris.csv",
            "weather": "weather.csv",
        },
        "simulated": True,
    }
    (folder / "observation.json").write_text(json.dumps(observation, indent=2) + "\n")
    return Truth(folder, enu, gains, sources, start, n_batches, dead, sorted(bad),
                 sorted(broken_set), observation)


def _time_grid(t0: _dt.datetime, t1: _dt.datetime, step_s: float = BATCH_CADENCE_S):
    out, t = [], t0
    while t <= t1:
        out.append(t)
        t = t + _dt.timedelta(seconds=step_s)
    return out


def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
