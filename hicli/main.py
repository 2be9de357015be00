"""hicli entry point: Hiplot-compatible flags on the group, subcommands loaded lazily."""

from __future__ import annotations

import importlib
from typing import Any

import click

SUBCOMMANDS = {
    "list": "hicli.cmd_plugins:list_cmd",
    "show": "hicli.cmd_plugins:show_cmd",
    "validate": "hicli.cmd_plugins:validate_cmd",
    "run": "hicli.cmd_run:run_cmd",
    "new": "hicli.cmd_author:new_cmd",
    "test": "hicli.cmd_author:test_cmd",
    "preview": "hicli.cmd_author:preview_cmd",
    "serve": "hicli.cmd_serve:serve_cmd",
    "worker": "hicli.cmd_serve:worker_cmd",
    "submit": "hicli.cmd_jobs:submit_cmd",
    "status": "hicli.cmd_jobs:status_cmd",
    "logs": "hicli.cmd_jobs:logs_cmd",
    "fetch": "hicli.cmd_jobs:fetch_cmd",
    "cancel": "hicli.cmd_jobs:cancel_cmd",
    "retry": "hicli.cmd_jobs:retry_cmd",
    "jobs": "hicli.cmd_jobs:jobs_cmd",
    "reload": "hicli.cmd_jobs:reload_cmd",
    "user": "hicli.cmd_user:user_group",
    "cwl": "hicli.cmd_cwl:cwl_group",
    "db": "hicli.cmd_db:db_group",
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when it is used (fast `hicli --help`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in SUBCOMMANDS if self._available(name))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            raise click.UsageError(
                f"'hicli {name}' needs an optional part that is not installed ({exc.name}); "
                "install it with: pip install 'hisci[all]'") from None

    @staticmethod
    def _available(name: str) -> bool:
        module = SUBCOMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-i", "--inputFile", "input_file", default="", help="Hiplot: input file(s), comma-separated.")
@click.option("-c", "--confFile", "conf_file", default="", help="Hiplot: the plugin's data.json (or a params JSON).")
@click.option("-o", "--outputFilePrefix", "output_prefix", default="", help="Hiplot: output path prefix.")
@click.option("-t", "--tool", default="", help="Hiplot: tool (plugin id or data.json tool).")
@click.option("-m", "--module", default="", help="Hiplot: module (basic, advance, lightsource, ...).")
@click.option("-e", "--enableExample", "example", is_flag=True, help="Hiplot: apply exampleData.")
@click.option("-s", "--simple", is_flag=True, help="Hiplot: accepted for compatibility (no effect).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="hisci")
@click.pass_context
def cli(ctx: click.Context, debug: bool, **hiplot: Any) -> None:
    """hisci command line: list, show, validate and run plugins; talk to a hisci service.

    Hiplot habit: hicli -i data.txt -c data.json -t TOOL [-m MODULE] [-e] -o out/prefix
    """
    ctx.obj = {"debug": debug}
    if ctx.invoked_subcommand is not None:
        return
    if not hiplot["tool"]:
        click.echo(ctx.get_help())
        return
    from .cmd_run import hiplot_run

    ctx.invoke(hiplot_run, **hiplot)


if __name__ == "__main__":  # pragma: no cover
    cli()
