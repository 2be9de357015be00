"""hicli new, test, preview: the authoring kit (plugin-template/, hisci.testing, the preview page)."""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import keyword
import re
import shutil
import string
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import click

from hisci.errors import HisciError, InputError, PluginLoadError
from hisci.plugin import load_plugin

from .errors import EXIT_FAILED, EXIT_INVALID, handle_errors

NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
#: Template files that are never copied.
SKIP = {"__pycache__", ".pytest_cache"}
#: Renamed on the way out: the plugin's package folder and the dot-files.
RENAME = {"__plugin__": "{name}", "gitignore": ".gitignore"}
#: Files where a substituted value must be escaped as a JSON/TOML string.
QUOTED_SUFFIXES = (".json", ".toml")


# --------------------------------------------------------------------------- new


def template_root(override: Path | None = None) -> Path:
    """The plugin template: ``--template``, else the ``hisci.plugin_template`` package
    (plugin-template/ in the source tree, shipped in the wheel)."""
    if override is not None:
        return Path(override)
    try:
        return Path(str(resources.files("hisci.plugin_template")))
    except ModuleNotFoundError:
        raise InputError("the plugin template (package hisci.plugin_template) is not installed",
                         hint="reinstall hisci (pip install -e . in a checkout), or pass --template DIR") from None


def placeholders(name: str, title: str, author: str, email: str, gpu: str, module: str,
                 intro: str) -> dict[str, str]:
    """The values a template may use; ``*_json`` variants are escaped for JSON/TOML strings."""
    today = _dt.date.today()
    values = {
        "name": name, "title": title, "author": author, "email": email, "intro": intro,
        "gpu": gpu, "queue": "gpu" if gpu == "required" else "cpu", "module": module,
        "dist_name": "hisci-" + name.replace("_", "-"), "today": today.isoformat(),
        "year": str(today.year),
    }
    for key in ("title", "author", "email", "intro"):
        values[f"{key}_json"] = json.dumps(values[key], ensure_ascii=False)[1:-1]
    return values


def render_template(template: Path, target: Path, values: dict[str, str]) -> list[Path]:
    """Copy ``template`` to ``target``, substituting ``$placeholders`` in every text file."""
    written = []
    for source in sorted(template.rglob("*")):
        rel = source.relative_to(template)
        if rel.parts == ("__init__.py",) or any(p in SKIP or p.endswith(".pyc") for p in rel.parts):
            continue
        parts = [RENAME.get(part, part).format(**values) for part in rel.parts]
        parts[-1] = parts[-1].removesuffix(".tmpl")  # a template that is not valid Python as it is
        destination = target.joinpath(*parts)
        if source.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        _render_file(source, destination, values, rel)
        written.append(destination)
    return written


def _render_file(source: Path, destination: Path, values: dict[str, str], rel: Path) -> None:
    try:
        text = source.read_text("utf-8")
    except UnicodeDecodeError:
        shutil.copyfile(source, destination)
        return
    quoted = source.suffix in QUOTED_SUFFIXES
    mapping = {k: (values.get(f"{k}_json", v) if quoted else v) for k, v in values.items()}
    try:
        destination.write_text(string.Template(text).substitute(mapping), encoding="utf-8")
    except (KeyError, ValueError) as exc:
        raise InputError(f"template file {rel}: unknown or malformed placeholder {exc}",
                         file=str(source), allowed=sorted(values),
                         hint="write a literal dollar sign as $$") from None


def check_name(name: str) -> str:
    if not NAME.match(name) or keyword.iskeyword(name):
        suggestion = re.sub(r"[^a-z0-9_]", "_", name.lower()).strip("_") or "my_plugin"
        if suggestion[0].isdigit():
            suggestion = "p_" + suggestion
        raise click.BadParameter(
            f"{name!r} is not usable: the plugin id is also its Python package name, so use lower-case "
            f"letters, digits and '_' (not starting with a digit). Try {suggestion!r}.", param_hint="NAME")
    if name in sys.stdlib_module_names or name in ("hisci", "hicli", "dash_app", "tests"):
        raise click.BadParameter(f"{name!r} would shadow the module of that name; choose another",
                                 param_hint="NAME")
    return name


@click.command("new")
@click.argument("name")
@click.option("--title", default="", help="Catalogue title (default: NAME in words).")
@click.option("--author", default="", help="Author name for meta.json, pyproject.toml and LICENSE.")
@click.option("--email", default="", help="Author e-mail for meta.json.")
@click.option("--gpu", type=click.Choice(["none", "optional", "required"]), default="none", show_default=True,
              help="Whether the plugin can use a GPU (required: its jobs go to the gpu queue).")
@click.option("--module", "hiplot_module", default="community", show_default=True,
              help="Hiplot module (catalogue section) in data.json.")
@click.option("--from-function", "function", metavar="MODULE:FUNCTION",
              help="Make data.json, ui.json and plugin.py from a typed, documented Python function.")
@click.option("-o", "--output", "parent", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder in which the new plugin project is made.")
@click.option("--template", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Another template folder (default: the one shipped with hisci).")
@click.option("--no-record", is_flag=True, help="Do not run the example to record tests/expected.json.")
@handle_errors
def new_cmd(name: str, title: str, author: str, email: str, gpu: str, hiplot_module: str,
            function: str | None, parent: Path, template: Path | None, no_record: bool) -> None:
    """Make a new plugin project NAME: a pip-installable package whose folder NAME/NAME is the plugin.

    \b
    Then:  hicli validate NAME   hicli test NAME   hicli preview NAME   pip install ./NAME
    """
    check_name(name)
    target = parent / name
    if target.exists() and any(target.iterdir()):
        raise click.BadParameter(f"{target} already exists and is not empty", param_hint="NAME")
    spec = None
    if function:
        from hisci.from_function import describe_function, load_function

        module_part = function.rpartition(":")[0]
        spec = describe_function(load_function(function), tool=name, module=hiplot_module,
                                 import_from="" if module_part.endswith(".py") else module_part)
    title = title or (spec.title if spec else name.replace("_", " ").capitalize())
    intro = spec.intro if spec else f"{title}: find and measure the strongest peak of a spectrum"
    values = placeholders(name, title, author or "the author", email, gpu, hiplot_module, intro)
    render_template(template_root(template), target, values)
    if spec:
        from hisci.from_function import write_function_plugin

        write_function_plugin(spec, target, values)
    plugin = _validate_new(target / name)
    click.echo(f"created {target} (plugin '{plugin.id}', package {values['dist_name']})")
    for note in spec.notes if spec else []:
        click.echo(f"  note: {note}")
    if not no_record:
        _record_expectations(target)
    local = target if target.is_absolute() else f"./{target.as_posix()}"  # not a PyPI name
    click.echo(f"next:  hicli test {target}   hicli preview {target}   pip install {local}")


def _validate_new(folder: Path) -> Any:
    try:
        return load_plugin(folder)
    except PluginLoadError as err:
        click.echo(f"error: the new plugin in {folder} does not validate (with --from-function: check "
                   f"the function's defaults against its bounds and choices):\n{err}", err=True)
        raise SystemExit(EXIT_INVALID) from None


def _record_expectations(project: Path) -> None:
    from hisci.testing import run_tests

    try:
        report = run_tests(project, update=True)
    except HisciError as err:
        click.echo(f"  expectations not recorded: {err}", err=True)
        return
    click.echo(("recorded " if report.ok else "could not record ") + f"{report.expectations}")
    if not report.ok:
        click.echo(report.format(), err=True)


# --------------------------------------------------------------------------- test


@click.command("test")
@click.argument("path", type=click.Path(exists=True, path_type=Path), default=Path("."))
@click.option("--update", is_flag=True, help="Rewrite the expectations from this run (keeps tolerances).")
@click.option("--case", "cases", multiple=True, help="Run only this case (repeatable).")
@click.option("-o", "--output", "workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the outputs here (default: a temporary folder, kept only on failure).")
@handle_errors
def test_cmd(path: Path, update: bool, cases: tuple[str, ...], workdir: Path | None) -> None:
    """Run the examples of the plugin at PATH and compare them with tests/expected.json.

    Exit 0 when every case matches, 1 when outputs differ (or the plugin is invalid),
    2 when a case that should succeed failed to run.
    """
    from hisci.testing import run_tests

    report = run_tests(path, update=update, workdir=workdir, only=list(cases) or None)
    report.update_hint = f"hicli test {path} --update"
    click.echo(report.format())
    if not report.ok:
        raise SystemExit(EXIT_FAILED if report.crashed else EXIT_INVALID)


# --------------------------------------------------------------------------- preview


@click.command("preview")
@click.argument("path", type=click.Path(exists=True, path_type=Path), default=Path("."))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@handle_errors
def preview_cmd(path: Path, host: str, port: int) -> None:
    """Open the preview page for the plugin at PATH; it reloads when its files change."""
    from hisci.testing import find_plugin_folder

    folder = find_plugin_folder(path)
    try:
        serve = importlib.import_module("dash_app.preview").serve_preview
    except (ImportError, AttributeError) as exc:
        missing = getattr(exc, "name", None) or "dash_app.preview.serve_preview"
        cause = ("this hisci has no preview server" if missing.startswith("dash_app")
                 else "it needs the web extra: pip install 'hisci[web]'")
        click.echo(f"error: the preview page is not available ({missing} is missing; {cause}). "
                   f"Meanwhile, hicli validate {path} and hicli test {path} check the plugin.", err=True)
        raise SystemExit(EXIT_INVALID) from None
    click.echo(f"preview of {folder.name} on http://{host}:{port}/ (Ctrl+C stops)", err=True)
    serve(folder, host, port)
