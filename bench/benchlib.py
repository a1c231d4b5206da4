"""Helpers shared by the bench scripts: rates, percentiles, a loaded node, the FIGURES line.

Every script prints its figures for people, then ends with one line::

    FIGURES {"bench": "bench_query", "params": {...}, "figures": [{...}, ...]}

which `python -m bench` reads to build the summary table of docs/benchmarks.md.
A figure carries its measured value, the baseline measured in the same run and
the DESIGN §13 budget it is held to (if any); whether the budget is met is
computed here from the measured value, never written by hand.

The scripts import this module as ``benchlib``: run them as
``python bench/<script>.py`` (Python puts the script's directory on the path).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from node.localnet import free_port

FIGURES_PREFIX = "FIGURES "

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda v, b: v >= b,
    ">": lambda v, b: v > b,
    "<=": lambda v, b: v <= b,
    "<": lambda v, b: v < b,
}


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Units per second of ``fn`` (which returns how many units it did), best of the
    runs that fit in ``seconds`` (at least one, after one warm-up call)."""
    fn()
    best = 0.0
    end = time.perf_counter() + seconds
    while True:
        t = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - t))
        if time.perf_counter() >= end:
            return best


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of already sorted values, nearest rank."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def figure(
    name: str,
    value: float | None,
    unit: str,
    *,
    baselines: Sequence[tuple[str, float | None] | tuple[str, float | None, str]] = (),
    budget: tuple[str, float] | None = None,
    also: tuple[str, bool] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One figure for the summary table.

    ``baselines`` are ``(what, value)`` or ``(what, value, unit)`` measured in the
    same run (value None: skipped, say why in ``what``). ``budget`` is
    ``(op, limit)`` with op one of ``>=``, ``>``, ``<=``, ``<``. ``also`` is a
    further condition of the budget, ``(description, held)``: the budget is met
    only if both hold. ``value`` None means the figure could not be measured.
    """
    met: bool | None = None
    ratio: float | None = None
    if budget is not None and value is not None:
        op, limit = budget
        met = _COMPARE[op](value, limit)
        ratio = value / limit if limit else None
        if also is not None:
            met = met and also[1]
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baselines": [
            {"what": b[0], "value": b[1], "unit": b[2] if len(b) > 2 else unit}  # type: ignore[misc]
            for b in baselines
        ],
        "budget_op": budget[0] if budget else None,
        "budget": budget[1] if budget else None,
        "also": {"what": also[0], "held": also[1]} if also else None,
        "met": met,
        "ratio": ratio,
        "note": note,
    }


def print_figures(bench: str, params: dict[str, Any], figures: list[dict[str, Any]]) -> None:
    """The last line of a script's output: its figures as JSON, for `python -m bench`."""
    line = json.dumps({"bench": bench, "params": params, "figures": figures}, sort_keys=True)
    print(FIGURES_PREFIX + line, flush=True)


def build_node(
    home: Path, n: int, now: int, *, api_listen: str | None = None, peer_listen: str | None = None
) -> tuple[Any, list[str], list[str]]:
    """A node home (init_home, make_genesis, install_charter_file) holding ``n`` live
    phone indicators published at ``now`` through the feed, 1000 ops per entry.

    Returns the open `Node`, the canonical present values and as many absent
    ones (``+86138…`` are present, ``+86139…`` absent).
    """
    from contracts.policy import DAY_MS
    from node.core import Node
    from node.home import init_home, install_charter_file, make_genesis
    from node.store import SqliteStore
    from protocol.entries import AddOp
    from protocol.keys import MemberKey

    init_home(
        home,
        name="bench",
        endpoint="http://x",
        api_listen=api_listen or f"127.0.0.1:{free_port()}",
        peer_listen=peer_listen or f"127.0.0.1:{free_port()}",
    )
    make_genesis(home, "bench", [], home / "g.cbor")
    install_charter_file(home, home / "g.cbor")
    key = MemberKey.from_seed((home / "keys" / "member.key").read_bytes())
    core = Node(SqliteStore(home / "riskmesh.db", key), key)
    assert core.feeds is not None
    tk = core.epoch_keys.tokenizer(1)
    present = [f"+86138{i:08d}" for i in range(n)]
    absent = [f"+86139{i:08d}" for i in range(n)]
    exp = now + 300 * DAY_MS
    for i in range(0, n, 1000):
        ops = [
            AddOp(tk.token("phone", v), "phone", 1, "telecom_fraud", 3, exp)
            for v in present[i : i + 1000]
        ]
        with core.store.atomic():
            core.feeds.publish(key, ops, now)
    core.rebuild_index(now)
    return core, present, absent
