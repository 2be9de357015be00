"""hicli: output, exit codes and the Hiplot-compatible invocation."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hicli.main import cli as hicli
from hisci.figures import load_figure

from .conftest import FIXTURE_PLUGINS, SAMPLES

TABLE_PLOT = Path(__file__).parents[1] / "plugins" / "table_plot"


def test_list_json_names_every_plugin(cli) -> None:
    result = cli.invoke(hicli, ["list", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    ids = {p["id"] for p in listing["plugins"]}
    assert "table_plot" in ids
    card = next(p for p in listing["plugins"] if p["id"] == "table_plot")
    assert card["version"] == "0.1.0" and card["queue"] == "cpu" and card["runnable"] is True


def test_show_prints_parameters_with_constraints(cli) -> None:
    result = cli.invoke(hicli, ["show", "table_plot"])
    assert result.exit_code == 0
    assert 'chart_type           default="scatter"  one of scatter, line, bar, box' in result.output
    assert "opacity              default=0.8  number in [0.1, 1]" in result.output


def test_validate_samples_ok_and_broken_exit_1(cli, plugin_copy) -> None:
    ok = cli.invoke(hicli, ["validate", *[str(p) for p in SAMPLES.iterdir() if p.is_dir()]])
    assert ok.exit_code == 0, ok.output
    assert ok.output.count("ok ") == 8
    broken = plugin_copy("table_plot", edit={"ui.json": lambda u: u["extra"]["opacity"].update(type="sliderr")})
    bad = cli.invoke(hicli, ["validate", str(broken), str(TABLE_PLOT)])
    assert bad.exit_code == 1
    assert "unknown widget type 'sliderr' (did you mean 'slider'?)" in bad.output
    assert "ok      table_plot" in bad.output


def test_run_example_succeeds(cli, tmp_path) -> None:
    result = cli.invoke(hicli, ["run", "table_plot", "--example", "--set", "extra.chart_type=bar",
                                "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    figure = load_figure(tmp_path / "out" / "chart.json")
    assert figure["data"][0]["type"] == "bar"


def test_unknown_plugin_exit_1_with_suggestion(cli, tmp_path) -> None:
    result = cli.invoke(hicli, ["run", "table_plt", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert "unknown plugin id 'table_plt' (did you mean 'table_plot'?)" in result.output
    assert "Traceback" not in result.output


def test_wrong_type_exit_1_names_the_field(cli, tmp_path) -> None:
    result = cli.invoke(hicli, ["run", "table_plot", "--example", "--set", "extra.opacity=lots", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert "/extra/opacity: expected number, got str 'lots'" in result.output


def test_missing_input_file_exit_1(cli, tmp_path) -> None:
    result = cli.invoke(hicli, ["run", "table_plot", "--input", "datTable=missing.txt", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert "input 'datTable': file not found: missing.txt" in result.output


def test_malformed_params_json_exit_1(cli, tmp_path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text('{"extra": {"opacity": 0.5,}}')
    result = cli.invoke(hicli, ["run", "table_plot", "--params", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "invalid JSON at line 1, column 27" in result.output


def test_unwritable_output_exit_1(cli, tmp_path) -> None:
    (tmp_path / "f").write_text("")
    result = cli.invoke(hicli, ["run", "table_plot", "--example", "-o", str(tmp_path / "f" / "o")])
    assert result.exit_code == 1
    assert "is not writable" in result.output and "choose another folder with -o" in result.output


def test_failing_plugin_exit_2(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HISCI_PLUGIN_PATH", str(FIXTURE_PLUGINS))
    result = cli.invoke(hicli, ["run", "failing_plugin", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "failed: ZeroDivisionError: deliberate failure for the tests" in result.output
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(cli, tmp_path) -> None:
    result = cli.invoke(hicli, ["--debug", "run", "table_plt", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert "UnknownPluginError" in result.output or "Traceback" in result.output


def test_hiplot_compatible_invocation(cli, tmp_path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("time\tcount\n1\t10\n2\t20\n3\t15\n")
    prefix = tmp_path / "out" / "chart"
    result = cli.invoke(hicli, ["-i", str(data), "-c", str(TABLE_PLOT / "data.json"), "-t", "table_plot",
                                "-m", "basic", "-s", "-o", str(prefix)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "result.json").read_text())["rows"] == 3
    assert (tmp_path / "out" / "chart.plotly.html").stat().st_size > 1000
    assert (tmp_path / "out" / "task.status.json").exists()


def test_hiplot_example_flag(cli, tmp_path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = cli.invoke(hicli, ["-t", "table_plot", "-e", "-o", "hw/table_plot"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "hw" / "result.json").read_text())["traces"] == 3


def test_cli_adds_its_own_hint_to_a_neutral_core_error(cli, tmp_path):
    result = cli.invoke(hicli, ["run", "table_plot", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "give a file for input 'datTable'" in result.output
    assert "hicli: pass --input datTable=PATH" in result.output


def test_run_dash_i_fills_the_single_required_input(cli, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("x,y\n1,2\n2,4\n3,5\n")
    result = cli.invoke(hicli, ["run", "table_plot", "-i", str(table), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert '"rows": 3' in result.output


def test_run_dash_i_that_fits_several_inputs_names_the_input_forms(cli, tmp_path):
    frame = tmp_path / "frame.h5"
    frame.write_bytes(b"")
    result = cli.invoke(hicli, ["run", "pdf", "-i", str(frame), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "fits 3 inputs (image, background, dark)" in result.output
    assert f"--input image={frame} or --input background={frame} or --input dark={frame}" in result.output
