"""A small consortium built from seeded keys, for protocol tests."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from contracts.charter import Charter, Member
from contracts.policy import DAY_MS
from protocol.charter_chain import CharterChain, sign_charter
from protocol.entries import AddOp, Entry, Op, RetractOp, build_entry
from protocol.feeds import Feeds
from protocol.governance import genesis, member
from protocol.keys import MemberKey
from protocol.store import MemoryStore
from protocol.tokens import EpochKeys

T0 = 1_700_000_000_000


@dataclass
class World:
    """Members A (admin), B (admin), C (admin), D (publisher, not admin), X (outsider)."""

    rng: random.Random
    keys: dict[str, MemberKey]
    genesis: Charter
    genesis_raw: bytes
    epoch_keys: EpochKeys
    store: MemoryStore = field(default_factory=MemoryStore)

    def __post_init__(self) -> None:
        self.chain = CharterChain(self.genesis_raw)
        self.feeds = Feeds(self.store, self.chain)

    def fresh_feeds(self) -> Feeds:
        return Feeds(MemoryStore(), CharterChain(self.genesis_raw))

    def tok(self, value: str, kind: str = "phone", ep: int = 1) -> bytes:
        return self.epoch_keys.tokenizer(ep).token(kind, value)

    def add(
        self,
        value: str = "+8613800138000",
        *,
        kind: str = "phone",
        cat: str = "telecom_fraud",
        sev: int = 3,
        ttl_days: int = 30,
        ts: int = T0,
        ep: int = 1,
    ) -> AddOp:
        return AddOp(self.tok(value, kind, ep), kind, ep, cat, sev, ts + ttl_days * DAY_MS)

    def retract(
        self,
        value: str = "+8613800138000",
        *,
        kind: str = "phone",
        why: str = "false_positive",
        ep: int = 1,
    ) -> RetractOp:
        return RetractOp(self.tok(value, kind, ep), kind, ep, why)

    def entry(
        self,
        who: str,
        seq: int,
        prev: bytes | None,
        ops: Sequence[Op],
        *,
        ts: int = T0,
        cv: int = 1,
    ) -> Entry:
        return build_entry(self.keys[who], seq=seq, prev=prev, ts=ts, cv=cv, ops=list(ops))

    def chain_of(
        self, who: str, n: int, *, ts: int = T0, start: int = 1, prev: bytes | None = None
    ) -> list[Entry]:
        out = []
        for i in range(start, start + n):
            e = self.entry(who, i, prev, [self.add(f"+86138001{i:05d}", ts=ts)], ts=ts)
            out.append(e)
            prev = e.hash
        return out

    def member(
        self,
        who: str,
        roles: Sequence[str] = ("admin", "publisher", "reader"),
        status: str = "active",
        until_seq: int | None = None,
    ) -> Member:
        return Member(
            id=self.keys[who].id,
            name=who,
            endpoint=f"http://{who.lower()}.test",
            roles=frozenset(roles),
            status=status,
            until_seq=until_seq,
        )


def make_world(seed: int = 1) -> World:
    """Members A, B, C (admins) and D (publisher, not admin); X has a key but is outside."""
    return make_consortium("ABCD", admins="ABC", seed=seed)


def make_consortium(
    names: Sequence[str],
    *,
    admins: Sequence[str] | None = None,
    outsiders: Sequence[str] = ("X",),
    seed: int = 1,
) -> World:
    """A world with the members ``names``, founded by :func:`protocol.governance.genesis`.

    ``admins`` (default: the first three names) are admins, publishers and
    readers; the others publishers and readers; ``outsiders`` have keys but are
    not in the charter.
    """
    rng = random.Random(seed)
    keys = {n: MemberKey.from_seed(rng.randbytes(32)) for n in [*names, *outsiders]}
    admin_set = set(names[:3] if admins is None else admins)
    members = [
        member(keys[n].id, n, f"http://{n.lower()}.test", admin=n in admin_set) for n in names
    ]
    charter = genesis("test", members, T0 - DAY_MS)
    raw = sign_charter(charter, [keys[n] for n in names if n in admin_set])
    return World(
        rng=rng,
        keys=keys,
        genesis=charter,
        genesis_raw=raw,
        epoch_keys=EpochKeys({1: rng.randbytes(32), 2: rng.randbytes(32)}),
    )


def next_charter(
    w: World, signers: str, *, base: Charter | None = None, ts: int | None = None, **changes: object
) -> tuple[Charter, bytes]:
    """The charter after ``base`` (default: the chain's current), signed by ``signers``."""
    from protocol.codec import obj_hash

    base = base or w.chain.current
    prev_hash = w.chain.version_info(base.version).hash  # type: ignore[union-attr]
    new = base.evolve(prev=prev_hash, ts=base.ts + DAY_MS if ts is None else ts, **changes)
    raw = sign_charter(new, [w.keys[s] for s in signers])
    assert obj_hash(raw) != prev_hash
    return new, raw
