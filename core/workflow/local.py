"""Run a workflow on this machine: steps in dependency order, independent ones in parallel.

Layout of the output folder::

    out/job.json            the workflow's record: status, reason, and every step's state
    out/log.txt             one line per step transition
    out/result.json         step states and the workflow's outputs
    out/steps/<id>/         each step's own run folder (job.json, log.txt, outputs)
    out/<file>              the workflow's exposed outputs, linked from their steps
"""

from __future__ import annotations

import concurrent.futures as cf
import getpass
import multiprocessing
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import HisciError, InputError
from ..plugin import Plugin, load_plugin
from ..record import JobState, new_job_id, new_record, now, write_task_status
from ..runner import InputsArg, RunResult, build_request, prepare_output, resolve_inputs, run_plugin
from ..storage import write_json
from .cache import StepCache, link_outputs, step_key
from .graph import Plan, PlannedStep, plan
from .model import FromStep

Progress = Callable[[float, str], None]
FINISHED = ("succeeded", "failed", "cancelled", "skipped")
RESERVED = ("job.json", "log.txt", "result.json", "task.status.json")


def run_workflow(
    plugin: Plugin,
    request: dict[str, Any] | None = None,
    *,
    registry: Any,
    output_dir: Path,
    inputs: InputsArg | None = None,
    example: bool = False,
    example_index: int = 0,
    jobs: int = 1,
    cache: StepCache | None = None,
    owner: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Validate, plan and run a workflow locally; record it in ``output_dir``.

    Parameters
    ----------
    jobs : how many steps may run at once (each in its own process when > 1).
    cache : where succeeded steps are remembered; None turns caching off (``--no-cache``).
    owner : whose cache is used (default: the login name).
    """
    params = plugin.validate_request(build_request(plugin, request, inputs=inputs, example=example,
                                                   example_index=example_index))
    files = resolve_inputs(plugin, params)
    the_plan = plan(plugin, params, dict(files), registry)
    output_dir = prepare_output(output_dir)
    owner = owner or _login()
    record = new_record(plugin, params, files, owner=owner)
    record["kind"] = "workflow"
    record["steps"] = {sid: _step_entry(ps) for sid, ps in the_plan.steps.items()}
    runner = _Runner(the_plan, record, output_dir, max(1, int(jobs)), cache, owner, progress)
    return runner.run()


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


def _step_entry(ps: PlannedStep) -> dict[str, Any]:
    return {"plugin": ps.plugin.id, "version": ps.plugin.version, "label": ps.label,
            "status": "skipped" if ps.skipped else JobState.QUEUED.value,
            "reason": ps.skipped, "job": None, "folder": f"steps/{ps.id}",
            "depends_on": ps.upstream, "cached_from": None}


def output_files(folder: Path, plugin: Plugin, name: str) -> list[Path]:
    """Files of output ``name`` of ``plugin`` in a finished step's folder (may be empty)."""
    out = plugin.outputs.get(name)
    return sorted(p for p in Path(folder).glob(out.glob) if p.is_file()) if out else []


def bind_files(ps: PlannedStep, folder_of: Callable[[str], Path], plan_: Plan
               ) -> dict[str, list[Path]]:
    """The step's inputs as paths; raise InputError when an upstream output is missing."""
    files: dict[str, list[Path]] = {}
    for name, bindings in ps.inputs.items():
        for b in bindings:
            if isinstance(b, FromStep):
                producer = plan_.steps[b.step].plugin
                found = output_files(folder_of(b.step), producer, b.output)
                declared = producer.outputs[b.output]
                if not found and not declared.optional:
                    raise InputError(f"step '{b.step}' did not write its output '{b.output}' "
                                     f"({declared.glob}), which step '{ps.id}' reads as '{name}'",
                                     pointer=f"/steps/{ps.id}/inputs/{name}")
                files.setdefault(name, []).extend(found)
            else:
                files.setdefault(name, []).append(Path(b))
    return files


class _Runner:
    """The scheduling loop of one local workflow run."""

    def __init__(self, plan_: Plan, record: dict[str, Any], out: Path, jobs: int,
                 cache: StepCache | None, owner: str, progress: Progress | None) -> None:
        self.plan, self.record, self.out, self.jobs = plan_, record, out, jobs
        self.cache, self.owner, self.progress = cache, owner, progress
        self.steps = record["steps"]
        self._payloads: dict[str, dict[str, Any]] = {}
        self.log = open(out / "log.txt", "a", encoding="utf-8")  # noqa: SIM115 - closed in run()

    def say(self, text: str) -> None:
        self.log.write(f"{now()} {text}\n")
        self.log.flush()

    def save(self) -> None:
        write_json(self.out / "job.json", self.record)

    def set(self, sid: str, **changes: Any) -> None:
        self.steps[sid].update(changes)
        done = sum(1 for s in self.steps.values() if s["status"] in FINISHED)
        self.record.update(progress=round(done / max(len(self.steps), 1), 4),
                           message=f"step {sid} {changes.get('status', '')}".strip())
        self.save()
        if self.progress:
            self.progress(self.record["progress"], self.record["message"])

    def run(self) -> RunResult:
        self.record.update(status=JobState.RUNNING.value, started=now())
        self.save()
        write_task_status(self.out, 2)
        self.say(f"workflow {self.record['plugin']['id']} started: {len(self.steps)} step(s)")
        pool = None
        if self.jobs > 1:
            pool = cf.ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"))
        try:
            self._loop(pool)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        return self._finish()

    def _loop(self, pool: cf.ProcessPoolExecutor | None) -> None:
        running: dict[cf.Future, str] = {}
        while True:
            started = False
            for sid in self.plan.steps:
                if self.steps[sid]["status"] != JobState.QUEUED.value or sid in running.values():
                    continue
                ups = [self.steps[u]["status"] for u in self.plan.steps[sid].upstream]
                bad = next((u for u in self.plan.steps[sid].upstream
                            if self.steps[u]["status"] in ("failed", "cancelled")), None)
                if bad:
                    self.set(sid, status=JobState.CANCELLED.value,
                             reason=f"not run: step '{bad}' {self.steps[bad]['status']}")
                    self.say(f"step {sid} not run (step {bad} {self.steps[bad]['status']})")
                    started = True
                    continue
                if any(u != JobState.SUCCEEDED.value for u in ups) or len(running) >= self.jobs:
                    continue
                payload = self._prepare(sid)
                started = True
                if payload is None:
                    continue
                self.set(sid, status=JobState.RUNNING.value, job=payload["job_id"])
                self.say(f"step {sid} ({payload['plugin_id']}) started")
                if pool is None:
                    self._done(sid, payload, run_step(payload))
                else:
                    running[pool.submit(run_step, payload)] = sid
            if running:
                finished, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    sid = running.pop(fut)
                    try:
                        outcome = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a crashed process fails its step
                        outcome = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
                    self._done(sid, self._payloads[sid], outcome)
            elif not started:
                return

    def _prepare(self, sid: str) -> dict[str, Any] | None:
        """Resolve inputs, validate, and use the cache; None when the step is settled here."""
        ps = self.plan.steps[sid]
        folder = self.out / "steps" / sid
        try:
            files = bind_files(ps, lambda s: self.out / "steps" / s, self.plan)
            params = ps.plugin.validate_request(ps.request(files))
        except HisciError as err:
            self.set(sid, status=JobState.FAILED.value, reason=str(err))
            self.say(f"step {sid} failed before it ran: {err}")
            return None
        key = step_key(ps.plugin.id, ps.plugin.version, params, files)
        if self.cache is not None:
            hit = self.cache.lookup(self.owner, key)
            if hit is not None:
                self._use_cached(sid, ps, folder, hit, key)
                return None
        job_id = new_job_id()
        payload = {"step": sid, "plugin_id": ps.plugin.id, "folder": str(ps.plugin.folder),
                   "source": ps.plugin.source, "package": ps.plugin.package, "params": params,
                   "output_dir": str(folder), "job_id": job_id, "owner": self.owner,
                   "cache_key": key, "parent": self.record["id"]}
        self._payloads[sid] = payload
        return payload

    def _use_cached(self, sid: str, ps: PlannedStep, folder: Path, hit: dict[str, Any],
                    key: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        link_outputs(Path(hit["folder"]), folder)
        source = hit["record"]
        record = dict(source, id=new_job_id(), parent_id=self.record["id"], name=sid,
                      created=now(), cache_key=key,
                      cached_from={"job": source["id"], "folder": hit["folder"]},
                      message=f"cached: outputs linked from job {source['id']}")
        write_json(folder / "job.json", record)
        write_task_status(folder, 4)
        self.set(sid, status=JobState.SUCCEEDED.value, job=record["id"],
                 cached_from={"job": source["id"], "folder": hit["folder"]})
        self.say(f"step {sid} ({ps.plugin.id}) cached: outputs linked from {hit['folder']}")

    def _done(self, sid: str, payload: dict[str, Any], outcome: dict[str, Any]) -> None:
        status = outcome["status"]
        self.set(sid, status=status, reason=outcome.get("reason"))
        self.say(f"step {sid} {status}" + (f": {outcome['reason']}" if outcome.get("reason") else ""))
        if status == JobState.SUCCEEDED.value and self.cache is not None:
            self.cache.remember(self.owner, payload["cache_key"], Path(payload["output_dir"]),
                                payload["job_id"])

    def _finish(self) -> RunResult:
        states = {sid: s["status"] for sid, s in self.steps.items()}
        failed = next((sid for sid, st in states.items() if st == "failed"), None)
        cancelled = next((sid for sid, st in states.items() if st == "cancelled"), None)
        exposed = self._expose()
        if failed:
            state = JobState.FAILED
            reason = f"step '{failed}' ({self.steps[failed]['plugin']}) failed: {self.steps[failed]['reason']}"
        elif cancelled:
            state, reason = JobState.CANCELLED, f"step '{cancelled}' was cancelled"
        else:
            state, reason = JobState.SUCCEEDED, None
        summary = {"steps": {sid: {"status": s["status"], "cached": bool(s["cached_from"]),
                                   "reason": s["reason"]} for sid, s in self.steps.items()},
                   "outputs": exposed}
        write_json(self.out / "result.json", summary)
        listing = sorted(str(p.relative_to(self.out)) for p in self.out.rglob("*") if p.is_file())
        self.record.update(status=state.value, reason=reason, finished=now(), outputs=listing,
                           workflow_outputs=exposed,
                           progress=1.0 if state == JobState.SUCCEEDED else self.record["progress"],
                           message="done" if state == JobState.SUCCEEDED else (reason or ""))
        self.save()
        write_task_status(self.out, 4 if state == JobState.SUCCEEDED else 2,
                          failed=state != JobState.SUCCEEDED)
        self.say(f"workflow {state.value}" + (f": {reason}" if reason else ""))
        self.log.close()
        return RunResult(state.value, self.out, self.record, summary, reason)

    def _expose(self) -> dict[str, list[str]]:
        """Link the workflow's outputs into the top folder; name -> relative paths."""
        exposed: dict[str, list[str]] = {}
        for name, src in self.plan.outputs.items():
            if self.steps.get(src.step, {}).get("status") != "succeeded":
                continue
            producer = self.plan.steps[src.step].plugin
            for path in output_files(self.out / "steps" / src.step, producer, src.output):
                dest = self.out / (path.name if path.name not in RESERVED else f"{name}{path.suffix}")
                if dest.exists():
                    dest.unlink()
                link_outputs_one(path, dest)
                exposed.setdefault(name, []).append(dest.name)
        return exposed


def link_outputs_one(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def run_step(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one planned step (in this process or a worker process); return status and reason."""
    try:
        plugin = load_plugin(Path(payload["folder"]), payload["source"], payload["package"])
        params = payload["params"]
        files = resolve_inputs(plugin, params)
        record = new_record(plugin, params, files, job_id=payload["job_id"], owner=payload["owner"])
        record.update(parent_id=payload["parent"], name=payload["step"], kind="step", cache_key=payload["cache_key"])
        result = run_plugin(plugin, output_dir=Path(payload["output_dir"]), params=params,
                            record=record)
    except HisciError as err:
        return {"status": JobState.FAILED.value, "reason": str(err)}
    return {"status": result.status, "reason": result.error}
