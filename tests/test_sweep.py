"""Sweeps: ranges with the stop included, lists, schema checks, the per-user limit, hicli run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hicli.main import cli as hicli
from hisci import Registry, Settings
from hisci.errors import ParamsError
from hisci.sweep import expand_range, parse_sweep, sweep_from

from .conftest import FIXTURE_PLUGINS


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover(Settings(plugin_path=(FIXTURE_PLUGINS,), entry_points=False))


def test_range_includes_stop_and_does_not_drift() -> None:
    assert expand_range("1020:1030:0.5") == [1020 + 0.5 * i for i in range(21)]
    assert expand_range("0:0.3:0.1") == [0.0, 0.1, 0.2, 0.3]  # float steps would give 0.30000000000000004
    assert expand_range("1:10:3") == [1, 4, 7, 10] and all(isinstance(v, int) for v in expand_range("1:10:3"))
    assert expand_range("0:1:0.4") == [0.0, 0.4, 0.8]  # stop off the grid is not passed
    for bad, words in (("1:2", "start:stop:step"), ("1:2:0", "step"), ("5:1:1", "below"), ("a:b:c", "numbers")):
        with pytest.raises(ValueError, match=words):
            expand_range(bad)


def test_sweep_list_and_range_are_validated_by_the_schema(registry: Registry) -> None:
    plugin = registry.get("chunk_sum")
    assert parse_sweep("extra.scale=0.2,0.5,0.8", plugin).values == (0.2, 0.5, 0.8)
    assert parse_sweep("scale=1:2:0.5", plugin).values == (1.0, 1.5, 2.0)
    assert parse_sweep("extra.mode=square,cube", plugin).values == ("square", "cube")
    with pytest.raises(ParamsError) as err:
        parse_sweep("extra.scale=5:12:1", plugin)  # slider max is 10
    problem = err.value.problems[0]
    assert problem.pointer == "/extra/scale" and problem.given == 11 and "maximum" in str(problem.message)
    with pytest.raises(ParamsError, match="not a parameter"):
        parse_sweep("extra.nope=1,2", plugin)
    with pytest.raises(ParamsError) as err:
        parse_sweep("extra.mode=square,hexagon", plugin)
    assert err.value.problems[0].allowed == ["square", "cube"]


def test_sweep_limit(registry: Registry) -> None:
    plugin = registry.get("chunk_sum")
    assert len(sweep_from("extra.n", "1:200:1", plugin).values) == 200
    with pytest.raises(ParamsError, match="201 values; the limit is 200"):
        sweep_from("extra.n", "1:201:1", plugin)
    with pytest.raises(ParamsError, match="limit is 3"):
        sweep_from("extra.n", [1, 2, 3, 4], plugin, limit=3)


def test_children_requests_differ_only_in_the_swept_value(registry: Registry) -> None:
    sweep = parse_sweep("extra.n=10,20", registry.get("chunk_sum"))
    children = sweep.requests({"extra": {"scale": 2}})
    assert children == [{"extra": {"scale": 2, "n": 10}}, {"extra": {"scale": 2, "n": 20}}]


def test_hicli_run_sweep(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HISCI_PLUGIN_PATH", str(FIXTURE_PLUGINS))
    result = cli.invoke(hicli, ["run", "chunk_sum", "--sweep", "extra.n=10:30:10", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert sweep["key"] == "extra.n" and sweep["values"] == [10, 20, 30]
    assert [c["summary"]["sum"] for c in sweep["children"]] == [sum(k * k for k in range(n)) for n in (10, 20, 30)]
    assert (tmp_path / "002/items.txt").read_text().count("\n") == 30
    bad = cli.invoke(hicli, ["run", "chunk_sum", "--sweep", "extra.scale=9:12:1", "-o", str(tmp_path / "b")])
    assert bad.exit_code == 1 and "/extra/scale" in bad.output and not (tmp_path / "b").exists()
