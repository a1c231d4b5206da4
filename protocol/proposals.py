"""Charter proposals: the next charter version, collecting admin signatures by gossip.

A proposal is simply the proposed charter version ``n + 1`` as a COSE_Sign,
signed by whoever has signed it so far. Its id is the first 8 bytes (16 hex
digits) of the BLAKE2b-256 of the charter payload, so every signature set of
the same proposal has the same id; two copies with different signers merge
into one carrying the union (:func:`protocol.cose.merge_signatures`). The
moment a copy carries a quorum — :func:`contracts.charter.check_successor`
passes — it *is* charter version ``n + 1`` and any node may append it.

A proposal is dated :data:`EFFECTIVE_AFTER_MS` after it is made: that is the
new version's ``ts``, so members may go on citing version ``n`` until then
(the feed rule refuses an entry citing ``n`` dated after ``n + 1``'s ``ts``
plus the skew) and nobody's honest entries are refused because the
signatures took a while. Admins sign before that time; later, the proposal
is expired and must be made again.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.charter import Charter, check_successor
from contracts.errors import CharterRejected, DecodeError, ProposalRejected, SignatureError
from protocol import codec
from protocol.charter_chain import CharterChain, CharterVersion, decode_charter, sign_charter
from protocol.cose import add_signature, merge_signatures, verify_multi
from protocol.governance import EFFECTIVE_AFTER_MS, next_charter
from protocol.keys import MemberKey
from protocol.store import FeedStore

__all__ = [
    "EFFECTIVE_AFTER_MS",
    "Proposal",
    "ProposalBook",
    "ProposalOffer",
    "ProposalRejected",
    "proposal_id",
]

#: A proposal's charter takes effect (its ``ts``) this long after it is made.
#: Proposals kept waiting for a charter version this node does not hold yet.
MAX_WAITING = 256

NEW = "new"
MERGED = "merged"
KNOWN = "known"
FINAL = "final"
STALE = "stale"
WAITING = "waiting"


def proposal_id(raw: bytes) -> str:
    """The id of a proposal: 16 hex digits naming its charter payload."""
    try:
        payload = verify_multi(raw).payload
    except (DecodeError, SignatureError) as e:
        raise ProposalRejected("malformed", f"not a charter proposal: {e.message}") from None
    return codec.obj_hash(payload)[:8].hex()


@dataclass(frozen=True, slots=True)
class Proposal:
    id: str
    raw: bytes
    version: CharterVersion

    @property
    def charter(self) -> Charter:
        return self.version.charter

    @property
    def signers(self) -> frozenset[bytes]:
        return self.version.signers


@dataclass(frozen=True, slots=True)
class ProposalOffer:
    """``status``: new, merged (more signatures), known, final, stale or waiting."""

    status: str
    proposal: Proposal | None = None


class ProposalBook:
    """The proposals a node holds, over its store and charter chain."""

    def __init__(self, store: FeedStore, chain: CharterChain) -> None:
        self.store = store
        self.chain = chain
        self._by_id: dict[str, Proposal] = {}
        for raw in store.proposals():
            try:
                p = self._decode(raw)
            except ProposalRejected:
                continue
            self._by_id[p.id] = p

    # -- making and signing ----------------------------------------------------------

    def draft(self, now: int, **changes: object) -> Charter:
        """The charter after the current one with ``changes``, dated as a proposal is."""
        return next_charter(self.chain.current_version, now, **changes)

    def propose(self, charter: Charter, key: MemberKey, now: int) -> ProposalOffer:
        """Sign ``charter`` as a new proposal by ``key`` (an admin) and hold it."""
        cur = self.chain.current
        if key.id not in cur.admins():
            raise ProposalRejected("not_admin", "only an admin may propose a charter change")
        return self.offer(sign_charter(charter, [key]), now)

    def sign(self, pid: str, key: MemberKey, now: int) -> ProposalOffer:
        """Add ``key``'s signature to proposal ``pid``."""
        p = self._by_id.get(pid)
        if p is None or p.charter.version <= self.chain.current.version:
            raise ProposalRejected("unknown_proposal", f"no pending proposal {pid}")
        cur = self.chain.current
        if key.id not in cur.admins() | p.charter.admins():
            raise ProposalRejected("not_admin", "only an admin may sign a charter change")
        if now > p.charter.ts:
            raise ProposalRejected(
                "expired", f"proposal {pid} was due to take effect already; propose it again"
            )
        return self.offer(add_signature(p.raw, key), now)

    # -- receiving -----------------------------------------------------------------------

    def offer(self, raw: bytes, now: int) -> ProposalOffer:
        """Take a proposal (or more signatures on one) from anyone.

        Raises ProposalRejected if it is not a valid candidate for the next
        charter version (bad signature, a signer who is no admin, a wrong
        version or prev, a changed consortium name, a date before the current
        version's).
        """
        del now  # proposals are judged on signed data alone
        p = self._decode(raw)
        cur = self.chain.current_version
        v = p.charter.version
        if v <= cur.version:
            return ProposalOffer(STALE, p)
        old = self._by_id.get(p.id)
        status = NEW
        if old is not None:
            merged = merge_signatures(old.raw, p.raw)
            if merged == old.raw:
                return ProposalOffer(KNOWN, old)
            p = self._decode(merged)
            status = MERGED
        if v > cur.version + 1:
            if len(self._by_id) >= MAX_WAITING and old is None:
                return ProposalOffer(STALE, p)
            self._keep(p)
            return ProposalOffer(WAITING, p)
        allowed = cur.charter.admins() | p.charter.admins()
        if not p.signers <= allowed:
            raise ProposalRejected("not_admin", "a proposal carries a signature by a non-admin")
        try:
            check_successor(cur.charter, cur.hash, p.charter, p.signers)
        except CharterRejected as e:
            if e.reason not in ("quorum_not_met", "new_quorum_not_met"):
                raise ProposalRejected(e.reason, e.message) from None
            self._keep(p)
            return ProposalOffer(status, p)
        self._keep(p)
        return ProposalOffer(FINAL, p)

    def retry(self, now: int) -> list[ProposalOffer]:
        """Judge again the proposals that waited for the charter to catch up."""
        out = []
        for p in list(self._by_id.values()):
            if p.charter.version == self.chain.current.version + 1:
                try:
                    out.append(self.offer(p.raw, now))
                except ProposalRejected:
                    del self._by_id[p.id]
        return out

    # -- questions -----------------------------------------------------------------------

    def get(self, pid: str) -> Proposal | None:
        return self._by_id.get(pid)

    def pending(self) -> list[Proposal]:
        """Proposals for a version after the current one, oldest version first."""
        cur = self.chain.current.version
        return sorted(
            (p for p in self._by_id.values() if p.charter.version > cur),
            key=lambda p: (p.charter.version, p.id),
        )

    def all(self) -> list[Proposal]:
        return list(self._by_id.values())

    def _keep(self, p: Proposal) -> None:
        self._by_id[p.id] = p
        self.store.put_proposal(p.id, p.raw)

    @staticmethod
    def _decode(raw: bytes) -> Proposal:
        try:
            cv = decode_charter(raw)
        except CharterRejected as e:
            raise ProposalRejected(e.reason, e.message) from None
        return Proposal(id=proposal_id(raw), raw=raw, version=cv)
