"""Shared fixtures: sample plugins, registries built from temporary folders, a CLI runner."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hisci import Registry, Settings

pytest_plugins = ["tests.conftest_service"]

DATA = Path(__file__).parent / "data"
SAMPLES = DATA / "hiplot-samples"
SAMPLE_IDS = sorted(p.name for p in SAMPLES.iterdir() if p.is_dir())
FIXTURE_PLUGINS = Path(__file__).parent / "fixtures" / "plugins"
BUILTIN = Path(__file__).parents[1] / "plugins"


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No HISCI_* variables leak in from the developer's shell."""
    for name in ("HISCI_PLUGIN_PATH", "HISCI_DATA_DIR", "HISCI_REDIS_URL", "HISCI_URL", "HISCI_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HISCI_NO_ENTRY_POINTS", "1")
    return tmp_path


@pytest.fixture
def registry_from(isolated_env: Path) -> Callable[..., Registry]:
    """Build a registry from the given folders only (no built-ins, no entry points)."""

    def build(*folders: Path, builtins: bool = False) -> Registry:
        settings = Settings(plugin_path=tuple(folders), builtins=builtins, entry_points=False)
        return Registry.discover(settings)

    return build


@pytest.fixture
def plugin_copy(tmp_path: Path) -> Callable[..., Path]:
    """Copy a plugin folder (a sample, a fixture or a built-in) under a new id, optionally
    editing its JSON: ``plugin_copy("table_plot", edit={"ui.json": fn})``."""

    def copy(source: str, new_id: str | None = None, root: Path | None = None,
             edit: dict[str, Callable[[Any], Any]] | None = None) -> Path:
        for base in (BUILTIN, SAMPLES, FIXTURE_PLUGINS):
            if (base / source).is_dir():
                break
        else:
            raise FileNotFoundError(source)
        target = (root or tmp_path / "plugins") / (new_id or source)
        shutil.copytree(base / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        for name, fn in (edit or {}).items():
            path = target / name
            document = json.loads(path.read_text("utf-8"))
            result = fn(document)
            path.write_text(json.dumps(result if result is not None else document), "utf-8")
        return target

    return copy


@pytest.fixture
def cli(isolated_env: Path) -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def strict_job_states(monkeypatch: pytest.MonkeyPatch) -> None:
    """An illegal job state transition is an error in the tests (a logged refusal in production)."""
    monkeypatch.setenv("HISCI_STRICT_STATES", "1")
