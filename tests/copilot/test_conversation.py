"""Threads: bursts, the token budget that keeps the opening, the latest turns and the facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from copilot.conversation import Channel, Customer, Message, Role, Thread, fit_to_budget, turns
from copilot.facts import extract_facts
from copilot.tokens import count_tokens

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _thread(texts: list[tuple[Role, str]], locale: str = "en-GB") -> Thread:
    messages = [Message(role=r, text=t, ts=T0 + timedelta(minutes=5 * i)) for i, (r, t) in enumerate(texts)]
    return Thread(channel=Channel.WHATSAPP, customer=Customer(name="Maya Lopez", locale=locale), messages=messages)


def test_turns_join_a_burst_but_not_messages_far_apart() -> None:
    thread = Thread(messages=[
        Message(role=Role.CUSTOMER, text="hi", ts=T0),
        Message(role=Role.CUSTOMER, text="my order is late", ts=T0 + timedelta(seconds=20)),
        Message(role=Role.CUSTOMER, text="still there?", ts=T0 + timedelta(hours=3)),
    ])

    assert [t.text for t in turns(thread)] == ["hi\nmy order is late", "still there?"]


def test_extract_facts_finds_each_kind() -> None:
    text = "Order BW-482913 cost £24.99 on 12 March; write to maya@example.com or call 07700 900123."

    kinds = {f.kind: f.text for f in extract_facts(text, "GB")}

    assert kinds == {"order_id": "BW-482913", "amount": "£24.99", "date": "12 March",
                     "email": "maya@example.com", "phone": "07700 900123"}


def test_fit_to_budget_keeps_opening_latest_and_middle_facts() -> None:
    filler = "I checked the settings again and restarted the phone but nothing changed at all. " * 4
    messages = [(Role.CUSTOMER, "My order BW-482913 has not arrived and I paid £24.99 for next-day delivery.")]
    messages += [(Role.AGENT if i % 2 else Role.CUSTOMER, filler) for i in range(30)]
    messages[12] = (Role.CUSTOMER, "You can also reach me at maya@example.com. " + filler)
    messages += [(Role.CUSTOMER, "So when will it come?")]
    thread = _thread(messages)

    fitted = fit_to_budget(thread, 400)

    total = sum(count_tokens(m.text) + 4 for m in fitted.messages)
    assert total <= 400
    assert fitted.messages[0].text == thread.messages[0].text
    assert fitted.messages[-1].text == "So when will it come?"
    [note] = [m for m in fitted.messages if m.role == Role.SYSTEM]
    assert "maya@example.com" in note.text
    assert "left out" in note.text


def test_fit_to_budget_leaves_a_short_thread_alone() -> None:
    thread = _thread([(Role.CUSTOMER, "hi"), (Role.AGENT, "Hi Maya, how can I help?"), (Role.CUSTOMER, "bill")])

    assert fit_to_budget(thread, 400) is thread
