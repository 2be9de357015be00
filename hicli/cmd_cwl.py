"""hicli cwl export / import: CWL v1.2 for plugins and workflows."""

from __future__ import annotations

from pathlib import Path

import click

from hisci import Registry

from .errors import handle_errors


@click.group("cwl")
def cwl_group() -> None:
    """Export plugins and workflows as CWL v1.2; import a CWL Workflow of hisci tools."""


@cwl_group.command("export")
@click.argument("plugin_id")
@click.option("-o", "--output", "output_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for the .cwl files (created).")
@handle_errors
def export_cmd(plugin_id: str, output_dir: Path) -> None:
    """Write ID.cwl (a CommandLineTool, or a Workflow with one tool per step) into OUTPUT."""
    from hisci.workflow.cwl import export

    registry = Registry.discover()
    for path in export(registry.get(plugin_id), registry, output_dir):
        click.echo(str(path))


@cwl_group.command("import")
@click.argument("cwl_file", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output_dir", default=Path("."), show_default=True,
              type=click.Path(path_type=Path), help="Where the workflow folder is written.")
@click.option("--id", "plugin_id", default=None, help="Workflow id (folder name); default: the CWL id.")
@handle_errors
def import_cmd(cwl_file: Path, output_dir: Path, plugin_id: str | None) -> None:
    """Turn a CWL Workflow whose steps are hisci tools into a workflow folder (prints its path)."""
    from hisci.workflow.cwl import import_cwl

    from .cmd_plugins import check_workflow

    registry = Registry.discover()
    folder = import_cwl(cwl_file, output_dir, registry, plugin_id)
    from hisci.plugin import load_plugin

    check_workflow(load_plugin(folder), registry)
    click.echo(str(folder))
