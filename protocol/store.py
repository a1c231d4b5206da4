"""The storage interface the feed logic and the gossip engine run over.

:class:`FeedStore` is what :mod:`protocol.feeds` needs from storage; the
simulator uses :class:`MemoryStore`, the node implements the same protocol in
SQLite. ``append`` is one unit of work: the entry, the new head and the
indicator state change together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from protocol.entries import AddOp, Entry
from protocol.forks import ForkProof
from protocol.grants import Grant
from protocol.keys import MemberId

__all__ = ["FeedStore", "Head", "IndicatorState", "MemoryStore"]


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
