"""Give freed heap back to the operating system between the phases of a run.

A run's phases have different working sets: the pull holds pages of records, the rebuild holds
touches and journeys.  CPython frees the objects of a finished phase, but glibc's malloc keeps
the pages (and one arena per thread that allocated), so the process's resident size only grows
and the next phase stacks on top of the last one's high-water mark.  ``malloc_trim`` returns
what is free; on a C library without it (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """At most ``arenas`` malloc arenas (glibc makes up to eight per core, one per thread that
    allocates): the pull's threads otherwise each keep a heap of their own.  The same as
    ``MALLOC_ARENA_MAX``, set from inside; True if the C library took it."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))


def release_free_memory() -> bool:
    """Collect cycles, then hand free heap pages back; True if the C library could."""
    gc.collect()
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


@contextmanager
def long_lived_heap() -> Iterator[Callable[[], None]]:
    """Let the cyclic collector skip what a phase has built and keeps.

    The rebuild holds a million small objects (contacts, their touches, the identity graph,
    journeys) while it allocates and drops millions more (rows, credits).  Every full
    collection walked them all: 8 s of a 129 s rebuild and write-back were collector pauses
    of up to 0.75 s, each stalling the write-back's sends.  The phase calls the yielded
    ``settle`` between its steps: young cycles are collected, then everything alive is set
    aside (``gc.freeze``, constant time; refcounting still frees it).  On the way out it is
    handed back to the collector, with any cycle that became garbage meanwhile.
    """

    def settle() -> None:
        gc.collect(1)
        gc.freeze()

    try:
        yield settle
    finally:
        gc.unfreeze()
