"""The simulated consortium: seeded member keys, the genesis charter, later versions.

One genesis charter is built and signed for the whole run (every founding
admin signs it, as ``riskmesh charter genesis`` and ``charter sign`` do) and
decoded and verified once, into a prototype :class:`~protocol.charter_chain.CharterChain`.

**The shortcut.** Each node needs a chain of its own (governance changes reach
nodes at different times), but a thousand nodes decoding and verifying a
thousand-member genesis would spend seconds and keep a thousand copies of the
same member list. :meth:`Consortium.fresh_chain` instead deep-copies the
prototype chain while sharing its :class:`~protocol.charter_chain.CharterVersion`
objects (``copy.deepcopy`` with those objects pre-seeded in the memo): each node
gets its own version list and revocation map, so appending a version at one
node changes no other, and the shared versions are frozen dataclasses that no
code mutates. It is safe because the prototype verified exactly the bytes every
node would verify (the trust anchor is the same hash); later versions are
appended by each node's own chain through the real checks
(:meth:`CharterChain.append`), signature by signature.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

from contracts.charter import Charter, EpochInfo, Member
from contracts.policy import DAY_MS, DataPolicy, GossipSettings
from protocol.charter_chain import CharterChain, sign_charter
from protocol.keys import MemberId, MemberKey
from protocol.tokens import EpochKeys

__all__ = ["T0", "Consortium"]

#: Virtual time 0 of every run, as a wall-clock millisecond timestamp.
T0 = 1_700_000_000_000


def member_name(i: int) -> str:
    return f"m{i:04d}"


@dataclass
class Consortium:
    keys: list[MemberKey]  # founders first, then members onboarded later
    founders: int
    admins: int
    genesis: Charter
    genesis_raw: bytes
    epoch_keys: EpochKeys
    prototype: CharterChain

    @classmethod
    def build(
        cls,
        *,
        seed: int,
        founders: int,
        admins: int,
        later: int,
        gossip: GossipSettings,
    ) -> Consortium:
        rng = random.Random(f"{seed}:keys")
        keys = [MemberKey.from_seed(rng.randbytes(32)) for _ in range(founders + later)]
        members = tuple(
            Member(
                id=keys[i].id,
                name=member_name(i),
                endpoint=f"sim://{member_name(i)}",
                roles=frozenset(
                    {"admin", "publisher", "reader"} if i < admins else {"publisher", "reader"}
                ),
            )
            for i in range(founders)
        )
        genesis = Charter(
            consortium="sim",
            version=1,
            prev=None,
            ts=T0 - DAY_MS,
            members=members,
            epochs=(EpochInfo(ep=1, since=T0 - DAY_MS),),
            policy=DataPolicy(gossip=gossip),
        )
        raw = sign_charter(genesis, keys[:admins])
        return cls(
            keys=keys,
            founders=founders,
            admins=admins,
            genesis=genesis,
            genesis_raw=raw,
            epoch_keys=EpochKeys({1: rng.randbytes(32)}),
            prototype=CharterChain(raw),
        )

    def fresh_chain(self) -> CharterChain:
        """A chain holding the genesis only, of its own (see the module docstring)."""
        memo = {id(v): v for v in self.prototype.versions()}
        return copy.deepcopy(self.prototype, memo)

    def member(self, i: int, roles: frozenset[str] = frozenset({"publisher", "reader"})) -> Member:
        return Member(
            id=self.keys[i].id, name=member_name(i), endpoint=f"sim://{member_name(i)}", roles=roles
        )

    def next_version(
        self, chain: CharterChain, members: tuple[Member, ...], ts: int
    ) -> tuple[Charter, bytes]:
        """The version after ``chain``'s current with ``members``, signed by a quorum of admins.

        The admins sign out of band here (the proposal flow is governance's job);
        the quorum rule itself is checked by every node's chain when the version
        arrives.
        """
        cur = chain.current
        new = cur.evolve(prev=chain.current_version.hash, ts=max(ts, cur.ts), members=members)
        by_id: dict[bytes, MemberKey] = {k.id: k for k in self.keys}
        admins = sorted(cur.admins())
        signers = [by_id[a] for a in admins[: cur.quorum_size()]]
        new_admins = sorted(new.admins())
        if new.admins() != cur.admins():
            signers += [
                by_id[a] for a in new_admins[: new.quorum_size()] if by_id[a] not in signers
            ]
        return new, sign_charter(new, signers)

    def index_of(self) -> dict[MemberId, int]:
        return {MemberId(k.id): i for i, k in enumerate(self.keys)}
