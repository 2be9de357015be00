"""The job page's live drawers: the first results give whole figures, later ones append only."""

from __future__ import annotations

from dash import Patch

from dash_app.live_view import apply


def _event(n: int, name: str, data: dict, seq: int | None = None) -> dict:
    return {"n": n, "type": "live", "name": name, "seq": seq or n, "data": data}


def test_pdf_frames_make_a_waterfall_and_replace_the_latest_iq():
    frame = {"label": "f0", "r": [1.0, 2.0], "gr": [0.5, -0.5], "q": [1.0, 2.0], "iq": [10.0, 9.0]}
    main, side, lag, state = apply([_event(1, "frame", frame), {"n": 2, "type": "lag", "waiting": 2,
                                    "seconds_behind": 1.25, "dropped": 0,
                                    "sources": {"image": {"received": 3, "processed": 1}}}], {"after": 0})
    assert isinstance(main, dict) and main["data"][0]["y"] == [0.5, -0.5]
    assert side["data"][0]["y"] == [10.0, 9.0]
    assert lag.startswith("image: received 3, processed 1 · 2 waiting, 1.") and "s behind" in lag
    assert state == {"after": 2, "kinds": ["frame"], "count": 1}
    main, side, lag, state = apply([_event(3, "frame", {**frame, "label": "f1"})], state)
    assert isinstance(main, Patch) and isinstance(side, Patch)
    ops = main.to_plotly_json()["operations"]
    assert ops[0]["operation"] == "Append" and ops[0]["params"]["value"]["y"] == [2.5, 1.5]  # offset 2 per frame
    assert state["count"] == 2 and lag is None


def test_xas_lcf_fractions_append_per_spectrum_and_side_results_are_ignored():
    first = {"spectrum": "scan 1", "weights": {"A": 0.7, "B": 0.3}, "r_factor": 0.001}
    main, side, _, state = apply([_event(1, "lcf", first), _event(2, "rejected", {"error": "x"})], {})
    assert [t["name"] for t in main["data"]] == ["A", "B"] and main["data"][0]["y"] == [0.7]
    assert side["data"][0]["y"] == [0.001] and state["count"] == 1
    main, _, _, state = apply([_event(3, "lcf", {**first, "spectrum": "scan 2"})], state)
    values = [op["params"]["value"] for op in main.to_plotly_json()["operations"]]
    assert values == ["scan 2", 0.7, "scan 2", 0.3]


def test_unknown_results_are_counted_as_items():
    main, _, _, state = apply([_event(1, "frame", {"name": "a.bin"}), _event(2, "frame", {"name": "b.bin"})], {})
    assert state["kinds"] == ["generic:frame"] and main["data"][0]["y"] == [1, 2]


def test_the_lag_line_shows_drops_and_crash_losses():
    from dash_app.live_view import lag_text

    text = lag_text({"sources": {"hits": {"received": 12, "processed": 9}}, "waiting": 3, "seconds_behind": 1.25,
                     "dropped": 2, "lost": 1})
    assert text == "hits: received 12, processed 9 · 3 waiting, 1.2 s behind · 2 DROPPED · 1 LOST in a crash"
    assert "LOST" not in lag_text({"sources": {}, "waiting": 0, "seconds_behind": 0.0, "dropped": 0, "lost": 0})
