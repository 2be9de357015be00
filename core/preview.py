"""Preview runs of an edited plugin folder: its example inputs, a confined snapshot of the
folder, and one run of its example (the same for ``hicli preview``'s child process and the
service's preview jobs, :mod:`hisci.jobs.preview`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .errors import HisciError, InputError
from .plugin import Plugin

#: Files a snapshot never takes (caches that the run makes again).
SKIPPED = ("__pycache__",)


def example_inputs(plugin: Plugin) -> dict[str, list[str]]:
    """The example's input files, confined to the plugin folder.

    Pasted JSON must not make the server read its own files, so every ``data.<id>`` link of
    the example has to name a file inside the plugin folder; it is passed as an absolute
    path (the runner then never looks in the working directory).

    Raises
    ------
    HisciError
        naming the input (pointer ``/exampleData/config/data/<id>``) whose link is absolute,
        leaves the folder or names no file.
    """
    root = Path(os.path.abspath(plugin.folder))
    request = plugin.example_request() if plugin.params.examples else {}
    inputs: dict[str, list[str]] = {}
    for name, widget in plugin.ui.data.items():
        if widget.type not in ("cloud-file", "hiplot-textarea"):
            continue
        entry = (request.get("data") or {}).get(name)
        if not isinstance(entry, dict):
            continue
        links = entry.get("link") or entry.get("value") or []
        links = [links] if isinstance(links, str) else [x for x in links if isinstance(x, str)]
        paths = []
        for link in (x for x in links if x):
            path = Path(os.path.normpath(root / link))  # our own links to the base stay allowed
            if Path(link).is_absolute() or not path.is_relative_to(root) or not path.is_file():
                raise HisciError(f"example input '{name}' must be a file inside the plugin folder",
                                 pointer=f"/exampleData/config/data/{name}", given=link)
            paths.append(str(path))
        if paths:
            inputs[name] = paths
    return inputs


def snapshot(source: Path, dest: Path, allowed: tuple[Path, ...], max_bytes: int) -> int:
    """Copy the plugin folder ``source`` to ``dest`` as plain files; returns the bytes copied.

    A symlink is followed only when its target lies inside ``source`` or one of ``allowed``
    (the base plugin's folder); the copy holds no links, so nothing in it points out.

    Raises
    ------
    InputError
        a link that leads elsewhere, something that is not a file or folder, or more than
        ``max_bytes`` in all (``HISCI_PREVIEW_MAX_MB``); ``dest`` is removed again.
    """
    roots = tuple(Path(os.path.realpath(r)) for r in (source, *allowed))
    total = 0

    def copy(src: Path, to: Path) -> None:
        nonlocal total
        real = Path(os.path.realpath(src))
        if not any(real == r or real.is_relative_to(r) for r in roots):
            raise InputError(f"preview folder: {src.name} links outside the plugin folder", given=src.name,
                             hint="keep every file of the plugin inside its folder")
        if real.is_dir():
            to.mkdir(parents=True, exist_ok=True)
            for item in sorted(real.iterdir()):
                if item.name not in SKIPPED:
                    copy(item, to / item.name)
        elif real.is_file():
            total += real.stat().st_size
            if total > max_bytes:
                raise InputError(f"preview folder is larger than {max_bytes / 2**20:g} MB", given=total,
                                 hint="preview a smaller example, or raise HISCI_PREVIEW_MAX_MB")
            shutil.copyfile(real, to)
        else:
            raise InputError(f"preview folder: {src.name} is not a file or a folder", given=src.name)

    try:
        copy(Path(source), Path(dest))
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return total


def run_example(plugin: Plugin, output: Path, registry: Any = None, **run: Any) -> dict[str, Any]:
    """Run the example of ``plugin`` (a plugin or a workflow) into ``output``.

    ``registry`` holds the installed plugins a workflow's steps name (discovered when None);
    ``run`` goes on to :func:`hisci.run_plugin` (record, book, progress, ...).

    Returns
    -------
    dict
        ``{"status", "error", "summary", "figures"}``; figures relative to ``output``.
    """
    from .runner import run_plugin

    inputs = example_inputs(plugin)
    if plugin.is_workflow:  # its steps are the installed plugins; no step cache in a preview
        from .registry import Registry
        from .workflow.graph import RegistryView
        from .workflow.local import run_workflow

        result = run_workflow(plugin, example=True, inputs=inputs, output_dir=output,
                              registry=RegistryView(registry or Registry.discover(), {plugin.id: plugin}),
                              cache=None)
    else:
        result = run_plugin(plugin, example=True, inputs=inputs, output_dir=output, **run)
    return {"status": result.status, "error": result.error, "summary": result.summary,
            "figures": result.record.get("figures") or []}
