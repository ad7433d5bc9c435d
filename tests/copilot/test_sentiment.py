"""Sentiment and urgency per customer turn."""

from __future__ import annotations

from copilot.conversation import Message, Role, Thread
from copilot.sentiment import assess, customer_moods


def test_assess_upset_repeated_complaint_is_negative_and_urgent() -> None:
    mood = assess("This is the THIRD time I'm asking!!! No signal for 3 days and I need it for work today")

    assert mood.label == "negative"
    assert mood.urgency >= 0.6
    assert {"has waited", "is shouting", "a deadline"} <= set(mood.cues)


def test_assess_thanks_is_positive_and_calm() -> None:
    mood = assess("thanks, that worked, great help")

    assert mood.label == "positive"
    assert mood.urgency == 0.0
    assert mood.cues == []


def test_customer_moods_follow_the_thread_turn_by_turn() -> None:
    thread = Thread(messages=[
        Message(role=Role.CUSTOMER, text="My bill is wrong, I was charged twice, this is ridiculous"),
        Message(role=Role.AGENT, text="I'm sorry about that. I've refunded the second payment."),
        Message(role=Role.CUSTOMER, text="Brilliant, thank you so much"),
    ])

    moods = customer_moods(thread)

    assert [m.label for m in moods] == ["negative", "positive"]
