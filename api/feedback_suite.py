"""Feedback as an eval source: accepted and edited suggestions become a regression suite.

Each case is the thread the suggestion answered, as the engine saw it; the reply the agent sent (the
edited final text, or the accepted suggestion) is the reference; the amounts, order ids and dates in it
are facts the next release's reply must still hold; an accepted reply's citations are the documents
that answer it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from api.store import Store
from copilot.conversation import Thread
from copilot.errors import InvalidInput
from copilot.facts import extract_facts
from evals.suite import Case, Expect, Suite, SuiteMeta

# facts worth pinning: what an agent must not get wrong (not emails or phones: those are the customer's own)
_PINNED = {"order_id", "amount", "date"}


def _case(row: dict[str, Any]) -> Case | None:
    if not row.get("thread"):
        return None
    try:
        thread = Thread.model_validate(row["thread"])
    except ValidationError:
        return None
    sent = row["final_text"] if row["event"] == "edited" and row.get("final_text") else row["text"]
    facts = []
    for fact in extract_facts(sent):
        if fact.kind in _PINNED and fact.text not in facts:
            facts.append(fact.text)
    documents = sorted({c["document_id"] for c in row.get("citations") or []}) if row["event"] == "accepted" else []
    # the intent stored with the set is what the classifier said then, not a label: not an expectation
    expect = Expect(reference=sent, must_contain=facts[:5], documents=documents)
    return Case(id=f"fb-{row['suggestion_id']}", thread=thread, tags=["feedback", row["event"]],
                note=f"{row['event']} {row['at']:%Y-%m-%d}" + (f" on thread {row['thread_id']}"
                                                                 if row.get("thread_id") else ""),
                expect=expect)


def feedback_suite(store: Store, tenant: str, *, days: int = 90, now: datetime | None = None) -> Suite:
    """The tenant's accepted and edited suggestions of the last ``days`` days as a suite."""
    store_now = now or datetime.now(UTC)
    rows = store.accepted_suggestions(tenant, store_now - timedelta(days=days))
    cases = [c for c in (_case(r) for r in rows) if c is not None]
    if not cases:
        raise InvalidInput(f"no accepted or edited suggestions with their thread for tenant {tenant!r} in the last "
                           f"{days} days: nothing to turn into a suite")
    meta = SuiteMeta(name=f"{tenant}-feedback-{store_now:%Y%m%d}", tenant=tenant, engine="grounded",
                     description=f"Replies agents accepted or edited in the {days} days to {store_now:%Y-%m-%d}; "
                                 "the sent text is the reference.")
    return Suite(meta=meta, cases=cases)
