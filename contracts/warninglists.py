"""Warning lists: public, non-personal values that are never reportable (DESIGN §15).

A report of a documentation IP address, a public DNS resolver, a card scheme's
published test number, an address at ``example.com`` or a bank's published
service number says nothing about a fraudster and, once shared, would match
innocent traffic at every member. MISP keeps such "warning lists"; HMA keeps
"negative banks"; Safe Browsing keeps a global cache of likely-benign sites.

The list has three parts:

* **exact values** in canonical form (an IP address, a card number, an E.164
  phone number, an e-mail address, or any other kind's canonical value);
* **IP networks** (``10.0.0.0/8``), checked against a reported address;
* **e-mail domains** (``example.com``, or a top-level label such as
  ``test``): an address at the domain or at any subdomain of it.

:data:`DEFAULT_LIST` is shipped here and is part of the consortium contract
(versioned by :data:`WARNING_LIST_VERSION`: every node must refuse the same
entries). The charter's policy adds entries (``DataPolicy.warning_list``,
``{kind: [entry, ...]}``, written as :func:`parse_entry` reads them), and a
node may keep a local list for its own reports.

Where it is checked:

* a **report** (the raw value is at hand): exact values, networks and domains
  (:meth:`WarningList.listed`), refused with ``warning_listed``;
* an **incoming entry**: only exact values can be recognised in a token, so
  every node tokenises the exact values of the default list and of the
  charter's policy under each epoch key it holds
  (:meth:`WarningList.exact_values`) and refuses an entry adding one of those
  tokens. Every honest node holds the same list and the same keys, so every
  honest node refuses the same entries.

Everything here is pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from contracts.errors import InvalidValue, PolicyViolation
from contracts.indicators import KINDS, canonical

__all__ = [
    "DEFAULT_LIST",
    "WARNING_LIST_VERSION",
    "Listing",
    "WarningList",
    "check_additions",
    "parse_entry",
]

WARNING_LIST_VERSION = 1

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# -- the shipped default list ------------------------------------------------------------

#: Address ranges no fraudster can be told apart by: documentation (RFC 5737,
#: RFC 3849, RFC 9637), private (RFC 1918, RFC 4193), loopback, link-local,
#: shared/CGNAT (RFC 6598), benchmarking (RFC 2544), "this network",
#: multicast, reserved and broadcast.
_NETWORKS: dict[str, tuple[str, ...]] = {
    "a documentation address": (
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "2001:db8::/32",
        "3fff::/20",
    ),
    "a private address": ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
    "a loopback address": ("127.0.0.0/8", "::1/128"),
    "a link-local address": ("169.254.0.0/16", "fe80::/10"),
    "a shared (CGNAT) address": ("100.64.0.0/10",),
    "a benchmarking address": ("198.18.0.0/15", "2001:2::/48"),
    "an unspecified, multicast, reserved or broadcast address": (
        "0.0.0.0/8",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "ff00::/8",
    ),
}

#: Well-known public DNS resolvers: millions of innocent clients name them.
_RESOLVERS: tuple[str, ...] = (
    "8.8.8.8",
    "8.8.4.4",
    "1.1.1.1",
    "1.0.0.1",
    "9.9.9.9",
    "149.112.112.112",
    "208.67.222.222",
    "208.67.220.220",
    "114.114.114.114",
    "114.114.115.115",
    "223.5.5.5",
    "223.6.6.6",
    "119.29.29.29",
    "180.76.76.76",
    "2001:4860:4860::8888",
    "2001:4860:4860::8844",
    "2606:4700:4700::1111",
    "2606:4700:4700::1001",
    "2620:fe::fe",
    "2400:3200::1",
    "2400:3200:baba::1",
)

#: Card schemes' and payment processors' published test numbers.
_TEST_CARDS: tuple[str, ...] = (
    "4111111111111111",
    "4012888888881881",
    "4222222222222",
    "4242424242424242",
    "4000056655665556",
    "4000002500003155",
    "5555555555554444",
    "5105105105105100",
    "5500000000000004",
    "5200828282828210",
    "2223003122003222",
    "378282246310005",
    "371449635398431",
    "378734493671000",
    "6011111111111117",
    "6011000990139424",
    "6555900000604105",
    "30569309025904",
    "3056930009020004",
    "38520000023237",
    "36227206271667",
    "3530111333300000",
    "3566002020360505",
    "6200000000000005",
    "6205500000000000004",
)

#: Banks', card schemes' and carriers' published service numbers (E.164), as
#: dialled from abroad or nationally.
_SERVICE_NUMBERS: tuple[str, ...] = (
    "+861095588",  # ICBC
    "+861095533",  # China Construction Bank
    "+861095566",  # Bank of China
    "+861095599",  # Agricultural Bank of China
    "+862195559",  # Bank of Communications
    "+8675595555",  # China Merchants Bank
    "+864008205555",  # China Merchants Bank credit cards
    "+862195516",  # UnionPay
    "+18008472911",  # Visa customer care
    "+18006278372",  # Mastercard assistance
)

#: Reserved domains (RFC 2606, RFC 6761): no real mailbox is there.
_DOMAINS: tuple[str, ...] = (
    "example.com",
    "example.org",
    "example.net",
    "example",
    "test",
    "invalid",
    "localhost",
)


@dataclass(frozen=True, slots=True)
class Listing:
    """Why a value is listed: a short phrase such as ``a public DNS resolver``."""

    why: str
    source: str  # "default", "charter" or "local"

    def message(self, kind: str) -> str:
        where = {"default": "the shipped", "charter": "the charter's", "local": "this node's"}
        return (
            f"{kind}: {self.why}, on {where.get(self.source, 'a')} warning list; "
            "such values are never reported"
        )


@dataclass(frozen=True, slots=True)
class WarningList:
    """Exact values, IP networks and e-mail domains that are never reportable."""

    exact: Mapping[tuple[str, str], Listing] = field(default_factory=dict)
    networks: tuple[tuple[IPNetwork, Listing], ...] = ()
    domains: Mapping[str, Listing] = field(default_factory=dict)

    def listed(self, kind: str, value: str) -> Listing | None:
        """Why the canonical ``value`` of ``kind`` is listed, or None."""
        hit = self.exact.get((kind, value))
        if hit is not None:
            return hit
        if kind == "ip" and self.networks:
            addr = ipaddress.ip_address(value)
            for net, why in self.networks:
                if addr.version == net.version and addr in net:
                    return why
        elif kind == "email" and self.domains:
            labels = value.rpartition("@")[2].split(".")
            for i in range(len(labels)):
                at = self.domains.get(".".join(labels[i:]))
                if at is not None:
                    return at
        return None

    def exact_values(self) -> Iterator[tuple[str, str]]:
        """Every listed exact value as ``(kind, canonical)``: what a token can reveal."""
        return iter(sorted(self.exact))

    def merged(self, other: WarningList) -> WarningList:
        """This list with ``other``'s entries added (ours win where both list a value)."""
        return WarningList(
            exact={**other.exact, **self.exact},
            networks=self.networks + tuple(n for n in other.networks if n not in self.networks),
            domains={**other.domains, **self.domains},
        )

    @classmethod
    def from_entries(cls, entries: Mapping[str, Iterable[str]], source: str) -> WarningList:
        """A list from ``{kind: [entry, ...]}`` (see :func:`parse_entry`)."""
        exact: dict[tuple[str, str], Listing] = {}
        networks: list[tuple[IPNetwork, Listing]] = []
        domains: dict[str, Listing] = {}
        why = {"charter": "added by the consortium's charter", "local": "a value this node lists"}
        listing = Listing(why.get(source, "listed"), source)
        for kind, values in entries.items():
            for entry in values:
                form, parsed = parse_entry(kind, entry)
                if form == "network":
                    assert isinstance(parsed, ipaddress.IPv4Network | ipaddress.IPv6Network)
                    networks.append((parsed, listing))
                elif form == "domain":
                    domains[str(parsed)] = listing
                else:
                    exact[(kind, str(parsed))] = listing
        return cls(exact=exact, networks=tuple(networks), domains=domains)


def parse_entry(kind: str, entry: str) -> tuple[str, str | IPNetwork]:
    """Read one warning-list entry of ``kind``: ``("exact", canonical)``,
    ``("network", ip_network)`` (ip, with a ``/``) or ``("domain", domain)``
    (email, without an ``@``). Raises PolicyViolation (``bad_policy``) naming
    the entry's kind (never its value) if it is not one of these."""
    if kind not in KINDS:
        raise PolicyViolation("bad_policy", f"warning list names unknown kind {kind!r}")
    if not isinstance(entry, str) or not entry or entry != entry.strip():
        raise PolicyViolation("bad_policy", f"warning list {kind}: entries are trimmed text")
    if kind == "ip" and "/" in entry:
        try:
            net = ipaddress.ip_network(entry, strict=True)
        except ValueError:
            raise PolicyViolation(
                "bad_policy", "warning list ip: a network is an address/prefix with no host bits"
            ) from None
        if str(net) != entry:
            raise PolicyViolation("bad_policy", "warning list ip: write networks canonically")
        return "network", net
    if kind == "email" and "@" not in entry:
        labels = entry.split(".")
        if entry != entry.lower() or not all(
            label
            and len(label) <= 63
            and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
            for label in labels
        ):
            raise PolicyViolation(
                "bad_policy", "warning list email: a domain is lower-case ASCII (IDNA) labels"
            )
        return "domain", entry
    try:
        canon = canonical(kind, entry)
    except InvalidValue as e:
        raise PolicyViolation(
            "bad_policy", f"warning list {kind}: an entry is not valid ({e.rule})"
        ) from None
    if canon != entry:
        raise PolicyViolation(
            "bad_policy", f"warning list {kind}: entries are written in canonical form"
        )
    return "exact", canon


def check_additions(entries: object) -> dict[str, tuple[str, ...]]:
    """A charter policy's ``warning_list`` value, checked: ``{kind: sorted entries}``."""
    if not isinstance(entries, Mapping):
        raise PolicyViolation("bad_policy", "warning_list maps kinds to lists of entries")
    out: dict[str, tuple[str, ...]] = {}
    for kind, values in entries.items():
        if not isinstance(kind, str) or not isinstance(values, Sequence) or isinstance(values, str):
            raise PolicyViolation("bad_policy", "warning_list maps kinds to lists of entries")
        if len(set(values)) != len(values):
            raise PolicyViolation("bad_policy", f"warning list {kind}: entries repeat")
        for v in values:
            parse_entry(kind, v)
        if values:
            out[kind] = tuple(sorted(values))
    return out


def _default() -> WarningList:
    exact: dict[tuple[str, str], Listing] = {}
    for ip in _RESOLVERS:
        exact[("ip", ip)] = Listing("a public DNS resolver", "default")
    for card in _TEST_CARDS:
        exact[("bank_card", card)] = Listing("a card scheme's published test number", "default")
    for phone in _SERVICE_NUMBERS:
        exact[("phone", phone)] = Listing("a published service number", "default")
    networks = tuple(
        (ipaddress.ip_network(n), Listing(why, "default"))
        for why, nets in _NETWORKS.items()
        for n in nets
    )
    domains = {d: Listing("a reserved example or test domain", "default") for d in _DOMAINS}
    return WarningList(exact=exact, networks=networks, domains=domains)


#: The shipped list (version :data:`WARNING_LIST_VERSION`).
DEFAULT_LIST: WarningList = _default()
