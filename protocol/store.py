"""The storage interface the feed logic and the gossip engine run over.

:class:`FeedStore` is what :mod:`protocol.feeds` needs from storage; the
simulator uses :class:`MemoryStore`, the node implements the same protocol in
SQLite. ``append`` is one unit of work: the entry, the new head and the
indicator state change together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple, Protocol, runtime_checkable

from protocol import codec
from protocol.entries import (
    AddOp,
    AppealDecidedOp,
    AppealOp,
    DisputeOp,
    Entry,
    RetractOp,
    SeenOp,
)
from protocol.forks import ForkProof
from protocol.grants import Grant
from protocol.keys import MemberId

__all__ = [
    "AppealState",
    "Decision",
    "FeedStore",
    "Head",
    "IndicatorState",
    "MemoryStore",
    "SignalState",
]


class Head(NamedTuple):
    seq: int
    hash: bytes
    ts: int
    cv: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IndicatorState:
    """One reporter's current word on one token under one epoch."""

    tok: bytes
    ep: int
    author: MemberId
    kind: str
    cat: str
    sev: int
    exp: int
    first_ts: int
    last_ts: int
    retracted: bool

    def live(self, now: int) -> bool:
        return not self.retracted and self.exp > now


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalState:
    """One member's current sighting (``seen``) or ``dispute`` of one token under one epoch."""

    tok: bytes
    ep: int
    author: MemberId
    what: str  # "seen" or "dispute"
    why: str | None  # a dispute's reason
    exp: int
    ts: int  # the entry that made it
    retracted: bool

    def live(self, now: int) -> bool:
        return not self.retracted and self.exp > now


@dataclass(frozen=True, slots=True, kw_only=True)
class AppealState:
    """An appeal op: member ``author`` appealed the reports of ``tok`` as case ``id``."""

    id: str
    tok: bytes
    ep: int
    author: MemberId
    kind: str
    ts: int
    withdrawn: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """A reporter's (latest) decision on an appeal."""

    id: str
    author: MemberId
    decision: str
    ts: int


@runtime_checkable
class FeedStore(Protocol):
    def head(self, log: MemberId) -> Head | None: ...
    def heads(self) -> dict[MemberId, Head]: ...
    def entry(self, log: MemberId, seq: int) -> bytes | None: ...
    def entries_after(self, log: MemberId, seq: int, limit: int) -> list[bytes]: ...
    def append(self, entry: Entry) -> None: ...
    def added(self, author: MemberId, tok: bytes, ep: int) -> bool: ...
    def indicators(self, tok: bytes) -> list[IndicatorState]: ...
    def hold(self, entry: Entry) -> None: ...
    def held(self, log: MemberId) -> list[Entry]: ...
    def held_count(self, log: MemberId) -> int: ...
    def unhold(self, entry: Entry) -> None: ...
    def held_logs(self) -> list[MemberId]: ...
    def is_frozen(self, log: MemberId) -> bool: ...
    def add_fork_proof(self, proof: ForkProof) -> bool: ...
    def fork_proofs(self) -> list[ForkProof]: ...
    def put_charter(self, version: int, raw: bytes) -> None: ...
    def charters(self) -> list[bytes]: ...
    def put_grant(self, grant: Grant) -> bool: ...
    def grants(self) -> list[bytes]: ...
    def put_proposal(self, pid: str, raw: bytes) -> None: ...
    def proposals(self) -> list[bytes]: ...
    # sightings, disputes and appeals (DESIGN §15)
    def signals(self, tok: bytes) -> list[SignalState]: ...
    def appeals(self, tok: bytes) -> list[AppealState]: ...
    def appeal(self, appeal_id: str) -> list[AppealState]: ...
    def decisions(self, appeal_id: str) -> list[Decision]: ...
    def signaled(self, author: MemberId, tok: bytes, ep: int, what: str) -> bool: ...
    def recent_signals(self, author: MemberId, what: str, since: int) -> int: ...
    # sealed appeal items: cases ("a") and decision notes ("n"), relayed to everyone
    def put_appeal_item(self, kind: str, appeal_id: str, raw: bytes) -> bool: ...
    def appeal_items(self) -> list[tuple[str, bytes]]: ...
    def appeal_item_count(self, kind: str, appeal_id: str) -> int: ...


class MemoryStore:
    """The storage interface in memory, for tests and the simulator."""

    def __init__(self) -> None:
        self._entries: dict[MemberId, list[bytes]] = {}
        self._heads: dict[MemberId, Head] = {}
        self._state: dict[tuple[bytes, int, MemberId], IndicatorState] = {}
        self._by_tok: dict[bytes, list[tuple[bytes, int, MemberId]]] = {}
        self._held: dict[MemberId, dict[bytes, Entry]] = {}
        self._forks: dict[MemberId, ForkProof] = {}
        self._charters: dict[int, bytes] = {}
        self._grants: dict[bytes, bytes] = {}
        self._proposals: dict[str, bytes] = {}
        self._signals: dict[tuple[bytes, int, MemberId, str], SignalState] = {}
        self._signals_by_tok: dict[bytes, list[tuple[bytes, int, MemberId, str]]] = {}
        self._appeals: dict[tuple[str, bytes, int, MemberId], AppealState] = {}
        self._appeals_by_tok: dict[bytes, list[tuple[str, bytes, int, MemberId]]] = {}
        self._decisions: dict[str, dict[MemberId, Decision]] = {}
        self._appeal_items: dict[bytes, tuple[str, str, bytes]] = {}  # hash -> (kind, id, raw)

    # feeds
    def head(self, log: MemberId) -> Head | None:
        return self._heads.get(log)

    def heads(self) -> dict[MemberId, Head]:
        return dict(self._heads)

    def entry(self, log: MemberId, seq: int) -> bytes | None:
        feed = self._entries.get(log)
        if feed is None or not 1 <= seq <= len(feed):
            return None
        return feed[seq - 1]

    def entries_after(self, log: MemberId, seq: int, limit: int) -> list[bytes]:
        feed = self._entries.get(log, [])
        return feed[seq : seq + limit]

    def append(self, entry: Entry) -> None:
        feed = self._entries.setdefault(entry.log, [])
        if len(feed) + 1 != entry.seq:
            raise ValueError("append out of order")  # a bug in the caller, not bad input
        feed.append(entry.raw)
        self._heads[entry.log] = Head(entry.seq, entry.hash, entry.ts, entry.cv)
        for op in entry.ops:
            if not isinstance(op, AddOp) and not (isinstance(op, RetractOp) and op.of is None):
                self._after_match(entry, op)
                continue
            key = (op.tok, op.ep, entry.log)
            old = self._state.get(key)
            if isinstance(op, AddOp):
                if old is None:
                    self._by_tok.setdefault(op.tok, []).append(key)
                self._state[key] = IndicatorState(
                    tok=op.tok,
                    ep=op.ep,
                    author=entry.log,
                    kind=op.kind,
                    cat=op.cat,
                    sev=op.sev,
                    exp=op.exp,
                    first_ts=entry.ts
                    if old is None or old.retracted or old.exp <= entry.ts
                    else old.first_ts,
                    last_ts=entry.ts,
                    retracted=False,
                )
            elif old is not None:
                self._state[key] = IndicatorState(
                    tok=old.tok,
                    ep=old.ep,
                    author=old.author,
                    kind=old.kind,
                    cat=old.cat,
                    sev=old.sev,
                    exp=old.exp,
                    first_ts=old.first_ts,
                    last_ts=entry.ts,
                    retracted=True,
                )

    def _after_match(
        self, entry: Entry, op: SeenOp | DisputeOp | AppealOp | AppealDecidedOp | RetractOp
    ) -> None:
        """A sighting, dispute, appeal, decision, or the retraction of one of the first three."""
        log = entry.log
        if isinstance(op, SeenOp | DisputeOp):
            what = "seen" if isinstance(op, SeenOp) else "dispute"
            key = (op.tok, op.ep, log, what)
            if key not in self._signals:
                self._signals_by_tok.setdefault(op.tok, []).append(key)
            self._signals[key] = SignalState(
                tok=op.tok,
                ep=op.ep,
                author=log,
                what=what,
                why=op.why if isinstance(op, DisputeOp) else None,
                exp=op.exp,
                ts=entry.ts,
                retracted=False,
            )
        elif isinstance(op, AppealOp):
            # keyed by author too: what a node holds never depends on which feed came first
            akey = (op.id, op.tok, op.ep, log)
            if akey not in self._appeals:
                self._appeals_by_tok.setdefault(op.tok, []).append(akey)
            self._appeals[akey] = AppealState(
                id=op.id,
                tok=op.tok,
                ep=op.ep,
                author=log,
                kind=op.kind,
                ts=entry.ts,
                withdrawn=False,
            )
        elif isinstance(op, AppealDecidedOp):
            self._decisions.setdefault(op.id, {})[log] = Decision(
                id=op.id, author=log, decision=op.decision, ts=entry.ts
            )
        elif op.of == "appeal":
            for akey in self._appeals_by_tok.get(op.tok, ()):
                a = self._appeals[akey]
                if a.ep == op.ep and a.author == log:
                    self._appeals[akey] = replace(a, withdrawn=True)
        else:
            assert op.of is not None
            skey = (op.tok, op.ep, log, op.of)
            s = self._signals.get(skey)
            if s is not None:
                self._signals[skey] = replace(s, retracted=True)

    def signals(self, tok: bytes) -> list[SignalState]:
        return [self._signals[k] for k in self._signals_by_tok.get(tok, ())]

    def appeals(self, tok: bytes) -> list[AppealState]:
        return [self._appeals[k] for k in self._appeals_by_tok.get(tok, ())]

    def appeal(self, appeal_id: str) -> list[AppealState]:
        return [a for k, a in self._appeals.items() if k[0] == appeal_id]

    def decisions(self, appeal_id: str) -> list[Decision]:
        return list(self._decisions.get(appeal_id, {}).values())

    def signaled(self, author: MemberId, tok: bytes, ep: int, what: str) -> bool:
        if what == "appeal":
            return any(
                self._appeals[k].author == author and k[2] == ep
                for k in self._appeals_by_tok.get(tok, ())
            )
        return (tok, ep, author, what) in self._signals

    def recent_signals(self, author: MemberId, what: str, since: int) -> int:
        if what == "appeal":
            return sum(1 for a in self._appeals.values() if a.author == author and a.ts > since)
        return sum(
            1
            for s in self._signals.values()
            if s.author == author and s.what == what and s.ts > since
        )

    def put_appeal_item(self, kind: str, appeal_id: str, raw: bytes) -> bool:
        h = codec.obj_hash(raw)
        if h in self._appeal_items:
            return False
        self._appeal_items[h] = (kind, appeal_id, raw)
        return True

    def appeal_items(self) -> list[tuple[str, bytes]]:
        return [(k, raw) for k, _, raw in self._appeal_items.values()]

    def appeal_item_count(self, kind: str, appeal_id: str) -> int:
        return sum(1 for k, i, _ in self._appeal_items.values() if k == kind and i == appeal_id)

    def added(self, author: MemberId, tok: bytes, ep: int) -> bool:
        return (tok, ep, author) in self._state

    def indicators(self, tok: bytes) -> list[IndicatorState]:
        return [self._state[k] for k in self._by_tok.get(tok, ())]

    def all_indicators(self) -> Iterable[IndicatorState]:
        return self._state.values()

    # entries waiting for a gap or a charter version
    def hold(self, entry: Entry) -> None:
        self._held.setdefault(entry.log, {})[entry.hash] = entry

    def held(self, log: MemberId) -> list[Entry]:
        return sorted(self._held.get(log, {}).values(), key=lambda e: e.seq)

    def held_count(self, log: MemberId) -> int:
        return len(self._held.get(log, ()))

    def unhold(self, entry: Entry) -> None:
        held = self._held.get(entry.log)
        if held is not None:
            held.pop(entry.hash, None)
            if not held:
                del self._held[entry.log]

    def held_logs(self) -> list[MemberId]:
        return list(self._held)

    # forks
    def is_frozen(self, log: MemberId) -> bool:
        return log in self._forks

    def add_fork_proof(self, proof: ForkProof) -> bool:
        if proof.log in self._forks:
            return False
        self._forks[proof.log] = proof
        self._held.pop(proof.log, None)
        return True

    def fork_proofs(self) -> list[ForkProof]:
        return list(self._forks.values())

    # charter versions
    def put_charter(self, version: int, raw: bytes) -> None:
        self._charters[version] = raw

    def charters(self) -> list[bytes]:
        return [self._charters[v] for v in sorted(self._charters)]

    # key grants (sealed; relayed to everyone, opened only by the recipient)
    def put_grant(self, grant: Grant) -> bool:
        if grant.hash in self._grants:
            return False
        self._grants[grant.hash] = grant.raw
        return True

    def grants(self) -> list[bytes]:
        return list(self._grants.values())

    # charter proposals (the latest signature set of each)
    def put_proposal(self, pid: str, raw: bytes) -> None:
        self._proposals[pid] = raw

    def proposals(self) -> list[bytes]:
        return list(self._proposals.values())
