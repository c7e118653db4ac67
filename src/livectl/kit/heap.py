"""The cyclic garbage collector in a long-running process, once it has started."""

from __future__ import annotations

import gc


def freeze_startup_heap(*, young_containers: int | None = None) -> None:
    """Everything made so far lives as long as the process: keep it out of the collector's full
    passes, whose pauses grow with the heap and land on p99. With ``young_containers``, the
    young generation is walked once per that many net container allocations instead of
    CPython's 700."""
    gc.collect()
    gc.freeze()
    if young_containers is not None:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young_containers, middle, old)
