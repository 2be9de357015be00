"""workflow.json as plain objects: steps keyed by id, links to the workflow's form or to steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WORKFLOW_FILE = "workflow.json"


@dataclass(frozen=True)
class FromWorkflow:
    """A field of the workflow's own form: ``data.<input>`` or ``extra.<param>``."""

    section: str
    name: str

    def as_json(self) -> dict[str, str]:
        return {"from": f"{self.section}.{self.name}"}


@dataclass(frozen=True)
class FromStep:
    """Output ``output`` (a name in the plugin's ``runtime.outputs``) of step ``step``."""

    step: str
    output: str

    def as_json(self) -> dict[str, str]:
        return {"step": self.step, "output": self.output}


Source = FromWorkflow | FromStep


@dataclass(frozen=True)
class Step:
    """One step: a plugin (or workflow) id, its ``extra`` params and its file inputs.

    ``params`` values are constants or :class:`FromWorkflow`; ``inputs`` values are lists of
    sources (one entry for a single file, several for a multi-file input).
    """

    id: str
    plugin: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, tuple[Source, ...]] = field(default_factory=dict)
    when: str | None = None
    label: str = ""

    @property
    def upstream(self) -> list[str]:
        """Ids of the steps this one reads outputs of, in input order, without repeats."""
        seen: list[str] = []
        for sources in self.inputs.values():
            for src in sources:
                if isinstance(src, FromStep) and src.step not in seen:
                    seen.append(src.step)
        return seen

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"plugin": self.plugin}
        if self.label:
            out["label"] = self.label
        if self.params:
            out["params"] = {k: v.as_json() if isinstance(v, FromWorkflow) else v
                             for k, v in self.params.items()}
        if self.inputs:
            out["inputs"] = {k: v[0].as_json() if len(v) == 1 else [s.as_json() for s in v]
                             for k, v in self.inputs.items()}
        if self.when:
            out["when"] = self.when
        return out


@dataclass(frozen=True)
class Workflow:
    """The parsed workflow.json of one workflow folder."""

    steps: dict[str, Step]
    outputs: dict[str, FromStep] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Workflow:
        """Build from a document that passed ``workflow.schema.json``."""
        steps = {}
        for sid, raw in (doc.get("steps") or {}).items():
            params = {k: _from(v) if _is_from(v) else v for k, v in (raw.get("params") or {}).items()}
            inputs = {k: tuple(_source(s) for s in (v if isinstance(v, list) else [v]))
                      for k, v in (raw.get("inputs") or {}).items()}
            steps[sid] = Step(sid, raw["plugin"], params, inputs, raw.get("when"), raw.get("label", ""))
        outputs = {k: FromStep(v["step"], v["output"]) for k, v in (doc.get("outputs") or {}).items()}
        return cls(steps, outputs)

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"steps": {sid: s.as_json() for sid, s in self.steps.items()}}
        if self.outputs:
            doc["outputs"] = {k: v.as_json() for k, v in self.outputs.items()}
        return doc

    def order(self) -> list[str]:
        """Step ids in dependency order (Kahn, stable by file order). Assumes no cycle."""
        done: list[str] = []
        pending = list(self.steps)
        while pending:
            ready = [s for s in pending
                     if all(u in done or u not in self.steps for u in self.steps[s].upstream)]
            if not ready:  # a cycle: keep file order for the rest (graph.check reports it)
                return done + pending
            done += ready
            pending = [s for s in pending if s not in ready]
        return done


def _is_from(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"from"}


def _from(value: dict[str, str]) -> FromWorkflow:
    section, _, name = value["from"].partition(".")
    return FromWorkflow(section, name)


def _source(value: dict[str, str]) -> Source:
    return _from(value) if "from" in value else FromStep(value["step"], value["output"])
