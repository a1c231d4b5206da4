"""The eight indicator kinds and their canonical forms (DESIGN §4).

Canonicalisation is part of the consortium contract: two members hashing the
same real-world identifier must produce the same token, so every member must
map a raw value to exactly the same canonical text. The rules below are
versioned by :data:`CANON_VERSION`; any change that alters the canonical form
of an accepted value, or accepts/refuses a value differently, needs a new
version.

Everything here is a pure function: no I/O, no clock, no randomness.

General rules, applied to every kind, in this order:

* the value must be a ``str`` (rule ``not_a_string``);
* the raw value may be at most :data:`MAX_VALUE_CHARS` characters (``too_long``);
* surrounding whitespace is stripped; nothing may be left (``empty``);
* lone surrogates (``surrogate``) and control or invisible format characters,
  Unicode categories Cc and Cf (``control_character``), are refused anywhere;
* the canonical form is also at most :data:`MAX_VALUE_CHARS` characters
  (``too_long``), so that it is itself accepted.

Per kind:

=========  ==============================================================
phone      digits, ``+``, spaces and ``- . ( ) /`` only; parsed by
           ``phonenumbers`` (default region from the ``region`` argument),
           must be a valid number without extension; canonical form is
           E.164 (``+8613800138000``). Letters (vanity numbers, ``ext.``)
           and non-ASCII digits are refused rather than converted.
email      exactly one ``@``, no whitespace; lower-cased; a dot-atom local
           part of at most 64 characters; the domain is split on ASCII
           dots and each label IDNA-encoded (``encodings.idna``, IDNA 2003,
           punycode per label); every resulting label must be LDH, the
           domain must have at least two labels, a non-numeric top-level
           label, at most 253 characters, and the address at most 254.
           Already-encoded ``xn--`` labels must decode and round-trip.
bank_card  12-19 ASCII digits, spaces and dashes allowed between them;
           canonical form is the digits, which must pass Luhn.
id_number  ``CC:`` + national ID, ``CC`` any two ASCII letters (case
           insensitive, canonical upper-case). Spaces, dashes and dots are
           removed from the ID; anything but ASCII letters and digits is
           refused; the ID is upper-cased. ``CN`` IDs must be valid
           resident identity card numbers (``stdnum.cn.ric``: length,
           check digit, birth date, birth place).
merchant   ``uscc:`` + unified social credit code validated by
           ``stdnum.cn.uscc`` (spaces/dashes removed, upper-cased), or any
           other ``SCHEME:ID`` (scheme lower-cased, ID trimmed, case kept).
device     ``imei:`` + exactly 15 digits after removing spaces/dashes,
           Luhn-valid (IMEISV and 14-digit forms are refused), or any other
           ``SCHEME:ID`` (scheme lower-cased, ID trimmed and lower-cased).
account    ``iban:`` + IBAN validated by ``stdnum.iban`` (spaces, dashes,
           dots removed, upper-cased), or any other ``SCHEME:ID`` (scheme
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

import encodings.idna
import enum
import ipaddress
import re
import unicodedata

import phonenumbers
from stdnum import iban as _iban
from stdnum import imei as _imei
from stdnum import luhn as _luhn
from stdnum.cn import ric as _ric
from stdnum.cn import uscc as _uscc
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

from contracts.errors import InvalidValue

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
_LDH_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PHONE_CHARS = frozenset("0123456789+-. ()/")
_CARD_CHARS = frozenset("0123456789 -")
# RFC 5322 "specials" that would need a quoted local part (not supported).
_LOCAL_SPECIALS = frozenset('"(),:;<>@[\\]')
# Label separators other than "." that IDNA would silently treat as dots.
_IDEOGRAPHIC_DOTS = frozenset("\u3002\uff0e\uff61")

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


def canonical_phone(value: str, region: str = "CN") -> str:
    """E.164 form of a valid phone number; ``region`` is the default region."""
    kind = Kind.PHONE
    text = _prepare(kind, value)
    if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        # A configuration error of the caller, not a property of the value.
        raise ValueError("region must be a region code known to phonenumbers, e.g. 'CN'")
    if any(ch not in _PHONE_CHARS for ch in text):
        raise _refuse(
            kind,
            "format",
            "phone number may only contain ASCII digits, '+', spaces and - . ( ) /",
        )
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException as exc:
        reason = _PARSE_ERRORS.get(exc.error_type, "unknown reason")
        raise _refuse(kind, "unparsable", f"not parsable as a phone number: {reason}") from None
    if number.extension:
        raise _refuse(kind, "extension", "phone number has an extension")
    if not phonenumbers.is_valid_number(number):
        raise _refuse(kind, "not_valid_number", "not a valid (assigned-range) phone number")
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return _finish(kind, e164)


def _email_label(kind: Kind, label: str) -> str:
    if not label:
        raise _refuse(kind, "domain", "email domain has an empty label")
    if any(ch in _IDEOGRAPHIC_DOTS for ch in label):
        raise _refuse(kind, "domain", "email domain contains a non-ASCII full stop")
    if label.isascii():
        ascii_label = label
        if ascii_label.startswith("xn--"):
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
    """12-19 Luhn-valid digits; spaces and dashes between them are dropped."""
    kind = Kind.BANK_CARD
    text = _prepare(kind, value)
    if any(ch not in _CARD_CHARS for ch in text):
        raise _refuse(
            kind, "format", "card number may only contain ASCII digits, spaces and dashes"
        )
    digits = text.replace(" ", "").replace("-", "")
    if not 12 <= len(digits) <= 19:
        raise _refuse(kind, "length", "card number must have 12 to 19 digits")
    try:
        _luhn.validate(digits)
    except ValidationError:
        raise _refuse(kind, "luhn", "card number fails the Luhn check") from None
    return _finish(kind, digits)


def canonical_id_number(value: str) -> str:
    """``CC:`` + upper-case national ID; ``CN`` IDs validated as resident IDs."""
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
        if len(compact) != 18:
            raise _refuse(kind, "length", "Chinese resident ID must have 18 characters")
        if not _RIC_RE.fullmatch(compact):
            raise _refuse(kind, "format", "Chinese resident ID must be 17 digits and a digit or X")
        try:
            compact = _ric.validate(compact)
        except ValidationError as exc:
            raise _stdnum_refusal(kind, "Chinese resident ID", exc) from None
    return _finish(kind, f"{country}:{compact}")


def canonical_merchant(value: str) -> str:
    """``uscc:`` + validated code, or ``scheme:ID`` with the ID's case kept."""
    kind = Kind.MERCHANT
    scheme, ident = _split_scheme(kind, _prepare(kind, value))
    if scheme == "uscc":
        compact = _compact_alnum(kind, ident, " -", "USCC")
        try:
            compact = _uscc.validate(compact)
        except ValidationError as exc:
            raise _stdnum_refusal(kind, "USCC", exc) from None
        return _finish(kind, f"uscc:{compact}")
    return _finish(kind, f"{scheme}:{ident}")


def canonical_device(value: str) -> str:
    """``imei:`` + 15 Luhn-valid digits, or ``scheme:id`` lower-cased."""
    kind = Kind.DEVICE
    scheme, ident = _split_scheme(kind, _prepare(kind, value))
    if scheme == "imei":
        digits = "".join(ch for ch in ident if ch not in " -")
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
    """``iban:`` + validated compact IBAN, or ``scheme:ID`` with the ID's case kept."""
    kind = Kind.ACCOUNT
    scheme, ident = _split_scheme(kind, _prepare(kind, value))
    if scheme == "iban":
        compact = _compact_alnum(kind, ident, " -.", "IBAN")
        try:
            compact = _iban.validate(compact)
        except ValidationError as exc:
            raise _stdnum_refusal(kind, "IBAN", exc) from None
        return _finish(kind, f"iban:{compact}")
    return _finish(kind, f"{scheme}:{ident}")


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
