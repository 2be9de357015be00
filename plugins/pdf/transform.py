"""PDFgetX3-style ad hoc transform: I(Q) -> S(Q) -> F(Q) -> G(r).

Pure numpy; the array module ``xp`` (numpy or cupy) may be passed to the sine
transform, which is the only step worth moving to a GPU.

References
----------
P. Juhás, T. Davis, C. L. Farrow, S. J. L. Billinge, "PDFgetX3: a rapid and highly
automatable program for processing powder diffraction data into total scattering pair
distribution functions", J. Appl. Cryst. 46 (2013) 560-566, doi:10.1107/S0021889813005190.

E. Lorch, "Neutron diffraction by germania, silica and radiation-damaged silica glasses",
J. Phys. C 2 (1969) 229-237, doi:10.1088/0022-3719/2/2/305.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

__all__ = [
    "PDFConfig",
    "PDFResult",
    "PDFTransformer",
    "find_gr_peaks",
    "form_factor_averages",
    "lorch_window",
    "parse_composition",
    "polynomial_degree",
    "sine_transform",
]

_ELEMENT_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*\.?\d*(?:[eE][-+]?\d+)?)")


@lru_cache(maxsize=1)
def _known_elements() -> tuple[str, ...]:
    import xraydb

    return tuple(xraydb.atomic_symbol(z) for z in range(1, 99))


def parse_composition(composition: str) -> dict[str, float]:
    """Parse a chemical formula into atomic fractions.

    Parameters
    ----------
    composition : str
        Formula such as ``"Ni"``, ``"C60"``, ``"NaCl"``, ``"Zr0.5Cu0.5"`` or
        ``"PbTi0.5Zr0.5O3"``. Parentheses are not supported. Elements H (Z=1) to Cf
        (Z=98), the range of the Waasmaier-Kirfel form-factor table.

    Returns
    -------
    dict of str to float
        Element symbol -> atomic fraction; fractions sum to 1, in formula order.

    Raises
    ------
    ValueError
        Empty formula, a token that is not an element symbol (the message names it),
        or a non-positive count.

    Examples
    --------
    >>> parse_composition("Zr0.5Cu0.5")
    {'Zr': 0.5, 'Cu': 0.5}
    >>> parse_composition("NaCl")
    {'Na': 0.5, 'Cl': 0.5}
    """
    text = "".join(str(composition).split())
    if not text:
        raise ValueError("composition: empty formula; give e.g. 'Ni', 'NaCl' or 'Zr0.5Cu0.5'")
    known = _known_elements()
    counts: dict[str, float] = {}
    pos = 0
    while pos < len(text):
        match = _ELEMENT_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(
                f"composition {composition!r}: cannot parse {text[pos:]!r} at position {pos}; "
                "write element symbols with optional counts, e.g. 'PbTi0.5Zr0.5O3'"
            )
        symbol, number = match.group(1), match.group(2)
        if symbol not in known:
            raise ValueError(
                f"composition {composition!r}: unknown element {symbol!r}; allowed are element "
                "symbols H to Cf (Z = 1-98), case-sensitive, e.g. 'Ni', 'Cu', 'O'"
            )
        count = float(number) if number not in ("", ".") else 1.0
        if not count > 0:
            raise ValueError(
                f"composition {composition!r}: count of {symbol} is {count}, must be > 0"
            )
        counts[symbol] = counts.get(symbol, 0.0) + count
        pos = match.end()
    total = sum(counts.values())
    return {el: c / total for el, c in counts.items()}


def form_factor_averages(composition: dict[str, float], q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Composition-averaged X-ray form factors.

    Parameters
    ----------
    composition : dict of str to float
        Atomic fractions c_i (see :func:`parse_composition`).
    q : ndarray of shape (N,)
        Momentum transfer Q = 4π sinθ/λ in Å⁻¹.

    Returns
    -------
    f_avg : ndarray of shape (N,)
        ⟨f⟩ = Σ c_i f_i(Q) in electrons.
    f2_avg : ndarray of shape (N,)
        ⟨f²⟩ = Σ c_i f_i(Q)² in electrons².

    Notes
    -----
    f_i are the Waasmaier-Kirfel fits (Acta Cryst. A51 (1995) 416) from xraydb, which
    takes sinθ/λ = Q/(4π).
    """
    import xraydb

    s = np.asarray(q, dtype=float) / (4.0 * np.pi)
    f_avg = np.zeros_like(s)
    f2_avg = np.zeros_like(s)
    for element, fraction in composition.items():
        f = np.asarray(xraydb.f0(element, s), dtype=float)
        f_avg += fraction * f
        f2_avg += fraction * f * f
    return f_avg, f2_avg


def polynomial_degree(rpoly: float, qmaxinst: float) -> int:
    """Degree of the ad hoc correction polynomial, n = round(rpoly·qmaxinst/π).

    A degree-n polynomial on [0, qmaxinst] carries no Fourier content beyond
    r ≈ nπ/qmaxinst, so n is the largest degree that only alters G(r) below rpoly (Å).
    At least 1.
    """
    return max(1, round(rpoly * qmaxinst / np.pi))


def lorch_window(q: np.ndarray, qmax: float) -> np.ndarray:
    """Lorch modification function M(Q) = sin(πQ/qmax)/(πQ/qmax) (1 at Q = 0)."""
    return np.sinc(np.asarray(q, dtype=float) / qmax)


def _trapezoid_weights(q: np.ndarray) -> np.ndarray:
    """Trapezoid-rule quadrature weights for samples at (possibly uneven) points q."""
    w = np.zeros_like(q)
    if q.size > 1:
        dq = np.diff(q)
        w[:-1] += 0.5 * dq
        w[1:] += 0.5 * dq
    return w


def sine_transform(
    q: np.ndarray,
    fq: np.ndarray,
    r: np.ndarray,
    qmin: float | None = None,
    qmax: float | None = None,
    lorch: bool = False,
    xp=np,
) -> np.ndarray:
    """G(r) = (2/π) ∫_{qmin}^{qmax} F(Q) M(Q) sin(Qr) dQ by direct trapezoid summation.

    Parameters
    ----------
    q : ndarray of shape (N,)
        Increasing Q grid in Å⁻¹ (need not be uniform).
    fq : ndarray of shape (N,) or (K, N)
        Reduced structure function F(Q) = Q[S(Q) - 1] in Å⁻¹; K patterns at once.
    r : ndarray of shape (M,)
        Radii in Å.
    qmin, qmax : float, optional
        Integration limits in Å⁻¹ (default: the ends of ``q``). Only samples with
        qmin ≤ Q ≤ qmax enter.
    lorch : bool
        Multiply F(Q) by the Lorch window M(Q) = sinc(Q/qmax) to damp termination ripples.
    xp : module
        numpy or cupy; the (M, N) sine kernel and the product run with it.

    Returns
    -------
    ndarray of shape (M,) or (K, M)
        G(r) in Å⁻².

    Examples
    --------
    >>> q = np.linspace(0, 60, 6001)
    >>> fq = np.exp(-0.005 * q**2) * np.sin(2.5 * q)
    >>> g = sine_transform(q, fq, np.array([2.5]))
    >>> round(float(g[0]), 4)   # (1/(σ√(2π))) with σ = 0.1
    3.9894
    """
    q = np.asarray(q, dtype=float)
    r = np.asarray(r, dtype=float)
    lo = q[0] if qmin is None else qmin
    hi = q[-1] if qmax is None else qmax
    sel = (q >= lo) & (q <= hi)
    qs = q[sel]
    weights = _trapezoid_weights(qs) * (2.0 / np.pi)
    if lorch:
        weights = weights * lorch_window(qs, hi)
    kernel = xp.sin(xp.outer(xp.asarray(r), xp.asarray(qs))) * xp.asarray(weights)[None, :]
    fsel = xp.asarray(fq)[..., sel]
    return fsel @ kernel.T


@dataclass(frozen=True)
class PDFConfig:
    """Parameters of the ad hoc transform, with PDFgetX3's names and units.

    Attributes
    ----------
    composition : str
        Chemical formula, e.g. ``"Ni"``.
    qmin, qmax : float
        Fourier-transform range in Å⁻¹ (qmax ≤ qmaxinst).
    qmaxinst : float
        Upper end of the usable data and of the polynomial fit, Å⁻¹.
    rpoly : float
        r limit (Å) below which the polynomial correction may alter G(r).
    rmin, rmax, rstep : float
        Output r grid in Å: rmin, rmin + rstep, ... ≤ rmax.
    lorch : bool
        Apply the Lorch window in the sine transform.
    """

    composition: str = "Ni"
    qmin: float = 0.0
    qmax: float = 24.0
    qmaxinst: float = 25.0
    rpoly: float = 0.9
    rmin: float = 0.0
    rmax: float = 30.0
    rstep: float = 0.01
    lorch: bool = False

    def r_grid(self) -> np.ndarray:
        """The output r grid in Å, shape (M,)."""
        n = int(np.floor((self.rmax - self.rmin) / self.rstep + 1e-9)) + 1
        return self.rmin + self.rstep * np.arange(n)

    def as_header(self) -> dict[str, object]:
        """The parameters as PDFgetX3 config keys (for output headers)."""
        return {
            "composition": self.composition,
            "qmin": self.qmin,
            "qmax": self.qmax,
            "qmaxinst": self.qmaxinst,
            "rpoly": self.rpoly,
            "rmin": self.rmin,
            "rmax": self.rmax,
            "rstep": self.rstep,
            "lorch": self.lorch,
        }


@dataclass
class PDFResult:
    """Output of :meth:`PDFTransformer.transform` (arrays of one pattern or K stacked).

    Attributes
    ----------
    q : ndarray of shape (N,)
        Q grid in Å⁻¹ (data up to qmaxinst).
    iq : ndarray of shape (N,) or (K, N)
        Background-subtracted intensity I(Q), arbitrary units.
    sq : ndarray
        Total-scattering structure function S(Q), oscillates about 1.
    fq : ndarray
        Reduced structure function F(Q) = Q[S(Q) - 1] in Å⁻¹.
    r : ndarray of shape (M,)
        r grid in Å.
    gr : ndarray of shape (M,) or (K, M)
        G(r) in Å⁻².
    degree : int
        Degree of the correction polynomial.
    scale : float or ndarray of shape (K,)
        The ad hoc scale a of I_m = a·I_coh + b (see Notes of :class:`PDFTransformer`).
    """

    q: np.ndarray
    iq: np.ndarray
    sq: np.ndarray
    fq: np.ndarray
    r: np.ndarray
    gr: np.ndarray
    degree: int
    scale: np.ndarray | float
    config: PDFConfig = field(default_factory=PDFConfig)


class PDFTransformer:
    """Ad hoc PDFgetX3 transform for patterns sharing one Q grid (plans cached).

    Parameters
    ----------
    q : ndarray of shape (N,)
        Increasing Q grid of the input intensities, Å⁻¹.
    config : PDFConfig
        Transform parameters. qmax and qmaxinst must lie within the data's Q range.
    xp : module
        numpy or cupy for the sine transform.

    Raises
    ------
    ValueError
        Unknown element, inconsistent ranges, or qmax/qmaxinst beyond the data (the
        message names the field and the allowed range).

    Notes
    -----
    With the measured intensity modelled as I_m = a·I_coh + b(Q), b smooth, and
    F = Q[S - 1] = Q(I_coh - ⟨f²⟩)/⟨f⟩², the raw function
    F_raw(Q) = Q·I_m/⟨f⟩² = a·F(Q) + Q[a⟨f²⟩ + b]/⟨f⟩² is a·F plus a smooth part.
    The smooth part is removed by a least-squares polynomial P_n(Q) = Σ_{k=1..n} c_k x^k
    in x = Q/qmaxinst (no constant, so P(0) = 0) fitted over the data up to qmaxinst,
    with n from :func:`polynomial_degree`. The scale a follows from the fitted
    polynomial: b ≥ 0 requires a ≤ P(Q)⟨f⟩²/(Q⟨f²⟩) at every Q where P follows
    a⟨f²⟩ + b, and we take the equality at the 2nd percentile over Q from the principal
    peak of S(Q) to qmaxinst (below that peak S < 1 and the polynomial absorbs part of
    it, see :meth:`_adhoc_scale`). Then F = (F_raw - P)/a and S = 1 + F/Q.

    The polynomial's pseudo-inverse, the form factors and the sine kernel depend only
    on the grid and the config, so they are built once; each further pattern costs a
    few matrix-vector products.
    """

    def __init__(self, q: np.ndarray, config: PDFConfig, xp=np):
        q = np.asarray(q, dtype=float)
        if q.ndim != 1 or q.size < 8:
            raise ValueError(f"Q grid: need a 1-D array of at least 8 points, got shape {q.shape}")
        if np.any(np.diff(q) <= 0):
            raise ValueError("Q grid: values must be strictly increasing")
        self.config = config
        self.xp = xp
        self.composition = parse_composition(config.composition)
        qlo, qhi = float(q[0]), float(q[-1])
        c = config
        if not 0 <= c.qmin < c.qmax:
            raise ValueError(f"qmin = {c.qmin}: must satisfy 0 <= qmin < qmax = {c.qmax} Å⁻¹")
        if c.qmaxinst > qhi * (1 + 1e-9):
            raise ValueError(
                f"qmaxinst = {c.qmaxinst} Å⁻¹ is beyond the data, which reach Q = {qhi:.4g} Å⁻¹; "
                f"allowed range {c.qmax} <= qmaxinst <= {qhi:.4g}"
            )
        if c.qmax > c.qmaxinst or c.qmax > qhi * (1 + 1e-9):
            raise ValueError(
                f"qmax = {c.qmax} Å⁻¹ is beyond the data range Q = {qlo:.4g}-{qhi:.4g} Å⁻¹ or "
                f"above qmaxinst = {c.qmaxinst}; allowed range {max(c.qmin, qlo):.4g} < qmax <= "
                f"{min(c.qmaxinst, qhi):.4g}"
            )
        if c.qmax <= qlo:
            raise ValueError(
                f"qmax = {c.qmax} Å⁻¹ is below the first data point Q = {qlo:.4g} Å⁻¹; "
                f"allowed range {qlo:.4g} < qmax <= {min(c.qmaxinst, qhi):.4g}"
            )
        if not (c.rstep > 0 and c.rmax > c.rmin >= 0):
            raise ValueError(
                f"r grid: need 0 <= rmin < rmax and rstep > 0, got rmin={c.rmin}, "
                f"rmax={c.rmax}, rstep={c.rstep}"
            )
        if c.rpoly <= 0:
            raise ValueError(f"rpoly = {c.rpoly} Å: must be > 0 (typical 0.9-2.5)")

        self.in_range = q <= c.qmaxinst * (1 + 1e-12)
        self.q = q[self.in_range]
        self.degree = polynomial_degree(c.rpoly, c.qmaxinst)
        if self.degree >= self.q.size // 2:
            raise ValueError(
                f"rpoly = {c.rpoly} Å gives polynomial degree {self.degree} for only "
                f"{self.q.size} points up to qmaxinst; lower rpoly"
            )
        self.f_avg, self.f2_avg = form_factor_averages(self.composition, self.q)
        self.f_avg2 = self.f_avg**2
        x = self.q / c.qmaxinst
        # basis x·P_k(2x - 1), k < n (Legendre P_k): spans x, x², ..., xⁿ (so P(0) = 0)
        # and, unlike raw powers of Q up to Q¹⁶, is well conditioned
        legendre = np.polynomial.legendre.legvander(2 * x - 1, self.degree - 1)
        design = x[:, None] * legendre
        self._design = design / np.linalg.norm(design, axis=0)
        self._pinv = np.linalg.pinv(self._design)
        # scale estimate: positions away from the first few (beamstop) points
        self._scale_sel = self.q > max(c.qmin, self.q[0]) + 0.05 * (c.qmaxinst - self.q[0])
        # the principal peak of S(Q) is sought in the lower half of the range only, so
        # that a high-Q spike (noise grows as 1/⟨f⟩²) cannot pose as it
        self._peak_sel = self._scale_sel & (self.q <= 0.5 * c.qmaxinst)
        self.r = c.r_grid()
        sel = (self.q >= c.qmin) & (self.q <= c.qmax)
        self._ft_sel = sel
        qs = self.q[sel]
        weights = _trapezoid_weights(qs) * (2.0 / np.pi)
        if c.lorch:
            weights = weights * lorch_window(qs, c.qmax)
        self._kernel_t = xp.asarray(np.sin(np.outer(qs, self.r)) * weights[:, None])

    def _adhoc_scale(self, fraw: np.ndarray, poly: np.ndarray) -> np.ndarray:
        """The ad hoc scale a (b ≥ 0 bound above the principal peak), shape () or (K,).

        b ≥ 0 requires a ≤ P(Q)⟨f⟩²/(Q⟨f²⟩). The bound only holds where the polynomial
        follows a·⟨f²⟩ + b: below the principal peak of S(Q) condensed matter has
        S(Q) < 1, a feature broad enough for the polynomial to absorb, so P/Q drops
        there (to below zero for Ni at Q ≈ 1 Å⁻¹) without saying anything about b.
        We therefore take the 2nd percentile of the bound over Q from the principal
        peak (the maximum of (F_raw - P)/Q, i.e. of S - 1, sought between the first
        beam-stop points and qmaxinst/2) up to qmaxinst.
        """
        ratio = poly * self.f_avg2 / (self.q * self.f2_avg)
        sminus1 = np.where(self._peak_sel, (fraw - poly) / self.q, -np.inf)
        q_peak = self.q[np.argmax(sminus1, axis=-1)]
        above = self.q >= np.asarray(q_peak)[..., None]
        masked = np.where(above & self._scale_sel, ratio, np.nan)
        scale = np.nanpercentile(masked, 2.0, axis=-1)
        fallback = np.nanmean(np.abs(masked), axis=-1)
        return np.where(scale > 0, scale, fallback)

    def transform(self, intensity: np.ndarray) -> PDFResult:
        """Run I(Q) -> S, F, G for one pattern (N,) or a stack (K, N) on the grid ``q``.

        Parameters
        ----------
        intensity : ndarray of shape (N_in,) or (K, N_in)
            Background-subtracted intensity on the Q grid given to the constructor.

        Returns
        -------
        PDFResult
        """
        iq = np.asarray(intensity, dtype=float)[..., self.in_range]
        if not np.all(np.isfinite(iq)):
            iq = _fill_nonfinite(self.q, iq)
        fraw = self.q * iq / self.f_avg2
        coeffs = fraw @ self._pinv.T
        poly = coeffs @ self._design.T
        scale = self._adhoc_scale(fraw, poly)
        fq = (fraw - poly) / np.asarray(scale)[..., None]
        sq = 1.0 + fq / self.q
        ft = fq[..., self._ft_sel]
        gr = self.xp.asarray(ft) @ self._kernel_t
        if self.xp is not np:
            gr = self.xp.asnumpy(gr)
        return PDFResult(
            q=self.q,
            iq=iq,
            sq=sq,
            fq=fq,
            r=self.r,
            gr=np.asarray(gr),
            degree=self.degree,
            scale=scale if np.ndim(scale) else float(scale),
            config=self.config,
        )


def _fill_nonfinite(q: np.ndarray, iq: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN/inf samples (empty integration bins)."""
    out = np.array(iq, dtype=float, copy=True)
    for row in out.reshape(-1, out.shape[-1]):
        good = np.isfinite(row)
        if not good.any():
            raise ValueError("I(Q): no finite values (is everything masked?)")
        row[~good] = np.interp(q[~good], q[good], row[good])
    return out


def find_gr_peaks(r: np.ndarray, gr: np.ndarray, rmin: float = 1.0, rel_height: float = 0.15,
                  max_peaks: int = 20) -> np.ndarray:
    """Positions (Å) of local maxima of G(r) above rel_height·max, refined by a parabola.

    Parameters
    ----------
    r : ndarray of shape (M,)
        Uniform r grid in Å.
    gr : ndarray of shape (M,)
        G(r).
    rmin : float
        Ignore r below this (Å); the polynomial correction leaves ripples there.
    rel_height : float
        Minimum peak height as a fraction of the largest G(r) value beyond rmin.
    max_peaks : int
        Return at most this many (lowest-r first).

    Returns
    -------
    ndarray of shape (P,)
        Peak positions in Å, increasing.
    """
    r = np.asarray(r, dtype=float)
    g = np.asarray(gr, dtype=float)
    sel = np.nonzero(r >= rmin)[0]
    if sel.size < 3:
        return np.empty(0)
    gs = g[sel]
    top = gs.max()
    if not top > 0:
        return np.empty(0)
    i = np.arange(1, gs.size - 1)
    is_max = (gs[i] > gs[i - 1]) & (gs[i] >= gs[i + 1]) & (gs[i] > rel_height * top)
    idx = i[is_max][:max_peaks]
    y0, y1, y2 = gs[idx - 1], gs[idx], gs[idx + 1]
    denom = y0 - 2 * y1 + y2
    shift = np.where(denom != 0, 0.5 * (y0 - y2) / np.where(denom != 0, denom, 1), 0.0)
    step = r[1] - r[0]
    return r[sel][idx] + shift * step
