"""Learned next actions over a tiny hand-made history, with the real MiniLM embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from copilot.conversation import Message, Role, Thread
from copilot.errors import InvalidInput
from copilot.history import ActionHistory, HistoryState, history_examples
from copilot.labelled_threads import HistoryMessage, LabelledThread
from copilot.ports import Matrix, Vector
from knowledge.embeddings import LocalEmbedder


def _past(thread_id: str, *messages: tuple[str, str, str | list[str] | None]) -> LabelledThread:
    return LabelledThread(id=thread_id, messages=[HistoryMessage(role=Role(r), text=t, action=a)
                                                  for r, t, a in messages])


REFUNDS = [
    _past("refund-1", ("customer", "you charged me twice this month", None),
          ("agent", "Sorry about that. I've sent a one-time code to your number to check it's you.", "verify_identity"),
          ("customer", "code is 448120", None),
          ("agent", "Thanks, verified. I can see two payments of £23 for the same bill.", "check_charges"),
          ("agent", "I've requested a refund of £23 to your card.", "issue_refund")),
    _past("refund-2", ("customer", "double payment taken for my bill", None),
          ("agent", "Let me check it's you first: I've sent a one-time code by text.", "verify_identity"),
          ("customer", "302991", None),
          ("agent", "You're verified. Checking your payments: there are two of £18.", "check_charges"),
          ("agent", "Refund of £18 requested, it reaches your card in 3 to 5 working days.", "issue_refund")),
    _past("refund-3", ("customer", "why have you taken my bill payment twice", None),
          ("agent", "I'm sorry. I've texted you a one-time code so I can check it's you.", "verify_identity"),
          ("customer", "the code is 771530", None),
          ("agent", "Thanks. I can see both payments on the card ending 4417.", "check_charges")),
]
ORDERS = [
    _past("order-1", ("customer", "where is my order BW-517204", None),
          ("agent", "It was dispatched today with Parcelway and arrives in 2 to 4 working days.", "track_order"),
          ("customer", "thanks, I'm also going to Spain, does my plan work there?", None),
          ("agent", "Spain is in Zone 1, so your allowance works there at no extra cost.", "explain_roaming")),
    _past("order-2", ("customer", "has my new phone shipped yet? order BW-530004", None),
          ("agent", "Yes, it left our warehouse this morning with Parcelway.", "track_order"),
          ("customer", "great. what does it cost to use it in the USA?", None),
          ("agent", "The USA is in Zone 2: a World Day Pass is £6 a day.", "explain_roaming")),
]
CODES = [  # the code did not arrive: agents sent another, a repeat they learned to make
    _past(f"code-{i}", ("customer", "I can't sign in, I need the verification code", None),
          ("agent", "I've sent you a new verification code by text.", "send_code"),
          ("customer", "I still haven't got the code", None),
          ("agent", "Sorry, I've sent another code; only the newest one works.", "send_code"))
    for i in (1, 2)
]


@pytest.fixture(scope="module")
def history(embedder: LocalEmbedder) -> ActionHistory:
    return ActionHistory.from_threads([*REFUNDS, *ORDERS, *CODES], embedder)


def _thread(*messages: tuple[str, str]) -> Thread:
    return Thread(messages=[Message(role=Role(r), text=t) for r, t in messages])


def test_history_examples_are_the_states_before_each_labelled_action() -> None:
    examples = history_examples(REFUNDS[:1])

    assert [e.action for e in examples] == ["verify_identity", "check_charges", "issue_refund"]
    first, second, third = (e.state for e in examples)
    assert first == HistoryState(topic="you charged me twice this month", customer="you charged me twice this month")
    assert second.customer == "code is 448120" and second.done == ("verify_identity",)
    assert second.context.startswith("Sorry about that. I've sent a one-time code")
    assert third.context.startswith("Thanks, verified.") and third.done == ("verify_identity", "check_charges")
    assert third.topic == "you charged me twice this month"


def test_rank_votes_what_agents_did_next_in_the_most_similar_threads(history: ActionHistory) -> None:
    state = HistoryState(topic="I've been charged twice for one bill", customer="my code is 118230",
                         context="I've sent a one-time code to your phone to check it's you.",
                         done=("verify_identity",))

    [best, *_] = history.rank([state])[0]

    assert best.action == "check_charges"
    assert best.votes == 3 and best.neighbours == 7  # every past thread, one vote each
    assert best.reason.startswith("Agents did this next in 3 of the 7 most similar past threads (closest: refund-")
    assert 0 < best.confidence < 1


def test_rank_leaves_out_actions_the_thread_has_done(history: ActionHistory) -> None:
    state = HistoryState(topic="charged twice", customer="ok", context="I can see two payments of £20.",
                         done=("verify_identity", "check_charges"))

    ranked = [a.action for a in history.rank([state], n=5)[0]]

    assert ranked[0] == "issue_refund"
    assert not {"verify_identity", "check_charges"} & set(ranked)


def test_rank_repeats_an_action_only_where_agents_repeated_it(history: ActionHistory) -> None:
    state = HistoryState(topic="I can't sign in, I need the verification code", customer="the code never came",
                         context="I've sent you a new verification code by text.", done=("send_code",))

    assert history.rank([state])[0][0].action == "send_code"
    assert "send_code" not in [a.action for a in history.rank([state], repeats=False)[0]]
    refund = HistoryState(topic="charged twice", customer="and?", context="I can see two payments.",
                          done=("verify_identity", "check_charges"))
    assert "check_charges" not in [a.action for a in history.rank([refund], n=5)[0]]  # never repeated in history


def test_recommend_reads_what_the_agent_messages_did_from_labelled_ones(history: ActionHistory) -> None:
    thread = _thread(("customer", "hi, where's my order BW-600112?"),
                     ("agent", "It was dispatched today with Parcelway and arrives in 2 to 4 working days."),
                     ("customer", "ok. I'm flying to Canada next week, what will roaming cost me?"))

    assert history.state_of(thread).done == ("track_order",)
    learned = history.recommend(thread)
    assert [a.action for a in learned] == ["explain_roaming"]
    assert learned[0].votes == 2


def test_state_of_puts_console_reports_after_the_actions_of_messages(history: ActionHistory) -> None:
    thread = _thread(("customer", "you took my bill payment twice this month"),
                     ("agent", "Sorry about that. I've sent a one-time code to your number to check it's you."),
                     ("customer", "448120"), ("agent", "Let me look into that for you."))

    state = history.state_of(thread, done=[(None, "issue_refund"), (2, "check_charges")])

    # message 1 reads like a labelled verify_identity; the console's report comes last
    assert state.done == ("verify_identity", "check_charges", "issue_refund")
    assert state.customer == "448120" and state.context == "Let me look into that for you."
    assert state.topic == "you took my bill payment twice this month"


def test_recommend_needs_two_similar_threads_that_agree(history: ActionHistory) -> None:
    # only refund-1 and refund-2 went on to refund, and refund-3 ended: two votes, offered
    thread = _thread(("customer", "charged twice"), ("agent", "I've sent a one-time code to check it's you."),
                     ("customer", "code 123456"), ("agent", "Thanks, verified. I can see two payments for the bill."))
    assert [a.action for a in history.recommend(thread)] == ["issue_refund"]
    assert history.recommend(thread, min_votes=3) == []


def test_recommend_small_talk_has_no_similar_past_thread(history: ActionHistory) -> None:
    assert history.recommend(_thread(("customer", "what a lovely sunny day it is today"))) == []


def test_history_without_labelled_actions_is_refused(embedder: LocalEmbedder) -> None:
    with pytest.raises(InvalidInput, match="at least one labelled action"):
        ActionHistory.from_threads([_past("x", ("customer", "hi", None), ("agent", "hello", None))], embedder)
    with pytest.raises(InvalidInput, match="n must be at least 1"):
        ActionHistory.from_threads(ORDERS, embedder).rank([HistoryState()], n=0)


def test_topic_reads_on_past_a_greeting_until_the_customer_says_what_it_is_about() -> None:
    thread = _past("hello", ("customer", "hi", None), ("agent", "Hi! How can I help?", "greet"),
                   ("customer", "my phone was stolen last night", None), ("agent", "I've barred your SIM.", "bar_sim"),
                   ("customer", "thanks, what now?", None), ("agent", "Next, I'll check it's you.", "verify_identity"))

    topics = [e.state.topic for e in history_examples([thread])]

    assert topics == ["hi", "hi my phone was stolen last night", "hi my phone was stolen last night"]


class _CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner = inner
        self.embedded: list[str] = []
        self.name, self.dimension = inner.name, inner.dimension

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        self.embedded += texts
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> Vector:
        return self.embed_documents([text])[0]


def test_recommend_embeds_a_thread_s_texts_once_across_requests(embedder: LocalEmbedder) -> None:
    counting = _CountingEmbedder(embedder)
    history = ActionHistory.from_threads(ORDERS, counting)
    thread = _thread(("customer", "hi, where's my order BW-600112?"),
                     ("agent", "It was dispatched today with Parcelway and arrives in 2 to 4 working days."))
    first = history.recommend(thread, min_votes=1)
    counting.embedded.clear()

    again = history.recommend(thread, min_votes=1)
    thread.messages.append(Message(role=Role.CUSTOMER, text="and what does roaming in Canada cost?"))
    later = history.recommend(thread, min_votes=1)

    assert again == first
    # only what the new message made new: itself, and the topic it completes (the opening had under 6 words)
    assert sorted(counting.embedded) == ["and what does roaming in Canada cost?",
                                         "hi, where's my order BW-600112? and what does roaming in Canada cost?"]
    assert [a.action for a in later] == ["explain_roaming"]


def test_history_refuses_fewer_than_one_neighbour(embedder: LocalEmbedder) -> None:
    with pytest.raises(InvalidInput, match="k must be at least 1"):
        ActionHistory.from_threads(ORDERS, embedder, k=0)
