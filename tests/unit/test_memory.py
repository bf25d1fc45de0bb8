"""Heap release between phases: works on glibc, a harmless no-op elsewhere."""

from __future__ import annotations

import platform

from closedloop.memory import limit_malloc_arenas, release_free_memory

ON_GLIBC = platform.libc_ver()[0] == "glibc"


def test_free_heap_is_released_where_the_c_library_can() -> None:
    garbage = [bytearray(4096) for _ in range(20_000)]  # some 80 MB of small blocks, then freed
    del garbage
    assert release_free_memory() is ON_GLIBC


def test_malloc_arenas_are_limited_where_the_c_library_can() -> None:
    assert limit_malloc_arenas(2) is ON_GLIBC
