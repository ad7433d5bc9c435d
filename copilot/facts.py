"""Facts a thread must not lose: order ids, amounts, dates, emails, phone numbers.

Phone numbers are found by Google's libphonenumber (the ``phonenumbers`` package); the rest by patterns
for the shapes customer-service threads use.
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


@dataclass(frozen=True)
class Fact:
    kind: str   # email | order_id | amount | date | phone
    text: str
    start: int
    end: int


def extract_facts(text: str, region: str = "US") -> list[Fact]:
    """The facts in ``text`` in order of position; ``region`` reads national phone numbers (e.g. GB)."""
    facts = [Fact(kind, m.group(0), m.start(), m.end()) for kind, pattern in _PATTERNS for m in pattern.finditer(text)]
    taken = [(f.start, f.end) for f in facts]
    matcher = phonenumbers.PhoneNumberMatcher(text, region.upper(), leniency=phonenumbers.Leniency.POSSIBLE)
    for match in matcher:
        if not any(start < match.end and match.start < end for start, end in taken):  # not part of a date or id
            facts.append(Fact("phone", match.raw_string, match.start, match.end))
    return sorted(facts, key=lambda f: f.start)


def region_of(locale: str | None, default: str = "US") -> str:
    """The region part of a BCP 47 tag (en-GB -> GB), or ``default``."""
    if locale and "-" in locale:
        return locale.split("-")[-1].upper()
    return default
