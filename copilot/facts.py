"""Facts a thread must not lose: order ids, amounts, dates, emails, phone numbers, and the identifiers a
summary masks: card numbers, IMEIs and account numbers.

Phone numbers are found by Google's libphonenumber (the ``phonenumbers`` package); card numbers and IMEIs
by the Luhn check digit they carry, so an order id or a reference is not taken for one; the rest by
patterns for the shapes customer-service threads use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

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


@dataclass(frozen=True)
class Fact:
    kind: str   # email | order_id | amount | date | phone | card | imei | account
    text: str
    start: int
    end: int


def extract_facts(text: str, region: str = "US") -> list[Fact]:
    """The facts in ``text`` in order of position; ``region`` reads national phone numbers (e.g. GB)."""
    facts = [Fact(kind, m.group(0), m.start(), m.end()) for kind, pattern in _PATTERNS for m in pattern.finditer(text)]
    facts += _cards(text)
    facts += [Fact("account", m.group("id"), m.start("id"), m.end("id")) for m in _ACCOUNT.finditer(text)]
    taken = [(f.start, f.end) for f in facts]
    matcher = phonenumbers.PhoneNumberMatcher(text, region.upper(), leniency=phonenumbers.Leniency.POSSIBLE)
    for match in matcher:
        if not any(start < match.end and match.start < end for start, end in taken):  # not part of a date or id
            facts.append(Fact("phone", match.raw_string, match.start, match.end))
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


def region_of(locale: str | None, default: str = "US") -> str:
    """The region part of a BCP 47 tag (en-GB -> GB), or ``default``."""
    if locale and "-" in locale:
        return locale.split("-")[-1].upper()
    return default
