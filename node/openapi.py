"""The OpenAPI 3.1 document of the local API (a test checks it against the routes)."""

from __future__ import annotations

from typing import Any

from contracts.indicators import KINDS
from contracts.policy import DataPolicy
from contracts.taxonomy import CATEGORIES, RETRACT_REASONS
from node.openapi_aftermatch import VERDICT_FIELDS, after_match_paths, after_match_schemas
from node.openapi_alerts import add_alert_documents
from node.openapi_parts import errors as _errors
from node.openapi_parts import items_body
from node.openapi_parts import json_content as _json
from node.openapi_parts import query_param as _query
from node.openapi_parts import ref as _ref

__all__ = ["openapi_document"]


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


#: a value to report, retract, watch...: text with something besides white space
VALUE: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": "\\S"}
JOIN: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "contentEncoding": "base64",
    "description": "the join-request.cbor, base64 (bytes in CBOR)",
}
MEMBER: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "description": "a member's name, full id, or unambiguous id prefix",
}


def _action(name: str, fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["action", *required],
        "additionalProperties": False,
        "properties": {"action": {"const": name}, **fields},
    }


def openapi_document() -> dict[str, Any]:
    kind = {"type": "string", "enum": sorted(KINDS)}
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "items": {"type": "array", "items": _ref("ItemError")},
                    },
                }
            },
        },
        "ItemError": {
            "type": "object",
            "required": ["index", "code", "message"],
            "properties": {
                "index": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
            },
        },
        "QueryItem": {
            "type": "object",
            "required": ["kind", "value"],
            "properties": {"kind": kind, "value": {"type": "string"}},
        },
        "Verdict": {
            "type": "object",
            "required": ["match", "kind"],
            "properties": {
                "match": {"type": "boolean"},
                "kind": kind,
                "reporters": {"type": "integer", "minimum": 1},
                "reported_by": {"type": "array", "items": {"type": "string"}},
                "categories": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(CATEGORIES)},
                },
                "max_severity": {"type": "integer", "minimum": 1, "maximum": 5},
                "first_reported": {"type": "string", "format": "date-time"},
                "last_reported": {"type": "string", "format": "date-time"},
                "expires": {"type": "string", "format": "date-time"},
                **VERDICT_FIELDS,
            },
        },
        "QueryResult": {
            "oneOf": [
                _ref("Verdict"),
                {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
            ]
        },
        "ReportItem": {
            "type": "object",
            "required": ["kind", "value", "category"],
            "additionalProperties": False,
            "properties": {
                "kind": kind,
                "value": VALUE,
                "category": {"type": "string", "enum": list(CATEGORIES)},
                "severity": {"type": "integer", "minimum": 1, "maximum": 5, "default": 3},
                "ttl_days": {"type": "integer", "minimum": 1},
                "ref": {"type": "string", "maxLength": 64},
            },
        },
        "RetractItem": {
            "type": "object",
            "required": ["kind", "value", "reason"],
            "additionalProperties": False,
            "properties": {
                "kind": kind,
                "value": VALUE,
                "reason": {"type": "string", "enum": list(RETRACT_REASONS)},
                "of": {
                    "enum": ["report", "seen", "dispute", "appeal"],
                    "default": "report",
                    "description": "what of this member's to withdraw",
                },
            },
        },
        "Published": {
            "type": "object",
            "required": ["accepted", "entry"],
            "properties": {
                "accepted": {"type": "integer"},
                "entry": {
                    "type": "object",
                    "required": ["seq", "hash"],
                    "properties": {"seq": {"type": "integer"}, "hash": {"type": "string"}},
                },
            },
        },
        "Status": {
            "type": "object",
            "required": ["member", "version", "charter", "members", "epochs", "index", "peers"],
            "properties": {
                "version": _ref("Version"),
                "peers": {
                    "type": "array",
                    "description": "Gossip with each other member, as this node saw it",
                    "items": _ref("Peer"),
                },
                "catch_up": {
                    "description": "How far behind its peers this node is and how fast it "
                    "gains (null: current); see the operator guide, Catching up",
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "required": ["entries_behind", "entries_per_s", "ops_per_s", "eta_s"],
                            "properties": {
                                "entries_behind": {"type": "integer", "minimum": 1},
                                "entries_per_s": {"type": "number", "minimum": 0},
                                "ops_per_s": {"type": "number", "minimum": 0},
                                "eta_s": {"type": ["integer", "null"], "minimum": 0},
                            },
                        },
                    ],
                },
            },
        },
        "Version": {
            "type": "object",
            "required": ["riskmesh", "canonical_forms", "python"],
            "properties": {
                "riskmesh": {"type": "string", "description": "this build's version"},
                "canonical_forms": {"type": "integer", "description": "CANON_VERSION"},
                "python": {"type": "string"},
            },
        },
        "ApiKey": {
            "type": "object",
            "required": ["name", "scopes", "created", "last_used", "revoked"],
            "properties": {
                "name": {"type": "string"},
                "scopes": {
                    "type": "array",
                    "items": {"enum": ["query", "report", "watch", "admin"]},
                },
                "created": {"type": "string", "format": "date-time"},
                "last_used": {"type": ["string", "null"], "format": "date-time"},
                "revoked": {"type": ["string", "null"], "format": "date-time"},
                "key": {
                    "type": "string",
                    "description": "the new key itself: in the answer to create and rotate only",
                },
            },
        },
        "AuditRow": {
            "type": "object",
            "required": ["id", "ts", "actor", "action", "detail", "prev", "hash"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "integer"},
                "ts": {"type": "integer", "description": "ms since the epoch"},
                "actor": {"type": "string", "description": "the acting API key's name"},
                "action": {"type": "string"},
                "detail": {"type": "string", "description": "JSON: tokens, refs, ids"},
                "prev": {"type": "string", "description": "hash of the row before (hex)"},
                "hash": {"type": "string", "description": "this row's hash (hex)"},
            },
        },
        "OwnReport": {
            "type": "object",
            "required": [
                "token",
                "epoch",
                "kind",
                "category",
                "severity",
                "first_reported",
                "expires",
            ],
            "properties": {
                "token": {"type": "string"},
                "epoch": {"type": "integer"},
                "kind": kind,
                "category": {"type": "string", "enum": list(CATEGORIES)},
                "severity": {"type": "integer", "minimum": 1, "maximum": 5},
                "first_reported": {"type": "string", "format": "date-time"},
                "expires": {"type": "string", "format": "date-time"},
                "value": {
                    "type": ["string", "null"],
                    "description": "with values=true: the canonical raw value",
                },
            },
        },
        "Charter": {
            "type": "object",
            "required": ["consortium", "version", "hash", "anchor", "members", "epochs", "policy"],
        },
        "Proposal": {
            "type": "object",
            "required": ["id", "version", "status", "changes", "signers", "needed", "admins"],
            "properties": {
                "id": {"type": "string", "description": "16 hex digits"},
                "version": {"type": "integer"},
                "status": {"enum": ["new", "merged", "pending", "final", "superseded", "waiting"]},
                "signing_deadline": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "pending: a quorum must sign by then or it expires",
                },
                "changes": {"type": "array", "items": {"type": "string"}},
                "signers": {"type": "array", "items": {"type": "string"}},
                "needed": {"type": "integer"},
                "admins": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ProposalRequest": {
            "description": "One charter change; each action takes its own fields and no other",
            "oneOf": [
                _action(
                    "add-member",
                    {"join_request": JOIN, "admin": {"type": "boolean"}},
                    ["join_request"],
                ),
                _action("remove-member", {"member": MEMBER}, ["member"]),
                _action(
                    "rekey-member",
                    {"member": MEMBER, "join_request": JOIN},
                    ["member", "join_request"],
                ),
                _action("rotate-key", {}, []),
                _action(
                    "policy",
                    {
                        "set": {
                            "type": "object",
                            "minProperties": 1,
                            "propertyNames": {"enum": sorted(DataPolicy().to_map())},
                            "description": "policy fields to change",
                        }
                    },
                    ["set"],
                ),
            ],
        },
        "Peer": {
            "type": "object",
            "required": [
                "id",
                "name",
                "endpoint",
                "last_success",
                "failures",
                "consecutive_failures",
                "backoff_until",
                "quarantined_until",
                "exchanges",
                "invalid",
                "bytes_sent",
                "bytes_received",
                "lag",
            ],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "endpoint": {"type": "string"},
                "last_success": {"type": ["string", "null"], "format": "date-time"},
                "failures": {"type": "integer"},
                "consecutive_failures": {"type": "integer"},
                "backoff_until": {"type": ["string", "null"], "format": "date-time"},
                "quarantined_until": {"type": ["string", "null"], "format": "date-time"},
                "exchanges": {"type": "integer"},
                "invalid": {"type": "integer"},
                "invalid_reasons": {"type": "object", "additionalProperties": {"type": "integer"}},
                "bytes_sent": {"type": "integer"},
                "bytes_received": {"type": "integer"},
                "version": {
                    "type": ["string", "null"],
                    "description": "the software the peer named in its last hello or reply",
                },
                "lag": {
                    "type": ["object", "null"],
                    "description": "Entries each side lacks, as the peer last told",
                    "properties": {
                        "we_lack": {"type": "integer"},
                        "they_lack": {"type": "integer"},
                    },
                },
            },
        },
    }
    auth: list[dict[str, list[str]]] = [{"bearer": []}]
    paths: dict[str, Any] = {
        "/v1/query": {
            "post": {
                "operationId": "query",
                "summary": "Check up to 10 000 indicators at once",
                "security": auth,
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {
                                    "type": "array",
                                    "maxItems": 10_000,
                                    "items": _ref("QueryItem"),
                                },
                                "canonical": {
                                    "type": "boolean",
                                    "default": False,
                                    "description": "values are already canonical",
                                },
                            },
                        }
                    ),
                },
                "responses": {
                    "200": {
                        "description": "One result per item, in order",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["results"],
                                "properties": {
                                    "results": {"type": "array", "items": _ref("QueryResult")}
                                },
                            }
                        ),
                    },
                    **_errors(400, 401, 403, 409, 413),
                },
            }
        },
        "/v1/query/{kind}/{value}": {
            "get": {
                "operationId": "query_one",
                "summary": "Check one indicator",
                "security": auth,
                "parameters": [
                    {"name": "kind", "in": "path", "required": True, "schema": kind},
                    {"name": "value", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "The verdict", "content": _json(_ref("Verdict"))},
                    **_errors(401, 403, 409, 422),
                },
            }
        },
        "/v1/reports": {
            "post": {
                "operationId": "reports",
                "summary": "Report indicators (all or nothing)",
                "security": auth,
                "requestBody": items_body("ReportItem"),
                "responses": {
                    "201": {
                        "description": "Committed and signed into this member's feed",
                        "content": _json(_ref("Published")),
                    },
                    **_errors(400, 401, 403, 409, 413, 422),
                },
            },
            "get": {
                "operationId": "own_reports",
                "summary": "This member's own live reports, by token (raw values if asked)",
                "security": auth,
                "parameters": [
                    _query(
                        "after",
                        {"type": "string", "pattern": "^([0-9a-f]{2})*$"},
                        "token to start after (hex)",
                    ),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 10_000}),
                    _query("values", {"enum": ["true", "false"]}, "include raw values"),
                ],
                "responses": {
                    "200": {
                        "description": "Reports; next is the after of the next page",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["reports", "next"],
                                "properties": {
                                    "reports": {"type": "array", "items": _ref("OwnReport")},
                                    "next": {"type": ["string", "null"]},
                                },
                            }
                        ),
                    },
                    **_errors(400, 401, 403),
                },
            },
        },
        "/v1/retractions": {
            "post": {
                "operationId": "retractions",
                "summary": "Retract this member's own reports",
                "security": auth,
                "requestBody": items_body("RetractItem"),
                "responses": {
                    "201": {"description": "Committed", "content": _json(_ref("Published"))},
                    **_errors(400, 401, 403, 409, 413, 422),
                },
            }
        },
        "/v1/status": {
            "get": {
                "operationId": "status",
                "summary": "Member, charter, members and feed heads, index",
                "security": auth,
                "responses": {
                    "200": {"description": "Status", "content": _json(_ref("Status"))},
                    **_errors(401),
                },
            }
        },
        "/v1/admin/charter": {
            "get": {
                "operationId": "admin_charter",
                "summary": "The current charter: members, epochs, policy, version chain",
                "security": auth,
                "responses": {
                    "200": {"description": "Charter", "content": _json(_ref("Charter"))},
                    **_errors(401, 403, 409),
                },
            }
        },
        "/v1/admin/proposals": {
            "get": {
                "operationId": "admin_proposals",
                "summary": "Charter proposals held here, with who has signed",
                "security": auth,
                "responses": {
                    "200": {
                        "description": "Proposals",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["proposals"],
                                "properties": {
                                    "proposals": {"type": "array", "items": _ref("Proposal")}
                                },
                            }
                        ),
                    },
                    **_errors(401, 403, 409),
                },
            },
            "post": {
                "operationId": "admin_propose",
                "summary": "Propose the next charter version, signed by this admin",
                "security": auth,
                "requestBody": {
                    "required": True,
                    "content": _json(_ref("ProposalRequest")),
                },
                "responses": {
                    "201": {"description": "Proposed", "content": _json(_ref("Proposal"))},
                    **_errors(400, 401, 403, 404, 409, 422),
                },
            },
        },
        "/v1/admin/proposals/{id}/sign": {
            "post": {
                "operationId": "admin_sign",
                "summary": "Add this admin's signature to a pending proposal",
                "security": auth,
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "Signed", "content": _json(_ref("Proposal"))},
                    **_errors(401, 403, 404, 409),
                },
            }
        },
        "/v1/admin/keys": {
            "get": {
                "operationId": "admin_keys",
                "summary": "API keys in force (with revoked=true, revoked ones too)",
                "security": auth,
                "parameters": [_query("revoked", {"enum": ["true", "false"]})],
                "responses": {
                    "200": {
                        "description": "Keys, never their secrets",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["keys"],
                                "properties": {"keys": {"type": "array", "items": _ref("ApiKey")}},
                            }
                        ),
                    },
                    **_errors(400, 401, 403),
                },
            },
            "post": {
                "operationId": "admin_key_create",
                "summary": "Make an API key; the answer holds the key, shown this once",
                "security": auth,
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["name", "scopes"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string", "maxLength": 64},
                                "scopes": {
                                    "type": "array",
                                    "items": {"enum": ["query", "report", "watch", "admin"]},
                                },
                            },
                        }
                    ),
                },
                "responses": {
                    "201": {"description": "Made", "content": _json(_ref("ApiKey"))},
                    **_errors(400, 401, 403, 409, 422),
                },
            },
        },
        "/v1/admin/keys/{name}": {
            "delete": {
                "operationId": "admin_key_revoke",
                "summary": "Revoke an API key; it stops working at once",
                "security": auth,
                "parameters": [_path("name")],
                "responses": {
                    "200": {"description": "Revoked", "content": _json(_ref("ApiKey"))},
                    **_errors(401, 403, 404, 409),
                },
            }
        },
        "/v1/admin/keys/{name}/rotate": {
            "post": {
                "operationId": "admin_key_rotate",
                "summary": "Give an API key a new secret, same scopes; the old one stops at once",
                "security": auth,
                "parameters": [_path("name")],
                "responses": {
                    "200": {"description": "Rotated", "content": _json(_ref("ApiKey"))},
                    **_errors(401, 403, 404),
                },
            }
        },
        "/v1/audit": {
            "get": {
                "operationId": "audit",
                "summary": "The audit trail: every local action with the acting key, hash-chained",
                "security": auth,
                "parameters": [
                    _query(
                        "after",
                        {"type": "integer", "minimum": 0, "maximum": 2**62},
                        "rows after this id",
                    ),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 10_000}),
                ],
                "responses": {
                    "200": {
                        "description": "Rows, oldest first; next is the after of the next page",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["audit", "next"],
                                "properties": {
                                    "audit": {"type": "array", "items": _ref("AuditRow")},
                                    "next": {"type": ["integer", "null"]},
                                },
                            }
                        ),
                    },
                    **_errors(400, 401, 403),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness: the process is up (no API key)",
                "responses": {
                    "200": {
                        "description": "Up",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["status", "version"],
                                "properties": {
                                    "status": {"enum": ["ok"]},
                                    "version": {"type": "string"},
                                },
                            }
                        ),
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: charter, consortium key, API keys, index (no API key)",
                "responses": {
                    "200": {
                        "description": "Ready",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["ready"],
                                "properties": {"ready": {"enum": [True]}},
                            }
                        ),
                    },
                    "503": {
                        "description": "Not ready; the message and reasons say why",
                        "content": _json(_ref("Error")),
                    },
                },
            }
        },
        "/ui": {
            "get": {
                "operationId": "ui",
                "summary": "The web console: redirects to /ui/",
                "responses": {
                    "302": {
                        "description": "Location: /ui/",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/ui/": {
            "get": {
                "operationId": "ui_index",
                "summary": "The web console's page (its data come from this API, with a key)",
                "responses": {
                    "200": {
                        "description": "HTML",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/ui/{file}": {
            "get": {
                "operationId": "ui_asset",
                "summary": "The web console's script and style sheet",
                "parameters": [
                    {
                        "name": "file",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": ["index.html", "console.css", "console.js"]},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The file",
                        "content": {
                            "text/html": {"schema": {"type": "string"}},
                            "text/css": {"schema": {"type": "string"}},
                            "text/javascript": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(404),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
    add_alert_documents(schemas, paths, auth)
    schemas.update(after_match_schemas(kind, _ref))
    paths.update(after_match_paths(auth, _json, _ref, _errors))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "riskmesh local API",
            "version": "1",
            "description": "A member node's API for its own platforms. Raw identifiers "
            "sent here never leave the node.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API key with scopes query, report, watch, admin",
                }
            },
        },
    }


def api_markdown() -> str:
    """docs/api.md, generated from the OpenAPI document (a test keeps them equal)."""
    doc = openapi_document()
    lines = [
        "# riskmesh local API",
        "",
        "<!-- generated by `python -m node.openapi > docs/api.md`; do not edit -->",
        "",
        doc["info"]["description"],
        "",
        "Every call but `/metrics`, `/openapi.json`, `/healthz`, `/readyz` and the web "
        "console's files under `/ui` takes `Authorization: Bearer <api key>`; keys carry "
        "the scopes `query`, `report`, `watch` and `admin` (`riskmesh keys`). Bodies are "
        "JSON, or CBOR with `Content-Type: application/cbor` / `Accept: application/cbor`. "
        'Every error is `{"error": {"code", "message"}}` with a 4xx status. Times '
        "are RFC 3339 UTC. A running node serves this document at `GET /openapi.json`.",
        "",
        "Several serving processes share the port (`serve.workers`): each answers "
        "queries itself and passes every other call to the node's one writer process; "
        "`X-Riskmesh-Worker` on an answer names the serving process that gave it. While "
        "the writer restarts, a call it must answer gets `503 writer_unavailable` with "
        "`Retry-After: 1` (nothing was done: send it again).",
        "",
    ]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            lines.append(f"## `{method.upper()} {path}`")
            lines.append("")
            lines.append(op["summary"] + ".")
            lines.append("")
            if op.get("security"):
                lines.append("Needs an API key.")
                lines.append("")
            body = op.get("requestBody")
            if body:
                schema = next(iter(body["content"].values()))["schema"]
                lines.append(f"Request body: {_schema_text(schema)}.")
                lines.append("")
            lines.append("| status | meaning | body |")
            lines.append("|---|---|---|")
            for status, resp in op["responses"].items():
                content = resp.get("content") or {}
                schema = next(iter(content.values()))["schema"] if content else None
                text = _schema_text(schema) if schema else "-"
                lines.append(f"| {status} | {resp['description']} | {text} |")
            lines.append("")
    lines.append("## Schemas")
    lines.append("")
    for name, schema in doc["components"]["schemas"].items():
        lines.append(f"### {name}")
        lines.append("")
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        if props:
            lines.append("| field | type | required | notes |")
            lines.append("|---|---|---|---|")
            for field, fs in props.items():
                note = str(fs.get("description", "")).replace("|", "\\|")
                req = "yes" if field in required else ""
                lines.append(f"| `{field}` | {_schema_text(fs)} | {req} | {note} |")
        else:
            lines.append(f"Fields: {', '.join(f'`{r}`' for r in sorted(required)) or 'any'}.")
        lines.append("")
    return "\n".join(lines)


def _schema_text(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    t = schema.get("type", "object")
    if isinstance(t, list):
        t = " or ".join(t)
    if t == "array" and "items" in schema:
        return f"array of {_schema_text(schema['items'])}"
    if t == "object" and "properties" in schema:
        return "object {" + ", ".join(schema["properties"]) + "}"
    return str(t)


if __name__ == "__main__":
    print(api_markdown(), end="")
