"""hicli serve (embedded Redis + workers + API + web on one port) and hicli worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from hisci import Registry, Settings
from hisci.gpu import gpu_available
from hisci.processes import die_with_parent

from .errors import handle_errors


class ServeStop(SystemExit):
    """SIGTERM in ``hicli serve``: unwinds to the cleanup (uvicorn re-raises the signal after
    its own graceful shutdown, which would otherwise kill serve before its children)."""


def _on_sigterm(signum: int, _frame: object) -> None:
    raise ServeStop(128 + signum)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8321, show_default=True, type=int)
@click.option("--data-dir", default=None, help="Where jobs, uploads and users live (default ./hisci-data).")
@click.option("--workers", default=1, show_default=True, help="CPU workers to start.")
@click.option("--api-workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="API (uvicorn) processes; 2 or more on a multi-core host for more requests/s.")
@click.option("--max-restarts", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="Restarts per minute of one worker or the embedded Redis before serve stops trying "
                   "for the rest of that minute.")
@click.option("--https", is_flag=True, help="Served over https (behind a TLS proxy): the login cookie gets Secure.")
@handle_errors
def serve_cmd(host: str, port: int, data_dir: str | None, workers: int, api_workers: int,
              max_restarts: int, https: bool) -> None:
    """Start the service. Without HISCI_REDIS_URL a private redis-server is started.

    Dead workers and a dead embedded Redis are restarted (see GET /api/v1/health,
    "supervisor"); SIGTERM stops workers first, which mark a running job "failed:
    interrupted by shutdown" (queued again on the next start when the plugin allows retries).
    """
    import uvicorn

    if https:
        os.environ["HISCI_HTTPS"] = "1"

    from hisci.api import create_app
    from hisci.jobs import EmbeddedRedis, JobService, Reaper
    from hisci.jobs.redis_server import redacted
    from hisci.jobs.supervisor import Supervisor
    from hisci.threads import THREADS_ENV, share_per_worker

    settings = Settings.from_env(data_dir=Path(data_dir) if data_dir else None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    supervisor = Supervisor(settings.data_dir, max_per_minute=max_restarts)
    reaper = None
    try:
        if not settings.redis_url:
            redis = EmbeddedRedis(settings.data_dir / "redis")
            supervisor.add("redis", lambda: redis.start().process, stop_timeout=5)
            settings = settings.model_copy(update={"redis_url": redis.url})
        env = {**os.environ, "HISCI_REDIS_URL": settings.redis_url,
               "HISCI_DATA_DIR": str(settings.data_dir.resolve())}
        if workers > 1 and not os.environ.get(THREADS_ENV):
            env[THREADS_ENV] = str(share_per_worker(workers))  # each worker its share of the cores
        worker = [sys.executable, "-m", "hicli.main", "worker"]
        for number in range(max(workers, 0)):
            supervisor.add(f"worker-cpu-{number + 1}", _spawn([*worker, "--queue", "cpu"], env))
        if gpu_available():
            supervisor.add("worker-gpu-1", _spawn([*worker, "--queue", "gpu,cpu", "--gpu"], env))
        supervisor.start()
        registry = Registry.discover(settings)
        service = JobService(settings, registry)
        token = service.users.add("admin", admin=True, replace=True)
        token_file = settings.data_dir / "admin.token"
        token_file.write_text(token + "\n")
        os.chmod(token_file, 0o600)
        reaper = Reaper(settings, service.redis, service.book)
        for job_id, action in reaper.resume_interrupted():
            click.echo(f"job {job_id}: {action} (interrupted by the last shutdown)")
        reaper.sweep()
        reaper.start()
        url = f"http://{host}:{port}"
        click.echo(f"hisci serving {len(registry)} plugins at {url}  (API {url}/api/v1, docs {url}/docs)")
        click.echo(f"admin token: {token}   (also in {token_file})")
        click.echo(f"redis: {redacted(settings.redis_url)}   data: {settings.data_dir.resolve()}")
        for problem in registry.problems:
            click.echo(f"invalid plugin {problem.id}: {problem.error.message}", err=True)
        if api_workers > 1:
            os.environ.update(HISCI_REDIS_URL=settings.redis_url, HISCI_DATA_DIR=str(settings.data_dir.resolve()))
            uvicorn.run("hicli.cmd_serve:app_from_env", factory=True, workers=api_workers,
                        host=host, port=port, log_level="warning")
        else:
            app = create_app(settings, registry, service, with_reaper=False)
            _mount_web(app, settings, registry, service)
            uvicorn.run(app, host=host, port=port, log_level="warning")
    except ServeStop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
        if reaper is not None:
            reaper.stop()
        supervisor.stop()
        signal.signal(signal.SIGTERM, previous)
        click.echo("hisci stopped")


def _spawn(argv: list[str], env: dict[str, str]):
    """A start function for the supervisor: the worker dies with serve (kill -9 included)."""
    return lambda: subprocess.Popen(argv, env=env, preexec_fn=die_with_parent())


def app_from_env():
    """The app of one ``hicli serve --api-workers N`` process (uvicorn's factory): settings
    from the environment serve set, the web app mounted, no reaper (serve runs the one)."""
    from hisci.api import create_app

    settings = Settings.from_env()
    registry = Registry.discover(settings)
    app = create_app(settings, registry, with_reaper=False)
    _mount_web(app, settings, registry, app.state.service)
    return app


def _mount_web(app, settings: Settings, registry: Registry, service) -> None:
    try:
        from dash_app import mount_web
    except ImportError as exc:  # the web extra is not installed
        click.echo(f"web app not mounted ({exc}); the API serves /api/v1", err=True)
        return
    mount_web(app, settings, registry, service)


@click.command("worker")
@click.option("--queue", "queues", default="cpu", show_default=True, help="Comma-separated queues: cpu, gpu.")
@click.option("--gpu", is_flag=True, help="Serve the gpu queue (checks cupy and a CUDA device first).")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--name", default=None, help="Worker name (default: host and pid).")
@click.option("--url", default=None, help="Join the service at URL: registers with --token and receives "
              "the Redis address, its credentials and the data dir.")
@click.option("--token", default=None, envvar="HISCI_WORKER_TOKEN",
              help="A worker token (hicli user add NAME --worker); or HISCI_WORKER_TOKEN.")
@click.option("--data-dir", "local_data_dir", default=None,
              help="Where the shared data dir is mounted on this host, if not at the service's path.")
@handle_errors
def worker_cmd(queues: str, gpu: bool, burst: bool, name: str | None, url: str | None, token: str | None,
               local_data_dir: str | None) -> None:
    """Run an RQ worker against HISCI_REDIS_URL and HISCI_DATA_DIR (or join with --url/--token)."""
    import os

    from hisci.jobs.worker import start_worker

    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in ("cpu", "gpu")]
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {', '.join(unknown)}; use cpu and/or gpu", param_hint="--queue")
    if url:
        from hisci.jobs.join import join_service

        join_service(url, token, names, gpu=gpu, local_data_dir=local_data_dir)
    elif token or local_data_dir:
        raise click.BadParameter("--token and --data-dir go with --url", param_hint="--url")
    start_worker(Settings.from_env(environ=os.environ), names, gpu=gpu, burst=burst, name=name)
