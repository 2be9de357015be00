"""hicli list, show, validate."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hisci import Registry
from hisci.discovery import is_plugin_folder
from hisci.errors import HisciError
from hisci.plugin import load_plugin

from .errors import handle_errors


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--lang", default="en", type=click.Choice(["en", "zh_cn"]))
@handle_errors
def list_cmd(as_json: bool, lang: str) -> None:
    """List the plugins (and the invalid ones, with why)."""
    registry = Registry.discover()
    if as_json:
        click.echo(json.dumps(registry.as_json(lang), indent=2, ensure_ascii=False))
        return
    for plugin in sorted(registry, key=lambda p: p.id):
        card = plugin.summary(lang)
        where = card["queue"] or "-"
        mark = f"  [{len(plugin.warnings)} warning(s): hicli validate {plugin.folder}]" if plugin.warnings else ""
        click.echo(f"{plugin.id:<22} {card['version']:<8} {where:<4} {card['name']}{mark}")
    for rejected in registry.problems:
        click.echo(f"{rejected.id:<22} INVALID  {rejected.error.message} "
                   f"(hicli validate {rejected.folder})", err=True)


@click.command("show")
@click.argument("plugin_id")
@click.option("--json", "as_json", is_flag=True, help="Print the card and parameter schema as JSON.")
@click.option("--lang", default="en", type=click.Choice(["en", "zh_cn"]))
@handle_errors
def show_cmd(plugin_id: str, as_json: bool, lang: str) -> None:
    """Show a plugin's card and its parameters with defaults and constraints."""
    registry = Registry.discover()
    plugin = registry.get(plugin_id)
    schema = plugin.parameter_schema()
    if as_json:
        click.echo(json.dumps({"plugin": plugin.summary(lang), "schema": schema}, indent=2,
                              ensure_ascii=False))
        return
    card = plugin.summary(lang)
    click.echo(f"{card['name']}  ({plugin.id} {card['version']}, {plugin.source})")
    click.echo(f"  {card['intro']}")
    if card["citation"]:
        click.echo(f"  cite: {card['citation']}")
    click.echo("inputs:")
    for key, widget in plugin.ui.data.items():
        flag = "required" if widget.required else "optional"
        exts = f" [{', '.join(widget.exts)}]" if widget.exts else ""
        click.echo(f"  {key:<20} {widget.type:<16} {flag}{exts}")
    click.echo("parameters (extra):")
    for key, prop in schema["properties"]["extra"]["properties"].items():
        click.echo(f"  {key:<20} default={json.dumps(prop.get('default'))}  {_constraint(prop)}")
    if plugin.is_workflow:
        click.echo("steps:")
        for sid, step in plugin.workflow.steps.items():
            after = ", ".join(step.upstream)
            click.echo(f"  {sid:<20} {step.plugin:<20} {'after ' + after if after else ''}".rstrip())
    from hisci.models.meta import localize
    from hisci.workflow.graph import plugin_outputs

    outputs = plugin_outputs(plugin, registry)
    if outputs:
        click.echo("outputs:")
        for name, out in outputs.items():
            click.echo(f"  {name:<20} {out.glob:<20} {out.type or '':<16} {localize(out.description, lang)}".rstrip())


def _constraint(prop: dict) -> str:
    if "enum" in prop:
        return "one of " + ", ".join(map(str, prop["enum"]))
    if prop.get("type") == "array" and "enum" in prop.get("items", {}):
        return "list of " + ", ".join(map(str, prop["items"]["enum"]))
    parts = []
    if "minimum" in prop or "maximum" in prop:
        parts.append(f"in [{prop.get('minimum', '-inf')}, {prop.get('maximum', 'inf')}]")
    kind = prop.get("type") or ("boolean" if "anyOf" in prop else "")
    return " ".join([str(kind)] + parts)


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat warnings (quirks Hiplot tolerates) as errors: exit 1.")
@handle_errors
def validate_cmd(paths: tuple[Path, ...], strict: bool) -> None:
    """Validate plugin folders (or folders of them); print every problem and warning.

    A workflow folder's graph is checked against the discovered plugins too.
    Exit 1 if a folder is invalid (or, with --strict, has warnings).
    """
    failed = warned = 0
    registry = None
    for folder in _plugin_folders(paths):
        try:
            plugin = load_plugin(folder)
            if plugin.is_workflow:
                registry = registry or Registry.discover()
                check_workflow(plugin, registry)
        except HisciError as err:
            failed += 1
            click.echo(f"invalid {folder.name} ({folder}):")
            for problem in err.problems:
                click.echo(f"  - {problem}")
            continue
        warned += bool(plugin.warnings)
        click.echo(f"{'warn' if plugin.warnings else 'ok':<7} {plugin.id} ({folder})")
        for problem in plugin.warnings:
            click.echo(f"  ~ {problem}")
    if failed or (strict and warned):
        raise SystemExit(1)


def check_workflow(plugin, registry) -> None:
    """Raise PluginLoadError with the graph problems of a workflow folder."""
    from hisci.errors import PluginLoadError
    from hisci.workflow.graph import RegistryView, check

    problems = check(plugin, RegistryView(registry, {plugin.id: plugin}))
    if problems:
        raise PluginLoadError(problems, plugin_id=plugin.id, summary=f"workflow '{plugin.id}' is invalid")


def _plugin_folders(paths: tuple[Path, ...]) -> list[Path]:
    folders = []
    for path in paths:
        if not path.exists():
            raise click.BadParameter(f"{path} does not exist", param_hint="PATHS")
        if path.is_dir() and not is_plugin_folder(path) and any(is_plugin_folder(p) for p in path.iterdir()):
            folders += sorted(p for p in path.iterdir() if is_plugin_folder(p))
        elif path.is_dir():
            folders.append(path)
        elif path.name in ("meta.json", "data.json", "ui.json"):
            folders.append(path.parent)
    return folders
