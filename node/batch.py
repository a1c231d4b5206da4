"""The shape of what the member's platforms send: batches of items, and objects with
known fields. Shared by the :class:`~node.core.Node` and its parts (alerts, after the
match) and the local API; every refusal is a :class:`RequestRefused` with its reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.errors import RequestRefused
from protocol.entries import Entry

__all__ = ["ReportResult", "check_batch", "check_fields", "fields_of"]


@dataclass(frozen=True, slots=True)
class ReportResult:
    """A batch published: how many items, in which entry of this member's feed."""

    accepted: int
    entry: Entry


def check_batch(items: Sequence[Any], max_items: int, what: str) -> None:
    """A batch carries at least one item and at most ``max_items``."""
    if not items:
        raise RequestRefused("empty_batch", f"{what} carries at least one item")
    if len(items) > max_items:
        raise RequestRefused(
            "batch_too_large", f"{len(items)} items; at most {max_items} in {what}"
        )


def check_fields(obj: Mapping[Any, Any], allowed: frozenset[str]) -> None:
    """No field but ``allowed`` (keys of any type are named, never compared)."""
    extra = set(obj) - allowed
    if extra:
        raise RequestRefused("unknown_field", f"unknown fields {sorted(map(str, extra))}")


def fields_of(body: Any, allowed: frozenset[str], what: str) -> dict[str, Any]:
    """``body`` as an object with no fields but ``allowed``."""
    if not isinstance(body, dict):
        raise RequestRefused("bad_request", f"request body must be an object ({what})")
    check_fields(body, allowed)
    return body
