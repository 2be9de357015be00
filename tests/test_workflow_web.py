"""Web views of workflows: the step graph figure (state colours, problems marked, click
targets), the workflow job page's step panel, and the preview page's workflow checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dash_app.pages.job import steps_panel
from dash_app.pages.preview import PreviewCache, graph_panel, workflow_problems
from hisci import Registry, Settings
from hisci.workflow.figure import STATE_COLOURS, graph_figure, graph_of_workflow, layers, problems_by_step

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:dash.development.base_component")
BUILTIN = Path(__file__).parents[1] / "plugins"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover(Settings(entry_points=False))


def _find(component, cid):
    """The component with id ``cid`` inside a Dash tree (or None)."""
    if getattr(component, "id", None) == cid:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children] if children is not None else []:
        found = _find(child, cid)
        if found is not None:
            return found
    return None


def test_graph_figure_layers_colours_and_links(registry) -> None:
    graph = graph_of_workflow(registry.get("nhit_pipeline"))
    assert layers(graph) == {"simulate": 0, "trigger": 1, "check": 2}
    fig = graph_figure(graph, {"simulate": "succeeded", "trigger": "failed"},
                       links={"simulate": "/jobs/a", "trigger": "/jobs/b"})
    trace = fig.data[0]
    assert list(trace.x) == [0, 1, 2]
    assert list(trace.marker.color) == [STATE_COLOURS["succeeded"], STATE_COLOURS["failed"],
                                        STATE_COLOURS["planned"]]
    assert list(trace.customdata) == ["/jobs/a", "/jobs/b", ""]
    assert len(fig.layout.annotations) == 3  # simulate->trigger, trigger->check, simulate->check


def test_job_page_step_panel(registry) -> None:
    class Env:
        service = None

        def href(self, path: str) -> str:
            return "/app" + path

    record = {"kind": "workflow", "graph": {
        "simulate": {"plugin": "nhit_simulate", "depends_on": []},
        "trigger": {"plugin": "nhit_trigger", "depends_on": ["simulate"]},
        "check": {"plugin": "nhit_check", "depends_on": ["trigger"], "skipped": "skipped: when"}},
        "children": [{"name": "simulate", "id": "c1", "status": "succeeded", "cached_from": {"job": "old"}},
                     {"name": "trigger", "id": "c2", "status": "failed", "reason": "ValueError: x"}]}
    panel = steps_panel(Env(), None, record, "en")
    figure = _find(panel, "hs-job-stepgraph").figure
    assert figure.layout.meta["states"] == {"simulate": "succeeded", "trigger": "failed", "check": "skipped"}
    assert list(figure.data[0].customdata) == ["/app/jobs/c1", "/app/jobs/c2", ""]
    listing = _find(panel, "hs-job-steplist")
    text = json.dumps(listing.to_plotly_json(), default=lambda o: o.to_plotly_json())
    assert "/app/jobs/c1" in text and "cached" in text and "ValueError: x" in text
    assert steps_panel(Env(), None, {"kind": "job"}, "en") is None


def test_preview_checks_a_workflow_folder_and_marks_problem_steps(registry, tmp_path) -> None:
    texts = {name: (BUILTIN / "nhit_pipeline" / name).read_text() for name in
             ("meta.json", "data.json", "ui.json", "workflow.json")}
    cache = PreviewCache()
    good = cache.build(texts, None)
    assert good["problems"] == [] and good["plugin"].is_workflow
    assert workflow_problems(good["plugin"], registry) == []

    broken = json.loads(texts["workflow.json"])
    broken["steps"]["trigger"]["inputs"]["hits"]["output"] = "stram"
    broken["steps"]["check"]["plugin"] = "nhit_chek"
    entry = cache.build(dict(texts, **{"workflow.json": json.dumps(broken)}), None)
    problems = workflow_problems(entry["plugin"], registry)
    marked = problems_by_step(problems)
    assert set(marked) == {"trigger", "check"}
    assert any("no output 'stram'" in m for m in marked["trigger"])
    panel = graph_panel(entry["plugin"], problems, "en")
    fig = _find(panel, "hs-pv-graphfig").figure
    assert fig.layout.meta["states"] == {"simulate": "planned", "trigger": "problem", "check": "problem"}
    assert graph_panel(registry.get("table_plot"), [], "en").children == "—"


def test_preview_of_a_plain_plugin_has_no_workflow_file(registry) -> None:
    texts = {name: (BUILTIN / "table_plot" / name).read_text() for name in ("meta.json", "data.json", "ui.json")}
    entry = PreviewCache().build(dict(texts, **{"workflow.json": ""}), registry.get("table_plot"))
    assert entry["problems"] == [] and not entry["plugin"].is_workflow
    assert not (entry["folder"] / "workflow.json").exists()


def test_preview_runs_a_workflow_example_in_its_child_process(registry, tmp_path) -> None:
    from dash_app.pages.preview import run_example

    parts = run_example(registry.get("xas_auto_lcf"), tmp_path, "en")
    status = next(p for p in parts if getattr(p, "id", None) == "hs-pv-status")
    assert status.children[0].children == "succeeded"
    summary = json.loads(next(p for p in parts if getattr(p, "id", None) == "hs-pv-result-json").children)
    assert summary["steps"] == {"match": {"status": "succeeded", "cached": False, "reason": None},
                                "lcf": {"status": "succeeded", "cached": False, "reason": None}}
    assert summary["outputs"]["lcf"] == ["lcf.csv"]
