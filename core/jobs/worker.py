"""The RQ side: the job function ``execute`` and ``start_worker``."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from rq import Queue, Worker, get_current_job
from rq.job import Job

from ..errors import HisciError, UnknownPluginError
from ..gpu import INSTALL_HINT, array_module, gpu_available
from ..processes import die_with_parent
from ..registry import Registry
from ..runner import run_plugin
from ..settings import Settings
from ..threads import limit_threads, usable_cores, worker_threads
from . import keys
from .book import JobBook
from .events import EventStream
from .liveness import job_heartbeat, worker_heartbeat
from .queueing import JOB_FUNCTION, SERIALIZER, enqueue
from .record import JobRecord, JobState
from .routing import advertise_capacity
from .store import JobNotFound

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
    from .join import mapped

    data_dir = mapped(data_dir)  # the shared folder may be mounted elsewhere on this host
    settings = Settings.from_env(data_dir=Path(data_dir))
    book = JobBook(settings.data_dir, settings.database_url)
    events = EventStream(redis, job_id)
    try:
        job = book.get(job_id)
    except JobNotFound:
        return "deleted"  # deleted while queued: nothing to run, nothing to write
    if job.state.finished:
        return job.state.value
    if redis.exists(keys.cancel(job_id)):
        job = book.apply(job_id, lambda r: r.state.active and r.finish(JobState.CANCELLED, "cancelled before start"))
        return _ended(settings, redis, book, job)
    if job.parent_id and job.data.get("depends_on"):
        from . import groups

        # RQ ran us because our dependencies' RQ jobs ended; the records decide: refresh
        # skips us when a dependency failed and re-dispatches us when one is being retried
        deps = [book.get(d) for d in job.data["depends_on"]]
        if not all(d.state.finished for d in deps) or (
                not job.data.get("allow_failure") and any(d.state != JobState.SUCCEEDED for d in deps)):
            groups.refresh(settings, redis, book, job.parent_id)
            return book.get(job_id).state.value
    use_gpu = os.environ.get(GPU_ENV) == "1" and rq_job.origin == "gpu"
    limit_threads(worker_threads())  # this work horse's share of the host (HISCI_WORKER_THREADS)
    # the heartbeat exists before the record says running, so the reaper never takes a job
    # that just started for a lost one, and never purges a deleted job's folder under it
    heartbeat = job_heartbeat(redis, job_id, settings.heartbeat_ttl).start()
    try:
        job = book.apply(job_id, lambda r: r.state == JobState.QUEUED
                         and r.start(worker=rq_job.worker_name, host=worker_host(), ran_on_gpu=use_gpu))
        if job.state != JobState.RUNNING:
            return job.state.value
        events.emit("state", status="running", host=job.data["host"], worker=job.data.get("worker"))
        plugin = _plugin_of(settings, job, book.store.folder(job_id))
        runner = _runner(job.data.get("runner"))
        result = runner(
            plugin, params=json.loads(mapped(json.dumps(job.data["params"]))), record=job.data,
            output_dir=book.store.folder(job_id),
            progress=events.progress, cancel_check=lambda: bool(redis.exists(keys.cancel(job_id))),
            xp=array_module(prefer_gpu=use_gpu), book=book, **_live_kwargs(job.data, events),
        )
        job = JobRecord(result.record)
        if result.requeued:
            enqueue(redis, settings, job.data)
    except JobNotFound:
        return "deleted"  # deleted while it ran: the reaper removes the folder once the beat is gone
    except HisciError as err:  # plugin missing on this worker, input vanished, ...
        job = fail(settings, redis, book, job_id, str(err)) or book.get(job_id)
    finally:
        heartbeat.stop()
    events.emit("state", status=job.state.value, reason=job.reason, message=job.data.get("message"))
    return _ended(settings, redis, book, job)


def fail(settings: Settings, redis: Redis, book: JobBook, job_id: str, reason: str) -> JobRecord | None:
    """A running job failed (``JobRecord.fail``: queued again at once when THE retry rule
    allows, and then enqueued here). Returns the record, or None when it was no longer
    running (another writer ended it meanwhile)."""
    return _change_and_enqueue(settings, redis, book, job_id,
                               lambda r: r.state == JobState.RUNNING and r.fail(reason))


def _change_and_enqueue(settings: Settings, redis: Redis, book: JobBook, job_id: str,
                        change: Callable[[JobRecord], bool]) -> JobRecord | None:
    """``book.apply(job_id, change)``; when the change applied and left the job queued, its
    new attempt is enqueued, by this caller only (two callers never enqueue one attempt
    twice). Returns the record, or None when the change did not apply."""
    applied = []

    def tracked(r: JobRecord) -> bool:
        applied.append(change(r))
        return applied[-1]

    job = book.apply(job_id, tracked)
    if not applied[-1]:
        return None
    if job.state == JobState.QUEUED:
        enqueue(redis, settings, job.data)
    return job


def _ended(settings: Settings, redis: Redis, book: JobBook, job: JobRecord) -> str:
    """A child's end moves its group on (skips, re-dispatch, the parent's state)."""
    if job.parent_id:
        from . import groups

        try:
            groups.refresh(settings, redis, book, job.parent_id)
        except JobNotFound:
            pass  # the group was deleted
    return job.state.value


def _plugin_of(settings: Settings, job: JobRecord, folder: Path):
    """The plugin a job runs: a preview job's own snapshot, else the registry's plugin."""
    if job.kind == "preview":
        from .preview import snapshot_plugin

        return snapshot_plugin(registry_for(settings), job, folder)
    return _find_plugin(settings, job.plugin_id)


def _live_kwargs(data: dict, events: EventStream) -> dict:
    """A live job's settings and the sink that puts its results into the Redis event stream."""
    if not data.get("live_spec"):
        return {}
    return {"live": data["live_spec"], "live_sink": lambda kind, fields: events.emit(kind, **fields)}


def _find_plugin(settings: Settings, plugin_id: str):
    """From the pre-fork registry; a plugin installed since the worker started is found by a
    fresh discovery (so `pip install` + registry reload needs no worker restart)."""
    try:
        return registry_for(settings).get(plugin_id)
    except UnknownPluginError:
        return Registry.discover(settings).get(plugin_id)


def _runner(spec: str | None):
    """``run_plugin``, or a job group child's ``runner`` ("module:function")."""
    if not spec:
        return run_plugin
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def retry(settings: Settings, redis: Redis, book: JobBook, job_id: str) -> bool:
    """Requeue a failed attempt when THE retry rule (``JobRecord.may_retry``) allows it
    (jobs failed by a shutdown, at the next start), and enqueue it."""
    job = _change_and_enqueue(settings, redis, book, job_id,
                              lambda r: r.may_retry() and r.requeue(r.reason or "failed"))
    return job is not None and job.state == JobState.QUEUED


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


def _warm_index(settings: Settings) -> None:
    """Open (and migrate) the job index and import what a job's bookkeeping needs once in
    the worker, so each forked work horse starts with them (the Alembic import alone cost
    0.3-0.8 s per chunk on a loaded 2-core host)."""
    from . import groups, join  # noqa: F401 - imported for the work horses
    from .join import mapped

    data_dir = Path(mapped(str(settings.data_dir.resolve())))
    try:
        JobBook(data_dir, Settings.from_env(data_dir=data_dir).database_url)
    except Exception as exc:  # noqa: BLE001 - each job opens it again and reports properly
        log.warning("job index not opened before the first job: %s", exc)


class HisciWorker(Worker):
    """An RQ worker that runs only hisci's job function, and stops at once on SIGTERM.

    Job data is read with hisci's JSON serializer (a pickled job cannot even be decoded), and a
    job whose function is anything but :data:`JOB_FUNCTION` is marked failed and logged before
    a work horse is forked, so a process that reaches Redis cannot run ``os.system`` here.

    SIGTERM/SIGINT kill the work horse (and its process group) and mark the running job
    ``failed: interrupted by shutdown``; the reaper queues it again on the next start when the
    plugin allows retries. RQ's default (finish the job first) would outlive ``hicli serve``
    and orphan the work horse.
    """

    hisci_settings: Settings | None = None
    _hisci_job: str | None = None

    def request_stop(self, signum, frame):  # noqa: ANN001 - a signal handler
        log.warning("worker %s: stopping (signal %s)", self.name, signum)
        job_id = self._hisci_job
        if self.horse_pid:
            self.kill_horse()
            self.wait_for_horse()
        if job_id and self.hisci_settings is not None:
            mark_interrupted(self.hisci_settings, job_id)
        raise SystemExit(0)

    request_force_stop = request_stop

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            self._hisci_job = str(job.args[0]) if job.args else None
        except Exception:  # noqa: BLE001 - undecodable job data: refused in _execute_checked
            self._hisci_job = None
        try:
            self._execute_checked(job, queue)
        finally:
            self._hisci_job = None

    def _execute_checked(self, job: Job, queue: Queue) -> None:
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
        need = self._memory_need(self._hisci_job)
        if not need:
            super().execute_job(job, queue)
            return
        from . import placement

        host = worker_host()
        admission = placement.reserve(self.connection, host, self.host_memory_gb, self._hisci_job, need, self.name)
        if not admission.ok:
            if not self._hold_if_no_host_fits(job, queue, need):
                self._hand_back(job, queue, admission.reason)
            return
        try:
            super().execute_job(job, queue)
        finally:
            placement.release(self.connection, host, self._hisci_job)

    host_memory_gb: float = 0.0

    def _memory_need(self, job_id: str | None) -> float:
        """The ``needs.memory_gb`` of the job's record (0 when none, or no record)."""
        if not job_id or self.hisci_settings is None:
            return 0.0
        try:
            record = JobBook(self.hisci_settings.data_dir, self.hisci_settings.database_url).get(job_id)
        except (JobNotFound, HisciError):
            return 0.0
        if record.state != JobState.QUEUED:
            return 0.0  # finished or cancelled meanwhile: execute() says so without running it
        return float((record.data.get("needs") or {}).get("memory_gb") or 0.0)

    def _hold_if_no_host_fits(self, job: Job, queue: Queue, need_gb: float) -> bool:
        """Take the job off the queues and put its record on ``held`` (with the reason) when no
        live worker's host budget fits ``need_gb``; the reaper enqueues it again once a worker
        that fits is live. So such a job is not passed between workers forever, and a burst
        worker leaves when only held work remains. False when some live worker fits it."""
        from .routing import fits

        ok, why = fits(self.connection, queue.name, {"memory_gb": need_gb})
        if ok or self.hisci_settings is None or not self._hisci_job:
            return False
        book = JobBook(self.hisci_settings.data_dir, self.hisci_settings.database_url)
        try:
            record = book.apply(self._hisci_job, lambda r: r.state == JobState.QUEUED and r.hold(why))
        except JobNotFound:
            record = None
        self.connection.lrem(queue.intermediate_queue_key, 1, job.id)
        if record is not None and record.state != JobState.HELD:
            queue.push_job_id(job.id)  # changed meanwhile (cancelled, ...): execute() decides
        return True

    def _hand_back(self, job: Job, queue: Queue, reason: str) -> None:
        """Put the RQ job back at the end of its queue (unstarted) and say why on the record."""
        import time

        from .placement import BACKOFF_S

        self.connection.lrem(queue.intermediate_queue_key, 1, job.id)
        queue.push_job_id(job.id)
        if self.hisci_settings is not None and self._hisci_job:
            try:
                JobBook(self.hisci_settings.data_dir, self.hisci_settings.database_url).apply(
                    self._hisci_job, lambda r: r.state == JobState.QUEUED and r.data.get("message") != reason
                    and r.note(message=reason))
            except JobNotFound:
                pass
        time.sleep(BACKOFF_S)


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


INTERRUPTED = "interrupted by shutdown"


def mark_interrupted(settings: Settings, job_id: str) -> None:
    """``failed: interrupted by shutdown`` for a job that was still running."""
    try:
        JobBook(settings.data_dir, settings.database_url).apply(
            job_id, lambda r: r.state == JobState.RUNNING and r.finish(JobState.FAILED, INTERRUPTED))
    except JobNotFound:
        pass  # deleted meanwhile


def start_worker(settings: Settings, queues: list[str], gpu: bool = False, burst: bool = False,
                 name: str | None = None) -> bool:
    """Serve ``queues`` until stopped (or until empty with ``burst``)."""
    if not settings.redis_url:
        raise HisciError("no Redis to connect to", pointer="/redis_url",
                         hint="set HISCI_REDIS_URL to the service's Redis URL")
    if "gpu" in queues and not gpu:
        raise HisciError("a worker on the gpu queue needs the GPU enabled", pointer="/gpu",
                         hint="enable the GPU for this worker, or serve only the cpu queue")
    if gpu and not gpu_available():
        raise HisciError("GPU requested, but no usable GPU (cupy missing or no CUDA device)", hint=INSTALL_HINT)
    try:
        worker_threads()
    except ValueError as exc:
        raise HisciError(str(exc), pointer="/worker_threads",
                         hint="unset it to use every core, or set a positive whole number") from None
    from .placement import host_memory_gb

    try:
        host_memory = host_memory_gb()
    except ValueError as exc:
        raise HisciError(str(exc), pointer="/host_memory_gb", hint="unset it to use the machine's memory") from None
    os.environ[GPU_ENV] = "1" if gpu else "0"
    _warm(registry_for(Settings.from_env(data_dir=settings.data_dir.resolve())))
    _warm_index(settings)
    redis = Redis.from_url(settings.redis_url)
    worker = HisciWorker([Queue(q, connection=redis, serializer=SERIALIZER) for q in queues],
                         connection=redis, name=name, serializer=SERIALIZER)
    worker.hisci_settings = settings
    worker.host_memory_gb = host_memory
    capacity = (host_memory, gpu_memory_gb() if gpu else 0.0)
    stop = threading.Event()
    alive = worker_heartbeat(redis, worker.name, queues, settings.heartbeat_ttl, pid=os.getpid()).start()

    def advertise() -> None:
        while not stop.is_set():
            try:
                advertise_capacity(redis, worker.name, *capacity, queues=queues, host=worker_host(),
                                   cores=usable_cores(), threads=worker_threads())
            except Exception:  # noqa: BLE001 - Redis restarting; try again
                pass
            stop.wait(20)

    threading.Thread(target=advertise, daemon=True).start()
    try:
        return worker.work(burst=burst, logging_level="WARNING")
    finally:
        stop.set()
        alive.stop()


def worker_host() -> str:
    """The host name recorded for a job: ``HISCI_WORKER_HOST`` (several workers on one machine
    may stand for different hosts, as in tests), else the machine's name."""
    return os.environ.get("HISCI_WORKER_HOST") or socket.gethostname()
