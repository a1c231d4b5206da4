"""A realistic identifier corpus from Faker, a generator nobody here wrote (issue 18).

:func:`corpus` draws ``per_kind`` identifiers of every kind, spread evenly over
five locales, each written the way a member platform in that locale would
send it (grouped card numbers, spaced IBANs, 15-digit first-generation IDs,
Chinese local parts, ...). Each sample says what it should become:

* ``expected`` -- the canonical form, worked out here independently of
  ``contracts.indicators`` where that is possible (``None`` otherwise);
* ``exception`` -- ``None`` if the value is valid by construction, else the
  name of a documented exception (:data:`EXCEPTIONS`): values Faker makes
  that no real identifier looks like, with the rule that refuses them.

:func:`figures` canonicalises a corpus and counts, per kind and locale, what
was tried, accepted and refused (by rule). ``python tests/faker_corpus.py``
prints those figures as the Markdown table of docs/canonical-forms.md.
"""

from __future__ import annotations

import ipaddress
import random
import string
from collections import Counter
from dataclasses import dataclass, field

import phonenumbers
from faker import Faker

from contracts.errors import InvalidValue
from contracts.indicators import canonical

LOCALES: dict[str, str] = {
    "zh_CN": "CN",
    "zh_TW": "TW",
    "en_GB": "GB",
    "de_DE": "DE",
    "en_US": "US",
}
KIND_ORDER = ["phone", "email", "bank_card", "id_number", "merchant", "device", "account", "ip"]
SEED = 18

# name -> (rules that may refuse it, why it is not a real identifier)
EXCEPTIONS: dict[str, tuple[frozenset[str], str]] = {
    "phone_no_such_number": (
        frozenset({"not_valid_number", "unparsable"}),
        "Faker draws a phone number's digits at random inside a written format, and "
        "phonenumbers' own lenient parser finds no valid number in it: ranges never "
        "assigned (zh_CN 149, US area codes that do not exist), Ofcom's drama ranges kept "
        "for fiction (en_GB 01632 960, 0115 496 0, 029 2018), area codes and lengths no "
        "dialling plan has (zh_TW (07) + 8 digits, de_DE 00372 ...)",
    ),
    "phone_extension": (
        frozenset({"format"}),
        "written with an extension (Faker's en_US 'x1234'); a number with an extension "
        "is refused: it names a switchboard shared by many, and letters are never dropped",
    ),
    "iban_bban_too_short": (
        frozenset({"format"}),
        "Faker's zh_CN locale has no IBAN of its own (China uses none); its fallback "
        "writes GB IBANs with a 17-character BBAN, one short of the UK's 18",
    ),
}

# SWIFT registry lengths of the countries Faker writes IBANs for.
IBAN_LENGTHS = {"GB": 22, "DE": 22}

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 32100-2015: registering authority -> entity types.
USCC_AUTHORITIES = {
    "1": "1239",
    "2": "19",
    "3": "123459",
    "4": "19",
    "5": "1239",
    "6": "129",
    "7": "129",
    "8": "19",
    "9": "123",
    "A": "19",
    "N": "1239",
    "Y": "1",
}
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714-1997
ORG_ALPHABET = string.digits + string.ascii_uppercase
HEX = "0123456789ABCDEF"


@dataclass(frozen=True)
class Sample:
    kind: str
    locale: str
    raw: str
    expected: str | None
    exception: str | None = None

    @property
    def region(self) -> str:
        return LOCALES[self.locale]


@dataclass
class Cell:
    """What happened to one kind's samples of one locale."""

    tried: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    exceptions: Counter[str] = field(default_factory=Counter)


# --------------------------------------------------------------------------- check digits,
# written here from the standards (not taken from the code under test)


def luhn_check_digit(body: str, alphabet: str = string.digits) -> str:
    base = len(alphabet)
    total = 0
    for i, ch in enumerate(reversed(body)):
        v = alphabet.index(ch)
        if i % 2 == 0:
            v *= 2
            v = v // base + v % base
        total += v
    return alphabet[(base - total % base) % base]


def mod11_2_check(body17: str) -> str:
    """ISO 7064 MOD 11-2, as GB 11643-1999 defines the resident ID's check character."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    r = (12 - sum(int(d) * w for d, w in zip(body17, weights, strict=True)) % 11) % 11
    return "X" if r == 10 else str(r)


def uscc_check(body17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check(body8: str) -> str:
    total = sum(ORG_ALPHABET.index(c) * w for c, w in zip(body8, ORG_WEIGHTS, strict=True))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def grouped(text: str, size: int = 4, sep: str = " ") -> str:
    return sep.join(text[i : i + size] for i in range(0, len(text), size))


# --------------------------------------------------------------------------- per kind


def phone(f: Faker, locale: str, rng: random.Random) -> Sample:
    raw = f.phone_number()
    region = LOCALES[locale]
    if "x" in raw.lower():
        return Sample("phone", locale, raw, None, "phone_extension")
    # The number the writer meant, judged by phonenumbers' lenient parser alone.
    # Faker's en_US "001-###-###-####" is a US number after the "00" prefix.
    international = locale == "en_US" and raw.startswith("001-")
    for text in ["+" + raw[2:]] if international else [raw]:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            return Sample("phone", locale, raw, e164)
    return Sample("phone", locale, raw, None, "phone_no_such_number")


def _ascii_email(f: Faker, rng: random.Random) -> str:
    maker = rng.choice([f.email, f.free_email, f.company_email, f.safe_email])
    address: str = maker()
    return address


def email(f: Faker, locale: str, rng: random.Random) -> Sample:
    if locale in ("zh_CN", "zh_TW") and rng.random() < 0.2:
        # An internationalised address: a Chinese name as the local part.
        local = "".join(f.name().split())
        address = f"{local}@{f.free_email_domain()}"
        return Sample("email", locale, address, address.lower())
    if locale == "de_DE" and rng.random() < 0.2:
        # Umlauts in the local part and the domain (IDNA); expected form unknown here.
        local = "".join(ch for ch in f.first_name().lower() if ch.isalpha() or ch == "-")
        label = "".join(ch for ch in f.last_name().lower() if ch.isalpha())
        return Sample("email", locale, f"{local.strip('-')}@{label}.de", None)
    address = _ascii_email(f, rng)
    if rng.random() < 0.1:
        address = address.upper()
    return Sample("email", locale, address, address.lower())


def bank_card(f: Faker, locale: str, rng: random.Random) -> Sample:
    digits: str = f.credit_card_number()
    raw = grouped(digits) if rng.random() < 0.5 else digits
    return Sample("bank_card", locale, raw, digits)


def id_number(f: Faker, locale: str, rng: random.Random) -> Sample:
    if locale == "zh_CN":
        ssn: str = f.ssn(min_age=0, max_age=110)
        style = rng.random()
        if style < 0.1 and ssn[6:8] == "19":
            # the first-generation form of the same person's ID
            raw = "CN:" + ssn[:6] + ssn[8:17]
        elif style < 0.2:
            raw = f"cn: {ssn[:6]} {ssn[6:14]} {ssn[14:].lower()}"
        else:
            raw = "CN:" + ssn
        return Sample("id_number", locale, raw, "CN:" + ssn)
    if locale == "de_DE":
        ident: str = f.rvnr()
    else:
        ident = f.ssn()
    country = LOCALES[locale]
    compact = "".join(ch for ch in ident if ch.isalnum()).upper()
    return Sample("id_number", locale, f"{country}:{ident}", f"{country}:{compact}")


def uscc(f: Faker, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.7:
        head = "91"
    elif r < 0.85:
        head = "92"
    else:
        authority = rng.choice(sorted(USCC_AUTHORITIES))
        head = authority + rng.choice(USCC_AUTHORITIES[authority])
    region = f.ssn()[:6]
    # Organisation code: since 2015 new enterprises' begin with "MA".
    org_body = ("MA" if rng.random() < 0.5 else "") + "".join(
        rng.choice(USCC_ALPHABET) for _ in range(8)
    )
    org = org_body[:8] + org_code_check(org_body[:8])
    body = head + region + org
    return body + uscc_check(body)


def merchant(f: Faker, locale: str, rng: random.Random) -> Sample:
    if locale == "zh_CN":
        code = uscc(f, rng)
        raw = "USCC:" + (code.lower() if rng.random() < 0.1 else code)
        return Sample("merchant", locale, raw, "uscc:" + code)
    if locale == "zh_TW":
        ubn = f.numerify("########")
        return Sample("merchant", locale, f"UBN: {ubn}", f"ubn:{ubn}")
    if locale == "en_US":
        ein: str = f.ein()
        return Sample("merchant", locale, f"ein:{ein}", f"ein:{ein}")
    vat: str = f.vat_id()
    return Sample("merchant", locale, f"VAT:{vat}", f"vat:{vat}")


def device(f: Faker, locale: str, rng: random.Random) -> Sample:
    r = rng.random()
    if r < 0.7:
        body = f.numerify("##############")
        imei = body + luhn_check_digit(body)
        raw = f"{imei[:2]}-{imei[2:8]}-{imei[8:14]}-{imei[14]}" if r < 0.2 else imei
        return Sample("device", locale, "imei:" + raw, "imei:" + imei)
    if r < 0.8:
        # A CDMA phone's MEID, as Android's getDeviceId reports it in the IMEI field.
        meid = rng.choice("ABCDEF") + "".join(rng.choice(HEX) for _ in range(13))
        if rng.random() < 0.3:
            meid += luhn_check_digit(meid, HEX)
        return Sample("device", locale, "IMEI:" + meid, "meid:" + meid[:14].lower())
    if r < 0.9:
        android_id = f.hexify("^" * 16)
        return Sample("device", locale, "android_id:" + android_id, "android_id:" + android_id)
    idfa = str(f.uuid4()).upper()
    return Sample("device", locale, "idfa:" + idfa, "idfa:" + idfa.lower())


def account(f: Faker, locale: str, rng: random.Random) -> Sample:
    iban: str = f.iban()
    raw = "iban:" + (grouped(iban) if rng.random() < 0.5 else iban)
    if len(iban) != IBAN_LENGTHS[iban[:2]]:
        return Sample("account", locale, raw, None, "iban_bban_too_short")
    return Sample("account", locale, raw, "iban:" + iban)


def ip(f: Faker, locale: str, rng: random.Random) -> Sample:
    r = rng.random()
    if r < 0.4:
        raw: str = f.ipv4()
    elif r < 0.5:
        raw = f.ipv4_private()
    elif r < 0.6:
        raw = "::ffff:" + f.ipv4_public()
    else:
        raw = f.ipv6()
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return Sample("ip", locale, raw, str(address))


MAKERS = {
    "phone": phone,
    "email": email,
    "bank_card": bank_card,
    "id_number": id_number,
    "merchant": merchant,
    "device": device,
    "account": account,
    "ip": ip,
}


def corpus(
    per_kind: int = 10_000, kinds: list[str] | None = None, seed: int = SEED
) -> list[Sample]:
    """``per_kind`` samples of every kind, spread evenly over the locales."""
    samples: list[Sample] = []
    for k, kind in enumerate(kinds or KIND_ORDER):
        for j, locale in enumerate(LOCALES):
            f = Faker(locale)
            f.seed_instance(seed * 1000 + k * 10 + j)
            rng = random.Random(f"{seed}-{kind}-{locale}")
            n = per_kind // len(LOCALES) + (1 if j < per_kind % len(LOCALES) else 0)
            samples += [MAKERS[kind](f, locale, rng) for _ in range(n)]
    return samples


def outcome(sample: Sample) -> tuple[str | None, str | None]:
    """(canonical form, None) or (None, refusal rule)."""
    try:
        return canonical(sample.kind, sample.raw, region=sample.region), None
    except InvalidValue as exc:
        return None, exc.rule


def figures(samples: list[Sample]) -> dict[tuple[str, str], Cell]:
    cells: dict[tuple[str, str], Cell] = {}
    for s in samples:
        cell = cells.setdefault((s.kind, s.locale), Cell())
        cell.tried += 1
        if s.exception:
            cell.exceptions[s.exception] += 1
        _, rule = outcome(s)
        if rule is None:
            cell.accepted += 1
        else:
            cell.refused[rule] += 1
    return cells


def markdown(cells: dict[tuple[str, str], Cell]) -> str:
    lines = [
        "| kind | locale | tried | valid by construction | accepted | refused (rule: count) "
        "| named exceptions |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for kind in KIND_ORDER:
        for locale in LOCALES:
            c = cells.get((kind, locale))
            if c is None:
                continue
            refused = ", ".join(f"`{r}`: {n}" for r, n in sorted(c.refused.items())) or "none"
            named = ", ".join(f"`{e}`: {n}" for e, n in sorted(c.exceptions.items())) or "none"
            valid = c.tried - sum(c.exceptions.values())
            lines.append(
                f"| {kind} | {locale} | {c.tried} | {valid} | {c.accepted} | {refused} | {named} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(figures(corpus())))
