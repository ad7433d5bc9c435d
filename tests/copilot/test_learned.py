"""Learned actions beside the playbook's: merged into the step they are, added when they are not."""

from __future__ import annotations

import pytest

from copilot.conversation import Message, Role, Thread
from copilot.history import ActionHistory, LearnedAction
from copilot.labelled_threads import HistoryMessage, LabelledThread
from copilot.learned import done_labels, with_learned
from copilot.nextaction_contract import DoneStep, NextAction, PlaybookProgress
from copilot.nextactions import NextActionEngine
from knowledge.embeddings import LocalEmbedder
from tests.conftest import sample_playbooks


def _refund(number: int, after_code: tuple[str, str]) -> LabelledThread:
    text, action = after_code
    return LabelledThread(id=f"refund-{number}", messages=[
        HistoryMessage(role=Role.CUSTOMER, text="you've charged me twice for my bill"),
        HistoryMessage(role=Role.AGENT, text="Sorry about that. I've sent a one-time code to the number on your "
                                             "account. Please reply with the 6-digit code.", action="verify_identity"),
        HistoryMessage(role=Role.CUSTOMER, text=f"{448120 + number}"),
        HistoryMessage(role=Role.AGENT, text=text, action=action)])


HISTORY = [
    *(_refund(i, ("Thanks, you're verified. I can see two payments for your bill.", "look_up_charges"))
      for i in range(3)),
    *(_refund(i, ("Thanks, you're verified. I've added £5 goodwill credit for the trouble.", "offer_goodwill_credit"))
      for i in range(3, 5)),
]
THREAD = Thread(messages=[
    Message(role=Role.CUSTOMER, text="hi, you've taken my bill payment twice"),
    Message(role=Role.AGENT, text="I'm sorry. I've sent a one-time code to the number on your account. Please reply "
                                  "with the 6-digit code."),
    Message(role=Role.CUSTOMER, text="448999"),
])


@pytest.fixture(scope="module")
def engines(embedder: LocalEmbedder) -> tuple[NextActionEngine, NextActionEngine]:
    playbooks = sample_playbooks()
    return (NextActionEngine(playbooks, embedder),
            NextActionEngine(playbooks, embedder, history=ActionHistory.from_threads(HISTORY, embedder)))


def test_recommend_learned_playbook_step_raises_it_instead_of_repeating_it(
        engines: tuple[NextActionEngine, NextActionEngine]) -> None:
    plain, learned = engines

    before = plain.recommend(THREAD, n=10)
    after = learned.recommend(THREAD, n=10)

    assert after.playbook is not None and after.playbook.playbook_id == "refund-double-charge"
    [step_before] = [a for a in before.actions if a.step_id == "check_charges"]
    [step_after] = [a for a in after.actions if a.action == "look_up_charges"]  # one, not a step and a copy
    assert step_after.kind == "playbook_step" and step_after.step_id == "check_charges"
    assert step_after.confidence > step_before.confidence
    assert step_after.reason.startswith(step_before.reason)
    assert "Agents did this next in 3 of the 5 most similar past threads" in step_after.reason
    assert after.actions[0] == step_after


def test_recommend_learned_action_outside_the_playbook_is_added(
        engines: tuple[NextActionEngine, NextActionEngine]) -> None:
    _, learned = engines

    result = learned.recommend(THREAD, n=10)

    [goodwill] = [a for a in result.actions if a.kind == "learned"]
    assert (goodwill.action, goodwill.title, goodwill.playbook_id, goodwill.step_id) == (
        "offer_goodwill_credit", "Offer goodwill credit", None, None)
    assert goodwill.preconditions_met and goodwill.blocked_by == []
    assert goodwill.reason.startswith("Agents did this next in 2 of the 5 most similar past threads")
    assert "verify_identity" not in [a.action for a in result.actions]  # done: the customer sent the code


def _action(step_id: str, action: str, confidence: float, ready: bool = True) -> NextAction:
    return NextAction(playbook_id="p", step_id=step_id, action=action, title=step_id, reason=f"{step_id} next.",
                      preconditions_met=ready, blocked_by=[] if ready else ["x"], kind="playbook_step",
                      confidence=confidence)


def _learned(action: str, confidence: float) -> LearnedAction:
    return LearnedAction(action=action, confidence=confidence, votes=4, neighbours=8,
                         reason="Agents did this next in 4 of the 8 most similar past threads.")


def test_with_learned_shared_action_raises_the_ready_step() -> None:
    actions = [_action("explain_credit", "inform_customer", 0.6, ready=False),
               _action("offer_workaround", "inform_customer", 0.5)]

    merged = with_learned(actions, [_learned("inform_customer", 0.5)], [])

    assert [a.confidence for a in merged] == [0.6, 0.75]  # 1 - (1 - 0.5)(1 - 0.5)
    assert merged[1].reason == "offer_workaround next. Agents did this next in 4 of the 8 most similar past threads."


def test_with_learned_names_a_learned_step_of_another_playbook_by_its_title() -> None:
    merged = with_learned([], [_learned("bar_sim", 0.4), _learned("send-survey", 0.3)], sample_playbooks())

    assert [(a.kind, a.title, a.confidence) for a in merged] == [
        ("learned", "Bar the SIM if the phone is lost or stolen", 0.4), ("learned", "Send survey", 0.3)]


def test_done_labels_give_step_ids_and_actions_with_their_messages() -> None:
    playbook = next(p for p in sample_playbooks() if p.id == "refund-double-charge")
    progress = PlaybookProgress(
        playbook_id=playbook.id, name=playbook.name, matched_by="similarity", score=0.5, awaiting_customer=[],
        remaining=[], done=[DoneStep(step_id="check_charges", evidence="I can see", message_index=3,
                                     matched_by="cue")])

    assert done_labels(playbook, progress, ["goodwill"]) == [(3, "check_charges"), (3, "look_up_charges"),
                                                             (None, "goodwill")]
    assert done_labels(None, None, []) == []
