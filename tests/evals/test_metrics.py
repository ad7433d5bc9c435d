"""Per-case metric helpers, their aggregates with bootstrap intervals, and paired comparisons of two runs."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from rouge_score import rouge_scorer
from sklearn.metrics import f1_score

from evals.metrics import (
    aggregate,
    best_rouge,
    contains,
    groundedness,
    holds_passage,
    paired_difference,
    rouge,
    support,
)

PASSAGE = ("If you pay manually less than 2 working days before the due date, Autopay may still collect the same "
           "bill. Refunds for duplicate charges arrive within five working days of the approval.")
SUPPORTED = "Refunds for duplicate charges arrive within five working days."
UNRELATED = "Our flagship stores open at nine on Sundays in central London."
GREETING = "Hi Maya, thanks for reaching out."
SIGN_OFF = "Kind regards, the Brightwave team"


def record(case_id: str, scores: dict[str, float | None] | None = None, *, latency: dict[str, float] | None = None,
           intent: tuple[str, str | None] | None = None) -> dict[str, Any]:
    """A case record with the fields the aggregates read (see evals.runner.run_case)."""
    return {"id": case_id, "scores": scores or {}, "latency_ms": latency or {},
            "intent": {"expected": intent[0], "predicted": intent[1]} if intent else None, "error": None}


# --- text ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "fact"), [
    ("Your REFUND is on its way", "refund"),
    ("The fee is  £18\nper month", "£18 per month"),
    ("We refunded £1,000 today", "£1000"),
    ("We refunded £1000 today", "£1,000"),
    ("Call 0800 123 456", "0800123456"),
    ("A hold usually drops off within 7 days.", "7 DAYS"),
])
def test_contains_is_case_space_and_digit_grouping_insensitive(text: str, fact: str) -> None:
    assert contains(text, fact)


@pytest.mark.parametrize(("text", "fact"), [
    ("We refunded £18 today", "£81"),
    ("A hold usually drops off within 7 days.", "7 weeks"),
    ("Refund requested", "refund approved"),
    ("", "refund"),
])
def test_contains_misses_what_is_not_there(text: str, fact: str) -> None:
    assert not contains(text, fact)


def test_a_sentence_copied_from_a_passage_is_supported() -> None:
    assert support(SUPPORTED, [PASSAGE]) == 1.0
    assert support(SUPPORTED, ["Something else entirely about roaming.", PASSAGE]) == 1.0


def test_an_unrelated_sentence_is_not_supported() -> None:
    assert support(UNRELATED, [PASSAGE]) < 0.3
    assert support(SUPPORTED, []) == 0.0


def test_groundedness_of_copied_and_unrelated_claims() -> None:
    assert groundedness(SUPPORTED, [PASSAGE]) == 1.0
    assert groundedness(UNRELATED, [PASSAGE]) == 0.0
    assert groundedness(f"{SUPPORTED} {UNRELATED}", [PASSAGE]) == 0.5
    assert groundedness(f"{SUPPORTED}\n{UNRELATED}", ["Roaming is free.", PASSAGE]) == 0.5


def test_greeting_and_sign_off_passed_as_boilerplate_are_left_out() -> None:
    reply = f"{GREETING} {SUPPORTED} {SIGN_OFF}"
    without = groundedness(reply, [PASSAGE])
    assert without is not None and without < 1.0  # the greeting and sign-off count as unsupported claims
    assert groundedness(reply, [PASSAGE], [GREETING, SIGN_OFF]) == 1.0
    assert groundedness(f"{GREETING} {UNRELATED} {SIGN_OFF}", [PASSAGE], [GREETING, SIGN_OFF]) == 0.0


def test_groundedness_is_none_when_nothing_is_claimed() -> None:
    assert groundedness("Thanks, Maya.", [PASSAGE]) is None
    assert groundedness(f"{GREETING} {SIGN_OFF}", [PASSAGE], [GREETING, SIGN_OFF]) is None
    assert groundedness("", [PASSAGE]) is None


def test_holds_passage() -> None:
    wanted = "less than 2 working days before the due date, Autopay may still collect the same bill"
    assert holds_passage(PASSAGE, wanted)  # the cited passage holds the supporting text
    assert holds_passage("Autopay may still collect the same bill.", wanted)  # a cited sentence out of it
    assert not holds_passage("Roaming in the EU costs £2 a day on every plan.", wanted)
    assert not holds_passage("", wanted)
    assert not holds_passage(PASSAGE, "")


def test_best_rouge_picks_the_best_reference() -> None:
    candidate = "The customer was charged twice for the November bill and a refund was requested."
    references = [
        "Customer asked about roaming charges in Spain.",
        "Customer was charged twice for the November bill; agent requested a refund.",
        "The customer wants to upgrade their phone.",
    ]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    independent = [scorer.score(r, candidate) for r in references]
    best = max(range(len(references)), key=lambda i: independent[i]["rougeL"].fmeasure)
    assert best == 1

    for order in (references, references[::-1], [references[1]]):
        result = best_rouge(order, candidate)
        for kind in ("rouge1", "rouge2", "rougeL"):
            assert result[kind] == pytest.approx(independent[best][kind].fmeasure)


def test_rouge_is_f1_and_one_for_identical_text() -> None:
    assert rouge("Refunds take five days.", "Refunds take five days.")["rougeL"] == pytest.approx(1.0)
    assert rouge("Refunds take five days.", "Roaming is free in Spain.")["rougeL"] == 0.0
    # longest common subsequence 3 words: precision 3/3, recall 3/5, F1 0.75
    assert rouge("Refunds take five working days", "Refunds take days")["rougeL"] == pytest.approx(0.75)


# --- aggregate -------------------------------------------------------------------------------------

def test_aggregate_is_the_mean_over_cases_that_have_the_metric() -> None:
    cases = [record("a", {"citation_hit": 1.0, "must_contain": 0.0}),
             record("b", {"citation_hit": 0.0, "must_contain": None}),
             record("c", {"citation_hit": 1.0}),
             record("d", {"citation_hit": None, "reply_rougeL": 0.25}),
             record("e", {"citation_hit": 1.0, "reply_rougeL": 0.75})]
    metrics = aggregate(cases)

    assert metrics["citation_hit"]["value"] == pytest.approx(3 / 4)
    assert metrics["citation_hit"]["n"] == 4
    assert metrics["must_contain"]["value"] == 0.0 and metrics["must_contain"]["n"] == 1
    assert metrics["reply_rougeL"]["value"] == pytest.approx(0.5) and metrics["reply_rougeL"]["n"] == 2
    assert "groundedness" not in metrics and "intent_macro_f1" not in metrics
    assert metrics["citation_hit"]["higher_is_better"] is True


def test_aggregate_skips_a_metric_no_case_has() -> None:
    metrics = aggregate([record("a", {"citation_hit": None}), record("b", {"citation_hit": None})])
    assert "citation_hit" not in metrics
    assert aggregate([]) == {}


def test_the_interval_holds_the_value_and_narrows_with_more_cases() -> None:
    rng = random.Random(7)
    few = [record(f"c{i}", {"citation_hit": float(i % 3 != 0), "reply_rougeL": rng.random()}) for i in range(12)]
    many = [record(f"c{i}", {"citation_hit": float(i % 3 != 0), "reply_rougeL": rng.random()})
            for i in range(300)]
    small, large = aggregate(few), aggregate(many)

    for metrics in (small, large):
        for name in ("citation_hit", "reply_rougeL"):
            low, high = metrics[name]["ci"]
            assert low <= metrics[name]["value"] <= high
            assert 0.0 <= low < high <= 1.0
    for name in ("citation_hit", "reply_rougeL"):
        width_small = small[name]["ci"][1] - small[name]["ci"][0]
        width_large = large[name]["ci"][1] - large[name]["ci"][0]
        assert width_large < width_small / 2  # 25 times the cases: about a fifth of the width


def test_the_interval_of_a_constant_metric_is_a_point() -> None:
    metrics = aggregate([record(f"c{i}", {"must_contain": 1.0}) for i in range(10)])
    assert metrics["must_contain"]["value"] == 1.0 and metrics["must_contain"]["ci"] == [1.0, 1.0]


def test_aggregate_is_deterministic_for_a_seed() -> None:
    rng = random.Random(3)
    cases = [record(f"c{i}", {"reply_rougeL": rng.random()}) for i in range(30)]
    assert aggregate(cases) == aggregate(cases)
    assert aggregate(cases, seed=5) == aggregate(cases, seed=5)
    assert aggregate(cases, seed=5)["reply_rougeL"]["ci"] != aggregate(cases, seed=6)["reply_rougeL"]["ci"]
    assert aggregate(cases, seed=5)["reply_rougeL"]["value"] == aggregate(cases, seed=6)["reply_rougeL"]["value"]


def test_intent_macro_f1_by_hand() -> None:
    pairs = [("billing", "billing"), ("billing", "roaming"), ("roaming", "roaming"), ("roaming", "roaming"),
             ("cancel", None)]
    metrics = aggregate([record(f"c{i}", intent=p) for i, p in enumerate(pairs)], samples=50)
    # billing: P 1, R 1/2 -> 2/3; roaming: P 2/3, R 1 -> 4/5; cancel: 0. Macro over the expected labels.
    assert metrics["intent_macro_f1"]["value"] == pytest.approx((2 / 3 + 4 / 5 + 0) / 3)
    assert metrics["intent_macro_f1"]["n"] == 5
    assert metrics["intent_macro_f1"]["higher_is_better"] is True


def test_intent_macro_f1_equals_sklearn() -> None:
    rng = random.Random(11)
    labels = ["billing_dispute", "roaming", "cancel", "upgrade", "sim_swap"]
    expected = [rng.choice(labels) for _ in range(60)]
    predicted = [e if rng.random() < 0.7 else rng.choice([*labels, None]) for e in expected]
    cases = [record(f"c{i}", intent=(e, p)) for i, (e, p) in enumerate(zip(expected, predicted, strict=True))]
    cases.append(record("no-intent", {"citation_hit": 1.0}))  # a case that expects no intent is left out

    metrics = aggregate(cases, samples=50)
    reference = f1_score(expected, [p or "(none)" for p in predicted], labels=sorted(set(expected)),
                         average="macro", zero_division=0)
    assert metrics["intent_macro_f1"]["value"] == pytest.approx(reference)
    assert metrics["intent_macro_f1"]["n"] == 60


def test_latency_percentiles_equal_numpy() -> None:
    rng = random.Random(5)
    suggest = [rng.uniform(20, 900) for _ in range(41)]
    summary = [rng.uniform(50, 400) for _ in range(17)]
    cases = [record(f"c{i}", {"citation_hit": 1.0}, latency={"suggest": ms}) for i, ms in enumerate(suggest)]
    for i, ms in enumerate(summary):
        cases[i]["latency_ms"]["summary"] = ms
    cases.append(record("no-timing", {"citation_hit": 0.0}))
    metrics = aggregate(cases)

    assert metrics["suggest_p95_ms"]["value"] == pytest.approx(np.percentile(suggest, 95))
    assert metrics["suggest_p50_ms"]["value"] == pytest.approx(np.median(suggest))
    assert metrics["summary_p95_ms"]["value"] == pytest.approx(np.percentile(summary, 95))
    assert metrics["suggest_p95_ms"]["n"] == 41 and metrics["summary_p95_ms"]["n"] == 17
    assert "next_actions_p95_ms" not in metrics
    assert metrics["suggest_p95_ms"]["higher_is_better"] is False and metrics["suggest_p95_ms"]["unit"] == "ms"
    low, high = metrics["suggest_p95_ms"]["ci"]
    assert low <= metrics["suggest_p95_ms"]["value"] <= high


# --- paired_difference -----------------------------------------------------------------------------

def test_identical_runs_differ_by_nothing() -> None:
    cases = [record(f"c{i}", {"citation_hit": float(i % 2)}) for i in range(40)]
    diff = paired_difference("citation_hit", cases, [dict(c) for c in cases])

    assert diff is not None
    assert diff["delta"] == 0.0 and diff["a"] == diff["b"] == 0.5
    assert diff["significant"] is False
    assert diff["n"] == 40


def test_a_clear_regression_is_significant_and_negative() -> None:
    before = [record(f"c{i}", {"citation_hit": 1.0}) for i in range(40)]
    after = [record(f"c{i}", {"citation_hit": 0.0 if i < 30 else 1.0}) for i in range(40)]
    diff = paired_difference("citation_hit", before, after)

    assert diff is not None
    assert diff["delta"] == pytest.approx(-0.75)
    assert diff["significant"] is True
    assert diff["ci"][0] <= -0.75 <= diff["ci"][1] < 0
    # and the other way round, an improvement
    back = paired_difference("citation_hit", after, before)
    assert back is not None and back["delta"] == pytest.approx(0.75) and back["significant"] and back["ci"][0] > 0


def test_a_one_case_change_is_not_significant() -> None:
    before = [record(f"c{i}", {"citation_hit": float(i % 2)}) for i in range(40)]
    after = [dict(c, scores={"citation_hit": 1.0}) if c["id"] == "c0" else c for c in before]
    diff = paired_difference("citation_hit", before, after)
    assert diff is not None and diff["delta"] == pytest.approx(1 / 40) and diff["significant"] is False


def test_cases_are_matched_by_id_not_position() -> None:
    rng = random.Random(2)
    before = [record(f"c{i}", {"reply_rougeL": rng.random()}) for i in range(40)]
    shuffled = before[:]
    rng.shuffle(shuffled)
    diff = paired_difference("reply_rougeL", before, shuffled)

    assert diff is not None
    assert diff["delta"] == pytest.approx(0.0)
    assert diff["ci"] == [pytest.approx(0.0), pytest.approx(0.0)]  # paired: every resample differs by nothing
    assert diff["significant"] is False


def test_only_shared_cases_are_compared() -> None:
    before = [record(f"c{i}", {"citation_hit": 1.0}) for i in range(20)] + [record("gone", {"citation_hit": 0.0})]
    after = [record(f"c{i}", {"citation_hit": 1.0}) for i in range(20)] + [record("new", {"citation_hit": 0.0})]
    diff = paired_difference("citation_hit", before, after)
    assert diff is not None and diff["n"] == 20 and diff["delta"] == 0.0 and diff["a"] == 1.0

    assert paired_difference("citation_hit", [record("x", {"citation_hit": 1.0})],
                             [record("y", {"citation_hit": 1.0})]) is None
    assert paired_difference("citation_hit", before, [record(f"c{i}", {}) for i in range(20)]) is None
