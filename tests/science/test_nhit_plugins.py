"""End to end: nhit_simulate -> nhit_trigger -> nhit_check through the hisci runner."""

from __future__ import annotations

import json

import pytest

from hisci import ParamsError, Registry, run_plugin

IDS = ["nhit_simulate", "nhit_trigger", "nhit_check"]


@pytest.fixture(scope="module")
def registry():
    return Registry.discover()


@pytest.mark.parametrize("plugin_id", IDS)
def test_plugin_loads_and_example_runs(registry, plugin_id, tmp_path):
    assert not [p for p in registry.problems if plugin_id in str(p)]
    result = run_plugin(registry.get(plugin_id), example=True, output_dir=tmp_path / "run")
    assert result.status == "succeeded", result.error
    if plugin_id == "nhit_trigger":
        assert result.summary["events"] >= 1
        assert result.summary["truth"]["efficiency_above_threshold"] == 1.0
        assert (result.output_dir / "events.dat").exists()
        for name in ("trigger_rate", "ed_multiplicity", "n_max", "event_duration", "efficiency",
                     "noise_rate"):
            assert (result.output_dir / f"{name}.json").exists(), name
    if plugin_id == "nhit_check":
        assert result.summary["valid"] and result.summary["compare"]["identical"]


def test_simulate_trigger_check_chain(registry, tmp_path):
    sim = run_plugin(registry.get("nhit_simulate"),
                     {"extra": {"seconds": 0.1, "scale": 0.05, "seed": 3}},
                     output_dir=tmp_path / "sim")
    assert sim.status == "succeeded", sim.error
    stream, truth = sim.output_dir / "stream.hits", sim.output_dir / "truth.npz"
    trig = run_plugin(registry.get("nhit_trigger"),
                      {"extra": {"threshold": 8, "workers": 2, "run_number": 12}},
                      inputs={"hits": stream, "truth": truth}, output_dir=tmp_path / "trig")
    assert trig.status == "succeeded", trig.error
    s = trig.summary
    assert s["events"] > 0 and s["workers"] == 2 and s["mb_per_s"] > 0
    assert s["truth"]["efficiency_above_threshold"] == 1.0
    json.dumps(s)  # JSON-ready
    check = run_plugin(registry.get("nhit_check"),
                       {"extra": {"threshold": 8, "compare": True, "workers": 2}},
                       inputs={"events": trig.output_dir / "events.dat", "hits": stream},
                       output_dir=tmp_path / "check")
    assert check.status == "succeeded", check.error
    assert check.summary["valid"] and check.summary["run_number"] == 12
    assert check.summary["events"] == s["events"]
    assert check.summary["compare"]["identical"]


def test_checker_reports_a_corrupt_file(registry, tmp_path):
    example = registry.get("nhit_check")
    src = example.folder / "example/events.dat"
    raw = bytearray(src.read_bytes())
    raw[256] ^= 0xFF  # first event's marker
    bad = tmp_path / "bad.dat"
    bad.write_bytes(bytes(raw))
    result = run_plugin(example, {"extra": {"threshold": 10}}, inputs={"events": bad},
                        output_dir=tmp_path / "run")
    assert result.status == "succeeded", result.error
    v = result.summary["violation"]
    assert not result.summary["valid"] and (v["offset"], v["field"]) == (256, "marker")


def test_bad_stream_fails_with_a_clear_reason_and_no_event_file(registry, tmp_path):
    bad = tmp_path / "bad.hits"
    bad.write_bytes(b"NOTHITS!" + bytes(100))
    result = run_plugin(registry.get("nhit_trigger"), {"extra": {}}, inputs={"hits": bad},
                        output_dir=tmp_path / "run")
    assert result.status == "failed"
    assert "not a .hits stream" in str(result.error)
    assert not list((tmp_path / "run").glob("*events.dat*"))


def test_threshold_zero_is_rejected(registry, tmp_path):
    stream = registry.get("nhit_trigger")
    src = stream.folder / "example/stream.hits"
    # the slider's minimum (1) rejects N = 0 before the plugin runs
    with pytest.raises(ParamsError, match="threshold"):
        run_plugin(stream, {"extra": {"threshold": 0}}, inputs={"hits": src},
                   output_dir=tmp_path / "run")
    assert not list(tmp_path.rglob("*events.dat*"))


def test_cancel_leaves_no_event_file(registry, tmp_path):
    from hisci.builtin_plugins.nhit.simulate import SimulationConfig, simulate_stream

    stream = tmp_path / "s.hits"
    simulate_stream(stream, SimulationConfig(seconds=0.1, scale=0.02))
    calls = []

    def cancel_check():
        calls.append(1)
        return len(calls) > 4  # a few fragments in

    result = run_plugin(registry.get("nhit_trigger"), {"extra": {"workers": 2}},
                        inputs={"hits": stream}, output_dir=tmp_path / "run",
                        cancel_check=cancel_check)
    assert result.status == "cancelled", (result.status, result.error)
    assert not [p for p in (tmp_path / "run").iterdir() if "events.dat" in p.name]
