"""Shared helpers of the N-Hit tests: a slow, literal oracle of the rule and hit builders."""

from __future__ import annotations

import numpy as np

from hisci.builtin_plugins.nhit.hitstream import ED, HIT_DTYPE, MD


def oracle_ranges(times, threshold: int, window_ns: int) -> list[tuple[int, int, int]]:
    """nhit.md 3.2 read literally: O(n^2) window counts, a two-state loop, then merging.

    Returns ``[(start, stop, n_max), ...]``.
    """
    t = sorted(int(x) for x in times)
    counts = [sum(1 for x in t if ti <= x < ti + window_ns) for ti in t]
    ranges, is_open, s, nmax = [], False, 0, 0
    for i, n in enumerate(counts):
        if not is_open and n > threshold:
            is_open, s, nmax = True, i, n
        elif is_open and n < threshold:
            ranges.append([t[s], t[i - 1] + window_ns, nmax])
            is_open = False
        elif is_open:
            nmax = max(nmax, n)
    if is_open:
        ranges.append([t[s], t[-1] + window_ns, nmax])
    merged: list[list[int]] = []
    for r in ranges:
        if merged and r[0] < merged[-1][1]:
            merged[-1][1] = r[1]
            merged[-1][2] = max(merged[-1][2], r[2])
        else:
            merged.append(list(r))
    return [tuple(r) for r in merged]


def oracle_events(hits: np.ndarray, threshold: int, window_ns: int, all_dets: bool = False):
    """Oracle event list: ``[(start, stop, n_max, packed hits sorted by (time, det, channel))]``."""
    dec = hits["time"] if all_dets else hits["time"][hits["det"] == ED]
    out = []
    for start, stop, nmax in oracle_ranges(dec, threshold, window_ns):
        sel = hits[(hits["time"] >= start) & (hits["time"] < stop)]
        sel = sel[np.lexsort((sel["channel"], sel["det"], sel["time"]))]
        out.append((start, stop, nmax, sel))
    return out


def make_hits(times, det=None, channel=None) -> np.ndarray:
    """Hit records from times (ns); det defaults to ED, channel to 0, 1, 2, ..."""
    times = np.asarray(times, np.int64)
    hits = np.zeros(len(times), HIT_DTYPE)
    hits["time"] = times
    hits["det"] = ED if det is None else det
    hits["channel"] = np.arange(len(times)) % 60000 if channel is None else channel
    hits["charge"] = 1.0
    return hits


def random_hits(rng: np.random.Generator, *, n_ed_ch: int = 12, n_md_ch: int = 4,
                span_ns: int = 20_000, rate_per_ch: float = 2e-3, bursts: int = 5,
                burst_size: int = 15, burst_spread: int = 300) -> np.ndarray:
    """Noise plus a few dense bursts, emitted channel by channel (per-channel order only)."""
    parts = []
    for det, n_ch in ((ED, n_ed_ch), (MD, n_md_ch)):
        for ch in range(n_ch):
            k = rng.poisson(rate_per_ch * span_ns)
            parts.append((rng.integers(0, span_ns, k), det, ch))
    for _ in range(bursts):
        t0 = int(rng.integers(0, span_ns))
        for _ in range(burst_size):
            det = ED if rng.random() < 0.8 else MD
            ch = int(rng.integers(0, n_ed_ch if det == ED else n_md_ch))
            parts.append((np.array([t0 + int(rng.integers(0, burst_spread))]), det, ch))
    times = np.concatenate([p[0] for p in parts]).astype(np.int64)
    det = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    ch = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    hits = make_hits(times, det, ch)
    # per channel in time order, channels in random order (like one electronics packet)
    perm = rng.permutation(n_ed_ch + n_md_ch)
    key = perm[hits["channel"] + np.where(hits["det"] == MD, n_ed_ch, 0)]
    return hits[np.lexsort((hits["time"], key))]


def shuffle_channels(hits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Same hits, channel runs in another random order (per-channel order kept)."""
    gid = hits["channel"].astype(np.int64) * 2 + hits["det"]
    perm = rng.permutation(int(gid.max()) + 1)
    return hits[np.lexsort((hits["time"], perm[gid]))]
