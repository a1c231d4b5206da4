"""The building blocks of the local API's OpenAPI document, shared by its parts
(:mod:`node.openapi`, :mod:`node.openapi_alerts`)."""

from __future__ import annotations

from typing import Any

__all__ = ["errors", "items_body", "json_content", "query_param", "ref"]

#: what each error status means on the local API (the body says exactly why)
ERROR_TEXT = {
    400: "Bad request (the code names what is wrong)",
    401: "Missing or unknown API key",
    403: "Wrong scope",
    404: "Not found",
    409: "Node not ready (no charter or no key)",
    413: "Body or batch too large",
    422: "Invalid items (or a warning-listed value); nothing done",
    429: "Over the policy's quota of disputes or appeals per 24 hours",
    503: "Not ready; the message says why",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    """The same schema in JSON and in CBOR."""
    return {"application/json": {"schema": schema}, "application/cbor": {"schema": schema}}


def errors(*codes: int) -> dict[str, Any]:
    return {
        str(c): {"description": ERROR_TEXT[c], "content": json_content(ref("Error"))} for c in codes
    }


def query_param(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        p["description"] = description
    return p


def items_body(item: str, *, max_items: int | None = None) -> dict[str, Any]:
    """A request body ``{"items": [item, ...]}`` of at least one item."""
    items: dict[str, Any] = {"type": "array", "minItems": 1, "items": ref(item)}
    if max_items is not None:
        items["maxItems"] = max_items
        items["description"] = f"at most api.max_batch ({max_items:,} by default)".replace(",", " ")
    return {
        "required": True,
        "content": json_content(
            {"type": "object", "required": ["items"], "properties": {"items": items}}
        ),
    }
