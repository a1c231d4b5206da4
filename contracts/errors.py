"""The riskmesh error tree: every exception class riskmesh raises on purpose.

::

    RiskmeshError
    ├── InvalidValue              a raw identifier that does not fit its kind (``rule`` says which)
    ├── PolicyViolation           against the charter's data policy
    ├── CharterRejected           a charter version that may not follow its predecessor
    ├── ProtocolError
    │   ├── LocalProtocolError    we were asked to do something the protocol does not allow
    │   │   ├── GovernanceError   an admin action the charter's rules refuse
    │   │   └── RequestRefused    a local request the node refuses (``items``: per-item problems)
    │   │       └── NotReady      the node cannot serve it yet (no charter, no key, syncing)
    │   └── RemoteProtocolError   a peer sent something wrong
    │       ├── DecodeError       bytes that are not strict canonical CBOR of the right shape
    │       ├── SignatureError    a COSE signature that does not verify
    │       ├── EntryRejected     a feed entry refused by the validation order
    │       ├── GrantRejected     a key grant that is malformed or not for us
    │       ├── AppealItemRejected a sealed appeal case or decision note that cannot be taken
    │       ├── ProposalRejected  a charter proposal or signature that cannot be taken
    │       ├── GossipError       a gossip message refused as a whole
    │       └── EnvelopeError     a sealed peer envelope refused
    ├── StoreError                the store could not do what was asked
    ├── ConfigError               a setting or home directory that is not usable
    ├── ClientError               the local API answered an error (``status``, ``items``)
    ├── NetError                  a local network of node processes failed to start or answer
    └── SimError                  the simulator
        ├── ScenarioError         a scenario file that cannot be run as written
        └── LiveError             live mode: real node processes did not do as expected

Every error carries one stable machine code, ``reason`` (which the HTTP API
returns as ``code`` and the metrics count by), and a human ``message``. No
error message ever contains a key or a raw identifier that the caller did not
already hold. The HTTP status of a reason is decided by the HTTP layers
(``node.api``, ``node.peer``), never here.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AppealItemRejected",
    "CharterRejected",
    "ClientError",
    "ConfigError",
    "DecodeError",
    "EntryRejected",
    "EnvelopeError",
    "GossipError",
    "GovernanceError",
    "GrantRejected",
    "InvalidValue",
    "LiveError",
    "LocalProtocolError",
    "NetError",
    "NotReady",
    "PolicyViolation",
    "ProposalRejected",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestRefused",
    "RiskmeshError",
    "ScenarioError",
    "SignatureError",
    "SimError",
    "StoreError",
]


class RiskmeshError(Exception):
    """Base of every error riskmesh raises on purpose."""

    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class _Reasoned(RiskmeshError):
    """An error whose reason is given first, as ``Cls(reason, message)``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)


class InvalidValue(RiskmeshError):
    """A raw identifier that does not fit its kind.

    ``kind`` names the indicator kind and ``rule`` the rule of that kind that
    was broken (e.g. ``"luhn"``, ``"e164"``); the machine code is always
    ``invalid_value``. The message never repeats the raw value.
    """

    reason = "invalid_value"

    def __init__(self, kind: str, rule: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.rule = rule


class PolicyViolation(_Reasoned):
    """Something the charter's data policy does not allow (``reason`` names the rule)."""

    reason = "policy_violation"


class CharterRejected(_Reasoned):
    """A charter version that may not follow its predecessor (``reason`` says why)."""

    reason = "charter_rejected"


class ProtocolError(RiskmeshError):
    reason = "protocol_error"


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol does not allow."""

    reason = "local_protocol_error"


class GovernanceError(LocalProtocolError):
    """An admin action the charter's rules refuse: ``not_admin``, ``not_member``,
    ``already_member``, ``bad_member``, ``bad_join_request``, ``bad_policy``,
    ``unknown_field``, ``missing_field``, ``bad_action``, ``unknown_proposal``..."""

    reason = "governance_refused"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)


class RequestRefused(LocalProtocolError):
    """A request from the member's own platforms that the node refuses as a whole.

    ``items``, when set, lists the refused items of a batch (index, code, message).
    """

    reason = "bad_request"

    def __init__(
        self, reason: str, message: str, items: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.items = items


class NotReady(RequestRefused):
    """The node cannot do this yet: no charter, no key, catching up on its own feed..."""

    reason = "not_ready"

    def __init__(self, message: str, *, reason: str = "not_ready") -> None:
        super().__init__(reason, message)


class RemoteProtocolError(ProtocolError):
    """A peer (or a stored object from one) sent something wrong."""

    reason = "remote_protocol_error"


class DecodeError(RemoteProtocolError):
    """Bytes that are not strict canonical CBOR, or not of the expected shape."""

    reason = "decode_error"


class SignatureError(RemoteProtocolError):
    """A signature that does not verify, or a signed object built wrongly."""

    reason = "bad_signature"


class _RemoteReasoned(RemoteProtocolError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)


class EntryRejected(_RemoteReasoned):
    """A feed entry refused by the validation order of DESIGN §6.

    ``reason`` is one of :data:`protocol.entries.REJECT_REASONS`.
    """

    reason = "entry_rejected"


class GrantRejected(RemoteProtocolError):
    """A key grant that is malformed, badly signed or not addressed to us."""

    reason = "grant_rejected"


class AppealItemRejected(_RemoteReasoned):
    """A sealed appeal item (a case for the reporters, a decision note for the
    appellant) that is malformed, badly signed, not openable or over a limit."""

    reason = "bad_appeal_item"


class ProposalRejected(_RemoteReasoned):
    """A charter proposal or a signature on one that cannot be taken."""

    reason = "proposal_rejected"


class GossipError(_RemoteReasoned):
    """A gossip message refused as a whole."""

    reason = "gossip_refused"


class EnvelopeError(_RemoteReasoned):
    """A peer's sealed envelope refused. The message never holds key material or plaintext."""

    reason = "envelope_error"


class StoreError(RiskmeshError):
    reason = "store_error"


class ConfigError(RiskmeshError):
    """A setting, a config file or a home directory that is not usable."""

    reason = "config_error"


class ClientError(RiskmeshError):
    """The local API answered with an error (``status`` 0: it could not be reached)."""

    reason = "client_error"

    def __init__(
        self, status: int, reason: str, message: str, items: list[Any] | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.status = status
        self.items = items or []

    def one_line(self) -> str:
        extra = "; ".join(f"item {i['index']}: {i['message']}" for i in self.items[:3])
        return f"{self.reason} ({self.status}): {self.message}" + (f" [{extra}]" if extra else "")


class NetError(RiskmeshError):
    """A local network of node processes (demo, tests, live simulation) went wrong."""

    reason = "localnet"


class SimError(RiskmeshError):
    reason = "sim_failed"


class ScenarioError(SimError):
    """A scenario file that cannot be run as written."""

    reason = "bad_scenario"


class LiveError(SimError):
    """Live mode: real node processes did not do what the scenario expected."""

    reason = "live_failed"
