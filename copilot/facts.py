"""Facts a thread must not lose: order ids, amounts, dates, emails, phone numbers, and the identifiers that
are masked: card numbers, IMEIs, account numbers, IBANs and national ids.

Phone numbers are found by Google's libphonenumber (the ``phonenumbers`` package); card numbers and IMEIs
by the Luhn check digit they carry, so an order id or a reference is not taken for one; IBANs and national
ids by the checks of ``python-stdnum`` (IBAN check digits and country format, US SSN area/group/serial rules,
Spanish DNI/NIE check letter) or, for the UK National Insurance number, its strict published format; the
rest by patterns for the shapes customer-service threads use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
from stdnum import iban
from stdnum.es import dni, nie
from stdnum.us import ssn

_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
           r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("order_id", re.compile(r"\b[A-Z]{2,4}-\d{4,10}\b|(?i:\border\s*(?:no\.?|number|#)\s*)\d{4,12}\b")),
    ("amount", re.compile(r"[£$€]\s?\d{1,3}(?:,\d{3})*(?:\.\d{1,2})?\b|"
                          r"\b\d+(?:\.\d{1,2})?\s?(?:GBP|USD|EUR|pounds|dollars|euros)\b", re.IGNORECASE)),
    ("date", re.compile(rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?\b|"
                        rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}\b|\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?\b")),
]


# Digits in groups split by single spaces or dashes, as card numbers are typed: "4111 1111-1111 1111".
_DIGIT_RUN = re.compile(r"(?<![\w-])\d+(?:[ -]\d+)*(?![\w-])")
_ACCOUNT = re.compile(r"(?i:\b(?:account|acct|a/c)(?:\s+(?:number|no\.?|num|#|id))?\s*(?:is\s+)?[:#]?\s*)"
                      r"(?P<id>[A-Z]{0,3}-?\d{5,16})\b")
# Where an IBAN may start (country code, check digits), and one of the groups it may be written in.
_IBAN_START = re.compile(r"(?<![\w-])[A-Za-z]{2}\d{2}")
_IBAN_GROUP = re.compile(r"[A-Za-z0-9]+")
_IBAN_LENGTHS = range(15, 35)  # characters without spaces: Norway's 15 to the standard's 34
# National ids, each in the one shape it is written in, confirmed by its check where it has one. The SSN
# only with its dashes (123-45-6789): nine plain digits are as likely an order or a phone number.
_NATIONAL_IDS: list[tuple[re.Pattern[str], Callable[[str], bool]]] = [
    (re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])"), ssn.is_valid),
    (re.compile(r"(?<![\w-])\d{8}-?[A-Za-z](?![\w-])"), dni.is_valid),
    (re.compile(r"(?<![\w-])[XYZxyz]-?\d{7}-?[A-Za-z](?![\w-])"), nie.is_valid),
    # UK National Insurance number: HMRC's allowed prefix letters, six digits, suffix A-D ("AB 12 34 56 C").
    (re.compile(r"(?<![\w-])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
                r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![\w-])"), lambda number: True),  # no check digit: the format is all
]


@dataclass(frozen=True)
class Fact:
    kind: str   # email | order_id | amount | date | phone | card | imei | account | iban | national_id
    text: str
    start: int
    end: int


def extract_facts(text: str, region: str = "US") -> list[Fact]:
    """The facts in ``text`` in order of position; ``region`` reads national phone numbers (e.g. GB)."""
    facts = [Fact(kind, m.group(0), m.start(), m.end()) for kind, pattern in _PATTERNS for m in pattern.finditer(text)]
    emails = [f for f in facts if f.kind == "email"]
    ibans = _ibans(text)
    national_ids = [f for f in _national_ids(text) if not _overlaps(f, ibans)]
    checked = [f for f in ibans + national_ids if not _overlaps(f, emails)]
    # A checked identifier wins over the looser shapes inside it: the digits of an IBAN are no card or date, and
    # a card number that follows an IBAN is read without the IBAN's digits.
    facts += _cards(_blank(text, checked))
    facts += [Fact("account", m.group("id"), m.start("id"), m.end("id")) for m in _ACCOUNT.finditer(text)]
    facts = [f for f in facts if not _overlaps(f, checked)] + checked
    taken = [(f.start, f.end) for f in facts]
    matcher = phonenumbers.PhoneNumberMatcher(text, region.upper(), leniency=phonenumbers.Leniency.POSSIBLE)
    for match in matcher:
        if not any(start < match.end and match.start < end for start, end in taken) and _phone_like(match.raw_string):
            facts.append(Fact("phone", match.raw_string, match.start, match.end))  # not part of a date or id
    return sorted(facts, key=lambda f: f.start)


def luhn_valid(digits: str) -> bool:
    """Whether the last digit of ``digits`` is the Luhn check digit of the others (cards, IMEIs)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return bool(digits) and total % 10 == 0


def _cards(text: str) -> list[Fact]:
    """Luhn-valid runs of 13 to 19 digits, whole groups only: "card", or "imei" for 15 digits that are not
    an American Express number (34, 37): a phone's IMEI has the same length and check digit."""
    found = []
    for run in _DIGIT_RUN.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in re.finditer(r"\d+", run.group(0))]
        first = 0
        while first < len(groups):
            ends, count = [], 0  # the group ends that give 13 to 19 digits from ``first``
            for last in range(first, len(groups)):
                count += groups[last][1] - groups[last][0]
                if count > 19:
                    break
                if count >= 13:
                    ends.append(last + 1)
            for last in reversed(ends):  # the longest valid sequence first
                start, end = groups[first][0], groups[last - 1][1]
                digits = "".join(text[a:b] for a, b in groups[first:last])
                if luhn_valid(digits):
                    kind = "imei" if len(digits) == 15 and not digits.startswith(("34", "37")) else "card"
                    found.append(Fact(kind, text[start:end], start, end))
                    first = last
                    break
            else:
                first += 1
    return found


def _phone_like(raw: str) -> bool:
    """Not a bare run of fewer than 9 digits: "A1234567" or "12345678" is more likely an order number or an
    amount than a phone number, which is written with its area code, a "+" or spaces."""
    return not raw.isdigit() or len(raw) >= 9


def _blank(text: str, facts: list[Fact]) -> str:
    """The text with each fact's span overwritten by "_", same length, so positions still hold."""
    for fact in facts:
        text = text[: fact.start] + "_" * (fact.end - fact.start) + text[fact.end :]
    return text


def _overlaps(fact: Fact, others: list[Fact]) -> bool:
    return any(fact.start < other.end and other.start < fact.end for other in others)


def _ibans(text: str) -> list[Fact]:
    """IBANs with valid check digits and country format, written whole ("GB82WEST12345698765432") or in
    groups ("GB82 WEST 1234 5698 7654 32"): from a country code, the most groups that make a valid IBAN."""
    found: list[Fact] = []
    for country in _IBAN_START.finditer(text):
        start = country.start()
        if found and start < found[-1].end:
            continue
        ends, position, length = [], start, 0  # the group ends that give an IBAN's length
        while (group := _IBAN_GROUP.match(text, position)) and length + len(group.group(0)) < _IBAN_LENGTHS.stop:
            length += len(group.group(0))
            if length in _IBAN_LENGTHS:
                ends.append(group.end())
            position = group.end() + 1
            if text[group.end() : position] != " ":
                break
        for end in reversed(ends):
            if iban.is_valid(text[start:end]):
                found.append(Fact("iban", text[start:end], start, end))
                break
    return found


def _national_ids(text: str) -> list[Fact]:
    return [Fact("national_id", m.group(0), m.start(), m.end())
            for pattern, valid in _NATIONAL_IDS for m in pattern.finditer(text) if valid(m.group(0))]


def region_of(locale: str | None, default: str = "US") -> str:
    """The region part of a BCP 47 tag (en-GB -> GB), or ``default``."""
    if locale and "-" in locale:
        return locale.split("-")[-1].upper()
    return default
