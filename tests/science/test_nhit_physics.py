"""Physics of the trigger on simulated KM2A data (nhit.md sections 5 and 6)."""

from __future__ import annotations

import numpy as np
import pytest

from hisci.builtin_plugins.nhit.analysis import (
    efficiency_curve,
    noise_only,
    poisson_noise_rate,
    truth_report,
)
from hisci.builtin_plugins.nhit.pipeline import run_trigger
from hisci.builtin_plugins.nhit.simulate import (
    SimulationConfig,
    Truth,
    simulate_stream,
    sunflower,
)
from hisci.builtin_plugins.nhit.trigger import TriggerConfig


@pytest.fixture(scope="module")
def one_second(tmp_path_factory):
    """1 s at scale 0.1 (the issue's case): ~55 MB stream and its truth."""
    d = tmp_path_factory.mktemp("phys")
    truth = simulate_stream(d / "s.hits", SimulationConfig(seconds=1.0, scale=0.1, seed=42),
                            truth_path=d / "truth.npz")
    return d / "s.hits", truth, d


def test_efficiency_is_one_above_threshold(one_second):
    path, truth, d = one_second
    run = run_trigger(path, d / "events.dat", TriggerConfig(20, 400), workers=2)
    st = run.stats
    rep = truth_report(truth, st.array("time"), st.array("stop"), 20, 400)
    assert rep["showers_above_threshold"] > 50
    # noise can only add hits: a shower with > N own ED hits in a window cannot be missed
    assert rep["efficiency_above_threshold"] == 1.0
    # the curve turns on with multiplicity: low for k_own well below N, 1 above N
    _, eff, counts = efficiency_curve(rep["k_own"], rep["triggered"],
                                            np.array([1, 14, 17, 21, 1000]))
    assert counts.min() > 20
    assert eff[0] < 0.05 and eff[-1] == 1.0 and eff[0] <= eff[1] <= eff[2] <= eff[3]
    # nhit.md 6: about 190 triggers/s at scale 0.1, N = 20 (our seed: within 25 %)
    assert run.events == pytest.approx(190, rel=0.25)
    assert rep["noise_only_events"] == 0  # mu = 0.57: pure noise never passes N = 20
    # at N = 5 the events without any shower hit are the noise triggers
    low = run_trigger(path, d / "events5.dat", TriggerConfig(5, 400), workers=1).stats
    rep5 = truth_report(truth, low.array("time"), low.array("stop"), 5, 400)
    assert rep5["noise_only_rate_hz"] == pytest.approx(rep5["poisson_prediction_hz"], rel=0.20)


def test_noise_only_rate_matches_poisson_at_n5(tmp_path):
    cfg = SimulationConfig(seconds=1.0, scale=0.1, seed=5, shower_rate_hz=0.0)
    truth = simulate_stream(tmp_path / "noise.hits", cfg)
    run = run_trigger(tmp_path / "noise.hits", tmp_path / "events.dat", TriggerConfig(5, 400),
                      workers=1)
    predicted = poisson_noise_rate(cfg.n_ed * cfg.ed_noise_hz, 5, 400)
    assert predicted == pytest.approx(356, rel=0.02)  # nhit.md 5: "about 360 Hz"
    assert len(truth) == 0
    assert run.events / cfg.seconds == pytest.approx(predicted, rel=0.20)


def test_noise_only_classification(one_second):
    _, truth, _ = one_second
    i = int(np.argmax(truth.multiplicity))
    t = truth.ed_time[truth.ed_offsets[i] : truth.ed_offsets[i + 1]]
    start = np.array([t.min() - 10, 10**12])
    stop = np.array([t.min() + 1, 10**12 + 5])
    assert noise_only(truth, start, stop).tolist() == [False, True]


def test_poisson_formula_at_full_scale():
    # nhit.md 5: full array, lambda ~ 14.2 MHz, Tw = 400 ns, N = 20 -> about 20 Hz
    assert poisson_noise_rate(5242 * 2710.0, 20, 400) == pytest.approx(20, rel=0.15)


def test_simulation_rates_and_truth(tmp_path, one_second):
    path, truth, d = one_second
    # 54.6 MB/s at scale 0.1 (nhit.md 5)
    assert path.stat().st_size / 1e6 == pytest.approx(54.6, rel=0.05)
    # showers at 6.5 kHz x 0.1, multiplicity >= 10, capped at the ED count
    assert len(truth) == pytest.approx(650, rel=0.15)
    assert truth.multiplicity.min() >= 10 and truth.multiplicity.max() <= 524
    # R(>M) ~ M^-1.7: about 10/20^... fraction with M >= 20 is 2^-1.7 = 0.31
    assert np.mean(truth.multiplicity >= 20) == pytest.approx(2**-1.7, abs=0.06)
    # MD hits: ~0.11 x M on average (nhit.md 5)
    md_per = np.diff(truth.md_offsets).sum() / np.diff(truth.ed_offsets).sum()
    assert 0.05 < md_per < 0.2
    back = Truth.load(d / "truth.npz")
    np.testing.assert_array_equal(back.ed_time, truth.ed_time)
    assert back.n_ed == 524


def test_same_seed_same_stream(tmp_path):
    cfg = SimulationConfig(seconds=0.02, scale=0.02, seed=1)
    simulate_stream(tmp_path / "a.hits", cfg)
    simulate_stream(tmp_path / "b.hits", cfg)
    assert (tmp_path / "a.hits").read_bytes() == (tmp_path / "b.hits").read_bytes()


def test_sunflower_fills_the_disk():
    xy = sunflower(1000, 100.0)
    r = np.hypot(*xy.T)
    assert r.max() <= 100 and np.mean(r < 50) == pytest.approx(0.25, abs=0.01)
    with pytest.raises(ValueError, match="scale"):
        SimulationConfig(scale=0)
