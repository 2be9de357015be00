"""CLEAN deconvolution (Hogbom, Clark), restoring-beam fit and restoration.

Kernels are compiled with numba and run in parallel over images (one image per
thread). The PSF of an N x N image is 2N x 2N with its peak (1) at pixel (N, N), so it
can be shifted to any pixel of the image.

References
----------
Hogbom J. A. (1974), A&AS 15, 417. Clark B. G. (1980), A&A 89, 377.
"""

from __future__ import annotations

import math

import numba
import numpy as np

METHODS = ("none", "hogbom", "clark")
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


# ---------------------------------------------------------------- numba kernels
#
# Performance notes: inner loops index row slices (``psf[y, ox:ox + n]``) with the loop
# counter, so that numba drops its negative-index wraparound check and LLVM vectorises
# them (indexing ``psf[y, x + ox]`` was 5x slower); PSFs are passed as a typed list so
# that a batch does not copy its 64 PSFs into one stacked array.

@numba.njit(cache=True, nogil=True, fastmath=True)
def _absmax(a, count):
    """max |a[:count]| (0 for an empty range)."""
    best = 0.0
    for i in range(count):
        best = max(best, abs(a[i]))
    return best


@numba.njit(cache=True, nogil=True)
def _hogbom_one(residual, model, psf, gain, niter, threshold):
    n = residual.shape[0]
    # peak of |residual|
    best = -1.0
    py = 0
    px = 0
    for y in range(n):
        for x in range(n):
            a = abs(residual[y, x])
            if a > best:
                best = a
                py = y
                px = x
    done = 0
    while done < niter and best > threshold:
        amp = gain * residual[py, px]
        model[py, px] += amp
        done += 1
        oy = n - py
        ox = n - px
        best = -1.0
        ny = py
        nx = px
        for y in range(n):
            row = residual[y]
            prow = psf[y + oy, ox:ox + n]
            for x in range(n):
                r = row[x] - amp * prow[x]
                row[x] = r
                a = abs(r)
                if a > best:
                    best = a
                    ny = y
                    nx = x
        py = ny
        px = nx
    return done


@numba.njit(cache=True, nogil=True, fastmath=True)
def _subtract_many(residual, psf, ys, xs, amps, count):
    """residual -= sum_k amps[k] psf shifted to (ys[k], xs[k]); returns max |residual|.

    Row-blocked so that each residual row stays in cache while all components are
    subtracted from it, four components per pass over the row (fewer loads and stores
    of the row; the PSF rows are the memory traffic).
    """
    n = residual.shape[0]
    peak = 0.0
    k4 = count - count % 4
    for y in range(n):
        row = residual[y]
        for k in range(0, k4, 4):
            a0 = amps[k]
            a1 = amps[k + 1]
            a2 = amps[k + 2]
            a3 = amps[k + 3]
            o0 = n - xs[k]
            o1 = n - xs[k + 1]
            o2 = n - xs[k + 2]
            o3 = n - xs[k + 3]
            p0 = psf[y + n - ys[k], o0:o0 + n]
            p1 = psf[y + n - ys[k + 1], o1:o1 + n]
            p2 = psf[y + n - ys[k + 2], o2:o2 + n]
            p3 = psf[y + n - ys[k + 3], o3:o3 + n]
            for x in range(n):
                row[x] = row[x] - a0 * p0[x] - a1 * p1[x] - a2 * p2[x] - a3 * p3[x]
        for k in range(k4, count):
            a = amps[k]
            ox = n - xs[k]
            prow = psf[y + n - ys[k], ox:ox + n]
            for x in range(n):
                row[x] -= a * prow[x]
        peak = max(peak, _absmax(row, n))
    return peak


@numba.njit(cache=True, nogil=True)
def _clark_one(residual, model, psf, gain, niter, threshold, half, sidelobe, max_active):
    """Clark CLEAN of one image; minor cycles on a PSF patch, exact major cycles."""
    n = residual.shape[0]
    done = 0
    comp_y = np.empty(niter, np.int64)
    comp_x = np.empty(niter, np.int64)
    comp_a = np.empty(niter, residual.dtype)
    acc = np.zeros((n, n), residual.dtype)
    ay = np.empty(max_active, np.int64)
    ax = np.empty(max_active, np.int64)
    av = np.empty(max_active, residual.dtype)
    nbins = 512
    hist = np.zeros(nbins, np.int64)
    row_start = np.empty(n + 1, np.int64)
    peak = 0.0
    for y in range(n):
        peak = max(peak, _absmax(residual[y], n))
    while done < niter and peak > threshold:
        limit = max(threshold, sidelobe * peak)
        # active pixels above the limit; if there are too many, raise the limit to keep
        # the brightest max_active (one histogram pass, then one collecting pass)
        hist[:] = 0
        scale = nbins / max(peak - limit, 1e-30)
        total = 0
        for y in range(n):
            row = residual[y]
            for x in range(n):
                a = abs(row[x])
                if a > limit:
                    hist[min(int((a - limit) * scale), nbins - 1)] += 1
                    total += 1
        if total > max_active:
            kept = 0
            j = nbins
            while j > 0 and kept + hist[j - 1] <= max_active:
                j -= 1
                kept += hist[j]
            # (if even the top bin overflows, keep the first max_active of it)
            limit = limit + min(j, nbins - 1) / scale
        count = 0
        for y in range(n):
            row = residual[y]
            for x in range(n):
                v = row[x]
                if abs(v) > limit and count < max_active:
                    ay[count] = y
                    ax[count] = x
                    av[count] = v
                    count += 1
        # minor cycle on the active pixels with the PSF patch. The active pixels were
        # collected in row-major order: row_start[y] is the first one in row y, and
        # within a row they are sorted by x, so the patch is a few binary searches.
        i = 0
        for y in range(n + 1):
            while i < count and ay[i] < y:
                i += 1
            row_start[y] = i
        nnew = 0
        while done < niter:
            best = _absmax(av, count)
            if best <= limit:
                break
            b = 0
            while b < count - 1 and abs(av[b]) != best:  # first with the largest |value|
                b += 1
            amp = gain * av[b]
            by = ay[b]
            bx = ax[b]
            if acc[by, bx] == 0.0:
                comp_y[nnew] = by
                comp_x[nnew] = bx
                nnew += 1
            acc[by, bx] += amp
            done += 1
            for y in range(max(by - half, 0), min(by + half + 1, n)):
                lo = row_start[y]
                hi = row_start[y + 1]
                if lo == hi:
                    continue
                lo += np.searchsorted(ax[lo:hi], bx - half)
                hi = row_start[y] + np.searchsorted(ax[row_start[y]:hi], bx + half,
                                                    side="right")
                prow = psf[n + y - by]
                for i in range(lo, hi):
                    av[i] -= amp * prow[n + ax[i] - bx]
        if nnew == 0:
            break
        # major cycle: subtract the new components (merged per pixel) exactly
        for i in range(nnew):
            comp_a[i] = acc[comp_y[i], comp_x[i]]
            model[comp_y[i], comp_x[i]] += comp_a[i]
            acc[comp_y[i], comp_x[i]] = 0.0
        peak = _subtract_many(residual, psf, comp_y, comp_x, comp_a, nnew)
    return done


@numba.njit(parallel=True, cache=True)
def _prepare_many(dirty, residuals, bad):
    """residuals = dirty with NaN -> 0; bad[k] = image k has a NaN."""
    for k in numba.prange(dirty.shape[0]):
        found = False
        src = dirty[k]
        dst = residuals[k]
        for y in range(src.shape[0]):
            for x in range(src.shape[1]):
                v = src[y, x]
                if v != v:
                    found = True
                    v = 0.0
                dst[y, x] = v
        bad[k] = found


@numba.njit(parallel=True, cache=True)
def _peak_abs_many(images, out):
    """out[k] = max |images[k]| over the pixels that are not NaN (0 if none)."""
    for k in numba.prange(images.shape[0]):
        img = images[k]
        best = 0.0
        for y in range(img.shape[0]):
            for x in range(img.shape[1]):
                a = abs(img[y, x])
                if a > best:  # False for NaN
                    best = a
        out[k] = best


def peak_abs(images: np.ndarray) -> np.ndarray:
    """Largest |pixel| of each image of a stack (M, N, N), NaN pixels ignored; float64 (M,)."""
    images = np.ascontiguousarray(images)
    out = np.zeros(images.shape[0], np.float64)
    _peak_abs_many(images, out)
    return out


@numba.njit(parallel=True, cache=True)
def _clean_many(residuals, models, psfs, psf_index, method, gain, niter, threshold, half,
                sidelobes, max_active, iterations):
    for k in numba.prange(residuals.shape[0]):
        p = psf_index[k]
        if method == 1:
            iterations[k] = _hogbom_one(residuals[k], models[k], psfs[p], gain, niter, threshold)
        else:
            iterations[k] = _clark_one(residuals[k], models[k], psfs[p], gain, niter,
                                       threshold, half, sidelobes[p], max_active)


@numba.njit(parallel=True, cache=True)
def _restore_many(models, residuals, kernels, psf_index, out):
    """out = residual + components convolved with the kernel; NaN in the residual makes
    the whole image NaN, NaN components count as 0."""
    for k in numba.prange(models.shape[0]):
        ker = kernels[psf_index[k]]
        r = ker.shape[0] // 2
        n = models.shape[1]
        img = out[k]
        res = residuals[k]
        bad = False
        for y in range(n):
            for x in range(n):
                v = res[y, x]
                if v != v:
                    bad = True
                img[y, x] = v
        if bad:
            img[:, :] = np.nan
            continue
        for y in range(n):
            for x in range(n):
                a = models[k, y, x]
                if a != 0.0 and a == a:
                    for dy in range(-r, r + 1):
                        yy = y + dy
                        if 0 <= yy < n:
                            for dx in range(-r, r + 1):
                                xx = x + dx
                                if 0 <= xx < n:
                                    img[yy, xx] += a * ker[dy + r, dx + r]


# ---------------------------------------------------------------- public API

def clean_images(
    dirty: np.ndarray,
    psfs: np.ndarray,
    psf_index: np.ndarray,
    *,
    method: str = "clark",
    gain: float = 0.1,
    niter: int = 300,
    threshold: float = 0.0,
    patch_half: int = 24,
    max_active: int = 4096,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CLEAN a stack of images, in parallel over images.

    Parameters
    ----------
    dirty : ndarray, shape (M, N, N)
        Dirty images (flux per beam). NaN images are skipped (returned as NaN).
    psfs : ndarray of shape (P, 2N, 2N), or a sequence of P arrays of shape (2N, 2N)
        PSFs, peak 1 at (N, N) (converted to the dtype of ``dirty``).
    psf_index : ndarray of int, shape (M,)
        PSF of each image.
    method : {"hogbom", "clark"}
        Hogbom: exact subtraction of the whole shifted PSF at every iteration. Clark:
        minor cycles on the pixels above the PSF's largest sidelobe outside a
        ``(2 patch_half + 1)``-pixel patch times the peak, subtracting only the patch;
        each major cycle subtracts the new components exactly.
    gain : float
        Loop gain (0 < gain <= 1).
    niter : int
        Maximum number of components per image.
    threshold : float
        Stop when the residual peak (absolute value) is below this flux.
    patch_half : int
        Half-width of the Clark PSF patch, pixels.
    max_active : int
        Most pixels taken into one Clark minor cycle.

    Returns
    -------
    models : ndarray, shape (M, N, N)
        CLEAN components (flux per pixel).
    residuals : ndarray, shape (M, N, N)
    iterations : ndarray of int, shape (M,)
    """
    if method not in ("hogbom", "clark"):
        raise ValueError(f"clean method must be 'hogbom' or 'clark', got {method!r}")
    if not 0 < gain <= 1:
        raise ValueError(f"clean gain must be in (0, 1], got {gain}")
    dirty = np.ascontiguousarray(dirty)
    m, n = dirty.shape[0], dirty.shape[1]
    plist = _psf_list(psfs, dirty.dtype, n)
    psf_index = np.ascontiguousarray(psf_index, dtype=np.int64)
    residuals = np.empty_like(dirty)
    bad = np.zeros(m, np.bool_)
    _prepare_many(dirty, residuals, bad)
    models = np.zeros(residuals.shape, residuals.dtype)  # lazily zeroed pages
    iterations = np.zeros(m, np.int64)
    half = int(min(patch_half, n - 1))
    sidelobes = np.array([_outer_sidelobe(p, half) for p in plist], dtype=np.float64)
    _clean_many(residuals, models, plist, psf_index, 1 if method == "hogbom" else 2,
                float(gain), int(niter), float(threshold), half, sidelobes, int(max_active),
                iterations)
    residuals[bad] = np.nan
    models[bad] = np.nan
    return models, residuals, iterations


def _psf_list(psfs, dtype, n: int):
    """PSFs (a stacked array or a sequence of 2N x 2N arrays) as a numba typed list of
    C-contiguous arrays of ``dtype`` (no copy when they already are)."""
    out = numba.typed.List()
    for p in psfs:
        if p.shape != (2 * n, 2 * n):
            raise ValueError(f"PSFs must be {2 * n} x {2 * n} for {n} x {n} images, "
                             f"got {p.shape}")
        out.append(np.ascontiguousarray(p, dtype=dtype))
    return out


def _outer_sidelobe(psf: np.ndarray, half: int) -> float:
    """Largest |PSF| outside the (2 half + 1) patch, within the image-sized window."""
    n = psf.shape[0] // 2
    win = np.abs(psf[n // 2 : n // 2 + n, n // 2 : n // 2 + n]).copy()
    c = n // 2
    win[c - half : c + half + 1, c - half : c + half + 1] = 0.0
    return float(min(max(win.max(), 0.05), 0.9))


def fit_beam(psf: np.ndarray, level: float = 0.35, window: int = 32) -> tuple[float, float, float]:
    """Fit an elliptical Gaussian to the PSF main lobe.

    Parameters
    ----------
    psf : ndarray, shape (2N, 2N)
        Peak 1 at (N, N).
    level : float
        Pixels of the connected main lobe above this level enter the fit.
    window : int
        Half-width of the search window, pixels.

    Returns
    -------
    bmaj, bmin : float
        FWHM of the major and minor axes, pixels.
    bpa : float
        Position angle of the major axis, degrees from north through east.
    """
    from scipy import ndimage

    c = psf.shape[0] // 2
    w = min(window, c)
    sub = np.asarray(psf[c - w : c + w + 1, c - w : c + w + 1], dtype=np.float64)
    labels, _ = ndimage.label(sub > level)
    lobe = labels == labels[w, w]
    y, x = np.nonzero(lobe)
    dy, dx = y - w, x - w
    a = np.stack([dx * dx, 2 * dx * dy, dy * dy], axis=1).astype(np.float64)
    rhs = -np.log(np.clip(sub[y, x], 1e-6, None))
    if len(rhs) < 5:  # main lobe not resolved by the pixels (cell >= beam)
        return 1.0, 1.0, 0.0
    q, *_ = np.linalg.lstsq(a, rhs, rcond=None)
    qm = np.array([[q[0], q[1]], [q[1], q[2]]])
    evals, evecs = np.linalg.eigh(2.0 * qm)  # inverse covariance
    evals = np.clip(evals, 1e-6, None)
    sig = 1.0 / np.sqrt(evals)  # ascending evals -> descending sigma
    bmaj, bmin = (float(np.clip(FWHM_PER_SIGMA * v, 0.5, 2.0 * w)) for v in sig)
    vx, vy = evecs[:, 0]  # major axis in pixel (x, y)
    bpa = np.rad2deg(np.arctan2(-vx, vy)) % 180.0  # east = -x, north = +y
    return float(bmaj), float(bmin), float(bpa)


def gaussian_kernel(bmaj: float, bmin: float, bpa_deg: float, radius: int | None = None):
    """Elliptical Gaussian of peak 1 on a pixel grid, shape (2R+1, 2R+1), indexed [y, x].

    ``bmaj``/``bmin`` are FWHM in pixels; ``bpa_deg`` from north (+y) through east (-x).
    """
    if radius is None:
        radius = min(math.ceil(1.5 * bmaj) + 1, 512)
    s_maj, s_min = bmaj / FWHM_PER_SIGMA, bmin / FWHM_PER_SIGMA
    t = np.deg2rad(bpa_deg)
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    east, north = -x, y
    a = east * np.sin(t) + north * np.cos(t)  # along the major axis
    b = east * np.cos(t) - north * np.sin(t)
    return np.exp(-0.5 * ((a / s_maj) ** 2 + (b / s_min) ** 2))


def restore_images(models, residuals, beams, psf_index, out=None):
    """Restored images: components convolved with the fitted Gaussian, plus residual.

    Parameters
    ----------
    models, residuals : ndarray, shape (M, N, N)
    beams : sequence of (bmaj, bmin, bpa)
        Fitted beam per PSF (pixels, degrees).
    psf_index : ndarray of int, shape (M,)
    out : ndarray, shape (M, N, N), optional
        Where to write the result; may be ``residuals`` itself (restored in place,
        which saves allocating and faulting in another image stack).

    Returns
    -------
    ndarray, shape (M, N, N)
        Flux per beam (a point source of flux S peaks at S); images whose residual has
        a NaN are all NaN.
    """
    kernels = [gaussian_kernel(*b) for b in beams]
    r = max(k.shape[0] for k in kernels) // 2
    stack = np.zeros((len(kernels), 2 * r + 1, 2 * r + 1), models.dtype)
    for i, k in enumerate(kernels):
        h = k.shape[0] // 2
        stack[i, r - h : r + h + 1, r - h : r + h + 1] = k
    residuals = np.ascontiguousarray(residuals)
    if out is None:
        out = np.empty_like(residuals)
    elif out.shape != residuals.shape or out.dtype != residuals.dtype or not (
            out.flags.c_contiguous and out.flags.writeable):
        raise ValueError("out must be a writeable C-contiguous array like residuals")
    _restore_many(np.ascontiguousarray(models), residuals, stack,
                  np.asarray(psf_index, np.int64), out)
    return out


def hogbom_batched(dirty, psfs, psf_index, *, xp=np, gain=0.1, niter=300, threshold=0.0):
    """Hogbom CLEAN of all images at once with array operations (numpy or cupy).

    Every iteration finds each image's peak and subtracts its shifted PSF from all
    images together, so on a GPU (``xp = cupy``) the whole batch advances in lock step.
    It gives the same components as the numba :func:`clean_images` with
    ``method="hogbom"``.

    Parameters
    ----------
    dirty : array, shape (M, N, N)
    psfs : array, shape (P, 2N, 2N)
    psf_index : array of int, shape (M,)
    xp : module
        numpy or cupy; arrays are moved to it.
    gain, niter, threshold : see :func:`clean_images`.

    Returns
    -------
    models, residuals : arrays of ``xp``, shape (M, N, N)
    iterations : array of int, shape (M,)
    """
    residual = xp.nan_to_num(xp.asarray(dirty)).copy()
    psfs = xp.asarray(psfs, dtype=residual.dtype)
    pidx = xp.asarray(psf_index)
    m, n = residual.shape[0], residual.shape[1]
    model = xp.zeros_like(residual)
    iterations = xp.zeros(m, dtype=xp.int64)
    ar = xp.arange(n)
    images = xp.arange(m)
    for _ in range(int(niter)):
        flat = xp.abs(residual.reshape(m, -1))
        k = xp.argmax(flat, axis=1)
        peak = flat[images, k]
        active = peak > threshold
        if not bool(active.any()):
            break
        iy, ix = k // n, k % n
        amp = gain * residual[images, iy, ix] * active
        model[images, iy, ix] += amp
        iterations += active
        rows = (n - iy)[:, None] + ar[None, :]
        cols = (n - ix)[:, None] + ar[None, :]
        shifted = psfs[pidx[:, None, None], rows[:, :, None], cols[:, None, :]]
        residual -= amp[:, None, None] * shifted
    return model, residual, iterations
