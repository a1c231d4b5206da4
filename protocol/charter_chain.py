"""The charter chain: every charter version a node has accepted, each checked.

Version 1 (genesis) is a COSE_Sign signed by all its admins, installed out of
band; its hash is the node's trust anchor. Every later version must pass
:func:`contracts.charter.check_successor` with the distinct admins whose
signatures verify. A newcomer checks the whole chain link by link from the
anchor (:meth:`CharterChain.from_raws`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from contracts.charter import Charter, check_genesis, check_successor
from contracts.errors import CharterRejected, DecodeError, SignatureError
from protocol import codec
from protocol.cose import sign_multi, verify_multi
from protocol.keys import MemberKey

__all__ = ["CharterChain", "CharterVersion", "decode_charter", "sign_charter"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CharterVersion:
    raw: bytes  # the COSE_Sign bytes
    hash: bytes  # BLAKE2b-256 of raw
    charter: Charter
    signers: frozenset[bytes]

    @property
    def version(self) -> int:
        return self.charter.version


def sign_charter(charter: Charter, keys: Iterable[MemberKey]) -> bytes:
    """Encode ``charter`` as a COSE_Sign signed by ``keys``."""
    return sign_multi(codec.dumps(charter.to_map()), list(keys))


def decode_charter(raw: bytes) -> CharterVersion:
    """Verify every signature on a charter and decode it (no chain rule yet).

    Raises CharterRejected (reason ``bad_signature`` or ``malformed``).
    """
    try:
        signed = verify_multi(raw)
        charter = Charter.from_map(codec.loads(signed.payload))
    except SignatureError as e:
        raise CharterRejected("bad_signature", f"charter signature: {e.message}") from None
    except DecodeError as e:
        raise CharterRejected("malformed", f"malformed charter: {e.message}") from None
    return CharterVersion(
        raw=raw, hash=codec.obj_hash(raw), charter=charter, signers=frozenset(signed.signers)
    )


class CharterChain:
    """The accepted charter versions, from genesis to the current one."""

    def __init__(self, genesis: bytes, *, anchor: bytes | None = None) -> None:
        cv = decode_charter(genesis)
        if anchor is not None and cv.hash != anchor:
            raise CharterRejected("wrong_anchor", "genesis charter does not match the trust anchor")
        check_genesis(cv.charter, cv.signers)
        self._versions: list[CharterVersion] = [cv]
        self._revoked_until: dict[bytes, int] = {}

    @classmethod
    def from_raws(cls, raws: Iterable[bytes], *, anchor: bytes) -> CharterChain:
        """Build a chain from genesis on, checking each link; the error names the bad version."""
        it = iter(raws)
        try:
            first = next(it)
        except StopIteration:
            raise CharterRejected("empty_chain", "no charter versions given") from None
        chain = cls(first, anchor=anchor)
        for raw in it:
            try:
                chain.append(raw)
            except CharterRejected as e:
                raise CharterRejected(
                    e.reason,
                    f"charter chain broken after version {chain.current.version}: {e.message}",
                ) from None
        return chain

    # -- growth ------------------------------------------------------------

    def append(self, raw: bytes) -> bool:
        """Accept the next version; return False if it is already held.

        Raises CharterRejected if it may not follow the current version, or if
        it conflicts with a version already held.
        """
        cv = decode_charter(raw)
        v = cv.charter.version
        if v <= len(self._versions):
            if self._versions[v - 1].hash == cv.hash:
                return False
            raise CharterRejected(
                "conflicting_version", f"a different charter version {v} is already accepted"
            )
        cur = self._versions[-1]
        check_successor(cur.charter, cur.hash, cv.charter, cv.signers)
        self._versions.append(cv)
        for m in cv.charter.members:
            if m.status == "revoked" and m.until_seq is not None:
                prev = self._revoked_until.get(m.id)
                self._revoked_until[m.id] = m.until_seq if prev is None else min(prev, m.until_seq)
        return True

    # -- questions ---------------------------------------------------------

    @property
    def anchor(self) -> bytes:
        return self._versions[0].hash

    @property
    def current(self) -> Charter:
        return self._versions[-1].charter

    @property
    def current_version(self) -> CharterVersion:
        return self._versions[-1]

    def get(self, version: int) -> Charter | None:
        if 1 <= version <= len(self._versions):
            return self._versions[version - 1].charter
        return None

    def version_info(self, version: int) -> CharterVersion | None:
        if 1 <= version <= len(self._versions):
            return self._versions[version - 1]
        return None

    def versions(self) -> tuple[CharterVersion, ...]:
        return tuple(self._versions)

    def __len__(self) -> int:
        return len(self._versions)

    def revoked_until(self, member_id: bytes) -> int | None:
        """The last seq of a revoked member's feed that any node accepts, if revoked."""
        return self._revoked_until.get(member_id)

    def all_epochs(self) -> frozenset[int]:
        return self.current.epoch_ids()
