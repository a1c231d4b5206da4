"""The consortium charter and the rule that changes it (DESIGN §7).

A charter version names the members (id, name, endpoint, roles, status), the
quorum rule, the key epochs and the data policy. :func:`check_genesis` decides
version 1; :func:`check_successor` decides whether version n+1 may follow
version n, given the distinct keys that validly signed it (signature checking
itself is the protocol's job; this module only counts).

Acceptance rule for n+1:

* ``prev`` is the hash of version n and ``version`` is n+1 (no skipping);
* the consortium name does not change and ``ts`` does not go back;
* it is signed by a quorum of n's active admins (distinct keys);
* where the set of active admins changes, also by a quorum of n+1's admins.

``quorum`` is ``"majority"`` (more than half of the admins) or an integer k
with 1 <= k <= number of admins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from contracts.errors import CharterRejected, DecodeError
from contracts.policy import DataPolicy, _expect_map

__all__ = [
    "ROLES",
    "STATUSES",
    "Charter",
    "EpochInfo",
    "Member",
    "check_genesis",
    "check_successor",
    "quorum_size",
]

ROLES = ("admin", "publisher", "reader")
STATUSES = ("active", "suspended", "revoked")
MAX_NAME_CHARS = 128
MAX_ENDPOINT_CHARS = 512


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    id: bytes
    name: str
    endpoint: str
    roles: frozenset[str] = frozenset({"publisher", "reader"})
    status: str = "active"
    #: for a revoked member: its feed head as the proposing admin saw it;
    #: its entries past this seq are refused everywhere.
    until_seq: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, bytes) or len(self.id) != 32:
            raise DecodeError("member id must be 32 bytes")
        if not isinstance(self.name, str) or not 0 < len(self.name) <= MAX_NAME_CHARS:
            raise DecodeError(f"member name must be 1..{MAX_NAME_CHARS} characters")
        if not isinstance(self.endpoint, str) or len(self.endpoint) > MAX_ENDPOINT_CHARS:
            raise DecodeError("member endpoint must be a string")
        if not self.roles <= set(ROLES):
            raise DecodeError(f"member roles must be among {', '.join(ROLES)}")
        if self.status not in STATUSES:
            raise DecodeError(f"member status must be one of {', '.join(STATUSES)}")
        if self.until_seq is not None and (
            self.status != "revoked" or not isinstance(self.until_seq, int) or self.until_seq < 0
        ):
            raise DecodeError("until_seq is a non-negative integer, only for a revoked member")

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def is_admin(self) -> bool:
        return self.active and "admin" in self.roles

    def to_map(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "roles": sorted(self.roles),
            "status": self.status,
        }
        if self.until_seq is not None:
            m["until_seq"] = self.until_seq
        return m

    @classmethod
    def from_map(cls, m: object) -> Member:
        if isinstance(m, dict) and "until_seq" in m:
            d = _expect_map(m, "member", {"id", "name", "endpoint", "roles", "status", "until_seq"})
        else:
            d = _expect_map(m, "member", {"id", "name", "endpoint", "roles", "status"})
        roles = d["roles"]
        if (
            not isinstance(roles, list)
            or not all(isinstance(r, str) for r in roles)
            or len(set(roles)) != len(roles)
        ):
            raise DecodeError("member roles must be a list of distinct strings")
        return cls(
            id=d["id"],
            name=d["name"],
            endpoint=d["endpoint"],
            roles=frozenset(roles),
            status=d["status"],
            until_seq=d.get("until_seq"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochInfo:
    ep: int
    since: int  # ms

    def to_map(self) -> dict[str, Any]:
        return {"ep": self.ep, "since": self.since}


@dataclass(frozen=True, slots=True, kw_only=True)
class Charter:
    consortium: str
    version: int
    prev: bytes | None
    ts: int
    members: tuple[Member, ...]
    quorum: str | int = "majority"
    epochs: tuple[EpochInfo, ...] = (EpochInfo(ep=1, since=0),)
    policy: DataPolicy = field(default_factory=DataPolicy)

    def __post_init__(self) -> None:
        if not isinstance(self.consortium, str) or not 0 < len(self.consortium) <= MAX_NAME_CHARS:
            raise DecodeError("charter consortium name must be 1..128 characters")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise DecodeError("charter version must be a positive integer")
        if (self.version == 1) != (self.prev is None):
            raise DecodeError("charter prev is null exactly for version 1")
        if self.prev is not None and (not isinstance(self.prev, bytes) or len(self.prev) != 32):
            raise DecodeError("charter prev must be a 32-byte hash")
        if not isinstance(self.ts, int) or isinstance(self.ts, bool) or self.ts < 0:
            raise DecodeError("charter ts must be a non-negative integer (ms)")
        ids = [m.id for m in self.members]
        if len(set(ids)) != len(ids):
            raise DecodeError("charter lists a member twice")
        if not self.admins():
            raise DecodeError("charter has no active admin")
        if self.quorum != "majority" and (
            not isinstance(self.quorum, int)
            or isinstance(self.quorum, bool)
            or not 1 <= self.quorum <= len(self.admins())
        ):
            raise DecodeError("charter quorum must be 'majority' or an integer 1..number of admins")
        eps = [e.ep for e in self.epochs]
        if not eps or eps != sorted(set(eps)) or eps[0] < 1:
            raise DecodeError("charter epochs must be a non-empty increasing list of epochs >= 1")

    # -- questions ---------------------------------------------------------

    def admins(self) -> frozenset[bytes]:
        return frozenset(m.id for m in self.members if m.is_admin)

    def member(self, member_id: bytes) -> Member | None:
        for m in self.members:
            if m.id == member_id:
                return m
        return None

    def is_active(self, member_id: bytes) -> bool:
        m = self.member(member_id)
        return m is not None and m.active

    def can_publish(self, member_id: bytes) -> bool:
        m = self.member(member_id)
        return m is not None and m.active and "publisher" in m.roles

    def active_members(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.active)

    def epoch_ids(self) -> frozenset[int]:
        return frozenset(e.ep for e in self.epochs)

    def current_epoch(self) -> int:
        return self.epochs[-1].ep

    def quorum_size(self) -> int:
        return quorum_size(self.quorum, len(self.admins()))

    def evolve(self, **changes: Any) -> Charter:
        """The next version with ``changes`` applied (``prev`` must be given)."""
        return replace(self, version=self.version + 1, **changes)

    # -- encoding ----------------------------------------------------------

    def to_map(self) -> dict[str, Any]:
        return {
            "v": 1,
            "consortium": self.consortium,
            "version": self.version,
            "prev": self.prev,
            "ts": self.ts,
            "members": [m.to_map() for m in self.members],
            "quorum": self.quorum,
            "epochs": [e.to_map() for e in self.epochs],
            "policy": self.policy.to_map(),
        }

    @classmethod
    def from_map(cls, m: object) -> Charter:
        keys = {"v", "consortium", "version", "prev", "ts", "members", "quorum", "epochs", "policy"}
        d = _expect_map(m, "charter", keys)
        if d["v"] != 1:
            raise DecodeError(f"unsupported charter format v={d['v']!r}")
        if not isinstance(d["members"], list) or not isinstance(d["epochs"], list):
            raise DecodeError("charter members and epochs must be lists")
        epochs = []
        for e in d["epochs"]:
            ed = _expect_map(e, "charter epoch", {"ep", "since"})
            if not all(isinstance(ed[k], int) and not isinstance(ed[k], bool) for k in ed):
                raise DecodeError("charter epoch fields must be integers")
            epochs.append(EpochInfo(ep=ed["ep"], since=ed["since"]))
        return cls(
            consortium=d["consortium"],
            version=d["version"],
            prev=d["prev"],
            ts=d["ts"],
            members=tuple(Member.from_map(x) for x in d["members"]),
            quorum=d["quorum"],
            epochs=tuple(epochs),
            policy=DataPolicy.from_map(d["policy"]),
        )


def quorum_size(quorum: str | int, n_admins: int) -> int:
    """Signatures needed out of ``n_admins`` admins: majority is more than half."""
    if quorum == "majority":
        return n_admins // 2 + 1
    assert isinstance(quorum, int)
    return quorum


def check_genesis(charter: Charter, signers: Iterable[bytes]) -> None:
    """Version 1 must be signed by every one of its admins."""
    if charter.version != 1 or charter.prev is not None:
        raise CharterRejected("not_genesis", "a genesis charter is version 1 with no prev")
    missing = charter.admins() - set(signers)
    if missing:
        raise CharterRejected(
            "genesis_unsigned",
            f"genesis must be signed by all {len(charter.admins())} admins; {len(missing)} missing",
        )


def check_successor(
    prev: Charter, prev_hash: bytes, new: Charter, signers: Iterable[bytes]
) -> None:
    """Raise CharterRejected unless ``new`` may follow ``prev`` with these signers."""
    if new.version != prev.version + 1:
        raise CharterRejected(
            "wrong_version",
            f"charter version {new.version} cannot follow version {prev.version}",
        )
    if new.prev != prev_hash:
        raise CharterRejected(
            "wrong_prev",
            f"charter version {new.version} does not name version {prev.version}'s hash",
        )
    if new.consortium != prev.consortium:
        raise CharterRejected("consortium_changed", "the consortium name cannot change")
    if new.ts < prev.ts:
        raise CharterRejected(
            "ts_backwards", f"charter version {new.version} is dated before its predecessor"
        )
    signed = set(signers)
    old_admins = prev.admins()
    have = len(signed & old_admins)
    need = prev.quorum_size()
    if have < need:
        raise CharterRejected(
            "quorum_not_met",
            f"charter version {new.version} needs {need} of version {prev.version}'s "
            f"{len(old_admins)} admins; has {have}",
        )
    new_admins = new.admins()
    if new_admins != old_admins:
        have_new = len(signed & new_admins)
        need_new = new.quorum_size()
        if have_new < need_new:
            raise CharterRejected(
                "new_quorum_not_met",
                f"the admin set changes, so version {new.version} also needs {need_new} of its own "
                f"{len(new_admins)} admins; has {have_new}",
            )
