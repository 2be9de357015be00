"""Input files given without a name (hicli run ID -i FILE) find their input."""

from __future__ import annotations

import pytest

from hisci import InputError, Registry
from hisci.assignments import assign_files


@pytest.fixture(scope="module")
def registry():
    return Registry.discover()


def test_by_extension_and_by_the_single_required_input(registry):
    assert assign_files(registry.get("ct_recon"), ["scan.h5"]) == {"scan": ["scan.h5"]}
    assert assign_files(registry.get("ct_recon"), ["scan.weird"]) == {"scan": ["scan.weird"]}
    assert assign_files(registry.get("muser_imaging"), ["obs.tar.gz"]) == {"dataset": ["obs.tar.gz"]}
    assert assign_files(registry.get("pdf"), ["a.poni", "b.iq", "c.txt"]) == {
        "poni": ["a.poni"], "pattern": ["b.iq", "c.txt"]}
    assert assign_files(registry.get("nhit_trigger"), ["s.hits", "t.npz"]) == {"hits": ["s.hits"], "truth": ["t.npz"]}


def test_ambiguous_or_too_many(registry):
    with pytest.raises(InputError) as info:
        assign_files(registry.get("xas_match"), ["x.xdi"])
    assert info.value.pointer == "/data" and info.value.allowed == ["spectra", "database"]
    with pytest.raises(InputError) as info:
        assign_files(registry.get("ct_recon"), ["a.h5", "b.h5"])
    assert info.value.pointer == "/data/scan" and "takes one file, got 2" in info.value.message
