"""Reference library: normalised standards on one grid relative to the tabulated edge energy.

A :class:`Library` stores ``r`` normalised spectra on a common grid of energies relative
to the tabulated edge energy of their element and edge (Mn K 6539.0 eV, Au L3 11919.0 eV,
from xraydb). Measuring relative to the *tabulated* edge, not to each spectrum's own E0,
keeps chemical shifts (several eV between Mn(II) and Mn(IV)) in the data: they are what
tells oxidation states apart. Points outside a reference's measured range are NaN.

The library is kept in HDF5 (``format = "hisci-xas-library"``, version 1): datasets
``grid`` (g,), ``norm`` (r, g) float32, ``e0`` (r,), ``edge_energy`` (r,), and string
datasets ``names``, ``element``, ``edge``, ``compound``, ``source``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .normalize import normalize_batch
from .xas_io import Spectrum, read_spectra

__all__ = [
    "DEFAULT_GRID",
    "Library",
    "NormSettings",
    "build_library",
    "edge_of",
    "load_library",
    "normalize_spectra",
]

#: Default library grid: -60 ... +200 eV around the tabulated edge, 0.2 eV steps.
DEFAULT_GRID = np.round(np.arange(-60.0, 200.0 + 1e-9, 0.2), 6)
LIBRARY_SUFFIXES = (".xdi", ".prj", ".dat", ".xmu", ".txt", ".nor", ".csv")
_NOT_DATA = ("LICENSE", "LICENCE", "README", "SOURCE", "COPYING")  # skipped in folders


@dataclass(frozen=True)
class NormSettings:
    """Pre-edge / post-edge ranges (eV relative to E0) used for every spectrum; None = larch default."""

    pre1: float | None = None
    pre2: float | None = None
    norm1: float | None = None
    norm2: float | None = None
    nnorm: int | None = None

    def kwargs(self) -> dict:
        return {k: getattr(self, k) for k in ("pre1", "pre2", "norm1", "norm2", "nnorm")}


@dataclass
class NormalizedSpectrum:
    """A spectrum after normalisation, with its element, edge and tabulated edge energy (eV)."""

    spectrum: Spectrum
    norm: np.ndarray
    e0: float
    edge_step: float
    element: str
    edge: str
    edge_energy: float
    pre_edge: np.ndarray | None = None
    post_edge: np.ndarray | None = None
    flat: np.ndarray | None = None
    ranges: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spectrum.name

    @property
    def energy(self) -> np.ndarray:
        return self.spectrum.energy


def edge_of(spectrum: Spectrum, e0: float) -> tuple[str, str, float]:
    """Element, edge and tabulated edge energy (eV) of a spectrum.

    Uses the file's ``Element.symbol`` / ``Element.edge`` when present, else the edge
    nearest to E0 (xraydb ``guess_edge``).
    """
    import xraydb

    element, edge = spectrum.element, spectrum.edge
    if element and not edge:
        edge = "K" if xraydb.xray_edge(element, "K").energy < 40000 else "L3"
    if not element:
        element, edge = xraydb.guess_edge(float(e0))
    try:
        energy = float(xraydb.xray_edge(element, edge).energy)
    except (KeyError, ValueError, TypeError, AttributeError):  # unknown element or edge
        raise ValueError(f"{spectrum.source or spectrum.name}: unknown element/edge "
                         f"{element!r} {edge!r} in the file header") from None
    return element, edge, energy


def normalize_spectra(spectra: list[Spectrum], settings: NormSettings = NormSettings()
                      ) -> list[NormalizedSpectrum]:
    """Normalise spectra; those sharing an energy grid are normalised together.

    Raises
    ------
    ValueError
        When a spectrum does not cover its absorption edge (E0 within 5 eV of the start
        or 10 eV of the end of the scan, or the tabulated edge outside the scan).
    """
    out: list[NormalizedSpectrum | None] = [None] * len(spectra)
    groups: dict[tuple, list[int]] = {}
    for i, sp in enumerate(spectra):
        if sp.kind == "norm":
            e0 = _norm_e0(sp)
            element, edge, eedge = edge_of(sp, e0)
            out[i] = NormalizedSpectrum(sp, np.asarray(sp.mu, float), e0, 1.0, element, edge, eedge)
        else:
            key = (sp.energy.size, float(sp.energy[0]), float(sp.energy[-1]),
                   hash(sp.energy.tobytes()))
            groups.setdefault(key, []).append(i)
    for idx in groups.values():
        energy = spectra[idx[0]].energy
        res = normalize_batch(energy, np.stack([spectra[i].mu for i in idx]), **settings.kwargs())
        for row, i in enumerate(idx):
            sp = spectra[i]
            e0 = float(res.e0[row])
            element, edge, eedge = edge_of(sp, e0)
            _check_covers_edge(sp, e0, element, edge, eedge)
            out[i] = NormalizedSpectrum(sp, res.norm[row], e0, float(res.edge_step[row]),
                                        element, edge, eedge, res.pre_edge[row],
                                        res.post_edge[row], res.flat[row],
                                        {k: float(getattr(res, k)[row]) for k in
                                         ("pre1", "pre2", "norm1", "norm2", "nnorm")})
    return [o for o in out if o is not None]


def _norm_e0(sp: Spectrum) -> float:
    """E0 of an already normalised spectrum: first crossing of 0.5."""
    above = np.flatnonzero(sp.mu >= 0.5)
    return float(sp.energy[above[0]] if above.size else sp.energy[sp.energy.size // 2])


def _check_covers_edge(sp: Spectrum, e0: float, element: str, edge: str, eedge: float) -> None:
    emin, emax = float(sp.energy[0]), float(sp.energy[-1])
    where = sp.source or sp.name
    if sp.element and not (emin < eedge < emax):
        raise ValueError(
            f"{where}: the scan ({emin:.1f}-{emax:.1f} eV) does not cover the {element} {edge} "
            f"edge at {eedge:.1f} eV; measure from about {eedge - 50:.0f} to {eedge + 100:.0f} eV"
        )
    if e0 - emin < 5.0 or emax - e0 < 10.0:
        raise ValueError(
            f"{where}: the scan ({emin:.1f}-{emax:.1f} eV) does not cover an absorption edge "
            f"(the steepest rise is at {e0:.1f} eV, at its end); the scan needs pre-edge and "
            "post-edge points around the edge"
        )


@dataclass
class Library:
    """Normalised reference spectra on a common relative-energy grid.

    Attributes
    ----------
    grid : ndarray of shape (g,)
        Energies in eV relative to each reference's tabulated edge energy.
    norm : ndarray of shape (r, g), float32
        Normalised references (NaN outside their measured range).
    names, element, edge, compound, source : list of str, length r
    e0 : ndarray of shape (r,)
        Measured E0 (eV, absolute).
    edge_energy : ndarray of shape (r,)
        Tabulated edge energy (eV) the grid is relative to.
    """

    grid: np.ndarray
    norm: np.ndarray
    names: list[str]
    element: list[str]
    edge: list[str]
    compound: list[str]
    source: list[str]
    e0: np.ndarray
    edge_energy: np.ndarray
    settings: NormSettings = NormSettings()
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Distinct (element, edge) pairs, in order of appearance."""
        return list(dict.fromkeys(zip(self.element, self.edge)))

    def subset(self, rows: np.ndarray | list[int]) -> Library:
        rows = np.asarray(rows, dtype=int)
        pick = lambda seq: [seq[i] for i in rows]
        return Library(self.grid, self.norm[rows], pick(self.names), pick(self.element),
                       pick(self.edge), pick(self.compound), pick(self.source),
                       self.e0[rows], self.edge_energy[rows], self.settings)

    def for_edge(self, element: str, edge: str) -> Library:
        """References of one element and edge; ValueError naming the edges held otherwise."""
        rows = [i for i, (el, ed) in enumerate(zip(self.element, self.edge))
                if el == element and ed == edge]
        if not rows:
            held = ", ".join(f"{el} {ed}" for el, ed in self.edges) or "nothing"
            raise ValueError(
                f"the database holds no {element} {edge}-edge references (it holds {held}); "
                f"choose a database with {element} {edge} standards"
            )
        return self.subset(rows)

    def index(self, names: list[str]) -> list[int]:
        """Rows of the named references; ValueError listing close names for unknown ones."""
        import difflib

        rows = []
        lookup = {n: i for i, n in enumerate(self.names)}
        folded = {n.lower().replace(" ", "_"): i for i, n in enumerate(self.names)}
        for n in names:
            i = lookup.get(n, folded.get(str(n).lower().replace(" ", "_")))
            if i is None:
                close = difflib.get_close_matches(str(n), self.names, n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise ValueError(f"standard {n!r} is not in the database.{hint} "
                                 f"Known: {', '.join(self.names)}")
            rows.append(i)
        return rows

    def window(self, lo: float, hi: float) -> slice:
        """Slice of grid points with lo <= grid <= hi (eV relative to the edge)."""
        i0 = int(np.searchsorted(self.grid, lo - 1e-9, side="left"))
        i1 = int(np.searchsorted(self.grid, hi + 1e-9, side="right"))
        return slice(i0, i1)

    def coverage(self) -> tuple[float, float]:
        """Relative-energy interval covered by every reference (cached)."""
        if "coverage" in self._cache:
            return self._cache["coverage"]
        finite = np.isfinite(self.norm)
        cols = np.flatnonzero(finite.all(axis=0))
        if cols.size == 0:
            raise ValueError("the references share no common energy range")
        self._cache["coverage"] = float(self.grid[cols[0]]), float(self.grid[cols[-1]])
        return self._cache["coverage"]

    def save(self, path: str | Path) -> Path:
        """Write the library to HDF5."""
        import h5py

        path = Path(path)
        with h5py.File(path, "w") as h5:
            h5.attrs["format"] = "hisci-xas-library"
            h5.attrs["version"] = 1
            for k, v in self.settings.kwargs().items():
                h5.attrs[k] = np.nan if v is None else v
            h5["grid"] = self.grid
            h5.create_dataset("norm", data=self.norm.astype(np.float32), compression="gzip")
            h5["e0"] = self.e0
            h5["edge_energy"] = self.edge_energy
            for key in ("names", "element", "edge", "compound", "source"):
                h5[key] = np.array(getattr(self, key), dtype=h5py.string_dtype())
        return path


def build_library(spectra: list[Spectrum], grid: np.ndarray = DEFAULT_GRID,
                  settings: NormSettings = NormSettings()) -> Library:
    """Normalise reference spectra and interpolate them on ``grid`` (eV from the edge).

    Parameters
    ----------
    spectra : list of Spectrum
        The standards (mu or already normalised).
    grid : ndarray of shape (g,)
        Relative energies in eV.
    settings : NormSettings
        Normalisation ranges; use the same for the unknowns.

    Returns
    -------
    Library
    """
    if not spectra:
        raise ValueError("no reference spectra to build a library from")
    normed = normalize_spectra(spectra, settings)
    norm = np.full((len(normed), grid.size), np.nan, dtype=np.float32)
    for i, ns in enumerate(normed):
        rel = ns.energy - ns.edge_energy
        inside = (grid >= rel[0]) & (grid <= rel[-1])
        norm[i, inside] = np.interp(grid[inside], rel, ns.norm)
    return Library(
        grid=np.asarray(grid, float), norm=norm,
        names=[ns.name for ns in normed],
        element=[ns.element for ns in normed], edge=[ns.edge for ns in normed],
        compound=[str(ns.spectrum.meta.get("sample.formula") or ns.spectrum.meta.get(
            "sample.name") or ns.name) for ns in normed],
        source=[ns.spectrum.source for ns in normed],
        e0=np.array([ns.e0 for ns in normed]),
        edge_energy=np.array([ns.edge_energy for ns in normed]), settings=settings,
    )


def _read_h5_library(path: Path) -> Library | None:
    import h5py

    with h5py.File(path, "r") as h5:
        if h5.attrs.get("format") != "hisci-xas-library":
            return None
        strings = {k: [s.decode() if isinstance(s, bytes) else str(s) for s in h5[k][()]]
                   for k in ("names", "element", "edge", "compound", "source")}
        attrs = {k: h5.attrs.get(k, np.nan) for k in ("pre1", "pre2", "norm1", "norm2", "nnorm")}
        settings = NormSettings(**{k: None if np.isnan(v) else (int(v) if k == "nnorm" else
                                                                  float(v))
                                   for k, v in attrs.items()})
        return Library(grid=h5["grid"][()], norm=h5["norm"][()].astype(np.float32),
                       e0=h5["e0"][()], edge_energy=h5["edge_energy"][()], settings=settings,
                       **strings)


def load_library(paths: list[str | Path] | str | Path, grid: np.ndarray = DEFAULT_GRID,
                 settings: NormSettings = NormSettings()) -> Library:
    """Load references from library HDF5 files, folders of XDI/Athena files, or single files.

    Several sources are merged into one library. Libraries saved in HDF5 keep their own
    normalisation; files and folders are normalised with ``settings``. A library whose
    grid differs from ``grid`` is interpolated onto it.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    libs: list[Library] = []
    spectra: list[Spectrum] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in LIBRARY_SUFFIXES
                           and f.is_file() and not f.name.upper().startswith(_NOT_DATA))
            if not files:
                raise ValueError(f"{p}: the folder holds no XDI/Athena/column files "
                                 f"({', '.join(LIBRARY_SUFFIXES)})")
            for f in files:
                spectra += read_spectra(f)
        elif p.suffix.lower() in (".h5", ".hdf5"):
            lib = _read_h5_library(p)
            if lib is None:
                spectra += read_spectra(p)
            else:
                libs.append(lib)
        else:
            spectra += read_spectra(p)
    if spectra:
        libs.append(build_library(spectra, grid, settings))
    if not libs:
        raise ValueError("no references found in the database input")
    return _merge(libs, grid)


def _merge(libs: list[Library], grid: np.ndarray) -> Library:
    rows = []
    for lib in libs:
        if lib.grid.shape == grid.shape and np.allclose(lib.grid, grid):
            rows.append(lib.norm)
        else:
            rows.append(np.stack([np.interp(grid, lib.grid, r, left=np.nan, right=np.nan)
                                  for r in lib.norm]).astype(np.float32))
    cat = lambda key: [x for lib in libs for x in getattr(lib, key)]
    return Library(grid=np.asarray(grid, float), norm=np.concatenate(rows), names=cat("names"),
                   element=cat("element"), edge=cat("edge"), compound=cat("compound"),
                   source=cat("source"), e0=np.concatenate([lib.e0 for lib in libs]),
                   edge_energy=np.concatenate([lib.edge_energy for lib in libs]),
                   settings=libs[-1].settings)
