"""Group commit: concurrent reports share one durable commit (DESIGN §9).

Publishing a report is CPU work (canonical form, tokens, signing) and one
durable commit (``synchronous=FULL``: an fsync of the WAL). The fsync costs
about as much as the work on a 1 000-item batch, and it does not grow with
the batch: so report and retraction requests that arrive together are run
one after another inside **one** unit of work and committed once.

How: a handler hands its call to `GroupCommit.run` and awaits the result.
The first call of a group wakes the committer, which lets every request
already readable reach it (a few turns of the event loop, ``window_s`` at
most), then runs the calls in order, each in its own savepoint (a refused
batch rolls back alone and gets its own error), commits once, and only then
answers each caller: acknowledged means committed. Nothing awaits between
the first call and the commit, so no peer, query or other request sees a
report before it is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from node.store import SqliteStore

__all__ = ["GroupCommit"]

T = TypeVar("T")

#: the longest a group waits for more requests after its first
WINDOW_S: Final = 0.002
#: calls in one group, at most (a larger backlog makes the next group)
MAX_GROUP: Final = 256


class GroupCommit:
    """Runs durable calls in groups that share one commit (see the module docstring)."""

    def __init__(self, store: SqliteStore, *, window_s: float = WINDOW_S) -> None:
        self.store = store
        self.window_s = window_s
        self._queue: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        #: groups committed and calls they held (tests and metrics read them)
        self.groups = 0
        self.calls = 0

    def __repr__(self) -> str:
        return f"GroupCommit(groups={self.groups}, calls={self.calls})"

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` inside the next group's unit of work; its result once committed."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._commit_loop())
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.append((fn, fut))
        assert self._wake is not None
        self._wake.set()
        return await fut

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, fut in self._queue:
            if not fut.done():
                fut.cancel()
        self._queue.clear()

    async def _commit_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            # let the requests already readable reach the queue
            deadline = time.monotonic() + self.window_s
            seen = -1
            while len(self._queue) != seen and time.monotonic() < deadline:
                seen = len(self._queue)
                await asyncio.sleep(0)
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            if self._queue:
                self._wake.set()
            self._commit(group)

    def _commit(self, group: list[tuple[Callable[[], Any], asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.store.atomic(durable=True):
                for fn, _ in group:
                    try:
                        with self.store.atomic():  # a savepoint: a failure rolls back alone
                            outcomes.append((True, fn()))
                    except Exception as e:  # handed to its caller, whatever it is
                        outcomes.append((False, e))
        except Exception as e:  # the commit itself failed: nothing is acknowledged
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(e)
            return
        self.groups += 1
        self.calls += len(group)
        for (_, fut), (ok, value) in zip(group, outcomes, strict=True):
            if fut.done():  # its caller went away; the work is committed all the same
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
