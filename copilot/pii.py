"""Personal data in free text, found and masked before the text is logged or sent to an outside model.

Masked: emails, phone numbers, card numbers and IMEIs (Luhn-checked), account numbers, IBANs (check digits and
country format) and national ids (US SSN, UK National Insurance number, Spanish DNI and NIE), as
:func:`copilot.facts.extract_facts` finds them. Each is replaced by a placeholder that names its kind, so
the text still reads ("my card [card] was charged"), and masking masked text changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from copilot.facts import Fact, extract_facts

PLACEHOLDERS: Mapping[str, str] = MappingProxyType({
    "email": "[email]",
    "phone": "[phone]",
    "card": "[card]",
    "imei": "[imei]",
    "account": "[account]",
    "iban": "[iban]",
    "national_id": "[national id]",
})


def find_personal_data(text: str, region: str = "US") -> list[Fact]:
    """The spans :func:`mask_personal_data` replaces, in order of position and none overlapping (of two that
    overlap, the one that starts first, or the longer, is kept); ``region`` reads national phone numbers."""
    found = sorted((f for f in extract_facts(text, region) if f.kind in PLACEHOLDERS),
                   key=lambda f: (f.start, -f.end))
    kept: list[Fact] = []
    for fact in found:
        if not kept or fact.start >= kept[-1].end:
            kept.append(fact)
    return kept


def mask_personal_data(text: str, region: str = "US") -> str:
    """The text with each piece of personal data replaced by the placeholder of its kind ("[iban]")."""
    for fact in reversed(find_personal_data(text, region)):
        text = text[: fact.start] + PLACEHOLDERS[fact.kind] + text[fact.end :]
    return text
