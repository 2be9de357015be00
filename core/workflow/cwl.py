"""CWL v1.2: export plugins and workflows, import a CWL Workflow of hisci tools.

A plugin becomes a ``CommandLineTool`` that calls ``hicli run ID -o out`` with one
``--input NAME=PATH`` per file and one ``--set extra.KEY=VALUE`` per parameter (types and
defaults from the parameter schema); its ``runtime.outputs`` become CWL outputs globbed in
``out/``. A workflow becomes a ``Workflow`` whose steps run those tools (nested workflows
run their own ``.cwl``). :func:`import_cwl` reads such a Workflow back into a workflow
folder (meta.json, data.json, ui.json, workflow.json).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import HisciError, InputError
from ..plugin import Plugin
from .graph import plugin_outputs
from .model import FromStep, FromWorkflow, Step, Workflow

CWL_VERSION = "v1.2"
OUT = "out"
SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CwlError(HisciError):
    code = "invalid_cwl"


# --------------------------------------------------------------------------- export

def export(plugin: Plugin, registry: Any, out_dir: Path) -> list[Path]:
    """Write ``<id>.cwl`` for ``plugin`` (and every tool or sub-workflow it uses) in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    _export(plugin, registry, out_dir, written)
    return list(written.values())


def _export(plugin: Plugin, registry: Any, out_dir: Path, written: dict[str, Path]) -> None:
    if plugin.id in written:
        return
    path = out_dir / f"{plugin.id}.cwl"
    written[plugin.id] = path
    if plugin.is_workflow:
        for step in plugin.workflow.steps.values():
            _export(registry.get(step.plugin), registry, out_dir, written)
        doc = workflow_document(plugin, registry)
    else:
        doc = tool_document(plugin)
    path.write_text("#!/usr/bin/env cwltool\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")


def _card(plugin: Plugin) -> dict[str, Any]:
    return {"label": plugin.meta.title("en"), "doc": plugin.meta.description("en")}


def param_type(prop: dict[str, Any]) -> Any:
    """The CWL type of one ``extra`` parameter from its JSON Schema."""
    kind = prop.get("type")
    if prop.get("anyOf") and any(a.get("type") == "boolean" for a in prop["anyOf"]):
        return "boolean"
    if "enum" in prop:
        values = [v for v in prop["enum"] if v != ""]
        if values and all(isinstance(v, str) and SYMBOL.match(v) for v in values) and len(values) == len(prop["enum"]):
            return {"type": "enum", "symbols": values}
        if all(isinstance(v, bool) for v in prop["enum"]):
            return "boolean"
        if all(isinstance(v, int) and not isinstance(v, bool) for v in prop["enum"]):
            return "int"
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in prop["enum"]):
            return "double"
        return "string"
    if kind == "integer":
        return "int"
    if kind == "number":
        return "double"
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        items = param_type(prop.get("items") or {})
        return {"type": "array", "items": items if isinstance(items, str) else "string"}
    return "string"


def _cwl_default(value: Any, cwl_type: Any) -> Any:
    if value is None:
        return None
    if cwl_type == "string" and not isinstance(value, str):
        return json.dumps(value) if isinstance(value, (list, dict)) else str(value).lower() \
            if isinstance(value, bool) else str(value)
    if cwl_type == "double" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if cwl_type == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(cwl_type, dict) and cwl_type.get("type") == "array":
        items = cwl_type["items"]
        return [_cwl_default(v, items) for v in value] if isinstance(value, list) else None
    return value


def _file_type(widget: Any) -> Any:
    base: Any = {"type": "array", "items": "File"} if widget.multiple else "File"
    return base if widget.required else ["null", base]


def tool_document(plugin: Plugin) -> dict[str, Any]:
    """The CommandLineTool that runs ``plugin`` with ``hicli run``."""
    inputs: dict[str, Any] = {}
    for name, widget in plugin.ui.data.items():
        if widget.type not in ("cloud-file", "hiplot-textarea"):
            continue
        per_item = {"prefix": "--input", "valueFrom": f"{name}=$(self.path)"}
        if widget.multiple:
            array = {"type": "array", "items": "File", "inputBinding": per_item}
            inputs[name] = {"type": array if widget.required else ["null", array], "inputBinding": {}}
        else:
            inputs[name] = {"type": _file_type(widget), "inputBinding": per_item}
    props = plugin.parameter_schema()["properties"]["extra"]["properties"]
    for key, prop in props.items():
        if key in inputs:
            raise CwlError(f"plugin {plugin.id}: parameter '{key}' has the name of an input",
                           pointer=f"/extra/{key}", hint="rename the parameter")
        cwl_type = param_type(prop)
        default = _cwl_default(prop.get("default"), cwl_type)
        entry: dict[str, Any] = {"type": cwl_type if default is not None else ["null", cwl_type],
                                 "inputBinding": {"prefix": "--set", "valueFrom": f"extra.{key}=$(self)"}}
        if default is not None:
            entry["default"] = default
        inputs[key] = entry
    outputs: dict[str, Any] = {}
    for name, out in plugin.outputs.items():
        kind: Any = {"type": "array", "items": "File"} if out.multiple else "File"
        outputs[name] = {"type": ["null", kind] if out.optional and not out.multiple else kind,
                         "outputBinding": {"glob": f"{OUT}/{out.glob}"}}
        if out.description:
            outputs[name]["doc"] = out.description if isinstance(out.description, str) \
                else out.description.get("en", "")
    outputs["run_folder"] = {"type": "Directory", "outputBinding": {"glob": OUT}}
    doc: dict[str, Any] = {"cwlVersion": CWL_VERSION, "class": "CommandLineTool", "id": plugin.id,
                           **_card(plugin),
                           "baseCommand": ["hicli", "run", plugin.id, "--quiet", "-o", OUT]}
    doc.update(inputs=inputs, outputs=outputs, stdout="summary.json")
    return doc


def workflow_document(plugin: Plugin, registry: Any) -> dict[str, Any]:
    """The CWL Workflow of a hisci workflow (steps run ``<plugin>.cwl``)."""
    wf = plugin.workflow
    inputs: dict[str, Any] = {}
    for name, widget in plugin.ui.data.items():
        inputs[name] = {"type": _file_type(widget)}
    props = plugin.parameter_schema()["properties"]["extra"]["properties"]
    for key, prop in props.items():
        cwl_type = param_type(prop)
        default = _cwl_default(prop.get("default"), cwl_type)
        inputs[key] = {"type": cwl_type if default is not None else ["null", cwl_type]}
        if default is not None:
            inputs[key]["default"] = default
    steps: dict[str, Any] = {}
    multiple = False
    for sid, step in wf.steps.items():
        if step.when:
            raise CwlError(f"step '{sid}' has a when condition, which CWL export does not translate",
                           pointer=f"/steps/{sid}/when", given=step.when,
                           hint="remove when, or export the steps without it")
        target = registry.get(step.plugin)
        tprops = target.parameter_schema()["properties"]["extra"]["properties"]
        ins: dict[str, Any] = {}
        for key, value in step.params.items():
            if isinstance(value, FromWorkflow):
                ins[key] = {"source": value.name}
            else:
                ins[key] = {"default": _cwl_default(value, param_type(tprops.get(key, {})))}
        for name, sources in step.inputs.items():
            refs = [s.name if isinstance(s, FromWorkflow) else f"{s.step}/{s.output}" for s in sources]
            if len(refs) > 1:
                multiple = True
                ins[name] = {"source": refs, "linkMerge": "merge_flattened"}
            else:
                ins[name] = {"source": refs[0]}
        entry: dict[str, Any] = {"run": f"{target.id}.cwl", "in": ins,
                                 "out": list(plugin_outputs(target, registry)) +
                                 ([] if target.is_workflow else ["run_folder"])}
        if step.label:
            entry["label"] = step.label
        steps[sid] = entry
    outputs = {}
    for name, src in wf.outputs.items():
        target = registry.get(wf.steps[src.step].plugin)
        out = plugin_outputs(target, registry)[src.output]
        kind: Any = {"type": "array", "items": "File"} if out.multiple else "File"
        outputs[name] = {"type": ["null", kind] if out.optional and not out.multiple else kind,
                         "outputSource": f"{src.step}/{src.output}"}
    requirements: dict[str, Any] = {}
    if any(registry.get(s.plugin).is_workflow for s in wf.steps.values()):
        requirements["SubworkflowFeatureRequirement"] = {}
    if multiple:
        requirements["MultipleInputFeatureRequirement"] = {}
    doc: dict[str, Any] = {"cwlVersion": CWL_VERSION, "class": "Workflow", "id": plugin.id,
                           **_card(plugin)}
    if requirements:
        doc["requirements"] = requirements
    doc.update(inputs=inputs, outputs=outputs, steps=steps)
    return doc


# --------------------------------------------------------------------------- import

def _load(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found", file=str(path)) from None
    except yaml.YAMLError as exc:
        raise CwlError(f"{path}: not valid YAML/JSON: {exc}", file=str(path)) from None
    if not isinstance(doc, dict) or "class" not in doc:
        raise CwlError(f"{path}: not a CWL document (no 'class')", file=str(path),
                       hint="give a CWL v1.2 Workflow")
    return doc


def _entries(section: Any) -> dict[str, Any]:
    """CWL allows maps or lists with ``id`` for inputs, outputs, steps and ``in``."""
    if isinstance(section, dict):
        return {k: (v if isinstance(v, dict) else {"type": v} if not isinstance(v, str) or "/" not in v
                    else {"source": v}) for k, v in section.items()}
    out = {}
    for item in section or []:
        key = str(item.get("id", "")).rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        out[key] = item
    return out


def _plugin_of(tool: dict[str, Any], where: str) -> str:
    base = tool.get("baseCommand") or []
    base = [base] if isinstance(base, str) else list(base)
    if tool.get("class") == "Workflow":
        return str(tool.get("id", "")).rsplit("#", 1)[-1]
    if len(base) >= 3 and base[0] == "hicli" and base[1] == "run":
        return base[2]
    raise CwlError(f"{where}: step does not run a hisci tool (baseCommand {base})",
                   hint="every step must run a CommandLineTool exported from a hisci plugin")


def _is_file(cwl_type: Any) -> bool:
    if isinstance(cwl_type, list):
        return any(_is_file(t) for t in cwl_type if t != "null")
    if isinstance(cwl_type, dict):
        return _is_file(cwl_type.get("items"))
    return isinstance(cwl_type, str) and cwl_type.rstrip("?[]") == "File"


def import_cwl(path: Path, out_dir: Path, registry: Any, plugin_id: str | None = None) -> Path:
    """Turn a CWL Workflow whose steps are hisci tools into a workflow folder; return it."""
    path = Path(path)
    doc = _load(path)
    if doc.get("class") != "Workflow":
        raise CwlError(f"{path}: class is {doc.get('class')!r}; import takes a Workflow",
                       file=str(path), given=doc.get("class"), allowed=["Workflow"])
    wf_inputs = _entries(doc.get("inputs"))
    steps: dict[str, Step] = {}
    for sid, raw in _entries(doc.get("steps")).items():
        run = raw.get("run")
        tool = _load(path.parent / run) if isinstance(run, str) else run
        pid = _plugin_of(tool, f"{path}: steps/{sid}")
        target = registry.get(pid)
        params: dict[str, Any] = {}
        inputs: dict[str, tuple] = {}
        for key, link in _entries(raw.get("in")).items():
            link = link if isinstance(link, dict) else {"source": link}
            sources = link.get("source")
            if sources is None:
                if "default" in link:
                    params[key] = _hisci_value(link["default"], target, key)
                continue
            sources = [sources] if isinstance(sources, str) else list(sources)
            if key in target.ui.data:
                inputs[key] = tuple(FromStep(*s.split("/", 1)) if "/" in s else FromWorkflow("data", s)
                                    for s in sources)
            else:
                params[key] = FromWorkflow("extra", sources[0])
        steps[sid] = Step(sid, pid, params, inputs, None, raw.get("label", ""))
    outputs = {}
    for name, raw in _entries(doc.get("outputs")).items():
        src = raw.get("outputSource")
        src = src[0] if isinstance(src, list) else src
        if not src or "/" not in src:
            raise CwlError(f"{path}: output '{name}' has no outputSource step/output", file=str(path))
        outputs[name] = FromStep(*src.split("/", 1))
    workflow = Workflow(steps, outputs)
    wid = plugin_id or str(doc.get("id") or path.stem).rsplit("#", 1)[-1]
    folder = Path(out_dir) / wid
    folder.mkdir(parents=True, exist_ok=True)
    _write_folder(folder, wid, doc, wf_inputs, workflow)
    return folder


def _hisci_value(value: Any, target: Plugin, key: str) -> Any:
    prop = target.parameter_schema()["properties"]["extra"]["properties"].get(key, {})
    if isinstance(value, str) and param_type(prop) == "string" and prop.get("type") == "array":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _write_folder(folder: Path, wid: str, doc: dict[str, Any], wf_inputs: dict[str, Any],
                  workflow: Workflow) -> None:
    data: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    ui_data: dict[str, Any] = {}
    ui_extra: dict[str, Any] = {}
    for name, raw in wf_inputs.items():
        kind = raw.get("type")
        optional = isinstance(kind, list) and "null" in kind or isinstance(kind, str) and kind.endswith("?")
        core = [t for t in kind if t != "null"][0] if isinstance(kind, list) else kind
        if _is_file(kind):
            many = isinstance(core, dict) or (isinstance(core, str) and core.endswith("[]"))
            data[name] = {"value": [] if many else "", "link": [] if many else ""}
            ui_data[name] = {"type": "cloud-file", "label": {"en": raw.get("label", name)},
                             "required": not optional, "multiple": many, "class": "col-12"}
            continue
        extra[name] = raw.get("default")
        widget: dict[str, Any] = {"label": {"en": raw.get("label", name)}, "class": "col-12 col-md-6"}
        if core == "boolean":
            widget["type"] = "switch"
        elif isinstance(core, dict) and core.get("type") == "enum":
            widget.update(type="select", items=list(core["symbols"]))
        elif isinstance(core, dict) and core.get("type") == "array":
            widget.update(type="combobox", multiple=True, items=[])
        else:
            widget["type"] = "text-field"
        ui_extra[name] = widget
    meta = {"name": {"en": doc.get("label") or wid}, "intro": {"en": doc.get("doc") or ""},
            "src": "", "href": "", "tag": ["workflow", "cwl"],
            "meta": {"author": "", "version": "0.1.0"},
            "runtime": {"version": "0.1.0", "queue": "cpu", "gpu": "none"}}
    data_json = {"module": "workflow", "tool": wid,
                 "params": {"textarea": {}, "config": {"data": data, "dataArg": {}, "general": {},
                                                        "extra": extra}}}
    ui = {"data": ui_data, "dataArg": {}, "extra": ui_extra}
    for name, document in (("meta.json", meta), ("data.json", data_json), ("ui.json", ui),
                           ("workflow.json", workflow.as_json())):
        (folder / name).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
