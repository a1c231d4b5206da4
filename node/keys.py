"""API keys: scoped, named, stored hashed, checked from memory.

A key is ``rm_`` + 43 random URL-safe characters, shown once when it is made
(``riskmesh keys create``) and kept only as a hash. Each key has a unique
name among the keys in force and a set of scopes (:data:`SCOPES`). The
default key :data:`DEFAULT_KEY` (``HOME/api-token``, every scope) is made by
``riskmesh init``; it can be rotated but not revoked.

:class:`KeyRing` answers "which key is this?" from a dict in memory — no
SQLite read per request — and reloads it from the store whenever a key is
made, rotated or revoked (the store counts its key changes; the ring compares
that counter, an integer in memory, on each check). The time a key was last used is kept in
memory and written to the store by :meth:`KeyRing.flush` (the maintenance job,
and before keys are listed). Every change is an audit row naming the acting key.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from contracts.errors import RequestRefused
from node.audit import current_actor, detail

__all__ = [
    "DEFAULT_KEY",
    "SCOPES",
    "ApiKey",
    "KeyRing",
    "KeyStore",
    "key_hash",
    "new_key",
    "parse_scopes",
]

#: Every scope, in the order the docs list them.
SCOPES = ("query", "report", "watch", "admin")
#: The name of the all-scope key ``riskmesh init`` writes to ``HOME/api-token``.
DEFAULT_KEY = "cli"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def new_key() -> str:
    return "rm_" + secrets.token_urlsafe(32)


def key_hash(secret: str) -> bytes:
    return hashlib.blake2b(secret.encode(), digest_size=32, person=b"rm-api-key").digest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    scopes: frozenset[str]
    created: int
    last_used: int | None = None
    revoked: int | None = None

    def to_json(self, rfc3339: Any) -> dict[str, Any]:
        return {
            "name": self.name,
            "scopes": [s for s in SCOPES if s in self.scopes],
            "created": rfc3339(self.created),
            "last_used": None if self.last_used is None else rfc3339(self.last_used),
            "revoked": None if self.revoked is None else rfc3339(self.revoked),
        }


class KeyStore(Protocol):
    """What :class:`KeyRing` needs of the store (:class:`node.store.SqliteStore`)."""

    api_keys_changed: int

    def api_key_rows(self) -> list[tuple[bytes, str, str, int, int | None, int | None]]: ...
    def insert_api_key(self, h: bytes, name: str, scopes: str, now: int) -> None: ...
    def revoke_api_key(self, name: str, now: int) -> int: ...
    def touch_api_keys(self, used: dict[bytes, int]) -> None: ...
    def audit(self, ts: int, actor: str, action: str, detail: str) -> None: ...
    def atomic(self, *, durable: bool = False) -> Any: ...


def parse_scopes(scopes: Iterable[str] | str) -> frozenset[str]:
    """Scopes from a list or a comma-separated text; unknown ones are refused."""
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    out = set()
    for s in items:
        if not isinstance(s, str):
            raise RequestRefused("bad_scope", "scopes are text: " + ", ".join(SCOPES))
        s = s.strip()
        if s not in SCOPES:
            raise RequestRefused(
                "bad_scope", f"unknown scope {s[:32]!r}; expected some of " + ", ".join(SCOPES)
            )
        out.add(s)
    if not out:
        raise RequestRefused("bad_scope", "a key needs at least one scope: " + ", ".join(SCOPES))
    return frozenset(out)


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RequestRefused(
            "bad_name",
            "a key name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


class KeyRing:
    """The node's API keys, checked from memory (see the module docstring)."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self._by_hash: dict[bytes, ApiKey] = {}
        self._used: dict[bytes, int] = {}
        self.reload()

    def reload(self) -> None:
        """Read the keys in force from the store (after any change)."""
        self._seen = self.store.api_keys_changed
        keys = {}
        for h, name, scopes, created, last_used, revoked in self.store.api_key_rows():
            if revoked is None:
                keys[bytes(h)] = ApiKey(name, frozenset(scopes.split(",")), created, last_used)
        self._by_hash = keys

    def __len__(self) -> int:
        return len(self._by_hash)

    def check(self, secret: str, now: int) -> ApiKey | None:
        """The key in force with this secret, or None; notes its use."""
        if self._seen != self.store.api_keys_changed:
            self.reload()  # a key was changed through the store directly
        h = key_hash(secret)
        key = self._by_hash.get(h)
        if key is not None:
            self._used[h] = now
        return key

    def in_force(self) -> dict[bytes, ApiKey]:
        """The keys in force, by hash (sent to the serving processes: node/workers.py)."""
        if self._seen != self.store.api_keys_changed:
            self.reload()
        return dict(self._by_hash)

    def note_use(self, used: Mapping[bytes, int]) -> None:
        """Last-use times noted elsewhere (a serving process), written at the next flush."""
        for h, t in used.items():
            if h in self._by_hash and t > self._used.get(h, 0):
                self._used[h] = t

    def flush(self) -> None:
        """Write the last-use times noted since the last flush."""
        if self._used:
            used, self._used = self._used, {}
            self.store.touch_api_keys(used)
            self._by_hash = {
                h: ApiKey(k.name, k.scopes, k.created, used.get(h, k.last_used))
                for h, k in self._by_hash.items()
            }

    def list(self, *, revoked: bool = False) -> list[ApiKey]:
        """Every key in force (and revoked ones with ``revoked``), by name."""
        self.flush()
        out = []
        for _, name, scopes, created, last_used, rev in self.store.api_key_rows():
            if rev is None or revoked:
                out.append(ApiKey(name, frozenset(scopes.split(",")), created, last_used, rev))
        return sorted(out, key=lambda k: (k.name, k.created))

    def _active(self, name: str) -> ApiKey | None:
        return next((k for k in self._by_hash.values() if k.name == name), None)

    def create(self, name: str, scopes: Iterable[str] | str, now: int) -> tuple[ApiKey, str]:
        """A new key: (its record, the secret, shown once)."""
        check_name(name)
        sc = parse_scopes(scopes)
        if self._active(name) is not None:
            raise RequestRefused("name_taken", f"a key named {name!r} exists; revoke it first")
        secret = new_key()
        text = ",".join(s for s in SCOPES if s in sc)
        with self.store.atomic(durable=True):
            self.store.insert_api_key(key_hash(secret), name, text, now)
            self.store.audit(now, current_actor(), "key_create", detail(name=name, scopes=text))
        self.reload()
        return ApiKey(name, sc, now), secret

    def revoke(self, name: str, now: int) -> ApiKey:
        key = self._active(name)
        if key is None:
            raise RequestRefused("unknown_key", f"no key named {name[:64]!r} in force")
        if name == DEFAULT_KEY:
            raise RequestRefused(
                "default_key",
                f"the default key {DEFAULT_KEY!r} cannot be revoked; rotate it instead",
            )
        with self.store.atomic(durable=True):
            self.store.revoke_api_key(name, now)
            self.store.audit(now, current_actor(), "key_revoke", detail(name=name))
        self.reload()
        return ApiKey(key.name, key.scopes, key.created, key.last_used, now)

    def rotate(self, name: str, now: int) -> tuple[ApiKey, str]:
        """Replace key ``name`` with a new secret of the same scopes; the old one stops
        working at once."""
        key = self._active(name)
        if key is None:
            raise RequestRefused("unknown_key", f"no key named {name[:64]!r} in force")
        secret = new_key()
        text = ",".join(s for s in SCOPES if s in key.scopes)
        with self.store.atomic(durable=True):
            self.store.revoke_api_key(name, now)
            self.store.insert_api_key(key_hash(secret), name, text, now)
            self.store.audit(now, current_actor(), "key_rotate", detail(name=name))
        self.reload()
        return ApiKey(name, key.scopes, now), secret
