"""Workflows: runtime.outputs, workflow.json schema and graph checks (JSON pointers),
nesting, local runs of the built-in workflows, parallel steps, caching, failure and when."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hicli.main import cli as hicli
from hisci import Registry, Settings, load_plugin
from hisci.errors import PluginLoadError
from hisci.workflow.cache import StepCache
from hisci.workflow.graph import RegistryView, check, plan
from hisci.workflow.local import run_workflow

BUILTIN = Path(__file__).parents[1] / "plugins"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover(Settings(entry_points=False))


def make_workflow(root: Path, wid: str, workflow: dict[str, Any], extra: dict[str, Any] | None = None,
                  data: dict[str, dict[str, Any]] | None = None) -> Path:
    """A workflow folder with a form of ``extra`` (text fields) and ``data`` (file inputs)."""
    folder = root / wid
    folder.mkdir(parents=True)
    extra = extra or {}
    data = data or {}
    meta = {"name": {"en": wid}, "intro": {"en": "test workflow"}, "runtime": {"version": "1.0.0"}}
    config = {"data": {k: {"value": "", "link": ""} for k in data}, "dataArg": {}, "general": {},
              "extra": extra}
    ui = {"data": {k: {"type": "cloud-file", "required": False, **w} for k, w in data.items()},
          "dataArg": {},
          "extra": {k: {"type": "switch" if isinstance(v, bool) else "text-field"} for k, v in extra.items()}}
    for name, doc in (("meta.json", meta), ("data.json", {"module": "t", "tool": wid,
                                                          "params": {"textarea": {}, "config": config}}),
                      ("ui.json", ui), ("workflow.json", workflow)):
        (folder / name).write_text(json.dumps(doc), "utf-8")
    return folder


def problems_of(folder: Path, registry: Registry, *others: Path) -> list:
    plugin = load_plugin(folder)
    extra = {p.id: p for p in (load_plugin(o) for o in others)}
    extra[plugin.id] = plugin
    return check(plugin, RegistryView(registry, extra))


def test_every_runnable_builtin_declares_outputs(registry) -> None:
    for plugin in registry:
        if plugin.is_workflow:
            continue
        assert plugin.outputs, f"{plugin.id} declares no runtime.outputs"
        for name, out in plugin.outputs.items():
            assert out.glob and out.type, (plugin.id, name)
    assert registry.get("nhit_trigger").outputs["events"].glob == "events.dat"
    assert registry.get("nhit_trigger").outputs["events"].type == "nhit-events"
    assert registry.get("xas_match").outputs["matches"].ext == "csv"


def test_builtin_workflows_load_as_plugins(registry) -> None:
    for wid in ("nhit_pipeline", "xas_auto_lcf"):
        plugin = registry.get(wid)
        assert plugin.is_workflow and plugin.runnable
        assert plugin.summary()["kind"] == "workflow"
        assert check(plugin, registry) == []
    assert list(registry.get("nhit_pipeline").workflow.order()) == ["simulate", "trigger", "check"]


def test_schema_error_has_pointer(tmp_path) -> None:
    folder = make_workflow(tmp_path, "bad_schema", {"steps": {"a": {"plugn": "nhit_simulate"}}})
    with pytest.raises(PluginLoadError) as exc:
        load_plugin(folder)
    pointers = {p.pointer for p in exc.value.problems}
    assert "/steps/a" in pointers
    assert any("workflow.json" in p.file for p in exc.value.problems)


def test_runtime_entry_is_refused_in_a_workflow(tmp_path) -> None:
    folder = make_workflow(tmp_path, "with_entry", {"steps": {"a": {"plugin": "nhit_simulate"}}})
    meta = json.loads((folder / "meta.json").read_text())
    meta["runtime"]["entry"] = "plugin:run"
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(PluginLoadError) as exc:
        load_plugin(folder)
    assert exc.value.problems[0].pointer == "/runtime/entry"


def _only(problems: list, pointer: str) -> Any:
    found = [p for p in problems if p.pointer == pointer]
    assert found, f"no problem at {pointer}: {[(p.pointer, p.message) for p in problems]}"
    return found[0]


def test_graph_errors_each_with_pointer(tmp_path, registry) -> None:
    wf = {
        "steps": {
            "sim": {"plugin": "nhit_simulat", "params": {}},
            "sim2": {"plugin": "nhit_simulate", "params": {"secs": 1, "seed": {"from": "extra.nope"}}},
            "trig": {"plugin": "nhit_trigger",
                     "inputs": {"hits": {"step": "sim2", "output": "streem"}}},
            "trig2": {"plugin": "nhit_trigger",
                      "inputs": {"hits": {"step": "sim2", "output": "truth"}}},
            "check": {"plugin": "nhit_check",
                      "inputs": {"hits": {"step": "sim2", "output": "stream"}}},
            "check2": {"plugin": "nhit_check",
                       "inputs": {"events": {"step": "sim2", "output": "stream"}}},
        },
        "outputs": {"events": {"step": "trig", "output": "evnts"}},
    }
    problems = problems_of(make_workflow(tmp_path, "bad_graph", wf), registry)
    unknown = _only(problems, "/steps/sim/plugin")
    assert "unknown plugin id 'nhit_simulat'" in unknown.message and "nhit_simulate" in unknown.message
    assert "has no parameter 'secs'" in _only(problems, "/steps/sim2/params/secs").message
    assert "no parameter extra.nope" in _only(problems, "/steps/sim2/params/seed/from").message
    bad_out = _only(problems, "/steps/trig/inputs/hits/output")
    assert "no output 'streem'" in bad_out.message and "stream" in bad_out.message
    assert bad_out.allowed == ["stream", "truth"]
    mismatch = _only(problems, "/steps/trig2/inputs/hits")
    assert "takes type 'nhit-hits'" in mismatch.message and "'nhit-truth'" in mismatch.message
    assert "accepts hits but sim2.truth is .npz" in " ".join(
        p.message for p in problems if p.pointer == "/steps/trig2/inputs/hits")
    unbound = _only(problems, "/steps/check/inputs/events")
    assert "required input 'events' of nhit_check is not bound" in unbound.message
    assert "takes type 'nhit-events'" in _only(problems, "/steps/check2/inputs/events").message
    assert "no output 'evnts'" in _only(problems, "/outputs/events/output").message
    assert all(p.file.endswith("workflow.json") for p in problems)


def test_cycle_is_reported_at_the_closing_input(tmp_path, registry) -> None:
    wf = {"steps": {
        "a": {"plugin": "nhit_trigger", "inputs": {"hits": {"step": "b", "output": "stream"}}},
        "b": {"plugin": "nhit_trigger", "inputs": {"hits": {"step": "a", "output": "events"}}},
    }}
    problems = problems_of(make_workflow(tmp_path, "loop", wf), registry)
    cycle = [p for p in problems if p.message.startswith("cycle:")]
    assert len(cycle) == 1
    assert cycle[0].pointer in ("/steps/a/inputs/hits", "/steps/b/inputs/hits")
    assert "a -> b" in cycle[0].message or "b -> a" in cycle[0].message


def test_hicli_validate_reports_workflow_problems(cli, tmp_path) -> None:
    wf = {"steps": {"t": {"plugin": "nhit_trigger", "inputs": {}}}}
    folder = make_workflow(tmp_path, "unbound", wf)
    result = cli.invoke(hicli, ["validate", str(folder)])
    assert result.exit_code == 1
    assert "/steps/t/inputs/hits: step 't': required input 'hits' of nhit_trigger is not bound" in result.output
    ok = cli.invoke(hicli, ["validate", str(BUILTIN / "nhit_pipeline")])
    assert ok.exit_code == 0 and ok.output.startswith("ok")


def test_invalid_workflow_is_left_out_of_the_registry(tmp_path, isolated_env) -> None:
    make_workflow(tmp_path / "p", "broken_wf", {"steps": {"x": {"plugin": "no_such_plugin"}}})
    registry = Registry.discover(Settings(plugin_path=(tmp_path / "p",), entry_points=False))
    assert "broken_wf" not in registry
    rejected = next(r for r in registry.problems if r.id == "broken_wf")
    assert rejected.problems[0].pointer == "/steps/x/plugin"
    assert "nhit_pipeline" in registry


def test_nested_workflow_is_expanded_and_self_nesting_refused(tmp_path, registry) -> None:
    outer = {"steps": {
        "pipe": {"plugin": "nhit_pipeline", "params": {"threshold": {"from": "extra.threshold"},
                                                        "compare": False}},
        "recheck": {"plugin": "nhit_check", "params": {"threshold": 5},
                    "inputs": {"events": {"step": "pipe", "output": "events"}}},
    }, "outputs": {"events": {"step": "pipe", "output": "events"}}}
    folder = make_workflow(tmp_path, "outer", outer, extra={"threshold": 12})
    assert problems_of(folder, registry) == []
    plugin = load_plugin(folder)
    view = RegistryView(registry, {"outer": plugin})
    the_plan = plan(plugin, plugin.validate_request({}), {}, view)
    assert list(the_plan.steps) == ["pipe.simulate", "pipe.trigger", "pipe.check", "recheck"]
    assert the_plan.steps["pipe.trigger"].extra["threshold"] == 12
    assert the_plan.steps["pipe.check"].extra["compare"] is False
    assert the_plan.steps["recheck"].upstream == ["pipe.trigger"]
    assert the_plan.outputs["events"].step == "pipe.trigger"

    selfish = make_workflow(tmp_path, "selfish", {"steps": {"me": {"plugin": "selfish"}}})
    problems = problems_of(selfish, registry)
    assert _only(problems, "/steps/me/plugin").message.startswith("workflow 'selfish' contains itself")


def _run(registry: Registry, wid: str, out: Path, cache: Path | None, **kw: Any):
    plugin = kw.pop("plugin", None) or registry.get(wid)
    return run_workflow(plugin, kw.pop("request", None), registry=kw.pop("view", registry),
                        output_dir=out, cache=StepCache(cache) if cache else None, owner="tester", **kw)


def test_nhit_pipeline_runs_and_caches(tmp_path, registry) -> None:
    cache = tmp_path / "cache"
    first = _run(registry, "nhit_pipeline", tmp_path / "a", cache, example=True)
    assert first.ok, first.error
    out = tmp_path / "a"
    record = json.loads((out / "job.json").read_text())
    assert record["kind"] == "workflow" and record["status"] == "succeeded"
    assert [record["steps"][s]["status"] for s in ("simulate", "trigger", "check")] == ["succeeded"] * 3
    assert record["steps"]["check"]["depends_on"] == ["trigger", "simulate"]
    events = (out / "events.dat").read_bytes()
    assert events == (out / "steps" / "trigger" / "events.dat").read_bytes()
    assert len(events) > 100
    check_report = json.loads((out / "steps" / "check" / "result.json").read_text())
    assert check_report["valid"] is True and check_report["compare"]["identical"] is True
    trigger_job = json.loads((out / "steps" / "trigger" / "job.json").read_text())
    assert trigger_job["parent_id"] == record["id"] and trigger_job["name"] == "trigger"
    assert trigger_job["params"]["extra"]["threshold"] == 10
    assert trigger_job["inputs"][0]["path"].endswith("steps/simulate/stream.hits")

    second = _run(registry, "nhit_pipeline", tmp_path / "b", cache, example=True)
    assert second.ok
    rec2 = json.loads((tmp_path / "b" / "job.json").read_text())
    assert all(rec2["steps"][s]["cached_from"] for s in ("simulate", "trigger", "check"))
    step_rec = json.loads((tmp_path / "b" / "steps" / "trigger" / "job.json").read_text())
    assert step_rec["cached_from"]["job"] == trigger_job["id"]
    assert step_rec["message"].startswith("cached: outputs linked from job")
    assert (tmp_path / "b" / "events.dat").read_bytes() == events
    assert "cached" in (tmp_path / "b" / "log.txt").read_text()

    changed = _run(registry, "nhit_pipeline", tmp_path / "c", cache, example=True,
                   request={"extra": {"threshold": 25}})
    assert changed.ok
    rec3 = json.loads((tmp_path / "c" / "job.json").read_text())
    assert rec3["steps"]["simulate"]["cached_from"] is not None
    assert rec3["steps"]["trigger"]["cached_from"] is None
    assert rec3["steps"]["check"]["cached_from"] is None
    assert (tmp_path / "c" / "events.dat").read_bytes() != events

    uncached = _run(registry, "nhit_pipeline", tmp_path / "d", None, example=True)
    rec4 = json.loads((tmp_path / "d" / "job.json").read_text())
    assert uncached.ok and not any(s["cached_from"] for s in rec4["steps"].values())


def test_cache_ignores_a_deleted_source(tmp_path, registry) -> None:
    cache = tmp_path / "cache"
    wf = make_workflow(tmp_path / "w", "only_sim", {"steps": {"s": {"plugin": "nhit_simulate",
                                                                   "params": {"seed": 3, "seconds": 0.02,
                                                                              "scale": 0.01}}}})
    plugin = load_plugin(wf)
    assert _run(registry, "", tmp_path / "a", cache, plugin=plugin).ok
    shutil.rmtree(tmp_path / "a")
    again = _run(registry, "", tmp_path / "b", cache, plugin=plugin)
    assert again.ok
    assert json.loads((tmp_path / "b" / "job.json").read_text())["steps"]["s"]["cached_from"] is None


def test_independent_steps_run_in_parallel_processes(tmp_path, registry) -> None:
    wf = {"steps": {
        "s1": {"plugin": "nhit_simulate", "params": {"seconds": 0.02, "scale": 0.01, "seed": 1}},
        "s2": {"plugin": "nhit_simulate", "params": {"seconds": 0.02, "scale": 0.01, "seed": 2}},
    }}
    plugin = load_plugin(make_workflow(tmp_path / "w", "two_sims", wf))
    result = _run(registry, "", tmp_path / "out", None, plugin=plugin, jobs=2)
    assert result.ok, result.error
    a = (tmp_path / "out" / "steps" / "s1" / "stream.hits").read_bytes()
    b = (tmp_path / "out" / "steps" / "s2" / "stream.hits").read_bytes()
    assert a != b  # different seeds
    log = (tmp_path / "out" / "log.txt").read_text().splitlines()
    starts = [i for i, line in enumerate(log) if line.endswith("started") and "step s" in line]
    ends = [i for i, line in enumerate(log) if "succeeded" in line and "step s" in line]
    assert len(starts) == 2 and max(starts) < min(ends)  # both started before either finished


def test_failed_step_fails_the_workflow_naming_it(tmp_path, registry) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("spectrum,score\nx,1\n")
    wf = {"steps": {
        "lcf": {"plugin": "xas_lcf_combos", "inputs": {"spectra": {"from": "data.spectra"},
                                                       "matches": {"from": "data.matches"}}},
        "after": {"plugin": "nhit_check", "inputs": {"events": {"step": "lcf", "output": "lcf"}}},
    }}
    folder = make_workflow(tmp_path / "w", "fails", wf,
                           data={"spectra": {"multiple": True}, "matches": {}})
    plugin = load_plugin(folder)
    spectrum = BUILTIN / "xas_auto_lcf" / "example" / "unknown_Mn_mix.xdi"
    result = _run(registry, "", tmp_path / "out", None, plugin=plugin,
                  inputs={"spectra": [spectrum], "matches": bad})
    assert result.status == "failed"
    assert result.error.startswith("step 'lcf' (xas_lcf_combos) failed:")
    assert "lacks column(s) rank, reference" in result.error
    record = json.loads((tmp_path / "out" / "job.json").read_text())
    assert record["steps"]["after"]["status"] == "cancelled"
    assert record["steps"]["after"]["reason"] == "not run: step 'lcf' failed"


def test_when_false_skips_the_step_and_its_dependents(tmp_path, registry) -> None:
    wf = {"steps": {
        "sim": {"plugin": "nhit_simulate", "params": {"seconds": 0.02, "scale": 0.01}},
        "trig": {"plugin": "nhit_trigger", "when": "extra.do_trigger",
                 "inputs": {"hits": {"step": "sim", "output": "stream"}}},
        "check": {"plugin": "nhit_check", "inputs": {"events": {"step": "trig", "output": "events"}}},
    }}
    plugin = load_plugin(make_workflow(tmp_path / "w", "maybe", wf, extra={"do_trigger": False}))
    result = _run(registry, "", tmp_path / "out", None, plugin=plugin)
    assert result.ok
    steps = json.loads((tmp_path / "out" / "job.json").read_text())["steps"]
    assert steps["sim"]["status"] == "succeeded"
    assert steps["trig"]["status"] == "skipped" and "extra.do_trigger" in steps["trig"]["reason"]
    assert steps["check"]["status"] == "skipped"


def test_xas_auto_lcf_finds_the_mixture(tmp_path, registry) -> None:
    result = _run(registry, "xas_auto_lcf", tmp_path / "out", None, example=True)
    assert result.ok, result.error
    table = pd.read_csv(tmp_path / "out" / "lcf.csv")
    lcf_columns = ["spectrum", "sum", "r_factor", "reduced_chi2", "chi2", "n_points", "combination"]
    assert all(c in table.columns for c in lcf_columns)
    # top_k 4, max_components 2: 4 singles + 6 pairs, best (lowest R-factor) first
    assert len(table) == 10
    assert list(table["r_factor"]) == sorted(table["r_factor"])
    best = table.iloc[0]
    assert set(best["combination"].split(" + ")) == {"MnO_rt_01", "Mn2O3_rt_01"}
    # truth 0.6 / 0.4; the re-normalised noisy mixture gives 0.62 / 0.38 (see example/SOURCE.md)
    assert best["MnO_rt_01"] == pytest.approx(0.6, abs=0.04)
    assert best["Mn2O3_rt_01"] == pytest.approx(0.4, abs=0.04)
    assert 0 < best["MnO_rt_01_stderr"] < 0.05
    assert best["sum"] == pytest.approx(1.0, abs=1e-9)
    matches = pd.read_csv(tmp_path / "out" / "matches.csv")
    assert set(matches["reference"]) >= {"MnO_rt_01", "Mn2O3_rt_01"}


def test_hicli_run_workflow_with_jobs_and_no_cache(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HISCI_STEP_CACHE_DIR", str(tmp_path / "cache"))
    args = ["run", "xas_auto_lcf", "--example", "--quiet", "--jobs", "2"]
    first = cli.invoke(hicli, args + ["-o", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["steps"]["lcf"]["cached"] is False
    second = cli.invoke(hicli, args + ["-o", str(tmp_path / "b")])
    assert json.loads(second.stdout)["steps"]["lcf"]["cached"] is True
    third = cli.invoke(hicli, args + ["--no-cache", "-o", str(tmp_path / "c")])
    assert json.loads(third.stdout)["steps"]["lcf"]["cached"] is False
    assert (tmp_path / "c" / "lcf.csv").read_bytes() == (tmp_path / "a" / "lcf.csv").read_bytes()


def test_hicli_show_lists_steps_and_outputs(cli) -> None:
    result = cli.invoke(hicli, ["show", "nhit_pipeline"])
    assert result.exit_code == 0, result.output
    assert "  trigger              nhit_trigger         after simulate" in result.output
    assert "  events               events.dat           nhit-events" in result.output
    plain = cli.invoke(hicli, ["show", "xas_match"])
    assert "  matches              matches.csv          xas-matches" in plain.output
