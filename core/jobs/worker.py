"""The RQ side: the job function ``execute`` and ``start_worker``."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from pathlib import Path

from redis import Redis
from rq import Queue, Worker, get_current_job
from rq.job import Job

from ..errors import HisciError, UnknownPluginError
from ..gpu import INSTALL_HINT, array_module, gpu_available
from ..processes import die_with_parent
from ..record import JobState, now
from ..registry import Registry
from ..runner import run_plugin
from ..settings import Settings
from . import keys
from .events import EventStream, Heartbeat
from .queueing import JOB_FUNCTION, SERIALIZER
from .routing import advertise_capacity
from .store import JobStore

log = logging.getLogger("hisci.worker")
GPU_ENV = "HISCI_WORKER_GPU"
#: Registries discovered in the worker process before it forks work horses, so a job does
#: not pay for discovery (filled by start_worker, keyed by the settings' JSON).
_REGISTRIES: dict[str, Registry] = {}


def registry_for(settings: Settings) -> Registry:
    key = settings.model_dump_json()
    if key not in _REGISTRIES:
        _REGISTRIES[key] = Registry.discover(settings)
    return _REGISTRIES[key]


def execute(job_id: str, data_dir: str) -> str:
    """Run one hisci job inside an RQ work horse; returns the final status."""
    _die_with_parent()
    rq_job = get_current_job()
    redis: Redis = rq_job.connection
    settings = Settings.from_env(data_dir=Path(data_dir))
    store = JobStore(settings.data_dir)
    record = store.read(job_id)
    events = EventStream(redis, job_id)
    if redis.exists(keys.cancel(job_id)) or JobState(record["status"]).finished:
        if not JobState(record["status"]).finished:
            record = store.update(job_id, status=JobState.CANCELLED.value, reason="cancelled before start",
                                  finished=now())
        return record["status"]
    use_gpu = os.environ.get(GPU_ENV) == "1" and rq_job.origin == "gpu"
    record.update(host=socket.gethostname(), worker=rq_job.worker_name, attempts=record.get("attempts", 0) + 1,
                  ran_on_gpu=use_gpu, status=JobState.RUNNING.value, started=now())
    store.write(record)
    events.emit("state", status="running", host=record["host"])
    heartbeat = Heartbeat(redis, job_id, settings.heartbeat_ttl).start()
    try:
        plugin = _find_plugin(settings, record["plugin"]["id"])
        result = run_plugin(
            plugin, params=record["params"], record=record, output_dir=store.folder(job_id),
            progress=events.progress, cancel_check=lambda: bool(redis.exists(keys.cancel(job_id))),
            xp=array_module(prefer_gpu=use_gpu), live=record.get("live_spec"),
            live_sink=lambda kind, fields: events.emit(kind, **fields),
        )
        record = result.record
    except HisciError as err:  # plugin missing on this worker, input vanished, ...
        record = store.update(job_id, status=JobState.FAILED.value, reason=str(err), finished=now())
    finally:
        heartbeat.stop()
    events.emit("state", status=record["status"], reason=record.get("reason"))
    if record["status"] == JobState.FAILED.value:
        _maybe_retry(settings, redis, record)
    return record["status"]


def _find_plugin(settings: Settings, plugin_id: str):
    """From the pre-fork registry; a plugin installed since the worker started is found by a
    fresh discovery (so `pip install` + registry reload needs no worker restart)."""
    try:
        return registry_for(settings).get(plugin_id)
    except UnknownPluginError:
        return Registry.discover(settings).get(plugin_id)


def _maybe_retry(settings: Settings, redis: Redis, record: dict) -> None:
    """Automatic retries for plugins that declare ``runtime.retries``."""
    retries = record.get("retries", 0)
    if record.get("attempts", 1) <= retries and not str(record.get("reason", "")).startswith("cancel"):
        from .queueing import enqueue

        store = JobStore(settings.data_dir)
        record = store.update(record["id"], status=JobState.QUEUED.value,
                              message=f"retrying after: {record.get('reason')}")
        enqueue(redis, settings, record)


def _die_with_parent() -> None:
    """The work horse gets SIGKILL when its worker dies (kill -9), so a lost worker never
    leaves an orphan running the job."""
    die_with_parent(signal.SIGKILL)()
    if os.getppid() == 1:
        os._exit(1)


def _warm(registry: Registry) -> None:
    """Import every plugin's entry module once in the worker, so each forked work horse
    starts with them loaded (a job then costs a fork, not an import)."""
    for plugin in registry:
        if plugin.runnable:
            try:
                plugin.load_entry()
            except Exception as exc:  # noqa: BLE001 - the job will report it properly
                log.warning("plugin %s failed to import: %s", plugin.id, exc)


class HisciWorker(Worker):
    """An RQ worker that runs only hisci's job function.

    Job data is read with hisci's JSON serializer (a pickled job cannot even be decoded), and a
    job whose function is anything but :data:`JOB_FUNCTION` is marked failed and logged before
    a work horse is forked, so a process that reaches Redis cannot run ``os.system`` here.
    """

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            func_name = job.func_name
        except Exception as exc:  # noqa: BLE001 - undecodable data is refused, whatever it is
            func_name = f"<undecodable job data: {type(exc).__name__}>"
        if func_name != JOB_FUNCTION:
            log.error("refused RQ job %s on queue %s: function %r is not %s",
                      job.id, queue.name, func_name, JOB_FUNCTION)
            self.handle_job_failure(job, queue, exc_string=f"refused by hisci worker: function {func_name!r} "
                                                          f"is not {JOB_FUNCTION}")
            self.connection.lrem(queue.intermediate_queue_key, 1, job.id)
            return
        super().execute_job(job, queue)


def total_memory_gb() -> float:
    try:
        with open("/proc/meminfo") as fh:
            kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
        return kb / 2**20
    except (OSError, StopIteration):
        return 0.0


def gpu_memory_gb() -> float:
    import cupy

    return cupy.cuda.Device(0).mem_info[1] / 2**30


def start_worker(settings: Settings, queues: list[str], gpu: bool = False, burst: bool = False,
                 name: str | None = None) -> bool:
    """Serve ``queues`` until stopped (or until empty with ``burst``)."""
    if not settings.redis_url:
        raise HisciError("no Redis to connect to", hint="set HISCI_REDIS_URL (hicli serve prints it)")
    if "gpu" in queues and not gpu:
        raise HisciError("a worker on the gpu queue needs --gpu", hint="hicli worker --queue gpu,cpu --gpu")
    if gpu and not gpu_available():
        raise HisciError("--gpu: no usable GPU (cupy missing or no CUDA device)", hint=INSTALL_HINT)
    os.environ[GPU_ENV] = "1" if gpu else "0"
    _warm(registry_for(Settings.from_env(data_dir=settings.data_dir.resolve())))
    redis = Redis.from_url(settings.redis_url)
    worker = HisciWorker([Queue(q, connection=redis, serializer=SERIALIZER) for q in queues],
                         connection=redis, name=name, serializer=SERIALIZER)
    capacity = (total_memory_gb(), gpu_memory_gb() if gpu else 0.0)
    stop = threading.Event()

    def advertise() -> None:
        while not stop.is_set():
            try:
                advertise_capacity(redis, worker.name, *capacity, queues=queues)
            except Exception:  # noqa: BLE001 - Redis restarting; try again
                pass
            stop.wait(20)

    threading.Thread(target=advertise, daemon=True).start()
    try:
        return worker.work(burst=burst, logging_level="WARNING")
    finally:
        stop.set()
