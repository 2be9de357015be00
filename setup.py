"""Maps the source folders onto import names (see ARCHITECTURE.md, "Layout")."""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE_DIRS = {
    "hisci": "core",
    "hisci.schemas": "schemas",
    "hisci.builtin_plugins": "plugins",
    "hisci.plugin_template": "plugin-template",
    "hicli": "hicli",
    "dash_app": "dash_app",
}


def _packages() -> list[str]:
    names = []
    for name, folder in PACKAGE_DIRS.items():
        if not Path(folder).is_dir():
            continue
        names.append(name)
        names += [f"{name}.{sub}" for sub in find_packages(folder)]
    return names


setup(packages=_packages(), package_dir={k: v for k, v in PACKAGE_DIRS.items() if Path(v).is_dir()})
