"""Personal data is found by its checks (Luhn, IBAN check digits, national id rules) and masked; look-alikes are not."""

from __future__ import annotations

import itertools

import pytest

from copilot.facts import extract_facts
from copilot.pii import PLACEHOLDERS, find_personal_data, mask_personal_data

# Published example IBANs (ECBS / national banking associations); each has valid check digits.
VALID_IBANS = [
    "GB82 WEST 1234 5698 7654 32",
    "GB82WEST12345698765432",
    "DE89 3704 0044 0532 0130 00",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NL91ABNA0417164300",
    "ES91 2100 0418 4502 0005 1332",
    "BE71 0961 2345 6769",
    "IT60 X054 2811 1010 0000 0123 456",
    "CH93 0076 2011 6238 5295 7",
    "IE29 AIBK 9311 5212 3456 78",
    "PL61 1090 1014 0000 0712 1981 2874",
    "NO93 8601 1117 947",
]


@pytest.mark.parametrize("number", VALID_IBANS)
def test_mask_personal_data_masks_valid_iban(number: str) -> None:
    assert mask_personal_data(f"please refund to {number}, thanks") == "please refund to [iban], thanks"


def test_find_personal_data_gives_the_whole_spaced_iban() -> None:
    text = "IBAN: GB82 WEST 1234 5698 7654 32 (Maya)"

    found = find_personal_data(text)

    assert [(f.kind, f.text) for f in found] == [("iban", "GB82 WEST 1234 5698 7654 32")]
    assert text[found[0].start : found[0].end] == "GB82 WEST 1234 5698 7654 32"


def test_mask_personal_data_masks_lower_case_iban_followed_by_words() -> None:
    assert mask_personal_data("iban gb82 west 1234 5698 7654 32 and more") == "iban [iban] and more"


@pytest.mark.parametrize("number", ["GB82 WEST 1234 5698 7654 33", "DE88 3704 0044 0532 0130 00", "GB82 WEST 1234"])
def test_mask_personal_data_leaves_iban_with_wrong_check_digits(number: str) -> None:
    text = f"the iban {number} bounced"

    assert mask_personal_data(text) == text
    assert "iban" not in {f.kind for f in extract_facts(text)}


@pytest.mark.parametrize(("text", "masked"), [
    ("SSN 536-90-4399 on file", "SSN [national id] on file"),
    ("NI number AB 12 34 56 C", "NI number [national id]"),
    ("NINO JG103759A please", "NINO [national id] please"),
    ("DNI 12345678Z", "DNI [national id]"),
    ("NIE X1234567L", "NIE [national id]"),
])
def test_mask_personal_data_masks_national_id(text: str, masked: str) -> None:
    assert mask_personal_data(text) == masked


@pytest.mark.parametrize("text", [
    "SSN 000-12-3456",       # area 000 is never issued
    "SSN 666-12-3456",       # nor 666
    "SSN 078-05-1120",       # the Woolworth wallet card, void
    "SSN 536904399",         # an SSN only counts written 123-45-6789
    "NINO QQ 12 34 56 C",    # Q is no NINO prefix letter (HMRC's own placeholder)
    "NINO GB123456A",        # GB is a reserved prefix
    "NINO AB123456E",        # the suffix is A to D
    "DNI 12345678A",         # wrong check letter (Z)
])
def test_mask_personal_data_leaves_invalid_national_id(text: str) -> None:
    assert mask_personal_data(text) == text


@pytest.mark.parametrize("number", ["4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005"])
def test_mask_personal_data_masks_luhn_valid_card(number: str) -> None:
    assert mask_personal_data(f"card {number} declined") == "card [card] declined"


def test_mask_personal_data_leaves_luhn_invalid_sixteen_digits() -> None:
    text = "card 4111 1111 1111 1112 declined"

    assert mask_personal_data(text) == text


def test_mask_personal_data_masks_email_and_phone() -> None:
    assert mask_personal_data("mail maya.lopez@example.com or (415) 555-2671") == "mail [email] or [phone]"
    assert mask_personal_data("ring +44 7700 900123 or 07700 900456", "GB") == "ring [phone] or [phone]"


@pytest.mark.parametrize("text", [
    "Order A1234567 has not arrived",
    "I paid 12345678 in total",
    "order number 12345678 and order BW-482913",
    "it cost £1,299.00 on 12 March, ref 4821937",
    "refund of $12,345,678.00 on 2024-05-01",
])
@pytest.mark.parametrize("region", ["US", "GB"])
def test_mask_personal_data_leaves_order_ids_and_amounts(text: str, region: str) -> None:
    assert mask_personal_data(text, region) == text


def test_mask_personal_data_masks_every_item_in_one_message() -> None:
    text = ("Hi, it's Maya (maya.lopez@example.com, +44 7700 900123). Refund order BW-482913 (£24.99) to "
            "GB82 WEST 1234 5698 7654 32, not the card 4111 1111 1111 1111. NI AB 12 34 56 C, SSN 536-90-4399, "
            "phone IMEI 356938035643809, account number 12345678.")

    masked = mask_personal_data(text, "GB")

    assert masked == ("Hi, it's Maya ([email], [phone]). Refund order BW-482913 (£24.99) to [iban], not the card "
                      "[card]. NI [national id], SSN [national id], phone IMEI [imei], account number [account].")


def test_find_personal_data_spans_are_ordered_and_disjoint() -> None:
    text = "GB82 WEST 1234 5698 7654 32 or 4111 1111 1111 1111 or maya@example.com or 536-90-4399"

    found = find_personal_data(text, "GB")

    assert [f.kind for f in found] == ["iban", "card", "email", "national_id"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))
    assert all(f.kind in PLACEHOLDERS for f in found)


def test_iban_digits_are_not_taken_for_a_card_or_phone() -> None:
    kinds = [f.kind for f in extract_facts("DE89 3704 0044 0532 0130 00", "DE")]

    assert kinds == ["iban"]


def test_mask_personal_data_is_idempotent() -> None:
    text = ("maya@example.com +44 7700 900123 GB82 WEST 1234 5698 7654 32 4111 1111 1111 1111 "
            "AB 12 34 56 C 536-90-4399 356938035643809 account 98765432")

    once = mask_personal_data(text, "GB")

    assert once != text
    assert mask_personal_data(once, "GB") == once
    assert find_personal_data(once, "GB") == []


def test_mask_personal_data_is_reexported_by_drafting() -> None:
    from copilot import drafting

    assert drafting.mask_personal_data is mask_personal_data
