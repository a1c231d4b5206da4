"""Crash safety of catch-up (issue 13): a kill -9 loop during catch-up loses nothing
and forks nothing, on the receiving node and on the node serving the catch-up.

Two real nodes, A and B (``riskmesh serve``, one serving process each). B is
stopped while A publishes 5 000 reports in :data:`ENTRIES` entries (through its
API, a few requests at a time); then B starts and catches up from A, and while it
does, B (five times) and A (three times), in a random order and each at a random
moment after the node killed before serves again, get SIGKILL and are started
again. After each of its restarts A reports once more. The members reach each
other through a slow link: a proxy in front of each peer API holds every message
:data:`DELAY_S`, and every message carries one entry (``gossip.frame_bytes`` is 1;
an entry larger than the frame travels alone), so the link carries a few entries
a second (about 2 here, kills and restarts included) and the catch-up is under
way at every kill whatever the machine's speed. Then the link is made fast and B
finishes.

Checked: B ends holding A's feed to A's head (same seq and hash) with no catch-up
left; B's query API answers a match for every report A acknowledged; neither
node holds a fork proof; A's own head never went backwards and stayed at least
the seq of every entry it acknowledged (an acknowledged entry survives a kill),
and B's copy of A's feed never went backwards across B's kills; no serving
process of a killed writer outlives it; every kill found B behind A. The seed of
the random moments is in every failure message.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cluster import RecordingProxy

from node.localnet import LocalNet, LocalNode, free_port, open_for_reports, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: entries A publishes before B starts; reports in each
ENTRIES = 500
ITEMS = 10
#: the slow link: how long every peer message waits in the proxy
DELAY_S = 0.1
#: how many times each node is killed during the catch-up
B_KILLS, A_KILLS = 5, 3
#: a random moment: this long at most after the node killed before is serving again
MOMENT_S = 0.6
DEADLINE_S = 30.0
ENV = {
    "RISKMESH_SERVE_WORKERS": "1",
    "RISKMESH_GOSSIP_INTERVAL_S": "0.2",
    "RISKMESH_GOSSIP_TIMEOUT_S": "5",
    # an entry larger than the frame travels alone: one entry per message
    "RISKMESH_GOSSIP_FRAME_BYTES": "1",
}


class SlowNet(LocalNet):
    """A LocalNet whose charter endpoints are proxies (tests/e2e/cluster.py) that can
    hold every message a while: slow links. A member that is down answers 502 there,
    as an unreachable one would."""

    def __init__(self, root: Path, names: Iterable[str], links: RecordingProxy) -> None:
        self.links = links
        super().__init__(root, names, env=ENV)

    def endpoint(self, node: LocalNode) -> str:
        port = free_port()
        self.links.add(node.name, port, node.peer_port)
        return f"http://127.0.0.1:{port}"


def items(tag: str) -> list[dict[str, Any]]:
    return [
        {"kind": "device", "value": f"fp:{tag}-{i}", "category": "device_risk"}
        for i in range(ITEMS)
    ]


def children(node: LocalNode) -> set[int]:
    """The processes the node's writer started (its serving process)."""
    assert node.proc is not None
    out: set[int] = set()
    for task in Path(f"/proc/{node.proc.pid}/task").iterdir():
        out.update(int(c) for c in (task / "children").read_text().split())
    return out


def gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" in status.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True


class Watch:
    """What the test saw: A's acknowledged reports, and every head it read."""

    def __init__(self, net: LocalNet) -> None:
        self.net = net
        self.a_id = net.status("a")["member"]["id"]
        #: value -> seq of the entry A acknowledged it in
        self.acked: dict[str, int] = {}
        self.a_heads: list[int] = []  # A's own head, at each look
        self.b_heads: list[int] = []  # B's copy of A's feed, at each look
        self.lock = threading.Lock()

    def report(self, tag: str) -> int | None:
        """One batch at A: the entry's seq once acknowledged, or None (A holds reports)."""
        batch = items(tag)
        code, body = self.net["a"].call("POST", "/v1/reports", {"items": batch})
        if code == 409:
            return None
        assert code == 201, (code, body)
        seq = int(body["entry"]["seq"])
        with self.lock:
            self.acked.update((i["value"], seq) for i in batch)
        return seq

    def a_head(self) -> tuple[int, str]:
        h = self._head_of_a("a")
        self.a_heads.append(h[0])
        return h

    def b_head(self) -> tuple[int, str]:
        h = self._head_of_a("b")
        self.b_heads.append(h[0])
        return h

    def _head_of_a(self, at: str) -> tuple[int, str]:
        [m] = [m for m in self.net.status(at)["members"] if m["id"] == self.a_id]
        head = m["head"] or {}
        return int(head.get("seq", 0)), str(head.get("hash", ""))


def test_a_kill_loop_during_catch_up_loses_nothing_and_forks_nothing(tmp_path: Path) -> None:
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    links = RecordingProxy()
    try:
        with SlowNet(tmp_path / "crash", "ab", links) as net:
            net.found("crash", founders=["a", "b"], admins=["a"])
            net.start()
            wait_until(
                "both nodes to take reports",
                lambda: all(open_for_reports(net.status(x)) for x in "ab"),
                DEADLINE_S,
            )
            a, b = net["a"], net["b"]
            assert net.stop("b") == {"b": 0}
            watch = Watch(net)
            published = time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                seqs = list(pool.map(lambda n: watch.report(f"first-{n}"), range(ENTRIES)))
            assert None not in seqs and sorted(seqs) == list(range(1, ENTRIES + 1))
            assert watch.a_head()[0] == ENTRIES

            published = time.monotonic() - published
            links.delay_s = DELAY_S
            started = time.monotonic()
            net.start("b")
            plan = ["b"] * B_KILLS + ["a"] * A_KILLS
            rng.shuffle(plan)
            kills: list[tuple[str, int, int]] = []  # (whom, B's copy of A, A's head)
            for n, victim in enumerate(plan):
                time.sleep(rng.uniform(0.0, MOMENT_S))
                node = net[victim]
                behind, head = watch.b_head()[0], watch.a_head()[0]
                kills.append((victim, behind, head))
                serving = children(node)
                assert node.kill() == -9
                net.start(victim)
                wait_until(
                    f"the killed {victim}'s serving process to stop",
                    lambda s=serving: all(gone(p) for p in s),
                    DEADLINE_S,
                )
                if victim == "a":
                    # every entry A acknowledged survived the kill; then A reports again
                    assert watch.a_head()[0] >= max(watch.acked.values())
                    wait_until(
                        "A to take reports after its restart",
                        lambda n=n: watch.report(f"after-kill-{n}"),
                        DEADLINE_S,
                    )
            loop_s = time.monotonic() - started

            links.delay_s = 0.0
            target = watch.a_head()
            finish = time.monotonic()
            wait_until(
                "B to hold A's feed to A's head",
                lambda: watch.b_head() == target and b.client.status()["catch_up"] is None,
                DEADLINE_S,
            )
            context = (
                f"seed {seed}; kills (whom, B's copy of A, A's head): {kills}; published "
                f"{ENTRIES} entries in {published:.1f} s, kill loop {loop_s:.1f} s, the rest "
                f"of the catch-up {time.monotonic() - finish:.1f} s"
            )
            print(context)

            # every kill came while B was still behind A: the catch-up was under way
            assert all(at < head for _, at, head in kills), context
            # no acknowledged report lost, at A or at B
            assert target[0] == max(watch.acked.values()) == ENTRIES + A_KILLS, context
            wanted = [{"kind": "device", "value": v} for v in watch.acked]
            answers = b.client.query(wanted)
            missing = [q["value"] for q, v in zip(wanted, answers, strict=True) if not v["match"]]
            assert not missing, f"{len(missing)} acknowledged reports unmatched at B: {missing[:5]}"
            # no fork, and neither A's head nor B's copy of it ever went backwards
            for x in "ab":
                assert net.status(x)["forks"] == [], (x, context)
            assert watch.a_heads == sorted(watch.a_heads), (watch.a_heads, context)
            assert watch.b_heads == sorted(watch.b_heads), (watch.b_heads, context)
            assert open_for_reports(net.status("a"))
            assert a.client.status()["catch_up"] is None
    finally:
        links.close()
