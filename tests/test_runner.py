"""In-process runs: result.json, figures, log, record; a failing plugin keeps its traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hisci import InputError, Registry, Settings, run_plugin
from hisci.figures import load_figure
from hisci.storage import sha256

from .conftest import FIXTURE_PLUGINS


@pytest.fixture
def registry(isolated_env):
    return Registry.discover(Settings(plugin_path=(FIXTURE_PLUGINS,), entry_points=False))


def test_table_plot_example_produces_figure_result_and_record(registry, tmp_path: Path) -> None:
    result = run_plugin(registry.get("table_plot"), example=True, output_dir=tmp_path / "out")
    assert result.ok, result.error
    out = tmp_path / "out"
    summary = json.loads((out / "result.json").read_text())
    assert summary["rows"] == 36 and summary["traces"] == 3
    figure = load_figure(out / "chart.json")
    assert [t["name"] for t in figure["data"]] == ["control", "treated", "mutant"]
    assert list(figure["data"][0]["x"]) == [0.5 * (i + 1) for i in range(12)]
    record = json.loads((out / "job.json").read_text())
    assert record["status"] == "succeeded"
    assert record["plugin"] == {"id": "table_plot", "version": "0.1.0", "source": "builtin"}
    assert record["params"]["extra"]["title"] == "Dose response"
    assert record["packages"]["numpy"]
    assert record["started"] <= record["finished"]
    assert "chart.json" in record["outputs"] and record["figures"] == ["chart.json"]
    status = json.loads((out / "task.status.json").read_text())
    assert status["status"] == [2, 2, 2, 2]
    assert "progress  70% saving the figure" in (out / "log.txt").read_text()


def test_input_file_is_recorded_with_checksum_and_left_untouched(registry, tmp_path: Path) -> None:
    table = tmp_path / "in.csv"
    table.write_text("x,y\n1,2\n2,4\n3,8\n")
    before = sha256(table)
    result = run_plugin(registry.get("table_plot"), {"extra": {"log_y": True}},
                        inputs={"datTable": table}, output_dir=tmp_path / "out")
    assert result.ok and result.summary["rows"] == 3
    (recorded,) = result.record["inputs"]
    assert recorded["sha256"] == before == sha256(table)
    assert recorded["name"] == "datTable"


def test_failing_plugin_leaves_a_failed_record_with_traceback(registry, tmp_path: Path) -> None:
    result = run_plugin(registry.get("failing_plugin"), output_dir=tmp_path / "out")
    assert result.status == "failed"
    assert result.error == "ZeroDivisionError: deliberate failure for the tests"
    record = json.loads((tmp_path / "out" / "job.json").read_text())
    assert record["status"] == "failed" and record["reason"] == result.error
    assert record["progress"] == 0.5
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "Traceback (most recent call last)" in log and 'plugin.py", line 7, in run' in log
    assert json.loads((tmp_path / "out" / "task.status.json").read_text())["status"] == [2, 2, 3, 0]
    assert not (tmp_path / "out" / "result.json").exists()


def test_cancellation_is_recorded(registry, tmp_path: Path) -> None:
    calls = []

    def cancel_after_three() -> bool:
        calls.append(1)
        return len(calls) > 3

    result = run_plugin(registry.get("slow_plugin"), {"extra": {"seconds": 5}}, output_dir=tmp_path / "o",
                        cancel_check=cancel_after_three)
    assert result.status == "cancelled"
    assert result.record["progress"] < 0.1


def test_missing_input_file_is_named(registry, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="input 'datTable': file not found: nowhere.csv"):
        run_plugin(registry.get("table_plot"), inputs={"datTable": "nowhere.csv"}, output_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_unwritable_output_dir(registry, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="is not writable"):
        run_plugin(registry.get("table_plot"), example=True, output_dir=blocker / "out")


def test_bad_column_is_a_clear_plugin_failure(registry, tmp_path: Path) -> None:
    result = run_plugin(registry.get("table_plot"), {"dataArg": {"datTable": [{"value": "dose"}, {"value": "nope"}]}},
                        example=True, output_dir=tmp_path / "o")
    assert result.status == "failed"
    assert "y column 'nope' is not in the table; columns: sample, dose, response, group" in result.error
