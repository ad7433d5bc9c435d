"""Structured summaries by the grounded engine: the sample brand's threads, each status, masking, edge cases."""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from copilot.conversation import Customer, Message, Role, Thread
from copilot.errors import InvalidInput
from copilot.facts import extract_facts, luhn_valid
from copilot.intents import IntentClassifier
from copilot.ports import Matrix, Vector
from copilot.summarize import (
    MAX_FACTS,
    MAX_ITEMS,
    KeyFact,
    NextStep,
    SentimentTrend,
    Status,
    Summary,
    SummaryStyle,
    abstract,
    summarize,
)

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "brightwave"
STYLES = [s.value for s in SummaryStyle]
C, A, BOT, SYS = Role.CUSTOMER, Role.AGENT, Role.BOT, Role.SYSTEM
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CANARY_CARD = "4111 1111 1111 1111"
CANARY_EMAIL = "maya.lopez@example.com"


def sample(name: str) -> Thread:
    return Thread.model_validate(json.loads((SAMPLE / "threads" / f"{name}.json").read_text(encoding="utf-8")))


def thread(*messages: tuple[Role, str], locale: str | None = None) -> Thread:
    """A thread with a message a minute from T0."""
    return Thread(customer=Customer(locale=locale),
                  messages=[Message(role=role, text=text, ts=T0 + timedelta(minutes=i))
                            for i, (role, text) in enumerate(messages)])


def facts_of(summary: Summary) -> list[tuple[str, str, int]]:
    return [(f.kind, f.value, f.first_seen) for f in summary.facts]


class FlatEmbedder:
    """An embedder whose vectors carry no meaning: the classifier decides on its TF-IDF words alone."""

    name = "flat"
    dimension = 4

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return np.zeros((len(texts), self.dimension), dtype=np.float32)

    def embed_query(self, text: str) -> Vector:
        return np.zeros(self.dimension, dtype=np.float32)


# --- the sample brand's threads ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "status"), [
    ("account-locked", Status.RESOLVED), ("double-charge", Status.RESOLVED),
    ("faulty-phone-exchange", Status.RESOLVED), ("order-and-roaming", Status.PENDING_AGENT),
    ("outage-no-signal", Status.PENDING_AGENT), ("stolen-phone", Status.PENDING_AGENT),
])
def test_summarize_sample_thread_has_the_status_the_readme_states(name: str, status: Status) -> None:
    assert summarize(sample(name)).status == status


def test_summarize_account_locked_lists_actions_in_order_and_ends_resolved() -> None:
    summary = summarize(sample("account-locked"))

    assert summary.issue == "Cant log in it says account locked contact us"
    assert summary.actions == ["I've sent a one-time code by text to the number on your account",
                               "You're verified",
                               "I've unlocked your account and emailed you a password reset link"]
    assert summary.facts == []  # no order ids, amounts, dates or identifiers in this thread
    assert summary.next_steps == []
    assert summary.waiting_since is None
    assert summary.message_count == 11
    assert summary.sentiment.direction == "improving"
    assert summary.sentiment.turns == [0.0, 0.0, 0.361, 0.53]


def test_summarize_double_charge_keeps_each_fact_once_and_masks_the_account() -> None:
    summary = summarize(sample("double-charge"), products=["Wave Lite", "Wave Plus", "Wave Max"])

    assert facts_of(summary) == [
        ("account", "****0391", 0), ("product", "Wave Max", 0), ("amount", "£23", 2),  # £23.00 later is the same
        ("date", "4 November", 6), ("date", "17 November", 6), ("date", "18 November", 6),
        ("order_id", "TK-558102", 10),
    ]
    assert "C-20391" not in summary.model_dump_json()
    assert summary.actions[-1] == "I've requested a refund of £23.00 to the card ending 4417"
    assert summary.next_steps == [NextStep(owner="agent", kind="follow_up", text="We'll text you when it's sent")]
    assert summary.issue == "You've charged me twice this month"  # the greeting is not the issue


def test_summarize_faulty_phone_finds_the_model_and_what_the_customer_must_do() -> None:
    summary = summarize(sample("faulty-phone-exchange"))

    assert facts_of(summary) == [("order_id", "BW-482913", 4), ("product", "Nova X2 128 GB", 8),
                                 ("date", "10 November", 8), ("order_id", "RT-730215", 13),
                                 ("date", "26 November", 13)]
    assert summary.actions == ["Your return ID is RT-730215 and the prepaid label is on its way to your email"]
    assert NextStep(owner="customer", kind="customer_action",
                    text="Please post the faulty phone within 14 days of the replacement arriving.") \
        in summary.next_steps


@pytest.mark.parametrize(("name", "since", "question"), [
    ("order-and-roaming", "2026-11-27T10:18:10", "Do I need to switch anything on before I go?"),
    ("outage-no-signal", "2026-11-19T08:20:02", "Am I getting anything back for this??"),
    ("stolen-phone", "2026-11-22T08:49:11", "Will I have to pay for whatever they used last night?"),
])
def test_summarize_waiting_thread_says_since_when_and_what_to_answer(name: str, since: str, question: str) -> None:
    summary = summarize(sample(name), "handoff")

    assert summary.waiting_since == datetime.fromisoformat(since).replace(tzinfo=UTC)
    assert NextStep(owner="agent", kind="reply", text=question) in summary.next_steps
    assert "waiting for the agent" in summary.abstract


def test_summarize_stolen_phone_masks_the_imei_and_finds_catalog_products() -> None:
    without = summarize(sample("stolen-phone"))
    summary = summarize(sample("stolen-phone"), products=["Nova 5"])

    assert ("imei", "****3809", 9) in facts_of(summary)
    assert "356938035643809" not in summary.model_dump_json()
    assert ("product", "Nova 5", 10) in facts_of(summary)
    assert "product" not in {f.kind for f in without.facts}  # "Nova 5" alone is too plain to guess
    assert summary.actions == ["I've barred your SIM",
                               "I've sent a one-time code to the email address on your account",
                               "You're verified"]


def test_summarize_outage_sentiment_stays_negative_and_steady() -> None:
    trend = summarize(sample("outage-no-signal")).sentiment

    assert trend.start is not None and trend.end is not None
    assert trend.start < -0.3 and trend.end < -0.2
    assert trend.direction == "steady"
    assert len(trend.turns) == 4


def test_summarize_with_intent_classifier_names_the_issue_intent() -> None:
    with (SAMPLE / "intents.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    classifier = IntentClassifier(FlatEmbedder()).fit([r["example"] for r in rows], [r["intent"] for r in rows])

    with_intent = summarize(sample("double-charge"), intents=classifier)

    assert with_intent.intent is not None and with_intent.intent.name == "billing_dispute"
    assert summarize(sample("account-locked"), intents=classifier).intent.name == "account_locked"  # type: ignore[union-attr]
    assert summarize(sample("double-charge")).intent is None


# --- statuses on hand-built threads ------------------------------------------------------------------------------


@pytest.mark.parametrize(("messages", "status"), [
    pytest.param([(C, "my order is late"), (A, "Sorry! Could you send me your order number?")],
                 Status.PENDING_CUSTOMER, id="agent asks last"),
    pytest.param([(C, "my order is late"), (A, "Please reply with the postcode it was going to.")],
                 Status.PENDING_CUSTOMER, id="agent awaits info"),
    pytest.param([(C, "my order is late"), (A, "Could you send me your order number?"), (C, "ok thanks")],
                 Status.PENDING_CUSTOMER, id="thanks is not the answer"),
    pytest.param([(C, "my order is late"), (A, "It ships today."), (C, "and can I change the address?")],
                 Status.PENDING_AGENT, id="customer asks last"),
    pytest.param([(C, "bill is wrong"), (A, "Let me check that for you.")], Status.PENDING_AGENT,
                 id="agent is checking"),
    pytest.param([(C, "bill is wrong")], Status.PENDING_AGENT, id="no agent yet"),
    pytest.param([(C, "my order is late"), (A, "I've upgraded it to next-day delivery."),
                  (C, "ok thanks, that's all")], Status.RESOLVED, id="customer closes"),
    pytest.param([(C, "bill is wrong"), (A, "Your refund has been processed. Is there anything else I can help with?")],
                 Status.RESOLVED, id="agent closes after an action"),
    pytest.param([(C, "bill is wrong"), (A, "Is there anything else I can help with?")],
                 Status.PENDING_CUSTOMER, id="closing words without a resolution"),
    pytest.param([(C, "bill is wrong"), (A, "I've passed this to our billing team, who will email you in 2 days."),
                  (C, "ok thanks")], Status.ESCALATED, id="escalated then thanks"),
    pytest.param([(C, "bill is wrong"), (A, "I'm transferring you to our Billing team now.")],
                 Status.ESCALATED, id="transfer"),
    pytest.param([(C, "bill is wrong"), (A, "I've escalated this to a team lead."), (C, "how long will that take?")],
                 Status.PENDING_AGENT, id="new question after escalation"),
])
def test_summarize_status_follows_the_last_messages(messages: list[tuple[Role, str]], status: Status) -> None:
    assert summarize(thread(*messages)).status == status


def test_summarize_pending_customer_lists_the_agents_question_for_the_customer() -> None:
    summary = summarize(thread((C, "my parcel never came"), (A, "Sorry about that. Which postcode was it sent to?")))

    assert summary.next_steps == [NextStep(owner="customer", kind="customer_action",
                                           text="Which postcode was it sent to?")]
    assert summary.waiting_since is None


def test_summarize_drops_a_promise_the_agent_later_kept() -> None:
    summary = summarize(thread((C, "where is my refund"), (A, "I'll check the refund status now."),
                               (A, "I've checked: it was sent yesterday.")))

    assert summary.actions == ["I've checked"]
    assert [s for s in summary.next_steps if s.kind == "follow_up"] == []


def test_summarize_waiting_since_is_the_first_unanswered_customer_message() -> None:
    summary = summarize(thread((C, "hi"), (A, "Hi! How can I help?"), (C, "my bill doubled"), (C, "hello??")))

    assert summary.status == Status.PENDING_AGENT
    assert summary.waiting_since == T0 + timedelta(minutes=2)


# --- masking ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_summarize_never_shows_a_full_card_number_email_or_phone(style: str) -> None:
    canary = thread(
        (C, f"Hi, my card {CANARY_CARD} was charged twice. Email me at {CANARY_EMAIL} or call 07700 900123"),
        (A, f"I've updated the card {CANARY_CARD.replace(' ', '-')} and the email {CANARY_EMAIL}."),
        (C, f"thanks, also the card number without spaces is {CANARY_CARD.replace(' ', '')}?"),
        locale="en-GB",
    )

    summary = summarize(canary, style)
    dumped = summary.model_dump_json()

    assert not re.search(r"4111\D{0,3}1111\D{0,3}1111\D{0,3}1111", dumped)
    assert CANARY_EMAIL not in dumped and "maya.lopez" not in dumped
    assert "900123" not in dumped
    assert {(f.kind, f.value) for f in summary.facts} >= {("card", "****1111"), ("email", "m***@example.com"),
                                                           ("phone", "***123")}
    assert all(f.masked for f in summary.facts if f.kind in {"card", "email", "phone"})
    assert "****1111" in summary.issue  # masked where it is quoted, not dropped


def test_summarize_masks_long_numbers_that_fail_the_card_check() -> None:
    summary = summarize(thread((C, "my card 4111 1111 1111 1112 was declined")), "catch_up")

    assert "4111 1111 1111 1112" not in summary.model_dump_json()
    assert "****1112" in summary.abstract
    assert summary.facts == []  # not a card number: no fact, but still masked in text


def test_extract_facts_finds_luhn_valid_cards_and_imeis_only() -> None:
    text = ("card 4111-1111-1111-1111 exp 12/27, amex 3782 822463 10005, order BW-482913, "
            "order number 1234567890123, imei 356938035643809")

    kinds = [(f.kind, f.text) for f in extract_facts(text, "GB")]

    assert kinds == [("card", "4111-1111-1111-1111"), ("date", "12/27"), ("card", "3782 822463 10005"),
                     ("order_id", "BW-482913"), ("imei", "356938035643809")]
    assert "card" not in {f.kind for f in extract_facts("typo 4111 1111 1111 1112", "GB")}


def test_extract_facts_card_is_not_read_as_phone_numbers() -> None:
    assert [f.kind for f in extract_facts(f"{CANARY_CARD} or call 07700 900123", "GB")] == ["card", "phone"]


def test_extract_facts_existing_kinds_unchanged_without_cards() -> None:
    text = "Order BW-482913 cost £24.99 on 12 March; write to maya@example.com or call 07700 900123."

    assert [(f.kind, f.text) for f in extract_facts(text, "GB")] == [
        ("order_id", "BW-482913"), ("amount", "£24.99"), ("date", "12 March"), ("email", "maya@example.com"),
        ("phone", "07700 900123")]


@pytest.mark.parametrize(("digits", "valid"), [("4111111111111111", True), ("4111111111111112", False),
                                                ("356938035643809", True), ("79927398713", True), ("", False)])
def test_luhn_valid(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


# --- edge cases ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_summarize_empty_thread_is_an_empty_summary(style: str) -> None:
    summary = summarize(Thread(), style)

    assert summary.model_dump(exclude={"style"}) == {
        "engine": "grounded", "intent": None, "issue": "", "facts": [], "actions": [], "status": None,
        "next_steps": [], "sentiment": {"start": None, "end": None, "direction": "steady", "turns": []},
        "abstract": "", "waiting_since": None, "message_count": 0, "note": None}


def test_summarize_thread_of_bot_and_system_messages_has_no_status() -> None:
    summary = summarize(thread((SYS, "Chat started from the help centre"), (BOT, "Hi! What can I help with?")))

    assert (summary.status, summary.issue, summary.abstract, summary.message_count) == (None, "", "", 2)


def test_summarize_thread_without_agent_waits_for_the_agent() -> None:
    messages = thread((C, "Hello, is there an outage in Leeds?"), (BOT, "An agent will reply shortly."),
                      (C, "still nothing"))

    summary = summarize(messages, "catch_up")

    assert summary.status == Status.PENDING_AGENT
    assert summary.actions == []
    assert summary.issue == "Is there an outage in Leeds?"
    assert summary.waiting_since == T0
    assert summary.next_steps == [NextStep(owner="agent", kind="reply", text="Is there an outage in Leeds?")]
    assert summary.abstract.startswith("Customer is asking about is there an outage in Leeds? No agent has replied "
                                       "yet, the customer sent 2 messages")


def test_summarize_thread_with_only_an_agent_message_waits_for_the_customer() -> None:
    summary = summarize(thread((A, "Hi, your order BW-123456 has shipped and should arrive on 3 December.")))

    assert summary.status == Status.PENDING_CUSTOMER
    assert summary.issue == ""
    assert ("order_id", "BW-123456", 0) in facts_of(summary)


def test_summarize_long_thread_stays_short_and_fast() -> None:
    messages: list[tuple[Role, str]] = []
    for n in range(150):
        messages.append((C, f"and what about order BW-{100000 + n}? this is taking forever"))
        messages.append((A, f"I've checked order BW-{100000 + n}. I've sent a one-time code by text."))
    long_thread = thread(*messages)

    started = time.perf_counter()
    summary = summarize(long_thread, "handoff")
    elapsed = time.perf_counter() - started

    assert summary.message_count == 300
    assert len(summary.facts) == MAX_FACTS
    assert summary.facts[0].value == "BW-100000" and summary.facts[-1].value == f"BW-{100000 + MAX_FACTS - 1}"
    assert len(summary.actions) == MAX_ITEMS  # the latest ones; the repeated one-time code counts once
    assert summary.actions[-1] == "I've checked order BW-100149"
    assert sum("one-time code" in a for a in summary.actions) <= 1
    assert len(summary.sentiment.turns) == 150
    assert summary.status == Status.PENDING_CUSTOMER
    assert elapsed < 10  # a few hundred ms here; the bound only catches a blow-up


# --- styles and the model -----------------------------------------------------------------------------------------


def test_summarize_after_contact_abstract_is_the_measured_abstract() -> None:
    double_charge = sample("double-charge")

    assert summarize(double_charge).abstract == abstract(double_charge)


def test_summarize_styles_change_the_abstract_not_the_fields() -> None:
    waiting = sample("stolen-phone")

    summaries = {style: summarize(waiting, style) for style in STYLES}

    assert len({s.abstract for s in summaries.values()}) == 3
    assert len({s.model_dump_json(exclude={"style", "abstract"}) for s in summaries.values()}) == 1
    assert "Since the agent last wrote, the customer sent 4 messages" in summaries["catch_up"].abstract
    assert "Done so far: I've barred your SIM" in summaries["handoff"].abstract
    assert "3 open items" in summaries["handoff"].abstract


def test_summarize_unknown_style_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        summarize(sample("double-charge"), "haiku")


@pytest.mark.parametrize("model", [Summary, KeyFact, NextStep, SentimentTrend])
def test_summary_models_describe_every_field(model: type[BaseModel]) -> None:
    assert [name for name, field in model.model_fields.items() if not field.description] == []
