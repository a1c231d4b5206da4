"""After the match: sightings, disputes, appeals, decisions, and what verdicts add
from them (DESIGN §15). :class:`AfterMatch` is owned by :class:`~node.core.Node`.

**Sightings and disputes.** ``seen`` ("we saw this in fraud too") and
``dispute`` ("our evidence says otherwise", with a reason) are signed ops in
this member's own feed, one per live epoch in which another member has a
live report of the value; a value nobody else reports is refused
(``not_listed``). Both expire (``ttl_days``, at most the policy's longest
report TTL) and are withdrawn with a retraction naming ``of``.

**Appeals, routed by value.** A member whose customer appeals files
``{"kind", "value", "case_ref", "grounds"}``. Its feed gets an ``appeal``
op per live epoch in which another member reports the value, and the case
travels as a sealed item (:mod:`protocol.appeals`) under a key made from the
value itself: only a node that holds the value — a reporter, from its sealed
copy of its own reports — can open it. The appellant's node addresses no
member and computes no list of reporters; nothing it answers names one.

**Decisions.** A reporter's node lists the cases it opened; deciding
``upheld`` retracts its reports of the value (reason ``appeal_upheld``) and
publishes ``appeal_decided``; ``rejected`` publishes the decision. Either
way a note goes back sealed to the appellant (anonymous sender, tagged with
the case key). An appeal is open against each live reporter that has not
decided it; it is overdue ``appeal_days`` after it was filed (or after the
reporter's report, if later). With ``suspend_overdue`` an overdue reporter's
report stops counting.

**Verdicts** add ``sightings`` and ``disputes`` (distinct members with a live
one), ``under_appeal``, ``appeal_overdue`` and ``confidence``
(:mod:`contracts.confidence`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from contracts.confidence import confidence_at, decaying
from contracts.errors import (
    AppealItemRejected,
    ConfigError,
    InvalidValue,
    NotReady,
    PolicyViolation,
    RequestRefused,
)
from contracts.indicators import KINDS, canonical
from contracts.policy import DAY_MS, DataPolicy
from contracts.taxonomy import APPEAL_DECISIONS, DISPUTE_REASONS
from contracts.warninglists import WarningList, check_additions
from node.aftermatch_store import InboundAppeal, OutboundAppeal
from node.audit import current_actor, detail
from node.batch import ReportResult, check_batch, check_fields, fields_of
from node.config import Config
from node.store import SqliteStore
from protocol.appeals import (
    CASE,
    MAX_CASE_REF_CHARS,
    MAX_GROUNDS_CHARS,
    MAX_NOTE_CHARS,
    NOTE,
    case_key,
    decode_case,
    decode_note,
    make_case,
    make_note,
    new_appeal_id,
    open_case,
    open_note,
)
from protocol.charter_chain import CharterChain
from protocol.entries import (
    AppealDecidedOp,
    AppealOp,
    DisputeOp,
    Entry,
    Op,
    RetractOp,
    SeenOp,
    is_appeal_id,
)
from protocol.feeds import Feeds
from protocol.gossip import GossipEngine
from protocol.keys import MemberKey, short_id
from protocol.store import AppealState, Decision, IndicatorState, SignalState
from protocol.tokens import EpochKeys

__all__ = ["AfterMatch", "Host", "VerdictContext", "read_local_list"]

log = logging.getLogger("riskmesh.appeals")

DEFAULT_SIGNAL_DAYS = 365
SIGNAL_FIELDS = frozenset({"kind", "value", "ttl_days"})
DISPUTE_FIELDS = SIGNAL_FIELDS | {"reason"}
APPEAL_FIELDS = frozenset({"kind", "value", "case_ref", "grounds"})
DECISION_FIELDS = frozenset({"decision", "note"})


class Host(Protocol):
    """What :class:`AfterMatch` needs of its :class:`~node.core.Node`."""

    store: SqliteStore
    key: MemberKey
    region: str
    epoch_keys: EpochKeys
    engine: GossipEngine | None
    chain: CharterChain | None

    def live_epochs(self, now: int | None = None) -> list[int]: ...
    def _ready_to_publish(self) -> tuple[CharterChain, Feeds]: ...
    def _dropped_authors(self, chain: CharterChain) -> frozenset[bytes]: ...
    def _wake(self) -> None: ...


# -- verdicts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Open:
    appeal: AppealState
    reporter: bytes
    deadline: int


class VerdictContext:
    """Sightings, disputes, appeals and decisions of a batch's matching tokens,
    read once (:meth:`AfterMatch.context`), applied per item."""

    def __init__(
        self,
        policy: DataPolicy,
        dropped: frozenset[bytes],
        signals: Mapping[bytes, list[SignalState]],
        appeals: Mapping[bytes, list[AppealState]],
        decisions: Mapping[str, list[Decision]],
    ) -> None:
        self.policy = policy
        self.dropped = dropped
        self.signals = signals
        self.appeals = appeals
        self.decisions = decisions

    def open_appeals(self, toks: Iterable[bytes], live: Sequence[IndicatorState]) -> list[_Open]:
        """Each (appeal, live reporter) pair the reporter has not decided yet."""
        firsts: dict[bytes, int] = {}
        for s in live:
            firsts[s.author] = min(firsts.get(s.author, s.first_ts), s.first_ts)
        by_id: dict[str, AppealState] = {}
        for t in toks:
            for a in self.appeals.get(t, ()):
                if a.withdrawn or a.author in self.dropped:
                    continue
                seen = by_id.get(a.id)
                if seen is None or a.ts < seen.ts:
                    by_id[a.id] = a
        span = self.policy.appeal_days * DAY_MS
        out = []
        for aid, a in sorted(by_id.items()):
            decided = {d.author for d in self.decisions.get(aid, ())}
            for r, first in sorted(firsts.items()):
                if r == a.author or r in decided:
                    continue
                out.append(_Open(a, r, max(a.ts, first) + span))
        return out

    def counted(
        self, toks: Sequence[bytes], live: list[IndicatorState], now: int
    ) -> list[IndicatorState]:
        """``live`` without the reports an overdue appeal suspends (``suspend_overdue``)."""
        if not self.policy.suspend_overdue or not live:
            return live
        overdue = {o.reporter for o in self.open_appeals(toks, live) if now > o.deadline}
        return [s for s in live if s.author not in overdue] if overdue else live

    def fields(
        self, toks: Sequence[bytes], live: Sequence[IndicatorState], now: int
    ) -> dict[str, Any]:
        """What a matching verdict adds (DESIGN §15)."""
        out, conf = self.fields_at(toks, live, now)
        out["confidence"] = conf.at(now)
        return out

    def fields_at(
        self, toks: Sequence[bytes], live: Sequence[IndicatorState], now: int
    ) -> tuple[dict[str, Any], Confidence]:
        """:meth:`fields` but the confidence, which depends on the time of asking; and
        what the confidence is computed from."""
        seen: set[bytes] = set()
        disputed: set[bytes] = set()
        latest = max(s.last_ts for s in live)
        for t in toks:
            for g in self.signals.get(t, ()):
                if not g.live(now) or g.author in self.dropped:
                    continue
                if g.what == "seen":
                    seen.add(g.author)
                    latest = max(latest, g.ts)
                else:
                    disputed.add(g.author)
        opened = self.open_appeals(toks, live)
        policy = self.policy
        half = max(policy.decay_days.get(s.cat, DEFAULT_SIGNAL_DAYS) for s in live) * DAY_MS
        return {
            "sightings": len(seen),
            "disputes": len(disputed),
            "under_appeal": bool(opened),
            "appeal_overdue": any(now > o.deadline for o in opened),
        }, Confidence(
            severity=max(s.sev for s in live),
            reporters=len({s.author for s in live}),
            sightings=len(seen),
            disputes=len(disputed),
            latest=latest,
            half_life_ms=half,
        )

    def changes_at(self, toks: Sequence[bytes], live: Sequence[IndicatorState], now: int) -> int:
        """The first time after ``now`` at which the verdict on ``toks`` (given its live
        reports ``live``) can change other than by its confidence: a report or a signal
        expires, or an appeal falls overdue. A change to the rows is another matter."""
        times = [s.exp for s in live]
        times += [g.exp for t in toks for g in self.signals.get(t, ()) if g.exp > now]
        times += [o.deadline + 1 for o in self.open_appeals(toks, live) if o.deadline >= now]
        return min(times, default=NEVER)


#: a time after every other (``changes_at`` of a verdict nothing can change)
NEVER = 1 << 62


@dataclass(frozen=True, slots=True)
class Confidence:
    """What a verdict's confidence is computed from; :meth:`at` computes it."""

    severity: int
    reporters: int
    sightings: int
    disputes: int
    latest: int
    half_life_ms: int
    _parts: tuple[int, int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = decaying(
            severity=self.severity,
            reporters=self.reporters,
            sightings=self.sightings,
            disputes=self.disputes,
            half_life_ms=self.half_life_ms,
        )
        object.__setattr__(self, "_parts", parts)

    def at(self, now: int) -> int:
        """The confidence at ``now`` (contracts.confidence, its age-free part done once)."""
        return confidence_at(self._parts, now - self.latest)


def with_after_match(
    ctx: VerdictContext,
    kind: str,
    toks: Sequence[bytes],
    live: list[IndicatorState],
    now: int,
    base: Callable[[str, list[IndicatorState]], dict[str, Any]],
) -> dict[str, Any]:
    """The verdict of one item: ``base`` over the counted reports, plus DESIGN §15's fields."""
    counted = ctx.counted(toks, live, now)
    v = base(kind, counted)
    if v.get("match"):
        v.update(ctx.fields(toks, counted, now))
    return v


# -- the node's part -----------------------------------------------------------------------


class AfterMatch:
    """Sightings, disputes and appeals of one node (see the module docstring)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.store = host.store
        #: this node's own warning list, on top of the shipped one and the charter's
        self.local_list: WarningList | None = None

    # -- warning lists ----------------------------------------------------------------------

    def check_listed(self, policy: DataPolicy, kind: str, canon: str) -> None:
        """RequestRefused ``warning_listed`` if the canonical value is on the shipped
        list, the charter's additions or this node's own list."""
        listing = policy.warnings().listed(kind, canon)
        if listing is None and self.local_list is not None:
            listing = self.local_list.listed(kind, canon)
        if listing is not None:
            raise RequestRefused("warning_listed", listing.message(kind))

    # -- verdicts ------------------------------------------------------------------------------

    def context(self, positives: Sequence[bytes], chain: CharterChain) -> VerdictContext:
        store = self.store
        appeals = store.appeals_many(positives) if positives else {}
        ids = {a.id for rows in appeals.values() for a in rows}
        return VerdictContext(
            chain.current.policy,
            self.host._dropped_authors(chain),
            store.signals_many(positives) if positives else {},
            appeals,
            store.decisions_many(ids) if ids else {},
        )

    def verdict(
        self,
        ctx: VerdictContext,
        kind: str,
        toks: Sequence[bytes],
        live: list[IndicatorState],
        now: int,
        base: Callable[[str, list[IndicatorState]], dict[str, Any]],
    ) -> dict[str, Any]:
        """The verdict of one item: ``base`` over the counted reports, plus DESIGN §15's fields."""
        return with_after_match(ctx, kind, toks, live, now, base)

    # -- sightings and disputes ----------------------------------------------------------------

    def sightings(self, items: Sequence[Any], now: int) -> ReportResult:
        return self._signal(items, now, "seen")

    def disputes(self, items: Sequence[Any], now: int) -> ReportResult:
        return self._signal(items, now, "dispute")

    def _signal(self, items: Sequence[Any], now: int, what: str) -> ReportResult:
        host = self.host
        chain, feeds = host._ready_to_publish()
        policy = chain.current.policy
        check_batch(items, policy.max_ops, "a sighting" if what == "seen" else "a dispute")
        longest = policy.max_signal_ms() // DAY_MS
        errors: list[dict[str, Any]] = []
        ops: list[Op] = []
        for i, item in enumerate(items):
            try:
                kind, canon = self._item(
                    item, DISPUTE_FIELDS if what == "dispute" else SIGNAL_FIELDS
                )
                why = None
                if what == "dispute":
                    why = item.get("reason")
                    if why not in DISPUTE_REASONS:
                        raise RequestRefused(
                            "bad_reason", "reason must be one of " + ", ".join(DISPUTE_REASONS)
                        )
                ttl = item.get("ttl_days", min(DEFAULT_SIGNAL_DAYS, longest))
                if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= longest:
                    raise RequestRefused(
                        "bad_ttl", f"ttl_days must be an integer from 1 to {longest}"
                    )
                exp = now + ttl * DAY_MS
                toks = self._reported_by_others(kind, canon, now, chain)
                if not toks:
                    raise RequestRefused(
                        "not_listed", "no other member has a live report of this value"
                    )
                for tok, ep in toks:
                    if what == "seen":
                        ops.append(SeenOp(tok, kind, ep, exp))
                    else:
                        ops.append(DisputeOp(tok, kind, ep, exp, str(why)))
            except (InvalidValue, PolicyViolation, RequestRefused) as e:
                errors.append({"index": i, "code": e.reason, "message": e.message})
        if errors:
            raise _invalid_items(errors)
        entry = self._publish(feeds, ops, now, what, tokens=_tokens(ops))
        log.info("published entry seq=%d with %d %s op(s)", entry.seq, len(ops), what)
        return ReportResult(len(items), entry)

    def retract_ops(self, kind: str, canon: str, of: str, reason: str, now: int) -> list[RetractOp]:
        """Retractions of this member's own live sightings, disputes or open appeals of a
        value (``of``), for :meth:`Node.retract`; RequestRefused ``not_reported`` if none."""
        me = self.host.key.id
        ops = []
        for ep in self.host.live_epochs(now):
            tok = self.host.epoch_keys.tokenizer(ep).token(kind, canon)
            if of == "appeal":
                mine = [a for a in self.store.appeals(tok) if a.author == me and not a.withdrawn]
                if mine and any(a.ep == ep for a in mine):
                    ops.append(RetractOp(tok, kind, ep, reason, "appeal"))
            elif any(
                s.author == me and s.what == of and s.ep == ep and s.live(now)
                for s in self.store.signals(tok)
            ):
                ops.append(RetractOp(tok, kind, ep, reason, of))
        if not ops:
            raise RequestRefused("not_reported", f"this member has no live {of} of it")
        return ops

    # -- appeals: the appellant's side ---------------------------------------------------------

    def file_appeal(self, body: Any, now: int) -> dict[str, Any]:
        host = self.host
        chain, feeds = host._ready_to_publish()
        item = fields_of(body, APPEAL_FIELDS, "an appeal")
        for name in ("case_ref", "grounds"):
            if name not in item:
                raise RequestRefused("missing_field", f"{name} is required")
        case_ref, grounds = item["case_ref"], item["grounds"]
        if not isinstance(case_ref, str) or not 0 < len(case_ref) <= MAX_CASE_REF_CHARS:
            raise RequestRefused(
                "bad_case_ref", f"case_ref is text of 1 to {MAX_CASE_REF_CHARS} characters"
            )
        if not isinstance(grounds, str) or not 0 < len(grounds) <= MAX_GROUNDS_CHARS:
            raise RequestRefused(
                "bad_grounds", f"grounds is text of 1 to {MAX_GROUNDS_CHARS} characters"
            )
        kind, canon = self._item(item, APPEAL_FIELDS)
        toks = self._reported_by_others(kind, canon, now, chain)
        if not toks:
            raise RequestRefused("not_listed", "no other member has a live report of this value")
        me = host.key.id
        for tok, _ in toks:
            for a in self.store.appeals(tok):
                if a.author == me and not a.withdrawn and self._still_open(a, now, chain):
                    raise RequestRefused(
                        "already_appealed", f"appeal {a.id} on this value is still open"
                    )
        appeal_id = new_appeal_id(secrets.token_bytes(8))
        engine = host.engine
        assert engine is not None
        cases = [
            make_case(
                host.key,
                appeal_id=appeal_id,
                tok=tok,
                kind=kind,
                ep=ep,
                ts=now,
                key=case_key(host.epoch_keys[ep], kind, canon),
                case_ref=case_ref,
                grounds=grounds,
            )
            for tok, ep in toks
        ]
        ops: list[Op] = [AppealOp(tok, kind, ep, appeal_id) for tok, ep in toks]
        entry = self._publish(
            feeds,
            ops,
            now,
            "appeal",
            tokens=_tokens(ops),
            appeal=appeal_id,
            ref=case_ref,
            after=lambda: self._after_filing(
                engine,
                cases,
                OutboundAppeal(
                    appeal_id, kind, now, canon, case_ref, grounds, tuple(ep for _, ep in toks)
                ),
            ),
        )
        log.info("filed appeal %s in entry seq=%d", appeal_id, entry.seq)
        policy = chain.current.policy
        return {
            "id": appeal_id,
            "kind": kind,
            "case_ref": case_ref,
            "filed": _time(now),
            "deadline": _time(now + policy.appeal_days * DAY_MS),
            "entry": {"seq": entry.seq, "hash": entry.hash.hex()},
        }

    def _after_filing(self, engine: GossipEngine, cases: list[bytes], out: OutboundAppeal) -> None:
        self.store.put_appeal_out(out)
        for raw in cases:
            engine.add_appeal_item(CASE, raw)

    def _still_open(self, a: AppealState, now: int, chain: CharterChain) -> bool:
        dropped = self.host._dropped_authors(chain)
        decided = {d.author for d in self.store.decisions(a.id)}
        return any(
            s.live(now)
            and s.author not in dropped
            and s.author != a.author
            and s.author not in decided
            for s in self.store.indicators(a.tok)
        )

    # -- appeals: the reporter's side ----------------------------------------------------------

    def on_item(self, kind: str, raw: bytes, now: int) -> None:
        """A sealed appeal item arrived by gossip: open it if it is meant for this node."""
        try:
            with self.store.atomic():
                if kind == CASE:
                    self._open_case(raw, now)
                elif kind == NOTE:
                    self._take_note(raw, now)
        except AppealItemRejected as e:
            log.warning("appeal item not taken: %s (%s)", e.reason, e.message)

    def open_pending(self, now: int) -> int:
        """Open every case on a value this member reports that is not opened yet (a case
        may come before the report, or the report after a restore); returns how many."""
        n = 0
        for raw in self.store.unopened_cases():
            try:
                n += self._open_case(raw, now)
            except AppealItemRejected as e:
                log.warning("appeal case not opened: %s (%s)", e.reason, e.message)
        return n

    def _open_case(self, raw: bytes, now: int) -> int:
        case = decode_case(raw)
        host = self.host
        if case.appellant == host.key.id or case.ep not in host.epoch_keys:
            return 0
        own = self.store.own_value(case.tok, case.ep)
        if own is None:
            return 0  # not a value this member reported: not for us
        if not any(
            a.author == case.appellant and a.tok == case.tok for a in self.store.appeal(case.id)
        ):
            # the appellant's signed appeal op (checked against the policy's quota like
            # every op) is not in its feed here (yet): a case without one is never
            # answered, so the quota bounds what reporters must handle; it waits
            return 0
        kind, canon = own
        case_ref, grounds = open_case(case, case_key(host.epoch_keys[case.ep], kind, canon))
        self.store.put_appeal_in(
            case.hash,
            InboundAppeal(
                case.id, case.appellant, case.tok, case.ep, kind, case.ts, now, case_ref, grounds
            ),
        )
        log.info("appeal %s received from %s", case.id, short_id(case.appellant))
        return 1

    def _take_note(self, raw: bytes, now: int) -> None:
        note = decode_note(raw)
        host = self.host
        if note.to != host.key.id:
            return
        found = self.store.appeals_out(note.id)
        if not found:
            return
        out = found[0]
        last: AppealItemRejected | None = None
        for ep in out.epochs:
            if ep not in host.epoch_keys:
                continue
            try:
                decision, text = open_note(
                    note, host.key, case_key(host.epoch_keys[ep], out.kind, out.value)
                )
            except AppealItemRejected as e:
                last = e
                continue
            if self.store.put_appeal_note(note.hash, note.id, now, decision, text):
                log.info("appeal %s: a reporter's note (%s) arrived", note.id, decision)
            return
        if last is not None:
            raise last

    def decide(self, appeal_id: str, body: Any, now: int) -> dict[str, Any]:
        host = self.host
        _, feeds = host._ready_to_publish()
        if not is_appeal_id(appeal_id):
            raise RequestRefused("unknown_appeal", "an appeal id is 16 hex digits")
        item = fields_of(body, DECISION_FIELDS, "a decision")
        decision = item.get("decision")
        if decision not in APPEAL_DECISIONS:
            raise RequestRefused("bad_decision", "decision is upheld or rejected")
        note = item.get("note", "")
        if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
            raise RequestRefused("bad_note", f"note is text of at most {MAX_NOTE_CHARS} characters")
        self.open_pending(now)
        cases = self.store.appeals_in(appeal_id)
        if not cases:
            raise RequestRefused("unknown_appeal", f"no appeal {appeal_id} reached this member")
        me = host.key.id
        if any(d.author == me for d in self.store.decisions(appeal_id)):
            raise RequestRefused("already_decided", f"this member already decided {appeal_id}")
        case = cases[0]
        own = self.store.own_value(case.tok, case.ep)
        assert own is not None  # a case is opened only with this member's own value
        kind, canon = own
        ops: list[Op] = []
        if decision == "upheld":
            for ep in host.live_epochs(now):
                tok = host.epoch_keys.tokenizer(ep).token(kind, canon)
                if any(s.author == me and s.live(now) for s in self.store.indicators(tok)):
                    ops.append(RetractOp(tok, kind, ep, "appeal_upheld"))
        retracted = len(ops)
        ops.append(AppealDecidedOp(appeal_id, str(decision)))
        engine = host.engine
        assert engine is not None
        raw_note = make_note(
            appeal_id=appeal_id,
            to=case.appellant,
            ts=now,
            decision=str(decision),
            note=note,
            key=case_key(host.epoch_keys[case.ep], kind, canon),
        )
        entry = self._publish(
            feeds,
            ops,
            now,
            "appeal_decision",
            tokens=_tokens(ops),
            appeal=appeal_id,
            decision=decision,
            after=lambda: engine.add_appeal_item(NOTE, raw_note),
        )
        log.info("decided appeal %s: %s (entry seq=%d)", appeal_id, decision, entry.seq)
        return {
            "id": appeal_id,
            "decision": decision,
            "retracted": retracted,
            "entry": {"seq": entry.seq, "hash": entry.hash.hex()},
        }

    # -- listing -------------------------------------------------------------------------------

    def appeals(self, now: int) -> dict[str, Any]:
        """Inbound appeals (cases this member opened as a reporter) and outbound ones
        (filed here). Nothing here names a reporter."""
        host = self.host
        chain = host.chain
        if chain is None:
            raise NotReady("no charter installed on this node (riskmesh charter install)")
        policy = chain.current.policy
        span = policy.appeal_days * DAY_MS
        self.open_pending(now)
        me = host.key.id
        names = {m.id: m.name for m in chain.current.members}
        inbound: dict[str, dict[str, Any]] = {}
        for c in self.store.appeals_in():
            if c.id in inbound:
                continue
            states = [a for a in self.store.appeal(c.id) if a.author == c.appellant]
            mine = {d.author: d for d in self.store.decisions(c.id)}.get(me)
            reported = [s for s in self.store.indicators(c.tok) if s.author == me]
            first = min((s.first_ts for s in reported), default=c.filed)
            deadline = max(c.filed, first) + span
            withdrawn = bool(states) and all(a.withdrawn for a in states)
            status = mine.decision if mine is not None else "withdrawn" if withdrawn else "open"
            inbound[c.id] = {
                "id": c.id,
                "kind": c.kind,
                "appellant": names.get(c.appellant, short_id(c.appellant)),
                "case_ref": c.case_ref,
                "grounds": c.grounds,
                "filed": _time(c.filed),
                "deadline": _time(deadline),
                "status": status,
                "overdue": status == "open" and now > deadline,
                **({"decided": _time(mine.ts)} if mine is not None else {}),
            }
        outbound = []
        dropped = host._dropped_authors(chain)
        for o in self.store.appeals_out():
            states = [a for a in self.store.appeal(o.id) if a.author == me]
            withdrawn = bool(states) and all(a.withdrawn for a in states)
            decisions = self.store.decisions(o.id)
            decided = {d.author for d in decisions}
            live_reporters = {
                s.author
                for a in states
                for s in self.store.indicators(a.tok)
                if s.live(now) and s.author not in dropped and s.author != me
            }
            pending = len(live_reporters - decided)
            outbound.append(
                {
                    "id": o.id,
                    "kind": o.kind,
                    "case_ref": o.case_ref,
                    "filed": _time(o.filed),
                    "deadline": _time(o.filed + span),
                    "status": "withdrawn" if withdrawn else "open" if pending else "decided",
                    "pending": pending,
                    "upheld": sum(1 for d in decisions if d.decision == "upheld"),
                    "rejected": sum(1 for d in decisions if d.decision == "rejected"),
                    "notes": [
                        {"received": _time(t), "decision": d, "note": n}
                        for t, d, n in self.store.appeal_notes(o.id)
                    ],
                }
            )
        return {"inbound": list(inbound.values()), "outbound": outbound}

    # -- helpers -------------------------------------------------------------------------------

    def _item(self, item: Any, fields: frozenset[str]) -> tuple[str, str]:
        if not isinstance(item, Mapping):
            raise RequestRefused("bad_item", "an item is an object")
        check_fields(item, fields)
        kind, value = item.get("kind"), item.get("value")
        if kind is None:
            raise RequestRefused("missing_field", "kind is required")
        if value is None:
            raise RequestRefused("missing_field", "value is required")
        if not isinstance(kind, str) or kind not in KINDS:
            raise RequestRefused(
                "unknown_kind", "unknown kind; expected one of " + ", ".join(sorted(KINDS))
            )
        if not isinstance(value, str):
            raise RequestRefused("bad_value", "value must be a string")
        return kind, canonical(kind, value, region=self.host.region)

    def _reported_by_others(
        self, kind: str, canon: str, now: int, chain: CharterChain
    ) -> list[tuple[bytes, int]]:
        """(token, epoch) of the value for each live epoch in which another member has a
        live report that verdicts count."""
        host = self.host
        me = host.key.id
        dropped = host._dropped_authors(chain)
        out = []
        for ep in host.live_epochs(now):
            tok = host.epoch_keys.tokenizer(ep).token(kind, canon)
            if any(
                s.live(now) and s.author != me and s.author not in dropped
                for s in self.store.indicators(tok)
            ):
                out.append((tok, ep))
        return out

    def _publish(
        self,
        feeds: Feeds,
        ops: list[Op],
        now: int,
        action: str,
        *,
        after: Callable[[], None] | None = None,
        **fields: Any,
    ) -> Entry:
        """Sign ``ops`` into this member's feed, durably, with the audit row and whatever
        else belongs to the same unit of work (``after``)."""
        host = self.host
        with self.store.atomic(durable=True):
            entry = feeds.publish(host.key, ops, now)
            if after is not None:
                after()
            self.store.audit(
                now, current_actor(), action, detail(seq=entry.seq, hash=entry.hash, **fields)
            )
        host._wake()
        return entry


def read_local_list(config: Config) -> WarningList | None:
    """This node's own warning list (setting ``node.warning_list``), or None."""
    name = config["node.warning_list"]
    if not name:
        return None
    path = Path(name)
    path = path if path.is_absolute() else config.home / path
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"node.warning_list: cannot read {path}: {e}") from None
    if not isinstance(entries, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in entries.values()
    ):
        raise ConfigError("node.warning_list: a JSON object of kinds to lists of entries")
    try:
        check_additions(entries)
        return WarningList.from_entries(entries, "local")
    except PolicyViolation as e:
        raise ConfigError(f"node.warning_list: {e.message}") from None


def _tokref(tok: bytes, ep: int) -> str:
    return f"{tok.hex()}/{ep}"


def _tokens(ops: Iterable[Op]) -> list[str]:
    return [_tokref(op.tok, op.ep) for op in ops if not isinstance(op, AppealDecidedOp)]


def _time(ms: int) -> str:
    """RFC 3339 UTC, as :func:`node.core.rfc3339` writes it."""
    return (
        dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _invalid_items(errors: list[dict[str, Any]]) -> RequestRefused:
    return RequestRefused(
        "invalid_items", f"{len(errors)} item(s) refused; nothing was accepted", errors
    )
