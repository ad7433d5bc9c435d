"""The grounded engine on the sample brand: grounded answers, macros, the threshold, voice and channel."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from copilot.conversation import Channel, Customer, Message, Role, Thread
from copilot.errors import InvalidInput
from copilot.macros import Macro
from copilot.suggest import Finisher, GroundedEngine, fill_macro, placeholder_values
from knowledge.base import KnowledgeBase
from tests.conftest import SAMPLE, SAMPLE_TENANT

TS = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def thread(*texts: str, channel: Channel = Channel.WEBCHAT, name: str | None = "Hannah Jones",
           **customer: str) -> Thread:
    roles = [Role.CUSTOMER, Role.AGENT]
    return Thread(id="t-1", channel=channel, customer=Customer(name=name, **customer),
                  messages=[Message(role=roles[i % 2], text=t, ts=TS) for i, t in enumerate(texts)])


@pytest.fixture(scope="module")
def engine(sample_kb: KnowledgeBase) -> GroundedEngine:
    return GroundedEngine(sample_kb.retriever)


def test_answers_from_the_knowledge_with_citations_in_the_brand_voice(engine: GroundedEngine,
                                                                      sample_kb: KnowledgeBase) -> None:
    result = engine.suggest(SAMPLE_TENANT, thread("my phone got stolen last night"), sample_kb.profile(SAMPLE_TENANT))
    assert result.answered and result.engine == "grounded"
    top = result.suggestions[0]
    assert top.text.startswith("Hi Hannah,")  # first agent reply: greeting with the first name
    assert top.citations and top.citations[0].passage in top.text
    assert "stolen" in (top.citations[0].title + top.citations[0].passage).lower()
    assert {c.name for c in top.checks} == {"voice", "channel"}
    assert 0 < top.confidence <= 1


def test_an_unrelated_question_gets_a_clarifying_question_not_a_passage(engine: GroundedEngine,
                                                                        sample_kb: KnowledgeBase) -> None:
    result = engine.suggest(SAMPLE_TENANT, thread("what is a good recipe for banana bread with walnuts?"),
                            sample_kb.profile(SAMPLE_TENANT))
    assert not result.answered
    assert result.note and "threshold" in result.note
    assert [s.source for s in result.suggestions] == ["clarify"]
    assert not result.suggestions[0].citations
    voice = sample_kb.profile(SAMPLE_TENANT).voice
    assert voice and any(q in result.suggestions[0].text for q in voice.clarifying_questions)


def test_macro_placeholders_are_filled_from_the_thread(engine: GroundedEngine, sample_kb: KnowledgeBase) -> None:
    result = engine.suggest(SAMPLE_TENANT, thread("why is my order BW-517204 on hold? it says security check"),
                            sample_kb.profile(SAMPLE_TENANT), n=5)
    macros = [s for s in result.suggestions if s.source == "macro"]
    assert macros, [s.source for s in result.suggestions]
    assert "BW-517204" in macros[0].text
    assert all("{" not in s.text for s in result.suggestions)


def test_a_macro_with_a_placeholder_the_thread_cannot_fill_is_never_offered(engine: GroundedEngine,
                                                                           sample_kb: KnowledgeBase) -> None:
    # order-status needs {ship_date} and {carrier}, which neither the thread nor the record give
    result = engine.suggest(SAMPLE_TENANT, thread("where is my order BW-517204? has it shipped yet?"),
                            sample_kb.profile(SAMPLE_TENANT), n=10)
    assert "order-status" not in {s.macro_id for s in result.suggestions}
    with_record = thread("where is my order BW-517204? has it shipped yet?", ship_date="18 November",
                         carrier="Parcelway")
    values = placeholder_values(with_record)
    macro = sample_kb.profile(SAMPLE_TENANT).macro("order-status")
    assert macro is not None
    assert fill_macro(macro, values) == (
        "Your order BW-517204 shipped on 18 November with Parcelway. You can track it at "
        "https://brightwave.example/track/BW-517204.")


def test_sms_replies_are_plain_and_counted_in_segments(engine: GroundedEngine, sample_kb: KnowledgeBase) -> None:
    result = engine.suggest(SAMPLE_TENANT, thread("my phone got stolen last night", channel=Channel.SMS),
                            sample_kb.profile(SAMPLE_TENANT))
    top = result.suggestions[0]
    assert top.sms_segments is not None and top.sms_segments >= 1
    assert "**" not in top.text and "](" not in top.text


def test_a_thread_without_a_customer_message_is_refused(engine: GroundedEngine, sample_kb: KnowledgeBase) -> None:
    agent_only = Thread(messages=[Message(role=Role.AGENT, text="Hi, how can I help?")])
    with pytest.raises(InvalidInput, match="no customer message"):
        engine.suggest(SAMPLE_TENANT, agent_only, sample_kb.profile(SAMPLE_TENANT))
    with pytest.raises(InvalidInput, match="n must be"):
        engine.suggest(SAMPLE_TENANT, thread("hello"), sample_kb.profile(SAMPLE_TENANT), n=0)


def test_the_finisher_fixes_banned_phrases_and_signs_off_when_the_customer_closes(sample_kb: KnowledgeBase) -> None:
    voice = sample_kb.profile(SAMPLE_TENANT).voice
    closing = thread("my bill is wrong", "Kindly check the app.", "ok thanks, that's all")
    done = Finisher(voice).finish("Unfortunately the refund will take 5 days.", closing)
    assert "Unfortunately" not in done.text and done.text.startswith("I'm sorry, but")
    assert done.text.endswith("Thanks for being with Brightwave.")
    check = next(c for c in done.checks if c.name == "voice")
    assert any("banned_phrase" in change for change in check.changes)
    assert not check.passed  # "refund will" is a promise and "refund" before verification: left for the agent


def test_the_sample_threads_all_get_an_answer_or_a_question(engine: GroundedEngine, sample_kb: KnowledgeBase) -> None:
    profile = sample_kb.profile(SAMPLE_TENANT)
    for path in sorted((SAMPLE / "threads").glob("*.json")):
        whole = Thread.model_validate(json.loads(path.read_text()))
        result = engine.suggest(SAMPLE_TENANT, whole, profile)
        assert result.suggestions, path.name
        assert all(0 <= s.confidence <= 1 for s in result.suggestions)


def test_fill_macro_needs_every_placeholder() -> None:
    macro = Macro(id="m", title="t", text="Hi {customer_name}, order {order_id}")
    assert fill_macro(macro, {"customer_name": "Ann"}) is None
    assert fill_macro(macro, {"customer_name": "Ann", "order_id": "BW-1"}) == "Hi Ann, order BW-1"
