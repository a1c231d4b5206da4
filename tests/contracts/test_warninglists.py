"""Warning lists: the shipped list, the charter's additions, and what a value hits."""

from __future__ import annotations

import pytest

from contracts.errors import DecodeError, PolicyViolation
from contracts.indicators import canonical
from contracts.policy import DataPolicy
from contracts.warninglists import DEFAULT_LIST, WarningList, check_additions, parse_entry


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("bank_card", "4111111111111111"),
        ("bank_card", "4111 1111 1111 1111"),
        ("bank_card", "5500-0000-0000-0004"),
        ("bank_card", "6200000000000005"),
        ("ip", "8.8.8.8"),
        ("ip", "::ffff:1.1.1.1"),
        ("ip", "114.114.114.114"),
        ("ip", "223.5.5.5"),
        ("ip", "2001:4860:4860::8888"),
        ("ip", "192.0.2.44"),  # documentation
        ("ip", "2001:db8::1"),
        ("ip", "10.1.2.3"),  # private
        ("ip", "172.31.255.1"),
        ("ip", "192.168.0.1"),
        ("ip", "fd12:3456::1"),
        ("ip", "127.0.0.1"),  # loopback
        ("ip", "::1"),
        ("ip", "169.254.10.10"),  # link-local
        ("ip", "fe80::1"),
        ("ip", "100.64.0.1"),  # CGNAT
        ("ip", "100.127.255.254"),
        ("email", "someone@example.com"),
        ("email", "Someone@EXAMPLE.org"),
        ("email", "a.b@mail.example.net"),
        ("email", "user@host.test"),
        ("email", "user@nowhere.invalid"),
        ("phone", "+86 10 95588"),
        ("phone", "400 820 5555"),
    ],
)
def test_the_shipped_list_refuses(kind: str, raw: str) -> None:
    listing = DEFAULT_LIST.listed(kind, canonical(kind, raw))
    assert listing is not None and listing.source == "default"
    # the message names the kind and why, never the value
    text = listing.message(kind)
    assert text.startswith(f"{kind}: ") and canonical(kind, raw) not in text


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("bank_card", "4111111111111129"),
        ("ip", "8.8.8.9"),
        ("ip", "100.128.0.1"),  # just past CGNAT
        ("ip", "172.32.0.1"),  # just past 172.16/12
        ("ip", "11.0.0.1"),
        ("ip", "2400:3200::2"),
        ("email", "someone@example.co"),
        ("email", "someone@notexample.com"),
        ("email", "someone@example.com.cn"),
        ("email", "test@bank.cn"),  # "test" as a local part is no domain
        ("phone", "+86 138 0013 8000"),
    ],
)
def test_the_shipped_list_leaves_real_values_alone(kind: str, raw: str) -> None:
    assert DEFAULT_LIST.listed(kind, canonical(kind, raw)) is None


def test_every_shipped_exact_value_is_canonical() -> None:
    exact = list(DEFAULT_LIST.exact_values())
    assert len(exact) > 50
    for kind, value in exact:
        assert canonical(kind, value) == value, (kind, value)
    kinds = {k for k, _ in exact}
    assert kinds == {"ip", "bank_card", "phone"}


def test_entries_are_read_as_exact_values_networks_or_domains() -> None:
    assert parse_entry("ip", "5.6.7.8") == ("exact", "5.6.7.8")
    form, net = parse_entry("ip", "198.51.100.0/24")
    assert form == "network" and str(net) == "198.51.100.0/24"
    assert parse_entry("email", "example.cn") == ("domain", "example.cn")
    assert parse_entry("email", "noreply@bank.cn") == ("exact", "noreply@bank.cn")
    assert parse_entry("phone", "+8613912345678") == ("exact", "+8613912345678")
    for kind, entry in [
        ("ip", "10.0.0.1/8"),  # host bits set
        ("ip", "010.0.0.1"),
        ("email", "Example.CN"),
        ("email", "exa mple.cn"),
        ("phone", "13912345678"),  # not canonical (E.164)
        ("bank_card", "4111 1111 1111 1111"),
        ("fax", "123"),
        ("ip", " 1.2.3.4"),
    ]:
        with pytest.raises(PolicyViolation) as e:
            parse_entry(kind, entry)
        assert e.value.reason == "bad_policy"


def test_additions_are_checked_and_sorted() -> None:
    assert check_additions({"ip": ["9.9.9.10", "5.5.5.5"], "email": []}) == {
        "ip": ("5.5.5.5", "9.9.9.10")
    }
    for bad in ({"ip": "5.5.5.5"}, {"ip": ["5.5.5.5", "5.5.5.5"]}, ["ip"], {"ip": ["x"]}):
        with pytest.raises(PolicyViolation):
            check_additions(bad)


def test_the_charter_adds_to_the_shipped_list() -> None:
    p = DataPolicy(
        warning_list={"ip": ["5.5.5.5", "198.18.0.0/15"], "email": ["example.cn"], "phone": []}
    )
    w = p.warnings()
    assert w.listed("ip", "5.5.5.5") is not None and w.listed("ip", "5.5.5.5").source == "charter"  # type: ignore[union-attr]
    assert w.listed("email", "a@mail.example.cn") is not None
    assert w.listed("ip", "8.8.8.8") is not None  # the shipped list still holds
    assert ("ip", "5.5.5.5") in set(w.exact_values())
    assert DataPolicy().warnings() is DEFAULT_LIST
    # the policy's encoding carries the additions and reads back the same
    m = p.to_map()
    assert m["warning_list"] == {"email": ["example.cn"], "ip": ["198.18.0.0/15", "5.5.5.5"]}
    assert DataPolicy.from_map(m) == p
    m["warning_list"] = {"ip": ["not an ip"]}
    with pytest.raises(DecodeError):
        DataPolicy.from_map(m)


def test_a_local_list_merges_without_losing_the_shipped_entries() -> None:
    local = WarningList.from_entries({"merchant": ["pay:test-shop"]}, "local")
    merged = DEFAULT_LIST.merged(local)
    assert merged.listed("merchant", "pay:test-shop") is not None
    assert merged.listed("bank_card", "4111111111111111") is not None
