"""Keyed tokens: BLAKE2b(digest_size=16, key=K[epoch], data=kind NUL canonical).

Only members hold ``K[epoch]``, so a token cannot be reversed by enumerating
the value space the way a plain hash of a phone number can. The function is
BLAKE2b exactly as PyNaCl's ``nacl.hash.blake2b`` computes it (a test checks
the two agree); the hot path uses the standard library's implementation of the
same function because it lets us key the state once per epoch and copy it,
which is several times faster than re-keying for every value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping

from contracts.errors import LocalProtocolError

__all__ = ["EPOCH_KEY_BYTES", "TOKEN_BYTES", "EpochKeys", "Tokenizer", "token"]

TOKEN_BYTES = 16
EPOCH_KEY_BYTES = 32


def token(key: bytes, kind: str, canonical: str) -> bytes:
    """The token of an already-canonical value under one epoch's key."""
    return hashlib.blake2b(
        f"{kind}\x00{canonical}".encode(), digest_size=TOKEN_BYTES, key=key
    ).digest()


class Tokenizer:
    """Tokens for one key epoch. The key never shows in a repr."""

    __slots__ = ("_base", "epoch")

    def __init__(self, epoch: int, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != EPOCH_KEY_BYTES:
            raise LocalProtocolError("an epoch key is 32 bytes")
        self.epoch = epoch
        self._base = hashlib.blake2b(digest_size=TOKEN_BYTES, key=key)

    def token(self, kind: str, canonical: str) -> bytes:
        h = self._base.copy()
        h.update(f"{kind}\x00{canonical}".encode())
        return h.digest()

    def prefixed(self, kind: str) -> hashlib.blake2b:
        """A hash state that has taken ``kind`` and the separator: ``.copy()``, then
        ``.update(canonical.encode())`` and ``.digest()`` give :meth:`token` (the query
        path's batches hash each value once, without building the joined text)."""
        h = self._base.copy()
        h.update(f"{kind}\x00".encode())
        return h

    def tokens(self, items: Iterable[tuple[str, str]]) -> list[bytes]:
        base = self._base
        out = []
        for kind, canonical in items:
            h = base.copy()
            h.update(f"{kind}\x00{canonical}".encode())
            out.append(h.digest())
        return out

    def __repr__(self) -> str:
        return f"Tokenizer(epoch={self.epoch})"


class EpochKeys(Mapping[int, bytes]):
    """The consortium keys this node holds, by epoch. Never shows a key in a repr."""

    __slots__ = ("_keys", "_tokenizers")

    def __init__(self, keys: Mapping[int, bytes] | None = None) -> None:
        self._keys: dict[int, bytes] = {}
        self._tokenizers: dict[int, Tokenizer] = {}
        for ep, key in (keys or {}).items():
            self.add(ep, key)

    def add(self, epoch: int, key: bytes) -> None:
        existing = self._keys.get(epoch)
        if existing is not None and existing != key:
            raise LocalProtocolError(f"a different key is already held for epoch {epoch}")
        self._tokenizers[epoch] = Tokenizer(epoch, key)
        self._keys[epoch] = key

    def tokenizer(self, epoch: int) -> Tokenizer:
        try:
            return self._tokenizers[epoch]
        except KeyError:
            raise LocalProtocolError(f"no key held for epoch {epoch}") from None

    def latest(self) -> int:
        if not self._keys:
            raise LocalProtocolError("no epoch key held")
        return max(self._keys)

    def __getitem__(self, epoch: int) -> bytes:
        return self._keys[epoch]

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"EpochKeys(epochs={sorted(self._keys)})"
