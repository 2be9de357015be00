"""Redis keys used by the job layer (one template each, never scattered literals)."""

PREFIX = "hisci"


def heartbeat(job_id: str) -> str:
    """Set (with a TTL) by the process running the job; its absence means the worker is lost."""
    return f"{PREFIX}:heartbeat:{job_id}"


def cancel(job_id: str) -> str:
    """Holds the time a cancel was requested; ctx.progress checks it."""
    return f"{PREFIX}:cancel:{job_id}"


def events(job_id: str) -> str:
    """A Redis stream of progress, state and log events for one job."""
    return f"{PREFIX}:events:{job_id}"


def worker_capacity(worker_name: str) -> str:
    """A worker's advertised memory (GB) and GPU memory (GB), refreshed with a TTL."""
    return f"{PREFIX}:capacity:{worker_name}"


def worker_alive(worker_name: str) -> str:
    """A worker's heartbeat (its queues), with a TTL of the heartbeat TTL: absent = not live."""
    return f"{PREFIX}:worker:{worker_name}"


def rq_job_id(job_id: str, attempt: int = 1) -> str:
    """The RQ job id of one attempt of a hisci job."""
    return f"hisci-{job_id}-{attempt}"
