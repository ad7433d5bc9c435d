"""Hybrid retrieval over a small real corpus, and the retrieval query built from a thread."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from copilot.conversation import Message, Role, Thread, retrieval_query
from copilot.errors import InvalidInput, UnknownTenant
from copilot.ports import RetrievalQuery
from copilot.settings import Settings
from copilot.tokens import count_tokens
from knowledge.base import KnowledgeBase
from knowledge.documents import embed_text
from knowledge.embeddings import LocalEmbedder
from knowledge.retrieval import HybridRetriever, RetrievalParams, _newest, _order

ARTICLES = {
    "articles/account/reset-password.md": (
        "Reset your password",
        "Choose 'Forgot password' on the sign-in page and enter your email address. We send a link "
        "that lets you pick a new password; the link works for 30 minutes.",
    ),
    "articles/plans/roaming.md": (
        "Using your phone abroad",
        "Roaming in Europe costs a flat daily charge of five pounds, which covers calls, texts and "
        "data from your plan. Outside Europe, buy a travel bundle before you leave.",
    ),
    "articles/billing/duplicate-payments.md": (
        "Duplicate payments",
        "If a payment was taken twice from your bank, we refund the extra payment to the same card. "
        "The refund reaches your account within five working days.",
    ),
    "articles/orders/delivery.md": (
        "Delivery times",
        "Orders placed before 2pm are dispatched the same day and arrive the next working day. "
        "You get a tracking link by text once the courier collects the parcel.",
    ),
    "articles/account/lost-phone.md": (
        "Lost or stolen phone",
        "If your phone is lost or stolen, call us to block the SIM straight away. We also bar the "
        "handset's IMEI so nobody else can use it on any network.",
    ),
    "articles/outages/no-signal.md": (
        "No signal",
        "When your phone has no signal, turn airplane mode on and off, then restart the phone. "
        "If it still shows no service, check the service status page for outages near you.",
    ),
    "articles/orders/trade-in.md": (
        "Trade in your old phone",
        "Send us your old device and we pay you its trade-in value as account credit once our "
        "engineers have checked its condition.",
    ),
}

SPANISH = """---
title: Reembolsos
locale: es
tags: [billing]
---
Si te cobramos dos veces, devolvemos el importe a tu tarjeta en cinco días hábiles.
"""

FAQ = """question,answer,tags
How do I top up my balance?,"Top up in the app, by text or at any shop counter.",payments
Can I keep my number when I switch?,"Yes, ask your old provider for a PAC code and give it to us.",switching
"""

MACROS = """kind: macros
macros:
  - id: refund-ack
    title: Refund acknowledgement
    text: "Thanks {customer_name}, I have started the refund for the extra payment."
  - id: signal-help
    title: Signal help
    text: "Sorry about the signal, {customer_name}. Could you try restarting your phone?"
"""

DUPLICATE = ("Pay your bill by direct debit and we collect the amount on the due date each month, "
             "so you never miss a payment or pay a late fee.")
NEAR_DUPLICATE = DUPLICATE.replace("each month", "every month")


def _article(folder: Path, document_id: str, title: str, text: str) -> None:
    path = folder / document_id
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\n{text}\n", encoding="utf-8")


@pytest.fixture(scope="module")
def corpus_kb(tmp_path_factory: pytest.TempPathFactory, embedder: LocalEmbedder) -> Iterator[KnowledgeBase]:
    root = tmp_path_factory.mktemp("retrieval")
    settings = Settings(data_dir=root / "data", _env_file=None)
    knowledge = KnowledgeBase(settings, embedder=embedder)

    acme = root / "acme"
    for document_id, (title, text) in ARTICLES.items():
        _article(acme, document_id, title, text)
    (acme / "articles/billing/reembolsos.md").write_text(SPANISH, encoding="utf-8")
    (acme / "faq.csv").write_text(FAQ, encoding="utf-8")
    (acme / "macros.yaml").write_text(MACROS, encoding="utf-8")

    beta = root / "beta"
    _article(beta, "articles/billing/duplicate-payments.md", "Duplicate payments",
             "Beta pays back double charges as shopping vouchers, never to the card.")

    dupes = root / "dupes"
    _article(dupes, "direct-debit.md", "Direct debit", DUPLICATE)
    _article(dupes, "direct-debit-copy.md", "Paying by direct debit", NEAR_DUPLICATE)
    _article(dupes, "roaming.md", *ARTICLES["articles/plans/roaming.md"])

    for tenant, folder in (("acme", acme), ("beta", beta), ("dupes", dupes)):
        knowledge.create_tenant(tenant)
        report = knowledge.ingest(tenant, [folder])
        assert report.failed == []
    yield knowledge


@pytest.mark.parametrize(("question", "expected"), [
    ("I forgot the password for my online account", "articles/account/reset-password.md"),
    # bm25s' 33-word stop list kept "can" and "my": one weak lexical match outvoted the dense winner
    ("I can't remember my login credentials", "articles/account/reset-password.md"),
    ("how much will it cost me to use my mobile in Spain", "articles/plans/roaming.md"),
    ("you took money from me two times", "articles/billing/duplicate-payments.md"),
    ("when will my package get here", "articles/orders/delivery.md"),
    ("someone nicked my handset on the bus", "articles/account/lost-phone.md"),
    ("my phone shows zero bars", "articles/outages/no-signal.md"),
    ("can I get money for my previous device", "articles/orders/trade-in.md"),
])
def test_search_paraphrased_question_finds_right_article_first(corpus_kb: KnowledgeBase, question: str,
                                                               expected: str) -> None:
    results = corpus_kb.search("acme", question, k=5, kinds=["article"])

    assert results[0].document_id == expected
    assert [p.score for p in results] == sorted((p.score for p in results), reverse=True)


def test_search_passage_carries_its_provenance(corpus_kb: KnowledgeBase) -> None:
    top = corpus_kb.search("acme", "block my SIM after a theft", k=1)[0]

    assert top.title == "Lost or stolen phone"
    assert top.kind == "article"
    assert top.source.endswith("articles/account/lost-phone.md")
    assert top.chunk_id.startswith("articles/account/lost-phone.md#")
    assert "IMEI" in top.text


def test_search_kinds_filter_limits_results(corpus_kb: KnowledgeBase) -> None:
    faq = corpus_kb.search("acme", "keep my phone number when switching provider", k=10, kinds=["faq"])
    default = corpus_kb.search("acme", "refund the extra payment", k=20)
    default_faq = corpus_kb.search("acme", "keep my phone number when switching provider", k=10)
    macros = corpus_kb.search("acme", "refund the extra payment", k=10, kinds=["macro"])

    assert faq and {p.kind for p in faq} == {"faq"}
    assert faq[0].section == "Can I keep my number when I switch?"
    assert "macro" not in {p.kind for p in default}
    assert {p.kind for p in default} <= {"article", "faq"}
    assert "faq" in {p.kind for p in default_faq}
    assert macros[0].metadata["macro_id"] == "refund-ack"
    assert {p.kind for p in macros} == {"macro"}


def test_search_tags_filter_keeps_only_tagged_passages(corpus_kb: KnowledgeBase) -> None:
    unfiltered = corpus_kb.search("acme", "phone", k=20)
    results = corpus_kb.search("acme", "phone", k=20, tags=["orders"])

    assert len({p.document_id for p in unfiltered}) > 2
    assert results
    assert {p.document_id for p in results} <= {"articles/orders/delivery.md", "articles/orders/trade-in.md"}
    assert all("orders" in p.metadata["tags"] for p in results)


def test_search_locale_filter_matches_language(corpus_kb: KnowledgeBase) -> None:
    spanish = corpus_kb.search("acme", "cobro doble en mi tarjeta", k=10, locale="es")
    english = corpus_kb.search("acme", "cobro doble en mi tarjeta", k=20, locale="en-GB")

    assert [p.document_id for p in spanish] == ["articles/billing/reembolsos.md"]
    assert english
    assert "articles/billing/reembolsos.md" not in {p.document_id for p in english}


def test_search_near_duplicate_passages_returned_once(corpus_kb: KnowledgeBase) -> None:
    question = "can I pay my bill automatically by direct debit"
    without_dedupe = HybridRetriever(corpus_kb.registry, corpus_kb.vectors, corpus_kb.embedder,
                                     RetrievalParams(duplicate_jaccard=1.01))
    assert {"direct-debit.md", "direct-debit-copy.md"} <= {
        p.document_id for p in without_dedupe.search("dupes", question, k=5)}

    results = corpus_kb.search("dupes", question, k=5)

    assert len({"direct-debit.md", "direct-debit-copy.md"} & {p.document_id for p in results}) == 1


def test_search_tenants_never_see_each_other(corpus_kb: KnowledgeBase) -> None:
    beta_ids = {r.chunk_id for r in corpus_kb.registry.chunks("beta")}
    acme_texts = {r.text for r in corpus_kb.registry.chunks("acme")}

    beta = corpus_kb.search("beta", "money taken twice from my bank, refund to card", k=10)
    acme = corpus_kb.search("acme", "refund as shopping vouchers", k=20)

    assert beta and {p.chunk_id for p in beta} <= beta_ids
    assert not {p.text for p in beta} & acme_texts
    assert all("vouchers" not in p.text for p in acme)


def test_search_unknown_tenant_raises(corpus_kb: KnowledgeBase) -> None:
    with pytest.raises(UnknownTenant):
        corpus_kb.search("nobody", "refund")


@pytest.mark.parametrize("query", ["", "   \n\t"])
def test_search_empty_query_raises_invalid_input(corpus_kb: KnowledgeBase, query: str) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        corpus_kb.search("acme", query)


@pytest.mark.parametrize("k", [0, -1, 101])
def test_search_k_out_of_range_raises_invalid_input(corpus_kb: KnowledgeBase, k: int) -> None:
    with pytest.raises(InvalidInput, match="k must be"):
        corpus_kb.search("acme", "refund", k=k)


def test_search_unknown_kind_raises_invalid_input(corpus_kb: KnowledgeBase) -> None:
    with pytest.raises(InvalidInput, match="unknown kind"):
        corpus_kb.search("acme", "refund", kinds=["recipe"])


def test_search_thread_query_uses_latest_customer_turn(corpus_kb: KnowledgeBase) -> None:
    query = RetrievalQuery(text="and how long will it take?",
                           context=("I see two payments on my bank statement for the same bill",))

    results = corpus_kb.search("acme", query, k=3, kinds=["article"])

    assert results[0].document_id == "articles/billing/duplicate-payments.md"


# --- the retrieval query from a thread ----------------------------------------------------------

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def _message(role: Role, text: str, minutes: float | None = None) -> Message:
    return Message(role=role, text=text, ts=None if minutes is None else START + timedelta(minutes=minutes))


def test_retrieval_query_joins_latest_customer_burst_and_orders_context_newest_first() -> None:
    thread = Thread(messages=[
        _message(Role.CUSTOMER, "hi, my bill looks wrong", 0),
        _message(Role.AGENT, "Sorry to hear that. What do you see?", 1),
        _message(Role.CUSTOMER, "you charged me twice", 3),
        _message(Role.CUSTOMER, "on the 3rd of March", 3.5),
        _message(Role.CUSTOMER, "can I get it back?", 4),
    ])

    query = retrieval_query(thread)

    assert query.text == "you charged me twice\non the 3rd of March\ncan I get it back?"
    assert list(query.context) == ["Sorry to hear that. What do you see?", "hi, my bill looks wrong"]


def test_retrieval_query_splits_customer_messages_far_apart() -> None:
    thread = Thread(messages=[
        _message(Role.CUSTOMER, "my parcel has not arrived", 0),
        _message(Role.CUSTOMER, "also, how do I turn roaming off?", 240),
    ])

    query = retrieval_query(thread)

    assert query.text == "also, how do I turn roaming off?"
    assert list(query.context) == ["my parcel has not arrived"]


def test_retrieval_query_keeps_later_agent_turn_as_context_and_skips_system() -> None:
    thread = Thread(messages=[
        _message(Role.SYSTEM, "Thread transferred to billing"),
        _message(Role.CUSTOMER, "I need a refund"),
        _message(Role.AGENT, "Which payment is it about?"),
    ])

    query = retrieval_query(thread)

    assert query.text == "I need a refund"
    assert list(query.context) == ["Which payment is it about?"]


def test_retrieval_query_context_stops_at_token_budget() -> None:
    thread = Thread(messages=[
        _message(Role.CUSTOMER, "old question " * 50),
        _message(Role.AGENT, "a short answer"),
        _message(Role.CUSTOMER, "new question"),
    ])

    query = retrieval_query(thread, context_tokens=20)

    assert query.text == "new question"
    assert list(query.context) == ["a short answer"]


def test_dense_context_keeps_the_newest_turns_within_its_token_budget() -> None:
    turns = ["newest turn here", "the one before it", "the oldest turn of all " * 20]

    assert _newest(turns, 0) == " ".join(turns)
    assert _newest(turns, 8) == "newest turn here the one before it"  # 3 + 4 tokens; the oldest would not fit
    cut = _newest(["a very long newest turn " * 50, "older"], 6)
    assert count_tokens(cut) <= 6 and cut.startswith("a very long newest")
    assert _newest([], 128) == ""
    assert _newest(["café " * 40], 5).endswith(("caf", "café", "café "))  # no half character at the cut
    assert "\ufffd" not in _newest(["😀" * 40], 3)


def test_lexical_order_keeps_the_full_sorts_order_ties_included() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        scores = rng.integers(0, 6, int(rng.integers(1, 3000))).astype(np.float32)  # many ties at every value
        n = int(rng.integers(1, 120))
        positive = np.flatnonzero(scores > 0)
        expected = [int(i) for i in positive[np.argsort(-scores[positive], kind="stable")][:n]]
        assert _order(scores, n) == expected
    assert _order(np.ones(10, dtype=np.float32), 0) == []


def test_several_vectors_are_answered_in_one_query_each_with_its_own_nearest(corpus_kb: KnowledgeBase) -> None:
    rows = corpus_kb.retriever.index("acme").rows
    articles = [r for r in rows if r.kind == "article"][:2]
    vectors = corpus_kb.embedder.embed_documents([embed_text(r.title, r.section, r.text) for r in articles])

    both = corpus_kb.vectors.query_many("acme", "article", list(vectors), 3)

    assert [found[0][0] for found in both] == [r.chunk_id for r in articles]
    assert both[1] == corpus_kb.vectors.query("acme", "article", vectors[1], 3)
    assert corpus_kb.vectors.query_many("acme", "article", [], 3) == []
