"""In-process members for the alert tests: real Nodes over SQLite, gossip carried by hand.

:class:`Mesh` founds a consortium of named homes (the first is the only admin),
opens a :class:`~node.core.Node` for each with one shared fake clock, and
carries every message the engines want sent until nobody has anything left
to say — the same messages the peer transport would seal and POST.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from node.alerts import AlertSettings
from node.config import load_config
from node.core import Node
from node.home import init_home, install_charter_file, make_genesis
from node.metrics import Metrics
from node.store import SqliteStore
from protocol.keys import MemberId, MemberKey

HOUR_MS = 3_600_000


class Clock:
    """A clock that moves only when told (ms); starts at the wall clock so that
    charters made by ``make_genesis`` are not in its future."""

    def __init__(self) -> None:
        self.now = time.time_ns() // 1_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


class Mesh:
    def __init__(
        self,
        root: Path,
        names: str = "ab",
        *,
        recent_query_hours: int = 72,
        retention_days: int = 30,
    ) -> None:
        self.root = root
        self.clock = Clock()
        self.settings = AlertSettings(
            recent_query_hours=recent_query_hours, retention_days=retention_days, clock=self.clock
        )
        first, *others = names
        for n in names:
            init_home(root / n, name=n, endpoint=f"http://{n}.test", api_listen="127.0.0.1:0")
        make_genesis(
            root / first,
            "alerts-test",
            [str(root / n / "join-request.cbor") for n in others],
            root / "genesis.cbor",
        )
        for n in names:
            install_charter_file(root / n, root / "genesis.cbor")
        self.nodes: dict[str, Node] = {}
        self.metrics: dict[str, Metrics] = {}
        for n in names:
            self.open(n)
        self.by_id = {node.key.id: n for n, node in self.nodes.items()}
        # every founder other than the first gets epoch 1's key from its grant
        for n in others:
            self.sync(n, first)

    def key(self, name: str) -> MemberKey:
        return MemberKey.from_seed((self.root / name / "keys" / "member.key").read_bytes())

    def open(self, name: str) -> Node:
        key = self.key(name)
        db = load_config(self.root / name, env={}).db_path
        metrics = self.metrics.setdefault(name, Metrics())
        node = Node(
            SqliteStore(db, key), key, now=self.clock(), alerts=self.settings, metrics=metrics
        )
        self.nodes[name] = node
        return node

    def reopen(self, name: str) -> Node:
        """Close ``name``'s node and open it again over the same home (a restart)."""
        self.nodes[name].close()
        return self.open(name)

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def id(self, name: str) -> MemberId:
        return MemberId(self.nodes[name].key.id)

    def flush(self) -> int:
        """Carry every waiting exchange to its end; how many exchanges ran."""
        ran = 0
        busy = True
        while busy:
            busy = False
            for name, node in list(self.nodes.items()):
                for send in node.take_sends():
                    busy = True
                    ran += 1
                    self._converse(name, self.by_id[send.peer], send.data)
        return ran

    def _converse(self, src: str, dst: str, data: bytes) -> None:
        msg: bytes | None = data
        a, b = src, dst
        while msg is not None:
            msg = self.nodes[b].receive(self.id(a), msg, self.clock())
            a, b = b, a

    def sync(self, a: str, b: str) -> None:
        """``a`` starts an exchange with ``b``; run everything to its end."""
        self.nodes[a].start_exchange(self.id(b), self.clock())
        self.flush()

    # -- the local API's calls ------------------------------------------------------------

    #: the clock moves this much before each report or retraction (0: not at all)
    step_ms = 1_000

    def report(self, name: str, value: str, category: str = "money_mule", **kw: Any) -> Any:
        self.clock.advance(self.step_ms)
        item = {"kind": kw.pop("kind", "phone"), "value": value, "category": category, **kw}
        return self.nodes[name].report([item], self.clock())

    def retract(self, name: str, value: str, kind: str = "phone") -> Any:
        self.clock.advance(self.step_ms)
        item = {"kind": kind, "value": value, "reason": "resolved"}
        return self.nodes[name].retract([item], self.clock())

    def alerts(self, name: str, after: int = 0) -> list[dict[str, Any]]:
        return self.nodes[name].alerts.after(after, 1000)
