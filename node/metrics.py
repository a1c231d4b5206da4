"""The node's Prometheus metrics: one registry per node, shared by its layers.

The :class:`~node.core.Node` counts what it accepts, refuses and finds (entries,
forks); the local API counts queries, reports and requests; the peer
transport counts gossip exchanges and bytes. ``/metrics`` renders the registry.

Names follow Prometheus conventions: counters end in ``_total`` (the client
adds it), durations are ``_seconds``, sizes ``_bytes``; ``riskmesh_build_info``
is 1 with the version in its labels. ``promtool check metrics`` passes on the
output (tests/node/test_api_keys.py runs it where promtool is installed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "LATENCY_BUCKETS", "Metrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 1.0)


class Metrics:
    def __init__(self) -> None:
        from node.version import version_info

        self.registry = CollectorRegistry()
        self._bound: dict[tuple[str, int], tuple[Any, Any]] = {}
        r = self.registry
        self.build_info = Info("riskmesh_build", "This build's version", registry=r)
        v = version_info()
        self.build_info.info(
            {
                "version": str(v["riskmesh"]),
                "canonical_forms": str(v["canonical_forms"]),
                "python": str(v["python"]),
            }
        )
        self.queries = Counter("riskmesh_query_items", "Items queried", registry=r)
        self.matches = Counter("riskmesh_query_matches", "Items that matched", registry=r)
        self.reports = Counter("riskmesh_reports", "Indicators reported", registry=r)
        self.retractions = Counter("riskmesh_retractions", "Indicators retracted", registry=r)
        self.requests = Counter(
            "riskmesh_api_requests", "Local API requests", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "riskmesh_api_request_duration_seconds",
            "Local API request duration",
            ["route"],
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.entries = Counter(
            "riskmesh_entries", "Entries offered by peers, by outcome", ["outcome"], registry=r
        )
        self.index_tokens = Gauge("riskmesh_index_tokens", "Tokens in the Bloom index", registry=r)
        self.live_indicators = Gauge(
            "riskmesh_live_indicators", "Live (unexpired, unretracted) tokens", registry=r
        )
        self.forks = Counter("riskmesh_fork_proofs", "Fork proofs found or received", registry=r)
        self.exchanges = Counter(
            "riskmesh_gossip_exchanges", "Gossip exchanges completed", ["role"], registry=r
        )
        self.gossip_bytes = Counter(
            "riskmesh_gossip_bytes",
            "Sealed gossip bytes sent and received",
            ["direction"],
            registry=r,
        )
        self.gossip_failures = Counter(
            "riskmesh_gossip_failures",
            "Gossip exchanges that failed (peer unreachable, timed out or refused)",
            registry=r,
        )
        self.lag = Gauge(
            "riskmesh_peer_lag_entries",
            "Entries a peer holds that this node lacks, as the peer last told",
            ["peer"],
            registry=r,
        )

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """Count one local API request (its children bound once per route and status)."""
        key = (route, status)
        bound = self._bound.get(key)
        if bound is None:
            bound = self._bound[key] = (
                self.requests.labels(route, str(status)),
                self.latency.labels(route),
            )
        bound[0].inc()
        bound[1].observe(seconds)

    # -- serving processes' metrics (node/workers.py) -------------------------------------------

    def totals(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The query and request series a serving process keeps, by (sample, labels);
        histogram buckets each on their own (not cumulative), so that they add up."""
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in (self.queries, self.matches, self.requests, self.latency):
            for metric in family.collect():
                below: dict[str, float] = {}
                for s in metric.samples:
                    if s.name.endswith("_created"):
                        continue
                    v = s.value
                    if s.name.endswith("_bucket"):  # cumulative, in order of le
                        route = s.labels["route"]
                        v, below[route] = v - below.get(route, 0.0), v
                    out[(s.name, tuple(sorted(s.labels.items())))] = v
        return out

    def delta_since(
        self, sent: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    ) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
        """What changed since ``sent`` (which is brought up to date)."""
        now = self.totals()
        out = [(k[0], k[1], v - sent.get(k, 0.0)) for k, v in now.items() if v != sent.get(k, 0.0)]
        sent.clear()
        sent.update(now)
        return out

    def absorb(self, delta: Sequence[tuple[str, tuple[tuple[str, str], ...], float]]) -> None:
        """Add a serving process's :meth:`delta_since` to this (the writer's) registry."""
        for name, label_items, v in delta:
            labels = dict(label_items)
            if name == "riskmesh_query_items_total":
                self.queries.inc(v)
            elif name == "riskmesh_query_matches_total":
                self.matches.inc(v)
            elif name == "riskmesh_api_requests_total":
                self.requests.labels(labels["route"], labels["status"]).inc(v)
            # prometheus-client has no public way to add observations in bulk: its
            # histogram child keeps one count per bucket and a sum
            elif name == "riskmesh_api_request_duration_seconds_bucket":
                child = self.latency.labels(labels["route"])
                le = float(labels["le"])
                i = len(LATENCY_BUCKETS) if le == float("inf") else LATENCY_BUCKETS.index(le)
                child._buckets[i].inc(v)
            elif name == "riskmesh_api_request_duration_seconds_sum":
                self.latency.labels(labels["route"])._sum.inc(v)

    def render(self) -> bytes:
        return generate_latest(self.registry)
