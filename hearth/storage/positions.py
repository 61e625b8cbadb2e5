"""Stream positions handed out in order, and the position readers may trust.

Writers to different rooms commit concurrently, so position 11 can commit before
position 10. A reader that took "everything up to 11" at that moment would miss
10 forever. `PositionTracker` hands out positions and reports as `current` only
the highest position below which every handed-out position has finished (its
transaction committed or failed). Sync tokens are built from `current`.

This is process-local state behind a small interface: a second writer process
would replace it with a shared sequence plus a "persisted up to" row.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from contextlib import contextmanager


class PositionTracker:
    def __init__(self, current: int) -> None:
        self._last_issued = current
        self._current = current
        self._in_flight: list[int] = []  # min-heap of unfinished positions
        self._finished: set[int] = set()

    @property
    def current(self) -> int:
        """Every position <= current has finished."""
        return self._current

    @contextmanager
    def next(self) -> Iterator[int]:
        """A fresh position, marked finished when the block exits (however it exits)."""
        self._last_issued += 1
        pos = self._last_issued
        heapq.heappush(self._in_flight, pos)
        try:
            yield pos
        finally:
            self._finish(pos)

    def _finish(self, pos: int) -> None:
        self._finished.add(pos)
        while self._in_flight and self._in_flight[0] in self._finished:
            done = heapq.heappop(self._in_flight)
            self._finished.discard(done)
            self._current = done
        if not self._in_flight:
            self._current = self._last_issued
