"""Where input links become files: the one place that turns ``data.<id>`` links into paths.

Locally (``hicli run``, no ``access``) a link is any path the user can read: relative to the
working folder, then to the plugin folder. In the service (``access`` given) a link is
confined to what that user may read:

(a) the owner's uploads: ``upload:<id>``, or a path inside an upload folder the user owns;
(b) files inside the plugin folder (its examples);
(c) for admins only, absolute paths under a configured data root (``HISCI_DATA_ROOTS``).

Everything else is an InputError (422) naming the input. Symlinks are resolved before the
check, so a link cannot leave an allowed folder through one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    from .plugin import Plugin

UPLOAD_PREFIX = "upload:"
FILE_WIDGETS = ("cloud-file", "hiplot-textarea")


@dataclass(frozen=True)
class InputAccess:
    """What one service user may read as job inputs.

    Attributes
    ----------
    upload_path
        ``upload_id -> Path`` of the stored file; raises InputError when the user does not own it.
    owns_upload_folder
        ``folder -> bool``: True when the user owns the upload stored in that folder.
    uploads_dir
        The folder holding every upload (``<data dir>/uploads``).
    admin
        Admins may also name absolute paths under ``data_roots``.
    data_roots
        Configured roots (resolved); none by default.
    """

    upload_path: Callable[[str], Path]
    owns_upload_folder: Callable[[Path], bool]
    uploads_dir: Path
    admin: bool = False
    data_roots: tuple[Path, ...] = field(default_factory=tuple)


def _refuse(name: str, link: Any, why: str, hint: str) -> InputError:
    return InputError(f"input '{name}': {why}", pointer=f"/data/{name}", given=link, hint=hint)


def _inside(path: Path, folder: Path) -> bool:
    folder = folder.resolve()
    return path == folder or folder in path.parents


def resolve_input_link(plugin: Plugin, name: str, link: Any, access: InputAccess | None = None,
                       base: Path | None = None) -> Path:
    """The existing file that input ``name``'s ``link`` names, confined by ``access``.

    Parameters
    ----------
    plugin
        The plugin the job runs (its folder holds example files).
    name
        The input id (``data.<name>``), named in errors.
    link
        What the request gave: a path or ``upload:<id>``.
    access
        The service user's rights; None for a local run (any readable path).
    base
        Local runs: the folder relative paths start from (default: the working folder).

    Returns
    -------
    Path
        Resolved (symlinks followed).

    Raises
    ------
    InputError
        Not a string, a NUL in it, no such file, or (with ``access``) outside what the user may read.
    """
    hint = "upload the file (POST /api/v1/uploads) and use link 'upload:<id>'"
    if not isinstance(link, str):
        raise _refuse(name, link, f"a link must be a string, not {type(link).__name__}", hint)
    if "\x00" in link:
        raise _refuse(name, link, "a link must not contain a NUL character", hint)
    if access is None:
        return _find_local(plugin, name, link, base)
    if link.startswith(UPLOAD_PREFIX):
        return access.upload_path(link[len(UPLOAD_PREFIX):]).resolve()
    given = Path(link)
    candidate = (given if given.is_absolute() else plugin.folder / given).resolve()
    allowed = (
        _inside(candidate, plugin.folder)
        or (_inside(candidate, access.uploads_dir) and candidate.parent != access.uploads_dir.resolve()
            and access.owns_upload_folder(_upload_folder(candidate, access.uploads_dir)))
        or (access.admin and given.is_absolute() and any(_inside(candidate, r) for r in access.data_roots))
    )
    if not allowed:
        raise _refuse(name, link, f"{link!r} is not an upload of yours or a file of the plugin", hint
                      + (" (admins: or a path under HISCI_DATA_ROOTS)" if access.admin else ""))
    if not candidate.is_file():
        raise _refuse(name, link, f"file not found: {link}", hint)
    return candidate


def _upload_folder(path: Path, uploads_dir: Path) -> Path:
    root = uploads_dir.resolve()
    return root / path.relative_to(root).parts[0]


def _find_local(plugin: Plugin, name: str, link: str, base: Path | None) -> Path:
    path = Path(link).expanduser()
    tries = [path] if path.is_absolute() else [(base or Path.cwd()) / path, plugin.folder / path]
    for candidate in tries:
        if candidate.exists():
            return candidate.resolve()
    raise InputError(f"input '{name}': file not found: {link}", file=link, pointer=f"/data/{name}",
                     given=link, hint="check the path (relative paths start from the current folder)")


def input_links(params: dict[str, Any], name: str) -> tuple[list[Any], bool]:
    """``(links, single)`` of ``data.<name>`` (its ``link``, else Hiplot's ``value``)."""
    entry = (params.get("data") or {}).get(name)
    if not isinstance(entry, dict):
        return [], True
    links = entry.get("link") or entry.get("value") or []
    if isinstance(links, list):
        return [link for link in links if link not in (None, "")], False
    return [links], True


def resolve_inputs(plugin: Plugin, params: dict[str, Any], base: Path | None = None,
                   access: InputAccess | None = None) -> dict[str, list[Path]]:
    """Turn the file inputs' links into existing paths (``{input id: [Path, ...]}``).

    Every link goes through :func:`resolve_input_link`; with ``access`` the service's
    confinement applies. Raises InputError naming the first bad input.
    """
    resolved: dict[str, list[Path]] = {}
    for name, widget in plugin.ui.data.items():
        if widget.type not in FILE_WIDGETS:
            continue
        links, _ = input_links(params, name)
        paths = [resolve_input_link(plugin, name, link, access, base) for link in links]
        if paths:
            resolved[name] = paths
    return resolved


def pin_inputs(params: dict[str, Any], files: dict[str, list[Path]]) -> dict[str, Any]:
    """``params`` with each resolved input's ``link`` (and ``value``) replaced by its paths,
    so the worker reads exactly the files that were checked."""
    for name, paths in files.items():
        entry = params["data"][name]
        _, single = input_links(params, name)
        links = str(paths[0]) if single else [str(p) for p in paths]
        entry["link"] = links
        if entry.get("value"):
            entry["value"] = links
    return params
