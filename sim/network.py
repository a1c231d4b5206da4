"""The simulated network: per-link latency, jitter, loss, uplink bandwidth, partitions.

A message from node a to node b leaves a's uplink once the messages queued
before it have gone (``bandwidth_kbps``: its bytes take ``8 * bytes / kbps`` ms
to send), then travels the link's latency. Each link (unordered pair) draws its
base latency once from the scenario's distribution — by hashing the run seed
and the pair, so the draw does not depend on the order links are first used —
and each message varies around it by ``jitter``. A message is lost with the
current loss probability, and does not cross a partition. The node's driver
talks HTTP, so a lost or blocked request is noticed by its sender only when
its HTTP timeout expires; a request to a node that is down is refused at once
(one round trip).

All randomness comes from the ``random.Random`` the network is given.
"""

from __future__ import annotations

import hashlib
import math
import random
from statistics import NormalDist

from sim.scenario import LatencySpec, NetworkSpec

__all__ = ["Network"]

_UNIT = NormalDist()


class Network:
    def __init__(self, spec: NetworkSpec, *, seed: int, rng: random.Random) -> None:
        self.spec = spec
        self.seed = seed
        self.rng = rng
        self._base: dict[tuple[int, int], float] = {}
        #: node index -> partition group (only while a partition stands)
        self.groups: dict[int, int] | None = None
        #: node index -> (extra latency ms, uplink kbps or 0) while its links are slow
        self.slow: dict[int, tuple[float, float]] = {}
        self.extra_loss: list[float] = []
        self._uplink_free: dict[int, float] = {}

    # -- latency ---------------------------------------------------------------------

    def _draw(self, lat: LatencySpec, u: float) -> float:
        if lat.dist == "fixed":
            return lat.value_ms
        if lat.dist == "uniform":
            return lat.min_ms + u * (lat.max_ms - lat.min_ms)
        return lat.median_ms * math.exp(lat.sigma * _UNIT.inv_cdf(u))

    def base_latency(self, a: int, b: int) -> float:
        key = (a, b) if a < b else (b, a)
        v = self._base.get(key)
        if v is None:
            h = hashlib.blake2b(f"{self.seed}:{key[0]}:{key[1]}".encode(), digest_size=8).digest()
            u = (int.from_bytes(h, "big") + 0.5) / 2**64
            v = self._base[key] = self._draw(self.spec.latency, u)
        return v

    def latency(self, a: int, b: int) -> float:
        ms = self.base_latency(a, b)
        j = self.spec.jitter
        if j:
            ms *= 1.0 + j * (2.0 * self.rng.random() - 1.0)
        for n in (a, b):
            s = self.slow.get(n)
            if s is not None:
                ms += s[0]
        return ms

    # -- faults ----------------------------------------------------------------------

    def blocked(self, a: int, b: int) -> bool:
        g = self.groups
        return g is not None and g.get(a, 0) != g.get(b, 0)

    def loss(self) -> float:
        keep = 1.0 - self.spec.loss
        for x in self.extra_loss:
            keep *= 1.0 - x
        return 1.0 - keep

    def lost(self) -> bool:
        p = self.loss()
        return p > 0.0 and self.rng.random() < p

    # -- one message ---------------------------------------------------------------------

    def transit(self, a: int, b: int, nbytes: int, now: float) -> float | None:
        """When a message of ``nbytes`` sent by a at ``now`` reaches b (None: lost or blocked)."""
        kbps = self.spec.bandwidth_kbps
        s = self.slow.get(a)
        if s is not None and s[1] > 0:
            kbps = s[1] if kbps <= 0 else min(kbps, s[1])
        depart = now
        if kbps > 0:
            # kbit/s is bit/ms: the bytes leave after the ones queued before them
            depart = max(now, self._uplink_free.get(a, 0.0)) + nbytes * 8.0 / kbps
            self._uplink_free[a] = depart
        if self.blocked(a, b) or self.lost():
            return None
        return depart + self.latency(a, b)

    def refused_after(self, a: int, b: int) -> float:
        """How long a connection to a node that is down takes to be refused (a round trip)."""
        return 2.0 * self.base_latency(a, b)
