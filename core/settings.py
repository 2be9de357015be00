"""Settings: one object, built once (``Settings.from_env()``) and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

REDIS_SCHEMES = ("redis", "rediss", "unix")


class Settings(BaseModel):
    """Where hisci keeps data and finds plugins and Redis.

    Environment variables: ``HISCI_DATA_DIR``, ``HISCI_PLUGIN_PATH`` (os.pathsep-separated),
    ``HISCI_REDIS_URL`` (``redis://:PASSWORD@host:port/0``, ``rediss://`` for TLS, or ``unix://``), ``HISCI_NO_ENTRY_POINTS`` (1 to skip installed plugins),
    ``HISCI_DATA_ROOTS`` (os.pathsep-separated folders whose files admins may name as job
    inputs; none by default), ``HISCI_MAX_REQUEST_MB`` (JSON body cap, default 2),
    ``HISCI_NO_BUILTINS`` (1 to skip built-in plugins), ``HISCI_TRACE`` (1 to log discovery),
    ``HISCI_UPLOAD_LIMIT_MB``, ``HISCI_HEARTBEAT_TTL``, ``HISCI_REAPER_INTERVAL`` and
    ``HISCI_CANCEL_GRACE`` (seconds) for the job service, ``HISCI_DATABASE_URL`` for the job
    index (default: SQLite ``<data dir>/index.sqlite``; ``postgresql://user@host/db`` for PostgreSQL);
    ``HISCI_CACHE_DIR`` for the registry cache (default ``$XDG_CACHE_HOME/hisci`` or
    ``~/.cache/hisci``; ``HISCI_NO_CACHE=1`` turns it off); ``HISCI_STEP_CACHE_DIR`` for the step
    cache of local workflow runs (default ``<that>/steps``). Preview runs (the web app's "Run
    example"): ``HISCI_PREVIEW_TIMEOUT`` (seconds, default 300), ``HISCI_PREVIEW_MEMORY_MB`` (address
    space a run may add, default 8192; 0 for none) and ``HISCI_PREVIEW_MAX_MB`` (the plugin folder
    a service copies into the preview job, default 64).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(default_factory=lambda: Path("hisci-data"))
    plugin_path: tuple[Path, ...] = ()
    redis_url: str | None = None
    database_url: str | None = None
    data_roots: tuple[Path, ...] = ()
    max_request_mb: float = 2.0
    builtins: bool = True
    entry_points: bool = True
    trace: bool = False
    upload_limit_mb: float = 2048.0
    heartbeat_ttl: float = 10.0
    reaper_interval: float = 2.0
    cancel_grace: float = 10.0
    preview_timeout: float = 300.0
    preview_memory_mb: float = 8192.0
    preview_max_mb: float = 64.0
    sweep_limit: int = 200
    cache_dir: Path | None = Field(default_factory=lambda: default_cache_dir())
    step_cache_dir: Path = Field(default_factory=lambda: _default_step_cache())

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        """``redis://[:password@]host:port/db``, ``rediss://`` (TLS) or ``unix://[:password@]/path``."""
        if value and value.split("://", 1)[0] not in REDIS_SCHEMES:
            raise ValueError(f"HISCI_REDIS_URL must start with redis://, rediss:// or unix://, not {value[:12]!r}...")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if env.get("HISCI_DATA_DIR"):
            values["data_dir"] = Path(env["HISCI_DATA_DIR"])
        if env.get("HISCI_PLUGIN_PATH"):
            values["plugin_path"] = tuple(
                Path(p) for p in env["HISCI_PLUGIN_PATH"].split(os.pathsep) if p
            )
        if env.get("HISCI_STEP_CACHE_DIR"):
            values["step_cache_dir"] = Path(env["HISCI_STEP_CACHE_DIR"])
        if env.get("HISCI_DATA_ROOTS"):
            values["data_roots"] = tuple(Path(p) for p in env["HISCI_DATA_ROOTS"].split(os.pathsep) if p)
        if env.get("HISCI_REDIS_URL"):
            values["redis_url"] = env["HISCI_REDIS_URL"]
        if env.get("HISCI_DATABASE_URL"):
            values["database_url"] = env["HISCI_DATABASE_URL"]
        for name, key in (("HISCI_UPLOAD_LIMIT_MB", "upload_limit_mb"),
                          ("HISCI_HEARTBEAT_TTL", "heartbeat_ttl"),
                          ("HISCI_REAPER_INTERVAL", "reaper_interval"),
                          ("HISCI_CANCEL_GRACE", "cancel_grace"),
                          ("HISCI_MAX_REQUEST_MB", "max_request_mb"),
                          ("HISCI_PREVIEW_TIMEOUT", "preview_timeout"),
                          ("HISCI_PREVIEW_MEMORY_MB", "preview_memory_mb"),
                          ("HISCI_PREVIEW_MAX_MB", "preview_max_mb")):
            if env.get(name):
                values[key] = float(env[name])
        if env.get("HISCI_SWEEP_LIMIT"):
            values["sweep_limit"] = int(env["HISCI_SWEEP_LIMIT"])
        values["builtins"] = env.get("HISCI_NO_BUILTINS", "") not in ("1", "true", "yes")
        values["entry_points"] = env.get("HISCI_NO_ENTRY_POINTS", "") not in ("1", "true", "yes")
        values["trace"] = env.get("HISCI_TRACE", "") in ("1", "true", "yes")
        if env.get("HISCI_CACHE_DIR"):
            values["cache_dir"] = Path(env["HISCI_CACHE_DIR"])
        if env.get("HISCI_NO_CACHE", "") in ("1", "true", "yes"):
            values["cache_dir"] = None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/hisci``, else ``~/.cache/hisci``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hisci"


def _default_step_cache() -> Path:
    return default_cache_dir() / "steps"
