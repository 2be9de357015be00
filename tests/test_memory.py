"""hisci.memory.reuse_freed_memory: a freed big block is reused inside, not faulted in again."""

from __future__ import annotations

import resource
import sys

import numpy as np
import pytest

from hisci.memory import reuse_freed_memory

MB64 = 64 << 20


def _faults_of_a_new_64_mb_array() -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(MB64, dtype=np.uint8)  # touches every page
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del a
    return faults


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_a_freed_64_mb_block_is_reused_inside_and_returned_after():
    outside = [_faults_of_a_new_64_mb_array() for _ in range(2)]
    assert min(outside) > 0  # each new array outside is fresh memory (mmap'd, unmapped on free)
    with reuse_freed_memory() as tuned:
        assert tuned is True  # glibc
        _faults_of_a_new_64_mb_array()  # the first one comes from the heap, fresh
        again = _faults_of_a_new_64_mb_array()  # the same pages, kept on the heap
    assert again * 4 < min(outside), (again, outside)
    after = _faults_of_a_new_64_mb_array()  # defaults back and the kept memory trimmed
    assert after * 4 >= min(outside), (after, outside)


def test_nested_uses_share_one_setting():
    with reuse_freed_memory() as a, reuse_freed_memory() as b:
        assert a == b
    from hisci import memory

    assert memory._depth == 0
