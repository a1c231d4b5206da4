"""The simulated consortium: seeded member keys and the genesis charter.

The genesis is drafted by :func:`protocol.governance.genesis` — the one genesis
builder the node's ``charter genesis`` uses — from the founders' member
entries (:func:`protocol.governance.member`), and signed by every founding
admin (as ``charter sign`` does). Later versions are not made here: they are
proposed, signed and gossiped through each admin node's engine
(:mod:`sim.governance`).

The genesis is decoded and verified once, into a prototype
:class:`~protocol.charter_chain.CharterChain`.

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
from dataclasses import dataclass, replace

from contracts.charter import Charter, Member
from contracts.policy import DAY_MS, DataPolicy, GossipSettings
from protocol import governance
from protocol.charter_chain import CharterChain, sign_charter
from protocol.keys import MemberKey
from protocol.tokens import EpochKeys
from sim.clock import T0

__all__ = ["T0", "Consortium", "member_name"]


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
        policy: DataPolicy | None = None,
    ) -> Consortium:
        """``policy``: the genesis charter's data policy (its gossip settings are
        replaced by ``gossip``); default ``DataPolicy()``."""
        rng = random.Random(f"{seed}:keys")
        keys = [MemberKey.from_seed(rng.randbytes(32)) for _ in range(founders + later)]
        members = [
            governance.member(
                keys[i].id, member_name(i), f"sim://{member_name(i)}", admin=i < admins
            )
            for i in range(founders)
        ]
        policy = DataPolicy(gossip=gossip) if policy is None else replace(policy, gossip=gossip)
        genesis = governance.genesis("sim", members, T0 - DAY_MS, policy=policy)
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
        memo: dict[int, object] = {id(v): v for v in self.prototype.versions()}
        return copy.deepcopy(self.prototype, memo)

    def member(self, i: int) -> Member:
        """The charter entry of member ``i`` (a newcomer joins without the admin role)."""
        return governance.member(self.keys[i].id, member_name(i), f"sim://{member_name(i)}")
