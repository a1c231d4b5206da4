"""Every real identifier is accepted (issue 18, DESIGN §4).

A refusal of a real value hides a fraudster from the whole consortium, so
each kind is checked by what every real value satisfies and by nothing more.
These tests pin the cases stricter rules got wrong.
"""

from __future__ import annotations

import datetime
import pathlib
import re
import string

import pytest
import stdnum
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn
from stdnum import numdb
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc

from contracts.cn_provinces import PROVINCE_CODES
from contracts.errors import InvalidValue
from contracts.indicators import canonical, canonical_id_number

PROPERTY = settings(max_examples=150, deadline=None)
TODAY = datetime.date(2026, 5, 1)


def ric(body17: str) -> str:
    """A resident ID with the right check character."""
    return body17 + stdnum_ric.calc_check_digit(body17 + "0")


def rule_of(kind: str, value: str, **kw: str) -> str:
    with pytest.raises(InvalidValue) as info:
        canonical(kind, value, **kw)
    assert info.value.kind == kind
    return info.value.rule


def id_rule(value: str, today: datetime.date = TODAY) -> str:
    with pytest.raises(InvalidValue) as info:
        canonical_id_number(value, today=today)
    return info.value.rule


# --------------------------------------------------------------------------- CN resident IDs


@pytest.mark.parametrize(
    "number",
    [
        "620201196803166777",  # Jiayuguan: a city without counties (stdnum: KeyError)
        ric("31011519850101123"),  # Pudong (code since 1992), born 1985
        ric("31011519500607002"),  # Pudong, born 1950
        ric("11999919900101123"),  # a county code no table knows
        ric("44010019880808001"),  # Guangzhou's city-level code
        ric("46000019700101001"),  # Hainan, province since 1988, born 1970
        ric("50010119600101001"),  # Chongqing, municipality since 1997, born 1960
        ric("81000019900101001"),  # residence permit of a Hong Kong resident
        ric("82000019900101001"),  # ... of a Macao resident
        ric("83000019900101001"),  # ... of a Taiwan resident
        ric("71000019500101001"),  # Taiwan on GB/T 2260
        ric("11010519000101001"),  # born on the first day allowed
        ric("11010520000229001"),  # a leap day
    ],
)
def test_real_cn_ids_are_accepted(number: str) -> None:
    assert canonical_id_number("CN:" + number, today=TODAY) == "CN:" + number
    assert canonical("id_number", "CN:" + number) == "CN:" + number


def test_the_issues_examples_no_longer_crash() -> None:
    # stdnum crashed on the first and refused the second; both are real shapes.
    with pytest.raises(KeyError):
        stdnum_ric.validate("620201196803166777")
    pudong = ric("31011519850101123")
    with pytest.raises(stdnum_ric.InvalidComponent):
        stdnum_ric.validate(pudong)
    assert canonical("id_number", "CN:620201196803166777") == "CN:620201196803166777"
    assert canonical("id_number", "CN:" + pudong) == "CN:" + pudong


@given(
    province=st.sampled_from(sorted(PROVINCE_CODES)),
    place=st.text(string.digits, min_size=4, max_size=4),
    birth=st.dates(min_value=datetime.date(1900, 1, 1), max_value=TODAY),
    seq=st.text(string.digits, min_size=3, max_size=3),
)
@PROPERTY
def test_property_any_place_any_birth_date(
    province: str, place: str, birth: datetime.date, seq: str
) -> None:
    number = ric(province + place + birth.strftime("%Y%m%d") + seq)
    assert canonical_id_number("CN:" + number, today=TODAY) == "CN:" + number


@given(
    province=st.text(string.digits, min_size=2, max_size=2).filter(
        lambda p: p not in PROVINCE_CODES and not p.startswith("9")
    ),
    rest=st.text(string.digits, min_size=4, max_size=4),
)
@PROPERTY
def test_property_province_not_on_the_list_is_refused(province: str, rest: str) -> None:
    assert id_rule("CN:" + ric(province + rest + "19900101001")) == "component"


@pytest.mark.parametrize(
    "body",
    [
        "11010518991231001",  # born before 1900
        "11010520260502001",  # born after TODAY
        "11010520990101001",
        "11010520010229001",  # no 29 February in 2001
        "11010519900001001",  # month 0
        "11010519900100001",  # day 0
        "11010519901301001",  # month 13
        "11010519900431001",  # 31 April
    ],
)
def test_impossible_birth_dates_are_refused(body: str) -> None:
    assert id_rule("CN:" + ric(body)) == "component"


def test_today_is_the_upper_bound() -> None:
    born_today = ric("110105" + TODAY.strftime("%Y%m%d") + "001")
    assert canonical_id_number("CN:" + born_today, today=TODAY) == "CN:" + born_today
    yesterday = TODAY - datetime.timedelta(days=1)
    assert id_rule("CN:" + born_today, today=yesterday) == "component"
    # Without an argument the bound is the real date.
    future = ric(
        "110105" + (datetime.date.today() + datetime.timedelta(days=2)).strftime("%Y%m%d") + "001"
    )
    assert rule_of("id_number", "CN:" + future) == "component"


@given(
    birth=st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(1999, 12, 31)),
    seq=st.text(string.digits, min_size=3, max_size=3),
    province=st.sampled_from(sorted(PROVINCE_CODES)),
    sep=st.sampled_from(["", " ", "-"]),
)
@PROPERTY
def test_property_first_generation_ids_become_18_characters(
    birth: datetime.date, seq: str, province: str, sep: str
) -> None:
    full = ric(province + "0102" + birth.strftime("%Y%m%d") + seq)
    old = full[:6] + sep + full[8:14] + sep + full[14:17]
    assert len(old.replace(sep, "") if sep else old) == 15
    assert canonical("id_number", "CN:" + old) == "CN:" + full
    assert canonical("id_number", "CN:" + full) == "CN:" + full


def test_first_generation_examples() -> None:
    assert canonical("id_number", "CN:110105491231002") == "CN:11010519491231002X"
    assert canonical("id_number", "cn: 110105 491231 002") == "CN:11010519491231002X"
    assert rule_of("id_number", "CN:11010549123100X") == "format"  # no check character then
    assert rule_of("id_number", "CN:110105491331002") == "component"  # month 13
    assert rule_of("id_number", "CN:990105491231002") == "component"
    assert rule_of("id_number", "CN:1101054912310") == "length"
    assert rule_of("id_number", "CN:1101054912310021") == "length"


def test_foreigners_permanent_residence_cards() -> None:
    # 2023 edition: "9", the province of issue, 14 digits, the MOD 11-2 check
    # character. The birth date's position is not published: not checked.
    card = ric("91184019900101001")
    assert canonical("id_number", "CN:" + card) == "CN:" + card
    other = ric("95099999999999999")
    assert canonical("id_number", "CN:" + other) == "CN:" + other
    assert rule_of("id_number", "CN:" + ric("91084019900101001")) == "component"  # 10
    wrong = card[:-1] + ("0" if card[-1] != "0" else "1")
    assert rule_of("id_number", "CN:" + wrong) == "checksum"
    assert rule_of("id_number", "CN:" + card[:-1] + "A") == "format"
    # A first-generation ID never starts with 9.
    assert rule_of("id_number", "CN:910105491231002") == "component"
    # 2017 edition: three letters, twelve digits, kept as given (upper-cased).
    assert canonical("id_number", "cn:usa110090615901") == "CN:USA110090615901"
    assert rule_of("id_number", "CN:US1110090615901") == "format"


def test_cn_check_character_is_iso_7064_mod_11_2() -> None:
    # Computed by hand from GB 11643-1999: weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2.
    body = "11010519491231002"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    assert check == "X"
    assert canonical("id_number", "CN:" + body + check) == "CN:" + body + "X"
    for other in "0123456789":
        assert rule_of("id_number", "CN:" + body + other) == "checksum"


# --------------------------------------------------------------------------- bank cards


@pytest.mark.parametrize(
    "number",
    [
        "6214832018989180",  # hutool issue #2510: known to Alipay's card-BIN service
        "6221730301002042987",
        "6214 8320 1898 9182",
    ],
)
def test_unionpay_cards_failing_luhn_are_accepted(number: str) -> None:
    digits = number.replace(" ", "")
    assert not stdnum_luhn.is_valid(digits)
    assert canonical("bank_card", number) == digits


@pytest.mark.parametrize(
    "number",
    [
        "621483201898918",  # 15 digits: not a UnionPay length
        "6314832018989181",  # not UnionPay
        "4111111111111112",
        "5500000000000005",
        "3782822463100006",
    ],
)
def test_other_cards_failing_luhn_are_refused(number: str) -> None:
    assert not stdnum_luhn.is_valid(number)
    assert rule_of("bank_card", number) == "luhn"


@given(st.text(string.digits, min_size=14, max_size=17))
@PROPERTY
def test_property_unionpay_without_luhn(rest: str) -> None:
    assert canonical("bank_card", "62" + rest) == "62" + rest


# --------------------------------------------------------------------------- USCC

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def uscc(body17: str) -> str:
    return body17 + stdnum_uscc.calc_check_digit(body17)


@pytest.mark.parametrize(
    "head",
    ["11", "12", "31", "51", "52", "53", "71", "91", "92", "93", "A1", "N1", "N2", "N3", "Y1"],
)
def test_uscc_every_registering_authority(head: str) -> None:
    code = uscc(head + "110105" + "MA01XY73K")
    assert canonical("merchant", "uscc:" + code.lower()) == "uscc:" + code


def test_uscc_letter_authorities_stdnum_refuses() -> None:
    code = uscc("N2110105MA0000001")
    assert not stdnum_uscc.is_valid(code)
    assert canonical("merchant", "USCC: " + code) == "uscc:" + code


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ("9A110105MA0000001", "format"),  # entity type is a digit
        ("91A10105MA0000001", "format"),  # region code is digits
        ("I1110105MA0000001", "format"),  # I is not in the alphabet
        ("911101050A00000O1", "format"),
    ],
)
def test_uscc_structure(body: str, rule: str) -> None:
    code = body + "0"
    assert rule_of("merchant", "uscc:" + code) == rule


@given(
    authority=st.sampled_from("123456789ANY"),
    entity=st.sampled_from("12345679"),
    region=st.text(string.digits, min_size=6, max_size=6),
    org=st.text(USCC_ALPHABET, min_size=9, max_size=9),
)
@PROPERTY
def test_property_uscc(authority: str, entity: str, region: str, org: str) -> None:
    code = uscc(authority + entity + region + org)
    assert canonical("merchant", "uscc:" + code) == "uscc:" + code
    wrong = code[:-1] + USCC_ALPHABET[(USCC_ALPHABET.index(code[-1]) + 1) % 31]
    assert rule_of("merchant", "uscc:" + wrong) == "checksum"


# --------------------------------------------------------------------------- devices

HEX = "0123456789ABCDEF"


def test_meid_given_as_imei() -> None:
    assert canonical("device", "imei:A0000012345678") == "meid:a0000012345678"
    assert canonical("device", "IMEI: a0 000012 345678") == "meid:a0000012345678"
    assert canonical("device", "meid:A0000012345678") == "meid:a0000012345678"
    check = stdnum_luhn.calc_check_digit("A0000012345678", alphabet=HEX)
    assert canonical("device", "imei:A0000012345678" + check) == "meid:a0000012345678"
    wrong = HEX[(HEX.index(check) + 1) % 16]
    assert rule_of("device", "imei:A0000012345678" + wrong) == "luhn"
    # An IMEI's first digit is decimal; a letter later is still refused.
    assert rule_of("device", "imei:49015420323751A") == "format"
    assert rule_of("device", "imei:A000001234567") == "format"  # 13 hex digits
    assert rule_of("device", "imei:G0000012345678") == "format"


@given(st.text(HEX, min_size=13, max_size=13), st.sampled_from("ABCDEFabcdef"))
@PROPERTY
def test_property_meid(rest: str, first: str) -> None:
    meid = first + rest
    canon = canonical("device", "imei:" + meid)
    assert canon == "meid:" + meid.lower()
    assert canonical("device", canon) == canon


# --------------------------------------------------------------------------- IBANs

_REGISTRY = numdb.get("iban")
_IBAN_DAT = pathlib.Path(stdnum.__file__).parent / "iban.dat"
_COUNTRIES = sorted(
    line[:2]
    for line in _IBAN_DAT.read_text(encoding="utf-8").splitlines()
    if re.match(r"[A-Z]{2} ", line)
)
_CHARS = {
    "n": string.digits,
    "a": string.ascii_uppercase,
    "c": string.digits + string.ascii_uppercase,
}


def bban_for(country: str, draw: st.DrawFn) -> str:
    structure = _REGISTRY.info(country)[0][1]["bban"]
    parts = re.findall(r"(\d+)!([nac])", structure)
    return "".join(
        draw(st.text(_CHARS[kind], min_size=int(n), max_size=int(n))) for n, kind in parts
    )


def with_check_digits(country: str, bban: str) -> str:
    number = country + "00" + bban
    return country + stdnum_iban.calc_check_digits(number) + bban


def test_registry_is_read() -> None:
    assert len(_COUNTRIES) > 80 and {"GB", "DE", "BE", "ES", "NO", "ME", "FR"} <= set(_COUNTRIES)


@pytest.mark.parametrize("country", _COUNTRIES)
@given(data=st.data())
@settings(max_examples=8, deadline=None)
def test_ibans_of_every_country_stdnum_knows(country: str, data: st.DataObject) -> None:
    iban = with_check_digits(country, bban_for(country, data.draw))
    spaced = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    assert canonical("account", "iban:" + spaced.lower()) == "iban:" + iban
    wrong = iban[:2] + f"{(int(iban[2:4]) + 1) % 100:02d}" + iban[4:]
    assert rule_of("account", "iban:" + wrong) in {"checksum", "format"}


@pytest.mark.parametrize(
    "iban",
    [
        "BE71 0961 2345 6769",
        "ES91 2100 0418 4502 0005 1332",
        "NO93 8601 1117 947",
        "ME25 5050 0001 2345 6789 51",
        "FR14 2004 1010 0505 0001 3M02 606",
        "DE89 3704 0044 0532 0130 00",
    ],
)
def test_registry_examples(iban: str) -> None:
    assert canonical("account", "iban:" + iban) == "iban:" + iban.replace(" ", "")


def test_belgian_iban_with_a_bank_code_stdnum_does_not_know() -> None:
    bban = "112" + "1234567"  # 112: no bank in stdnum's table
    bban += f"{int(bban) % 97 or 97:02d}"
    iban = with_check_digits("BE", bban)
    assert not stdnum_iban.is_valid(iban)
    assert canonical("account", "iban:" + iban) == "iban:" + iban


def test_iban_of_a_country_outside_the_registry() -> None:
    algeria = with_check_digits("DZ", "0002100001113000000570")
    assert canonical("account", "iban:" + algeria) == "iban:" + algeria
    assert rule_of("account", "iban:DZ00" + algeria[4:]) == "checksum"
    assert rule_of("account", "iban:" + with_check_digits("DZ", "12345678")) == "format"
    assert rule_of("account", "iban:" + with_check_digits("DZ", "1" * 31)) == "format"


# --------------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+86 138 0013 8000", "CN", "+8613800138000"),
        ("+86-138-0013-8000", "CN", "+8613800138000"),
        ("(+86) 138 0013 8000", "CN", "+8613800138000"),
        ("86 138 0013 8000", "CN", "+8613800138000"),
        ("0086 138 0013 8000", "CN", "+8613800138000"),
        ("（010）6552 9988", "CN", "+861065529988"),
        ("010－6552－9988", "CN", "+861065529988"),
        ("138\u00a00013\u00a08000", "CN", "+8613800138000"),
        ("138\u30000013\u30008000", "CN", "+8613800138000"),
        ("138–0013–8000", "CN", "+8613800138000"),
        ("＋86 138 0013 8000", "CN", "+8613800138000"),
        ("+44 (0) 20 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("07911 123456", "GB", "+447911123456"),
        ("0044 7911 123456", "GB", "+447911123456"),
        ("030/12345678", "DE", "+493012345678"),
        ("+49 (0)30 1234 5678", "DE", "+493012345678"),
        ("0151 2345 6789", "DE", "+4915123456789"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("650.253.0000", "US", "+16502530000"),
        ("1-650-253-0000", "US", "+16502530000"),
        ("+1 650 253 0000", "US", "+16502530000"),
        ("011 86 138 0013 8000", "US", "+8613800138000"),
        ("001-650-253-0000", "US", "+16502530000"),
        ("00 86 138 0013 8000", "US", "+8613800138000"),
        ("(02) 2345-6789", "TW", "+886223456789"),
        ("0912-345-678", "TW", "+886912345678"),
        ("+852 2345 6789", "HK", "+85223456789"),
        ("03-1234-5678", "JP", "+81312345678"),
        ("0086 10 6552 9988", "JP", "+861065529988"),
    ],
)
def test_phone_written_formats(raw: str, region: str, expected: str) -> None:
    assert canonical("phone", raw, region=region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "rule"),
    [
        ("+1 650 253 0000 x123", "US", "format"),
        ("1-800-FLOWERS", "US", "format"),
        ("１３８００１３８０００", "CN", "format"),  # full-width digits are not converted
        ("00 999 1234 5678", "US", "not_valid_number"),
        ("001 650 253 000", "US", "not_valid_number"),
        # Taiwan's international prefixes are 002, 005, ...: "004" is not read as "+4".
        ("004 96936342", "TW", "not_valid_number"),
    ],
)
def test_phone_still_refused(raw: str, region: str, rule: str) -> None:
    assert rule_of("phone", raw, region=region) == rule


# --------------------------------------------------------------------------- e-mail


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("张伟@163.com", "张伟@163.com"),
        ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"),
        ("José.Müller@Bücher.de", "josé.müller@xn--bcher-kva.de"),
        ("μαρία@ελλάδα.gr", "μαρία@xn--hxakic4aa.gr"),
        ("иван@пример.рф", "иван@xn--e1afmkfd.xn--p1ai"),
        ("user@xn--strae-oqa.de", "user@xn--strae-oqa.de"),  # straße.de under IDNA 2008
        ("user@XN--STRAE-OQA.DE", "user@xn--strae-oqa.de"),
        ("a@xn--zca.com", "a@xn--zca.com"),  # ß.com
        ("user@xn--mxaiaa5a.gr", "user@xn--mxaiaa5a.gr"),
    ],
)
def test_internationalised_email(raw: str, expected: str) -> None:
    assert canonical("email", raw) == expected
    assert canonical("email", expected) == expected


def test_unicode_sharp_s_keeps_its_idna_2003_form() -> None:
    # Changing this would change an accepted value's canonical form (a new
    # CANON_VERSION): the Unicode spelling keeps IDNA 2003's mapping ß -> ss.
    assert canonical("email", "user@straße.de") == "user@strasse.de"


@pytest.mark.parametrize(
    "raw",
    [
        "user@xn--bcher-kvb.de",  # decodes to a title-case letter, which IDNA maps
        "user@xn--strae-.de",  # decodes to plain ASCII
        "user@xn--zca-.com",
    ],
)
def test_bad_punycode_still_refused(raw: str) -> None:
    assert rule_of("email", raw) == "idna"
