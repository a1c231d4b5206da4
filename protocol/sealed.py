"""Sealed peer envelopes: the NaCl Box around all peer traffic (DESIGN §8).

Sans-IO like the rest of protocol/: the time (``now``, ms) and the random
bytes of each nonce are arguments (``random_bytes`` defaults to PyNaCl's CSPRNG).

A request body is strict canonical CBOR::

    {"from": sender id, "to": receiver id, "ts": ms, "nonce": 24 bytes, "box": bytes}

where ``box`` is ``nacl.public.Box(sender X25519 private, receiver X25519 public)
.encrypt(plaintext, nonce).ciphertext``. A response body is ``{"ts", "nonce",
"box"}`` sealed the same way from the responder to the requester (who is who
is implied by the request).

The nonce is ``ts`` (8 bytes, big-endian), then one direction byte (``0x01``
request, ``0x02`` response), then 15 random bytes. The receiver checks the ts
prefix and the direction byte; as the nonce is an input of the Box, a box only
opens under the nonce it was sealed with, so both are authenticated:

* an attacker cannot replay an old box under a fresh ``ts``;
* a Box between two members uses one shared key for both directions, so
  without the direction byte a request could be reflected back to its sender
  as a response (or a response replayed to the responder as a request).

:class:`Opener` (receiver side) checks a request cheapest first: size, shape,
``to`` is this node, the sender is an active member, ``ts`` in the skew window,
nonce prefix, nonce not seen in the window, and only then the Box. A message
whose Box does not open is never recorded in the replay cache, so a forger
cannot burn a legitimate nonce. Every refusal is an :class:`EnvelopeError`
whose ``reason`` (one of :data:`REASONS`) says why; the peer HTTP layer
(``node.peer``) maps it to a status. No message ever holds key material or
plaintext.

:class:`Sealer` (sender side) seals requests and opens responses, with one
precomputed ``Box`` per peer. The module-level :func:`seal`,
:func:`seal_response` and :func:`open_response` do the same with a one-off Box.

Neither class is thread-safe; the node uses them from its event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import nacl.exceptions
import nacl.public
import nacl.utils

from contracts.errors import DecodeError, EnvelopeError, LocalProtocolError
from protocol.codec import DEFAULT_MAX_BYTES, dumps, loads
from protocol.keys import MEMBER_ID_BYTES, MemberId, MemberKey, short_id, x25519_public

__all__ = [
    "DEFAULT_MAX_NONCES",
    "NONCE_BYTES",
    "REASONS",
    "EnvelopeError",
    "Opener",
    "Sealer",
    "open_response",
    "seal",
    "seal_response",
]

NONCE_BYTES: Final = 24
TS_BYTES: Final = 8
RANDOM_NONCE_BYTES: Final = NONCE_BYTES - TS_BYTES - 1
MAC_BYTES: Final = 16
DEFAULT_MAX_NONCES: Final = 1_000_000
DEFAULT_MAX_PEERS: Final = 4096
_TS_MAX: Final = 2 ** (8 * TS_BYTES) - 1

_REQUEST: Final = 0x01
_RESPONSE: Final = 0x02

_REQUEST_KEYS: Final = frozenset({"from", "to", "ts", "nonce", "box"})
_RESPONSE_KEYS: Final = frozenset({"ts", "nonce", "box"})

#: Every refusal reason.
REASONS: Final = frozenset(
    {
        "decode",  # not canonical CBOR, or not the envelope's shape
        "too_large",  # body over the size limit
        "wrong_recipient",  # ``to`` is not this node
        "not_member",  # sender is not an active member
        "skew",  # ``ts`` outside the skew window
        "bad_nonce",  # nonce does not start with ``ts`` and the right direction
        "replay",  # (sender, nonce) already seen in the window
        "busy",  # replay cache full
        "bad_box",  # Box does not open: wrong key, forged or tampered
    }
)


def _refused(reason: str, message: str) -> EnvelopeError:
    if reason not in REASONS:
        raise LocalProtocolError(f"unknown envelope refusal reason {reason!r}")
    return EnvelopeError(reason, message)


# --------------------------------------------------------------------------- helpers

RandomBytes = Callable[[int], bytes]


def _check_now(now: int) -> None:
    if type(now) is not int or not 0 <= now <= _TS_MAX:
        raise LocalProtocolError("now must be a non-negative integer of milliseconds")


def _check_plaintext(plaintext: bytes) -> bytes:
    if isinstance(plaintext, (bytearray, memoryview)):
        return bytes(plaintext)
    if not isinstance(plaintext, bytes):
        raise LocalProtocolError("can only seal bytes")
    return plaintext


def _make_nonce(now: int, direction: int, random_bytes: RandomBytes) -> bytes:
    rand = random_bytes(RANDOM_NONCE_BYTES)
    if not isinstance(rand, bytes) or len(rand) != RANDOM_NONCE_BYTES:
        raise LocalProtocolError(f"random_bytes({RANDOM_NONCE_BYTES}) returned the wrong size")
    return now.to_bytes(TS_BYTES, "big") + bytes((direction,)) + rand


def _make_box(key: MemberKey, peer: bytes) -> Any:
    """A Box from ``key`` to ``peer``; DecodeError if ``peer`` is no member id."""
    public = nacl.public.PublicKey(x25519_public(peer))
    try:
        return nacl.public.Box(key.x25519_private(), public)
    except nacl.exceptions.CryptoError:  # low-order point: no shared key
        raise DecodeError("member id gives no X25519 shared key") from None


def _local_box(key: MemberKey, peer: bytes) -> Any:
    if not isinstance(peer, bytes) or len(peer) != MEMBER_ID_BYTES:
        raise LocalProtocolError("a peer id is 32 bytes")
    try:
        return _make_box(key, peer)
    except DecodeError:
        raise LocalProtocolError("peer id is not a valid member key") from None


def _seal_box(box: Any, plaintext: bytes, nonce: bytes) -> bytes:
    ciphertext: bytes = box.encrypt(plaintext, nonce).ciphertext
    return ciphertext


def _open_box(box: Any, ciphertext: bytes, nonce: bytes, what: str) -> bytes:
    try:
        plaintext: bytes = box.decrypt(ciphertext, nonce)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise _refused("bad_box", f"{what} box does not open") from None
    return plaintext


def _decode(data: bytes, max_bytes: int, keys: frozenset[str], what: str) -> dict[str, Any]:
    """Size and shape checks shared by requests and responses."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise _refused("decode", f"{what} body must be bytes")
    if len(data) > max_bytes:
        raise _refused("too_large", f"{what} body of {len(data)} bytes > limit {max_bytes}")
    try:
        body = loads(data, max_bytes=max_bytes)
    except DecodeError as exc:
        # codec messages never quote the data
        raise _refused("decode", f"{what} body: {exc.message}") from None
    if type(body) is not dict:
        raise _refused("decode", f"{what} body must be a map")
    if body.keys() != keys:
        extra = sorted(k for k in body if k not in keys)
        missing = sorted(keys - body.keys())
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"{len(extra)} unexpected field(s)" if extra else "",
            )
            if part
        )
        raise _refused("decode", f"{what} body has the wrong fields ({detail})")
    ts = body["ts"]
    if type(ts) is not int or not 0 <= ts <= _TS_MAX:
        raise _refused("decode", f"{what} ts must be a non-negative 64-bit integer")
    nonce = body["nonce"]
    if type(nonce) is not bytes or len(nonce) != NONCE_BYTES:
        raise _refused("decode", f"{what} nonce must be {NONCE_BYTES} bytes")
    box = body["box"]
    if type(box) is not bytes or len(box) < MAC_BYTES:
        raise _refused("decode", f"{what} box must be at least {MAC_BYTES} bytes")
    return body


def _check_time(ts: int, nonce: bytes, now: int, skew_ms: int, direction: int, what: str) -> None:
    if ts < now - skew_ms or ts > now + skew_ms:
        raise _refused("skew", f"{what} ts is {ts - now} ms from now, outside ±{skew_ms} ms")
    _check_nonce(ts, nonce, direction, what)


def _check_nonce(ts: int, nonce: bytes, direction: int, what: str) -> None:
    if nonce[:TS_BYTES] != ts.to_bytes(TS_BYTES, "big"):
        raise _refused("bad_nonce", f"{what} nonce does not start with its ts")
    if nonce[TS_BYTES] != direction:
        raise _refused("bad_nonce", f"{what} nonce is not marked as a {what}")


def _check_window(skew_ms: int, max_bytes: int) -> None:
    if type(skew_ms) is not int or skew_ms < 0:
        raise LocalProtocolError("skew_ms must be a non-negative integer")
    if type(max_bytes) is not int or max_bytes <= 0:
        raise LocalProtocolError("max_bytes must be a positive integer")


# --------------------------------------------------------------------------- boxes


class _Boxes:
    """Precomputed ``nacl.public.Box`` per peer (one X25519 scalar mult saved per message)."""

    __slots__ = ("_boxes", "_key", "_max")

    def __init__(self, key: MemberKey, max_peers: int) -> None:
        self._key = key
        self._max = max_peers
        self._boxes: dict[bytes, Any] = {}

    def get(self, peer: bytes) -> Any:
        """The Box for ``peer`` (32 bytes); DecodeError if it is not a valid member key."""
        box = self._boxes.get(peer)
        if box is None:
            box = _make_box(self._key, peer)
            if len(self._boxes) >= self._max:
                # bounded: drop the oldest (dicts keep insertion order)
                self._boxes.pop(next(iter(self._boxes)))
            self._boxes[bytes(peer)] = box
        return box

    def local(self, peer: bytes) -> Any:
        """Like :meth:`get` for a peer we chose ourselves: LocalProtocolError if bad."""
        if not isinstance(peer, bytes) or len(peer) != MEMBER_ID_BYTES:
            raise LocalProtocolError("a peer id is 32 bytes")
        try:
            return self.get(peer)
        except DecodeError:
            raise LocalProtocolError("peer id is not a valid member key") from None

    def __len__(self) -> int:
        return len(self._boxes)


# --------------------------------------------------------------------------- sealing


def _seal_request(
    box: Any, frm: bytes, to: bytes, plaintext: bytes, now: int, random_bytes: RandomBytes
) -> bytes:
    nonce = _make_nonce(now, _REQUEST, random_bytes)
    return dumps(
        {
            "from": frm,
            "to": to,
            "ts": now,
            "nonce": nonce,
            "box": _seal_box(box, plaintext, nonce),
        }
    )


def _seal_response(box: Any, plaintext: bytes, now: int, random_bytes: RandomBytes) -> bytes:
    nonce = _make_nonce(now, _RESPONSE, random_bytes)
    return dumps({"ts": now, "nonce": nonce, "box": _seal_box(box, plaintext, nonce)})


def _open_response(box: Any, data: bytes, now: int, skew_ms: int, max_bytes: int) -> bytes:
    body = _decode(data, max_bytes, _RESPONSE_KEYS, "response")
    _check_time(body["ts"], body["nonce"], now, skew_ms, _RESPONSE, "response")
    return _open_box(box, body["box"], body["nonce"], "response")


def seal(
    key: MemberKey,
    to: bytes,
    plaintext: bytes,
    now: int,
    random_bytes: RandomBytes = nacl.utils.random,
) -> bytes:
    """A request body from ``key``'s member to member ``to``, dated ``now`` (ms)."""
    _check_now(now)
    plaintext = _check_plaintext(plaintext)
    return _seal_request(_local_box(key, to), key.id, to, plaintext, now, random_bytes)


def seal_response(
    key: MemberKey,
    to: bytes,
    plaintext: bytes,
    now: int,
    random_bytes: RandomBytes = nacl.utils.random,
) -> bytes:
    """A response body from ``key``'s member to the requester ``to``, dated ``now``."""
    _check_now(now)
    plaintext = _check_plaintext(plaintext)
    return _seal_response(_local_box(key, to), plaintext, now, random_bytes)


def open_response(
    key: MemberKey,
    frm: bytes,
    data: bytes,
    now: int,
    skew_ms: int,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """The plaintext of a response from member ``frm`` to ``key``'s member.

    Checks size, shape, ``ts`` within ``skew_ms`` of ``now``, the nonce prefix
    and the Box; EnvelopeError otherwise. Responses keep no replay cache: they
    are only read as the answer to a request this node just sent.
    """
    _check_now(now)
    _check_window(skew_ms, max_bytes)
    return _open_response(_local_box(key, frm), data, now, skew_ms, max_bytes)


class Sealer:
    """Sender side: seals requests and opens their responses, with a Box per peer."""

    __slots__ = ("_boxes", "_key", "_random_bytes")

    def __init__(
        self,
        key: MemberKey,
        *,
        random_bytes: RandomBytes = nacl.utils.random,
        max_peers: int = DEFAULT_MAX_PEERS,
    ) -> None:
        if not isinstance(key, MemberKey):
            raise LocalProtocolError("Sealer needs a MemberKey")
        if type(max_peers) is not int or max_peers < 1:
            raise LocalProtocolError("max_peers must be a positive integer")
        self._key = key
        self._random_bytes = random_bytes
        self._boxes = _Boxes(key, max_peers)

    @property
    def id(self) -> MemberId:
        return self._key.id

    def seal(self, to: bytes, plaintext: bytes, now: int) -> bytes:
        """A request body to member ``to``, dated ``now`` (ms)."""
        _check_now(now)
        plaintext = _check_plaintext(plaintext)
        box = self._boxes.local(to)
        return _seal_request(box, self._key.id, to, plaintext, now, self._random_bytes)

    def seal_response(self, to: bytes, plaintext: bytes, now: int) -> bytes:
        """A response body to the requester ``to``, dated ``now`` (ms)."""
        _check_now(now)
        plaintext = _check_plaintext(plaintext)
        return _seal_response(self._boxes.local(to), plaintext, now, self._random_bytes)

    def open_response(
        self,
        frm: bytes,
        data: bytes,
        now: int,
        skew_ms: int,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> bytes:
        """The plaintext of a response from member ``frm`` (see :func:`open_response`)."""
        _check_now(now)
        _check_window(skew_ms, max_bytes)
        return _open_response(self._boxes.local(frm), data, now, skew_ms, max_bytes)

    def __repr__(self) -> str:
        return f"Sealer({short_id(self._key.id)}, peers={len(self._boxes)})"

    __str__ = __repr__

    def __reduce_ex__(self, protocol: object) -> Any:
        raise TypeError("Sealer cannot be pickled (it holds key material)")


# --------------------------------------------------------------------------- opening


class Opener:
    """Receiver side: opens request bodies addressed to ``key``'s member.

    ``is_member(sender_id)`` says whether a sender is an active member now.
    ``skew_ms`` is the accepted distance between a message's ``ts`` and ``now``,
    ``max_bytes`` the largest body accepted. Nonces are remembered per sender
    for the skew window (time-bucketed, so pruning is cheap); beyond
    ``max_nonces`` live nonces new messages are refused as ``busy``.

    The window never moves backwards: if ``now`` goes back (clock step), a
    ``ts`` older than the latest ``now - skew_ms`` already seen is still
    refused, as its nonce may have been pruned.
    """

    __slots__ = (
        "_bucket_ms",
        "_buckets",
        "_floor",
        "_is_member",
        "_key",
        "_live",
        "_max_bytes",
        "_max_nonces",
        "_sealer",
        "_skew_ms",
    )

    def __init__(
        self,
        key: MemberKey,
        *,
        is_member: Callable[[bytes], bool],
        skew_ms: int,
        max_bytes: int,
        max_nonces: int = DEFAULT_MAX_NONCES,
        random_bytes: RandomBytes = nacl.utils.random,
        max_peers: int = DEFAULT_MAX_PEERS,
    ) -> None:
        _check_window(skew_ms, max_bytes)
        if type(max_nonces) is not int or max_nonces < 1:
            raise LocalProtocolError("max_nonces must be a positive integer")
        self._sealer = Sealer(key, random_bytes=random_bytes, max_peers=max_peers)
        self._key = key
        self._is_member = is_member
        self._skew_ms = skew_ms
        self._max_bytes = max_bytes
        self._max_nonces = max_nonces
        # ts // bucket_ms -> {sender + nonce}; the nonce holds ts, so a given
        # (sender, nonce) always falls in the same bucket.
        self._bucket_ms = max(1, skew_ms // 16)
        self._buckets: dict[int, set[bytes]] = {}
        self._live = 0
        self._floor = 0  # highest now - skew_ms seen

    @property
    def id(self) -> MemberId:
        return self._key.id

    @property
    def sealer(self) -> Sealer:
        """A Sealer sharing this Opener's key and Box cache (for the node's own requests)."""
        return self._sealer

    @property
    def live_nonces(self) -> int:
        """How many nonces the replay cache holds."""
        return self._live

    def seal_response(self, to: bytes, plaintext: bytes, now: int) -> bytes:
        """A response body to the requester ``to`` (as returned by :meth:`open`)."""
        return self._sealer.seal_response(to, plaintext, now)

    def _prune(self, now: int) -> None:
        floor = now - self._skew_ms
        if floor <= self._floor:
            return
        self._floor = floor
        # a bucket is dropped once every ts it can hold is below the floor
        limit = floor // self._bucket_ms  # buckets < limit end before floor
        stale = [b for b in self._buckets if b < limit]
        for b in stale:
            self._live -= len(self._buckets.pop(b))

    def open(self, data: bytes, now: int) -> tuple[MemberId, bytes]:
        """``(sender, plaintext)`` of a request body; EnvelopeError if refused."""
        _check_now(now)
        body = _decode(data, self._max_bytes, _REQUEST_KEYS, "request")
        frm = body["from"]
        to = body["to"]
        if type(frm) is not bytes or len(frm) != MEMBER_ID_BYTES:
            raise _refused("decode", f"request from must be {MEMBER_ID_BYTES} bytes")
        if type(to) is not bytes or len(to) != MEMBER_ID_BYTES:
            raise _refused("decode", f"request to must be {MEMBER_ID_BYTES} bytes")
        if to != self._key.id:
            raise _refused("wrong_recipient", "request is addressed to another node")
        if not self._is_member(frm):
            raise _refused("not_member", "sender is not an active member")
        ts: int = body["ts"]
        nonce: bytes = body["nonce"]
        self._prune(now)
        if ts < self._floor or ts > now + self._skew_ms:
            raise _refused(
                "skew", f"request ts is {ts - now} ms from now, outside ±{self._skew_ms} ms"
            )
        _check_nonce(ts, nonce, _REQUEST, "request")
        seen = frm + nonce
        bucket = self._buckets.get(ts // self._bucket_ms)
        if bucket is not None and seen in bucket:
            raise _refused("replay", "request nonce already seen")
        if self._live >= self._max_nonces:
            raise _refused("busy", "too many requests in the replay window")
        try:
            box = self._sealer._boxes.get(frm)
        except DecodeError:
            raise _refused("bad_box", "sender id is not a valid X25519 key") from None
        plaintext = _open_box(box, body["box"], nonce, "request")
        # recorded only once the Box opened: a forgery cannot burn a genuine nonce
        if bucket is None:
            bucket = self._buckets[ts // self._bucket_ms] = set()
        bucket.add(seen)
        self._live += 1
        return MemberId(frm), plaintext

    def __repr__(self) -> str:
        return (
            f"Opener({short_id(self._key.id)}, skew_ms={self._skew_ms}, "
            f"max_bytes={self._max_bytes}, live_nonces={self._live})"
        )

    __str__ = __repr__

    def __reduce_ex__(self, protocol: object) -> Any:
        raise TypeError("Opener cannot be pickled (it holds key material)")
