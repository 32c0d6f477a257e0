"""
Keep the cyclic garbage collector out of the way while pages are fetched.

Each page is thousands of new dicts and lists, so the collector runs often, and its full
collections walk every object of the process: in a task process that is Airflow with some
165,000 objects, which made decoding pages 2.5x slower than in a bare interpreter (3.7 s per
200,000 referrals). :class:`HeapTuning` moves the objects that exist out of the collector's reach
(``gc.freeze()``) and collects the youngest generation less often, then puts everything back.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

__all__ = ["YOUNG_THRESHOLD", "HeapTuning"]

#: Allocations of containers between two collections of the youngest generation while tuned.
YOUNG_THRESHOLD = 100_000


class HeapTuning:
    """
    The collector's settings for one fetch: :meth:`start` after the first page, :meth:`stop` at the end.

    Started after the first page rather than before the first request: what happens once per
    process on first use (the token's first acquisition, Airflow's hook lineage collector
    loading the plugins: some 100,000 objects) has then happened, and its objects are frozen
    with the rest. Left young, the collector would walk them again in every full collection.

    - ``gc.freeze()`` moves the objects that exist now out of the collector's reach; pages,
      which are freed by reference counting, are unaffected, and so is garbage created meanwhile.
      Always undone: objects left frozen are never collected, so a cycle that dies later leaks
      for the life of the process.
    - ``gc.unfreeze()`` cannot tell our objects from ones frozen before, and some processes start
      with frozen objects: CPython 3.12 itself (``gc.get_freeze_count()`` is 375 at start), a
      server that froze before forking for copy-on-write. Those are left as they are: automatic
      collection is paused instead (``gc.disable()``, re-enabled after if it was on).
    - The youngest generation's threshold is raised to :data:`YOUNG_THRESHOLD` (from 700): a
      page allocates a few thousand containers, so at the default the collector ran several
      times per page over objects that reference counting frees a moment later. Cycles are still
      collected, every few dozen pages.

    Afterwards the freeze count, the collector's state and its thresholds are what they were.
    """

    def __init__(self) -> None:
        self._undo: list[Callable[[], object]] | None = None

    def start(self) -> None:
        """Tune the collector; calls after the first (and after :meth:`stop`) do nothing."""
        if self._undo is not None:
            return
        thresholds = gc.get_threshold()
        undo: list[Callable[[], object]] = [lambda: gc.set_threshold(*thresholds)]
        gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
        if gc.get_freeze_count():
            if gc.isenabled():
                gc.disable()
                undo.append(gc.enable)
        else:
            gc.freeze()
            undo.append(gc.unfreeze)
        self._undo = undo

    def stop(self) -> None:
        """Put the collector back as :meth:`start` found it (nothing to do if it never ran)."""
        undo, self._undo = self._undo or [], []
        for step in reversed(undo):
            step()
