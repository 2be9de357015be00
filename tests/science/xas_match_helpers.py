"""Real XAS data and synthetic series for the `xas_match` plugin tests.

Real files: tests/data/xas (Mn second scans, the cyanobacteria Athena project, a Cu foil;
see SOURCE.md there) and the plugin's built-in database plugins/xas_match/reference_db
(XASDataLibrary Mn/Fe/Cu standards, Au L3 standards of the cyanobacteria project).
Expected numbers come from shared/data/xas/README.md (xraylarch 2026.3.1) and are cited
next to each assertion as "README item N".
"""

from __future__ import annotations

import functools
import hashlib
from importlib.resources import files
from pathlib import Path

import numpy as np

from hisci.builtin_plugins.xas_match.library import (
    Library,
    NormSettings,
    load_library,
    normalize_spectra,
)
from hisci.builtin_plugins.xas_match.xas_io import Spectrum, read_athena, read_spectra

DATA = Path(__file__).resolve().parents[1] / "data" / "xas"
REF_DB = Path(str(files("hisci.builtin_plugins.xas_match") / "reference_db"))
QUERIES = sorted((DATA / "queries").glob("*.xdi"))
PRJ = DATA / "cyanobacteria.prj"

#: README item 4: normalisation of the cyanobacteria series for LCF and PCA
AU_SETTINGS = NormSettings(pre1=-150, pre2=-30, norm1=150, norm2=850, nnorm=1)
AU_EDGE = 11919.0  # Au L3, xraydb
MN_EDGE = 6539.0   # Mn K, xraydb
AU_TIMES = ["0.12", "2.42", "4.73", "7.03", "9.33", "20", "33", "720"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    """SHA256SUMS of a folder as {relative path: digest}."""
    out = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        out[name.strip()] = digest
    return out


def all_xdi() -> list[Path]:
    """Every real XDI file: built-in standards and test queries."""
    return sorted(REF_DB.rglob("*.xdi")) + QUERIES


def larch_xdi() -> list[Path]:
    """Real XDI files that are unmodified XASDataLibrary / xraylarch copies (not Au/)."""
    return [p for p in all_xdi() if p.parent.name != "Au"]


@functools.cache
def builtin_library(settings: NormSettings | None = None) -> Library:
    return load_library([REF_DB], settings=settings or NormSettings())


@functools.cache
def au_groups() -> dict[str, Spectrum]:
    return {s.name: s for s in read_athena(PRJ)}


def au_samples() -> list:
    groups = au_groups()
    return normalize_spectra([groups[t] for t in AU_TIMES], AU_SETTINGS)


def read_one(path: Path) -> Spectrum:
    return read_spectra(path)[0]


def shifted_noisy(sp: Spectrum, shift: float, noise: float, rng: np.random.Generator
                  ) -> Spectrum:
    """A copy of ``sp`` measured ``shift`` eV too high, with Gaussian noise of ``noise`` x
    the spectrum's peak-to-peak range added to mu."""
    mu = sp.mu + rng.normal(0.0, noise * np.ptp(sp.mu), sp.mu.size)
    return Spectrum(sp.name, sp.energy + shift, mu, element=sp.element, edge=sp.edge,
                    source=sp.source)


def write_xdi_like(path: Path, header: list[str], columns: np.ndarray) -> Path:
    lines = [f"# {h}" for h in header]
    lines += ["  ".join(f"{v:.6f}" for v in row) for row in columns]
    path.write_text("\n".join(lines) + "\n")
    return path
