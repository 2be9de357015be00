"""hicli db rebuild: remake the job index from the job folders."""

from __future__ import annotations

import click

from hisci.settings import Settings

from .errors import handle_errors


@click.group("db")
def db_group() -> None:
    """The job index (SQLite in the data dir, or HISCI_DATABASE_URL)."""


@db_group.command("rebuild")
@click.option("--data-dir", default=None, help="The service's data directory (HISCI_DATA_DIR).")
@handle_errors
def rebuild(data_dir: str | None) -> None:
    """Empty the job index and refill it from jobs/<id>/job.json; lists unreadable folders."""
    from hisci.jobs.book import JobBook

    settings = Settings.from_env(data_dir=data_dir)
    report = JobBook(settings.data_dir, settings.database_url).rebuild()
    for line in report.unreadable:
        click.echo(f"unreadable: {line}", err=True)
    click.echo(f"indexed {report.indexed} jobs; {len(report.unreadable)} folders unreadable")
