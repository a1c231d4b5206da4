"""Liveness and readiness (``GET /healthz``, ``GET /readyz``), without HTTP.

``/healthz`` says the process is up and answering. ``/readyz`` says whether the
node can do its job, and if not, why: a load balancer or systemd waits for it.
"""

from __future__ import annotations

from node.core import Node

__all__ = ["not_ready_reasons"]


def not_ready_reasons(node: Node) -> list[str]:
    """Why ``node`` is not ready to serve, or nothing when it is: it needs its
    charter, the consortium key of the current epoch, at least one API key in
    force, and its Bloom index."""
    reasons = []
    chain = node.chain
    if chain is None:
        reasons.append("no charter installed (riskmesh charter install)")
    else:
        ep = chain.current.current_epoch()
        if ep not in node.epoch_keys:
            reasons.append(
                f"no consortium key for epoch {ep} yet (its key grant comes by gossip "
                "from an admin's node)"
            )
    if len(node.keys) == 0:
        reasons.append("no API key in force (riskmesh keys create)")
    if node.index is None:
        reasons.append("the index is not built")
    return reasons
