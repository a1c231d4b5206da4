"""The E.164 form of a well-formed phone number without ``phonenumbers.parse``.

:func:`fast_e164` answers for the numbers members send most -- E.164
(``+8613800138000``, ``+1 650-253-0000``), an international prefix of the
region (``008613800138000`` in CN) and national numbers without a national
prefix (``138 0013 8000`` in CN) -- by replaying, on the digits alone, the
steps ``phonenumbers.parse``, ``is_valid_number`` and ``format_number(E164)``
take for such text, with ``phonenumbers``' own metadata for the region and the
calling code (international and national prefixes, possible lengths, leading
digits, the number-type patterns), each pattern compiled once.

It only ever *accepts*: it returns the E.164 form where it has followed every
step to the end and the number is valid, and ``None`` (ask ``phonenumbers``)
wherever a step would branch into a case it does not replay: a national
prefix or carrier code that could be stripped, an international prefix
followed by ``0``, a national number that starts with the region's calling
code, an unknown calling code, a number that is not valid. So a number it
accepts is one ``phonenumbers`` accepts with the same form, and every refusal
still comes from ``phonenumbers`` (tests/contracts/test_phone_fast_path.py
holds the two paths to the same answers).

The text it is given is what :func:`contracts.indicators.canonical_phone` has
prepared: ASCII digits, ``+`` and the separators ``- . ( ) /`` and space. For
such text, ``phonenumbers.parse`` (``_extract_possible_number``,
``_is_viable_phone_number``, ``_maybe_strip_extension``, ``_normalize``) keeps
the digits and whether the number starts with one ``+``, and nothing else:
leading and trailing separators are dropped, no extension pattern can match
without a letter, ``#``, ``~``, ``,`` or ``;``, and there are no letters to map.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata

__all__ = ["fast_e164"]

# phonenumbers.parse refuses longer input (_MAX_INPUT_STRING_LENGTH)
_MAX_INPUT = 250
# national significant numbers: _MIN_LENGTH_FOR_NSN .. _MAX_LENGTH_FOR_NSN
_MIN_NSN = 2
_MAX_NSN = 17
# digits left after an international prefix must be more than this (TOO_SHORT_AFTER_IDD)
_MIN_AFTER_IDD = 2

# An optional "+" before the first digit, then digits and separators, ending in a digit;
# separators around it are what _extract_possible_number drops.
_SHAPE = re.compile(r"[ \-.()/]*(\+?)([ \-.()/0-9]*[0-9])[ \-.()/]*")
_DROP_SEPARATORS = str.maketrans("", "", " -.()/")

_Pattern = re.Pattern[str]


@functools.cache
def _compiled(pattern: str) -> _Pattern:
    return re.compile(pattern)


def _matching(desc: phonenumbers.PhoneNumberDesc | None, length: int) -> str | None:
    """The pattern ``_is_number_matching_desc`` tries on a number of ``length`` digits, if any."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and length not in desc.possible_length:
        return None
    return desc.national_number_pattern


# A backreference, named group or inline flag would not survive being spliced into one
# pattern (none of phonenumbers' patterns has one).
_NOT_SPLICEABLE = re.compile(r"\\[1-9]|\(\?P|\(\?[aiLmsux]")


@dataclass(frozen=True, slots=True)
class _Types:
    """``_number_type_helper(nsn, metadata) != UNKNOWN``, by length of ``nsn``."""

    # length -> one pattern: the general description's pattern (a lookahead to the end)
    # and the alternatives of every number type's pattern for that length
    by_length: dict[int, _Pattern]

    def known(self, nsn: str) -> bool:
        pattern = self.by_length.get(len(nsn))
        return pattern is not None and pattern.fullmatch(nsn) is not None


def _types(metadata: PhoneMetadata) -> _Types:
    descs = [
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
        metadata.fixed_line,
    ]
    if not metadata.same_mobile_and_fixed_line_pattern:
        descs.append(metadata.mobile)
    by_length = {}
    for length in range(_MIN_NSN, _MAX_NSN + 1):
        general = _matching(metadata.general_desc, length)
        if general is None:
            continue
        types = [p for p in (_matching(d, length) for d in descs) if p is not None]
        if not types or any(_NOT_SPLICEABLE.search(p) for p in (general, *types)):
            continue  # (never so in phonenumbers' metadata; the fast path just declines)
        # fullmatch: general matches the whole number, and so does one of the types
        alternatives = "|".join(f"(?:{p})" for p in dict.fromkeys(types))
        by_length[length] = re.compile(f"(?=(?:{general})\\Z)(?:{alternatives})")
    return _Types(by_length)


@dataclass(frozen=True, slots=True)
class _Candidate:
    """One region of a calling code, as ``region_code_for_number`` and
    ``is_valid_number_for_region`` see it."""

    leading_digits: _Pattern | None
    types: _Types
    # is_valid_number_for_region's metadata exists and has the same calling code
    validates: bool


@dataclass(frozen=True, slots=True)
class _Country:
    """A calling code: the national prefix of its main region, and its regions in order."""

    code: str
    national_prefix: _Pattern | None
    candidates: tuple[_Candidate | None, ...]

    def valid(self, nsn: str) -> bool:
        """``is_valid_number`` for this calling code and national significant number."""
        candidates = self.candidates
        if len(candidates) == 1:
            chosen = candidates[0]
        else:
            # _region_code_for_number_from_list
            for c in candidates:
                if c is None:
                    continue
                if c.leading_digits is not None:
                    if c.leading_digits.match(nsn) is not None:
                        chosen = c
                        break
                elif c.types.known(nsn):
                    chosen = c
                    break
            else:
                return False
        return chosen is not None and chosen.validates and chosen.types.known(nsn)


def _national_prefix(metadata: PhoneMetadata | None) -> _Pattern | None:
    if metadata is None or not metadata.national_prefix_for_parsing:
        return None
    return _compiled(metadata.national_prefix_for_parsing)


def _candidate(code: int, region: str, single: bool) -> _Candidate | None:
    # region_code_for_number takes a lone region as it is; from a list it looks each up
    # with metadata_for_region (None for the non-geographic "001": skipped)
    listed = PhoneMetadata.metadata_for_region(region.upper(), None)
    checked = PhoneMetadata.metadata_for_region_or_calling_code(code, region.upper())
    if not single and listed is None:
        return None
    validates = checked is not None and (
        region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
        or code == phonenumbers.country_code_for_valid_region(region)
    )
    leading = None if single or listed is None else listed.leading_digits
    return _Candidate(
        leading_digits=None if leading is None else _compiled(leading),
        types=_types(checked) if checked is not None else _Types({}),
        validates=validates,
    )


@functools.cache
def _country(code: int) -> _Country:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]
    main = PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    single = len(regions) == 1
    return _Country(
        code=str(code),
        national_prefix=_national_prefix(main),
        candidates=tuple(_candidate(code, r, single) for r in regions),
    )


def _calling_code(first3: str) -> tuple[int, int] | None:
    """``_extract_country_code`` on digits starting ``first3``: (code, its length) or None."""
    for size in (1, 2, 3):
        code = int(first3[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return code, size
    return None


# the first three digits (not starting with 0) -> calling code and its length
_CALLING_CODES: dict[str, tuple[int, int]] = {
    first3: found
    for first3, found in ((str(n), _calling_code(str(n))) for n in range(100, 1000))
    if found is not None
}


@dataclass(frozen=True, slots=True)
class _Region:
    """What parsing a number without ``+`` takes from the default region."""

    international_prefix: _Pattern | None
    national_prefix: _Pattern | None
    country: _Country | None


@functools.cache
def _region(region: str) -> _Region:
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None:  # pragma: no cover - the caller checked SUPPORTED_REGIONS
        return _Region(None, None, None)
    idd = metadata.international_prefix
    code = metadata.country_code
    return _Region(
        international_prefix=None if idd is None else _compiled(idd),
        national_prefix=_national_prefix(metadata),
        country=_country(code) if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE else None,
    )


def _international(digits: str) -> tuple[_Country, str] | None:
    """The calling code and national number after ``+`` or an international prefix."""
    if len(digits) <= _MIN_AFTER_IDD:
        return None
    found = _CALLING_CODES.get(digits[:3])  # (none for a leading 0: no calling code)
    if found is None:
        return None
    code, size = found
    return _country(code), digits[size:]


def fast_e164(text: str, region: str) -> str | None:
    """The E.164 form ``phonenumbers`` gives ``text``, or None where only it can say.

    ``text`` is ASCII digits, ``+`` and the separators ``- . ( ) /`` and space;
    ``region`` an upper-case region code of ``phonenumbers.SUPPORTED_REGIONS``.
    """
    shape = _SHAPE.fullmatch(text)
    if shape is None or len(text) > _MAX_INPUT:
        return None
    digits = shape.group(2)
    if not digits.isdigit():
        digits = digits.translate(_DROP_SEPARATORS)
    if shape.group(1):
        found = _international(digits)
        if found is None:
            return None
        country, national = found
        strip = country.national_prefix
    else:
        r = _region(region)
        idd = None if r.international_prefix is None else r.international_prefix.match(digits)
        if idd is not None:
            rest = digits[idd.end() :]
            if rest[:1] == "0":  # not taken as an international prefix then
                return None
            found = _international(rest)
            if found is None:
                return None
            country, national = found
            strip = country.national_prefix
        else:
            # a national number: the region's own calling code and national prefix
            if r.country is None or len(digits) < 3 or digits.startswith(r.country.code):
                return None
            country = r.country
            national = digits
            strip = r.national_prefix
    if not _MIN_NSN <= len(national) <= _MAX_NSN:
        return None
    if strip is not None and strip.match(national) is not None:
        return None  # phonenumbers might strip a national prefix or carrier code
    if not country.valid(national):
        return None
    return f"+{country.code}{national}"
