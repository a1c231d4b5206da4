"""Scenarios: what a simulation run is made of, read from a TOML file (tomllib).

A scenario names the members, the gossip settings, the network, the workload
of reports, retractions and queries, faults on a timeline, misbehaving
members, governance changes (onboarding and removal) and the run length. Every
table and key is checked: an unknown key, a wrong type or a value out of range
is a :class:`ScenarioError` naming it (``faults[2].heal_s: must be after
at_s``), never a silent default. ``docs/simulator.md`` describes every key;
:func:`load_scenario` reads a file and :func:`parse_scenario` a string.

Times in a scenario are seconds of virtual time from the start of the run
(``*_s``) or milliseconds (``*_ms``); counts of nodes are either an integer
(that many nodes) or a fraction below 1 (that share of the members).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.errors import ScenarioError
from contracts.indicators import KINDS
from contracts.taxonomy import CATEGORIES

__all__ = [
    "BYZANTINE_ROLES",
    "AlertsSpec",
    "AppealsSpec",
    "ByzantineSpec",
    "Churn",
    "Crash",
    "Fault",
    "GossipSpec",
    "GovernanceSpec",
    "LatencySpec",
    "LinkLoss",
    "LiveSpec",
    "MembersSpec",
    "NetworkSpec",
    "Partition",
    "PolicySpec",
    "QuerySpec",
    "Scenario",
    "ScenarioError",
    "SlowLinks",
    "WorkloadSpec",
    "load_scenario",
    "parse_scenario",
]

BYZANTINE_ROLES = (
    "forger",
    "equivocator",
    "policy_violator",
    "replayer",
    "withholder",
    "disputer",
    "appeal_spammer",
)


# -- the parts -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MembersSpec:
    count: int = 20
    admins: int = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipSpec:
    interval_ms: int = 2_000
    fanout: int = 3
    frame_bytes: int = 1_048_576
    #: the engine's own exchange timeout (protocol.gossip.EXCHANGE_TIMEOUT_MS)
    timeout_ms: int = 30_000
    #: offer an entry reporting (or retracting) in one of the policy's urgent categories
    #: to every reachable peer at once, as the node does (``GossipEngine.push_now``);
    #: off by default, so that scenarios written before it keep their figures
    push_urgent: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencySpec:
    """One-way latency of a link: ``fixed`` (value_ms), ``uniform`` (min_ms..max_ms)
    or ``lognormal`` (median_ms, sigma). Each link draws its own base latency
    from this distribution once; each message varies around it by ``jitter``."""

    dist: str = "lognormal"
    value_ms: float = 40.0
    min_ms: float = 10.0
    max_ms: float = 100.0
    median_ms: float = 40.0
    sigma: float = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkSpec:
    latency: LatencySpec = field(default_factory=LatencySpec)
    #: each message's latency is the link's base times a uniform factor in [1-jitter, 1+jitter]
    jitter: float = 0.2
    #: probability that one HTTP request or its answer is lost
    loss: float = 0.0
    #: each node's uplink in kbit/s (0: unlimited); messages queue behind each other
    bandwidth_kbps: float = 0.0
    #: the node's HTTP timeout (gossip.timeout_s): a request unanswered by then has failed
    http_timeout_ms: int = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSpec:
    #: entries published per second across the consortium (Poisson arrivals)
    reports_per_s: float = 1.0
    #: ops per entry, drawn uniformly from [lo, hi]
    ops_per_entry: tuple[int, int] = (1, 20)
    #: retraction entries per second (each retracts one live report of its author)
    retractions_per_s: float = 0.0
    start_s: float = 0.0
    #: no new reports after this (default: 3/4 of the run, leaving time to settle)
    stop_s: float | None = None
    kinds: tuple[str, ...] = ("phone", "device", "account", "email", "ip")
    ttl_days: int = 30
    #: every op of an entry in one category (a platform's batch of one kind of case)
    one_category_per_entry: bool = False
    #: sightings ("seen"), disputes and appeals per second, each by a random honest
    #: member about another member's live report (DESIGN §15)
    sightings_per_s: float = 0.0
    disputes_per_s: float = 0.0
    appeals_per_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicySpec:
    """The genesis charter's data policy, where it differs from ``DataPolicy()``."""

    max_disputes_per_day: int = 1000
    max_appeals_per_day: int = 100
    #: None: the policy's default urgent categories
    urgent_categories: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AppealsSpec:
    """How reporters answer the appeals that reach them (sealed cases they open)."""

    #: a reporter decides this long after it opened the case (uniform)
    decide_s: tuple[float, float] = (5.0, 30.0)
    #: share of appeals upheld (the report retracted); a case whose grounds are an
    #: appeal spammer's boilerplate is always rejected
    upheld: float = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertsSpec:
    """Watching nodes and their watches (DESIGN §14); off unless ``watchers`` > 0."""

    #: honest founders that watch: a count, or a share
    watchers: float = 0.0
    #: each watcher watches this share of the fresh identifiers honest members report,
    #: from before the first report (a platform's watchlist)
    watch_share: float = 0.0
    #: platform queries per second, each of one value at a random watcher; the value
    #: is watched for ``recent_query_s`` (``alerts.recent_query_hours``)
    queries_per_s: float = 0.0
    recent_query_s: float = 0.0
    #: share of those queries about a value nobody has reported yet (reported later)
    queried_ahead: float = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySpec:
    #: a query check every this many seconds at ``nodes`` random honest nodes (0: off)
    every_s: float = 10.0
    nodes: int = 3
    #: reported tokens (live and retracted) and never-reported tokens per check
    present: int = 200
    absent: int = 2_000
    #: the Bloom index: configured false-positive rate and sizing headroom (node.index)
    error_rate: float = 0.001
    headroom: float = 2.0
    #: at the end of the run every honest node answers every reported token; this
    #: many of them (0: all) also answer ``final_absent`` never-reported tokens
    final_nodes: int = 20
    final_absent: int = 50_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Partition:
    at_s: float
    heal_s: float | None
    #: shares of the members on each side, e.g. [0.5, 0.5]
    groups: tuple[float, ...] = (0.5, 0.5)


@dataclass(frozen=True, slots=True, kw_only=True)
class Crash:
    at_s: float
    restart_s: float | None
    nodes: float = 1
    #: "kept": the node restarts over its store; "lost": it starts again from genesis
    state: str = "kept"


@dataclass(frozen=True, slots=True, kw_only=True)
class Churn:
    from_s: float
    to_s: float
    #: crashes per minute across the consortium
    per_min: float = 6.0
    down_s: tuple[float, float] = (5.0, 30.0)
    #: share of restarts that come back with their state lost
    lost_state: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowLinks:
    from_s: float
    to_s: float | None
    nodes: float = 0.1
    extra_latency_ms: float = 200.0
    bandwidth_kbps: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkLoss:
    from_s: float
    to_s: float | None
    loss: float = 0.1


Fault = Partition | Crash | Churn | SlowLinks | LinkLoss


@dataclass(frozen=True, slots=True, kw_only=True)
class ByzantineSpec:
    role: str
    count: float = 1
    #: forged / invalid / replayed entries slipped into each message that carries entries
    per_message: int = 2
    #: equivocator: sign a second entry for every this-many-th seq of its feed
    every: int = 1
    #: entries a forger, equivocator, replayer or withholder publishes of its own, per
    #: minute (misbehaving members are not picked by the workload's reports)
    reports_per_min: float = 6.0


@dataclass(frozen=True, slots=True, kw_only=True)
class GovernanceSpec:
    kind: str  # "onboard" or "remove"
    at_s: float
    count: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveSpec:
    nodes: int = 4
    interval_ms: int = 500
    reports: int = 10
    report_every_ms: int = 500
    deadline_s: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str
    description: str = ""
    seed: int = 1
    duration_s: float = 120.0
    #: virtual time between two samples of the time series (default: one gossip interval)
    sample_ms: int | None = None
    members: MembersSpec = field(default_factory=MembersSpec)
    gossip: GossipSpec = field(default_factory=GossipSpec)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    queries: QuerySpec = field(default_factory=QuerySpec)
    policy: PolicySpec = field(default_factory=PolicySpec)
    appeals: AppealsSpec = field(default_factory=AppealsSpec)
    alerts: AlertsSpec = field(default_factory=AlertsSpec)
    faults: tuple[Fault, ...] = ()
    byzantine: tuple[ByzantineSpec, ...] = ()
    governance: tuple[GovernanceSpec, ...] = ()
    live: LiveSpec = field(default_factory=LiveSpec)

    @property
    def report_stop_s(self) -> float:
        w = self.workload
        return w.stop_s if w.stop_s is not None else 0.75 * self.duration_s

    def replace(self, **changes: object) -> Scenario:
        """A copy with ``changes``; nested parts by ``part={"key": value}``."""
        out: dict[str, Any] = {}  # field name -> value, each field of its own type
        for k, v in changes.items():
            cur: object = getattr(self, k)
            if (
                isinstance(v, Mapping)
                and dataclasses.is_dataclass(cur)
                and not isinstance(cur, type)
            ):
                v = dataclasses.replace(cur, **v)
            out[k] = v
        new = dataclasses.replace(self, **out)
        _validate(new)
        return new

    def to_json(self) -> dict[str, Any]:
        """The scenario as plain data (for figures.json)."""
        d = dataclasses.asdict(self)
        d["faults"] = [
            {"kind": _FAULT_NAMES[type(f)], **dataclasses.asdict(f)} for f in self.faults
        ]
        out: dict[str, Any] = _jsonable(d)
        return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


_FAULT_NAMES: dict[type, str] = {
    Partition: "partition",
    Crash: "crash",
    Churn: "churn",
    SlowLinks: "slow_links",
    LinkLoss: "loss",
}
_FAULT_TYPES = {v: k for k, v in _FAULT_NAMES.items()}


# -- reading ---------------------------------------------------------------------------


def load_scenario(path: Path | str, *, seed: int | None = None) -> Scenario:
    """Read a scenario file; ``seed`` overrides the file's seed."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ScenarioError(f"{p}: {e.strerror or e}") from None
    return parse_scenario(text, seed=seed, where=p.name)


def parse_scenario(text: str, *, seed: int | None = None, where: str = "scenario") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{where}: not valid TOML: {e}") from None
    try:
        sc = _scenario(data)
    except ScenarioError as e:
        raise ScenarioError(f"{where}: {e.message}") from None
    if seed is not None:
        sc = dataclasses.replace(sc, seed=seed)
    return sc


class _Table:
    """One TOML table being read: every key must be used, each checked."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(f"{path or 'scenario'}: must be a table")
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data[key]

    def num(self, key: str, default: float, *, lo: float = 0.0, hi: float = math.inf) -> float:
        if key not in self.data:
            return default
        v = self.raw(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            raise ScenarioError(f"{self._name(key)}: must be a number in [{lo}, {hi}], got {v!r}")
        return float(v)

    def opt_num(self, key: str, *, lo: float = 0.0) -> float | None:
        if key not in self.data:
            return None
        return self.num(key, 0.0, lo=lo)

    def integer(self, key: str, default: int, *, lo: int = 0, hi: int = 2**31) -> int:
        if key not in self.data:
            return default
        v = self.raw(key)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ScenarioError(f"{self._name(key)}: must be an integer in [{lo}, {hi}], got {v!r}")
        return v

    def flag(self, key: str, default: bool) -> bool:
        if key not in self.data:
            return default
        v = self.raw(key)
        if not isinstance(v, bool):
            raise ScenarioError(f"{self._name(key)}: must be true or false, got {v!r}")
        return v

    def text(self, key: str, default: str, choices: tuple[str, ...] | None = None) -> str:
        if key not in self.data:
            return default
        v = self.raw(key)
        if not isinstance(v, str) or (choices is not None and v not in choices):
            allowed = f" (one of {', '.join(choices)})" if choices else ""
            raise ScenarioError(f"{self._name(key)}: must be a string{allowed}, got {v!r}")
        return v

    def pair(
        self, key: str, default: tuple[float, float], *, lo: float = 0.0
    ) -> tuple[float, float]:
        if key not in self.data:
            return default
        v = self.raw(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            v = [v, v]
        if (
            not isinstance(v, list)
            or len(v) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
            or not lo <= v[0] <= v[1]
        ):
            raise ScenarioError(f"{self._name(key)}: must be [low, high] with {lo} <= low <= high")
        return float(v[0]), float(v[1])

    def table(self, key: str) -> _Table:
        return _Table(self.raw(key) if key in self.data else {}, self._name(key))

    def tables(self, key: str) -> list[_Table]:
        if key not in self.data:
            return []
        v = self.raw(key)
        if not isinstance(v, list):
            raise ScenarioError(f"{self._name(key)}: must be an array of tables ([[{key}]])")
        return [_Table(x, f"{self._name(key)}[{i}]") for i, x in enumerate(v)]

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise ScenarioError(f"{self.path or 'scenario'}: unknown key(s) {', '.join(extra)}")


def _scenario(data: dict[str, Any]) -> Scenario:
    t = _Table(data, "")
    if not t.has("name"):
        raise ScenarioError("name: every scenario has a name")
    name = t.text("name", "")
    sc = Scenario(
        name=name,
        description=t.text("description", ""),
        seed=t.integer("seed", 1),
        duration_s=t.num("duration_s", 120.0, lo=1.0),
        sample_ms=t.integer("sample_ms", 0, lo=100) if t.has("sample_ms") else None,
        members=_members(t.table("members")),
        gossip=_gossip(t.table("gossip")),
        network=_network(t.table("network")),
        workload=_workload(t.table("workload")),
        queries=_queries(t.table("queries")),
        policy=_policy(t.table("policy")),
        appeals=_appeals(t.table("appeals")),
        alerts=_alerts(t.table("alerts")),
        faults=tuple(_fault(f) for f in t.tables("faults")),
        byzantine=tuple(_byzantine(b) for b in t.tables("byzantine")),
        governance=tuple(_governance(g) for g in t.tables("governance")),
        live=_live(t.table("live")),
    )
    t.done()
    _validate(sc)
    return sc


def _members(t: _Table) -> MembersSpec:
    m = MembersSpec(
        count=t.integer("count", 20, lo=2, hi=100_000), admins=t.integer("admins", 3, lo=1)
    )
    t.done()
    return m


def _gossip(t: _Table) -> GossipSpec:
    g = GossipSpec(
        interval_ms=t.integer("interval_ms", 2_000, lo=10),
        fanout=t.integer("fanout", 3, lo=1),
        frame_bytes=t.integer("frame_bytes", 1_048_576, lo=1024),
        timeout_ms=t.integer("timeout_ms", 30_000, lo=100),
        push_urgent=t.flag("push_urgent", False),
    )
    t.done()
    return g


def _latency(t: _Table) -> LatencySpec:
    lat = LatencySpec(
        dist=t.text("dist", "lognormal", ("fixed", "uniform", "lognormal")),
        value_ms=t.num("value_ms", 40.0),
        min_ms=t.num("min_ms", 10.0),
        max_ms=t.num("max_ms", 100.0),
        median_ms=t.num("median_ms", 40.0),
        sigma=t.num("sigma", 0.5, hi=5.0),
    )
    t.done()
    if lat.min_ms > lat.max_ms:
        raise ScenarioError(f"{t.path}.max_ms: must not be below min_ms")
    return lat


def _network(t: _Table) -> NetworkSpec:
    n = NetworkSpec(
        latency=_latency(t.table("latency")),
        jitter=t.num("jitter", 0.2, hi=0.99),
        loss=t.num("loss", 0.0, hi=0.99),
        bandwidth_kbps=t.num("bandwidth_kbps", 0.0),
        http_timeout_ms=t.integer("http_timeout_ms", 10_000, lo=10),
    )
    t.done()
    return n


def _workload(t: _Table) -> WorkloadSpec:
    lo, hi = t.pair("ops_per_entry", (1.0, 20.0), lo=1.0)
    kinds: tuple[str, ...] = ("phone", "device", "account", "email", "ip")
    if t.has("kinds"):
        v = t.raw("kinds")
        if (
            not isinstance(v, list)
            or not v
            or not all(isinstance(k, str) and k in KINDS for k in v)
        ):
            raise ScenarioError(f"{t.path}.kinds: must be a list of kinds among {sorted(KINDS)}")
        kinds = tuple(v)
    w = WorkloadSpec(
        reports_per_s=t.num("reports_per_s", 1.0),
        ops_per_entry=(int(lo), int(hi)),
        retractions_per_s=t.num("retractions_per_s", 0.0),
        start_s=t.num("start_s", 0.0),
        stop_s=t.opt_num("stop_s"),
        kinds=kinds,
        ttl_days=t.integer("ttl_days", 30, lo=1, hi=365),
        one_category_per_entry=t.flag("one_category_per_entry", False),
        sightings_per_s=t.num("sightings_per_s", 0.0),
        disputes_per_s=t.num("disputes_per_s", 0.0),
        appeals_per_s=t.num("appeals_per_s", 0.0),
    )
    t.done()
    return w


def _policy(t: _Table) -> PolicySpec:
    urgent: tuple[str, ...] | None = None
    if t.has("urgent_categories"):
        v = t.raw("urgent_categories")
        if not isinstance(v, list) or not all(isinstance(c, str) and c in CATEGORIES for c in v):
            raise ScenarioError(
                f"{t.path}.urgent_categories: must be a list of categories among "
                f"{', '.join(CATEGORIES)}"
            )
        urgent = tuple(v)
    p = PolicySpec(
        max_disputes_per_day=t.integer("max_disputes_per_day", 1000, lo=1),
        max_appeals_per_day=t.integer("max_appeals_per_day", 100, lo=1),
        urgent_categories=urgent,
    )
    t.done()
    return p


def _appeals(t: _Table) -> AppealsSpec:
    a = AppealsSpec(
        decide_s=t.pair("decide_s", (5.0, 30.0)),
        upheld=t.num("upheld", 0.5, hi=1.0),
    )
    t.done()
    return a


def _alerts(t: _Table) -> AlertsSpec:
    a = AlertsSpec(
        watchers=_nodes(t, 0.0, "watchers"),
        watch_share=t.num("watch_share", 0.0, hi=1.0),
        queries_per_s=t.num("queries_per_s", 0.0),
        recent_query_s=t.num("recent_query_s", 0.0),
        queried_ahead=t.num("queried_ahead", 0.5, hi=1.0),
    )
    t.done()
    return a


def _queries(t: _Table) -> QuerySpec:
    q = QuerySpec(
        every_s=t.num("every_s", 10.0),
        nodes=t.integer("nodes", 3, lo=1),
        present=t.integer("present", 200),
        absent=t.integer("absent", 2_000),
        error_rate=t.num("error_rate", 0.001, lo=1e-9, hi=0.5),
        headroom=t.num("headroom", 2.0, lo=1.0, hi=100.0),
        final_nodes=t.integer("final_nodes", 20),
        final_absent=t.integer("final_absent", 50_000),
    )
    t.done()
    return q


def _nodes(t: _Table, default: float, key: str = "nodes") -> float:
    v = t.num(key, default, lo=0.0)
    if v >= 1 and v != int(v):
        raise ScenarioError(f"{t.path}.{key}: a count of nodes is an integer, or a share below 1")
    return v


def _fault(t: _Table) -> Fault:
    kind = t.text("kind", "", tuple(_FAULT_TYPES))
    if not kind:
        raise ScenarioError(f"{t.path}.kind: every fault has a kind ({', '.join(_FAULT_TYPES)})")
    f: Fault
    if kind == "partition":
        groups: tuple[float, ...] = (0.5, 0.5)
        if t.has("groups"):
            g = t.raw("groups")
            if (
                not isinstance(g, list)
                or len(g) < 2
                or not all(
                    isinstance(x, int | float) and not isinstance(x, bool) and x > 0 for x in g
                )
            ):
                raise ScenarioError(
                    f"{t.path}.groups: must be a list of two or more positive shares"
                )
            groups = tuple(float(x) for x in g)
        f = Partition(at_s=t.num("at_s", 0.0), heal_s=t.opt_num("heal_s"), groups=groups)
        _after(t, f.at_s, f.heal_s, "heal_s", "at_s")
    elif kind == "crash":
        f = Crash(
            at_s=t.num("at_s", 0.0),
            restart_s=t.opt_num("restart_s"),
            nodes=_nodes(t, 1),
            state=t.text("state", "kept", ("kept", "lost")),
        )
        _after(t, f.at_s, f.restart_s, "restart_s", "at_s")
    elif kind == "churn":
        f = Churn(
            from_s=t.num("from_s", 0.0),
            to_s=t.num("to_s", 0.0),
            per_min=t.num("per_min", 6.0),
            down_s=t.pair("down_s", (5.0, 30.0)),
            lost_state=t.num("lost_state", 0.0, hi=1.0),
        )
        _after(t, f.from_s, f.to_s, "to_s", "from_s")
    elif kind == "slow_links":
        f = SlowLinks(
            from_s=t.num("from_s", 0.0),
            to_s=t.opt_num("to_s"),
            nodes=_nodes(t, 0.1),
            extra_latency_ms=t.num("extra_latency_ms", 200.0),
            bandwidth_kbps=t.num("bandwidth_kbps", 0.0),
        )
        _after(t, f.from_s, f.to_s, "to_s", "from_s")
    else:
        f = LinkLoss(
            from_s=t.num("from_s", 0.0), to_s=t.opt_num("to_s"), loss=t.num("loss", 0.1, hi=0.99)
        )
        _after(t, f.from_s, f.to_s, "to_s", "from_s")
    t.done()
    return f


def _after(t: _Table, start: float, end: float | None, end_key: str, start_key: str) -> None:
    if end is not None and end <= start:
        raise ScenarioError(f"{t.path}.{end_key}: must be after {start_key}")


def _byzantine(t: _Table) -> ByzantineSpec:
    role = t.text("role", "", BYZANTINE_ROLES)
    if not role:
        raise ScenarioError(f"{t.path}.role: one of {', '.join(BYZANTINE_ROLES)}")
    b = ByzantineSpec(
        role=role,
        count=_nodes(t, 1, "count"),
        per_message=t.integer("per_message", 2, lo=1, hi=64),
        every=t.integer("every", 1, lo=1),
        reports_per_min=t.num("reports_per_min", 6.0),
    )
    t.done()
    return b


def _governance(t: _Table) -> GovernanceSpec:
    kind = t.text("kind", "", ("onboard", "remove"))
    if not kind:
        raise ScenarioError(f"{t.path}.kind: onboard or remove")
    g = GovernanceSpec(kind=kind, at_s=t.num("at_s", 0.0), count=t.integer("count", 1, lo=1))
    t.done()
    return g


def _live(t: _Table) -> LiveSpec:
    lv = LiveSpec(
        nodes=t.integer("nodes", 4, lo=2, hi=16),
        interval_ms=t.integer("interval_ms", 500, lo=50),
        reports=t.integer("reports", 10, lo=1),
        report_every_ms=t.integer("report_every_ms", 500, lo=0),
        deadline_s=t.num("deadline_s", 60.0, lo=1.0),
    )
    t.done()
    return lv


def _validate(sc: Scenario) -> None:
    if sc.members.admins > sc.members.count:
        raise ScenarioError("members.admins: more admins than members")
    lo, hi = sc.workload.ops_per_entry
    if lo < 1 or hi < lo:
        raise ScenarioError("workload.ops_per_entry: must be [low, high] with 1 <= low <= high")
    byz = sum(_count(b.count, sc.members.count) for b in sc.byzantine)
    removed = sum(g.count for g in sc.governance if g.kind == "remove")
    if byz + removed > sc.members.count - sc.members.admins:
        raise ScenarioError(
            "byzantine/governance: misbehaving and removed members come from the non-admins; "
            f"there are only {sc.members.count - sc.members.admins}"
        )
    for i, f in enumerate(sc.faults):
        if isinstance(f, Partition) and sum(f.groups) <= 0:
            raise ScenarioError(f"faults[{i}].groups: shares must add up to more than 0")
    for i, g in enumerate(sc.governance):
        if g.at_s >= sc.duration_s:
            raise ScenarioError(f"governance[{i}].at_s: must be within the run")


def _count(n: float, total: int) -> int:
    """A node count: an integer as it is, a share below 1 of ``total`` (at least 1)."""
    if n >= 1:
        return int(n)
    return max(1, round(n * total)) if n > 0 else 0


count_nodes = _count
