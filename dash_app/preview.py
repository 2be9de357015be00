"""`hicli preview PATH`: the preview/debug page bound to one plugin folder, reloading on edits.

The page is the web app's preview page (pages/preview.py); here it gets a registry holding
just this folder and a watcher that pushes the JSON files into the editors whenever a file
of the folder changes on disk (meta/data/ui JSON or any .py), so the problems, the form and
"Run example" follow the author's editor without a page reload.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import dash

from hisci import HisciError, Registry, Settings, load_plugin

WATCHED_SUFFIXES = (".json", ".py")


def folder_signature(folder: Path) -> str:
    """Changes whenever a watched file of the folder is written, added or removed."""
    parts = []
    for path in sorted(folder.rglob("*")):
        if path.suffix in WATCHED_SUFFIXES and path.is_file() and "__pycache__" not in path.parts:
            stat = path.stat()
            parts.append(f"{path.relative_to(folder)}:{stat.st_mtime_ns}:{stat.st_size}")
    return "|".join(parts)


def forget_modules(plugin_id: str, package: str | None) -> None:
    """Drop the plugin's imported modules so "Run example" runs the code as it is now."""
    prefixes = tuple(p for p in (package, f"hisci_plugin_{plugin_id.replace('-', '_')}") if p)
    for name in [n for n in sys.modules if n.startswith(prefixes)]:
        del sys.modules[name]


def registry_of(folder: Path) -> Registry:
    """A registry holding this folder's plugin, valid or not (the page shows the problems)."""
    from .pages.preview import _lenient

    try:
        plugin = load_plugin(folder, "preview")
    except HisciError:
        plugin = _lenient(folder, folder.name)
    return Registry({plugin.id: plugin} if plugin else {}, ())


def create_preview_app(folder: Path, settings: Settings | None = None) -> dash.Dash:
    from .app import create_dash_app

    folder = Path(folder).resolve()
    app = create_dash_app(settings or Settings.from_env(), registry_of(folder), service=None)
    app.hisci_env.watch_folder = folder  # type: ignore[attr-defined]
    return app


def serve_preview(folder: Path, host: str = "127.0.0.1", port: int = 8050) -> None:
    """Serve the preview page of ``folder`` until interrupted."""
    app = create_preview_app(folder)
    print(f"open http://{host}:{port}/preview?plugin={Path(folder).resolve().name}", file=sys.stderr)
    app.run(host=host, port=port, debug=False)


def watched_texts(folder: Path) -> dict[str, Any]:
    return {name: (folder / name).read_text("utf-8") if (folder / name).exists() else ""
            for name in ("meta.json", "data.json", "ui.json", "workflow.json")}
