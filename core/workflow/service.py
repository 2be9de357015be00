"""A workflow in the job service: one job group (``hisci.jobs.groups``).

The workflow job is the group's parent (kind ``workflow``); each planned step is a child
(kind ``step``) on its own plugin's queue, waiting for the steps it reads (RQ
``depends_on``). A child's inputs that come from earlier steps are resolved when it runs,
by :func:`run_step` (the child's ``runner``), from the sibling's run folder; a step that
matches a succeeded step of the same owner (plugin version, params, input checksums) is not
run: its files are linked and its record says ``cached_from``. Cancel and retry of the
parent are the job groups' (retry re-runs only failed and cancelled steps).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..record import describe_inputs
from ..runner import RunResult, run_plugin
from ..storage import read_json
from .cache import StepCache, link_outputs, step_key
from .graph import Plan, plan
from .model import FromStep

RUNNER = "hisci.workflow.service:run_step"
CACHE_FOLDER = "step-cache"


def graph_of(the_plan: Plan) -> dict[str, Any]:
    """The step graph stored on the parent record (the web page draws it)."""
    return {sid: {"plugin": ps.plugin.id, "label": ps.label, "depends_on": ps.upstream,
                  "skipped": ps.skipped} for sid, ps in the_plan.steps.items()}


def submit_workflow(service: Any, user: Any, plugin: Any, request: dict[str, Any],
                    use_cache: bool = True) -> dict[str, Any]:
    """Validate and plan ``plugin`` (a workflow) and submit it as a job group."""
    from ..jobs import ChildSpec, GroupSpec

    params, files = service._checked(user, plugin, request)  # validated, confined to the user's files
    the_plan = plan(plugin, params, dict(files), service.registry)
    children = []
    for sid, ps in the_plan.steps.items():
        if ps.skipped:
            continue
        bindings = {}
        for name, found in ps.inputs.items():
            bindings[name] = [_binding(b, the_plan) for b in found]
        children.append(ChildSpec(
            name=sid, plugin=ps.plugin.id, request={"extra": ps.extra}, validated=True,
            after=tuple(ps.upstream), runner=RUNNER,
            fields={"step_inputs": bindings, "label": ps.label, "use_cache": use_cache}))
    if not children:
        raise InputError(f"workflow {plugin.id}: every step is skipped for this request (their when is false)",
                         pointer="/extra", hint="change the parameters the steps' when conditions read")
    outputs = {name: src.as_json() for name, src in the_plan.outputs.items()}
    return service.submit_group(user, GroupSpec(kind="workflow", plugin=plugin.id, request=params,
                                                fields={"graph": graph_of(the_plan),
                                                        "workflow_outputs": outputs}), children)


def _binding(b: Any, the_plan: Plan) -> dict[str, Any]:
    if isinstance(b, FromStep):
        out = the_plan.steps[b.step].plugin.outputs[b.output]
        return {"step": b.step, "output": b.output, "glob": out.glob, "optional": out.optional}
    return {"path": str(b)}


def _files(record: dict[str, Any], book: Any) -> dict[str, list[Path]]:
    siblings = {c.data.get("name"): c for c in book.children(record["parent_id"])}
    files: dict[str, list[Path]] = {}
    for name, bindings in (record.get("step_inputs") or {}).items():
        for b in bindings:
            if "path" in b:
                files.setdefault(name, []).append(Path(b["path"]))
                continue
            sibling = siblings.get(b["step"])
            folder = book.store.folder(sibling.id) if sibling else None
            found = sorted(p for p in folder.glob(b["glob"]) if p.is_file()) if folder else []
            if not found and not b.get("optional"):
                raise InputError(f"step '{b['step']}' did not write its output '{b['output']}' "
                                 f"({b['glob']}), which step '{record.get('name')}' reads as '{name}'",
                                 pointer=f"/steps/{record.get('name')}/inputs/{name}")
            files.setdefault(name, []).extend(found)
    return files


def run_step(plugin: Any, *, params: dict[str, Any], record: dict[str, Any], output_dir: Path,
             book: Any, **kw: Any) -> RunResult:
    """The runner of a workflow step child (``ChildSpec.runner``): resolve the inputs from
    the sibling steps, use the owner's step cache, else run the plugin."""
    files = _files(record, book)
    request = copy.deepcopy(params)
    request["data"] = {}
    for name, paths in files.items():
        links: Any = [str(p) for p in paths]
        if not plugin.ui.data[name].multiple and len(links) == 1:
            links = links[0]
        request["data"][name] = {"value": links, "link": links}
    full = plugin.validate_request(request)
    key = step_key(plugin.id, plugin.version, full, files)
    cache = StepCache(Path(book.store.root) / CACHE_FOLDER) if record.get("use_cache", True) else None
    owner = record.get("owner") or "anonymous"
    hit = cache.lookup(owner, key) if cache else None
    job = book.apply(record["id"], lambda r: r.note(params=full, inputs=describe_inputs(files), cache_key=key))
    if hit is not None:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        linked = link_outputs(Path(hit["folder"]), output_dir)
        source = hit["record"]
        cached = {"job": source["id"], "folder": hit["folder"]}
        job = book.apply(record["id"], lambda r: r.finish(
            "succeeded", None, outputs=linked, figures=source.get("figures", []), cached_from=cached,
            message=f"cached: outputs linked from job {source['id']}"))
        summary = read_json(output_dir / "result.json") if (output_dir / "result.json").is_file() else {}
        return RunResult(job.state.value, output_dir, job.data, summary, job.reason)
    result = run_plugin(plugin, output_dir=output_dir, params=full, record=job.data, book=book, **kw)
    if result.ok and cache is not None:
        cache.remember(owner, key, Path(output_dir), record["id"])
    return result
