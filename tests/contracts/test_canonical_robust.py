"""No canonicaliser raises anything but InvalidValue, for any str (issue 18).

Hypothesis throws every kind arbitrary text -- lone surrogates, control and
format characters, text longer than the limit, mixed scripts -- bare and
behind each kind's special prefixes. Whatever is accepted is a fixed point.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.errors import InvalidValue
from contracts.indicators import (
    KINDS,
    MAX_VALUE_CHARS,
    canonical,
    canonical_account,
    canonical_bank_card,
    canonical_device,
    canonical_email,
    canonical_id_number,
    canonical_ip,
    canonical_merchant,
    canonical_phone,
)

ROBUST = settings(max_examples=120, deadline=None)

# Every code point, surrogates and controls included.
ANY_CHAR = st.characters(codec=None, categories=None)
POOL = (
    [chr(c) for c in range(0x20, 0x7F)]
    + list("０１２３４５６７８９＋（）－．／：＠\u00a0\u3000\u2013\u2212\u200b\u202e\ufeff")
    + list("ßςσİıﬁ中文例え한국어العربيةΑΒΓабв")
    + ["\ud800", "\udfff", "\x00", "\t", "\n", "\x1b", "\x7f", "\x85"]
)
MIXED = st.one_of(st.sampled_from(POOL), ANY_CHAR)
TEXT = st.one_of(st.text(ANY_CHAR, max_size=40), st.text(MIXED, max_size=60))
PREFIXES = st.sampled_from(
    [
        "",
        "CN:",
        " cn : ",
        "US:",
        "imei:",
        "IMEI: A",
        "iban:",
        "iban:GB",
        "uscc:",
        "uscc:N2",
        "mid:",
        "a@",
        "a@xn--",
        "a@b.",
        "+86 ",
        "00",
        "62",
        "::ffff:",
        "xn--",
    ]
)

FUNCTIONS: dict[str, Any] = {
    "phone": canonical_phone,
    "email": canonical_email,
    "bank_card": canonical_bank_card,
    "id_number": canonical_id_number,
    "merchant": canonical_merchant,
    "device": canonical_device,
    "account": canonical_account,
    "ip": canonical_ip,
}


def only_invalid_value(kind: str, value: str) -> None:
    try:
        canon = canonical(kind, value)
    except InvalidValue as exc:
        assert exc.kind == kind
        assert exc.rule and exc.rule.replace("_", "").isalpha()
        return
    # anything else propagates and fails the test
    assert isinstance(canon, str) and len(canon) <= MAX_VALUE_CHARS
    assert canonical(kind, canon) == canon


@pytest.mark.parametrize("kind", sorted(KINDS))
@given(prefix=PREFIXES, text=TEXT)
@ROBUST
def test_any_text_only_invalid_value(kind: str, prefix: str, text: str) -> None:
    only_invalid_value(kind, prefix + text)


@pytest.mark.parametrize("kind", sorted(KINDS))
@given(
    prefix=PREFIXES,
    unit=st.text(MIXED, min_size=1, max_size=12),
    size=st.integers(MAX_VALUE_CHARS - 12, MAX_VALUE_CHARS + 12),
)
@ROBUST
def test_text_about_the_length_limit_only_invalid_value(
    kind: str, prefix: str, unit: str, size: int
) -> None:
    value = (prefix + unit * (size // len(unit) + 1))[:size]
    only_invalid_value(kind, value)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(
    "value",
    [
        None,
        0,
        13800138000,
        1.5,
        b"13800138000",
        bytearray(b"x"),
        ["13800138000"],
        {"v": 1},
        object(),
        datetime.date(2000, 1, 1),
    ],
    ids=lambda v: type(v).__name__,
)
def test_non_str_is_invalid_value(kind: str, value: object) -> None:
    for call in (lambda: canonical(kind, value), lambda: FUNCTIONS[kind](value)):
        with pytest.raises(InvalidValue) as info:
            call()
        assert info.value.rule == "not_a_string"
        assert info.value.kind == kind


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_very_long_input_is_refused_quickly(kind: str) -> None:
    for value in ("1" * 10_000_000, "a@" + "b." * 100_000 + "com", "\ud800" * 100_000):
        with pytest.raises(InvalidValue) as info:
            canonical(kind, value)
        assert info.value.rule == "too_long"


@given(value=st.text(st.sampled_from("0123456789Xx -."), min_size=10, max_size=24))
@ROBUST
def test_cn_ids_of_every_shape_only_invalid_value(value: str) -> None:
    only_invalid_value("id_number", "CN:" + value)


@given(
    label=st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"), max_size=24),
    tail=st.sampled_from([".de", ".com", ".xn--p1ai", ""]),
)
@ROBUST
def test_punycode_labels_only_invalid_value(label: str, tail: str) -> None:
    only_invalid_value("email", f"user@xn--{label}{tail}")
