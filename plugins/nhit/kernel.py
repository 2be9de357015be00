"""The N-Hit sliding-window state machine (nhit.md section 3.2) and event packing.

Two implementations of one rule, tested against each other and against a
two-pointer oracle:

- :func:`scan_windows` : a numba-compiled single pass (the production kernel);
- :func:`scan_windows_numpy` : the vectorised numpy form (``searchsorted``,
  forward-filled decisions, edge detection, range merging).

The rule, for time-ordered decision hits ``t_0 <= t_1 <= ...`` (ns), threshold
``N`` and window ``Tw`` (ns):

- ``n_i`` = number of hits with time in ``[t_i, t_i + Tw)``; ties count alike;
- idle and ``n_i > N`` opens an event at ``s = i``; open and ``n_i < N`` closes it
  with last open index ``e = i - 1``; ``n_i == N`` keeps the state; open at the end
  of the data closes at the last index;
- the event range is ``[t_s, t_e + Tw)``; overlapping ranges merge, touching
  ranges stay separate.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

try:  # numba is the fast path; the numpy form below is the fallback
    from numba import njit
except ImportError:  # pragma: no cover - numba is a declared requirement
    njit = None
else:
    # numba's on-disk cache pickles the module name: cache only under the package's
    # canonical name, so an import under another name (e.g. a doctest collector's
    # "plugins.nhit_trigger.kernel") neither reads nor writes incompatible entries
    _jit = njit(cache=__name__.startswith("hisci."), nogil=True)

NO_TIME = np.iinfo(np.int64).max
"""Sentinel time: "no such hit" (no closing hit, no sync hit)."""


class Ranges(NamedTuple):
    """Trigger ranges found by a window scan (all times int64 ns).

    Attributes
    ----------
    start : ndarray of shape (E,)
        ``t_s``, time of the first decision hit of each event (the event time).
    stop : ndarray of shape (E,)
        Exclusive end of each range, ``t_e + Tw``.
    n_max : ndarray of shape (E,)
        Largest window count ``n_i`` seen while the event was open.
    close : ndarray of shape (E,)
        Time of the hit whose ``n_i < N`` closed the event; :data:`NO_TIME` when
        the event was still open at the end of the data.
    sync : int
        Time of the first hit with ``n_i < N`` (the state machine cannot remember
        anything before it); :data:`NO_TIME` if there is none.
    """

    start: np.ndarray
    stop: np.ndarray
    n_max: np.ndarray
    close: np.ndarray
    sync: int

    def __len__(self) -> int:  # number of events
        return len(self.start)

    def select(self, mask: np.ndarray) -> Ranges:
        """The ranges where ``mask`` is true (``sync`` kept)."""
        return Ranges(self.start[mask], self.stop[mask], self.n_max[mask], self.close[mask],
                      self.sync)


def _check_rule(threshold: int, window_ns: int) -> None:
    if int(threshold) != threshold or threshold <= 0:
        raise ValueError(f"threshold N must be an integer > 0, got {threshold!r}")
    if int(window_ns) != window_ns or window_ns <= 0:
        raise ValueError(f"window_ns (Tw) must be an integer number of ns > 0, got {window_ns!r}")


def window_counts(t: np.ndarray, window_ns: int) -> np.ndarray:
    """``n_i``: hits with time in ``[t_i, t_i + Tw)`` for sorted times ``t`` (ns).

    Returns
    -------
    ndarray of int64, shape (len(t),)
    """
    t = np.asarray(t, np.int64)
    return np.searchsorted(t, t + window_ns, "left") - np.searchsorted(t, t, "left")


def scan_windows_numpy(t: np.ndarray, threshold: int, window_ns: int) -> Ranges:
    """Vectorised window state machine over sorted decision times.

    Parameters
    ----------
    t : ndarray of int64, shape (n,)
        Decision-hit times in ns, sorted ascending.
    threshold : int
        ``N`` (> 0): open when ``n_i > N``, close when ``n_i < N``.
    window_ns : int
        ``Tw`` in ns (> 0).

    Returns
    -------
    Ranges
    """
    _check_rule(threshold, window_ns)
    t = np.asarray(t, np.int64)
    if len(t) == 0:
        empty = np.empty(0, np.int64)
        return Ranges(empty, empty, empty, empty, int(NO_TIME))
    n = window_counts(t, window_ns)
    decision = np.where(n > threshold, 1, np.where(n < threshold, 0, -1))
    last = np.maximum.accumulate(np.where(decision >= 0, np.arange(len(t)), -1))
    state = np.where(last >= 0, decision[np.maximum(last, 0)], 0).astype(np.int8)
    edge = np.diff(state, prepend=np.int8(0), append=np.int8(0))
    s = np.flatnonzero(edge == 1)  # first open index
    c = np.flatnonzero(edge == -1)  # first index after the open run (may be len(t))
    e = c - 1
    below = np.flatnonzero(n < threshold)
    sync = int(t[below[0]]) if len(below) else int(NO_TIME)
    if len(s) == 0:
        empty = np.empty(0, np.int64)
        return Ranges(empty, empty, empty, empty, sync)
    start, stop = t[s], t[e] + window_ns
    # between ranges every n_i <= N < n_max, so reducing up to the next start is exact
    n_max = np.maximum.reduceat(n, s)
    close = np.where(c < len(t), t[np.minimum(c, len(t) - 1)], NO_TIME)
    # merge: a range opens a new group unless it starts before the previous stop
    new = np.ones(len(s), bool)
    new[1:] = start[1:] >= stop[:-1]
    group = np.flatnonzero(new)
    last_in = np.append(group[1:], len(s)) - 1
    return Ranges(start[group], stop[last_in], np.maximum.reduceat(n_max, group),
                  close[last_in], sync)


if njit is not None:

    @_jit
    def _grow(a, m):
        b = np.empty(2 * len(a), a.dtype)
        b[:m] = a[:m]
        return b

    @_jit
    def _push(st, sp, nm, cl, m, start, stop, n_max, close):
        """Append one closed range (start, stop, n_max, close), growing the buffers."""
        if m == len(st):
            st, sp, nm, cl = _grow(st, m), _grow(sp, m), _grow(nm, m), _grow(cl, m)
        st[m], sp[m], nm[m], cl[m] = start, stop, n_max, close
        return st, sp, nm, cl, m + 1

    @_jit
    def _open(st, sp, nm, m, ti, c):
        """Open an event at ``ti`` with ``c`` hits; an event starting before the previous
        range's stop reopens (merges into) that range. Returns (m, start, n_max)."""
        if m > 0 and ti < sp[m - 1]:
            return m - 1, st[m - 1], max(nm[m - 1], c)
        return m, ti, c

    @_jit
    def _scan_kernel(t, threshold, window_ns):
        n = t.shape[0]
        cap = 64
        st = np.empty(cap, np.int64)
        sp = np.empty(cap, np.int64)
        nm = np.empty(cap, np.int64)
        cl = np.empty(cap, np.int64)
        big = np.iinfo(np.int64).max
        m = 0
        state = False
        s_t = 0
        nmax = 0
        sync = big
        j = 0
        lo = 0
        for i in range(n):
            ti = t[i]
            if i == 0 or ti != t[i - 1]:
                lo = i
            lim = ti + window_ns
            while j < n and t[j] < lim:
                j += 1
            c = j - lo
            if c < threshold and sync == big:
                sync = ti
            if not state:
                if c > threshold:
                    state = True
                    m, s_t, nmax = _open(st, sp, nm, m, ti, c)
            elif c < threshold:
                st, sp, nm, cl, m = _push(st, sp, nm, cl, m, s_t, t[i - 1] + window_ns, nmax, ti)
                state = False
            elif c > nmax:
                nmax = c
        if state:
            st, sp, nm, cl, m = _push(st, sp, nm, cl, m, s_t, t[n - 1] + window_ns, nmax, big)
        return st[:m].copy(), sp[:m].copy(), nm[:m].copy(), cl[:m].copy(), sync

    @_jit
    def _gather_kernel(time, det, all_dets, out):
        m = 0
        for i in range(time.shape[0]):
            if all_dets or det[i] == 0:
                out[m] = time[i]
                m += 1
        return m

    @_jit
    def _select_kernel(time, start, stop, out):
        m = 0
        k_max = start.shape[0]
        if k_max == 0:
            return 0
        lo_t = start[0]
        hi_t = stop[k_max - 1]
        for i in range(time.shape[0]):
            x = time[i]
            if x < lo_t or x >= hi_t:
                continue
            lo = 0
            hi = k_max  # find the last start <= x
            while hi - lo > 1:
                mid = (lo + hi) >> 1
                if start[mid] <= x:
                    lo = mid
                else:
                    hi = mid
            if x < stop[lo]:
                out[m] = i
                m += 1
        return m


    @_jit
    def _minmax_kernel(time, det, all_dets):
        lo = np.iinfo(np.int64).max
        hi = np.iinfo(np.int64).min
        n = 0
        for i in range(time.shape[0]):
            if all_dets or det[i] == 0:
                x = time[i]
                n += 1
                lo = min(lo, x)
                hi = max(hi, x)
        return lo, hi, n

    @_jit
    def _sort_segment(a, lo, hi):
        if hi - lo > 32:
            a[lo:hi] = np.sort(a[lo:hi])
            return
        for i in range(lo + 1, hi):  # insertion sort: segments are short
            x = a[i]
            k = i - 1
            while k >= lo and a[k] > x:
                a[k + 1] = a[k]
                k -= 1
            a[k + 1] = x

    @_jit
    def _bucket_kernel(time, det, all_dets, t0, shift, nb, span, threshold, window_ns,
                       counts, bmin, start, cursor, flag, actives, srt):
        big = np.iinfo(np.int64).max
        # 1. hits per bucket and the earliest hit of each bucket
        counts[: nb + span] = 0
        bmin[:nb] = big
        for i in range(time.shape[0]):
            if all_dets or det[i] == 0:
                x = time[i]
                b = (x - t0) >> shift
                counts[b] += 1
                bmin[b] = min(bmin[b], x)
        # 2. a bucket is active when its hits may see n >= N (the window of a hit in
        #    bucket b lies inside buckets b .. b + span - 1); needed = active or within
        #    span - 1 buckets after an active one (their hits enter the exact counts)
        wsum = 0
        for b in range(span):
            wsum += counts[b]
        last_active = -span - 1
        pos = 0
        n_act = 0
        sync = big  # earliest hit of an inactive bucket: its n < N
        for b in range(nb):
            if counts[b] > 0 and wsum >= threshold:
                flag[b] = 2
                last_active = b
                actives[n_act] = b
                n_act += 1
            else:
                if counts[b] > 0 and sync == big:
                    sync = bmin[b]
                flag[b] = 1 if b - last_active < span else 0
            start[b] = pos
            cursor[b] = pos
            if flag[b] != 0:
                pos += counts[b]
            wsum += counts[b + span] - counts[b]
        start[nb] = pos
        # 3. gather the needed hits bucket by bucket, then sort inside each bucket:
        #    srt[:pos] is then the time-ordered list of every needed hit
        for i in range(time.shape[0]):
            if all_dets or det[i] == 0:
                x = time[i]
                b = (x - t0) >> shift
                if flag[b] != 0:
                    srt[cursor[b]] = x
                    cursor[b] += 1
        for b in range(nb):
            if flag[b] != 0 and counts[b] > 1:
                _sort_segment(srt, start[b], start[b] + counts[b])
        # 4. the state machine of scan_windows over the active buckets only: every hit
        #    of an inactive bucket has n < N, so an open event closes at the earliest
        #    hit of the first non-empty inactive bucket after it
        cap = 64
        st = np.empty(cap, np.int64)
        sp = np.empty(cap, np.int64)
        nm = np.empty(cap, np.int64)
        cl = np.empty(cap, np.int64)
        m = 0
        state = False
        s_t = 0
        nmax = 0
        prev_t = 0
        j = 0
        lo = 0
        for a in range(n_act):
            b = actives[a]
            seg0 = start[b]
            j = max(j, seg0)
            for i in range(seg0, seg0 + counts[b]):
                ti = srt[i]
                if i == seg0 or ti != srt[i - 1]:
                    lo = i
                lim = ti + window_ns
                while j < pos and srt[j] < lim:
                    j += 1
                c = j - lo
                if c < threshold and ti < sync:
                    sync = ti
                if not state:
                    if c > threshold:
                        state = True
                        m, s_t, nmax = _open(st, sp, nm, m, ti, c)
                elif c < threshold:
                    st, sp, nm, cl, m = _push(st, sp, nm, cl, m, s_t, prev_t + window_ns, nmax, ti)
                    state = False
                elif c > nmax:
                    nmax = c
                prev_t = ti
            if state:
                nxt = b + 1  # next non-empty bucket
                while nxt < nb and counts[nxt] == 0:
                    nxt += 1
                if nxt < nb and flag[nxt] != 2:
                    st, sp, nm, cl, m = _push(st, sp, nm, cl, m, s_t, prev_t + window_ns, nmax, bmin[nxt])
                    state = False
        if state:
            st, sp, nm, cl, m = _push(st, sp, nm, cl, m, s_t, prev_t + window_ns, nmax, big)
        return st[:m].copy(), sp[:m].copy(), nm[:m].copy(), cl[:m].copy(), sync

    @_jit
    def _select_bucket_kernel(time, t0, shift, nbp, start, stop, rmap, out):
        rmap[:nbp] = -1
        for k in range(start.shape[0]):
            for b in range((start[k] - t0) >> shift, ((stop[k] - 1 - t0) >> shift) + 1):
                rmap[b] = k if rmap[b] == -1 else -2
        m = 0
        for i in range(time.shape[0]):
            x = time[i]
            if x < t0:
                continue
            b = (x - t0) >> shift
            if b >= nbp:
                continue
            k = rmap[b]
            if k == -1:
                continue
            if k == -2:  # two ranges share this bucket: binary search
                lo = 0
                hi = start.shape[0]
                while hi - lo > 1:
                    mid = (lo + hi) >> 1
                    if start[mid] <= x:
                        lo = mid
                    else:
                        hi = mid
                k = lo
            if start[k] <= x < stop[k]:
                out[m] = i
                m += 1
        return m


class BucketGrid(NamedTuple):
    """Time buckets of width ``2**shift`` ns from ``t0``, used by the bucketed kernels."""

    t0: int
    shift: int


def bucket_shift(window_ns: int) -> int:
    """``log2`` of the bucket width: the largest power of two <= ``Tw / 2`` (at least 1 ns)."""
    return max(0, (int(window_ns) // 2).bit_length() - 1)


def scan_hits(hits: np.ndarray, threshold: int, window_ns: int, all_dets: bool = False,
              buffers=None) -> tuple[Ranges, BucketGrid | None]:
    """The window state machine straight from unsorted hit records (the production path).

    Equivalent to sorting the decision times and calling :func:`scan_windows`, but
    only the hits that can take part in a window with ``n >= N`` are sorted.

    Parameters
    ----------
    hits : ndarray of HIT_DTYPE, shape (n,)
        Hits in any order across channels.
    threshold, window_ns : int
        ``N`` and ``Tw`` (ns).
    all_dets : bool
        False: only ED hits (det 0) decide; True: every hit decides.
    buffers : callable, optional
        ``buffers(name, size, dtype) -> ndarray`` returning reusable scratch arrays
        (e.g. ``BufferPool.get``); fresh arrays are allocated when omitted.

    Returns
    -------
    ranges : Ranges
    grid : BucketGrid or None
        The bucket grid used (pass it to :func:`select_hits`); None when there
        were no decision hits or the sparse fallback (plain sort) was taken.

    Notes
    -----
    Time is cut into buckets of width ``W = 2**k <= Tw / 2``. The window of a hit
    in bucket ``b`` lies inside buckets ``b .. b + s - 1`` with
    ``s = ceil(Tw / W) + 1``, so when those buckets hold fewer than ``N`` hits in
    total every hit of bucket ``b`` has ``n_i < N`` and is decided without
    sorting. Only the remaining ("active") buckets and their ``s - 1`` successors
    are gathered, sorted bucket by bucket and counted exactly. On KM2A-like data
    (``N = 20``, ``Tw = 400`` ns) that is a few per cent of the hits.
    """
    _check_rule(threshold, window_ns)
    get = buffers or (lambda name, size, dtype=np.int64: np.empty(size, dtype))
    if njit is None:  # pragma: no cover
        t = np.sort(gather_times(hits, all_dets))
        return scan_windows_numpy(t, threshold, window_ns), None
    time, det = hits["time"], hits["det"]
    lo, hi, n_dec = _minmax_kernel(time, det, bool(all_dets))
    if n_dec == 0:
        empty = np.empty(0, np.int64)
        return Ranges(empty, empty, empty, empty, int(NO_TIME)), None
    shift = bucket_shift(window_ns)
    nb = int((hi - lo) >> shift) + 1
    if nb > 8 * n_dec + 4096:  # very sparse data: a plain sort is cheaper
        t = gather_times(hits, all_dets, get("times", len(hits), np.int64))
        t.sort()
        return scan_windows(t, threshold, window_ns), None
    span = -(-int(window_ns) // (1 << shift)) + 1
    st, sp, nm, cl, sync = _bucket_kernel(
        time, det, bool(all_dets), lo, shift, nb, span, int(threshold), int(window_ns),
        get("counts", nb + span, np.int64), get("bmin", nb, np.int64),
        get("start", nb + 1, np.int64), get("cursor", nb, np.int64),
        get("flag", nb, np.int8), get("actives", nb, np.int64), get("sorted", n_dec, np.int64))
    return Ranges(st, sp, nm, cl, int(sync)), BucketGrid(int(lo), shift)


def select_hits(time: np.ndarray, ranges: Ranges, grid: BucketGrid | None, buffers=None
                ) -> np.ndarray:
    """Indices of the hits inside the ranges (like :func:`select_in_ranges`, bucketed).

    ``grid`` is the one :func:`scan_hits` returned; with None this falls back to a
    binary search per hit.
    """
    get = buffers or (lambda name, size, dtype=np.int64: np.empty(size, dtype))
    out = get("selected", len(time), np.int64)
    if grid is None or len(ranges) == 0 or njit is None:
        return select_in_ranges(time, ranges.start, ranges.stop, out)
    nbp = int((int(ranges.stop[-1]) - 1 - grid.t0) >> grid.shift) + 1
    m = _select_bucket_kernel(time, grid.t0, grid.shift, nbp,
                              np.ascontiguousarray(ranges.start, np.int64),
                              np.ascontiguousarray(ranges.stop, np.int64),
                              get("rmap", nbp, np.int64), out)
    return out[:m]


def scan_windows(t: np.ndarray, threshold: int, window_ns: int) -> Ranges:
    """The window state machine of nhit.md 3.2, compiled (same result as the numpy form).

    Parameters
    ----------
    t : ndarray of int64, shape (n,)
        Decision-hit times in ns, sorted ascending.
    threshold : int
        ``N`` (> 0).
    window_ns : int
        ``Tw`` in ns (> 0).

    Returns
    -------
    Ranges

    Notes
    -----
    One pass with two pointers (window end ``j`` and first tie ``lo``), O(n).

    Examples
    --------
    >>> t = np.array([0, 10, 20, 30, 5000])
    >>> r = scan_windows(t, threshold=2, window_ns=100)
    >>> r.start.tolist(), r.stop.tolist(), r.n_max.tolist()
    ([0], [120], [4])
    """
    _check_rule(threshold, window_ns)
    if njit is None:  # pragma: no cover
        return scan_windows_numpy(t, threshold, window_ns)
    t = np.ascontiguousarray(t, np.int64)
    st, sp, nm, cl, sync = _scan_kernel(t, int(threshold), int(window_ns))
    return Ranges(st, sp, nm, cl, int(sync))


def gather_times(hits: np.ndarray, all_dets: bool, out: np.ndarray | None = None) -> np.ndarray:
    """Decision times: ED hit times (or all hit times if ``all_dets``), unsorted.

    ``out`` is an optional reusable int64 buffer of at least ``len(hits)`` elements;
    the returned array is a view into it.
    """
    if out is None or len(out) < len(hits):
        out = np.empty(len(hits), np.int64)
    if njit is None:  # pragma: no cover
        sel = hits["time"] if all_dets else hits["time"][hits["det"] == 0]
        out[: len(sel)] = sel
        return out[: len(sel)]
    m = _gather_kernel(hits["time"], hits["det"], bool(all_dets), out)
    return out[:m]


def select_in_ranges(time: np.ndarray, start: np.ndarray, stop: np.ndarray,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Indices of the hits with ``start[k] <= time < stop[k]`` for some k.

    ``start``/``stop`` must be sorted, disjoint ranges; ``time`` may be in any order.
    Returns indices in input order (a view into ``out`` when given).
    """
    if out is None or len(out) < len(time):
        out = np.empty(len(time), np.int64)
    start = np.ascontiguousarray(start, np.int64)
    stop = np.ascontiguousarray(stop, np.int64)
    if njit is None:  # pragma: no cover
        k = np.searchsorted(start, time, "right") - 1
        ok = (k >= 0) & (time < stop[np.maximum(k, 0)])
        idx = np.flatnonzero(ok)
        out[: len(idx)] = idx
        return out[: len(idx)]
    m = _select_kernel(time, start, stop, out)
    return out[:m]
