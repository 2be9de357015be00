"""MUSER-I dataset folder: open, validate, group frames into 5-s batches, flag.

A dataset is the folder of ``shared/research/muser.md`` section 3.2 (target.bin,
calibrator.bin, antennas.csv, ephemeris.csv, weather.csv, observation.json), given as
a folder or as a .zip / .tar.gz archive of it.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import frames as F
from .geometry import Ephemeris

REQUIRED_FILES = {
    "target": "target.bin",
    "calibrator": "calibrator.bin",
    "antennas": "antennas.csv",
    "ephemeris": "ephemeris.csv",
    "weather": "weather.csv",
}
DEFAULT_LIMITS = {"wind_m_s": 15.0, "rain_mm_h": 0.5}
#: an antenna whose mean auto on a band is below this fraction of the median is dead
DEAD_FRACTION = 0.05


class DatasetError(ValueError):
    """A dataset that cannot be used; ``file`` names the offending file."""

    def __init__(self, message: str, file: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.file = file
        self.hint = hint


@dataclass
class Dataset:
    """An opened dataset (tables parsed; frames are read on demand)."""

    folder: Path
    observation: dict
    antennas_enu: np.ndarray
    ephemeris: Ephemeris
    weather: tuple[np.ndarray, np.ndarray, np.ndarray]  # posix times, wind, rain
    files: dict[str, Path]

    @property
    def lat_deg(self) -> float:
        return float(self.observation["site"]["lat_deg"])

    @property
    def calibrator_flux(self) -> float:
        return float(self.observation.get("calibrator_flux", 100.0))

    @property
    def w_term(self) -> bool:
        return bool(self.observation.get("w_term", True))

    @property
    def cadence_s(self) -> float:
        return float(self.observation.get("batch_cadence_s", 5.0))

    @property
    def limits(self) -> dict:
        return {**DEFAULT_LIMITS, **self.observation.get("weather_limits", {})}


@dataclass
class Batch:
    """The frames of one 5-s batch, at most one per (band, polarisation) code."""

    index: int
    frames: dict[int, F.Frame] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def time(self) -> _dt.datetime:
        return min(f.time for f in self.frames.values())

    @property
    def missing_codes(self) -> list[int]:
        return [c for c in range(F.N_CODES) if c not in self.frames]


def extract_archive(path: Path, dest: Path) -> Path:
    """Unpack a .zip / .tar.gz dataset into ``dest``; return the folder holding the files."""
    dest.mkdir(parents=True, exist_ok=True)
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                if Path(member).is_absolute() or ".." in Path(member).parts:
                    raise DatasetError(f"{path.name}: unsafe member path {member!r}", file=path.name)
            zf.extractall(dest)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as tf:
            tf.extractall(dest, filter="data")
    else:
        raise DatasetError(
            f"{path.name}: a dataset must be a folder, a .zip or a .tar.gz",
            file=path.name,
            hint="zip the folder that holds target.bin, calibrator.bin, antennas.csv, ...",
        )
    hits = sorted(dest.rglob("observation.json")) or sorted(dest.rglob("target.bin"))
    return hits[0].parent if hits else dest


def resolve_folder(path: str | Path, scratch: Path) -> Path:
    """The dataset folder for a folder, an archive, or a file inside the folder."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.is_file() and path.name.lower().endswith((".zip", ".tar.gz", ".tgz", ".tar")):
        return extract_archive(path, scratch)
    if path.is_file():
        return path.parent
    raise DatasetError(f"dataset {path} does not exist", file=str(path))


def open_dataset(folder: str | Path) -> Dataset:
    """Open and check a dataset folder.

    Raises
    ------
    DatasetError
        Naming the first missing or malformed file.
    """
    folder = Path(folder)
    obs_path = folder / "observation.json"
    if not obs_path.is_file():
        raise DatasetError(
            f"dataset {folder.name}: missing file observation.json",
            file="observation.json",
            hint="a MUSER dataset holds observation.json, target.bin, calibrator.bin, "
            "antennas.csv, ephemeris.csv and weather.csv",
        )
    try:
        obs = json.loads(obs_path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"observation.json is not valid JSON: {exc}", file="observation.json") from exc
    names = {**REQUIRED_FILES, **obs.get("files", {})}
    files = {}
    for key, name in names.items():
        p = folder / name
        if not p.is_file():
            raise DatasetError(
                f"dataset {folder.name}: missing file {name} ({key})",
                file=name,
                hint=f"add {name} to the dataset folder (see the plugin README)",
            )
        files[key] = p
    if int(obs.get("frame_size", F.FRAME_SIZE)) != F.FRAME_SIZE:
        raise DatasetError(
            f"observation.json: frame_size {obs['frame_size']} is not {F.FRAME_SIZE} (MUSER-I)",
            file="observation.json",
        )
    if "site" not in obs or "lat_deg" not in obs["site"]:
        raise DatasetError("observation.json: site.lat_deg is missing", file="observation.json")
    return Dataset(
        folder=folder,
        observation=obs,
        antennas_enu=_read_antennas(files["antennas"]),
        ephemeris=_read_ephemeris(files["ephemeris"]),
        weather=_read_weather(files["weather"]),
        files=files,
    )


def _rows(path: Path, columns: list[str]) -> list[dict]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(
                f"{path.name}: missing column(s) {', '.join(missing)}; "
                f"expected {','.join(columns)}",
                file=path.name,
            )
        return list(reader)


def parse_utc(text: str) -> _dt.datetime:
    """ISO time (``Z`` or offset; naive = UTC) to an aware UTC datetime."""
    t = _dt.datetime.fromisoformat(text.strip())
    return (t if t.tzinfo else t.replace(tzinfo=_dt.UTC)).astimezone(_dt.UTC)


def _read_antennas(path: Path) -> np.ndarray:
    rows = _rows(path, ["antenna", "east_m", "north_m", "up_m"])
    if len(rows) != F.N_ANTENNAS:
        raise DatasetError(f"{path.name}: {len(rows)} antennas, MUSER-I has 40", file=path.name)
    enu = np.zeros((F.N_ANTENNAS, 3))
    for r in rows:
        enu[int(r["antenna"])] = [float(r["east_m"]), float(r["north_m"]), float(r["up_m"])]
    return enu


def _read_ephemeris(path: Path) -> Ephemeris:
    rows = _rows(path, ["utc", "sun_ha_deg", "sun_dec_deg"])
    try:
        return Ephemeris(
            [parse_utc(r["utc"]) for r in rows],
            [float(r["sun_ha_deg"]) for r in rows],
            [float(r["sun_dec_deg"]) for r in rows],
            [float(r["sun_ra_deg"]) for r in rows] if rows and "sun_ra_deg" in rows[0] else None,
        )
    except ValueError as exc:
        raise DatasetError(f"{path.name}: {exc}", file=path.name) from exc


def _read_weather(path: Path):
    rows = _rows(path, ["utc", "wind_m_s", "rain_mm_h"])
    t = np.array([parse_utc(r["utc"]).timestamp() for r in rows])
    wind = np.array([float(r["wind_m_s"]) for r in rows])
    rain = np.array([float(r["rain_mm_h"]) for r in rows])
    return t, wind, rain


def weather_flag(ds: Dataset, time: _dt.datetime) -> str | None:
    """Reason to flag a batch at ``time`` from the nearest weather row, or None."""
    t, wind, rain = ds.weather
    if len(t) == 0:
        return None
    i = int(np.argmin(np.abs(t - time.timestamp())))
    lim = ds.limits
    reasons = []
    if wind[i] > lim["wind_m_s"]:
        reasons.append(f"wind {wind[i]:g} m/s > {lim['wind_m_s']:g}")
    if rain[i] > lim["rain_mm_h"]:
        reasons.append(f"rain {rain[i]:g} mm/h > {lim['rain_mm_h']:g}")
    return "flagged: weather (" + ", ".join(reasons) + ")" if reasons else None


def group_batches(frames: list[F.Frame], t_ref: _dt.datetime, cadence_s: float = 5.0):
    """Group frames into batches by time; validate order and codes.

    Batch ``k`` holds the frames within half a cadence of ``t_ref + k cadence``. A frame
    whose time does not increase, or a repeated code, is dropped and reported.

    Returns
    -------
    list of Batch
        Sorted by index.
    """
    batches: dict[int, Batch] = {}
    last = None
    for f in frames:
        k = round((f.time - t_ref).total_seconds() / cadence_s)
        b = batches.setdefault(k, Batch(k))
        if last is not None and f.time <= last:
            b.problems.append(f"frame {f.counter} (code {f.code}): time {f.time.isoformat()} "
                              "does not increase; dropped")
            continue
        last = f.time
        if f.code in b.frames:
            b.problems.append(f"frame {f.counter}: code {f.code} repeated in the batch; dropped")
            continue
        b.frames[f.code] = f
    return [batches[k] for k in sorted(batches)]


def dead_antennas(frames: list[F.Frame], fraction: float = DEAD_FRACTION) -> np.ndarray:
    """Antennas whose autos are zero (or far below the median) in any of ``frames``.

    Parameters
    ----------
    frames : list of Frame
        Frames of one band (both polarisations), or any set to be flagged together.
    fraction : float
        An antenna is dead when its mean auto is below ``fraction`` times the median.

    Returns
    -------
    ndarray of bool, shape (40,)
    """
    dead = np.zeros(F.N_ANTENNAS, bool)
    for f in frames:
        a = f.autos[:, : F.N_ANTENNAS].astype(np.float64).mean(axis=0)
        med = np.median(a)
        dead |= (a <= 0) | (a < fraction * med)
    return dead


def read_frames(path: Path, start: int = 0, stop: int | None = None) -> F.SplitReport:
    """Read and split ``path`` from byte ``start`` to ``stop``."""
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read() if stop is None else fh.read(stop - start)
    return F.split_frames(data, start_offset=start)
