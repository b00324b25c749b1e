"""Garbage-collector settings for a process that serves sessions (the CLI's; embedders choose their own).

CPython's cyclic collector runs a young-generation pass every 700 net allocations, and a full pass
walks every tracked object in the heap. A server holding thousands of sessions has a large heap
and allocates a few hundred objects per call, so with the interpreter's defaults it spends a
large share of its time collecting, and each full pass stalls every call in flight (the tail
latency of docs/benchmarks.md). Two standard remedies, both measured there:

- freeze what start-up made (modules, the server's tools): it lives as long as the process, so no
  collection needs to look at it again;
- collect the young generation less often, so garbage cycles are found in fewer, larger passes.

At shutdown the whole heap is frozen too: the process is about to exit, so the collector has no
reason to walk the sessions being torn down.
"""

from __future__ import annotations

import gc

SERVING_THRESHOLDS = (50_000, 20, 20)
"""Young-generation allocations per pass, and passes per older-generation pass."""


def tune_for_serving(thresholds: tuple[int, int, int] = SERVING_THRESHOLDS) -> None:
    """Freeze the start-up heap and set the serving thresholds; call once, before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


def freeze_for_exit() -> None:
    """Exempt the whole current heap from collection: the process is stopping."""
    gc.freeze()
