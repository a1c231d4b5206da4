"""Governance drafting: every charter change, written once, for the node and the simulator.

Pure functions over charter versions (no I/O, no clock, no randomness of their
own: the time is ``now`` and a new epoch's key is given by the caller, who
draws it from a CSPRNG). Each ``draft_*`` returns a :class:`Draft`: the next
charter version, dated as a proposal is (one day ahead, so that entries citing
the old version stay valid while admins sign), and the new epoch's key when
the change opens one. The node's administration and the simulator both call
them, so the simulator tests the rules the node runs:

* :func:`genesis` — version 1 with its founding members and epoch 1;
* :func:`draft_add_member` — a newcomer from its (checked) join request;
* :func:`draft_remove_member` — the member ``revoked`` at ``until_seq`` (its feed
  head as the proposer sees it) and, in the same version, a new key epoch so the
  removed member cannot make tokens that match new reports;
* :func:`draft_rotate_key` — a new key epoch;
* :func:`draft_policy` — a change to the data policy (a partial map, merged);
* :func:`plan_grants` — after a version is final, which members an admin must
  seal which epoch keys to (every live epoch to a newcomer, the new epoch to
  every remaining member);
* :func:`describe_changes` — what a version changes, in words.

Refusals are :class:`~contracts.errors.GovernanceError` with a stable ``reason``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.charter import Charter, EpochInfo, Member
from contracts.errors import DecodeError, GovernanceError, PolicyViolation
from contracts.policy import DAY_MS, DataPolicy
from protocol.charter_chain import CharterVersion
from protocol.keys import short_id
from protocol.tokens import EPOCH_KEY_BYTES

__all__ = [
    "EFFECTIVE_AFTER_MS",
    "Draft",
    "GrantPlan",
    "describe_changes",
    "draft_add_member",
    "draft_policy",
    "draft_rekey_member",
    "draft_remove_member",
    "draft_rotate_key",
    "genesis",
    "next_charter",
    "plan_grants",
]

#: A proposal is dated this long after it is made: its signing deadline, and the
#: time from which entries must cite it.
EFFECTIVE_AFTER_MS = DAY_MS

MEMBER_ROLES = frozenset({"publisher", "reader"})
ADMIN_ROLES = frozenset({"admin", "publisher", "reader"})


@dataclass(frozen=True, slots=True)
class Draft:
    """A drafted next charter version, and the key of the epoch it opens (if any)."""

    charter: Charter
    new_epoch: tuple[int, bytes] | None = None

    def __repr__(self) -> str:  # never show key material
        ep = None if self.new_epoch is None else self.new_epoch[0]
        return f"Draft(version={self.charter.version}, new_epoch={ep})"


@dataclass(frozen=True, slots=True)
class GrantPlan:
    """Seal ``keys`` (epoch -> key) to member ``to``."""

    to: bytes
    name: str
    keys: Mapping[int, bytes]

    def __repr__(self) -> str:
        return f"GrantPlan(to={short_id(self.to)}, epochs={sorted(self.keys)})"


def genesis(
    consortium: str,
    members: Sequence[Member],
    ts: int,
    *,
    policy: DataPolicy | None = None,
    quorum: str | int = "majority",
) -> Charter:
    """Version 1: the founding members, key epoch 1 from ``ts``."""
    try:
        return Charter(
            consortium=consortium,
            version=1,
            prev=None,
            ts=ts,
            members=tuple(members),
            epochs=(EpochInfo(ep=1, since=ts),),
            policy=policy or DataPolicy(),
            quorum=quorum,
        )
    except DecodeError as e:
        raise GovernanceError("bad_charter", e.message) from None


def member(member_id: bytes, name: str, endpoint: str, *, admin: bool = False) -> Member:
    """A member entry for a charter, with the roles every member has (and admin if asked)."""
    try:
        return Member(
            id=member_id,
            name=name,
            endpoint=endpoint,
            roles=ADMIN_ROLES if admin else MEMBER_ROLES,
        )
    except DecodeError as e:
        raise GovernanceError("bad_member", e.message) from None


def next_charter(base: CharterVersion, now: int, **changes: Any) -> Charter:
    """The charter after ``base`` with ``changes``, dated as a proposal is."""
    cur = base.charter
    try:
        return cur.evolve(prev=base.hash, ts=max(now + EFFECTIVE_AFTER_MS, cur.ts), **changes)
    except DecodeError as e:
        raise GovernanceError("bad_proposal", e.message) from None


def _check_proposer(base: CharterVersion, proposer: bytes) -> None:
    if proposer not in base.charter.admins():
        raise GovernanceError("not_admin", "this member is not an admin of the consortium")


def _check_key(new_key: bytes) -> None:
    if len(new_key) != EPOCH_KEY_BYTES:
        raise GovernanceError("bad_key", f"an epoch key is {EPOCH_KEY_BYTES} random bytes")


def _with_new_epoch(base: CharterVersion, now: int, new_key: bytes, **changes: Any) -> Draft:
    _check_key(new_key)
    cur = base.charter
    ep = max(cur.epoch_ids()) + 1
    ts = next_charter(base, now).ts
    charter = next_charter(base, now, epochs=(*cur.epochs, EpochInfo(ep=ep, since=ts)), **changes)
    return Draft(charter, (ep, new_key))


def draft_add_member(base: CharterVersion, now: int, proposer: bytes, newcomer: Member) -> Draft:
    """Add ``newcomer`` (from its checked join request)."""
    _check_proposer(base, proposer)
    cur = base.charter
    if cur.member(newcomer.id) is not None:
        raise GovernanceError("already_member", f"{newcomer.name} is already in the charter")
    if any(m.name == newcomer.name for m in cur.members):
        raise GovernanceError("name_taken", f"a member is already named {newcomer.name!r}")
    return Draft(next_charter(base, now, members=(*cur.members, newcomer)))


def _revoked(m: Member, until_seq: int) -> Member:
    return Member(
        id=m.id,
        name=m.name,
        endpoint=m.endpoint,
        roles=m.roles,
        status="revoked",
        until_seq=until_seq,
    )


def _active_other(base: CharterVersion, proposer: bytes, member_id: bytes, what: str) -> Member:
    m = base.charter.member(member_id)
    if m is None or m.status == "revoked":
        raise GovernanceError("not_member", f"no such member to {what}")
    if member_id == proposer:
        raise GovernanceError("bad_member", f"an admin cannot propose to {what} itself")
    return m


def draft_remove_member(
    base: CharterVersion,
    now: int,
    proposer: bytes,
    member_id: bytes,
    until_seq: int,
    new_key: bytes,
) -> Draft:
    """Revoke ``member_id`` after ``until_seq`` and rotate the key in the same version."""
    _check_proposer(base, proposer)
    m = _active_other(base, proposer, member_id, "remove")
    if until_seq < 0:
        raise GovernanceError("bad_member", "until_seq is a feed seq, 0 or more")
    members = tuple(
        _revoked(m, until_seq) if x.id == member_id else x for x in base.charter.members
    )
    return _with_new_epoch(base, now, new_key, members=members)


def draft_rekey_member(
    base: CharterVersion,
    now: int,
    proposer: bytes,
    member_id: bytes,
    until_seq: int,
    replacement: Member,
) -> Draft:
    """Give a member (e.g. one whose feed a fork proof froze) a new key and a new feed.

    The old identity is revoked after ``until_seq`` (its feed stays as evidence);
    ``replacement`` (from the member's new join request) takes its name, endpoint
    and roles. No new epoch: the member is the same institution, and the new
    identity receives the live epoch keys by grant like a newcomer.
    """
    _check_proposer(base, proposer)
    m = _active_other(base, proposer, member_id, "rekey")
    cur = base.charter
    if cur.member(replacement.id) is not None:
        raise GovernanceError("already_member", "the new key is already in the charter")
    new = Member(id=replacement.id, name=m.name, endpoint=replacement.endpoint, roles=m.roles)
    members = tuple(_revoked(x, until_seq) if x.id == member_id else x for x in cur.members)
    return Draft(next_charter(base, now, members=(*members, new)))


def draft_rotate_key(base: CharterVersion, now: int, proposer: bytes, new_key: bytes) -> Draft:
    """Open a new key epoch; the old ones retire after the longest time to live."""
    _check_proposer(base, proposer)
    return _with_new_epoch(base, now, new_key)


def draft_policy(
    base: CharterVersion, now: int, proposer: bytes, changes: Mapping[str, object]
) -> Draft:
    """Change policy fields; a nested map (``max_ttl_days``, ``gossip``) is merged."""
    _check_proposer(base, proposer)
    if not changes:
        raise GovernanceError("missing_field", "set: at least one policy field to change")
    m = base.charter.policy.to_map()
    for k, v in changes.items():
        if k not in m:
            raise GovernanceError("unknown_field", f"no policy field {k!r}")
        old = m[k]
        m[k] = {**old, **v} if isinstance(old, dict) and isinstance(v, dict) else v
    try:
        policy = DataPolicy.from_map(m)
    except (DecodeError, PolicyViolation, ValueError, TypeError) as e:
        raise GovernanceError("bad_policy", str(e)) from None
    if policy == base.charter.policy:
        raise GovernanceError("no_change", "the policy already says so")
    return Draft(next_charter(base, now, policy=policy))


def plan_grants(
    prev: Charter, new: Charter, me: bytes, held: Mapping[int, bytes]
) -> list[GrantPlan]:
    """The key grants admin ``me`` seals once ``new`` (after ``prev``) is final.

    A member new in ``new`` (or newly active) gets every epoch of ``new`` that
    ``me`` holds; every other active member gets the epochs ``new`` opens.
    """
    if me not in new.admins():
        return []
    keys = {ep: k for ep, k in held.items() if ep in new.epoch_ids()}
    if not keys:
        return []
    fresh = new.epoch_ids() - prev.epoch_ids()
    out = []
    for m in new.members:
        if m.id == me or m.status != "active":
            continue
        newcomer = not prev.is_active(m.id)
        give = keys if newcomer else {ep: k for ep, k in keys.items() if ep in fresh}
        if give:
            out.append(GrantPlan(m.id, m.name, give))
    return out


def describe_changes(old: Charter, new: Charter) -> list[str]:
    """What ``new`` changes after ``old``, in words (for listing proposals)."""
    out = []
    before = {m.id: m for m in old.members}
    for m in new.members:
        o = before.get(m.id)
        label = f"{m.name} ({short_id(m.id)})"
        if o is None:
            out.append(f"add {label} as {', '.join(sorted(m.roles))}")
        elif o.status != m.status:
            extra = f" after seq {m.until_seq}" if m.until_seq is not None else ""
            out.append(f"{m.status} {label}{extra}")
        elif o.roles != m.roles:
            out.append(f"roles of {label}: {', '.join(sorted(m.roles))}")
        elif o.endpoint != m.endpoint:
            out.append(f"endpoint of {label}: {m.endpoint}")
    for e in sorted(new.epoch_ids() - old.epoch_ids()):
        out.append(f"new key epoch {e}")
    if new.policy != old.policy:
        a, b = old.policy.to_map(), new.policy.to_map()
        for k in sorted(b):
            if a.get(k) != b[k]:
                out.append(f"policy {k}: {_toml_value(a.get(k))} -> {_toml_value(b[k])}")
    if new.quorum != old.quorum:
        out.append(f"quorum: {old.quorum} -> {new.quorum}")
    return out or ["no change"]


def _toml_value(v: object) -> str:
    """A policy value as TOML writes it (not a Python repr)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple | set | frozenset):
        items = sorted(v, key=str) if isinstance(v, set | frozenset) else list(v)
        return "[" + ", ".join(_toml_value(x) for x in items) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in sorted(v.items())) + " }"
    if v is None:
        return "(unset)"
    return str(v)
