"""`pip install .` (a wheel, not only -e) ships the schemas, plugin JSON and examples."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


SOURCES = ("core", "schemas", "plugins", "hicli", "dash_app", "plugin-template", "setup.py",
           "pyproject.toml", "README.md")


def test_wheel_carries_package_data_and_runs_from_it(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy, so the build/ folder never races with another build
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True)
    (wheel,) = (tmp_path / "dist").glob("hisci-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("hisci/schemas/ui.schema.json", "hisci/builtin_plugins/table_plot/meta.json",
                     "hisci/builtin_plugins/table_plot/example/data.txt", "hicli/main.py",
                     "hisci/jobs/migrations/env.py", "hisci/jobs/migrations/versions/0001_jobs_and_users.py"):
        assert expected in names
    assert not any(n.startswith(("core/", "tests/")) for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import hisci, sys; from hisci import Registry, Settings, run_plugin; "
            "r = Registry.discover(Settings(entry_points=False)); p = r.get('table_plot'); "
            "assert str(p.folder).startswith(sys.argv[1]), p.folder; "
            "res = run_plugin(p, example=True, output_dir=sys.argv[2]); print(res.status, res.summary['rows']); "
            "import pathlib, hisci.jobs.index as ix; from hisci.jobs.book import JobBook; "
            "assert ix.__file__.startswith(sys.argv[1]); JobBook(pathlib.Path(sys.argv[2]) / 'db'); print('migrated')")
    out = subprocess.run([sys.executable, "-c", code, str(site), str(tmp_path / "run")],
                         capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["succeeded", "36", "migrated"]
