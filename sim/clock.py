"""The virtual clock: a heap of timed events, popped in order.

An event is ``(time, sequence, handler, args)``; the sequence number makes ties
deterministic (first scheduled, first run). Nothing reads a wall clock: the
time is :attr:`Clock.t` (virtual milliseconds from the start of the run) and
:attr:`Clock.now_ms` (the same as a wall-clock timestamp, from :data:`T0`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TypeVarTuple

__all__ = ["T0", "Clock"]

#: Virtual time 0 of every run, as a wall-clock millisecond timestamp.
T0 = 1_700_000_000_000

Ts = TypeVarTuple("Ts")


class Clock:
    """Virtual time and the events scheduled on it."""

    __slots__ = ("_heap", "_seq", "end", "events", "t")

    def __init__(self, end_ms: float) -> None:
        self.end = end_ms
        self.t = 0.0
        self.events = 0
        self._heap: list[tuple[float, int, Callable[..., None], tuple[object, ...]]] = []
        self._seq = 0

    @property
    def now_ms(self) -> int:
        """The virtual time as a millisecond timestamp (what engines are told)."""
        return T0 + int(self.t)

    def at(self, t: float, fn: Callable[[*Ts], None], *args: *Ts) -> None:
        """Run ``fn(*args)`` at virtual time ``t`` (ms)."""
        heapq.heappush(self._heap, (t, self._seq, fn, args))
        self._seq += 1

    def run(self, progress: Callable[[float], None] | None = None) -> None:
        """Run every event due before the end; then the time is the end."""
        heap = self._heap
        pop = heapq.heappop
        end = self.end
        step = end / 200
        next_progress = step
        while heap:
            t, _, fn, args = pop(heap)
            if t > end:
                break
            self.t = t
            fn(*args)
            self.events += 1
            if progress is not None and t >= next_progress:
                progress(t / end)
                next_progress = t + step
        self.t = end
