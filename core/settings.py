"""Settings: one object, built once (``Settings.from_env()``) and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Where hisci keeps data and finds plugins and Redis.

    Environment variables: ``HISCI_DATA_DIR``, ``HISCI_PLUGIN_PATH`` (os.pathsep-separated),
    ``HISCI_REDIS_URL``, ``HISCI_NO_ENTRY_POINTS`` (1 to skip installed plugins),
    ``HISCI_NO_BUILTINS`` (1 to skip built-in plugins), ``HISCI_TRACE`` (1 to log discovery),
    ``HISCI_UPLOAD_LIMIT_MB``, ``HISCI_HEARTBEAT_TTL``, ``HISCI_REAPER_INTERVAL`` and
    ``HISCI_CANCEL_GRACE`` (seconds) for the job service, ``HISCI_DATABASE_URL`` for the job
    index (default: SQLite ``<data dir>/index.sqlite``; ``postgresql://user@host/db`` for PostgreSQL).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(default_factory=lambda: Path("hisci-data"))
    plugin_path: tuple[Path, ...] = ()
    redis_url: str | None = None
    database_url: str | None = None
    builtins: bool = True
    entry_points: bool = True
    trace: bool = False
    upload_limit_mb: float = 2048.0
    heartbeat_ttl: float = 10.0
    reaper_interval: float = 2.0
    cancel_grace: float = 10.0

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
        if env.get("HISCI_REDIS_URL"):
            values["redis_url"] = env["HISCI_REDIS_URL"]
        if env.get("HISCI_DATABASE_URL"):
            values["database_url"] = env["HISCI_DATABASE_URL"]
        for name, key in (("HISCI_UPLOAD_LIMIT_MB", "upload_limit_mb"),
                          ("HISCI_HEARTBEAT_TTL", "heartbeat_ttl"),
                          ("HISCI_REAPER_INTERVAL", "reaper_interval"),
                          ("HISCI_CANCEL_GRACE", "cancel_grace")):
            if env.get(name):
                values[key] = float(env[name])
        values["builtins"] = env.get("HISCI_NO_BUILTINS", "") not in ("1", "true", "yes")
        values["entry_points"] = env.get("HISCI_NO_ENTRY_POINTS", "") not in ("1", "true", "yes")
        values["trace"] = env.get("HISCI_TRACE", "") in ("1", "true", "yes")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
