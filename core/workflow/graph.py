"""Check a workflow against a registry (JSON pointers into workflow.json) and expand it.

:func:`check` finds every problem before anything runs: unknown plugins, parameters and
outputs, type or extension mismatches, cycles (also through nested workflows) and
required inputs nothing binds. :func:`plan` turns a validated workflow and a request into
a flat list of plugin steps (nested workflows are expanded, ids joined with ``.``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator

from ..errors import HisciError, ParamsError, Problem, did_you_mean
from ..expressions import ExpressionError, check_expression, evaluate, truthy
from ..form import hiplot_params
from ..models import Output
from .model import WORKFLOW_FILE, FromStep, FromWorkflow, Workflow

if TYPE_CHECKING:
    from ..plugin import Plugin

Binding = Path | FromStep


class RegistryView:
    """A registry plus extra plugins (a folder being validated), optionally falling back to
    another registry (``fallback()``, built once) for ids the first does not know."""

    def __init__(self, registry: Any, extra: dict[str, Plugin] | None = None,
                 fallback: Any = None) -> None:
        self.registry = registry
        self.extra = extra or {}
        self._fallback = fallback
        self._other: Any = None

    def get(self, plugin_id: str) -> Plugin:
        if plugin_id in self.extra:
            return self.extra[plugin_id]
        try:
            return self.registry.get(plugin_id)
        except HisciError:
            if self._fallback is None:
                raise
            if self._other is None:
                self._other = self._fallback()
            return self._other.get(plugin_id)


def check(plugin: Plugin, registry: Any, _stack: tuple[str, ...] = ()) -> list[Problem]:
    """Every problem of ``plugin``'s workflow.json against ``registry`` (empty when sound).

    Parameters
    ----------
    plugin : a workflow plugin (``plugin.workflow`` set).
    registry : anything with ``get(id) -> Plugin`` that raises HisciError for unknown ids
        (a :class:`~hisci.registry.Registry`, or one plus the folder being validated).
    """
    wf = plugin.workflow
    assert wf is not None, f"{plugin.id} is not a workflow"
    file = str(plugin.folder / WORKFLOW_FILE)
    stack = _stack + (plugin.id,)
    problems: list[Problem] = []

    def add(message: str, pointer: str, **kw: Any) -> None:
        problems.append(Problem(message, pointer=pointer, file=file, **kw))

    resolved: dict[str, Plugin] = {}
    for sid, step in wf.steps.items():
        ptr = f"/steps/{sid}"
        if step.plugin in stack:
            add(f"workflow '{step.plugin}' contains itself (through {' -> '.join(stack)})",
                f"{ptr}/plugin", given=step.plugin, hint="a workflow may not nest itself")
            continue
        try:
            target = registry.get(step.plugin)
        except HisciError as err:
            add(f"step '{sid}': {err.message}", f"{ptr}/plugin", given=step.plugin,
                allowed=err.allowed, hint=err.hint or "name an installed plugin")
            continue
        if not target.runnable:
            add(f"step '{sid}': plugin '{step.plugin}' has no runtime block, so it cannot run",
                f"{ptr}/plugin", given=step.plugin)
            continue
        if target.is_workflow:
            inner = check(target, registry, stack)
            if inner:
                add(f"step '{sid}': workflow '{step.plugin}' is invalid: {inner[0]}",
                    f"{ptr}/plugin", given=step.plugin)
                continue
        resolved[sid] = target
        problems += [Problem(m, pointer=p, file=file, given=g, allowed=a, hint=h)
                     for m, p, g, a, h in _check_params(sid, step.params, target, plugin)]
        if step.when:
            bad = check_expression(step.when, pointer=f"{ptr}/when", file=file)
            if bad:
                problems.append(bad)
    for sid, step in wf.steps.items():
        if sid not in resolved:
            continue
        problems += [Problem(m, pointer=p, file=file, given=g, allowed=a, hint=h)
                     for m, p, g, a, h in _check_inputs(sid, step, resolved, wf, plugin, registry)]
    problems += [Problem(m, pointer=p, file=file) for m, p in _cycles(wf)]
    for name, src in wf.outputs.items():
        ptr = f"/outputs/{name}"
        if src.step not in wf.steps:
            add(f"output '{name}' names unknown step '{src.step}'{did_you_mean(src.step, wf.steps)}",
                f"{ptr}/step", given=src.step, allowed=sorted(wf.steps))
        elif src.step in resolved:
            outs = plugin_outputs(resolved[src.step], registry)
            if src.output not in outs:
                add(f"output '{name}': step '{src.step}' ({resolved[src.step].id}) has no output "
                    f"'{src.output}'{did_you_mean(src.output, outs)}", f"{ptr}/output",
                    given=src.output, allowed=sorted(outs),
                    hint="use a name of that plugin's runtime.outputs")
    return problems


def _check_params(sid: str, params: dict[str, Any], target: Plugin, owner: Plugin
                  ) -> list[tuple[str, str, Any, Any, str]]:
    out = []
    props = target.parameter_schema()["properties"]["extra"]["properties"]
    own = owner.parameter_schema()["properties"]["extra"]["properties"]
    for key, value in params.items():
        ptr = f"/steps/{sid}/params/{key}"
        if key not in props:
            out.append((f"step '{sid}': {target.id} has no parameter '{key}'{did_you_mean(key, props)}",
                        ptr, key, sorted(props), "use a key of the plugin's data.json extra"))
            continue
        if isinstance(value, FromWorkflow):
            if value.section != "extra":
                out.append((f"step '{sid}': parameter '{key}' takes a value or extra.<name>, "
                            f"not {value.section}.{value.name}", f"{ptr}/from",
                            f"{value.section}.{value.name}", None, "files go under inputs"))
            elif value.name not in own:
                out.append((f"step '{sid}': the workflow has no parameter extra.{value.name}"
                            f"{did_you_mean(value.name, own)}", f"{ptr}/from", value.name,
                            sorted(own), "add it to the workflow's data.json extra (and ui.json)"))
            continue
        for err in Draft202012Validator(props[key]).iter_errors(value):
            out.append((f"step '{sid}': {target.id} parameter '{key}': {err.message}", ptr,
                        value, props[key].get("enum"), ""))
            break
    return out


def _check_inputs(sid: str, step: Any, resolved: dict[str, Plugin], wf: Workflow,
                  owner: Plugin, registry: Any) -> list[tuple[str, str, Any, Any, str]]:
    target = resolved[sid]
    out = []
    for name, sources in step.inputs.items():
        ptr = f"/steps/{sid}/inputs/{name}"
        widget = target.ui.data.get(name)
        if widget is None:
            out.append((f"step '{sid}': {target.id} has no input '{name}'"
                        f"{did_you_mean(name, target.ui.data)}", ptr, name,
                        sorted(target.ui.data), "use an id of the plugin's ui.json data"))
            continue
        if len(sources) > 1 and not widget.multiple:
            out.append((f"step '{sid}': input '{name}' of {target.id} takes one file, "
                        f"{len(sources)} are linked", ptr, len(sources), 1, ""))
        for i, src in enumerate(sources):
            sp = f"{ptr}/{i}" if len(sources) > 1 else ptr
            if isinstance(src, FromWorkflow):
                if src.section != "data":
                    out.append((f"step '{sid}': input '{name}' takes a file: data.<input> of "
                                f"the workflow or a step output, not {src.section}.{src.name}",
                                f"{sp}/from", f"{src.section}.{src.name}", None, ""))
                elif src.name not in owner.ui.data:
                    out.append((f"step '{sid}': the workflow has no input data.{src.name}"
                                f"{did_you_mean(src.name, owner.ui.data)}", f"{sp}/from",
                                src.name, sorted(owner.ui.data),
                                "add it to the workflow's ui.json data and data.json"))
                continue
            if src.step not in wf.steps:
                out.append((f"step '{sid}': input '{name}' names unknown step '{src.step}'"
                            f"{did_you_mean(src.step, wf.steps)}", f"{sp}/step", src.step,
                            sorted(wf.steps), ""))
                continue
            if src.step not in resolved:
                continue
            outs = plugin_outputs(resolved[src.step], registry)
            produced = outs.get(src.output)
            if produced is None:
                out.append((f"step '{sid}': step '{src.step}' ({resolved[src.step].id}) has no "
                            f"output '{src.output}'{did_you_mean(src.output, outs)}",
                            f"{sp}/output", src.output, sorted(outs),
                            "use a name of that plugin's runtime.outputs"))
                continue
            wanted = target.runtime.inputs.get(name) if target.runtime else None
            if wanted and produced.type and wanted.type != produced.type:
                out.append((f"step '{sid}': input '{name}' of {target.id} takes type "
                            f"'{wanted.type}' but {src.step}.{src.output} is '{produced.type}'",
                            sp, produced.type, wanted.type, "link an output of the right type"))
            exts = [e.lower().lstrip(".") for e in (widget.exts or [])]
            if exts and produced.ext and produced.ext not in exts:
                out.append((f"step '{sid}': input '{name}' of {target.id} accepts "
                            f"{', '.join(exts)} but {src.step}.{src.output} is .{produced.ext}",
                            sp, produced.ext, exts, "link an output with an accepted extension"))
    for name, widget in target.ui.data.items():
        if widget.required and name not in step.inputs:
            out.append((f"step '{sid}': required input '{name}' of {target.id} is not bound",
                        f"/steps/{sid}/inputs/{name}", None, None,
                        f'add "inputs": {{"{name}": {{"step": ..., "output": ...}}}} or '
                        f'{{"from": "data.<input>"}}'))
    return out


def _cycles(wf: Workflow) -> list[tuple[str, str]]:
    """One problem per cycle, at the input that closes it."""
    state: dict[str, int] = {}
    found: list[tuple[str, str]] = []

    def visit(sid: str, path: list[str]) -> None:
        state[sid] = 1
        step = wf.steps[sid]
        for name, sources in step.inputs.items():
            for src in sources:
                if not isinstance(src, FromStep) or src.step not in wf.steps:
                    continue
                if state.get(src.step) == 1:
                    loop = path[path.index(src.step):] + [sid, src.step] if src.step in path else [sid, src.step]
                    found.append((f"cycle: {' -> '.join(reversed(_dedupe(loop)))} "
                                  "(a step may only read outputs of steps before it)",
                                  f"/steps/{sid}/inputs/{name}"))
                elif src.step not in state:
                    visit(src.step, path + [sid])
        state[sid] = 2

    for sid in wf.steps:
        if sid not in state:
            visit(sid, [])
    return found


def _dedupe(loop: list[str]) -> list[str]:
    out: list[str] = []
    for s in loop:
        if not out or out[-1] != s:
            out.append(s)
    return out


def plugin_outputs(plugin: Plugin, registry: Any, _depth: int = 0) -> dict[str, Output]:
    """A plugin's named outputs; a workflow's are those of the steps it exposes."""
    if not plugin.is_workflow:
        return plugin.outputs
    if _depth > 20:
        return {}
    outs: dict[str, Output] = {}
    for name, src in plugin.workflow.outputs.items():
        step = plugin.workflow.steps.get(src.step)
        try:
            target = registry.get(step.plugin) if step else None
        except HisciError:
            target = None
        if target is not None:
            found = plugin_outputs(target, registry, _depth + 1).get(src.output)
            if found is not None:
                outs[name] = found
    return outs


# --------------------------------------------------------------------------- planning

@dataclass
class PlannedStep:
    """One plugin run of an expanded workflow.

    ``inputs`` maps the plugin's input ids to files of the request or outputs of earlier
    steps (flat ids); ``skipped`` holds why the step does not run (its ``when``).
    """

    id: str
    plugin: Plugin
    extra: dict[str, Any]
    inputs: dict[str, list[Binding]] = field(default_factory=dict)
    skipped: str | None = None
    label: str = ""

    @property
    def upstream(self) -> list[str]:
        seen: list[str] = []
        for bindings in self.inputs.values():
            for b in bindings:
                if isinstance(b, FromStep) and b.step not in seen:
                    seen.append(b.step)
        return seen

    def request(self, files: dict[str, list[Path]]) -> dict[str, Any]:
        """The step's run request once ``files`` (resolved inputs) are known."""
        data = {}
        for name, paths in files.items():
            links = [str(p) for p in paths]
            value: Any = links if self.plugin.ui.data[name].multiple or len(links) > 1 else links[0]
            data[name] = {"value": value, "link": value}
        return {"extra": dict(self.extra), "data": data}


@dataclass
class Plan:
    """A workflow expanded into plugin steps in dependency order, and its outputs."""

    steps: dict[str, PlannedStep]
    outputs: dict[str, FromStep]

    def dependents(self, sid: str) -> list[str]:
        return [s.id for s in self.steps.values() if sid in s.upstream]


def plan(plugin: Plugin, params: dict[str, Any], files: dict[str, list[Binding]],
         registry: Any, prefix: str = "") -> Plan:
    """Expand ``plugin``'s workflow for one validated request.

    Parameters
    ----------
    params : the workflow's validated params (``extra`` used for links and ``when``).
    files : the workflow's inputs: paths, or (for a nested workflow) outer step outputs.
    """
    wf = plugin.workflow
    assert wf is not None
    extra = params.get("extra") or {}
    context = {**extra, "extra": extra, "data": params.get("data") or {},
               "params": hiplot_params(params)}
    steps: dict[str, PlannedStep] = {}
    exposed: dict[str, dict[str, FromStep]] = {}  # nested workflow id -> its outputs (flat)
    skipped_local: set[str] = set()
    for sid in wf.order():
        step = wf.steps[sid]
        target = registry.get(step.plugin)
        step_extra = {k: extra.get(v.name) if isinstance(v, FromWorkflow) else v
                      for k, v in step.params.items()}
        bindings: dict[str, list[Binding]] = {}
        skipped = None
        for name, sources in step.inputs.items():
            for src in sources:
                if isinstance(src, FromWorkflow):
                    bindings.setdefault(name, []).extend(files.get(src.name, []))
                elif src.step in skipped_local:
                    skipped = f"skipped: step '{src.step}' was skipped"
                elif src.step in exposed:
                    inner = exposed[src.step].get(src.output)
                    if inner is None:
                        skipped = f"skipped: workflow step '{src.step}' has no output '{src.output}'"
                    else:
                        bindings.setdefault(name, []).append(inner)
                else:
                    bindings.setdefault(name, []).append(FromStep(prefix + src.step, src.output))
        if skipped is None and step.when:
            try:
                if not truthy(evaluate(step.when, context)):
                    skipped = f"skipped: when {step.when!r} is false"
            except ExpressionError as exc:
                raise ParamsError([Problem(f"step '{sid}': cannot evaluate when: {exc}",
                                           pointer=f"/steps/{sid}/when", given=step.when)],
                                  plugin_id=plugin.id) from None
        if skipped:
            skipped_local.add(sid)
        sub_params = _validate_step(target, sid, step_extra, plugin.id)
        if target.is_workflow:
            inner = plan(target, sub_params, bindings, registry, prefix=f"{prefix}{sid}.")
            for ps in inner.steps.values():
                if skipped and not ps.skipped:
                    ps.skipped = skipped
                steps[ps.id] = ps
            exposed[sid] = inner.outputs
            continue
        steps[prefix + sid] = PlannedStep(prefix + sid, target, sub_params["extra"], bindings,
                                          skipped, step.label)
    outputs = {}
    for name, src in wf.outputs.items():
        if src.step in exposed:
            if src.output in exposed[src.step]:
                outputs[name] = exposed[src.step][src.output]
        else:
            outputs[name] = FromStep(prefix + src.step, src.output)
    return Plan(steps, outputs)


def _validate_step(target: Plugin, sid: str, extra: dict[str, Any], owner: str) -> dict[str, Any]:
    try:
        return target.params.validate({"extra": extra}, check_inputs=False)
    except ParamsError as exc:
        raise ParamsError([Problem(f"step '{sid}' ({target.id}): {p.message}",
                                   pointer=f"/steps/{sid}/params{p.pointer.removeprefix('/extra')}",
                                   given=p.given, allowed=p.allowed, hint=p.hint)
                           for p in exc.problems], plugin_id=owner,
                          summary=f"workflow '{owner}': step '{sid}' has invalid params") from None
