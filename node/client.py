"""Clients of a node's local API, with clear exceptions.

:class:`Client` (sync) and :class:`AsyncClient` (aiohttp) are for member
platforms: typed results (:class:`Verdict`, :class:`ItemProblem`,
:class:`Receipt`). :class:`LocalClient` is the raw JSON client the CLI uses.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from contracts.errors import ClientError
from node.config import load_config, parse_listen

__all__ = [
    "Alert",
    "AsyncClient",
    "Client",
    "ClientError",
    "ItemProblem",
    "LocalClient",
    "Receipt",
    "Verdict",
]


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
        return _objs(self._request("POST", "/v1/query", {"items": items})["results"])

    def report(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return _obj(self._request("POST", "/v1/reports", {"items": items}))

    def retract(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return _obj(self._request("POST", "/v1/retractions", {"items": items}))

    # -- after the match (scope report) --------------------------------------------------

    def seen(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return _obj(self._request("POST", "/v1/sightings", {"items": items}))

    def dispute(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return _obj(self._request("POST", "/v1/disputes", {"items": items}))

    def appeal_file(self, kind: str, value: str, case_ref: str, grounds: str) -> dict[str, Any]:
        body = {"kind": kind, "value": value, "case_ref": case_ref, "grounds": grounds}
        return _obj(self._request("POST", "/v1/appeals", body))

    def appeals(self) -> dict[str, Any]:
        return _obj(self._request("GET", "/v1/appeals"))

    def appeal_decide(self, appeal_id: str, decision: str, note: str = "") -> dict[str, Any]:
        aid = urllib.parse.quote(appeal_id, safe="")
        body = {"decision": decision, "note": note}
        return _obj(self._request("POST", f"/v1/appeals/{aid}/decision", body))

    def status(self) -> dict[str, Any]:
        return _obj(self._request("GET", "/v1/status"))

    # -- watches and alerts (scope query) ----------------------------------------------

    def watch(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return _obj(self._request("POST", "/v1/watches", {"items": items}))

    def unwatch(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return _obj(self._request("DELETE", "/v1/watches", {"items": items}))

    def watches(self, *, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        return _obj(self._request("GET", f"/v1/watches?after={after}&limit={limit}"))

    def alerts(self, after: int = 0, *, limit: int = 100, wait: float = 0.0) -> dict[str, Any]:
        """One page of alerts after ``after`` (a long poll of up to ``wait`` seconds)."""
        return _obj(self._request("GET", f"/v1/alerts?after={after}&limit={limit}&wait={wait:g}"))

    def own_reports(self, *, values: bool = False) -> list[dict[str, Any]]:
        """This member's own live reports (every page), with raw values if asked."""
        out: list[dict[str, Any]] = []
        after = ""
        while True:
            q = urllib.parse.urlencode(
                {"after": after, "limit": 10_000, "values": "true" if values else "false"}
            )
            page = _obj(self._request("GET", f"/v1/reports?{q}"))
            out += _objs(page["reports"])
            if not page.get("next"):
                return out
            after = page["next"]

    # -- API keys and the audit trail (scope admin) --------------------------------------

    def keys_list(self, *, revoked: bool = False) -> list[dict[str, Any]]:
        q = "?revoked=true" if revoked else ""
        return _objs(self._request("GET", f"/v1/admin/keys{q}")["keys"])

    def key_create(self, name: str, scopes: list[str]) -> dict[str, Any]:
        return _obj(self._request("POST", "/v1/admin/keys", {"name": name, "scopes": scopes}))

    def key_revoke(self, name: str) -> dict[str, Any]:
        return _obj(self._request("DELETE", f"/v1/admin/keys/{urllib.parse.quote(name, safe='')}"))

    def key_rotate(self, name: str) -> dict[str, Any]:
        path = f"/v1/admin/keys/{urllib.parse.quote(name, safe='')}/rotate"
        return _obj(self._request("POST", path))

    def audit(self, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        return _obj(self._request("GET", f"/v1/audit?after={after}&limit={limit}"))

    # -- administration (scope admin) --------------------------------------------------

    def admin_charter(self) -> dict[str, Any]:
        return _obj(self._request("GET", "/v1/admin/charter"))

    def admin_proposals(self) -> list[dict[str, Any]]:
        return _objs(self._request("GET", "/v1/admin/proposals")["proposals"])

    def admin_propose(self, action: str, **fields: Any) -> dict[str, Any]:
        """Propose a charter change; a ``join_request`` given as bytes is sent base64."""
        body: dict[str, Any] = {"action": action, **fields}
        if isinstance(body.get("join_request"), bytes):
            body["join_request"] = base64.b64encode(body["join_request"]).decode()
        return _obj(self._request("POST", "/v1/admin/proposals", body))

    def admin_sign(self, proposal_id: str) -> dict[str, Any]:
        pid = urllib.parse.quote(proposal_id, safe="")
        return _obj(self._request("POST", f"/v1/admin/proposals/{pid}/sign"))


# -- typed clients for member platforms ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """The node's answer for one indicator."""

    kind: str
    match: bool
    reporters: int = 0
    categories: tuple[str, ...] = ()
    max_severity: int | None = None
    first_reported: datetime | None = None
    last_reported: datetime | None = None
    expires: datetime | None = None
    reported_by: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Verdict:
        return cls(
            kind=d["kind"],
            match=bool(d["match"]),
            reporters=int(d.get("reporters", 0)),
            categories=tuple(d.get("categories", ())),
            max_severity=d.get("max_severity"),
            first_reported=_time(d.get("first_reported")),
            last_reported=_time(d.get("last_reported")),
            expires=_time(d.get("expires")),
            reported_by=tuple(d.get("reported_by", ())),
        )


@dataclass(frozen=True, slots=True)
class ItemProblem:
    """One query item the node could not check (e.g. a malformed phone number)."""

    index: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """A report or retraction batch, accepted whole: the entry it became."""

    accepted: int
    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class Alert:
    """A watched value was reported or retracted by some member (DESIGN §14).

    ``id`` only grows: remember the last one handled and ask for the alerts after
    it, so a restart loses none and handles none twice. ``value`` is the watched
    value in canonical form; ``ref`` the case id it was watched (or queried) with.
    """

    id: int
    at: datetime
    event: str  # "reported" | "retracted"
    kind: str
    value: str
    ref: str | None
    source: str  # "watch" | "recent_query"
    verdict: Verdict
    entry: dict[str, Any]  # log, seq, hash
    latency_ms: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Alert:
        at = _time(d["at"])
        assert at is not None
        return cls(
            id=int(d["id"]),
            at=at,
            event=d["event"],
            kind=d["kind"],
            value=d["value"],
            ref=d.get("ref"),
            source=d["source"],
            verdict=Verdict.from_json(d["verdict"]),
            entry=dict(d["entry"]),
            latency_ms=int(d["latency_ms"]),
        )


def _alerts(page: object) -> list[Alert]:
    return [Alert.from_json(a) for a in _objs(_obj(page)["alerts"])]


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _results(body: dict[str, Any]) -> list[Verdict | ItemProblem]:
    out: list[Verdict | ItemProblem] = []
    for i, r in enumerate(body["results"]):
        if "error" in r:
            out.append(ItemProblem(i, r["error"]["code"], r["error"]["message"]))
        else:
            out.append(Verdict.from_json(r))
    return out


def _receipt(body: dict[str, Any]) -> Receipt:
    return Receipt(body["accepted"], body["entry"]["seq"], body["entry"]["hash"])


def _item(kind: str, value: str) -> dict[str, str]:
    return {"kind": kind, "value": value}


class Client:
    """Typed, synchronous client of a node's local API for a member platform.

    Every failure is a :class:`ClientError` with the node's error code, the
    HTTP status (0 if the node is unreachable) and, for a refused batch, the
    refused items.

        client = Client("http://127.0.0.1:7700", api_key)
        verdict = client.check("phone", "+86 138 0013 8000")
        if verdict.match: ...
    """

    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0) -> None:
        self._raw = LocalClient(base_url, api_key, timeout)

    @classmethod
    def from_home(cls, home: Path) -> Client:
        raw = LocalClient.from_home(home)
        return cls(raw.base_url, raw._api_key, raw.timeout)

    def __repr__(self) -> str:
        return f"Client({self._raw.base_url!r})"

    def check(self, kind: str, value: str) -> Verdict:
        [r] = self.query([_item(kind, value)])
        if isinstance(r, ItemProblem):
            raise ClientError(422, r.code, r.message)
        return r

    def query(self, items: list[dict[str, str]]) -> list[Verdict | ItemProblem]:
        return _results(self._raw._request("POST", "/v1/query", {"items": items}))

    def report(self, items: list[dict[str, Any]]) -> Receipt:
        return _receipt(self._raw.report(items))

    def retract(self, items: list[dict[str, Any]]) -> Receipt:
        return _receipt(self._raw.retract(items))

    def status(self) -> dict[str, Any]:
        return self._raw.status()

    def watch(self, items: list[dict[str, Any]]) -> list[Verdict]:
        """Watch values (``kind``, ``value``, optional ``ref`` and ``ttl_days``); each
        one's current verdict: a watch is also a retro-hunt."""
        return [Verdict.from_json(r) for r in self._raw.watch(items)["results"]]

    def unwatch(self, items: list[dict[str, Any]]) -> int:
        """Stop watching values; how many watches were removed."""
        return int(self._raw.unwatch(items)["removed"])

    def watches(self) -> dict[str, Any]:
        return self._raw.watches()

    def alerts(
        self, after: int = 0, *, follow: bool = False, wait: float = 20.0
    ) -> Iterator[Alert]:
        """Every alert after id ``after``, in order; with ``follow``, then each new one
        as it comes (long polls of up to ``wait`` seconds) for as long as you iterate.

            for alert in client.alerts(after=last_seen, follow=True):
                hold_transfers(alert.value, alert.ref)
                last_seen = alert.id
        """
        wait = max(0.0, min(wait, self._raw.timeout * 0.8))
        while True:
            page = _alerts(self._raw.alerts(after, limit=1000, wait=wait if follow else 0.0))
            yield from page
            if page:
                after = page[-1].id
            elif not follow:
                return


class AsyncClient:
    """The same as :class:`Client` for asyncio platforms (aiohttp); use ``async with``."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        self._session: Any = None

    def __repr__(self) -> str:
        return f"AsyncClient({self.base_url!r})"

    async def __aenter__(self) -> AsyncClient:
        import aiohttp

        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"Authorization": f"Bearer {self._api_key}"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        import aiohttp

        if self._session is None:
            raise ClientError(0, "closed", "use `async with AsyncClient(...)`")
        try:
            async with self._session.request(method, self.base_url + path, json=body) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as e:
            raise ClientError(
                0, "unreachable", f"cannot reach the node at {self.base_url}: {e}"
            ) from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise ClientError(status, "http_error", f"answer is not JSON ({status})") from None
        if status >= 400:
            err = data.get("error", {}) if isinstance(data, dict) else {}
            raise ClientError(
                status, err.get("code", "error"), err.get("message", ""), err.get("items")
            )
        return data

    async def check(self, kind: str, value: str) -> Verdict:
        [r] = await self.query([_item(kind, value)])
        if isinstance(r, ItemProblem):
            raise ClientError(422, r.code, r.message)
        return r

    async def query(self, items: list[dict[str, str]]) -> list[Verdict | ItemProblem]:
        return _results(await self._request("POST", "/v1/query", {"items": items}))

    async def report(self, items: list[dict[str, Any]]) -> Receipt:
        return _receipt(await self._request("POST", "/v1/reports", {"items": items}))

    async def retract(self, items: list[dict[str, Any]]) -> Receipt:
        return _receipt(await self._request("POST", "/v1/retractions", {"items": items}))

    async def status(self) -> dict[str, Any]:
        return _obj(await self._request("GET", "/v1/status"))

    async def watch(self, items: list[dict[str, Any]]) -> list[Verdict]:
        body = _obj(await self._request("POST", "/v1/watches", {"items": items}))
        return [Verdict.from_json(r) for r in body["results"]]

    async def unwatch(self, items: list[dict[str, Any]]) -> int:
        body = _obj(await self._request("DELETE", "/v1/watches", {"items": items}))
        return int(body["removed"])

    async def watches(self) -> dict[str, Any]:
        return _obj(await self._request("GET", "/v1/watches"))

    async def alerts(
        self, after: int = 0, *, follow: bool = False, wait: float = 20.0
    ) -> AsyncIterator[Alert]:
        """As :meth:`Client.alerts`: ``async for alert in client.alerts(after, follow=True)``."""
        wait = max(0.0, min(wait, self._timeout * 0.8))
        while True:
            w = wait if follow else 0.0
            page = _alerts(
                await self._request("GET", f"/v1/alerts?after={after}&limit=1000&wait={w:g}")
            )
            for a in page:
                yield a
            if page:
                after = page[-1].id
            elif not follow:
                return


def _obj(v: object) -> dict[str, Any]:
    """A JSON object the node answered with."""
    if not isinstance(v, dict):
        raise ClientError(0, "bad_response", "the node answered something else than an object")
    return v


def _objs(v: object) -> list[dict[str, Any]]:
    """A JSON list of objects the node answered with."""
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise ClientError(0, "bad_response", "the node answered something else than a list")
    return v
