"""Reading XAS spectra: XDI 1.0, Athena projects (.prj), plain column text and HDF5 series.

Every reader returns :class:`Spectrum` objects with energy in eV and either mu(E)
(``kind == "mu"``, to be normalised) or an already normalised spectrum
(``kind == "norm"``, used as it is).

The XDI reader follows the XDI 1.0 specification (``# Namespace.tag: value`` fields,
``# ///`` closing the fields, ``# Column.N: name [units]``). The Athena reader parses
the Perl ``Data::Dumper`` text that Demeter writes (gzip-compressed or plain) with a
small tokenizer; nothing is evaluated.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "SIGNALS",
    "Spectrum",
    "read_athena",
    "read_columns",
    "read_hdf5_series",
    "read_spectra",
    "read_xdi",
    "spectrum_from_columns",
]

#: Accepted values of the ``signal`` choice: how mu(E) is made from the columns.
SIGNALS = ("auto", "mu", "transmission", "fluorescence", "reference", "norm")

_ALIASES = {
    "energy": ("energy", "e", "energy_ev", "ev", "en", "x", "energyev"),
    "i0": ("i0", "io", "imon", "mon", "i_0"),
    "itrans": ("itrans", "it", "i1", "i_t", "itr", "trans"),
    "ifluor": ("ifluor", "if", "ifl", "fluor", "iff", "i_f", "pfy", "tfy"),
    "irefer": ("irefer", "iref", "i2", "ir", "refer"),
    "mu": ("mu", "xmu", "mutrans", "mu_trans", "mufluor", "mu_fluor", "absorption", "mu(e)"),
    "norm": ("norm", "normalized", "normalised", "flat", "xanes", "nor"),
}


@dataclass
class Spectrum:
    """One measured spectrum.

    Attributes
    ----------
    name : str
        Label (file stem, Athena group label or HDF5 row name).
    energy : ndarray of shape (n,)
        Energies in eV, strictly increasing.
    mu : ndarray of shape (n,)
        mu(E) when ``kind == "mu"``, a normalised spectrum when ``kind == "norm"``.
    kind : {"mu", "norm"}
    element, edge : str or None
        Absorbing element symbol and edge (``"K"``, ``"L3"``) when the file says so.
    source : str
        File the spectrum came from.
    meta : dict
        Header fields (XDI ``Namespace.tag`` keys, Athena args).
    """

    name: str
    energy: np.ndarray
    mu: np.ndarray
    kind: str = "mu"
    element: str | None = None
    edge: str | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)


def _canonical(label: str) -> str:
    """Fold a column label onto a known name: ``E(keV)`` -> energy, ``It`` -> itrans."""
    full = label.strip().lower()
    bare = re.sub(r"\s*[\[(].*$", "", full)  # drop units: "energy [eV]", "E(keV)"
    for key, names in _ALIASES.items():
        if full in names or bare in names:
            return key
    return bare or full


def _validate_energy(energy: np.ndarray, where: str) -> np.ndarray:
    energy = np.asarray(energy, dtype=float)
    if energy.size < 8:
        raise ValueError(f"{where}: only {energy.size} data points; a spectrum needs at least 8")
    if not np.all(np.isfinite(energy)):
        raise ValueError(f"{where}: the energy column holds NaN or non-numeric values")
    if np.nanmax(energy) < 100.0:  # keV
        energy = energy * 1000.0
    d = np.diff(energy)
    if np.any(d <= 0):
        i = int(np.argmax(d <= 0))
        raise ValueError(
            f"{where}: energy is not strictly increasing at row {i + 2} "
            f"({energy[i]:.3f} -> {energy[i + 1]:.3f} eV); sort the scan or merge repeated "
            "points before matching"
        )
    return energy


def spectrum_from_columns(
    columns: dict[str, np.ndarray],
    name: str,
    source: str = "",
    signal: str = "auto",
    meta: dict | None = None,
) -> Spectrum:
    """Build a spectrum from named columns.

    Parameters
    ----------
    columns : dict of str to ndarray of shape (n,)
        Columns by label (case and common aliases are folded: ``it`` -> ``itrans``...).
    name, source : str
        Label and file name for messages.
    signal : {"auto", "mu", "transmission", "fluorescence", "reference", "norm"}
        ``transmission``: ln(i0/itrans); ``fluorescence``: ifluor/i0; ``reference``:
        ln(itrans/irefer); ``mu``: a mu column; ``norm``: an already normalised column,
        used as it is. ``auto`` takes the first available of mu, transmission,
        fluorescence, norm.
    meta : dict, optional
        Header fields; ``Element.symbol`` and ``Element.edge`` are picked up.

    Returns
    -------
    Spectrum
    """
    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {', '.join(SIGNALS)}; got {signal!r}")
    where = source or name
    cols = {}
    for label, values in columns.items():
        cols.setdefault(_canonical(label), np.asarray(values, dtype=float))
    if "energy" not in cols:
        raise ValueError(
            f"{where}: no energy column; columns are {', '.join(columns) or '(none)'}. "
            "Name the first column 'energy' (eV) in the header"
        )
    energy = _validate_energy(cols["energy"], where)
    options = {
        "mu": ("mu",),
        "transmission": ("i0", "itrans"),
        "fluorescence": ("i0", "ifluor"),
        "reference": ("itrans", "irefer"),
        "norm": ("norm",),
    }
    order = ["mu", "transmission", "fluorescence", "norm"] if signal == "auto" else [signal]
    for choice in order:
        if all(c in cols for c in options[choice]):
            break
    else:
        need = " or ".join("+".join(options[c]) for c in order)
        raise ValueError(
            f"{where}: cannot make mu(E) with signal={signal!r}: needs columns {need}; "
            f"columns are {', '.join(columns)}"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        if choice == "transmission":
            mu = np.log(cols["i0"] / cols["itrans"])
        elif choice == "fluorescence":
            mu = cols["ifluor"] / cols["i0"]
        elif choice == "reference":
            mu = np.log(cols["itrans"] / cols["irefer"])
        else:
            mu = cols[choice]
    if not np.all(np.isfinite(mu)):
        bad = int(np.sum(~np.isfinite(mu)))
        raise ValueError(f"{where}: {bad} points give a non-finite mu ({choice}); check the "
                         "detector columns for zeros or negative counts")
    meta = dict(meta or {})
    element = meta.get("element.symbol") or meta.get("bkg_z") or None
    edge = meta.get("element.edge") or meta.get("fft_edge") or None
    return Spectrum(
        name=name, energy=energy, mu=mu, kind="norm" if choice == "norm" else "mu",
        element=element.strip().capitalize() if element else None,
        edge=edge.strip().upper() if edge else None,
        source=source, meta=meta,
    )


def _parse_numeric_rows(lines: list[str], where: str) -> np.ndarray:
    rows = [ln.split() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not rows:
        raise ValueError(f"{where}: no data rows")
    width = len(rows[0])
    try:
        data = np.array([[float(v) for v in r[:width]] for r in rows if len(r) >= width])
    except ValueError as exc:
        raise ValueError(f"{where}: non-numeric data row ({exc})") from None
    return data


def read_xdi(path: str | Path, signal: str = "auto") -> Spectrum:
    """Read an XDI 1.0 file.

    Parameters
    ----------
    path : str or Path
    signal : str
        See :func:`spectrum_from_columns`.

    Returns
    -------
    Spectrum
        ``meta`` holds the header fields with lower-case ``namespace.tag`` keys.
    """
    path = Path(path)
    text = path.read_text(errors="replace").splitlines()
    meta: dict[str, str] = {}
    colnames: dict[int, str] = {}
    header: list[str] = []
    body: list[str] = []
    in_fields = True
    for line in text:
        if line.lstrip().startswith("#"):
            content = line.lstrip()[1:].strip()
            header.append(content)
            if content.startswith("///"):
                in_fields = False
            elif in_fields and ":" in content and not content.startswith("XDI"):
                key, value = content.split(":", 1)
                key = key.strip().lower()
                meta[key] = value.strip()
                m = re.fullmatch(r"column\.(\d+)", key)
                if m:
                    colnames[int(m.group(1))] = value.split()[0] if value.split() else ""
        else:
            body.append(line)
    data = _parse_numeric_rows(body, str(path))
    labels = [colnames.get(i + 1, "") for i in range(data.shape[1])]
    if not all(labels):
        last = next((h for h in reversed(header) if h and not set(h) <= set("-=")), "")
        words = last.split()
        if len(words) == data.shape[1]:
            labels = [lab or w for lab, w in zip(labels, words)]
    labels = [lab or f"col{i + 1}" for i, lab in enumerate(labels)]
    cols = {lab: data[:, i] for i, lab in enumerate(labels)}
    return spectrum_from_columns(cols, path.stem, str(path), signal, meta)


def read_columns(path: str | Path, signal: str = "auto") -> Spectrum:
    """Read plain column text (``.dat``, ``.xmu``, ``.nor``, ``.txt``, ``.csv``).

    The header is every leading line that is not all numbers; the last header line with
    as many words as there are columns names them. Without names the columns are
    energy and mu (two columns) or energy, i0, itrans (three or more).
    """
    path = Path(path)
    lines = path.read_text(errors="replace").splitlines()
    sep = "," if path.suffix.lower() == ".csv" else None
    header, body = [], []
    for line in lines:
        words = line.replace(",", " ").split() if sep else line.split()
        try:
            [float(w) for w in words]
            numeric = bool(words)
        except ValueError:
            numeric = False
        if numeric and not line.lstrip().startswith("#"):
            body.append(" ".join(words))
        elif not body:
            header.append(line.lstrip("#").strip())
    data = _parse_numeric_rows(body, str(path))
    ncol = data.shape[1]
    labels: list[str] = []
    for h in reversed(header):
        words = h.replace(",", " ").split()
        if len(words) == ncol:
            labels = words
            break
    if not labels:
        if ncol < 2:
            raise ValueError(f"{path}: one column only; need energy and mu (or i0, itrans)")
        labels = ["energy", "mu"] if ncol == 2 else ["energy", "i0", "itrans"] + [
            f"col{i + 4}" for i in range(ncol - 3)]
    cols = {lab: data[:, i] for i, lab in enumerate(labels)}
    return spectrum_from_columns(cols, path.stem, str(path), signal)


_TOKEN = re.compile(r"'((?:[^'\\]|\\.)*)'|(-?[0-9][0-9.eE+\-]*)|(\[)|(\])|(undef)")


def _perl_list(text: str) -> list:
    """Parse a Perl list literal ``('a', 1, ['b'], ...)`` into Python values (no eval)."""
    stack: list[list] = [[]]
    for m in _TOKEN.finditer(text):
        s, num, opn, cls, undef = m.groups()
        if opn:
            stack.append([])
        elif cls:
            inner = stack.pop()
            stack[-1].append(inner)
        elif s is not None:
            stack[-1].append(s.replace("\\'", "'").replace("\\\\", "\\"))
        elif num is not None:
            stack[-1].append(num)
        elif undef:
            stack[-1].append(None)
    return stack[0]


def read_athena(path: str | Path) -> list[Spectrum]:
    """Read the mu(E) groups of an Athena project (Demeter Perl format, gzip or plain).

    Returns
    -------
    list of Spectrum
        One per group with ``is_xmu`` (chi(k) and other record types are skipped), named by
        the group label, with ``meta`` holding the Athena ``args`` (``bkg_e0``,
        ``bkg_eshift``...). Energies are as stored, before ``bkg_eshift``.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        return _read_athena_json(json.loads(text), path)
    if "Athena project file" not in text.split("\n", 1)[0]:
        raise ValueError(f"{path}: not an Athena project file (first line must say "
                         "'Athena project file')")
    out: list[Spectrum] = []
    group: dict = {}
    for line in text.splitlines():
        if line.startswith("$old_group"):
            group = {}
        elif line.startswith("@args"):
            vals = _perl_list(line.split("=", 1)[1])
            group["args"] = {str(vals[i]): vals[i + 1] for i in range(0, len(vals) - 1, 2)}
        elif line[:4] in ("@x =", "@y =", "@i0 "):
            key = line[1:].split("=", 1)[0].strip()
            group[key] = np.array([float(v) for v in _perl_list(line.split("=", 1)[1])])
        elif line.startswith("[record]"):
            sp = _athena_group(group, path)
            if sp is not None:
                out.append(sp)
            group = {}
    if not out:
        raise ValueError(f"{path}: the Athena project holds no mu(E) groups")
    return out


def _athena_group(group: dict, path: Path) -> Spectrum | None:
    args = group.get("args", {})
    flags = {k: str(args.get(k, "0")) for k in ("is_chi", "is_rsp", "is_qsp", "is_bkg",
                                                 "is_diff", "is_pixel", "is_xmudat")}
    if str(args.get("is_xmu", "1")) != "1" or any(v == "1" for v in flags.values()):
        return None
    if "x" not in group or "y" not in group:
        return None
    energy, mu = group["x"], group["y"]
    order = np.argsort(energy, kind="stable")
    label = str(args.get("label") or args.get("tag") or "group")
    meta = {k: v for k, v in args.items() if not isinstance(v, list)}
    edge = str(args.get("fft_edge", "")).upper() or None
    sp = spectrum_from_columns(
        {"energy": energy[order], "mu": mu[order]}, label, f"{path}:{label}",
        "norm" if str(args.get("is_nor", "0")) == "1" else "mu",
        {"element.symbol": args.get("bkg_z"), "element.edge": edge, **meta},
    )
    return sp


def _read_athena_json(doc: dict, path: Path) -> list[Spectrum]:
    """Athena's JSON project variant: ``_____order`` lists the groups, each with x, y, args."""
    order = next((v for k, v in doc.items() if k.startswith("_____order")), None)
    names = order if isinstance(order, list) else [k for k in doc if not k.startswith("_____")]
    out = []
    for name in names:
        grp = doc.get(name)
        if not isinstance(grp, dict) or "x" not in grp or "y" not in grp:
            continue
        args = grp.get("args") or {}
        args = dict(args) if isinstance(args, dict) else {}
        args.setdefault("label", name)
        sp = _athena_group({"args": args, "x": np.asarray(grp["x"], float),
                            "y": np.asarray(grp["y"], float)}, path)
        if sp is not None:
            out.append(sp)
    if not out:
        raise ValueError(f"{path}: JSON Athena project with no mu(E) groups")
    return out


def read_hdf5_series(path: str | Path) -> list[Spectrum]:
    """Read a series from HDF5: a dataset ``energy`` (n,) and ``mu`` or ``norm`` (m, n).

    The first group (or the file root) holding an ``energy`` dataset is used; optional
    ``names`` (m,) labels the rows, otherwise they are ``<stem>_0000``...
    """
    import h5py

    path = Path(path)
    with h5py.File(path, "r") as h5:
        found: list[str] = []

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset) and name.split("/")[-1].lower() == "energy":
                found.append(name.rsplit("/", 1)[0] if "/" in name else "")

        h5.visititems(visit)
        if not found:
            raise ValueError(f"{path}: no dataset named 'energy' in the HDF5 file")
        grp = h5[found[0]] if found[0] else h5
        kind = next((k for k in ("mu", "norm") if k in grp), None)
        if kind is None:
            raise ValueError(f"{path}: next to '{found[0]}/energy' there is no 'mu' or 'norm' "
                             f"dataset; found {', '.join(grp.keys())}")
        energy = np.asarray(grp["energy"][()], dtype=float)
        y = np.atleast_2d(np.asarray(grp[kind][()], dtype=float))
        if y.shape[1] != energy.size and y.shape[0] == energy.size:
            y = y.T
        names = [n.decode() if isinstance(n, bytes) else str(n)
                 for n in grp["names"][()]] if "names" in grp else []
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in grp.attrs.items()}
    if y.shape[1] != energy.size:
        raise ValueError(f"{path}: '{kind}' has shape {y.shape}, not (n_spectra, {energy.size})")
    names = names if len(names) == y.shape[0] else [f"{path.stem}_{i:04d}" for i in
                                                     range(y.shape[0])]
    meta = {"element.symbol": attrs.get("element"), "element.edge": attrs.get("edge")}
    return [spectrum_from_columns({"energy": energy, kind: row}, nm, f"{path}:{nm}", kind, meta)
            for nm, row in zip(names, y)]


def read_spectra(path: str | Path, signal: str = "auto") -> list[Spectrum]:
    """Read every spectrum in a file, choosing the reader from its content and suffix.

    ``.prj`` -> Athena; ``.h5``/``.hdf5``/``.nxs`` -> HDF5 series; a first line starting
    ``# XDI`` -> XDI; anything else -> column text.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".prj":
        return read_athena(path)
    if suffix in (".h5", ".hdf5", ".nxs", ".hdf"):
        return read_hdf5_series(path)
    with path.open("rb") as fh:
        head = fh.read(16)
    if head[:2] == b"\x1f\x8b":
        return read_athena(path)
    if head.lstrip().upper().startswith(b"# XDI") or suffix == ".xdi":
        return [read_xdi(path, signal)]
    return [read_columns(path, signal)]
