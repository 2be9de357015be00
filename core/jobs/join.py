"""A worker on another host joins a service through its API (``hicli worker --url --token``)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import HisciError

MAP_ENV = "HISCI_DATA_DIR_MAP"


def host_facts(gpu: bool) -> dict[str, float | int | str]:
    """What a worker advertises: host name, cores, memory, GPUs."""
    from .worker import total_memory_gb, worker_host

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gpus = 0
    if gpu:
        from ..gpu import gpu_available

        if gpu_available():
            import cupy

            gpus = int(cupy.cuda.runtime.getDeviceCount())
    return {"host": worker_host(), "cores": cores,
            "memory_gb": round(total_memory_gb(), 3), "gpus": gpus}


def join_service(url: str, token: str | None, queues: list[str], *, gpu: bool = False,
                 local_data_dir: str | None = None) -> dict:
    """Register with the service and set HISCI_REDIS_URL, HISCI_DATA_DIR (and the data dir
    mapping when the shared folder is mounted elsewhere here) for this process."""
    import httpx

    if not token:
        raise HisciError("joining a service needs a worker token", pointer="/worker_token",
                         hint="ask an admin for a worker token")
    try:
        response = httpx.post(url.rstrip("/") + "/api/v1/workers/register", timeout=30,
                              headers={"Authorization": f"Bearer {token}"},
                              json={**host_facts(gpu), "queues": queues})
    except httpx.HTTPError as exc:
        raise HisciError(f"cannot reach the service at {url}: {exc}") from None
    if response.status_code != 200:
        try:
            detail = response.json().get("error", {}).get("message") or response.text
        except ValueError:
            detail = response.text
        raise HisciError(f"the service refused the worker ({response.status_code}): {detail}",
                         pointer="/worker_token", hint="use a worker token (an admin makes one for this worker)")
    config = response.json()
    os.environ["HISCI_REDIS_URL"] = config["redis_url"]
    server_dir = config["data_dir"]
    local = str(Path(local_data_dir).resolve()) if local_data_dir else server_dir
    os.environ["HISCI_DATA_DIR"] = local
    if local != server_dir:
        os.environ[MAP_ENV] = f"{server_dir}={local}"
    os.environ.setdefault("HISCI_HEARTBEAT_TTL", str(config.get("heartbeat_ttl", 10)))
    return config


def mapped(text: str) -> str:
    """A path (or any text holding paths) from the service's data dir to this host's mount."""
    spec = os.environ.get(MAP_ENV)
    if not spec or "=" not in spec:
        return text
    server, local = spec.split("=", 1)
    return text.replace(server, local)
