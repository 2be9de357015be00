"""CWL v1.2: every export passes cwltool --validate, the nhit_pipeline export runs under
cwltool and gives the same event file as hicli run, and import round-trips workflows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hicli.main import cli as hicli
from hisci import Registry, Settings, load_plugin
from hisci.workflow.cwl import CwlError, export, import_cwl
from hisci.workflow.graph import check
from hisci.workflow.local import run_workflow

BIN = Path(sys.executable).parent
CWLTOOL = BIN / "cwltool"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover(Settings(entry_points=False))


@pytest.fixture(scope="module")
def exported(registry, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cwl")
    for plugin in registry:
        export(plugin, registry, out)
    return out


def _cwltool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert CWLTOOL.exists(), "cwltool is missing: `make install` (it is in the dev extra)"
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(CWLTOOL), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=400)


def test_every_export_is_valid_cwl(exported, registry) -> None:
    files = sorted(exported.glob("*.cwl"))
    assert {f.stem for f in files} == {p.id for p in registry}
    for path in files:
        done = _cwltool("--validate", str(path), cwd=exported)
        assert done.returncode == 0, f"{path.name}: {done.stderr[-2000:]}"
        assert "is valid CWL" in done.stdout + done.stderr


def test_tool_inputs_are_typed_from_the_parameter_schema(exported) -> None:
    tool = yaml.safe_load((exported / "nhit_trigger.cwl").read_text())
    assert tool["class"] == "CommandLineTool" and tool["cwlVersion"] == "v1.2"
    assert tool["baseCommand"][:3] == ["hicli", "run", "nhit_trigger"]
    assert tool["inputs"]["hits"]["type"] == "File"
    assert tool["inputs"]["truth"]["type"] == ["null", "File"]
    assert tool["inputs"]["threshold"]["type"] == "int" and tool["inputs"]["threshold"]["default"] == 20
    assert tool["inputs"]["threshold"]["inputBinding"] == {"prefix": "--set",
                                                           "valueFrom": "extra.threshold=$(self)"}
    assert tool["outputs"]["events"]["outputBinding"]["glob"] == "out/events.dat"
    xas = yaml.safe_load((exported / "xas_match.cwl").read_text())
    assert xas["inputs"]["mode"]["type"] == {"type": "enum", "symbols": ["match", "pca", "lcf"]}
    assert xas["inputs"]["sum_to_one"]["type"] == "boolean"
    assert xas["inputs"]["fit_range"]["type"] == {"type": "array", "items": "double"}
    assert xas["inputs"]["spectra"]["type"] == ["null", {"type": "array", "items": "File", "inputBinding": {
        "prefix": "--input", "valueFrom": "spectra=$(self.path)"}}]
    wf = yaml.safe_load((exported / "nhit_pipeline.cwl").read_text())
    assert wf["class"] == "Workflow"
    assert wf["steps"]["trigger"]["in"]["hits"] == {"source": "simulate/stream"}
    assert wf["steps"]["trigger"]["in"]["workers"] == {"default": 1}
    assert wf["outputs"]["events"]["outputSource"] == "trigger/events"


def test_cwltool_run_gives_the_same_event_file_as_hicli_run(exported, registry, tmp_path) -> None:
    local = run_workflow(registry.get("nhit_pipeline"), registry=registry, output_dir=tmp_path / "local",
                         example=True, cache=None)
    assert local.ok, local.error
    (tmp_path / "job.yml").write_text("seconds: 0.05\nscale: 0.01\nseed: '7'\nthreshold: 10\n")
    done = _cwltool("--outdir", str(tmp_path / "cwl"), str(exported / "nhit_pipeline.cwl"),
                    str(tmp_path / "job.yml"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = json.loads(done.stdout)
    produced = Path(outputs["events"]["path"])
    assert produced.read_bytes() == (tmp_path / "local" / "events.dat").read_bytes()
    report = json.loads(Path(outputs["report"]["path"]).read_text())
    assert report["valid"] is True and report["compare"]["identical"] is True


@pytest.mark.parametrize("wid", ["nhit_pipeline", "xas_auto_lcf"])
def test_import_round_trip(exported, registry, tmp_path, wid) -> None:
    folder = import_cwl(exported / f"{wid}.cwl", tmp_path, registry, plugin_id=f"{wid}_copy")
    original = registry.get(wid)
    copy = load_plugin(folder)
    assert copy.workflow.as_json() == original.workflow.as_json()
    assert check(copy, registry) == []
    props = copy.parameter_schema()["properties"]["extra"]["properties"]
    own = original.parameter_schema()["properties"]["extra"]["properties"]
    assert set(props) == set(own)
    assert set(copy.ui.data) == set(original.ui.data)


def test_import_refuses_what_it_cannot_read(exported, registry, tmp_path) -> None:
    with pytest.raises(CwlError, match="import takes a Workflow"):
        import_cwl(exported / "nhit_trigger.cwl", tmp_path, registry)
    foreign = tmp_path / "foreign.cwl"
    tool = tmp_path / "echo.cwl"
    tool.write_text(yaml.safe_dump({"cwlVersion": "v1.2", "class": "CommandLineTool", "baseCommand": "echo",
                                    "inputs": {}, "outputs": {}}))
    foreign.write_text(yaml.safe_dump({"cwlVersion": "v1.2", "class": "Workflow", "inputs": {}, "outputs": {},
                                       "steps": {"e": {"run": "echo.cwl", "in": {}, "out": []}}}))
    with pytest.raises(CwlError, match="does not run a hisci tool"):
        import_cwl(foreign, tmp_path, registry)


def test_hicli_cwl_export_and_import(cli, tmp_path) -> None:
    result = cli.invoke(hicli, ["cwl", "export", "xas_auto_lcf", "-o", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert sorted(Path(p).name for p in result.output.split()) == [
        "xas_auto_lcf.cwl", "xas_lcf_combos.cwl", "xas_match.cwl"]
    back = cli.invoke(hicli, ["cwl", "import", str(tmp_path / "x" / "xas_auto_lcf.cwl"), "-o",
                              str(tmp_path / "y"), "--id", "auto_copy"])
    assert back.exit_code == 0, back.output
    assert (tmp_path / "y" / "auto_copy" / "workflow.json").is_file()
    unknown = cli.invoke(hicli, ["cwl", "export", "no_such", "-o", str(tmp_path / "z")])
    assert unknown.exit_code == 1 and "unknown plugin id 'no_such'" in unknown.output
