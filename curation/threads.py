"""Running independent pieces of work in threads, for work that releases the GIL (Arrow kernels, DuckDB
queries, numba ``nogil`` loops): the pieces of a page then use every core."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


def thread_map(fn: Callable[[T], R], items: Sequence[T], threads: int | None = None) -> list[R]:
    """``[fn(x) for x in items]``, in up to ``threads`` threads (default: one per core); in the caller's thread
    when there is one item or one thread."""
    n = min(len(items), threads or os.cpu_count() or 1)
    if n <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, items))


def ranges_in_threads(run: Callable[[int, int], object], work: np.ndarray, threads: int) -> None:
    """``run(lo, hi)`` over item ranges of about equal work (``work``: the cumulative work up to and including each
    item), in ``threads`` threads; for compiled loops that release the GIL for their whole range."""
    n = len(work)
    cuts = np.searchsorted(work, np.linspace(0, work[-1], threads + 1)[1:-1]) if n else []
    spans = [(int(lo), int(hi)) for lo, hi in zip([0, *cuts], [*cuts, n]) if hi > lo]
    if len(spans) <= 1:
        run(0, n)
        return
    thread_map(lambda span: run(*span), spans, len(spans))
