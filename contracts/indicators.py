"""The eight indicator kinds and their canonical forms (DESIGN §4).

Canonicalisation is part of the consortium contract: two members hashing the
same real-world identifier must produce the same token, so every member must
map a raw value to exactly the same canonical text. The rules below are
versioned by :data:`CANON_VERSION` (see "Versioning").

Everything here is a pure function of its arguments: no I/O and no
randomness. The one reading of the clock is the date that bounds a Chinese
resident ID's birth date from above; it is ``datetime.date.today()`` unless
the caller passes ``today``.

Versioning: changing the canonical form of a value accepted before needs a
new :data:`CANON_VERSION`; accepting a value refused before does not (the
refusal was a bug: a real identifier refused hides a fraudster from the whole
consortium).

General rules, applied to every kind, in this order:

* the value must be a ``str`` (rule ``not_a_string``);
* the raw value may be at most :data:`MAX_VALUE_CHARS` characters (``too_long``);
* surrounding whitespace is stripped; nothing may be left (``empty``);
* lone surrogates (``surrogate``) and control or invisible format characters,
  Unicode categories Cc and Cf (``control_character``), are refused anywhere;
* the canonical form is also at most :data:`MAX_VALUE_CHARS` characters
  (``too_long``), so that it is itself accepted.

No canonicaliser raises anything but :class:`InvalidValue` for any ``str``.

Per kind:

=========  ==============================================================
phone      ASCII digits and ``+``, with spaces, ``- . ( ) /`` and their
           common Unicode forms (no-break and ideographic spaces, en/em
           dashes, minus sign, full-width ``（ ）－ ／ ．＋``) as
           separators; parsed by ``phonenumbers`` (default region from the
           ``region`` argument), must be a valid number without extension;
           a number written ``00`` + country code is also read as
           international where no international prefix of the region
           starts with ``00`` (``001 650 253 0000`` with region ``US``);
           canonical form is E.164 (``+8613800138000``). Letters (vanity
           numbers, ``ext.``) and non-ASCII digits are refused rather than
           converted.
email      exactly one ``@``, no whitespace; lower-cased; a dot-atom local
           part of at most 64 characters (any script); the domain is split
           on ASCII dots and each label IDNA-encoded (``encodings.idna``,
           IDNA 2003, punycode per label); every resulting label must be
           LDH, the domain must have at least two labels, a non-numeric
           top-level label, at most 253 characters, and the address at
           most 254. Already-encoded ``xn--`` labels must decode and
           round-trip, or be the IDNA 2008 form of a label with ``ß`` or
           ``ς`` (``xn--strae-oqa``), which IDNA 2003 would map away; such
           labels are kept as given.
bank_card  12-19 ASCII digits, spaces and dashes allowed between them;
           canonical form is the digits, which must pass Luhn -- except
           UnionPay numbers (``62``, 16-19 digits), some of which are
           issued failing Luhn (see :func:`canonical_bank_card`).
id_number  ``CC:`` + national ID, ``CC`` any two ASCII letters (case
           insensitive, canonical upper-case). Spaces, dashes and dots are
           removed from the ID; anything but ASCII letters and digits is
           refused; the ID is upper-cased. ``CN`` IDs are checked by what
           every real one satisfies (see :func:`canonical_id_number`):
           18 characters, the ISO 7064 MOD 11-2 check character, a real
           birth date from 1900 to today and a province code from the
           national list; a 15-digit first-generation ID becomes its
           18-digit form.
merchant   ``uscc:`` + unified social credit code (GB 32100-2015: 18
           characters of ``0-9A-HJ-NPQRTUWXY``, characters 2-8 digits, the
           check character; spaces/dashes removed, upper-cased), or any
           other ``SCHEME:ID`` (scheme lower-cased, ID trimmed, case kept).
device     ``imei:`` + exactly 15 digits after removing spaces/dashes,
           Luhn-valid (IMEISV and 14-digit forms are refused); an MEID
           given as ``imei:`` (14 hex digits, the first ``A``-``F``, with
           an optional check digit) becomes ``meid:`` + its 14 hex digits
           lower-cased, as if given as ``meid:``; or any other
           ``SCHEME:ID`` (scheme lower-cased, ID trimmed and lower-cased).
account    ``iban:`` + IBAN (spaces, dashes, dots removed, upper-cased):
           ISO 7064 MOD 97-10 check digits and, for the countries of the
           SWIFT registry ``stdnum.iban`` holds, that country's length and
           BBAN structure; an IBAN of a country outside the registry needs
           15-34 characters. Or any other ``SCHEME:ID`` (scheme
           lower-cased, ID trimmed, case kept).
ip         IPv4 or IPv6 text as accepted by :mod:`ipaddress` (which refuses
           leading-zero IPv4 octets); zone ids and CIDR prefixes refused;
           canonical form is ``ipaddress``'s text, IPv4-mapped IPv6
           addresses become IPv4.
=========  ==============================================================

``SCHEME:ID``: the scheme is the text before the first ``:``, trimmed, and must
match ``[A-Za-z][A-Za-z0-9_.+-]{0,31}`` (ASCII only; canonical lower-case). The
ID is everything after the first colon, trimmed, and must not be empty. IDs
are deliberately *not* Unicode-normalised (no NFC/NFKC): apart from the stated
trimming and case rules, the ID is kept exactly as given.

Every refusal raises :class:`contracts.errors.InvalidValue` with the kind, a
short stable snake_case ``rule`` and a message that names what was wrong but
never contains the raw value.
"""

from __future__ import annotations

import datetime
import encodings.idna
import enum
import functools
import ipaddress
import re
import string
import unicodedata

import phonenumbers
from stdnum import iban as _iban
from stdnum import imei as _imei
from stdnum import luhn as _luhn
from stdnum import numdb as _numdb
from stdnum.cn import ric as _ric
from stdnum.cn import uscc as _uscc
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)
from stdnum.iso7064 import mod_97_10 as _mod_97_10

from contracts.cn_provinces import PROVINCE_CODES
from contracts.errors import InvalidValue
from contracts.phones import fast_e164

__all__ = [
    "CANON_VERSION",
    "KINDS",
    "MAX_VALUE_CHARS",
    "Kind",
    "canonical",
    "canonical_account",
    "canonical_bank_card",
    "canonical_device",
    "canonical_email",
    "canonical_id_number",
    "canonical_ip",
    "canonical_merchant",
    "canonical_phone",
    "canonical_phone_slow",
    "parse_kind",
]


class Kind(enum.StrEnum):
    """The eight indicator kinds."""

    DEVICE = "device"
    ACCOUNT = "account"
    MERCHANT = "merchant"
    PHONE = "phone"
    EMAIL = "email"
    BANK_CARD = "bank_card"
    ID_NUMBER = "id_number"
    IP = "ip"


KINDS: frozenset[str] = frozenset(k.value for k in Kind)
CANON_VERSION: int = 1
MAX_VALUE_CHARS: int = 256

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.+-]{0,31}")
_COUNTRY_RE = re.compile(r"[A-Za-z]{2}")
_ASCII_DIGITS_RE = re.compile(r"[0-9]+")
_ASCII_ALNUM_RE = re.compile(r"[A-Za-z0-9]+")
_RIC_RE = re.compile(r"[0-9]{17}[0-9X]")
_RIC15_RE = re.compile(r"[0-9]{15}")
# Foreigner's permanent residence ID card, 2017 edition: nationality letters + digits.
_FPR2017_RE = re.compile(r"[A-Z]{3}[0-9]{12}")
_EARLIEST_BIRTH = datetime.date(1900, 1, 1)
# GB 32100-2015: 31 characters (no I, O, S, V, Z); characters 2-8 (entity type,
# administrative division) are digits; character 1 is the registering
# authority, a digit or A (military), N (agriculture) or Y (other).
_USCC_RE = re.compile(r"[0-9A-HJ-NPQRTUWXY][0-9]{7}[0-9A-HJ-NPQRTUWXY]{10}")
_HEX = "0123456789ABCDEF"
_MEID_RE = re.compile(r"[A-F][0-9A-F]{13,14}")
_IBAN_RE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_IBAN_REGISTRY = _numdb.get("iban")
_LDH_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PHONE_CHARS = frozenset("0123456789+-. ()/")
# Separators as they are written in running text: dashes, minus, full-width
# brackets, slash, stop and plus. (Unicode spaces are handled with isspace.)
_PHONE_SEPARATORS = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"),
        "\uff08": "(",
        "\uff09": ")",
        "\uff0f": "/",
        "\uff0e": ".",
        "\uff0b": "+",
    }
)
_CARD_CHARS = frozenset("0123456789 -")
# RFC 5322 "specials" that would need a quoted local part (not supported).
_LOCAL_SPECIALS = frozenset('"(),:;<>@[\\]')
# Label separators other than "." that IDNA would silently treat as dots.
_IDEOGRAPHIC_DOTS = frozenset("\u3002\uff0e\uff61")
# Characters IDNA 2008 keeps in a label but IDNA 2003 maps away (ß -> ss, ς -> σ).
_IDNA_DEVIATIONS = {"\u00df": "ss", "\u03c2": "\u03c3"}

_PARSE_ERRORS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "invalid or missing country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "does not look like a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the IDD prefix",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "national number too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}

_STDNUM_MESSAGES = {
    "checksum": "check digit or checksum does not match",
    "length": "has the wrong length",
    "format": "has characters or structure not allowed",
    "component": "contains an invalid component (e.g. date, region or country part)",
    "invalid": "failed validation",
}


# --------------------------------------------------------------------------- helpers


def _refuse(kind: Kind, rule: str, message: str) -> InvalidValue:
    return InvalidValue(kind.value, rule, message)


def _prepare(kind: Kind, value: object) -> str:
    """The general rules: type, length, trim, emptiness, control characters."""
    if not isinstance(value, str):
        raise _refuse(kind, "not_a_string", f"value must be a str, not {type(value).__name__}")
    if len(value) > MAX_VALUE_CHARS:
        raise _refuse(kind, "too_long", f"value is longer than {MAX_VALUE_CHARS} characters")
    text = value.strip()
    if not text:
        raise _refuse(kind, "empty", "value is empty or only whitespace")
    if text.isascii() and text.isprintable():
        return text  # no ASCII character is a surrogate or a format character
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs":
            raise _refuse(kind, "surrogate", "value contains a lone surrogate code point")
        if category in ("Cc", "Cf"):
            raise _refuse(
                kind,
                "control_character",
                f"value contains a control or invisible format character (U+{ord(ch):04X})",
            )
    return text


def _finish(kind: Kind, result: str) -> str:
    if len(result) > MAX_VALUE_CHARS:
        raise _refuse(
            kind, "too_long", f"canonical form would be longer than {MAX_VALUE_CHARS} characters"
        )
    return result


def _stdnum_refusal(kind: Kind, what: str, exc: ValidationError) -> InvalidValue:
    if isinstance(exc, InvalidChecksum):
        rule = "checksum"
    elif isinstance(exc, InvalidLength):
        rule = "length"
    elif isinstance(exc, InvalidFormat):
        rule = "format"
    elif isinstance(exc, InvalidComponent):
        rule = "component"
    else:
        rule = "invalid"
    return _refuse(kind, rule, f"{what} {_STDNUM_MESSAGES[rule]}")


def _split_scheme(kind: Kind, text: str) -> tuple[str, str]:
    """Split a prepared ``SCHEME:ID`` value into (lower-case scheme, trimmed ID)."""
    if ":" not in text:
        raise _refuse(kind, "no_scheme", "value must be SCHEME:ID but has no ':'")
    scheme, _, ident = text.partition(":")
    scheme = scheme.strip()
    if not scheme:
        raise _refuse(kind, "bad_scheme", "scheme before the ':' is empty")
    if not _SCHEME_RE.fullmatch(scheme):
        raise _refuse(
            kind,
            "bad_scheme",
            "scheme must be an ASCII letter then at most 31 letters, digits or _ . + -",
        )
    ident = ident.strip()
    if not ident:
        raise _refuse(kind, "empty_id", "ID after the scheme is empty")
    return scheme.lower(), ident


def _compact_alnum(kind: Kind, ident: str, separators: str, what: str) -> str:
    """Remove the given ASCII separators; the rest must be ASCII letters/digits."""
    compact = "".join(ch for ch in ident if ch not in separators)
    if not compact:
        raise _refuse(kind, "empty_id", f"{what} has no characters besides separators")
    if not _ASCII_ALNUM_RE.fullmatch(compact):
        raise _refuse(
            kind,
            "format",
            f"{what} may only contain ASCII letters, digits and the separators"
            f" {' '.join(repr(s) for s in separators)}",
        )
    return compact.upper()


# --------------------------------------------------------------------------- kinds


def _phone_e164(kind: Kind, text: str, region: str) -> str:
    """E.164 form of ``text`` (ASCII digits, ``+`` and separators) or a refusal."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        reason = _PARSE_ERRORS.get(exc.error_type, "unknown reason")
        raise _refuse(kind, "unparsable", f"not parsable as a phone number: {reason}") from None
    if number.extension:
        raise _refuse(kind, "extension", "phone number has an extension")
    if not phonenumbers.is_valid_number(number):
        raise _refuse(kind, "not_valid_number", "not a valid (assigned-range) phone number")
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164


@functools.cache
def _foreign_00(region: str) -> bool:
    """Whether no international prefix of ``region`` starts with ``00``."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or not metadata.international_prefix:
        return False
    pattern = re.compile(metadata.international_prefix)
    tails = ["", *string.digits, *(a + b for a in string.digits for b in string.digits)]
    return not any(pattern.fullmatch("00" + tail) for tail in tails)


def _phone_text(value: str, region: str, *, quick: bool = True) -> tuple[str, str]:
    """The general rules, the region check and the phone separators: (text, REGION).

    ``quick``: printable ASCII, the common case, passes the general rules
    without looking at each character's Unicode category, and has no
    separators to map (``_prepare`` refused ASCII control characters, so its
    only space is " "). ``quick=False`` takes the long way every time.
    """
    kind = Kind.PHONE
    text = value.strip() if quick and type(value) is str and len(value) <= MAX_VALUE_CHARS else ""
    ascii_printable = bool(text) and text.isascii() and text.isprintable()
    if not ascii_printable:
        text = _prepare(kind, value)
    if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        # A configuration error of the caller, not a property of the value.
        raise ValueError("region must be a region code known to phonenumbers, e.g. 'CN'")
    if not ascii_printable:
        text = "".join(" " if ch.isspace() else ch for ch in text).translate(_PHONE_SEPARATORS)
    if not _PHONE_CHARS.issuperset(text):
        raise _refuse(
            kind,
            "format",
            "phone number may only contain ASCII digits, '+', spaces and - . ( ) /",
        )
    return text, region.upper()


def canonical_phone(value: str, region: str = "CN") -> str:
    """E.164 form of a valid phone number; ``region`` is the default region.

    Well-formed numbers (E.164, a national number without national prefix, the
    region's international prefix) take :func:`contracts.phones.fast_e164`,
    which gives exactly what ``phonenumbers`` would; everything else, and every
    refusal, is :func:`canonical_phone_slow`'s.
    """
    text, region_code = _phone_text(value, region)
    fast = fast_e164(text, region_code)
    if fast is not None:
        return fast  # at most 21 characters: no _finish needed
    return _phone_parsed(text, region_code)


def canonical_phone_slow(value: str, region: str = "CN") -> str:
    """:func:`canonical_phone` by ``phonenumbers`` alone: the reference of the fast path."""
    text, region_code = _phone_text(value, region, quick=False)
    return _phone_parsed(text, region_code)


def _phone_parsed(text: str, region: str) -> str:
    kind = Kind.PHONE
    try:
        e164 = _phone_e164(kind, text, region)
    except InvalidValue as first:
        # "00" + country code is the international prefix of most of the world
        # and a common way to write any number; where the region's own prefix
        # never starts with 00 (US 011, JP 010, ...), read it as "+" before
        # refusing. Where it does (TW 002, 005, ...), phonenumbers already knows.
        if not (text.startswith("00") and _foreign_00(region)):
            raise
        try:
            e164 = _phone_e164(kind, "+" + text[2:], region)
        except InvalidValue:
            raise first from None
    return _finish(kind, e164)


def _idna2008_deviation_label(label: str) -> bool:
    """Whether ``label`` (``xn--...``) is the IDNA 2008 form of a label with ß or ς.

    IDNA 2008 registers ``straße`` as ``xn--strae-oqa``; IDNA 2003 (which
    ``encodings.idna`` implements) maps ß to ss and ς to σ, so such a label
    never round-trips. It is a real domain all the same: accept it when it is
    the exact punycode of its own decoding, and that decoding is, apart from
    ß and ς, already in IDNA form (lower-case, normalised, allowed).
    """
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
        if "xn--" + decoded.encode("punycode").decode("ascii") != label:
            return False
        if not any(ch in _IDNA_DEVIATIONS for ch in decoded):
            return False
        mapped = "".join(_IDNA_DEVIATIONS.get(ch, ch) for ch in decoded)
        nameprepped = encodings.idna.ToUnicode(encodings.idna.ToASCII(mapped))
    except UnicodeError:
        return False
    return bool(nameprepped == mapped)


def _email_label(kind: Kind, label: str) -> str:
    if not label:
        raise _refuse(kind, "domain", "email domain has an empty label")
    if any(ch in _IDEOGRAPHIC_DOTS for ch in label):
        raise _refuse(kind, "domain", "email domain contains a non-ASCII full stop")
    if label.isascii():
        ascii_label = label
        if ascii_label.startswith("xn--") and not _idna2008_deviation_label(ascii_label):
            try:
                decoded = encodings.idna.ToUnicode(ascii_label)
                round_trip = encodings.idna.ToASCII(decoded).decode("ascii")
            except UnicodeError:
                raise _refuse(
                    kind, "idna", "email domain has an xn-- label that is not valid punycode"
                ) from None
            if round_trip != ascii_label:
                raise _refuse(
                    kind, "idna", "email domain has an xn-- label that does not round-trip"
                )
    else:
        try:
            ascii_label = encodings.idna.ToASCII(label).decode("ascii")
        except UnicodeError:
            raise _refuse(
                kind, "idna", "email domain has a label that cannot be IDNA-encoded"
            ) from None
    if not _LDH_LABEL_RE.fullmatch(ascii_label):
        raise _refuse(
            kind,
            "domain",
            "email domain label must be 1-63 letters, digits or inner hyphens",
        )
    return ascii_label


def canonical_email(value: str) -> str:
    """Trimmed, lower-cased address with an IDNA (punycode) encoded domain."""
    kind = Kind.EMAIL
    text = _prepare(kind, value).lower()
    if any(ch.isspace() for ch in text):
        raise _refuse(kind, "whitespace", "email address contains whitespace")
    at_signs = text.count("@")
    if at_signs == 0:
        raise _refuse(kind, "no_at_sign", "email address has no '@'")
    if at_signs > 1:
        raise _refuse(kind, "multiple_at_signs", "email address has more than one '@'")
    local, _, domain = text.partition("@")
    if not local:
        raise _refuse(kind, "empty_local", "email local part (before '@') is empty")
    if not domain:
        raise _refuse(kind, "empty_domain", "email domain (after '@') is empty")
    if len(local) > 64:
        raise _refuse(kind, "local_too_long", "email local part is longer than 64 characters")
    if any(ch in _LOCAL_SPECIALS for ch in local):
        raise _refuse(
            kind, "local_part", "email local part contains a character that needs quoting"
        )
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise _refuse(kind, "local_part", "email local part has a leading, trailing or doubled dot")
    labels = [_email_label(kind, label) for label in domain.split(".")]
    if len(labels) < 2:
        raise _refuse(kind, "domain", "email domain must have at least two labels")
    if labels[-1].isdigit():
        raise _refuse(kind, "domain", "email domain's top-level label is numeric")
    ascii_domain = ".".join(labels)
    if len(ascii_domain) > 253:
        raise _refuse(kind, "domain_too_long", "email domain is longer than 253 characters")
    address = f"{local}@{ascii_domain}"
    if len(address) > 254:
        raise _refuse(kind, "too_long", "email address is longer than 254 characters")
    return _finish(kind, address)


def canonical_bank_card(value: str) -> str:
    """12-19 digits, Luhn-valid unless UnionPay; spaces and dashes between them are dropped.

    Luhn is required of every number except UnionPay's (IIN ``62``, 16-19
    digits), because real UnionPay cards failing Luhn exist in the numbers
    platforms see:

    * Braintree's card validator (braintree/card-validator, ``card-number``)
      skips Luhn for UnionPay unless asked; its maintainers, in 2023 (issue
      #112): "not all UnionPay cards pass luhn validation", some "are actually
      valid in UnionPay's eyes"; Braintree's SDK change of 2018 says "UnionPay
      cards used to be issued with luhn invalid card numbers";
    * hutool (chinabugotech/hutool issue #2510, 2022) declined a Luhn check
      for bank cards: ``6214832018989180`` fails Luhn yet Alipay's card-BIN
      service knows it, as do "some Bank of Jiangsu, Bank of Communications and
      ICBC debit cards";
    * against: Braintree's back end refuses such cards, and new UnionPay
      numbers are Luhn-valid -- which says that international card-not-present
      acquirers cannot charge them, not that they do not exist. Chinese
      platforms bind domestic debit cards, where they are found.

    Those cards stay in circulation for years, so refusing them would hide
    their holders from the consortium; a typo in a UnionPay number is
    accepted as the (unmatched) number it is. Other brands' numbers (Visa,
    Mastercard, Amex, JCB, ...) are issued Luhn-valid and keep the check.
    """
    kind = Kind.BANK_CARD
    text = _prepare(kind, value)
    if any(ch not in _CARD_CHARS for ch in text):
        raise _refuse(
            kind, "format", "card number may only contain ASCII digits, spaces and dashes"
        )
    digits = text.replace(" ", "").replace("-", "")
    if not 12 <= len(digits) <= 19:
        raise _refuse(kind, "length", "card number must have 12 to 19 digits")
    if not _luhn.is_valid(digits) and not (digits.startswith("62") and len(digits) >= 16):
        raise _refuse(kind, "luhn", "card number fails the Luhn check")
    return _finish(kind, digits)


def _cn_resident_id(kind: Kind, compact: str, today: datetime.date) -> str:
    """The 18-character form of a Chinese resident ID (upper-case ASCII alphanumerics)."""
    if len(compact) == 15:
        if _FPR2017_RE.fullmatch(compact):
            # Foreigner's permanent residence ID card, 2017 edition: no check
            # character or date to check; kept as it is.
            return compact
        if not _RIC15_RE.fullmatch(compact):
            raise _refuse(
                kind,
                "format",
                "a 15-character Chinese ID must be 15 digits (first-generation resident ID)",
            )
        # First generation (GB 11643-1989): area code, YYMMDD, sequence. The
        # second generation inserts the century and appends the check character.
        body = compact[:6] + "19" + compact[6:]
        number = body + _ric.calc_check_digit(body + "0")
    elif len(compact) == 18:
        if not _RIC_RE.fullmatch(compact):
            raise _refuse(kind, "format", "Chinese resident ID must be 17 digits and a digit or X")
        if compact[-1] != _ric.calc_check_digit(compact):
            raise _refuse(
                kind,
                "checksum",
                "Chinese resident ID's check character (ISO 7064 MOD 11-2) does not match",
            )
        number = compact
    else:
        raise _refuse(
            kind,
            "length",
            "Chinese resident ID must have 18 characters (or 15 digits, first generation)",
        )
    if len(compact) == 18 and number[0] == "9":
        # Foreigner's permanent residence ID card, 2023 edition: "9", then 16
        # digits modelled on the resident ID -- the province of issue first --
        # and the same MOD 11-2 check character. Only the province is checked
        # besides the check character: the position of the birth date is not
        # in the published summary of the rules.
        if number[1:3] not in PROVINCE_CODES:
            raise _refuse(
                kind,
                "component",
                "foreigner's permanent residence number's province code is not on the list",
            )
        return number
    if number[:2] not in PROVINCE_CODES:
        raise _refuse(
            kind, "component", "Chinese resident ID's province code is not on the national list"
        )
    try:
        birth = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise _refuse(
            kind, "component", "Chinese resident ID's birth date is not a real date"
        ) from None
    if not _EARLIEST_BIRTH <= birth <= today:
        raise _refuse(
            kind, "component", "Chinese resident ID's birth date is before 1900 or after today"
        )
    return number


def canonical_id_number(value: str, *, today: datetime.date | None = None) -> str:
    """``CC:`` + upper-case national ID; ``CN`` IDs checked as resident IDs.

    A ``CN`` ID is checked by what every real resident ID satisfies, and by
    nothing else:

    * 18 characters, 17 digits then a digit or ``X``;
    * the ISO 7064 MOD 11-2 check character (``stdnum.cn.ric.calc_check_digit``);
    * a province code from the national list (:mod:`contracts.cn_provinces`);
      the county and city digits are not looked up, and an address code
      created after the birth date is not a refusal -- an ID keeps the code of
      the place it was first issued (Pudong's ``310115`` appears on IDs of
      people born before 1992; Jiayuguan, a city without counties, issues
      ``620201``);
    * a real birth date from 1900-01-01 up to ``today`` (default
      ``datetime.date.today()``).

    A 15-digit first-generation ID becomes its 18-digit form: ``19`` inserted
    before the two-digit birth year, and the check character appended.

    Also accepted, as issued by China in the same field: the foreigner's
    permanent residence ID card, 2023 edition (18 digits: ``9``, the province
    of issue, 14 digits, the same check character) and 2017 edition (three
    letters and twelve digits, kept as given).
    """
    kind = Kind.ID_NUMBER
    text = _prepare(kind, value)
    if ":" not in text:
        raise _refuse(kind, "no_country", "ID number must be prefixed with a country code, 'CC:'")
    country, _, ident = text.partition(":")
    country = country.strip()
    if not _COUNTRY_RE.fullmatch(country):
        raise _refuse(kind, "bad_country", "country prefix must be exactly two ASCII letters")
    country = country.upper()
    ident = ident.strip()
    if not ident:
        raise _refuse(kind, "empty_id", "ID after the country code is empty")
    compact = _compact_alnum(kind, ident, " -.", "ID number")
    if country == "CN":
        if today is None:
            today = datetime.date.today()
        compact = _cn_resident_id(kind, compact, today)
    return _finish(kind, f"{country}:{compact}")


def canonical_merchant(value: str) -> str:
    """``uscc:`` + validated code, or ``scheme:ID`` with the ID's case kept.

    A unified social credit code is checked by GB 32100-2015 alone: 18
    characters of the code's alphabet, characters 2-8 digits, and the check
    character (``stdnum.cn.uscc.calc_check_digit``). The first character is
    the registering authority, which is a letter for some real codes -- ``N``
    for rural collective economic organisations, ``A`` for military units,
    ``Y`` for others -- so it is not required to be a digit as
    ``stdnum.cn.uscc.validate`` requires.
    """
    kind = Kind.MERCHANT
    scheme, ident = _split_scheme(kind, _prepare(kind, value))
    if scheme == "uscc":
        compact = _compact_alnum(kind, ident, " -", "USCC")
        if len(compact) != 18:
            raise _refuse(kind, "length", "USCC must have 18 characters")
        if not _USCC_RE.fullmatch(compact):
            raise _refuse(
                kind,
                "format",
                "USCC must be 18 of 0-9 and A-Y without I O S V Z, characters 2-8 digits",
            )
        if compact[-1] != _uscc.calc_check_digit(compact[:-1]):
            raise _refuse(kind, "checksum", "USCC check character does not match")
        return _finish(kind, f"uscc:{compact}")
    return _finish(kind, f"{scheme}:{ident}")


def canonical_device(value: str) -> str:
    """``imei:`` + 15 Luhn-valid digits, or ``scheme:id`` lower-cased.

    A CDMA handset's MEID (14 hex digits, the first ``A``-``F``, optionally
    followed by its hex Luhn check digit) is what Android's ``getDeviceId``
    returns on such phones, so it arrives as ``imei:``; it becomes ``meid:`` +
    the 14 digits lower-cased, the form a member reporting it as ``meid:``
    gets too.
    """
    kind = Kind.DEVICE
    scheme, ident = _split_scheme(kind, _prepare(kind, value))
    if scheme == "imei":
        digits = "".join(ch for ch in ident if ch not in " -")
        meid = digits.upper()
        if _MEID_RE.fullmatch(meid):
            if len(meid) == 15 and not _luhn.is_valid(meid, alphabet=_HEX):
                raise _refuse(kind, "luhn", "MEID check digit does not match")
            return _finish(kind, f"meid:{meid[:14].lower()}")
        if not _ASCII_DIGITS_RE.fullmatch(digits):
            raise _refuse(kind, "format", "IMEI may only contain ASCII digits, spaces and dashes")
        if len(digits) != 15:
            raise _refuse(
                kind, "length", "IMEI must have exactly 15 digits (IMEISV is not accepted)"
            )
        try:
            digits = _imei.validate(digits)
        except InvalidChecksum:
            raise _refuse(kind, "luhn", "IMEI fails the Luhn check") from None
        except ValidationError as exc:
            raise _stdnum_refusal(kind, "IMEI", exc) from None
        return _finish(kind, f"imei:{digits}")
    return _finish(kind, f"{scheme}:{ident.lower()}")


def canonical_account(value: str) -> str:
    """``iban:`` + validated compact IBAN, or ``scheme:ID`` with the ID's case kept.

    An IBAN needs its ISO 7064 MOD 97-10 check digits. For a country of the
    SWIFT IBAN registry that ``stdnum.iban`` holds, its length and BBAN
    structure must match too (``stdnum.iban.validate`` with
    ``check_country=False``). The national checks ``stdnum`` adds for four
    countries are not applied: MOD 97-10 already catches what they catch, and
    Belgium's also needs the bank code in ``stdnum``'s bank table, which ages.
    An IBAN of a country outside the registry (those used nationally, e.g. in
    West and Central Africa) needs 15-34 letters and digits.
    """
    kind = Kind.ACCOUNT
    scheme, ident = _split_scheme(kind, _prepare(kind, value))
    if scheme == "iban":
        compact = _compact_alnum(kind, ident, " -.", "IBAN")
        if _IBAN_REGISTRY.info(compact[:2])[0][1]:
            try:
                compact = _iban.validate(compact, check_country=False)
            except ValidationError as exc:
                raise _stdnum_refusal(kind, "IBAN", exc) from None
        else:
            if not _IBAN_RE.fullmatch(compact):
                raise _refuse(
                    kind,
                    "format",
                    "IBAN must be a country code, two check digits and 11-30 letters or digits",
                )
            if not _iban_check_digits_valid(compact):
                raise _refuse(kind, "checksum", "IBAN check digits do not match")
        return _finish(kind, f"iban:{compact}")
    return _finish(kind, f"{scheme}:{ident}")


def _iban_check_digits_valid(compact: str) -> bool:
    try:
        _mod_97_10.validate(compact[4:] + compact[:4])
    except ValidationError:
        return False
    return True


def canonical_ip(value: str) -> str:
    """``ipaddress`` text; IPv4-mapped IPv6 becomes IPv4."""
    kind = Kind.IP
    text = _prepare(kind, value)
    if "%" in text:
        raise _refuse(kind, "zone_id", "IP address has a zone id ('%...')")
    if "/" in text:
        raise _refuse(kind, "cidr", "IP address has a prefix length ('/...'); give one address")
    octets = text.rpartition(":")[2].split(".")
    if (
        len(octets) == 4
        and all(o.isascii() and o.isdigit() for o in octets)
        and any(len(o) > 1 and o.startswith("0") for o in octets)
    ):
        raise _refuse(kind, "ipv4_leading_zero", "IPv4 octet has a leading zero")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise _refuse(kind, "unparsable", "not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _finish(kind, str(address.ipv4_mapped))
    return _finish(kind, str(address))


# --------------------------------------------------------------------------- dispatch


def parse_kind(kind: str) -> Kind:
    """The :class:`Kind` named ``kind`` (exact, lower-case name)."""
    if isinstance(kind, Kind):
        return kind
    if isinstance(kind, str) and kind in KINDS:
        return Kind(kind)
    name = kind if isinstance(kind, str) else type(kind).__name__
    raise InvalidValue(
        name, "unknown_kind", f"unknown indicator kind; expected one of {', '.join(sorted(KINDS))}"
    )


def canonical(kind: str | Kind, value: str, *, region: str = "CN") -> str:
    """The canonical form of ``value`` as an indicator of ``kind``.

    ``region`` is the default region for phone numbers written without an
    international prefix; it is ignored for the other kinds. Idempotent:
    ``canonical(k, canonical(k, x)) == canonical(k, x)``.
    """
    k = parse_kind(kind)
    if k is Kind.PHONE:
        return canonical_phone(value, region)
    return _CANONICALISERS[k](value)


_CANONICALISERS = {
    Kind.EMAIL: canonical_email,
    Kind.BANK_CARD: canonical_bank_card,
    Kind.ID_NUMBER: canonical_id_number,
    Kind.MERCHANT: canonical_merchant,
    Kind.DEVICE: canonical_device,
    Kind.ACCOUNT: canonical_account,
    Kind.IP: canonical_ip,
}
