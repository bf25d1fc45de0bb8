"""Heap release between phases: works on glibc, a harmless no-op elsewhere."""

from __future__ import annotations

import gc
import platform

import pytest

from closedloop.memory import limit_malloc_arenas, long_lived_heap, release_free_memory

ON_GLIBC = platform.libc_ver()[0] == "glibc"


def test_free_heap_is_released_where_the_c_library_can() -> None:
    garbage = [bytearray(4096) for _ in range(20_000)]  # some 80 MB of small blocks, then freed
    del garbage
    assert release_free_memory() is ON_GLIBC


def test_malloc_arenas_are_limited_where_the_c_library_can() -> None:
    assert limit_malloc_arenas(2) is ON_GLIBC


def test_a_long_lived_heap_is_set_aside_by_settle_and_handed_back_on_exit() -> None:
    kept = [[i] for i in range(1000)]  # container objects: the collector tracks them
    with long_lived_heap() as settle:
        settle()
        assert gc.get_freeze_count() >= len(kept)
        assert all(obj is not kept for obj in gc.get_objects(generation=2))  # frozen: no pass walks it
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), long_lived_heap() as settle:
        settle()
        raise RuntimeError("a rebuild that fails still hands its heap back")
    assert gc.get_freeze_count() == 0
