"""Issue 14 section 2: the embedded Redis needs a password, and a worker runs only hisci's
job function. The attacks first: a raw client without the password, then an `os.system`
job (JSON and pickle encoded) enqueued by a client that has the password."""

from __future__ import annotations

import stat

import pytest
import redis as redis_lib
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from hisci.jobs.redis_server import EmbeddedRedis, redacted, start_embedded_redis

from .conftest_service import wait_for

pytestmark = pytest.mark.redis


def test_raw_client_without_password_is_refused(redis_server: EmbeddedRedis) -> None:
    raw = redis_lib.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=2)
    with pytest.raises(redis_lib.exceptions.AuthenticationError):
        raw.ping()
    with pytest.raises(redis_lib.exceptions.AuthenticationError):
        raw.rpush("rq:queue:cpu", "x")
    wrong = redis_lib.Redis(host="127.0.0.1", port=redis_server.port, password="guess", socket_timeout=2)
    with pytest.raises(redis_lib.exceptions.AuthenticationError):
        wrong.ping()
    client = redis_lib.Redis.from_url(redis_server.url)
    assert client.ping() is True
    with pytest.raises(redis_lib.exceptions.ResponseError, match="unknown command"):
        client.config_set("dir", "/tmp")  # the classic write-a-file-through-Redis attack


def test_config_file_and_folder_are_private_and_restart_keeps_url(tmp_path) -> None:
    server = start_embedded_redis(tmp_path / "data")
    try:
        conf = tmp_path / "data" / "redis" / "redis.conf"
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600
        assert stat.S_IMODE(conf.parent.stat().st_mode) == 0o700
        text = conf.read_text()
        assert f"requirepass {server.password}" in text and "bind 127.0.0.1" in text
        assert len(server.password) >= 32
        # the password is not on redis-server's command line (readable by every local account)
        cmdline = open(f"/proc/{server.process.pid}/cmdline", "rb").read().decode()
        assert server.password not in cmdline
        url = server.url
        assert redacted(url) == f"redis://:***@127.0.0.1:{server.port}/0"
        server.stop()
        again = start_embedded_redis(tmp_path / "data")
        assert again.url == url
        again.stop()
    finally:
        server.stop()


@pytest.mark.parametrize("serializer", [JSONSerializer, None], ids=["json", "pickle"])
def test_worker_refuses_os_system_job(service_settings, redis_conn, start_worker, tmp_path, serializer) -> None:
    marker = tmp_path / "pwned"
    queue = Queue("cpu", connection=redis_conn, serializer=serializer)
    job = queue.enqueue("os.system", f"touch {marker}")
    worker = start_worker()
    reader = Job.fetch(job.id, connection=redis_conn, serializer=serializer) if serializer else None
    wait_for(lambda: redis_conn.zscore("rq:failed:cpu", job.id) is not None, timeout=30)
    # the worker takes the refused job off the intermediate queue just after failing it (a stop in between skips that)
    wait_for(lambda: redis_conn.llen("rq:queue:cpu:intermediate") == 0, timeout=5)
    assert not marker.exists()
    worker.stop()
    out = worker.process.stdout.read().decode()
    assert "refused RQ job" in out and job.id in out, out
    if serializer:
        assert "'os.system' is not hisci.jobs.worker.execute" in out
        reader.refresh()
        assert reader.get_status() == "failed"
        assert "refused by hisci worker" in (reader.latest_result().exc_string or "")
    else:
        assert "undecodable job data" in out
    assert redis_conn.llen("rq:queue:cpu:intermediate") == 0


def test_redis_url_with_password_and_tls_is_accepted_other_schemes_refused() -> None:
    from pydantic import ValidationError

    from hisci import Settings

    settings = Settings.from_env({"HISCI_REDIS_URL": "rediss://:s3cret@redis.example:6380/0"})
    pool = redis_lib.Redis.from_url(settings.redis_url).connection_pool
    assert pool.connection_class is redis_lib.connection.SSLConnection
    assert pool.connection_kwargs["password"] == "s3cret"
    assert redacted(settings.redis_url) == "rediss://:***@redis.example:6380/0"
    with pytest.raises(ValidationError, match="redis://, rediss:// or unix://"):
        Settings.from_env({"HISCI_REDIS_URL": "http://redis.example"})
