"""Synthetic KM2A-like hit streams with injected showers (nhit.md section 5).

The model (all [hisci] choices, see nhit.md 5): ED and MD on sunflower points
over ``1 km^2 x scale``; independent Poisson noise per channel; showers at
``shower_rate_hz x scale`` (showers firing at least 10 EDs) with multiplicity
``R(>M) ~ M^-1.7`` capped at the number of EDs; the ``M`` EDs nearest to a
uniform core fire; each MD inside that footprint fires with probability 0.5;
zenith ``dN ~ sin(theta) cos(theta)`` on 0-60 degrees; arrival time = plane front
+ 0.03 ns/m x r + |N(0, 2 ns)| x (1 + r / 50 m).

Hits are written in 1 ms "electronics packets", channels in random order inside
a packet, each channel's hits in time order: only the per-channel order holds,
as in the real DAQ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .hitstream import ED, HIT_DTYPE, MD, HitStreamWriter

FULL_ED, FULL_MD = 5242, 1171
"""KM2A design channel counts (nhit.md section 1)."""
C_LIGHT = 0.299792458  # m/ns


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of a synthetic stream (times in ns unless named otherwise).

    Parameters
    ----------
    seconds : float
        Stream length, s.
    scale : float
        Array fraction (0 < scale <= 1): channel counts, area and shower rate scale with it.
    seed : int
        Random seed; the same config and seed give the same file.
    shower_rate_hz : float
        Full-array rate of showers firing >= 10 EDs, Hz (scaled by ``scale``).
    ed_noise_hz, md_noise_hz : float
        Noise rate per ED / MD channel, Hz.
    fragment_ns, overlap_ns, packet_ns : int
        Fragment core length, fragment overlap ``O`` and packet length.
    """

    seconds: float = 1.0
    scale: float = 0.1
    seed: int = 0
    shower_rate_hz: float = 6500.0
    ed_noise_hz: float = 2710.0
    md_noise_hz: float = 16850.0
    fragment_ns: int = 10_000_000
    overlap_ns: int = 20_000
    packet_ns: int = 1_000_000
    md_fire_probability: float = 0.5
    min_multiplicity: int = 10
    multiplicity_index: float = 1.7

    def __post_init__(self) -> None:
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")
        if not self.seconds > 0:
            raise ValueError(f"seconds must be > 0, got {self.seconds}")
        if min(self.shower_rate_hz, self.ed_noise_hz, self.md_noise_hz) < 0:
            raise ValueError("shower and noise rates must be >= 0 Hz")
        if self.fragment_ns <= 0 or self.packet_ns <= 0 or self.overlap_ns < 0:
            raise ValueError("fragment_ns and packet_ns must be > 0, overlap_ns >= 0")

    @property
    def n_ed(self) -> int:
        return max(1, round(FULL_ED * self.scale))

    @property
    def n_md(self) -> int:
        return max(1, round(FULL_MD * self.scale))

    @property
    def radius_m(self) -> float:
        """Radius of the array disk, m (area 1 km^2 x scale)."""
        return float(np.sqrt(1e6 * self.scale / np.pi))

    @property
    def stop_ns(self) -> int:
        return round(self.seconds * 1e9)


def sunflower(n: int, radius: float, turn: float = 0.0) -> np.ndarray:
    """``n`` nearly uniform points in a disk of ``radius`` (m); returns shape (n, 2)."""
    k = np.arange(n) + 0.5
    r = radius * np.sqrt(k / n)
    phi = k * np.pi * (3 - np.sqrt(5)) + turn
    return np.column_stack([r * np.cos(phi), r * np.sin(phi)])


@dataclass
class Truth:
    """Injected showers; ED/MD hits of shower ``i`` are ``ed_*[ed_offsets[i]:ed_offsets[i+1]]``."""

    t0: np.ndarray
    core: np.ndarray
    zenith: np.ndarray
    azimuth: np.ndarray
    multiplicity: np.ndarray
    ed_offsets: np.ndarray
    ed_time: np.ndarray
    ed_channel: np.ndarray
    md_offsets: np.ndarray
    md_time: np.ndarray
    md_channel: np.ndarray
    n_ed: int
    n_md: int
    ed_noise_hz: float
    md_noise_hz: float
    start_ns: int
    stop_ns: int

    def save(self, path) -> Path:
        """Write as ``.npz`` (arrays and scalars)."""
        path = Path(path)
        with open(path, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in asdict(self).items()})
        return path

    @classmethod
    def load(cls, path) -> Truth:
        """Read a truth file written by :meth:`save`."""
        with np.load(path) as z:
            missing = [f for f in cls.__dataclass_fields__ if f not in z.files]
            if missing:
                raise ValueError(f"{path}: not an nhit truth file (missing {missing})")
            values = {f: z[f] for f in cls.__dataclass_fields__}
        for f in ("n_ed", "n_md", "start_ns", "stop_ns"):
            values[f] = int(values[f])
        for f in ("ed_noise_hz", "md_noise_hz"):
            values[f] = float(values[f])
        return cls(**values)

    def __len__(self) -> int:
        return len(self.t0)


def simulate_showers(cfg: SimulationConfig, rng: np.random.Generator,
                     ed_xy: np.ndarray, md_xy: np.ndarray) -> Truth:
    """Draw the showers of the whole stream and their ED/MD hits (times in ns)."""
    from scipy.spatial import cKDTree

    stop = cfg.stop_ns
    count = rng.poisson(cfg.shower_rate_hz * cfg.scale * cfg.seconds)
    t0 = np.sort(rng.uniform(0, stop, count))
    mult = np.floor(cfg.min_multiplicity * rng.random(count) ** (-1 / cfg.multiplicity_index))
    mult = np.minimum(mult, cfg.n_ed).astype(np.int64)
    rc = cfg.radius_m * np.sqrt(rng.random(count))
    pc = rng.uniform(0, 2 * np.pi, count)
    core = np.column_stack([rc * np.cos(pc), rc * np.sin(pc)])
    zen = np.arcsin(np.sqrt(rng.random(count) * 0.75))  # dN ~ sin cos on 0-60 deg
    azi = rng.uniform(0, 2 * np.pi, count)
    ed_tree, md_tree = cKDTree(ed_xy), cKDTree(md_xy)
    ed_parts, md_parts = [], []
    for i in range(count):
        dist, idx = ed_tree.query(core[i], k=int(mult[i]))
        idx = np.atleast_1d(idx)
        reach = float(np.max(dist))
        md_idx = np.array(md_tree.query_ball_point(core[i], reach), np.int64)
        md_idx = np.sort(md_idx[rng.random(len(md_idx)) < cfg.md_fire_probability])
        ed_parts.append((idx, _arrival(t0[i], core[i], zen[i], azi[i], ed_xy[idx], rng)))
        md_parts.append((md_idx, _arrival(t0[i], core[i], zen[i], azi[i], md_xy[md_idx], rng)))
    ed_off, ed_ch, ed_t = _csr(ed_parts, stop)
    md_off, md_ch, md_t = _csr(md_parts, stop)
    return Truth(t0.astype(np.int64), core, zen, azi, mult, ed_off, ed_t, ed_ch, md_off, md_t,
                 md_ch, cfg.n_ed, cfg.n_md, cfg.ed_noise_hz, cfg.md_noise_hz, 0, stop)


def _arrival(t0, core, zen, azi, xy, rng) -> np.ndarray:
    axis = np.array([np.sin(zen) * np.cos(azi), np.sin(zen) * np.sin(azi), np.cos(zen)])
    d = np.column_stack([xy - core, np.zeros(len(xy))])
    along = d @ axis
    r = np.linalg.norm(d - along[:, None] * axis, axis=1)
    jitter = np.abs(rng.normal(0, 2.0, len(xy))) * (1 + r / 50.0)
    return np.floor(t0 - along / C_LIGHT + 0.03 * r + jitter).astype(np.int64)


def _csr(parts, stop):
    """Per-shower (channels, times) -> offsets, channels, times; hits outside [0, stop) dropped."""
    counts, chans, times = [0], [], []
    for ch, t in parts:
        keep = (t >= 0) & (t < stop)
        counts.append(int(keep.sum()))
        chans.append(ch[keep])
        times.append(t[keep])
    offsets = np.cumsum(counts).astype(np.int64)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.empty(0, dt))
    return offsets, cat(chans, np.uint16), cat(times, np.int64)


def _fragment_core(cfg: SimulationConfig, rng: np.random.Generator, begin: int, end: int,
                   shower_hits: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """All hits with time in ``[begin, end)``, packet by packet, channels shuffled."""
    n_ch = cfg.n_ed + cfg.n_md
    p_ns = cfg.packet_ns
    n_pk = -(-(end - begin) // p_ns)
    pk_len = np.minimum(begin + p_ns * (np.arange(n_pk) + 1), end) - (begin + p_ns * np.arange(n_pk))
    rate = np.concatenate([np.full(cfg.n_ed, cfg.ed_noise_hz), np.full(cfg.n_md, cfg.md_noise_hz)])
    counts = rng.poisson(np.outer(pk_len * 1e-9, rate))  # (packets, channels)
    n = int(counts.sum())
    pk_of = np.repeat(np.repeat(np.arange(n_pk), n_ch), counts.ravel())
    ch_of = np.repeat(np.tile(np.arange(n_ch), n_pk), counts.ravel())
    offset = (rng.random(n) * pk_len[pk_of]).astype(np.int64)
    s_t, s_ch, s_det = shower_hits
    s_rel = s_t - begin
    s_pk = s_rel // p_ns
    pk_of = np.concatenate([pk_of, s_pk])
    ch_of = np.concatenate([ch_of, s_ch.astype(np.int64) + np.where(s_det == MD, cfg.n_ed, 0)])
    offset = np.concatenate([offset, s_rel - s_pk * p_ns])
    rank = np.argsort(rng.random((n_pk, n_ch)), axis=1)  # channel order inside each packet
    inverse = np.argsort(rank, axis=1)
    key = (pk_of * n_ch + inverse[pk_of, ch_of]) * p_ns + offset
    key.sort()
    pk, rem = np.divmod(key, n_ch * p_ns)
    pos, off = np.divmod(rem, p_ns)
    ch = rank[pk, pos]
    hits = np.empty(len(key), HIT_DTYPE)
    hits["time"] = begin + pk * p_ns + off
    is_md = ch >= cfg.n_ed
    hits["channel"] = np.where(is_md, ch - cfg.n_ed, ch)
    hits["det"] = np.where(is_md, MD, ED)
    hits["flags"] = 0
    hits["charge"] = rng.gamma(2.0, 1.0, len(key)).astype(np.float32)
    return hits


def simulate_stream(path, cfg: SimulationConfig, *, truth_path=None,
                    progress: Callable[[int, int], None] | None = None) -> Truth:
    """Write a synthetic ``.hits`` stream (and optionally its truth file).

    Parameters
    ----------
    path : path-like
        The ``.hits`` file to write.
    cfg : SimulationConfig
    truth_path : path-like, optional
        Where to save the injected showers (``.npz``).
    progress : callable, optional
        ``progress(fragments_done, fragments_total)``.

    Returns
    -------
    Truth
        The injected showers.

    Examples
    --------
    >>> truth = simulate_stream("x.hits", SimulationConfig(seconds=0.01, scale=0.01))  # doctest: +SKIP
    """
    rng = np.random.default_rng(cfg.seed)
    ed_xy = sunflower(cfg.n_ed, cfg.radius_m)
    md_xy = sunflower(cfg.n_md, cfg.radius_m, turn=0.5)
    truth = simulate_showers(cfg, rng, ed_xy, md_xy)
    if truth_path is not None:
        truth.save(truth_path)
    all_t = np.concatenate([truth.ed_time, truth.md_time])
    all_ch = np.concatenate([truth.ed_channel, truth.md_channel])
    all_det = np.concatenate([np.full(len(truth.ed_time), ED, np.uint8),
                              np.full(len(truth.md_time), MD, np.uint8)])
    order = np.argsort(all_t, kind="stable")
    all_t, all_ch, all_det = all_t[order], all_ch[order], all_det[order]
    stop = cfg.stop_ns
    bounds = list(range(0, stop, cfg.fragment_ns)) + [stop]
    writer = HitStreamWriter(path, n_ed=cfg.n_ed, n_md=cfg.n_md, fragment_ns=cfg.fragment_ns,
                             overlap_ns=cfg.overlap_ns, start_ns=0)
    try:
        def core(k):
            lo, hi = np.searchsorted(all_t, [bounds[k], bounds[k + 1]])
            return _fragment_core(cfg, rng, bounds[k], bounds[k + 1],
                                  (all_t[lo:hi], all_ch[lo:hi], all_det[lo:hi]))

        n_frag = len(bounds) - 1
        current = core(0)
        for k in range(n_frag):
            nxt = core(k + 1) if k + 1 < n_frag else None
            if nxt is not None:
                over = nxt[nxt["time"] < bounds[k + 1] + cfg.overlap_ns]
                data = np.concatenate([current, over])
            else:
                data = current
            writer.write_fragment(bounds[k], bounds[k + 1], data)
            current = nxt
            if progress is not None:
                progress(k + 1, n_frag)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return truth
