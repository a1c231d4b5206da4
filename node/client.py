"""A small client for member platforms: the local API with clear exceptions."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from contracts.errors import RiskmeshError
from node.config import load_config, parse_listen

__all__ = ["ClientError", "LocalClient"]


class ClientError(RiskmeshError):
    def __init__(self, status: int, code: str, message: str, items: list[Any] | None = None):
        super().__init__(message, code=code)
        self.status = status
        self.items = items or []

    def one_line(self) -> str:
        extra = "; ".join(f"item {i['index']}: {i['message']}" for i in self.items[:3])
        return f"{self.code} ({self.status}): {self.message}" + (f" [{extra}]" if extra else "")


class LocalClient:
    """Synchronous client of one node's local API."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"LocalClient({self.base_url!r})"

    @classmethod
    def from_home(cls, home: Path) -> LocalClient:
        config = load_config(home)
        host, port = parse_listen(config["api.listen"], "api.listen")
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        token = config.token_path.read_text().strip()
        return cls(f"http://{host}:{port}", token)

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())["error"]
            except (ValueError, KeyError, TypeError):
                raise ClientError(e.code, "http_error", str(e.reason)) from None
            raise ClientError(
                e.code, err.get("code", "error"), err.get("message", ""), err.get("items")
            ) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise ClientError(
                0, "unreachable", f"cannot reach the node at {self.base_url}: {reason}"
            ) from None

    def query(self, items: list[dict[str, str]]) -> list[dict[str, Any]]:
        return self._request("POST", "/v1/query", {"items": items})["results"]  # type: ignore[no-any-return]

    def report(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return self._request("POST", "/v1/reports", {"items": items})  # type: ignore[no-any-return]

    def retract(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return self._request("POST", "/v1/retractions", {"items": items})  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        return self._request("GET", "/v1/status")  # type: ignore[no-any-return]

    # -- administration (scope admin) --------------------------------------------------

    def admin_charter(self) -> dict[str, Any]:
        return self._request("GET", "/v1/admin/charter")  # type: ignore[no-any-return]

    def admin_proposals(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/admin/proposals")["proposals"]  # type: ignore[no-any-return]

    def admin_propose(self, action: str, **fields: Any) -> dict[str, Any]:
        """Propose a charter change; a ``join_request`` given as bytes is sent base64."""
        body: dict[str, Any] = {"action": action, **fields}
        if isinstance(body.get("join_request"), bytes):
            body["join_request"] = base64.b64encode(body["join_request"]).decode()
        return self._request("POST", "/v1/admin/proposals", body)  # type: ignore[no-any-return]

    def admin_sign(self, proposal_id: str) -> dict[str, Any]:
        pid = urllib.parse.quote(proposal_id, safe="")
        return self._request("POST", f"/v1/admin/proposals/{pid}/sign")  # type: ignore[no-any-return]
