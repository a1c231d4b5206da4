"""Consortium administration on a member node: proposals, signatures, grants, rotation.

The CLI (`riskmesh admin ...`) and the local API (`/v1/admin/...`) call
:class:`Admin`, which works through the node's gossip engine so that every
proposal and signature travels by gossip (DESIGN §7):

* ``propose`` drafts the next charter version — add a member from its join
  request, remove one (revoked at its feed head as this node sees it, with a
  key rotation in the same version), rotate the key, or change the data
  policy — signs it as this admin and hands it to the engine;
* ``sign`` adds this admin's signature to a pending proposal;
* when a version becomes final (here or anywhere), :meth:`Admin.charter_advanced`
  runs on every node: a key made here for that version's new epoch is moved
  into the key store, and an admin node seals the keys to whoever needs them —
  every epoch it holds to each newly added member, a new epoch to every
  remaining member (key grants, relayed by gossip, opened only by their
  recipient). Then each publisher republishes its live reports under the new
  epoch.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from contracts.charter import Charter, EpochInfo, Member
from contracts.errors import DecodeError, LocalProtocolError, PolicyViolation
from contracts.policy import DataPolicy
from node.service import NodeCore, RequestError, rfc3339
from protocol.gossip import GossipEngine
from protocol.grants import make_grant
from protocol.keys import MemberId, member_id_text, parse_member_id, short_id
from protocol.proposals import Proposal, ProposalOffer, ProposalRejected

__all__ = ["ACTIONS", "Admin"]

log = logging.getLogger("riskmesh.admin")

ACTIONS = ("add-member", "remove-member", "rotate-key", "policy")


class Admin:
    def __init__(self, core: NodeCore, engine: GossipEngine) -> None:
        self.core = core
        self.engine = engine

    # -- proposing and signing --------------------------------------------------------

    def propose(self, body: dict[str, Any], now: int) -> dict[str, Any]:
        action = body.get("action")
        if action not in ACTIONS:
            raise RequestError("bad_action", "action must be one of " + ", ".join(ACTIONS))
        book = self.engine.proposals
        cur = self.engine.chain.current
        if self.core.key.id not in cur.admins():
            raise RequestError("not_admin", "this member is not an admin of the consortium", 403)
        new_key: tuple[int, bytes] | None = None
        if action == "add-member":
            charter = self._add_member(body, cur, now)
        elif action == "remove-member":
            charter, new_key = self._remove_member(body, cur, now)
        elif action == "rotate-key":
            extra = set(body) - {"action"}
            if extra:
                raise RequestError("unknown_field", f"unknown fields {sorted(extra)}")
            new_key = self._new_epoch(cur)
            ep = new_key[0]
            draft = book.draft(now)
            charter = book.draft(now, epochs=(*cur.epochs, EpochInfo(ep=ep, since=draft.ts)))
        else:
            charter = self._policy(body, cur, now)
        with self.core.store.atomic(durable=True):
            offer = self._run(lambda: self.engine.propose(charter, now))
            assert offer.proposal is not None
            if new_key is not None:
                self.core.store.put_pending_key(offer.proposal.id, *new_key)
            self.core.store.audit(now, "admin", "propose", f"{action} {offer.proposal.id}")
        log.info("proposed %s as %s (%s)", action, offer.proposal.id, offer.status)
        return self.view(offer.proposal, offer.status)

    def sign(self, pid: str, now: int) -> dict[str, Any]:
        with self.core.store.atomic(durable=True):
            offer = self._run(lambda: self.engine.sign_proposal(pid, now))
            self.core.store.audit(now, "admin", "sign", pid)
        assert offer.proposal is not None
        log.info("signed proposal %s (%s)", pid, offer.status)
        return self.view(offer.proposal, offer.status)

    def _run(self, fn: Any) -> ProposalOffer:
        try:
            offer: ProposalOffer = fn()
        except ProposalRejected as e:
            status = {"unknown_proposal": 404, "not_admin": 403}.get(e.reason, 409)
            raise RequestError(e.reason, e.message, status) from None
        return offer

    def _add_member(self, body: dict[str, Any], cur: Charter, now: int) -> Charter:
        extra = set(body) - {"action", "join_request", "admin"}
        if extra:
            raise RequestError("unknown_field", f"unknown fields {sorted(extra)}")
        jr_raw = body.get("join_request")
        if not isinstance(jr_raw, bytes):
            raise RequestError("missing_field", "join_request (the join-request.cbor bytes)")
        from node.home import read_join_request  # node.home needs node.api, which needs us

        try:
            jr = read_join_request(jr_raw)
        except LocalProtocolError as e:
            raise RequestError("bad_join_request", e.message, 422) from None
        if cur.member(jr.id) is not None:
            raise RequestError("already_member", f"{jr.name} is already in the charter", 409)
        roles = {"publisher", "reader"} | ({"admin"} if body.get("admin") else set())
        try:
            member = Member(id=jr.id, name=jr.name, endpoint=jr.endpoint, roles=frozenset(roles))
            return self.engine.proposals.draft(now, members=(*cur.members, member))
        except DecodeError as e:
            raise RequestError("bad_join_request", e.message, 422) from None

    def _remove_member(
        self, body: dict[str, Any], cur: Charter, now: int
    ) -> tuple[Charter, tuple[int, bytes]]:
        extra = set(body) - {"action", "member"}
        if extra:
            raise RequestError("unknown_field", f"unknown fields {sorted(extra)}")
        who = body.get("member")
        if not isinstance(who, str):
            raise RequestError("missing_field", "member (the member id, base32)")
        try:
            mid = parse_member_id(who)
        except DecodeError as e:
            raise RequestError("bad_member", e.message, 422) from None
        m = cur.member(mid)
        if m is None or m.status == "revoked":
            raise RequestError("not_member", "no such member to remove", 404)
        if mid == self.core.key.id:
            raise RequestError("bad_member", "an admin cannot propose removing itself", 422)
        head = self.core.store.head(MemberId(mid))
        revoked = Member(
            id=m.id,
            name=m.name,
            endpoint=m.endpoint,
            roles=m.roles,
            status="revoked",
            until_seq=0 if head is None else head.seq,
        )
        members = tuple(revoked if x.id == mid else x for x in cur.members)
        ep, key = self._new_epoch(cur)
        draft = self.engine.proposals.draft(now)
        epochs = (*cur.epochs, EpochInfo(ep=ep, since=draft.ts))
        try:
            charter = self.engine.proposals.draft(now, members=members, epochs=epochs)
        except DecodeError as e:
            raise RequestError("bad_proposal", e.message, 422) from None
        return charter, (ep, key)

    def _new_epoch(self, cur: Charter) -> tuple[int, bytes]:
        return max(cur.epoch_ids()) + 1, secrets.token_bytes(32)

    def _policy(self, body: dict[str, Any], cur: Charter, now: int) -> Charter:
        extra = set(body) - {"action", "set"}
        if extra:
            raise RequestError("unknown_field", f"unknown fields {sorted(extra)}")
        changes = body.get("set")
        if not isinstance(changes, dict) or not changes:
            raise RequestError("missing_field", "set: an object of policy fields to change")
        m = cur.policy.to_map()
        for k, v in changes.items():
            if k not in m:
                raise RequestError("unknown_field", f"no policy field {k!r}")
            if isinstance(m[k], dict) and isinstance(v, dict):
                m[k] = {**m[k], **v}
            else:
                m[k] = v
        try:
            policy = DataPolicy.from_map(m)
        except (DecodeError, PolicyViolation, ValueError) as e:
            raise RequestError("bad_policy", str(e), 422) from None
        return self.engine.proposals.draft(now, policy=policy)

    # -- views -----------------------------------------------------------------------

    def view(self, p: Proposal, status: str | None = None) -> dict[str, Any]:
        chain = self.engine.chain
        cur = chain.current
        final = chain.version_info(p.charter.version)
        if status is None:
            if final is not None and final.charter == p.charter:
                status = "final"
            elif p.charter.version <= cur.version:
                status = "superseded"
            else:
                status = "pending"
        names = {m.id: m.name for m in (*cur.members, *p.charter.members)}
        base = chain.get(p.charter.version - 1) or cur
        return {
            "id": p.id,
            "version": p.charter.version,
            "status": status,
            "effective": rfc3339(p.charter.ts),
            "changes": describe_changes(base, p.charter),
            "signers": sorted(names.get(s, short_id(s)) for s in p.signers),
            "needed": base.quorum_size(),
            "admins": sorted(names.get(a, short_id(a)) for a in base.admins()),
        }

    def proposals(self) -> list[dict[str, Any]]:
        return [self.view(p) for p in sorted(self.engine.proposals.all(), key=_order)]

    def charter(self) -> dict[str, Any]:
        chain = self.engine.chain
        c = chain.current
        return {
            "consortium": c.consortium,
            "version": c.version,
            "hash": chain.current_version.hash.hex(),
            "anchor": chain.anchor.hex(),
            "effective": rfc3339(c.ts),
            "quorum": c.quorum,
            "quorum_size": c.quorum_size(),
            "members": [
                {
                    "id": member_id_text(m.id),
                    "name": m.name,
                    "endpoint": m.endpoint,
                    "roles": sorted(m.roles),
                    "status": m.status,
                    **({"until_seq": m.until_seq} if m.until_seq is not None else {}),
                }
                for m in c.members
            ],
            "epochs": [{"ep": e.ep, "since": rfc3339(e.since)} for e in c.epochs],
            "policy": c.policy.to_map(),
            "versions": [
                {"version": v.version, "hash": v.hash.hex(), "signers": len(v.signers)}
                for v in chain.versions()
            ],
        }

    # -- when a version becomes final --------------------------------------------------

    def charter_advanced(self, version: int, now: int) -> None:
        chain = self.engine.chain
        info = chain.version_info(version)
        prev = chain.get(version - 1)
        if info is None or prev is None:
            return
        new = info.charter
        store = self.core.store
        with store.atomic(durable=True):
            for p in self.engine.proposals.all():
                if p.charter == new:
                    pending = store.take_pending_key(p.id)
                    if pending is not None and pending[0] in new.epoch_ids():
                        store.put_epoch_key(*pending)
                        self.core.epoch_keys.add(*pending)
                        log.info("epoch %d key of proposal %s now in force", pending[0], p.id)
            if self.core.key.id in new.admins():
                self._grant(prev, new, version, now)
        self.core.republish(now)

    def _grant(self, prev: Charter, new: Charter, version: int, now: int) -> None:
        held = {ep: k for ep, k in self.core.epoch_keys.items() if ep in new.epoch_ids()}
        if not held:
            return
        fresh = new.epoch_ids() - prev.epoch_ids()
        for m in new.members:
            if m.id == self.core.key.id or m.status != "active":
                continue
            newcomer = not prev.is_active(m.id)
            keys = held if newcomer else {ep: k for ep, k in held.items() if ep in fresh}
            if not keys:
                continue
            raw = make_grant(self.core.key, m.id, keys, cv=version, ts=now)
            self.engine.add_grant(raw)
            log.info("granted epochs %s to %s", sorted(keys), m.name)


def _order(p: Proposal) -> tuple[int, str]:
    return (p.charter.version, p.id)


def describe_changes(old: Charter, new: Charter) -> list[str]:
    """What a charter version changes, in words (for listing proposals)."""
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
    for e in sorted(new.epoch_ids() - old.epoch_ids()):
        out.append(f"new key epoch {e}")
    if new.policy != old.policy:
        a, b = old.policy.to_map(), new.policy.to_map()
        for k in sorted(b):
            if a.get(k) != b[k]:
                out.append(f"policy {k}: {a.get(k)} -> {b[k]}")
    if new.quorum != old.quorum:
        out.append(f"quorum: {old.quorum} -> {new.quorum}")
    return out or ["no change"]
