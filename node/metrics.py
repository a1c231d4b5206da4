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

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        from node.version import version_info

        self.registry = CollectorRegistry()
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
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 1),
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
