"""The watchlist and alert part of the local API's OpenAPI document (DESIGN §14).

:func:`add_alert_documents` adds the schemas and paths to the document that
:func:`node.openapi.openapi_document` builds; ``docs/api.md`` is generated from
the whole.
"""

from __future__ import annotations

from typing import Any

from contracts.indicators import KINDS
from node.alerts import DEFAULT_WATCH_TTL_DAYS, MAX_WATCH_TTL_DAYS
from node.openapi_parts import errors as _errors
from node.openapi_parts import items_body
from node.openapi_parts import json_content as _json
from node.openapi_parts import query_param as _param
from node.openapi_parts import ref as _ref
from protocol.entries import MAX_REF_CHARS

__all__ = ["add_alert_documents"]


def add_alert_documents(
    schemas: dict[str, Any], paths: dict[str, Any], auth: list[dict[str, list[str]]]
) -> None:
    """Add the watch and alert schemas and paths; a query item's ``ref``; and the
    ``alerts`` part of ``Status``."""
    kind = {"type": "string", "enum": sorted(KINDS)}
    ref = {
        "type": "string",
        "maxLength": MAX_REF_CHARS,
        "description": "your own case id, given back in alerts",
    }
    time = {"type": "string", "format": "date-time"}
    # a query item with a bad ref is refused in its own slot of the 200, like a bad value
    schemas["QueryItem"].setdefault("properties", {})["ref"] = {
        "type": "string",
        "maxLength": MAX_REF_CHARS,
        "description": f"your own case id (at most {MAX_REF_CHARS} characters, else this "
        "item's result is an error): the value is watched for alerts.recent_query_hours and "
        "an alert on it carries this ref",
    }
    schemas["Status"].setdefault("properties", {})["alerts"] = _ref("AlertStatus")
    schemas.update(
        {
            "WatchItem": {
                "type": "object",
                "required": ["kind", "value"],
                "additionalProperties": False,
                "properties": {
                    "kind": kind,
                    "value": {"type": "string"},
                    "ref": ref,
                    "ttl_days": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_WATCH_TTL_DAYS,
                        "default": DEFAULT_WATCH_TTL_DAYS,
                    },
                },
            },
            "UnwatchItem": {
                "type": "object",
                "required": ["kind", "value"],
                "additionalProperties": False,
                "properties": {
                    "kind": kind,
                    "value": {"type": "string"},
                    "ref": {
                        "type": "string",
                        "description": "only the watch with this ref (default: every ref)",
                    },
                },
            },
            "Watching": {
                "type": "object",
                "required": ["watching", "results"],
                "properties": {
                    "watching": {"type": "integer", "description": "items now watched"},
                    "results": {
                        "type": "array",
                        "description": "each item's current verdict (a retro-hunt), in order",
                        "items": _ref("Verdict"),
                    },
                },
            },
            "Unwatched": {
                "type": "object",
                "required": ["removed", "recent_queries"],
                "properties": {
                    "removed": {"type": "integer", "description": "watches removed"},
                    "recent_queries": {
                        "type": "integer",
                        "description": "recent queries of these values no longer watched",
                    },
                },
            },
            "Watches": {
                "type": "object",
                "required": [
                    "watching",
                    "by_kind",
                    "recent_queries",
                    "recent_query_hours",
                    "watches",
                    "next",
                ],
                "properties": {
                    "watching": {"type": "integer"},
                    "by_kind": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "recent_queries": {
                        "type": "integer",
                        "description": "values queried in the window, watched automatically",
                    },
                    "recent_query_hours": {"type": "integer"},
                    "watches": {"type": "array", "items": _ref("WatchView")},
                    "next": {
                        "type": ["integer", "null"],
                        "description": "pass as after for the next page",
                    },
                },
            },
            "WatchView": {
                "type": "object",
                "required": ["id", "kind", "ref", "since", "expires"],
                "additionalProperties": False,
                "description": "a watch: never its value",
                "properties": {
                    "id": {"type": "integer"},
                    "kind": kind,
                    "ref": {"type": ["string", "null"]},
                    "since": time,
                    "expires": time,
                },
            },
            "Alert": {
                "type": "object",
                "required": [
                    "id",
                    "at",
                    "event",
                    "kind",
                    "ref",
                    "value",
                    "source",
                    "verdict",
                    "entry",
                    "latency_ms",
                ],
                "additionalProperties": False,
                "properties": {
                    "id": {
                        "type": "integer",
                        "description": "only grows: deliveries are idempotent by id",
                    },
                    "at": time,
                    "event": {"enum": ["reported", "retracted"]},
                    "kind": kind,
                    "ref": {"type": ["string", "null"]},
                    "value": {
                        "type": "string",
                        "description": "the watched value (canonical); local API only",
                    },
                    "source": {"enum": ["watch", "recent_query"]},
                    "verdict": _ref("Verdict"),
                    "entry": {
                        "type": "object",
                        "required": ["log", "seq", "hash"],
                        "properties": {
                            "log": {"type": "string", "description": "the author's member id"},
                            "seq": {"type": "integer"},
                            "hash": {"type": "string"},
                        },
                    },
                    "latency_ms": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "from the entry's time to the alert here",
                    },
                },
            },
            "Alerts": {
                "type": "object",
                "required": ["alerts", "next"],
                "properties": {
                    "alerts": {"type": "array", "items": _ref("Alert")},
                    "next": {
                        "type": "integer",
                        "description": "pass as after to continue (the last id returned)",
                    },
                },
            },
            "AlertStatus": {
                "type": "object",
                "required": [
                    "watches",
                    "recent_queries",
                    "recent_query_hours",
                    "last_id",
                    "raised",
                    "retained",
                    "webhook",
                ],
                "properties": {
                    "watches": {"type": "integer"},
                    "recent_queries": {"type": "integer"},
                    "recent_query_hours": {"type": "integer"},
                    "last_id": {"type": "integer"},
                    "raised": {"type": "integer", "description": "since the node started"},
                    "retained": {"type": "integer"},
                    "webhook": {
                        "type": "object",
                        "required": ["target", "cursor", "pending", "delivered", "failures"],
                        "properties": {
                            "target": {
                                "type": ["string", "null"],
                                "description": "scheme, host and port (null: no webhook)",
                            },
                            "cursor": {"type": "integer"},
                            "pending": {"type": "integer"},
                            "delivered": {"type": "integer"},
                            "failures": {"type": "integer"},
                            "consecutive_failures": {"type": "integer"},
                            "last_error": {"type": ["string", "null"]},
                            "last_delivery": {"type": ["string", "null"], "format": "date-time"},
                            "retry_at": {"type": ["string", "null"], "format": "date-time"},
                        },
                    },
                },
            },
        }
    )
    after = _param(
        "after",
        {"type": "integer", "minimum": 0, "maximum": 2**62},
        "the last alert id already handled (default 0: every alert kept)",
    )
    paths["/v1/watches"] = {
        "post": {
            "operationId": "watches_add",
            "summary": "Watch values (all or nothing): alerts when they are reported or "
            "retracted; answers each one's current verdict",
            "security": auth,
            "requestBody": items_body("WatchItem", max_items=10_000),
            "responses": {
                "201": {"description": "Watched", "content": _json(_ref("Watching"))},
                **_errors(400, 401, 403, 409, 413, 422),
            },
        },
        "delete": {
            "operationId": "watches_remove",
            "summary": "Stop watching values (and their recent queries)",
            "security": auth,
            "requestBody": items_body("UnwatchItem", max_items=10_000),
            "responses": {
                "200": {"description": "Removed", "content": _json(_ref("Unwatched"))},
                **_errors(400, 401, 403, 413, 422),
            },
        },
        "get": {
            "operationId": "watches",
            "summary": "Counts and refs of the watches, never their values",
            "security": auth,
            "parameters": [
                _param(
                    "after",
                    {"type": "integer", "minimum": 0, "maximum": 2**62},
                    "the last watch id seen",
                ),
                _param("limit", {"type": "integer", "minimum": 1, "maximum": 10_000}, "page"),
            ],
            "responses": {
                "200": {"description": "Watches", "content": _json(_ref("Watches"))},
                **_errors(400, 401, 403),
            },
        },
    }
    paths["/v1/alerts"] = {
        "get": {
            "operationId": "alerts",
            "summary": "Alerts after an id, in id order; waits up to wait seconds for one",
            "security": auth,
            "parameters": [
                after,
                _param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most"),
                _param(
                    "wait",
                    {"type": "number", "minimum": 0, "maximum": 60},
                    "long poll: seconds to wait when there is no alert yet (default 0)",
                ),
            ],
            "responses": {
                "200": {"description": "Alerts", "content": _json(_ref("Alerts"))},
                **_errors(400, 401, 403),
            },
        }
    }
    paths["/v1/alerts/stream"] = {
        "get": {
            "operationId": "alerts_stream",
            "summary": "Server-Sent Events: every alert after Last-Event-ID (or after), "
            "then each new one; the event id is the alert id, the data the alert",
            "security": auth,
            "parameters": [
                after,
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "resume after this alert id (wins over after)",
                },
            ],
            "responses": {
                "200": {
                    "description": "An endless event stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **_errors(400, 401, 403),
            },
        }
    }
