"""Brand voice: violations with their spans, mechanical fixes, greetings, reading grade."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from copilot.extract import sentence_spans, sentences
from copilot.voice import BrandVoice, VoiceChecker, reading_grade

SAMPLE_VOICE = Path(__file__).resolve().parents[2] / "samples" / "brightwave" / "brand-voice.yaml"


@pytest.fixture(scope="module")
def checker() -> VoiceChecker:
    return VoiceChecker(BrandVoice.model_validate(yaml.safe_load(SAMPLE_VOICE.read_text(encoding="utf-8"))))


def test_check_banned_phrase_reports_span_and_fix(checker: VoiceChecker) -> None:
    text = "Thanks. Unfortunately the order shipped late."

    [violation] = [v for v in checker.check(text, "webchat") if v.rule == "banned_phrase"]

    assert text[violation.start : violation.end] == "Unfortunately"
    assert violation.fix == "I'm sorry, but"


def test_check_never_promise_is_reported_without_fix(checker: VoiceChecker) -> None:
    violations = checker.check("Your refund is guaranteed to arrive.", "webchat")

    promise = [v for v in violations if v.rule == "never_promise"]
    assert [v.text for v in promise] == ["guaranteed"]
    assert promise[0].fix is None


def test_check_verification_words_only_before_verification(checker: VoiceChecker) -> None:
    text = "I can order a replacement SIM for you."

    assert [v.text for v in checker.check(text, "sms", verified=False) if v.rule == "verification"] == [
        "replacement SIM"]
    assert not [v for v in checker.check(text, "sms", verified=True) if v.rule == "verification"]


def test_apply_replaces_banned_and_preferred_terms_and_keeps_sentence_case(checker: VoiceChecker) -> None:
    result = checker.apply("Unfortunately your passcode expired. Kindly use the portal.", "webchat")

    assert result.text == "I'm sorry, but your account PIN expired. Please use My Brightwave app."
    assert len(result.changes) == 4
    assert not [v for v in result.remaining if v.fix is not None]


def test_apply_deleting_phrase_leaves_clean_spacing(checker: VoiceChecker) -> None:
    result = checker.apply("Please be advised your bill is ready.", "email")

    assert result.text == "Your bill is ready."


@pytest.mark.parametrize(("channel", "kept"), [("sms", 0), ("whatsapp", 1)])
def test_apply_emoji_follow_channel_policy(checker: VoiceChecker, channel: str, kept: int) -> None:
    result = checker.apply("Your parcel is on its way 🚚 see you soon 😊", channel)

    assert sum(ch in result.text for ch in "🚚😊") == kept


def test_check_reading_level_flags_dense_prose(checker: VoiceChecker) -> None:
    dense = ("Notwithstanding the aforementioned considerations, reimbursement eligibility necessitates "
             "comprehensive documentation substantiating unauthorised transactional irregularities.")

    assert reading_grade(dense) > 12
    assert "reading_level" in {v.rule for v in checker.check(dense, "webchat")}
    assert "reading_level" not in {v.rule for v in checker.check("Your bill is ready. You can pay it now.", "webchat")}


def test_greeting_uses_first_name_and_falls_back_without_one(checker: VoiceChecker) -> None:
    assert checker.greeting("sms", "Maya Lopez") == "Hi Maya,"
    assert checker.greeting("email", "Maya Lopez") == "Hello Maya,"
    assert checker.greeting("webchat", None) == "Hi there,"
    assert checker.sign_off("sms") == "- Brightwave"


@pytest.mark.parametrize("text, flagged", [
    ("I'll cancel the order now.", ["cancel"]),
    ("Let me credit £5 to your account.", ["credit"]),
    ("We’ve issued a refund of £20.", ["refund"]),
    ("I'm arranging a SIM swap for you.", ["SIM swap"]),
    ("Your refund is on its way.", ["refund"]),
    ("Your full refund will arrive in 5 days.", ["refund"]),
    ("Your refund's on its way.", ["refund"]),
    ("A refund has been issued to your card.", ["refund"]),
    ("I processed a refund for you.", ["refund"]),
    ("You'll get a refund in 5 days.", ["refund"]),
    ("Brightwave will refund you.", ["refund"]),
    ("No worries, I guarantee a refund today!", ["refund"]),  # the content API's example
    ("I've gone ahead and cancelled your plan.", ["cancelled"]),
    ("Your £5 credit has been applied.", ["credit"]),
    ("Your change of owner is complete.", ["change of owner"]),
    # policy and self-service: said to anyone who asks, no account touched
    ("On a 30-day plan, your service ends 30 days after you ask to cancel.", []),
    ("Go to Orders in the app and tap Cancel order.", []),
    ("We automatically credit 1/30 of your plan price for each day.", []),
    ("I'm sorry to hear that. To cancel, go to Settings in the app.", []),
    ("Account credit from a trade-in can't be changed to cash later.", []),
    ("Check that the PAC was entered correctly. If it was, we'll chase it with your old provider.", []),
    ("You can pack it in the box.", []),  # not a form of PAC
])
def test_verification_flags_actions_taken_or_promised_not_policy(checker: VoiceChecker, text: str,
                                                                 flagged: list[str]) -> None:
    violations = [v for v in checker.check(text, "webchat", verified=False) if v.rule == "verification"]

    assert [v.text for v in violations] == flagged
    assert all(text[v.start:v.end] == v.text for v in violations)


def test_verification_is_judged_per_sentence(checker: VoiceChecker) -> None:
    text = "You can cancel in the app. If that fails, we'll sort it out."

    assert not [v for v in checker.check(text, "webchat", verified=False) if v.rule == "verification"]
    joined = "You can cancel in the app, or we'll cancel it for you."
    [first, second] = [v for v in checker.check(joined, "webchat", verified=False) if v.rule == "verification"]
    assert (first.start, second.start) == (8, 36)
    later = "Thanks for waiting. I'll cancel it now."
    [violation] = [v for v in checker.check(later, "webchat", verified=False) if v.rule == "verification"]
    assert later[violation.start : violation.end] == "cancel" and violation.start == 25


@pytest.mark.parametrize("text", ["", "no end", "A.\n\nB.", "  One. Two!  Three?\nFour ", "Hi Dev,\nYes. 3 left."])
def test_sentence_spans_locate_the_sentences(text: str) -> None:
    assert [text[start:end] for start, end in sentence_spans(text)] == sentences(text)
