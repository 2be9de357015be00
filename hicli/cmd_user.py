"""hicli user add/list/revoke: manage the service's users in its data directory."""

from __future__ import annotations

import click

from hisci.jobs import UserStore
from hisci.settings import Settings

from .errors import handle_errors


def _store(data_dir: str | None) -> UserStore:
    settings = Settings.from_env(data_dir=data_dir)
    return UserStore.open(settings.data_dir, settings.database_url)


@click.group("user")
def user_group() -> None:
    """Users and their bearer tokens (stored hashed)."""


@user_group.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May see every job and reload the registry.")
@click.option("--worker", is_flag=True,
              help="A worker token: `hicli worker --url URL --token TOKEN` registers with it and "
                   "receives the Redis address and credentials (ordinary tokens never do).")
@click.option("--data-dir", default=None, help="The service's data directory (HISCI_DATA_DIR).")
@handle_errors
def add(name: str, admin: bool, worker: bool, data_dir: str | None) -> None:
    """Create a user; prints the token alone on stdout (shown once)."""
    if admin and worker:
        raise click.BadParameter("a token is either --admin or --worker", param_hint="--worker")
    token = _store(data_dir).add(name, admin=admin, worker=worker)
    click.echo(token)
    role = " (admin)" if admin else " (worker)" if worker else ""
    click.echo(f"user {name} added{role}; keep the token, it is not shown again", err=True)


@user_group.command("list")
@click.option("--data-dir", default=None)
@handle_errors
def list_users(data_dir: str | None) -> None:
    for user in _store(data_dir).list():
        click.echo(f"{user.name}{'  admin' if user.admin else ''}{'  worker' if user.worker else ''}")


@user_group.command("revoke")
@click.argument("name")
@click.option("--data-dir", default=None)
@handle_errors
def revoke(name: str, data_dir: str | None) -> None:
    _store(data_dir).revoke(name)
    click.echo(f"user {name} revoked", err=True)
