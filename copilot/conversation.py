"""Threads as consoles send them: messages, turns (messaging bursts), the retrieval query, the token budget."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from copilot.facts import extract_facts, region_of
from copilot.ports import RetrievalQuery
from copilot.tokens import count_tokens

BURST_GAP = timedelta(minutes=2)


class Role(StrEnum):
    """Who wrote a message: the customer, a human agent, the console or another system (notes such as
    "identity verified"), or a bot that answered before an agent took over."""

    CUSTOMER = "customer"
    AGENT = "agent"
    SYSTEM = "system"
    BOT = "bot"


class Channel(StrEnum):
    """The messaging channel a thread is on; it sets a reply's format (Markdown or plain text), its length per
    message, SMS segments and the brand's emoji policy."""

    SMS = "sms"
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    APPLE_MESSAGES = "apple_messages"
    WEBCHAT = "webchat"
    X_DM = "x_dm"
    APP = "app"
    EMAIL = "email"


class Customer(BaseModel):
    """The customer record the console has. Extra fields are kept: a string or number field fills the macro
    placeholder of the same name (e.g. ``plan_name`` fills ``{plan_name}``)."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(None, description="The customer's name as the brand knows it.")
    id: str | None = Field(None, description="The brand's customer identifier.")
    locale: str | None = Field(None, description="BCP 47 language tag, e.g. en or en-GB.")
    tier: str | None = Field(None, description="Loyalty or service tier, e.g. gold.")


class Message(BaseModel):
    """One message of a thread, as the console shows it."""

    id: str | None = Field(None, description="The console's message id; makes appends idempotent.")
    role: Role = Field(..., description="customer, agent, system or bot. Suggestions answer the latest customer "
                                        "turn; an agent or system message saying the identity is verified "
                                        "allows replies that need verification.")
    text: str = Field(..., max_length=20_000, description="The message text, plain or Markdown; at most 20,000 "
                                                          "characters.")
    ts: datetime | None = Field(None, description="When the message was sent (ISO 8601).")


class Thread(BaseModel):
    """A conversation between a customer and the brand on one channel."""

    id: str | None = Field(None, description="The console's thread id; returned as thread_id with the results.")
    channel: Channel = Field(Channel.WEBCHAT, description="The channel the thread is on: sms, whatsapp, messenger, "
                                                          "apple_messages, webchat, x_dm, app or email; default "
                                                          "webchat.")
    tenant: str | None = Field(None, description="The brand; taken from the API key when omitted.")
    customer: Customer = Field(default_factory=Customer, description="The customer record; empty when omitted.")
    messages: list[Message] = Field(default_factory=list, description="The messages so far, oldest first. "
                                                                      "Consecutive messages of one role are read as "
                                                                      "one turn unless their ts are more than two "
                                                                      "minutes apart.")


class Turn(BaseModel):
    """Consecutive messages of one role, joined: several quick customer messages are one turn."""

    role: Role
    text: str
    ts: datetime | None = None


def turns(thread: Thread, gap: timedelta = BURST_GAP) -> list[Turn]:
    """Group the thread's messages into turns.

    Messages of the same role join one turn unless both carry timestamps further apart than ``gap``.
    """
    result: list[Turn] = []
    last_ts: datetime | None = None
    for message in thread.messages:
        text = message.text.strip()
        if not text:
            continue
        previous = result[-1] if result else None
        joined = (
            previous is not None
            and previous.role == message.role
            and not (message.ts and last_ts and message.ts - last_ts > gap)
        )
        if previous is not None and joined:
            previous.text = f"{previous.text}\n{text}"
        else:
            result.append(Turn(role=message.role, text=text, ts=message.ts))
        last_ts = message.ts or last_ts
    return result


def waiting_since(thread: Thread) -> datetime | None:
    """When the customer started waiting for an agent: the time of their first message after the agent's
    last one; None when the agent wrote last or the waiting messages carry no time. Bot and system
    messages do not answer the customer, and empty messages say nothing."""
    waiting: list[Message] = []
    for message in thread.messages:
        if not message.text.strip():
            continue
        if message.role == Role.CUSTOMER:
            waiting.append(message)
        elif message.role == Role.AGENT:
            waiting = []
    return next((m.ts for m in waiting if m.ts is not None), None)


def retrieval_query(thread: Thread, context_tokens: int = 400) -> RetrievalQuery:
    """Turn a conversation into a retrieval query.

    The latest customer turn is the query; the turns before it, newest first and within a token budget,
    are the context that retrieval weighs less (agent turns after the latest customer turn are context
    too); the opening exchange (the first customer turn and the reply to it) is the topic.
    """
    all_turns = [t for t in turns(thread) if t.role in (Role.CUSTOMER, Role.AGENT)]
    latest_index = next(
        (i for i in range(len(all_turns) - 1, -1, -1) if all_turns[i].role == Role.CUSTOMER), None
    )
    if latest_index is None:
        return RetrievalQuery(text=all_turns[-1].text if all_turns else "")
    latest = all_turns[latest_index].text
    context: list[str] = []
    budget = context_tokens
    for turn in reversed(all_turns[:latest_index] + all_turns[latest_index + 1 :]):
        cost = count_tokens(turn.text)
        if cost > budget:
            break
        context.append(turn.text)
        budget -= cost
    # the opening exchange: the customer's first turn and the reply to it, when the thread has moved on
    first = next((i for i, t in enumerate(all_turns[:latest_index]) if t.role == Role.CUSTOMER), None)
    topic = "" if first is None else " ".join(t.text for t in all_turns[first : min(first + 2, latest_index)])
    return RetrievalQuery(text=latest, context=tuple(context), topic=topic)


def fit_to_budget(thread: Thread, budget: int, *, opening_share: float = 0.2) -> Thread:
    """The thread cut to ``budget`` tokens: the opening, the latest messages, and the facts of the middle.

    Messages are kept whole. The opening gets up to ``opening_share`` of the budget; the latest messages get
    what remains after a system note that lists the facts (order ids, amounts, dates, emails, phone numbers)
    of the messages that were left out, so nothing a reply depends on is lost.
    """
    costs = [count_tokens(m.text) + 4 for m in thread.messages]  # a few tokens of role and framing each
    if sum(costs) <= budget or len(thread.messages) < 3:
        return thread
    head: list[int] = []
    spent = 0
    for i, cost in enumerate(costs):
        if spent + cost > budget * opening_share or i == len(costs) - 1:
            break
        head.append(i)
        spent += cost
    if not head:
        head = [0]
        spent = costs[0]
    region = region_of(thread.customer.locale)
    facts_of = [[f"{f.kind}: {f.text}" for f in extract_facts(m.text, region)] for m in thread.messages]

    def note(left_out: list[int]) -> Message:
        unique = list(dict.fromkeys(fact for i in left_out for fact in facts_of[i]))
        text = f"[{len(left_out)} earlier messages left out" + (f"; facts in them: {'; '.join(unique)}]" if unique
                                                                 else "]")
        return Message(role=Role.SYSTEM, text=text)

    tail: list[int] = []
    for i in range(len(costs) - 1, head[-1], -1):
        left_out = list(range(head[-1] + 1, i))
        if spent + sum(costs[j] for j in tail) + costs[i] + count_tokens(note(left_out).text) + 4 > budget:
            break
        tail.insert(0, i)
    if not tail:  # even the latest message alone does not fit beside the opening: keep the latest
        tail = [len(costs) - 1]
    left_out = list(range(head[-1] + 1, tail[0]))
    messages = [thread.messages[i] for i in head]
    if left_out:
        messages.append(note(left_out))
    messages += [thread.messages[i] for i in tail]
    return thread.model_copy(update={"messages": messages})
