"""Strict canonical CBOR, the only encoding riskmesh puts on the wire.

:func:`dumps` produces exactly the bytes of ``cbor2.dumps(obj, canonical=True)``
after checking that the object only holds what the protocol allows:

* ``None``, ``bool``, integers in ``[-2**64, 2**64 - 1]``, ``bytes``, ``str``;
* arrays (``list`` or ``tuple``);
* maps whose keys are all text, or all integers (COSE header maps);
* ``cbor2.CBORTag`` with tag 18 (COSE_Sign1) or 98 (COSE_Sign);
* at most :data:`MAX_DEPTH` nested containers (arrays, maps and tags).

:func:`loads` accepts exactly the byte strings :func:`dumps` can produce and
refuses everything else with a :class:`~contracts.errors.DecodeError`. It costs
one cbor2 decode, one walk over the decoded value and one re-encode (the
canonical check). Arrays always come back as ``list`` and maps as ``dict``,
also inside tags (cbor2 6 decodes tag contents as tuples and frozendicts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, cast

import cbor2

from contracts.errors import DecodeError, LocalProtocolError

__all__ = [
    "ALLOWED_TAGS",
    "DEFAULT_MAX_BYTES",
    "MAX_DEPTH",
    "decode_only",
    "dumps",
    "encode_only",
    "loads",
    "obj_hash",
]

DEFAULT_MAX_BYTES: Final = 4 * 1024 * 1024
MAX_DEPTH: Final = 16
ALLOWED_TAGS: Final = frozenset({18, 98})

_INT_MIN: Final = -(2**64)
_INT_MAX: Final = 2**64 - 1


# --------------------------------------------------------------------------- key order

# Canonical map order (what ``cbor2.dumps(canonical=True)`` produces): keys sorted by
# the length of their encoding, then bytewise. Checking and fixing the order ourselves
# and then encoding with ``canonical=False`` gives the same bytes about 3x faster,
# because cbor2's canonical mode re-encodes every key of every map to sort it.
# The order of each key tuple seen is remembered in a small bounded cache (the
# protocol's maps come in a handful of shapes). Only maps whose key types were
# already checked (all text, or all non-bool ints) reach it, so ``1 == True``
# cannot collide.
_KEY_ORDER_CACHE_MAX: Final = 1024
_KEY_ORDER_CACHE_MAX_LEN: Final = 16  # larger maps are sorted every time, never cached
# key tuple -> None if already in canonical order, else the keys in canonical order
_key_orders: dict[tuple[Any, ...], tuple[Any, ...] | None] = {}


def _key_sort(key: Any) -> tuple[int, bytes]:
    enc = key.encode("utf-8") if type(key) is str else cbor2.dumps(key)
    return (len(enc), enc)


def _canonical_order(node: Mapping[Any, Any]) -> tuple[Any, ...] | None:
    """None if the keys of ``node`` are in canonical order, else that order."""
    if len(node) < 2:
        return None
    keys = tuple(node)
    try:
        return _key_orders[keys]
    except KeyError:
        pass
    ordered = tuple(sorted(keys, key=_key_sort))
    order = None if ordered == keys else ordered
    if len(keys) <= _KEY_ORDER_CACHE_MAX_LEN:
        if len(_key_orders) >= _KEY_ORDER_CACHE_MAX:
            _key_orders.clear()
        _key_orders[keys] = order
    return order


# --------------------------------------------------------------------------- encoding


def _encode_error(message: str) -> LocalProtocolError:
    return LocalProtocolError(f"cannot encode: {message}", reason="encode_error")


_PLAIN_TYPES: Final = frozenset({str, bytes, bool, type(None)})


def _prepare(obj: object, depth: int) -> object:
    """Check ``obj`` is inside the protocol's CBOR subset; return it with maps in order.

    Returns ``obj`` itself unless some map below it had to be re-ordered, in which
    case the containers on the way are copied (the caller's objects are never changed).
    ``depth`` is the number of containers enclosing ``obj``.
    """
    kind = type(obj)
    if kind in _PLAIN_TYPES:
        return obj
    if kind is int:
        if not _INT_MIN <= cast(int, obj) <= _INT_MAX:
            raise _encode_error("integer outside the 64-bit CBOR range")
        return obj
    if isinstance(obj, dict):
        if depth >= MAX_DEPTH:
            raise _encode_error(f"nesting deeper than {MAX_DEPTH}")
        _check_keys(obj, _encode_error)
        try:
            order = _canonical_order(obj)
        except (UnicodeError, cbor2.CBORError):
            raise _encode_error("map key cannot be encoded") from None
        changed: dict[Any, Any] | None = None
        for key, value in obj.items():
            vt = type(value)
            if vt in _PLAIN_TYPES:
                continue
            if vt is int:  # the common case, checked here without a call
                if not _INT_MIN <= value <= _INT_MAX:
                    raise _encode_error("integer outside the 64-bit CBOR range")
                continue
            new = _prepare(value, depth + 1)
            if new is not value:
                if changed is None:
                    changed = {}
                changed[key] = new
        if order is None and changed is None:
            return obj
        new_values = changed or {}
        keys = obj if order is None else order
        return {k: new_values[k] if k in new_values else obj[k] for k in keys}
    if isinstance(obj, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise _encode_error(f"nesting deeper than {MAX_DEPTH}")
        copy: list[Any] | None = None
        for i, item in enumerate(obj):
            if type(item) in _PLAIN_TYPES:
                continue
            new = _prepare(item, depth + 1)
            if new is not item:
                if copy is None:
                    copy = list(obj)
                copy[i] = new
        return obj if copy is None else copy
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag not in ALLOWED_TAGS:
            raise _encode_error(f"tag {obj.tag} not allowed")
        if depth >= MAX_DEPTH:
            raise _encode_error(f"nesting deeper than {MAX_DEPTH}")
        value = _prepare(obj.value, depth + 1)
        return obj if value is obj.value else cbor2.CBORTag(obj.tag, value)
    if isinstance(obj, (str, bytes, bool)):  # subclasses, e.g. StrEnum
        return obj
    if isinstance(obj, int):  # subclasses, e.g. IntEnum
        if not _INT_MIN <= obj <= _INT_MAX:
            raise _encode_error("integer outside the 64-bit CBOR range")
        return obj
    if isinstance(obj, float):
        raise _encode_error("floats are not allowed")
    raise _encode_error(f"type {kind.__name__} not allowed")


def _is_int_key(key: object) -> bool:
    return isinstance(key, int) and not isinstance(key, bool)


def _check_keys(
    obj: Mapping[Any, Any], error: Callable[[str], LocalProtocolError | DecodeError]
) -> None:
    """Map keys must be all text, or all (non-bool) integers."""
    for key in obj:
        if type(key) is not str:
            break
    else:
        return
    if all(isinstance(k, str) for k in obj):
        return
    if all(_is_int_key(k) for k in obj):
        if any(not _INT_MIN <= k <= _INT_MAX for k in obj):
            raise error("integer map key outside the 64-bit CBOR range")
        return
    if all(isinstance(k, str) or _is_int_key(k) for k in obj):
        raise error("map mixes text and integer keys")
    raise error("map key is not text")


def dumps(obj: object) -> bytes:
    """Encode ``obj`` as canonical CBOR; LocalProtocolError if it is outside the subset.

    The bytes are exactly ``cbor2.dumps(obj, canonical=True)``.
    """
    prepared = _prepare(obj, 0)
    try:
        return cbor2.dumps(prepared)
    except Exception as exc:
        raise _encode_error(f"cbor2 refused the object ({type(exc).__name__})") from None


def obj_hash(data: bytes) -> bytes:
    """BLAKE2b-256 of encoded bytes (the id of an encoded object)."""
    return hashlib.blake2b(data, digest_size=32).digest()


# --------------------------------------------------------------------------- decoding


class _RefusedTag:
    """Stands in for a tag other than 18/98 until the walk reports it."""

    __slots__ = ("tag",)

    def __init__(self, tag: int) -> None:
        self.tag = tag


def _keep_tag(tag: int) -> Callable[[Any, bool], Any]:
    def decode(value: Any, immutable: bool) -> Any:
        return cbor2.CBORTag(tag, value)

    return decode


_KEEP_DECODERS: Final = {tag: _keep_tag(tag) for tag in ALLOWED_TAGS}


def _refuse_tag(tag: int) -> Callable[[Any, bool], Any]:
    def decode(value: Any, immutable: bool) -> Any:
        return _RefusedTag(tag)

    return decode


# Tags cbor2 6 decodes on its own (datetime, bignum, decimal, sharing, UUID, set, ...).
# Listed so that even a cbor2 that copied the mapping instead of looking tags up in it
# would have its built-in semantic decoders overridden.
_BUILTIN_TAGS: Final = (
    *range(0, 6),
    *range(21, 38),
    100,
    256,
    258,
    260,
    261,
    262,
    263,
    270,
    1004,
    55799,
)


class _TagDecoders(Mapping[int, Callable[[Any, bool], Any]]):
    """Semantic decoders for *every* tag: keep 18/98 as CBORTag, mark the rest refused.

    cbor2 6 looks tags up in this mapping lazily (``__getitem__``), so no built-in
    semantic decoding (datetime, bignum, decimal, shared references...) ever runs.
    """

    def __getitem__(self, tag: int) -> Callable[[Any, bool], Any]:
        if type(tag) is not int:
            raise KeyError(tag)
        keep = _KEEP_DECODERS.get(tag)
        if keep is not None:
            return keep
        return _refuse_tag(tag)

    def __contains__(self, tag: object) -> bool:
        return type(tag) is int

    def __iter__(self) -> Iterator[int]:
        return iter((*_BUILTIN_TAGS, *sorted(ALLOWED_TAGS)))

    def __len__(self) -> int:
        return len(_BUILTIN_TAGS) + len(ALLOWED_TAGS)


_TAG_DECODERS: Final = _TagDecoders()


def _tag_hook(tag: cbor2.CBORTag, immutable: bool) -> Any:
    # Fallback only: _TAG_DECODERS already covers every tag.
    if tag.tag in ALLOWED_TAGS:
        return tag
    return _RefusedTag(tag.tag)


def _decode_error_from_cbor2(exc: Exception) -> DecodeError:
    """Translate a cbor2 exception, never repeating its message (it may quote data)."""
    if isinstance(exc, (cbor2.CBORDecodeEOF, EOFError)):
        return DecodeError("truncated CBOR")
    text = str(exc).lower()
    if "indefinite" in text:
        return DecodeError("indefinite length items are not allowed")
    if "duplicate" in text:
        return DecodeError("duplicate map key")
    if "depth" in text or isinstance(exc, RecursionError):
        return DecodeError(f"too deep: nesting deeper than {MAX_DEPTH}")
    if "text string" in text or isinstance(exc, UnicodeDecodeError):
        return DecodeError("text string is not valid UTF-8")
    return DecodeError(f"malformed CBOR ({type(exc).__name__})")


def _too_deep() -> DecodeError:
    return DecodeError(f"too deep: nesting deeper than {MAX_DEPTH}")


# Integers need no range check here: CBOR major types 0/1 cannot leave
# [-2**64, 2**64 - 1], and bignums (tags 2/3) are refused as tags.
_DECODED_PLAIN_TYPES: Final = frozenset({str, bytes, bool, int, type(None)})


def _walk(node: Any, depth: int) -> Any:
    """Check a decoded value; returns it with tuples/frozendicts turned into lists/dicts.

    ``depth`` is the number of containers enclosing ``node``.
    """
    kind = type(node)
    if kind in _DECODED_PLAIN_TYPES:
        return node
    if kind is list:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        for i, item in enumerate(node):
            if type(item) in _DECODED_PLAIN_TYPES:
                continue
            new = _walk(item, depth + 1)
            if new is not item:
                node[i] = new
        return node
    if kind is dict:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        _check_decoded_keys(node)
        for key, value in node.items():
            if type(value) in _DECODED_PLAIN_TYPES:
                continue
            new = _walk(value, depth + 1)
            if new is not value:
                node[key] = new  # replacing a value does not change the key set
        return node
    if kind is tuple:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        return [_walk(item, depth + 1) for item in node]
    if kind is cbor2.CBORTag:
        if node.tag not in ALLOWED_TAGS:  # pragma: no cover - only via the tag_hook path
            raise DecodeError(f"tag {node.tag} not allowed")
        if depth >= MAX_DEPTH:
            raise _too_deep()
        return cbor2.CBORTag(node.tag, _walk(node.value, depth + 1))
    if kind is _RefusedTag:
        raise DecodeError(f"tag {node.tag} not allowed")
    if kind is float:
        raise DecodeError("floats are not allowed")
    if isinstance(node, Mapping):  # cbor2.frozendict inside tags
        if depth >= MAX_DEPTH:
            raise _too_deep()
        _check_decoded_keys(node)
        return {key: _walk(value, depth + 1) for key, value in node.items()}
    if kind is cbor2.CBORSimpleValue or node is cbor2.undefined:
        raise DecodeError("simple values other than false/true/null are not allowed")
    raise DecodeError(f"decoded value of type {kind.__name__} not allowed")


def _check_decoded_keys(node: Mapping[Any, Any]) -> None:
    for key in node:
        if type(key) is not str:
            _check_keys(node, DecodeError)
            break
    if _canonical_order(node) is not None:
        raise DecodeError("not canonical CBOR: map keys out of order")


def decode_only(data: bytes | memoryview) -> Any:
    """The first step of :func:`loads` alone: cbor2's decode with the same options.

    No tag but 18 and 98 is decoded (any other becomes a marker object), no
    indefinite lengths, no duplicate map keys, nesting at most :data:`MAX_DEPTH`;
    a refusal is a DecodeError (with the message :func:`loads` would give).
    It decodes the first item and ignores any bytes after it. Nothing else is
    checked: a decoder of a known shape that uses this must
    itself check every value's exact type (``int``, ``str``, ``bytes``,
    ``None``, ``list``, ``dict``: no floats, markers, ``bool`` where an
    integer is meant), every map's key order, and that
    ``encode_only(value) == data`` -- then ``loads(data)`` is ``value``.
    """
    try:
        return cbor2.loads(
            data,
            semantic_decoders=_TAG_DECODERS,
            tag_hook=_tag_hook,
            max_depth=MAX_DEPTH,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        )
    except Exception as exc:
        raise _decode_error_from_cbor2(exc) from None


def encode_only(value: Any) -> bytes:
    """The encoding of an already checked value (the last step of :func:`loads`).

    Maps are written in their own order and nothing is checked, so only for
    values decoded by :func:`decode_only` and checked as it says.
    """
    return cbor2.dumps(value)


def loads(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Decode strict canonical CBOR; every refusal is a DecodeError."""
    if not isinstance(data, bytes):
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        else:
            raise DecodeError(f"expected bytes, got {type(data).__name__}")
    size = len(data)
    if size == 0:
        raise DecodeError("empty input")
    if size > max_bytes:
        raise DecodeError(f"too large: {size} bytes > limit {max_bytes}")
    value = _walk(decode_only(data), 0)
    try:
        # The walk checked every map's key order, so a plain encode is the canonical one.
        canonical = cbor2.dumps(value)
    except Exception as exc:  # pragma: no cover - the walk leaves only encodable values
        raise DecodeError(f"cannot re-encode ({type(exc).__name__})") from None
    if canonical != data:
        if len(canonical) < size and data.startswith(canonical):
            raise DecodeError(f"trailing bytes: {size - len(canonical)} after the item")
        raise DecodeError("not canonical CBOR")
    return value
