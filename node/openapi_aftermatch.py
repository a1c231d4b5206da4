"""The OpenAPI part for sightings, disputes and appeals (DESIGN §15), merged into
:func:`node.openapi.openapi_document` (which passes its own helpers in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.taxonomy import APPEAL_DECISIONS, DISPUTE_REASONS
from protocol.appeals import MAX_CASE_REF_CHARS, MAX_GROUNDS_CHARS, MAX_NOTE_CHARS

__all__ = ["VERDICT_FIELDS", "after_match_paths", "after_match_schemas"]

Schema = dict[str, Any]

#: What a matching verdict adds (contracts/confidence.py, node/aftermatch.py).
VERDICT_FIELDS: Schema = {
    "sightings": {
        "type": "integer",
        "minimum": 0,
        "description": "Members with a live sighting (seen) of the value",
    },
    "disputes": {
        "type": "integer",
        "minimum": 0,
        "description": "Members with a live dispute of the value",
    },
    "under_appeal": {
        "type": "boolean",
        "description": "A data subject's appeal awaits a reporter's decision",
    },
    "appeal_overdue": {
        "type": "boolean",
        "description": "An appeal is past the policy's appeal_days undecided",
    },
    "confidence": {
        "type": "integer",
        "minimum": 0,
        "maximum": 100,
        "description": "Severity, reporters, sightings, disputes and age; docs/protocol.md",
    },
}


def after_match_schemas(kind: Schema, ref: Callable[[str], Schema]) -> dict[str, Schema]:
    ttl = {
        "type": "integer",
        "minimum": 1,
        "description": "days until it lapses (default 365, at most the longest report TTL)",
    }
    when = {"type": "string", "format": "date-time"}
    return {
        "SightingItem": {
            "type": "object",
            "required": ["kind", "value"],
            "additionalProperties": False,
            "properties": {"kind": kind, "value": {"type": "string"}, "ttl_days": ttl},
        },
        "DisputeItem": {
            "type": "object",
            "required": ["kind", "value", "reason"],
            "additionalProperties": False,
            "properties": {
                "kind": kind,
                "value": {"type": "string"},
                "reason": {"type": "string", "enum": list(DISPUTE_REASONS)},
                "ttl_days": ttl,
            },
        },
        "AppealRequest": {
            "type": "object",
            "required": ["kind", "value", "case_ref", "grounds"],
            "additionalProperties": False,
            "properties": {
                "kind": kind,
                "value": {"type": "string", "description": "the data subject's identifier"},
                "case_ref": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_CASE_REF_CHARS,
                    "description": "your case id; sealed, for the reporters only",
                },
                "grounds": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_GROUNDS_CHARS,
                    "description": "what the subject says; sealed, for the reporters only",
                },
            },
        },
        "AppealFiled": {
            "type": "object",
            "required": ["id", "kind", "case_ref", "filed", "deadline", "entry"],
            "properties": {
                "id": {"type": "string", "description": "16 hex digits"},
                "kind": kind,
                "case_ref": {"type": "string"},
                "filed": when,
                "deadline": when,
                "entry": ref("Entry"),
            },
        },
        "Entry": {
            "type": "object",
            "required": ["seq", "hash"],
            "properties": {"seq": {"type": "integer"}, "hash": {"type": "string"}},
        },
        "InboundAppeal": {
            "type": "object",
            "required": [
                "id",
                "kind",
                "appellant",
                "case_ref",
                "grounds",
                "filed",
                "deadline",
                "status",
                "overdue",
            ],
            "properties": {
                "id": {"type": "string"},
                "kind": kind,
                "appellant": {"type": "string", "description": "the member that filed it"},
                "case_ref": {"type": "string"},
                "grounds": {"type": "string"},
                "filed": when,
                "deadline": when,
                "status": {"enum": ["open", "upheld", "rejected", "withdrawn"]},
                "overdue": {"type": "boolean"},
                "decided": when,
            },
        },
        "OutboundAppeal": {
            "type": "object",
            "required": [
                "id",
                "kind",
                "case_ref",
                "filed",
                "deadline",
                "status",
                "pending",
                "upheld",
                "rejected",
                "notes",
            ],
            "properties": {
                "id": {"type": "string"},
                "kind": kind,
                "case_ref": {"type": "string"},
                "filed": when,
                "deadline": when,
                "status": {"enum": ["open", "decided", "withdrawn"]},
                "pending": {
                    "type": "integer",
                    "description": "reporters yet to decide (counted, never named)",
                },
                "upheld": {"type": "integer"},
                "rejected": {"type": "integer"},
                "notes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["received", "decision", "note"],
                        "properties": {
                            "received": when,
                            "decision": {"enum": list(APPEAL_DECISIONS)},
                            "note": {"type": "string"},
                        },
                    },
                },
            },
        },
        "Appeals": {
            "type": "object",
            "required": ["inbound", "outbound"],
            "properties": {
                "inbound": {"type": "array", "items": ref("InboundAppeal")},
                "outbound": {"type": "array", "items": ref("OutboundAppeal")},
            },
        },
        "DecisionRequest": {
            "type": "object",
            "required": ["decision"],
            "additionalProperties": False,
            "properties": {
                "decision": {"enum": list(APPEAL_DECISIONS)},
                "note": {
                    "type": "string",
                    "maxLength": MAX_NOTE_CHARS,
                    "description": "sealed to the appellant's node",
                },
            },
        },
        "Decision": {
            "type": "object",
            "required": ["id", "decision", "retracted", "entry"],
            "properties": {
                "id": {"type": "string"},
                "decision": {"enum": list(APPEAL_DECISIONS)},
                "retracted": {"type": "integer", "description": "reports retracted (upheld)"},
                "entry": ref("Entry"),
            },
        },
    }


def after_match_paths(
    auth: list[dict[str, list[str]]],
    json_: Callable[[Schema], Schema],
    ref: Callable[[str], Schema],
    errors: Callable[..., Schema],
) -> dict[str, Schema]:
    def batch(item: str) -> Schema:
        return json_(
            {
                "type": "object",
                "required": ["items"],
                "properties": {"items": {"type": "array", "minItems": 1, "items": ref(item)}},
            }
        )

    published = {
        "description": "Signed into this member's feed",
        "content": json_(ref("Published")),
    }
    return {
        "/v1/sightings": {
            "post": {
                "operationId": "sightings",
                "summary": "Corroborate other members' reports: we saw these in fraud too",
                "security": auth,
                "requestBody": {"required": True, "content": batch("SightingItem")},
                "responses": {"201": published, **errors(400, 401, 403, 409, 413, 422)},
            }
        },
        "/v1/disputes": {
            "post": {
                "operationId": "disputes",
                "summary": "Dispute other members' reports: our evidence says otherwise",
                "security": auth,
                "requestBody": {"required": True, "content": batch("DisputeItem")},
                "responses": {"201": published, **errors(400, 401, 403, 409, 413, 422, 429)},
            }
        },
        "/v1/appeals": {
            "post": {
                "operationId": "appeals_file",
                "summary": "File a data subject's appeal; the case reaches the reporters sealed",
                "security": auth,
                "requestBody": {"required": True, "content": json_(ref("AppealRequest"))},
                "responses": {
                    "201": {"description": "Filed", "content": json_(ref("AppealFiled"))},
                    **errors(400, 401, 403, 409, 422, 429),
                },
            },
            "get": {
                "operationId": "appeals",
                "summary": "Appeals received as a reporter, and filed here",
                "security": auth,
                "responses": {
                    "200": {"description": "Appeals", "content": json_(ref("Appeals"))},
                    **errors(401, 403, 409),
                },
            },
        },
        "/v1/appeals/{id}/decision": {
            "post": {
                "operationId": "appeal_decision",
                "summary": "Decide an appeal received here: upheld retracts, rejected keeps",
                "security": auth,
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {"required": True, "content": json_(ref("DecisionRequest"))},
                "responses": {
                    "201": {"description": "Decided", "content": json_(ref("Decision"))},
                    **errors(400, 401, 403, 404, 409, 429),
                },
            }
        },
    }
