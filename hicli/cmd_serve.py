"""hicli serve (embedded Redis + workers + API + web on one port) and hicli worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from hisci import Registry, Settings
from hisci.gpu import gpu_available
from hisci.processes import die_with_parent

from .errors import handle_errors


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8321, show_default=True, type=int)
@click.option("--data-dir", default=None, help="Where jobs, uploads and users live (default ./hisci-data).")
@click.option("--workers", default=1, show_default=True, help="CPU workers to start.")
@click.option("--https", is_flag=True, help="Served over https (behind a TLS proxy): the login cookie gets Secure.")
@handle_errors
def serve_cmd(host: str, port: int, data_dir: str | None, workers: int, https: bool) -> None:
    """Start the service. Without HISCI_REDIS_URL a private redis-server is started."""
    import uvicorn

    if https:
        os.environ["HISCI_HTTPS"] = "1"

    from hisci.api import create_app
    from hisci.jobs import JobService
    from hisci.jobs.redis_server import redacted, start_embedded_redis

    settings = Settings.from_env(data_dir=Path(data_dir) if data_dir else None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    redis = None
    if not settings.redis_url:
        redis = start_embedded_redis(settings.data_dir)
        settings = settings.model_copy(update={"redis_url": redis.url})
    env = {**os.environ, "HISCI_REDIS_URL": settings.redis_url, "HISCI_DATA_DIR": str(settings.data_dir.resolve())}
    worker = [sys.executable, "-m", "hicli.main", "worker"]
    procs = [subprocess.Popen([*worker, "--queue", "cpu"], env=env, preexec_fn=die_with_parent())
             for _ in range(max(workers, 0))]
    if gpu_available():
        procs.append(subprocess.Popen([*worker, "--queue", "gpu,cpu", "--gpu"], env=env,
                                      preexec_fn=die_with_parent()))
    registry = Registry.discover(settings)
    service = JobService(settings, registry)
    token = service.users.add("admin", admin=True, replace=True)
    token_file = settings.data_dir / "admin.token"
    token_file.write_text(token + "\n")
    os.chmod(token_file, 0o600)
    url = f"http://{host}:{port}"
    click.echo(f"hisci serving {len(registry)} plugins at {url}  (API {url}/api/v1, docs {url}/docs)")
    click.echo(f"admin token: {token}   (also in {token_file})")
    click.echo(f"redis: {redacted(settings.redis_url)}   data: {settings.data_dir.resolve()}")
    for problem in registry.problems:
        click.echo(f"invalid plugin {problem.id}: {problem.error.message}", err=True)
    app = create_app(settings, registry, service)
    _mount_web(app, settings, registry, service)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if redis:
            redis.stop()


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
@handle_errors
def worker_cmd(queues: str, gpu: bool, burst: bool, name: str | None) -> None:
    """Run an RQ worker against HISCI_REDIS_URL and HISCI_DATA_DIR."""
    from hisci.jobs.worker import start_worker

    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in ("cpu", "gpu")]
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {', '.join(unknown)}; use cpu and/or gpu", param_hint="--queue")
    start_worker(Settings.from_env(), names, gpu=gpu, burst=burst, name=name)
