"""The phone fast path gives exactly what phonenumbers gives (issue 13).

``canonical_phone`` answers well-formed numbers with ``contracts.phones.fast_e164``
and everything else with ``phonenumbers``; ``canonical_phone_slow`` is
``phonenumbers`` alone. For every input and every region the two must agree:
the same canonical form, or the same refusal (exception class, reason, rule
and message). The fast path must also really be taken for the numbers it is
for (E.164, CN mobile numbers with or without +86/0086).
"""

from __future__ import annotations

import json
import pathlib
import random
import string
from typing import Any

import phonenumbers
import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from contracts.errors import InvalidValue
from contracts.indicators import _phone_text, canonical, canonical_phone, canonical_phone_slow
from contracts.phones import fast_e164

ROOT = pathlib.Path(__file__).resolve().parents[2]
AGREE = settings(max_examples=1500, deadline=None)
SUPPORTED = sorted(phonenumbers.SUPPORTED_REGIONS)

# Every region the node's setting allows (two letters; phonenumbers knows 245 of them,
# any case), and a few it does not, which both paths refuse alike (ValueError).
regions = st.one_of(
    st.sampled_from(SUPPORTED),
    st.sampled_from(SUPPORTED).map(str.lower),
    st.sampled_from(["CN", "US", "GB", "DE", "TW", "HK", "IT", "JP", "CA", "RU", "KZ"]),
    st.text(string.ascii_letters, min_size=2, max_size=2),
    st.sampled_from(["", "001", "ZZ", "C"]),
)
SEPARATORS = [" ", "-", ".", "(", ")", "/", "  ", " - ", "\u00a0", "\u3000", "\u2013", "\uff0d"]
separators = st.sampled_from(SEPARATORS)
PHONE_ALPHABET = (
    "0123456789+-. ()/" + "\u00a0\u3000\u2013\u2212\uff08\uff09\uff0b\uff0d\uff0e\uff0f"
)


def outcome(f: Any, value: object, region: object) -> tuple[object, ...]:
    try:
        return ("ok", f(value, region))
    except InvalidValue as e:
        return (type(e), e.reason, e.kind, e.rule, str(e))
    except ValueError as e:
        return (type(e), str(e))


def agree(value: object, region: object) -> tuple[object, ...]:
    fast, slow = (
        outcome(canonical_phone, value, region),
        outcome(canonical_phone_slow, value, region),
    )
    assert fast == slow, (value, region)
    return fast


def fast_answer(value: str, region: str) -> str | None:
    """What the fast path alone says (None: it asks phonenumbers)."""
    text, region_code = _phone_text(value, region)
    return fast_e164(text, region_code)


@st.composite
def separated(draw: st.DrawFn, digits: str) -> str:
    """``digits`` with separators drawn between (and around) them."""
    out = [draw(st.sampled_from(["", "", "", "(", " "]))]
    for ch in digits:
        out.append(ch)
        if draw(st.integers(0, 3)) == 0:
            out.append(draw(separators))
    return "".join(out)


# --------------------------------------------------------------------------- any input


@given(st.text(max_size=40), regions)
@AGREE
def test_any_text(value: str, region: str) -> None:
    agree(value, region)


@given(st.text(PHONE_ALPHABET, max_size=30), regions)
@AGREE
def test_text_of_phone_characters(value: str, region: str) -> None:
    agree(value, region)


PREFIXES = ["", "+", "+86", "0086", "86", "+0", "00", "0", "011", "+1", "+44", "+886", "+7", "+800"]


@st.composite
def digit_strings(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(PREFIXES))
    digits = draw(st.text("0123456789", min_size=0, max_size=20))
    body = draw(separated(prefix.lstrip("+") + digits))
    plus = "+" if prefix.startswith("+") else ""
    if plus and draw(st.booleans()):
        return draw(st.sampled_from(["", " ", "("])) + plus + body
    return plus + body


@given(digit_strings(), regions)
@AGREE
def test_digit_strings_with_prefixes_and_separators(value: str, region: str) -> None:
    agree(value, region)


@given(st.sampled_from(SUPPORTED), st.text("0123456789", min_size=3, max_size=19))
@AGREE
def test_plus_digits_every_region(region: str, digits: str) -> None:
    agree("+" + digits, region)
    agree(digits, region)
    agree("00" + digits, region)


# --------------------------------------------------------------------------- real numbers


def _examples() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    out = []
    for region in SUPPORTED:
        for t in PhoneNumberType.values():
            ex = phonenumbers.example_number_for_type(region, t)
            if ex is not None:
                out.append((region, ex))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        ex = phonenumbers.example_number_for_non_geo_entity(code)
        if ex is not None:
            out.append(("001", ex))
    return out


EXAMPLES = _examples()


@st.composite
def near_example_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A number near phonenumbers' example of a region and type (its last digits
    redrawn, one more or one fewer), written in one of the ways people write it."""
    home, ex = draw(st.sampled_from(EXAMPLES))
    nsn = phonenumbers.national_significant_number(ex)
    k = draw(st.integers(0, min(4, len(nsn))))
    nsn = nsn[: len(nsn) - k] + draw(st.text("0123456789", min_size=k, max_size=k))
    nsn += draw(st.sampled_from(["", "", "", "0", "9"]))
    if draw(st.integers(0, 9)) == 0:
        nsn = nsn[:-1]
    cc = str(ex.country_code)
    zeros = len(nsn) - len(nsn.lstrip("0"))
    number = phonenumbers.PhoneNumber(
        country_code=ex.country_code,
        national_number=int(nsn or "0"),
        italian_leading_zero=True if zeros else None,
        number_of_leading_zeros=zeros or None,
    )
    style = draw(
        st.sampled_from(["e164", "spaced", "idd", "national", "nat_fmt", "intl_fmt", "cc"])
    )
    if style == "e164":
        value = f"+{cc}{nsn}"
    elif style == "spaced":
        value = "+" + draw(separated(cc + nsn))
    elif style == "idd":
        value = draw(st.sampled_from(["00", "011", "010", "002", "0011"])) + cc + nsn
    elif style == "national":
        value = draw(separated(nsn))
    elif style == "nat_fmt":
        value = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    elif style == "intl_fmt":
        value = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    else:
        value = cc + nsn
    region = home if home != "001" and draw(st.booleans()) else draw(st.sampled_from(SUPPORTED))
    return value, region


@given(near_example_numbers())
@settings(max_examples=3000, deadline=None)
def test_numbers_near_every_regions_examples(case: tuple[str, str]) -> None:
    agree(*case)


CN_MOBILE_STARTS = ["13", "14", "15", "16", "17", "18", "19"]


@st.composite
def cn_mobiles(draw: st.DrawFn) -> str:
    digits = draw(st.sampled_from(CN_MOBILE_STARTS)) + draw(
        st.text("0123456789", min_size=9, max_size=9)
    )
    prefix = draw(st.sampled_from(["", "+86", "0086", "86", "+86 ", "0086 ", "+86-", "(+86)"]))
    if draw(st.booleans()):
        return prefix + digits
    return prefix + draw(separated(digits))


@given(cn_mobiles(), regions)
@AGREE
def test_cn_mobiles_every_region(value: str, region: str) -> None:
    agree(value, region)


@given(cn_mobiles())
@AGREE
def test_cn_mobiles_region_cn(value: str) -> None:
    agree(value, "CN")


# --------------------------------------------------------------------------- corpora


def _vector_phones() -> list[str]:
    out = []
    for path in sorted((ROOT / "contracts" / "vectors").glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            if case["kind"] == "phone":
                out.append(case["input"])
                out.extend([case["canonical"]] if "canonical" in case else [])
    return out


VECTOR_PHONES = _vector_phones()


def test_vectors_are_there() -> None:
    assert len(VECTOR_PHONES) >= 8


@pytest.mark.parametrize("value", VECTOR_PHONES)
def test_vectors_every_region(value: str) -> None:
    for region in SUPPORTED:
        agree(value, region)


def test_vectors_as_published() -> None:
    for path in sorted((ROOT / "contracts" / "vectors").glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            if case["kind"] != "phone":
                continue
            if case.get("error"):
                with pytest.raises(InvalidValue):
                    canonical("phone", case["input"])
            else:
                assert canonical("phone", case["input"]) == case["canonical"]


FAKER_LOCALES = {"zh_CN": "CN", "en_US": "US", "en_GB": "GB", "de_DE": "DE", "zh_TW": "TW"}
PER_LOCALE = 600


@pytest.fixture(scope="module")
def faker_phones() -> dict[str, list[str]]:
    out = {}
    for locale in FAKER_LOCALES:
        f = Faker(locale)
        f.seed_instance(13)
        out[locale] = [f.phone_number() for _ in range(PER_LOCALE)] + [
            f.msisdn() for _ in range(PER_LOCALE)
        ]
    return out


@pytest.mark.parametrize("locale", sorted(FAKER_LOCALES))
def test_faker_corpus(faker_phones: dict[str, list[str]], locale: str) -> None:
    for value in faker_phones[locale]:
        for region in (FAKER_LOCALES[locale], "CN", "US"):
            agree(value, region)


def test_faker_zh_cn_takes_the_fast_path(faker_phones: dict[str, list[str]]) -> None:
    """Faker's zh_CN numbers are CN mobiles (and its msisdn 13 digits that are not)."""
    numbers = faker_phones["zh_CN"][:PER_LOCALE]
    accepted = [v for v in numbers if agree(v, "CN")[0] == "ok"]
    fast = [v for v in accepted if fast_answer(v, "CN") is not None]
    assert len(accepted) >= 0.8 * len(numbers)
    assert len(fast) == len(accepted)


# --------------------------------------------------------------------------- the fast path is taken


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("+8613800138000", "CN", "+8613800138000"),
        ("+86 138 0013 8000", "US", "+8613800138000"),
        ("+86-138-0013-8000", "DE", "+8613800138000"),
        ("(+86) 138 0013 8000", "CN", "+8613800138000"),
        ("13800138000", "CN", "+8613800138000"),
        ("138 0013 8000", "cn", "+8613800138000"),
        ("138-0013-8000", "CN", "+8613800138000"),
        ("008613800138000", "CN", "+8613800138000"),
        ("0086 138 0013 8000", "CN", "+8613800138000"),
        ("+86 10 6552 9988", "CN", "+861065529988"),
        ("+1 (650) 253-0000", "CN", "+16502530000"),
        ("+1 650 253 0000", "US", "+16502530000"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("+44 20 7031 3000", "GB", "+442070313000"),
        ("+49 30 901820", "DE", "+4930901820"),
        ("+886 2 2311 3731", "TW", "+886223113731"),
        ("+39 06 6982", "IT", "+39066982"),
        ("+7 495 123-45-67", "RU", "+74951234567"),
        ("+800 1234 5678", "CN", "+80012345678"),
    ],
)
def test_fast_path_answers(value: str, region: str, expected: str) -> None:
    assert fast_answer(value, region) == expected
    assert agree(value, region) == ("ok", expected)


@pytest.mark.parametrize(
    ("value", "region"),
    [
        ("010 6552 9988", "CN"),  # national prefix 0: phonenumbers strips it
        ("8613800138000", "CN"),  # starts with the region's own calling code
        ("0086 010 6552 9988", "CN"),  # 0 after the international prefix
        ("008613800138000", "US"),  # "00" is not the US international prefix
        ("+86 12345", "CN"),  # not a valid number: phonenumbers refuses it
        ("+999 1234567", "CN"),  # no such calling code
    ],
)
def test_fast_path_declines(value: str, region: str) -> None:
    assert fast_answer(value, region) is None
    agree(value, region)


def test_fast_path_takes_cn_mobiles_in_every_style() -> None:
    rng = random.Random(13)
    taken = valid = 0
    while valid < 2000:
        digits = rng.choice(CN_MOBILE_STARTS) + "".join(rng.choices(string.digits, k=9))
        if outcome(canonical_phone_slow, digits, "CN") != ("ok", "+86" + digits):
            continue  # a range not assigned to mobiles
        valid += 1
        styles = [
            digits,
            f"{digits[:3]} {digits[3:7]} {digits[7:]}",
            f"{digits[:3]}-{digits[3:7]}-{digits[7:]}",
            "+86" + digits,
            f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}",
            "0086" + digits,
        ]
        for value in styles:
            e164 = fast_answer(value, "CN")
            taken += e164 is not None
            assert e164 in (None, "+86" + digits)
            assert agree(value, "CN") == ("ok", "+86" + digits)
    assert taken == 6 * valid


def test_fast_path_takes_e164_of_every_country() -> None:
    """Every example number phonenumbers has, written in E.164, goes the fast way
    (bar those of a calling code whose national prefix could be stripped)."""
    taken = 0
    for _, ex in EXAMPLES:
        e164 = phonenumbers.format_number(ex, PhoneNumberFormat.E164)
        if not phonenumbers.is_valid_number(ex):
            continue
        answer = fast_answer(e164, "CN")
        assert answer in (None, e164)
        taken += answer is not None
        assert agree(e164, "CN") == ("ok", e164)
    assert taken >= 0.95 * len(EXAMPLES)
