"""Fork proofs: two validly signed entries by one author with the same seq.

An author who signs two different entries for the same ``(log, seq)`` has
equivocated. The pair is self-proving: anyone holding it can check both
signatures and see the conflict, so a node that finds one stores it, freezes
the feed, raises an alert and gossips the proof; every node that receives the
proof freezes the feed too.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.errors import DecodeError, EntryRejected
from protocol import codec
from protocol.entries import HARD_MAX_ENTRY_BYTES, Entry, decode_entry
from protocol.keys import MemberId

__all__ = ["ForkProof", "decode_fork_proof", "make_fork_proof"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ForkProof:
    log: MemberId
    seq: int
    a: bytes  # raw entry, the smaller hash first
    b: bytes

    def encode(self) -> bytes:
        return codec.dumps({"v": 1, "a": self.a, "b": self.b})

    def __repr__(self) -> str:
        return f"ForkProof(log={self.log.hex()[:8]}, seq={self.seq})"


def make_fork_proof(x: Entry, y: Entry) -> ForkProof:
    """The proof that ``x`` and ``y`` (both signature-checked) equivocate."""
    if x.log != y.log or x.seq != y.seq or x.hash == y.hash:
        raise ValueError("not a fork: entries must share log and seq and differ")
    a, b = (x, y) if x.hash < y.hash else (y, x)
    return ForkProof(log=x.log, seq=x.seq, a=a.raw, b=b.raw)


def decode_fork_proof(data: bytes) -> ForkProof:
    """Decode and check a fork proof; raise DecodeError unless it proves a fork."""
    m = codec.loads(data, max_bytes=2 * HARD_MAX_ENTRY_BYTES + 64)
    if not isinstance(m, dict) or m.keys() != {"v", "a", "b"} or m["v"] != 1:
        raise DecodeError("a fork proof is a map of exactly v=1, a, b")
    if not isinstance(m["a"], bytes) or not isinstance(m["b"], bytes):
        raise DecodeError("fork proof entries must be bytes")
    try:
        x = decode_entry(m["a"])
        y = decode_entry(m["b"])
        x.verify_signature()
        y.verify_signature()
    except EntryRejected as e:
        raise DecodeError(f"fork proof holds an invalid entry: {e.message}") from None
    if x.log != y.log or x.seq != y.seq:
        raise DecodeError("fork proof entries are not from the same log and seq")
    if x.hash == y.hash:
        raise DecodeError("fork proof entries are identical")
    if not x.hash < y.hash:
        raise DecodeError("fork proof entries are not in canonical order")
    return ForkProof(log=x.log, seq=x.seq, a=x.raw, b=y.raw)
