"""What a run leaves behind: :class:`RunRecord`, returned by :meth:`Simulation.run`.

The record is frozen: every figure of a report (:mod:`sim.figures`) is computed
from it alone, never from the simulation's live objects. Its parts are made by
the simulation's collaborators when the run is over: the nodes and entries
(:class:`NodeRecord`, :class:`EntryRecord`), the time series
(:class:`Sample`), what honest nodes observed of their peers
(:class:`Observations`), query checks (:class:`QueryCheck`), governance
(:class:`GovernanceRecord`), faults (:class:`FaultRecord`), alerts at watching
nodes (:class:`AlertRecord`) and sightings, disputes and appeals
(:class:`AfterMatchRecord`).

Mappings in a record are read-only by type; they are the run's own, handed
over when it ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sim.scenario import Scenario

__all__ = [
    "AbuseRecord",
    "AfterMatchRecord",
    "Alert",
    "AlertRecord",
    "AppealRecord",
    "CatchUp",
    "ChangeRecord",
    "EntryRecord",
    "FaultRecord",
    "GovernanceRecord",
    "NodeRecord",
    "Observations",
    "PartitionRecord",
    "QueryCheck",
    "QueryRecord",
    "RunRecord",
    "Sample",
    "VersionRecord",
]


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One member's node at the end of the run."""

    idx: int
    name: str
    role: str
    admin: bool
    founder: bool
    started: bool
    up: bool
    removed: bool
    joined_at: float  # virtual ms
    bytes_sent: int
    #: forged, invalid or replayed entries it sent (a withholder: entries withheld)
    bad_items_sent: int
    #: nodes whose feed this node holds frozen by a fork proof
    frozen_feeds: frozenset[int]
    #: entries this node refused as past a removed member's until_seq
    refused_as_revoked: int
    #: the epoch keys it holds, the charter version it is at
    epochs: tuple[int, ...]
    charter_version: int

    @property
    def honest(self) -> bool:
        return self.role == "honest"

    @property
    def current(self) -> bool:
        """Honest, up and not removed at the end: its holdings and answers count."""
        return self.up and self.honest and not self.removed


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """One entry a member published (or an equivocator's twin)."""

    author: int
    seq: int
    t: float  # virtual ms of publication
    ops: int
    #: part of the ground truth and of the delivery figures
    valid: bool
    twin: bool
    #: republished live reports under a new key epoch
    republished: bool
    #: node -> virtual ms it first accepted the entry
    held: Mapping[int, float]
    #: nodes holding it at the end (a node that lost its state may hold it no more)
    held_at_end: frozenset[int]


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of the time series (every ``sample_ms``)."""

    t_s: float
    bytes: int  # sent since the previous sample, all nodes
    messages: int
    exchanges: int  # completed by their initiators
    nodes_up: int
    backlog: int  # valid entries not yet held, summed over current nodes
    published: int  # valid entries so far


@dataclass(frozen=True, slots=True)
class CatchUp:
    """A node that came up (restarted or new) and had to catch up."""

    node: int
    why: str
    t_s: float
    target: int  # valid entries published before it came up
    done_s: float | None


@dataclass(frozen=True, slots=True)
class Observations:
    """What honest nodes saw of their peers, by peer index."""

    refusals: Mapping[int, Mapping[str, int]]
    refused_by: Mapping[int, frozenset[int]]
    message_refusals: Mapping[int, Mapping[str, int]]
    quarantined_by: Mapping[int, frozenset[int]]
    forks_seen: Mapping[int, Mapping[int, float]]  # log -> node -> t
    stale_duplicates: Mapping[int, int]
    stale_by: Mapping[int, frozenset[int]]
    starved: Mapping[int, int]
    starved_by: Mapping[int, frozenset[int]]
    fed: Mapping[int, int]
    relayed: Mapping[int, int]  # others' entries accepted from it
    own_sent: Mapping[int, int]  # its own entries accepted from it
    first_detected: Mapping[int, float]
    failures: int
    exchanges: int
    #: entries no member published, accepted by an honest node
    unknown_accepted: int
    catch_up: tuple[CatchUp, ...]


@dataclass(frozen=True, slots=True)
class QueryCheck:
    """One query check at one node: answers against the ground truth, and the Bloom stage."""

    t: float
    node: int
    final: bool
    present: int
    agree: int
    disagree: int
    removal_race: int
    bloom_false_negatives: int
    absent: int
    bloom_positives: int
    false_matches: int
    live_tokens: int
    capacity: int
    expected_fpr: float
    textbook_fpr: float
    #: matching answers whose sightings, disputes and appeal state were compared
    #: with the ground truth (only when the run has any), and how many differed
    extras_agree: int = 0
    extras_disagree: int = 0


@dataclass(frozen=True, slots=True)
class QueryRecord:
    checks: tuple[QueryCheck, ...]
    #: identifiers a forger or violator tried to plant, held by honest nodes at the end
    planted: int
    #: equivocator -> how honest nodes answer for its tokens
    forked_tokens: Mapping[int, Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One charter version made during the run, from its proposal to every node."""

    version: int
    changes: tuple[str, ...]  # protocol.governance.describe_changes
    proposed_t: float
    final_t: float  # the first node to hold it (the quorum's last signer)
    proposer: int
    signers: tuple[int, ...]
    held: Mapping[int, float]  # node -> when it had the version
    new_epoch: int | None


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One governance change of the scenario: an onboarding or a removal of members."""

    kind: str  # "onboard" or "remove"
    t: float
    members: tuple[int, ...]
    versions: tuple[int, ...]  # one charter version per member, in order
    until_seq: Mapping[int, int]  # removed member -> until_seq
    new_epochs: tuple[int, ...]  # epochs opened (removals rotate the key)


@dataclass(frozen=True, slots=True)
class GovernanceRecord:
    versions: tuple[VersionRecord, ...]
    changes: tuple[ChangeRecord, ...]
    #: epoch -> node -> when it first held the epoch's key (epoch 1: newcomers only)
    keys_at: Mapping[int, Mapping[int, float]]
    #: node -> when it first held any key (newcomers)
    first_keys_at: Mapping[int, float]
    #: epoch -> (entries, ops) republished under it
    republished: Mapping[int, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class PartitionRecord:
    at_s: float
    heal_s: float | None
    groups: Mapping[int, int]  # node -> group
    sizes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FaultRecord:
    timeline: tuple[tuple[float, str], ...]
    partitions: tuple[PartitionRecord, ...]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert a watching node raised (DESIGN §14), as node/alerts.py decides it."""

    node: int
    value: int  # the identifier
    event: str  # "reported" or "retracted"
    source: str  # "watch" or "recent_query"
    category: str  # of the report added or retracted
    urgent: bool  # the category is one of the policy's urgent categories
    author: int  # of the entry
    seq: int
    entry_ts: int  # the entry's ts (ms)
    t: float  # virtual ms the node accepted the entry
    latency_ms: int  # from the entry's ts to the alert
    published: bool  # the entry is one a member published (in the ledger)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    watchers: tuple[int, ...]
    #: (watcher, identifier) pairs watched explicitly, and values queried and so watched
    watches: int
    recent_queries: int
    queried_ahead: int  # of them, values nobody had reported yet
    alerts: tuple[Alert, ...]


@dataclass(frozen=True, slots=True)
class AbuseRecord:
    """A disputer's or appeal spammer's ops, and what the policy's quota made of them."""

    node: int
    role: str
    what: str  # "dispute" or "appeal"
    quota: int  # per 24 hours
    tokens_seen: int  # other members' reported tokens it saw (and went after)
    attempted: int  # ops it tried to publish
    accepted_own: int  # ops its own feeds took (within the quota): valid entries
    over_quota: int  # ops its own feeds refused; signed anyway and sent
    #: the most of its ops of that kind an honest node holds at the end (all within 24 h)
    max_held_by_an_honest_node: int
    cases_made: int  # sealed appeal cases it relayed (appeal spammer)


@dataclass(frozen=True, slots=True)
class AppealRecord:
    """One appeal filed during the run."""

    id: str
    appellant: int
    t: float
    spam: bool  # an appeal spammer's
    op_published: bool  # its appeal op is in the appellant's feed (False: over quota)
    cases: int
    #: reporter -> virtual ms it opened the sealed case
    opened: Mapping[int, float]
    #: reporter -> (virtual ms, decision)
    decided: Mapping[int, tuple[float, str]]


@dataclass(frozen=True, slots=True)
class AfterMatchRecord:
    """Sightings, disputes and appeals of the run (DESIGN §15)."""

    #: ops honest members published, by op ("seen", "dispute", "appeal", "upheld",
    #: "rejected", "retracted_on_appeal")
    honest_ops: Mapping[str, int]
    #: honest requests their own node refused, by reason ("not_listed", "over_quota")
    honest_refused: Mapping[str, int]
    abusers: tuple[AbuseRecord, ...]
    appeals: tuple[AppealRecord, ...]
    #: honest node -> sealed appeal cases it holds for appeal ids no honest node holds
    #: an appeal op of (the spammer's over-quota appeals), at the end
    orphan_cases_held: Mapping[int, int]
    #: honest nodes holding an appeal op of an over-quota appeal (expected 0)
    orphan_ops_held: int
    #: the ground truth at the end: identifiers matching, with a live sighting, with a
    #: live dispute, under appeal (and of them, under an appeal spammer's appeal)
    truth: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """Everything a report needs of one run (see the module docstring)."""

    scenario: Scenario
    end_ms: float
    events: int
    sample_ms: float
    stop_reports_ms: float
    nodes: tuple[NodeRecord, ...]
    entries: tuple[EntryRecord, ...]
    identifiers_in_truth: int
    tokens_in_truth: int
    lost_entries: int
    samples: tuple[Sample, ...]
    observations: Observations
    queries: QueryRecord
    governance: GovernanceRecord
    faults: FaultRecord
    #: None: no watching nodes in the scenario
    alerts: AlertRecord | None = None
    #: None: no sightings, disputes or appeals in the scenario
    after_match: AfterMatchRecord | None = None
    #: entries offered to every reachable peer at once as urgent (gossip.push_urgent)
    pushed: int = 0
