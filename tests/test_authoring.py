"""The authoring kit: hicli new (plugin-template/), --from-function, hisci.testing, hicli test/preview."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from hicli.cmd_author import template_root
from hicli.main import cli as hicli
from hisci import Registry, Settings, load_plugin, run_plugin
from hisci.from_function import describe_function, load_function
from hisci.testing import Tolerance, check_plugin, compare_file, run_tests

NAME = "peak_kit"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `hicli new` project, made once; tests that edit it work on a copy."""
    from click.testing import CliRunner

    parent = tmp_path_factory.mktemp("new")
    result = CliRunner().invoke(hicli, ["new", NAME, "--author", "Ada Lovelace", "--gpu", "optional",
                                        "--title", 'Peak "kit"', "-o", str(parent)])
    assert result.exit_code == 0, result.output
    return parent / NAME


@pytest.fixture
def project(rendered: Path, tmp_path: Path) -> Path:
    copy = tmp_path / NAME
    shutil.copytree(rendered, copy)
    return copy


def _edit_json(path: Path, edit) -> None:
    document = json.loads(path.read_text("utf-8"))
    edit(document)
    path.write_text(json.dumps(document, indent=2), "utf-8")


# --------------------------------------------------------------------------- hicli new


def test_the_template_is_found_as_package_data() -> None:
    root = template_root()
    assert (root / "__plugin__" / "meta.json").is_file()
    assert (root / "pyproject.toml").is_file() and (root / "tests" / "test_plugin.py.tmpl").is_file()


def test_new_makes_a_complete_valid_pip_project(rendered: Path, cli) -> None:
    folder = rendered / NAME
    for name in ("meta.json", "data.json", "ui.json", "__init__.py", "plugin.py", "algorithm.py",
                 "README.md", "LICENSE", "example/spectrum.txt"):
        assert (folder / name).is_file(), name
    pyproject = (rendered / "pyproject.toml").read_text()
    assert f'[project.entry-points."hisci.plugins"]\n"{NAME}" = "{NAME}"' in pyproject
    assert 'name = "hisci-peak-kit"' in pyproject
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["name"]["en"] == 'Peak "kit"' and meta["meta"]["author"] == "Ada Lovelace"
    assert meta["runtime"]["gpu"] == "optional" and meta["runtime"]["queue"] == "cpu"
    assert "$" not in (folder / "plugin.py").read_text() + (folder / "README.md").read_text()
    assert (rendered / "tests" / "expected.json").is_file()
    result = cli.invoke(hicli, ["validate", str(rendered)])
    assert result.exit_code == 0 and f"ok      {NAME}" in result.output, result.output
    result = cli.invoke(hicli, ["test", str(rendered)])
    assert result.exit_code == 0, result.output
    assert "2 of 2 case(s) match" in result.output


def test_the_new_plugins_own_tests_pass(rendered: Path, tmp_path: Path) -> None:
    project = tmp_path / NAME
    shutil.copytree(rendered, project)
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # the project's tests need no plugins
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                         capture_output=True, text=True, timeout=120, env=env, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "5 passed" in out.stdout


def test_pip_install_makes_it_discovered_through_the_entry_point(rendered: Path, tmp_path: Path,
                                                                  monkeypatch, isolated_env) -> None:
    source = tmp_path / "src"
    shutil.copytree(rendered, source)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, capture_output=True, timeout=120)
    assert (site / NAME / "example" / "spectrum.txt").is_file()
    monkeypatch.syspath_prepend(str(site))
    try:
        registry = Registry.discover(Settings(builtins=False, entry_points=True))
        plugin = registry.get(NAME)
        assert plugin.source == "entry-point:hisci-peak-kit" and plugin.package == NAME
        assert plugin.folder == (site / NAME).resolve() or plugin.folder == site / NAME
        result = run_plugin(plugin, example=True, output_dir=tmp_path / "out")
        assert result.ok, result.error
        assert result.summary["position"] == pytest.approx(4.2, abs=0.05)
    finally:
        for module in [m for m in sys.modules if m == NAME or m.startswith(NAME + ".")]:
            del sys.modules[module]


def test_the_hisci_wheel_ships_every_template_file_and_new_works_from_it(tmp_path: Path) -> None:
    import zipfile

    root = Path(__file__).parents[1]
    source = tmp_path / "src"  # a small private copy: no clash with other builds in the checkout
    (source / "plugins").mkdir(parents=True)
    for name in ("core", "schemas", "hicli", "plugin-template", "setup.py", "pyproject.toml", "README.md"):
        if (root / name).is_dir():
            shutil.copytree(root / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(root / name, source / name)
    (source / "plugins" / "__init__.py").write_text("")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("hisci-*.whl")
    shipped = {n.removeprefix("hisci/plugin_template/") for n in zipfile.ZipFile(wheel).namelist()
               if n.startswith("hisci/plugin_template/")}
    template = root / "plugin-template"
    wanted = {p.relative_to(template).as_posix() for p in template.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert wanted - shipped == set(), "add these to the package-data of hisci.plugin_template"
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import sys; from hicli.cmd_author import template_root; print(template_root()); "
            "from hicli.main import cli; cli(['new', 'wheel_made', '-o', sys.argv[1]])")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "made")], capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith(str(site / "hisci" / "plugin_template"))
    assert (tmp_path / "made" / "wheel_made" / "tests" / "expected.json").is_file()


def test_a_bad_name_is_refused_with_a_usable_suggestion(cli, tmp_path: Path) -> None:
    result = cli.invoke(hicli, ["new", "My-Plugin", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "'my_plugin'" in result.output
    assert not (tmp_path / "My-Plugin").exists()


# --------------------------------------------------------------------------- --from-function

SAMPLE = '''
"""Sample typed functions."""
from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Literal, Optional

import pandas as pd
from annotated_types import Ge, Le


class Window(enum.Enum):
    HANN = "hann"
    BOXCAR = "boxcar"


def reduce_scan(
    scan: Path,
    calibration: pd.DataFrame,
    scale: Annotated[float, Ge(0), Le(10)] = 1.0,
    bins: int = 64,
    threshold: float = 0.5,
    normalize: bool = True,
    method: Literal["sum", "mean", "max"] = "mean",
    window: Window = Window.BOXCAR,
    detectors: list[Literal["a", "b", "c"]] = ("a",),
    mask: Optional[Path] = None,
    mode: str = "fast",
    xp=None,
) -> dict:
    """Reduce a scan to a binned profile.

    Parameters
    ----------
    scan : Path
        Two-column text file.
    calibration : DataFrame
        Calibration table.
    scale : float
        Multiplier applied to y.
    bins : int
        Number of bins, in [4, 256].
    threshold : float
        Values below are ignored.
    mode : {'fast', 'exact'}
        Speed or accuracy.
    """
    frame = calibration
    values = [float(v) for v in scan.read_text().split()]
    return {"n": len(values), "total": scale * sum(values), "rows": len(frame), "method": method,
            "window": window.value, "bins": bins, "detectors": list(detectors), "mode": mode}


def add_up(count: int = 3, offset: float = 0.25, shout: bool = False) -> dict:
    """Add numbers.

    Parameters
    ----------
    count : int
        How many terms, between 1 and 10.
    """
    return {"total": sum(offset + i for i in range(count)), "shout": shout}
'''


@pytest.fixture
def sample_module(tmp_path: Path, monkeypatch) -> str:
    name = f"sample_typed_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(SAMPLE), "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


def test_from_function_gives_the_expected_widgets(sample_module: str) -> None:
    spec = describe_function(load_function(f"{sample_module}:reduce_scan"), tool="reduce")
    ui, data = spec.ui_json, spec.data_json
    widgets = {key: w["type"] for section in ("data", "extra") for key, w in ui[section].items()}
    assert widgets == {
        "scan": "cloud-file", "calibration": "hiplot-textarea", "mask": "cloud-file",
        "scale": "slider", "bins": "slider", "threshold": "text-field", "normalize": "switch",
        "method": "select", "window": "select", "detectors": "select", "mode": "select",
    }
    assert "xp" not in widgets
    assert (ui["extra"]["scale"]["min"], ui["extra"]["scale"]["max"]) == (0, 10)    # Annotated
    assert (ui["extra"]["bins"]["min"], ui["extra"]["bins"]["max"], ui["extra"]["bins"]["step"]) == (4, 256, 1)
    assert ui["extra"]["method"]["items"] == ["sum", "mean", "max"]                  # Literal
    assert ui["extra"]["window"]["items"] == ["hann", "boxcar"]                      # Enum
    assert ui["extra"]["mode"]["items"] == ["fast", "exact"]                         # numpydoc {..}
    assert ui["extra"]["detectors"]["multiple"] is True
    assert ui["data"]["scan"]["required"] is True and ui["data"]["mask"]["required"] is False
    assert ui["extra"]["scale"]["label"]["en"] == "Multiplier applied to y"
    extra = data["params"]["config"]["extra"]
    assert extra["scale"] == 1.0 and extra["method"] == "mean" and extra["window"] == "boxcar"
    assert extra["normalize"] is True and extra["bins"] == 64
    assert data["params"]["textarea"] == {"calibration": ""}
    assert "exampleData" not in data and any("exampleData" in note for note in spec.notes)


def test_a_plugin_from_a_function_validates_and_runs(sample_module: str, tmp_path: Path, cli) -> None:
    result = cli.invoke(hicli, ["new", "scan_reduce", "--from-function", f"{sample_module}:reduce_scan",
                                "-o", str(tmp_path / "made")])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "made" / "scan_reduce" / "scan_reduce"
    assert (folder / f"{sample_module}.py").is_file() and not (folder / "algorithm.py").exists()
    plugin = load_plugin(folder)
    scan = tmp_path / "scan.txt"
    scan.write_text("1 2 3 4\n")
    run = run_plugin(plugin, {"textarea": {"calibration": "a\tb\n1\t2\n3\t4\n"},
                              "extra": {"scale": 2, "window": "hann", "threshold": "0.7"}},
                     inputs={"scan": scan}, output_dir=tmp_path / "out")
    assert run.ok, run.error
    assert run.summary == {"n": 4, "total": 20.0, "rows": 2, "method": "mean", "window": "hann",
                           "bins": 64, "detectors": ["a"], "mode": "fast"}


def test_a_function_without_inputs_gets_a_runnable_example(sample_module: str, tmp_path: Path, cli) -> None:
    result = cli.invoke(hicli, ["new", "adder", "--from-function", f"{sample_module}:add_up",
                                "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    expected = json.loads((tmp_path / "adder" / "tests" / "expected.json").read_text())
    assert expected["cases"]["example"]["result"] == {"total": 3.75, "shout": False}
    assert cli.invoke(hicli, ["test", str(tmp_path / "adder")]).exit_code == 0


# --------------------------------------------------------------------------- hisci.testing


def test_a_number_beyond_tolerance_fails_with_a_readable_diff(project: Path) -> None:
    _edit_json(project / "tests" / "expected.json",
               lambda d: d["cases"]["example"]["result"].update(position=4.3))
    with pytest.raises(AssertionError) as failure:
        check_plugin(project, workdir=project.parent / "runs")
    message = str(failure.value)
    assert "FAIL example" in message and "ok   raw_no_baseline" in message
    assert "result.json /position: expected 4.3, got 4.2182" in message
    assert "allowed 4.3e-06 = abs 1e-09 + rel 1e-06 x |expected|" in message
    assert "record them: update the expectations from this run" in message and "hicli" not in message


def test_a_change_within_tolerance_passes_and_tolerances_are_per_key_or_skipped(project: Path) -> None:
    def nudge(document):
        result = document["cases"]["example"]["result"]
        result["position"] *= 1 + 1e-7                          # inside the default rel 1e-6
        result["fwhm"] *= 1.01                                   # outside it, but allowed below
        result["samples"] = 7                                    # not compared at all
        document["cases"]["example"]["tolerance"] = {"result.json/fwhm": {"rel": 0.02},
                                                     "result.json/samples": "skip"}

    _edit_json(project / "tests" / "expected.json", nudge)
    assert check_plugin(project).ok


def test_arrays_text_and_figures_are_compared_by_content(project: Path) -> None:
    reference = project / "tests" / "expected" / "example"
    array = np.load(reference / "corrected.npy")
    array[1, 10:13] += 0.5
    np.save(reference / "corrected.npy", array)
    (reference / "report.txt").write_text((reference / "report.txt").read_text().replace("samples", "points"))
    figure = json.loads((reference / "spectrum.json").read_text())
    figure["data"][1]["name"] = "smooth"
    figure["layout"]["template"] = {"changed": "themes are not compared"}
    (reference / "spectrum.json").write_text(json.dumps(figure))
    report = run_tests(project, only=["example"], workdir=project.parent / "runs")
    text = report.format()
    assert not report.ok
    assert "corrected.npy: 3 of 603 values differ beyond tolerance (rel 1e-06, abs 1e-09); largest at [1, " in text
    assert "report.txt: text differs" in text and "-points   201" in text and "+samples   201" in text
    assert 'spectrum.json /data/1/name: expected "smooth", got "smoothed"' in text
    assert "template" not in text


def test_hdf5_datasets_and_attributes_are_compared(tmp_path: Path) -> None:
    import h5py

    for name, value, unit in (("expected.h5", 1.0, "mm"), ("actual.h5", 1.001, "um")):
        with h5py.File(tmp_path / name, "w") as fh:
            fh.create_dataset("entry/signal", data=np.full((2, 3), value)).attrs["unit"] = unit
    diffs = compare_file("hdf5", tmp_path / "expected.h5", tmp_path / "actual.h5", "recon.h5",
                         lambda where: Tolerance(rel=1e-6, abs=0))
    assert diffs == [
        ("recon.h5 /entry/signal: 6 of 6 values differ beyond tolerance (rel 1e-06, abs 0); "
         "largest at [0, 0]: expected 1, got 1.001"),
        'recon.h5 /entry/signal@unit: expected "mm", got "um"',
    ]
    assert compare_file("hdf5", tmp_path / "expected.h5", tmp_path / "actual.h5", "recon.h5",
                        lambda where: None if where.endswith("@unit") else Tolerance(rel=1e-2)) == []


def test_update_rewrites_the_expectations_and_keeps_tolerances(project: Path, cli) -> None:
    def spoil(document):
        document["cases"]["example"]["result"]["area"] = 1.0
        document["cases"]["example"]["tolerance"] = {"rel": 1e-4}
        document["cases"]["gone"] = {"status": "succeeded", "result": {}, "files": {}}

    _edit_json(project / "tests" / "expected.json", spoil)
    assert cli.invoke(hicli, ["test", str(project), "-o", str(project.parent / "runs")]).exit_code == 1
    result = cli.invoke(hicli, ["test", str(project), "--update"])
    assert result.exit_code == 0, result.output
    assert "recorded 2 of 2 case(s)" in result.output
    document = json.loads((project / "tests" / "expected.json").read_text())
    assert document["cases"]["example"]["result"]["area"] == pytest.approx(4.6449, abs=1e-3)
    assert document["cases"]["example"]["tolerance"] == {"rel": 1e-4}
    assert "gone" not in document["cases"]
    assert cli.invoke(hicli, ["test", str(project)]).exit_code == 0


def test_a_crashing_plugin_exits_2_with_the_reason(project: Path, cli) -> None:
    plugin_py = project / NAME / "plugin.py"
    plugin_py.write_text(plugin_py.read_text().replace(
        '    x, y = _read_spectrum(ctx.input("spectrum"))', '    raise RuntimeError("boom")'))
    result = cli.invoke(hicli, ["test", str(project), "-o", str(project.parent / "runs")])
    assert result.exit_code == 2, result.output
    assert "status: expected succeeded, got failed: RuntimeError: boom" in result.output
    assert "log.txt (last lines):" in result.output


def test_a_folder_without_exampledata_or_cases_is_explained(plugin_copy, cli) -> None:
    folder = plugin_copy("basic-area")
    result = cli.invoke(hicli, ["test", str(folder)])
    assert result.exit_code == 1
    assert "has no exampleData" in result.output or "cannot be run" in result.output


# --------------------------------------------------------------------------- hicli preview


def test_preview_hands_the_plugin_folder_to_the_preview_server(rendered: Path, cli, monkeypatch) -> None:
    calls = []
    fake = types.ModuleType("dash_app.preview")
    fake.serve_preview = lambda folder, host, port: calls.append((folder, host, port))
    monkeypatch.setitem(sys.modules, "dash_app.preview", fake)
    result = cli.invoke(hicli, ["preview", str(rendered), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert calls == [((rendered / NAME).resolve(), "127.0.0.1", 8123)]


def test_preview_without_the_page_says_what_is_missing(rendered: Path, cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dash_app.preview", None)
    result = cli.invoke(hicli, ["preview", str(rendered)])
    assert result.exit_code == 1
    assert "preview page is not available" in result.output and "hicli test" in result.output
