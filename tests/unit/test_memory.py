"""Heap release between phases, measured: resident size and malloc arenas, not return flags.

On glibc the module must actually give memory back; elsewhere (musl, macOS) it is a no-op and
the measurements are skipped.
"""

from __future__ import annotations

import gc
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from closedloop.sync.memory import long_lived_heap, release_free_memory

ON_GLIBC = platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not ON_GLIBC or not Path("/proc/self/statm").exists(), reason="glibc on Linux only")
MB = 1 << 20


def resident_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


@needs_glibc
def test_free_heap_below_a_live_block_goes_back_to_the_os() -> None:
    # 80 MB of 4 KB blocks (malloc's heap, below the mmap threshold), then one block after them
    # that stays alive: free() alone cannot shrink the heap past it, so the 80 MB stay resident
    # until malloc_trim hands the free pages back.
    garbage = [bytearray(4096) for _ in range(20_000)]
    pin = bytearray(4096)
    del garbage
    gc.collect()
    before = resident_bytes()
    assert release_free_memory() is True
    after = resident_bytes()
    assert before - after > 50 * MB, (before // MB, after // MB)
    del pin


ARENA_SCRIPT = textwrap.dedent(
    """
    import ctypes, sys, threading
    from closedloop.sync.memory import limit_malloc_arenas
    if sys.argv[1] == "limit":
        assert limit_malloc_arenas(2)
    barrier = threading.Barrier(8)
    def work():
        blocks = [bytearray(2048) for _ in range(2000)]  # malloc from this thread, all at once
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" block per arena, on stderr
    """
)


def arenas(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", ARENA_SCRIPT, mode], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stderr.count("Arena ")


@needs_glibc
def test_malloc_arenas_are_limited() -> None:
    # Eight threads allocating at once get arenas of their own unless the limit holds.
    unlimited = arenas("free")
    assert unlimited > 2, "the control run must show more arenas, or this test proves nothing"
    assert arenas("limit") <= 2


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
