"""Plugin: one validated plugin folder. ``load_plugin`` checks it without importing its code."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticError

from . import schema_check as schemas
from .errors import PluginLoadError, Problem
from .expressions import check_ui_expressions
from .leniency import tolerate
from .models import DataSpec, Meta, Output, Runtime, UiSpec
from .workflow.model import WORKFLOW_FILE, Workflow

if TYPE_CHECKING:
    from .form import FileTexts
    from .params import ParamSpec

PLUGIN_ID = re.compile(r"^[A-Za-z0-9_-]+$")
JSON_FILES = ("meta.json", "data.json", "ui.json")


@dataclass(frozen=True)
class Plugin:
    """A plugin folder that passed validation.

    Attributes
    ----------
    id : the folder name, used by every front end.
    folder : where meta.json, data.json and ui.json live.
    source : "builtin", "path" or "entry-point:<distribution>".
    package : import name of the folder when it is a package on sys.path, else None
        (the runner then imports it by path).
    """

    id: str
    folder: Path
    source: str
    meta: Meta
    data: DataSpec
    ui: UiSpec
    raw: dict[str, Any] = field(repr=False, compare=False)
    package: str | None = None
    warnings: tuple[Problem, ...] = field(default=(), compare=False)
    workflow: Workflow | None = field(default=None, compare=False)

    @property
    def runtime(self) -> Runtime | None:
        return self.meta.runtime

    @property
    def is_workflow(self) -> bool:
        """True for a workflow folder (workflow.json instead of plugin.py)."""
        return self.workflow is not None

    @property
    def runnable(self) -> bool:
        return self.runtime is not None or self.is_workflow

    @property
    def outputs(self) -> dict[str, Output]:
        """Declared outputs (``runtime.outputs``); a workflow's are resolved by
        :func:`hisci.workflow.graph.plugin_outputs` against a registry."""
        return dict(self.runtime.outputs) if self.runtime else {}

    @property
    def version(self) -> str:
        return self.runtime.version if self.runtime else (self.meta.meta.version or "0")

    @cached_property
    def params(self) -> ParamSpec:
        from .params import ParamSpec

        return ParamSpec.from_plugin(self)

    def parameter_schema(self) -> dict[str, Any]:
        """The JSON Schema of a run request, derived from data.json and ui.json."""
        return self.params.json_schema

    def validate_request(self, request: dict[str, Any] | None = None,
                         files: FileTexts | None = None, live_inputs: tuple[str, ...] = ()) -> dict[str, Any]:
        """Fill defaults and validate; raise ParamsError listing every problem.

        Values of ``extra`` fields that the form hides for this request (``if``/``if_func``
        false) are dropped first, so a hidden field keeps its default, as in Hiplot's form.

        Parameters
        ----------
        request : the run request (flat or Hiplot-shaped).
        files : input id -> text, path or paths of the input files, so that visibility is
            judged as the form judged it (``retriveUniqueLine`` reads an uploaded file).
            Without them, a field that only a file's content could hide is kept.
        live_inputs : inputs fed by a live source (``hisci.live``): not required as files.
        """
        from .form import prune_hidden

        request = self.params.normalize(request or {})
        if isinstance(request, dict):
            request = prune_hidden(self.ui, request, self.params.fill_defaults(request), files)
        return self.params.validate(request, live_inputs=live_inputs)

    def example_request(self, index: int = 0) -> dict[str, Any]:
        """The request that exampleData (entry ``index``) makes."""
        return self.params.example_request(index)

    def load_entry(self) -> Callable[..., Any]:
        """Import the plugin's entry point (``module:function``) and return the function."""
        if self.is_workflow:
            raise PluginLoadError(
                [Problem("a workflow has no entry function; run it with hisci.workflow.local",
                         file=str(self.folder / WORKFLOW_FILE))], plugin_id=self.id)
        if self.runtime is None or self.runtime.entry is None:
            raise PluginLoadError(
                [Problem("this plugin has no runtime block, so it cannot be run",
                         file=str(self.folder / "meta.json"), pointer="/runtime",
                         hint='add "runtime": {"entry": "plugin:run", ...}')],
                plugin_id=self.id,
            )
        module_name, func_name = self.runtime.entry.split(":")
        module = importlib.import_module(f"{self._import_package()}.{module_name}")
        return getattr(module, func_name)

    def load_live_entry(self) -> Callable[..., Any]:
        """``run_live`` from the entry module (the entry itself when the module has none, so a
        ``run`` that checks ``ctx.live`` handles both)."""
        entry = self.load_entry()
        return getattr(sys.modules[entry.__module__], "run_live", entry)

    def _import_package(self) -> str:
        if self.package:
            return self.package
        name = f"hisci_plugin_{self.id.replace('-', '_')}"
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(
                name, self.folder / "__init__.py", submodule_search_locations=[str(self.folder)]
            )
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            if (self.folder / "__init__.py").exists():
                spec.loader.exec_module(module)
        return name

    def summary(self, lang: str = "en") -> dict[str, Any]:
        """Plain data for listings (hicli list --json, GET /plugins)."""
        return {
            "id": self.id,
            "module": self.data.module_name,
            "tool": self.data.tool,
            "source": self.source,
            "folder": str(self.folder),
            "runnable": self.runnable,
            "kind": "workflow" if self.is_workflow else "plugin",
            "queue": self.runtime.queue if self.runtime else None,
            "gpu": self.runtime.gpu if self.runtime else None,
            **self.meta.card(lang),
            "version": self.version,
            "warnings": [w.as_dict() for w in self.warnings],
        }


class CachedPlugin(Plugin):
    """A plugin restored from the registry cache (validated when its files last changed).

    Only meta.json is kept in the cache; data.json and ui.json are read again (with
    Hiplot's leniency) the first time a caller needs them; a workflow's workflow.json at once.
    """

    @classmethod
    def restore(cls, folder: Path, source: str, package: str | None, meta: dict[str, Any],
                warnings: tuple[Problem, ...]) -> CachedPlugin:
        plugin = object.__new__(cls)
        plugin.__dict__.update(id=folder.name, folder=folder, source=source, package=package,
                               meta=Meta.model_validate(meta), warnings=warnings, workflow=None)
        workflow_path = folder / WORKFLOW_FILE
        if workflow_path.exists():  # validated when cached (its size/mtime is in the fingerprint)
            plugin.__dict__["workflow"] = Workflow.from_json(schemas.read_json(workflow_path)[0])
        return plugin

    @cached_property
    def raw(self) -> dict[str, Any]:  # type: ignore[override]
        docs = {name: schemas.read_json(self.folder / name)[0] for name in JSON_FILES}
        return tolerate(docs, str(self.folder))[0]

    @cached_property
    def data(self) -> DataSpec:  # type: ignore[override]
        return DataSpec.model_validate(self.raw["data.json"])

    @cached_property
    def ui(self) -> UiSpec:  # type: ignore[override]
        return UiSpec.from_json(self.raw["ui.json"])


def load_plugin(folder: Path, source: str = "path", package: str | None = None) -> Plugin:
    """Read and validate a plugin folder; raise PluginLoadError with every problem found."""
    folder = Path(folder)
    plugin_id = folder.name
    problems: list[Problem] = []
    if not PLUGIN_ID.match(plugin_id):
        problems.append(Problem(
            f"plugin id {plugin_id!r} may hold only letters, digits, '_' and '-'",
            file=str(folder), given=plugin_id, hint="rename the folder"))
    raw: dict[str, Any] = {}
    for name in JSON_FILES:
        document, found = schemas.read_json(folder / name)
        problems += found
        if not found:
            raw[name] = document
    raw, warnings = tolerate(raw, str(folder))
    for name, document in raw.items():
        problems += schemas.check(document, name.split(".")[0], file=str(folder / name))
    workflow_path = folder / WORKFLOW_FILE
    if workflow_path.exists():
        document, found = schemas.read_json(workflow_path)
        problems += found or schemas.check(document, "workflow", file=str(workflow_path))
        raw[WORKFLOW_FILE] = document
    if problems:
        raise PluginLoadError(problems, plugin_id=plugin_id, summary=f"plugin '{plugin_id}' is invalid")
    try:
        meta = Meta.model_validate(raw["meta.json"])
        data = DataSpec.model_validate(raw["data.json"])
        ui = UiSpec.from_json(raw["ui.json"])
    except PydanticError as exc:
        raise PluginLoadError(
            [Problem(e["msg"], pointer=schemas.pointer(e["loc"]), file=str(folder)) for e in exc.errors()],
            plugin_id=plugin_id, summary=f"plugin '{plugin_id}' is invalid",
        ) from None
    workflow = Workflow.from_json(raw[WORKFLOW_FILE]) if WORKFLOW_FILE in raw else None
    plugin = Plugin(plugin_id, folder, source, meta, data, ui, raw, package, tuple(warnings), workflow)
    problems += _check_entry(plugin)
    problems += _check_runtime_inputs(plugin)
    problems += check_ui_expressions(plugin.ui, file=str(folder / "ui.json"))
    problems += plugin.params.problems
    if problems:
        raise PluginLoadError(problems, plugin_id=plugin_id, summary=f"plugin '{plugin_id}' is invalid")
    return plugin


def _check_entry(plugin: Plugin) -> list[Problem]:
    meta_file = str(plugin.folder / "meta.json")
    if plugin.is_workflow:
        if plugin.runtime and plugin.runtime.entry:
            return [Problem("a workflow folder has workflow.json instead of an entry function",
                            file=meta_file, pointer="/runtime/entry", given=plugin.runtime.entry,
                            hint="remove runtime.entry (or workflow.json)")]
        return []
    if plugin.runtime is None:
        return []
    if plugin.runtime.entry is None:
        return [Problem("runtime.entry is required (or a workflow.json for a workflow)",
                        file=meta_file, pointer="/runtime/entry",
                        hint='add "entry": "plugin:run" and a plugin.py with def run(ctx)')]
    module = plugin.runtime.entry.split(":")[0]
    path = plugin.folder / (module.replace(".", "/") + ".py")
    if path.exists():
        return []
    return [Problem(
        f"entry module '{module}' not found (looked for {path.name})",
        file=str(plugin.folder / "meta.json"), pointer="/runtime/entry",
        given=plugin.runtime.entry, hint=f"create {path.name} with a run(ctx) function",
    )]


def _check_runtime_inputs(plugin: Plugin) -> list[Problem]:
    """``runtime.inputs`` may only name the file inputs of ui.json."""
    if plugin.runtime is None:
        return []
    return [Problem(f"runtime.inputs names '{name}', which is not an input in ui.json data",
                    file=str(plugin.folder / "meta.json"), pointer=f"/runtime/inputs/{name}",
                    given=name, allowed=sorted(plugin.ui.data),
                    hint="use an id of ui.json data")
            for name in plugin.runtime.inputs if name not in plugin.ui.data]
