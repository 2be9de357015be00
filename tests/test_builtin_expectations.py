"""`hicli test plugins/<id>` means something for the built-ins: each has stored expectations
(plugins/<id>/tests/expected.json and expected/), and its examples still match them.

After a deliberate change of a plugin's outputs: hicli test plugins/<id> --update
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hisci.testing import run_tests

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
BUILTIN_IDS = sorted(p.name for p in PLUGINS.iterdir() if (p / "meta.json").is_file())
SLOW = {"muser_imaging"}  # ~10 s of imaging and CLEAN


@pytest.mark.parametrize("plugin_id", [pytest.param(i, marks=pytest.mark.slow) if i in SLOW else i
                                       for i in BUILTIN_IDS])
def test_builtin_examples_match_their_expectations(plugin_id, tmp_path):
    assert (PLUGINS / plugin_id / "tests" / "expected.json").is_file(), "record with hicli test --update"
    report = run_tests(PLUGINS / plugin_id, workdir=tmp_path)
    assert report.ok, report.format()
    assert report.cases and all(c.status == "succeeded" for c in report.cases)
