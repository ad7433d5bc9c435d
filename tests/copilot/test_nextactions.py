"""Next-best actions over the sample brand's playbooks and threads, with the real MiniLM embeddings."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from copilot.conversation import Message, Role, Thread
from copilot.errors import InvalidInput
from copilot.intents import IntentClassifier
from copilot.nextactions import NextAction, NextActionEngine, NextActions
from knowledge.embeddings import LocalEmbedder
from tests.conftest import sample_playbooks

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "brightwave"
VERIFY = "Verify the customer's identity"


def _thread(name: str, cut: int | None = None) -> Thread:
    thread = Thread.model_validate_json((SAMPLE / "threads" / f"{name}.json").read_text(encoding="utf-8"))
    return thread.model_copy(update={"messages": thread.messages[:cut]})


def _customer(*texts: str) -> Thread:
    return Thread(messages=[Message(role=Role.CUSTOMER, text=t) for t in texts])


def _step(result: NextActions, step_id: str) -> NextAction:
    return next(a for a in result.actions if a.step_id == step_id)


@pytest.fixture(scope="module")
def engine(embedder: LocalEmbedder) -> NextActionEngine:
    return NextActionEngine(sample_playbooks(), embedder)


@pytest.fixture(scope="module")
def engine_with_intents(embedder: LocalEmbedder) -> NextActionEngine:
    with (SAMPLE / "intents.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    classifier = IntentClassifier(embedder)
    classifier.calibrate_unknown([r["example"] for r in rows], [r["intent"] for r in rows])
    return NextActionEngine(sample_playbooks(), embedder, intents=classifier)


def test_recommend_account_locked_after_code_sent_waits_for_verification_before_unlock(
        engine: NextActionEngine) -> None:
    # messages 0-2: the customer is locked out, the bot hands over, the agent sends a one-time code
    result = engine.recommend(_thread("account-locked", cut=3))

    assert result.playbook is not None
    assert result.playbook.playbook_id == "account-locked-password-reset"
    assert result.playbook.matched_by == "similarity"
    [identified] = [d for d in result.playbook.done if d.step_id == "identify_problem"]
    assert identified.message_index == 2 and "locked 3 times" in identified.evidence
    assert "verify_identity" in result.playbook.remaining  # the code is sent, not yet checked
    assert result.playbook.awaiting_customer == ["verify_identity"]
    first = result.actions[0]
    assert (first.step_id, first.kind, first.preconditions_met) == ("verify_identity", "playbook_step", True)
    assert "Please reply with the 6-digit code" in first.reason
    unlock = _step(result, "unlock_or_update")
    assert not unlock.preconditions_met
    assert unlock.blocked_by == [VERIFY]
    assert VERIFY in unlock.reason


def test_recommend_account_locked_after_customer_sends_code_unblocks_unlock(engine: NextActionEngine) -> None:
    result = engine.recommend(_thread("account-locked", cut=4))

    assert result.playbook is not None
    [verified] = [d for d in result.playbook.done if d.step_id == "verify_identity"]
    assert verified.message_index == 2 and verified.matched_by == "cue"
    assert result.playbook.awaiting_customer == []
    unlock = _step(result, "unlock_or_update")
    assert unlock.preconditions_met and unlock.blocked_by == []
    assert [a.step_id for a in result.actions].index("unlock_or_update") < 2


def test_recommend_double_charge_chooses_refund_playbook_and_blocks_refund_until_verified(
        engine: NextActionEngine) -> None:
    # the system note and the customer's three messages, before any agent reply
    result = engine.recommend(_thread("double-charge", cut=4), n=10)

    assert result.playbook is not None
    assert result.playbook.playbook_id == "refund-double-charge"
    assert result.actions[0].step_id == "verify_identity" and result.actions[0].preconditions_met
    refund = _step(result, "issue_refund")
    assert not refund.preconditions_met
    assert refund.blocked_by[0] == VERIFY
    assert "Agree how the customer wants the money back" in refund.blocked_by
    assert all(not a.preconditions_met for a in result.actions[1:])  # nothing but verification can start
    assert result.escalation == []  # a calm customer


def test_recommend_double_charge_waits_on_the_refund_choice_the_agent_asked_for(engine: NextActionEngine) -> None:
    result = engine.recommend(_thread("double-charge", cut=8))

    assert result.playbook is not None
    done = {d.step_id for d in result.playbook.done}
    assert {"verify_identity", "check_charges", "confirm_duplicate"} <= done
    assert result.playbook.awaiting_customer == ["choose_refund_method"]
    assert result.actions[0].step_id == "choose_refund_method"
    assert _step(result, "issue_refund").blocked_by == ["Agree how the customer wants the money back"]


def test_recommend_finished_double_charge_has_nothing_left(engine: NextActionEngine) -> None:
    result = engine.recommend(_thread("double-charge"))

    assert result.playbook is not None
    assert result.playbook.remaining == []
    assert result.actions == [] and result.escalation == []


def test_recommend_console_reports_mark_steps_done(engine: NextActionEngine) -> None:
    result = engine.recommend(_thread("double-charge", cut=4), done_actions=["verify_identity", "look_up_charges"])

    assert result.playbook is not None
    reported = {d.step_id: d for d in result.playbook.done if d.matched_by == "console"}
    assert set(reported) == {"verify_identity", "check_charges"}
    assert reported["check_charges"].message_index is None
    assert result.actions[0].step_id == "confirm_duplicate" and result.actions[0].preconditions_met


def test_recommend_shared_console_action_marks_the_ready_step(engine: NextActionEngine) -> None:
    # after "you're verified": of the two inform_customer steps only the charges one is ready (the 72-hour hold
    # waits for the SIM swap), so the console's inform_customer is that one
    result = engine.recommend(_thread("stolen-phone", cut=8), done_actions=["inform_customer"])

    assert result.playbook is not None
    assert [d.step_id for d in result.playbook.done if d.matched_by == "console"] == ["charges_and_insurance"]
    assert "explain_security_hold" in result.playbook.remaining


def test_recommend_announced_step_is_not_done(engine: NextActionEngine) -> None:
    # "Before I look at your payments, I need to check it's you." reads like "checking your payments" (0.80)
    result = engine.recommend(_thread("double-charge", cut=5))

    assert result.playbook is not None
    assert "check_charges" in result.playbook.remaining
    assert result.playbook.awaiting_customer == ["verify_identity"]


def test_recommend_bot_status_link_checks_status_without_logging_a_ticket(engine: NextActionEngine) -> None:
    # the bot linked https://brightwave.example/status; the capitals cue "STATUS" (text STATUS to 6060) must not match
    result = engine.recommend(_thread("outage-no-signal", cut=6))

    assert result.playbook is not None
    assert result.playbook.playbook_id == "outage-reported"
    done = {d.step_id: d for d in result.playbook.done}
    assert done["check_status"].message_index == 4
    assert "open_ticket" not in done
    assert "open_ticket" in [a.step_id for a in engine.recommend(_thread("outage-no-signal", cut=6), n=10).actions]


def test_recommend_paraphrase_of_a_cue_counts_as_done(engine: NextActionEngine) -> None:
    thread = _thread("account-locked", cut=7).model_copy(deep=True)
    thread.messages.append(Message(role=Role.AGENT, text="Please choose a password you don't use anywhere else."))

    result = engine.recommend(thread)

    assert result.playbook is not None
    [secured] = [d for d in result.playbook.done if d.step_id == "secure_account"]
    assert secured.matched_by == "similarity" and secured.message_index == 7


def test_recommend_angry_urgent_customer_gets_escalation_with_reasons(engine: NextActionEngine) -> None:
    thread = Thread(messages=[
        Message(role=Role.CUSTOMER, text="You charged me twice AGAIN. This is the third time I'm asking!!! "
                                         "I need the money back today, my rent is due"),
        Message(role=Role.AGENT, text="I'm sorry about this. Let me look into it."),
        Message(role=Role.CUSTOMER, text="This is absolutely ridiculous and useless. I want to speak to a manager"),
    ])

    result = engine.recommend(thread)

    by_trigger = {a.trigger: a for a in result.escalation}
    assert {"asks_for_person", "time_critical", "complaint", "negative_sentiment"} <= set(by_trigger)
    assert by_trigger["time_critical"].kind == "channel_switch" and by_trigger["time_critical"].target == "voice"
    assert "today" in by_trigger["time_critical"].evidence and by_trigger["time_critical"].message_index == 0
    assert "third time" in by_trigger["complaint"].evidence
    assert by_trigger["asks_for_person"].target == "supervisor"
    for advice in result.escalation:
        assert advice.evidence in advice.reason
        assert advice.evidence in thread.messages[advice.message_index or 0].text
    kinds = {a.kind for a in result.actions}
    assert {"escalation", "channel_switch", "playbook_step"} <= kinds  # verification stays among the top 3
    assert result.actions[0].action == "escalate_to_supervisor"


def test_recommend_worsening_mood_offers_a_supervisor(engine: NextActionEngine) -> None:
    thread = Thread(messages=[
        Message(role=Role.CUSTOMER, text="Hi, great, thanks for the quick reply! Where is my order?"),
        Message(role=Role.AGENT, text="Let me look."),
        Message(role=Role.CUSTOMER, text="ok"),
        Message(role=Role.AGENT, text="Still looking."),
        Message(role=Role.CUSTOMER, text="This is terrible service, I'm really annoyed and disappointed"),
    ])

    result = engine.recommend(thread)

    [worse] = [a for a in result.escalation if a.trigger == "worsening_sentiment"]
    assert worse.target == "supervisor" and worse.message_index == 4
    assert "+0.81" in worse.reason and "terrible service" in worse.reason


def test_recommend_playbook_escalation_condition_cites_it(engine: NextActionEngine) -> None:
    thread = _customer("I can't sign in. Somebody has changed the sign in email on my account, it wasn't me")

    result = engine.recommend(thread)

    [condition] = [a for a in result.escalation if a.trigger == "playbook_condition"]
    assert condition.target == "specialist"
    assert '"sign-in email changed by someone else"' in condition.reason
    assert condition.evidence.startswith("Somebody has changed")
    assert any(a.action == "escalate_to_specialist" and a.playbook_id == "account-locked-password-reset"
               for a in result.actions)


def test_recommend_sample_threads_raise_no_playbook_condition(engine: NextActionEngine) -> None:
    for path in sorted((SAMPLE / "threads").glob("*.json")):
        result = engine.recommend(_thread(path.stem))
        assert [a for a in result.escalation if a.trigger == "playbook_condition"] == [], path.stem


def test_recommend_long_unresolved_thread_goes_to_a_specialist(engine: NextActionEngine) -> None:
    messages = []
    for attempt in range(8):
        messages += [Message(role=Role.CUSTOMER, text=f"my wifi calling still drops calls, try {attempt}"),
                     Message(role=Role.AGENT, text="Let me check that for you.")]

    result = engine.recommend(Thread(messages=messages))

    [long] = [a for a in result.escalation if a.trigger == "long_thread"]
    assert long.target == "specialist" and "8 times" in long.reason
    assert engine.recommend(Thread(messages=messages[:-4])).escalation == []  # 6 turns are not long yet


def test_recommend_small_talk_chooses_no_playbook(engine: NextActionEngine) -> None:
    thread = Thread(messages=[
        Message(role=Role.CUSTOMER, text="hey how are you doing today"),
        Message(role=Role.AGENT, text="Hi! I'm good thanks, how can I help?"),
        Message(role=Role.CUSTOMER, text="haha nice. what's your favourite film?"),
    ])

    result = engine.recommend(thread)

    assert result.playbook is None
    assert result.actions == [] and result.escalation == []  # "today" in a greeting is no deadline


def test_recommend_order_and_roaming_thread_has_no_playbook(engine: NextActionEngine) -> None:
    result = engine.recommend(_thread("order-and-roaming"))

    assert result.playbook is None
    assert all(a.kind != "playbook_step" for a in result.actions)


def test_recommend_with_intents_chooses_playbook_by_intent(engine_with_intents: NextActionEngine,
                                                           engine: NextActionEngine) -> None:
    # "the camera on my new phone keeps going blurry": too far from every playbook for similarity alone
    thread = _thread("faulty-phone-exchange", cut=10)

    result = engine_with_intents.recommend(thread)

    assert engine.recommend(thread).playbook is None
    assert result.intent == "return_request"
    assert result.playbook is not None
    assert (result.playbook.playbook_id, result.playbook.matched_by) == ("return-exchange-device", "intent")
    assert {d.step_id for d in result.playbook.done} == {"identify_order", "check_eligibility"}
    assert result.actions[0].step_id == "understand_reason"


def test_recommend_with_intents_reports_an_intent_without_playbook(engine_with_intents: NextActionEngine) -> None:
    result = engine_with_intents.recommend(_thread("order-and-roaming"))

    assert result.intent == "order_status"
    assert result.playbook is None


def test_recommend_n_bounds_the_actions(engine: NextActionEngine) -> None:
    thread = _thread("double-charge", cut=4)

    assert len(engine.recommend(thread, n=1).actions) == 1
    assert len(engine.recommend(thread, n=5).actions) == 5
    with pytest.raises(InvalidInput):
        engine.recommend(thread, n=0)


def test_recommend_empty_thread_is_empty(engine: NextActionEngine) -> None:
    result = engine.recommend(Thread())

    assert result == NextActions(actions=[], playbook=None, escalation=[], intent=None)


def test_response_models_describe_every_field() -> None:
    schema = NextActions.model_json_schema()
    models: dict[str, Any] = {"NextActions": schema, **schema["$defs"]}

    undescribed = [f"{name}.{field}" for name, model in models.items()
                   for field, spec in model["properties"].items() if not spec.get("description")]

    assert set(models) >= {"NextAction", "PlaybookProgress", "DoneStep", "EscalationAdvice"}
    assert undescribed == []
