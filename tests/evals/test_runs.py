"""Eval runs: gates, comparisons, finishing and the run files; and the runner's per-case scoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.conversation import Thread
from copilot.errors import InvalidInput, LLMTimeout, NotFound
from copilot.nextactions import NextAction, NextActions
from copilot.suggest import Citation, Suggestion, SuggestionSet
from copilot.summarize import KeyFact, SentimentTrend, Summary
from copilot.voice import BrandVoice
from evals.runner import channel_fits, run_suite, score_next_actions, score_reply, score_summary
from evals.runs import (
    FORMAT,
    check_threshold_names,
    compare,
    finish,
    gates,
    new_run,
    parse_fail_under,
    read_run,
    write_run,
)
from evals.suite import Case, parse_suite

PASSAGE = ("If you pay manually less than 2 working days before the due date, Autopay may still collect the same "
           "bill. The duplicate payment is refunded to your card within 5 working days.")
WANTED = "Autopay may still collect the same bill"


def measured(**values: float) -> dict[str, dict[str, Any]]:
    return {name: {"value": value} for name, value in values.items()}


def record(case_id: str, scores: dict[str, float | None], *, suggest_ms: float = 100.0,
           error: str | None = None) -> dict[str, Any]:
    """A case record as the runner writes it (see evals.runner.run_case)."""
    return {
        "id": case_id, "tags": ["billing"], "note": None, "channel": "webchat",
        "thread": {"customer": {"name": "Maya"},
                   "messages": [{"role": "customer", "text": "Why was I charged twice?",
                                 "ts": "2026-01-02T10:00:00Z"}]},
        "expect": {"documents": ["autopay"]},
        "outputs": {"answered": True, "engine": "grounded", "fallback_from": None,
                    "suggestions": [{"text": "Autopay may collect the bill again.", "source": "knowledge",
                                     "confidence": 0.8, "citations": [{"document_id": "autopay", "title": "Autopay",
                                                                       "section": "", "passage": PASSAGE}]}],
                    "search": ["autopay"]},
        "scores": scores, "intent": None, "latency_ms": {"suggest": suggest_ms}, "error": error,
    }


def run_of(cases: list[dict[str, Any]], thresholds: dict[str, float] | None = None,
           baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    run = new_run("suite", "mini", target="test", engine="grounded",
                  versions={"copilot": "0.1.0", "git_commit": "abc123"},
                  suite={"name": "mini", "tenant": "brightwave", "cases": len(cases)}, cases=cases)
    return finish(run, thresholds or {}, baseline)


# --- gates and thresholds --------------------------------------------------------------------------

def test_a_min_bound_holds_at_or_above() -> None:
    checked = gates(measured(citation_hit=0.8, must_contain=0.79), {"citation_hit": 0.8, "must_contain": 0.8})
    by_name = {g["metric"]: g for g in checked}
    assert by_name["citation_hit"]["passed"] is True and by_name["citation_hit"]["bound"] == "min"
    assert by_name["must_contain"]["passed"] is False and by_name["must_contain"]["actual"] == 0.79
    assert by_name["must_contain"]["threshold"] == 0.8


def test_a_latency_bound_is_a_max() -> None:
    checked = gates(measured(suggest_p95_ms=350.0, summary_p95_ms=450.0),
                    {"suggest_p95_ms": 400, "summary_p95_ms": 400})
    by_name = {g["metric"]: g for g in checked}
    assert by_name["suggest_p95_ms"]["passed"] is True and by_name["suggest_p95_ms"]["bound"] == "max"
    assert by_name["summary_p95_ms"]["passed"] is False
    # a benchmark's own *_ms metric is a max too
    assert gates(measured(index_build_ms=10.0), {"index_build_ms": 20})[0]["passed"] is True
    assert gates(measured(index_build_ms=30.0), {"index_build_ms": 20})[0]["passed"] is False


def test_a_threshold_on_a_metric_not_measured_fails() -> None:
    checked = gates(measured(citation_hit=1.0), {"groundedness": 0.5, "suggest_p95_ms": 400})
    assert [g["passed"] for g in checked] == [False, False]
    assert all(g["actual"] is None for g in checked)
    assert gates({}, {}) == []


def test_parse_fail_under_reads_metric_value_pairs() -> None:
    assert parse_fail_under(["citation_hit=0.8", " suggest_p95_ms = 400 "]) == {"citation_hit": 0.8,
                                                                                  "suggest_p95_ms": 400.0}
    assert parse_fail_under([]) == {}
    assert parse_fail_under(["citation_hit=0.5", "citation_hit=0.9"]) == {"citation_hit": 0.9}


@pytest.mark.parametrize("item", ["citation_hit", "citation_hit=", "=0.8", " =0.8", "citation_hit=high",
                                  "citation_hit:0.8", "citation_hit=0.8=0.9", ""])
def test_parse_fail_under_refuses_anything_else(item: str) -> None:
    with pytest.raises(InvalidInput, match="METRIC=VALUE"):
        parse_fail_under(["groundedness=0.5", item])


def test_check_threshold_names() -> None:
    check_threshold_names({"citation_hit": 0.8, "suggest_p95_ms": 400})
    check_threshold_names({})
    with pytest.raises(InvalidInput, match="citation_hits"):
        check_threshold_names({"citation_hit": 0.8, "citation_hits": 0.8})


# --- finish and compare ----------------------------------------------------------------------------

def test_finish_passes_when_everything_holds() -> None:
    run = run_of([record(f"c{i}", {"citation_hit": 1.0}) for i in range(10)], {"citation_hit": 0.9,
                                                                                 "suggest_p95_ms": 200})
    assert run["passed"] is True
    assert run["errors"] == 0
    assert run["metrics"]["citation_hit"]["value"] == 1.0 and run["metrics"]["citation_hit"]["n"] == 10
    assert [g["passed"] for g in run["thresholds"]] == [True, True]


def test_finish_fails_on_a_threshold() -> None:
    run = run_of([record(f"c{i}", {"citation_hit": float(i < 5)}) for i in range(10)], {"citation_hit": 0.9})
    assert run["passed"] is False
    assert run["metrics"]["citation_hit"]["value"] == 0.5
    assert run["thresholds"][0]["passed"] is False


def test_finish_fails_on_a_latency_threshold() -> None:
    run = run_of([record(f"c{i}", {"citation_hit": 1.0}, suggest_ms=500.0) for i in range(10)],
                 {"suggest_p95_ms": 400})
    assert run["passed"] is False


def test_finish_fails_on_a_case_error() -> None:
    cases = [record(f"c{i}", {"citation_hit": 1.0}) for i in range(10)]
    cases.append(record("broken", {}, error="llm-timeout: the LLM did not answer in time"))
    run = run_of(cases, {"citation_hit": 0.9})
    assert run["errors"] == 1
    assert run["passed"] is False
    assert run["thresholds"][0]["passed"] is True  # the error alone fails the run


def test_finish_fails_on_a_significant_regression() -> None:
    baseline = run_of([record(f"c{i}", {"citation_hit": 1.0}) for i in range(40)])
    assert baseline["passed"] is True
    run = run_of([record(f"c{i}", {"citation_hit": 0.0 if i < 30 else 1.0}) for i in range(40)],
                 {"citation_hit": 0.2}, baseline)

    assert run["thresholds"][0]["passed"] is True
    assert run["comparison"]["regressions"] == ["citation_hit"]
    assert run["comparison"]["metrics"]["citation_hit"]["direction"] == "worse"
    assert run["passed"] is False


def test_finish_passes_an_insignificant_change_against_a_baseline() -> None:
    baseline = run_of([record(f"c{i}", {"citation_hit": float(i % 2)}) for i in range(40)])
    run = run_of([record(f"c{i}", {"citation_hit": float(i % 2 or i == 0)}) for i in range(40)], baseline=baseline)
    assert run["comparison"]["regressions"] == [] and run["comparison"]["improvements"] == []
    assert run["comparison"]["metrics"]["citation_hit"]["direction"] == "same"
    assert run["passed"] is True


def test_slower_suggestions_are_reported_but_gated_by_thresholds_only() -> None:
    baseline = run_of([record(f"c{i}", {"citation_hit": 1.0}, suggest_ms=100.0 + i) for i in range(30)])
    run = run_of([record(f"c{i}", {"citation_hit": 1.0}, suggest_ms=300.0 + i) for i in range(30)],
                 baseline=baseline)
    assert "suggest_p95_ms" in run["comparison"]["regressions"]
    assert run["comparison"]["metrics"]["suggest_p95_ms"]["delta"] == pytest.approx(200.0)
    assert run["passed"] is True  # a loaded machine is slower: latency gates are thresholds
    gated = run_of([record(f"c{i}", {"citation_hit": 1.0}, suggest_ms=300.0 + i) for i in range(30)],
                   thresholds={"suggest_p95_ms": 250.0}, baseline=baseline)
    assert gated["passed"] is False
    # and the other way round, faster is an improvement
    faster = run_of([record(f"c{i}", {"citation_hit": 1.0}, suggest_ms=100.0 + i) for i in range(30)],
                    baseline=run)
    assert "suggest_p95_ms" in faster["comparison"]["improvements"] and faster["passed"] is True


def test_compare_lists_changed_cases_and_cases_on_one_side() -> None:
    a = run_of([record("same", {"citation_hit": 1.0, "must_contain": 1.0}),
                record("moved", {"citation_hit": 1.0, "must_contain": 1.0}),
                record("gone", {"citation_hit": 1.0}),
                record("gone-too", {"citation_hit": 0.0})])
    b = run_of([record("new", {"citation_hit": 0.0}),
                record("moved", {"citation_hit": 0.0, "must_contain": 1.0}),
                record("same", {"citation_hit": 1.0, "must_contain": 1.0})])
    result = compare(a, b)

    assert result["cases"] == [{"id": "moved", "scores": {"citation_hit": [1.0, 0.0]}}]
    assert result["only_in_baseline"] == ["gone", "gone-too"]
    assert result["only_in_run"] == ["new"]
    assert result["shared_cases"] == 2
    assert result["baseline"]["id"] == a["id"] and result["baseline"]["git_commit"] == "abc123"
    assert result["metrics"]["citation_hit"]["n"] == 2
    assert result["metrics"]["citation_hit"]["delta"] == pytest.approx(-0.5)


def test_compare_of_runs_without_cases_compares_values() -> None:
    a = {"id": "a", "metrics": {"ndcg_at_10": {"value": 0.5}, "only_a": {"value": 1.0}}}
    b = {"id": "b", "metrics": {"ndcg_at_10": {"value": 0.6}}}
    result = compare(a, b)
    assert list(result["metrics"]) == ["ndcg_at_10"]
    assert result["metrics"]["ndcg_at_10"]["delta"] == pytest.approx(0.1)
    assert result["regressions"] == [] and result["cases"] == []


# --- run files -------------------------------------------------------------------------------------

def test_write_run_then_read_run(tmp_path: Path) -> None:
    run = run_of([record(f"c{i}", {"citation_hit": float(i % 2)}) for i in range(6)], {"citation_hit": 0.4})
    run_path, report_path = write_run(run, tmp_path / "out" / "nested")

    assert run_path == tmp_path / "out" / "nested" / "run.json" and run_path.is_file()
    assert report_path == tmp_path / "out" / "nested" / "report.html" and report_path.is_file()
    assert "<html" in report_path.read_text(encoding="utf-8")
    assert [p.name for p in run_path.parent.iterdir() if p.name.startswith(".")] == []  # no temp file left
    again = read_run(run_path)
    assert again == json.loads(json.dumps(run))
    assert again["format"] == FORMAT and again["passed"] is True
    assert read_run(run_path.parent) == again


def test_write_run_overwrites_an_earlier_run(tmp_path: Path) -> None:
    first = run_of([record("a", {"citation_hit": 1.0})])
    second = run_of([record("b", {"citation_hit": 0.0})])
    write_run(first, tmp_path)
    write_run(second, tmp_path, baseline=first)
    assert read_run(tmp_path)["id"] == second["id"]


def test_write_run_to_a_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(InvalidInput):
        write_run(run_of([record("a", {"citation_hit": 1.0})]), blocker)


@pytest.mark.parametrize("content", ['{"format": "something-else/1", "cases": []}', '{"cases": []}', "[1, 2]",
                                     "not json at all {", ""])
def test_read_run_refuses_what_is_not_a_run(tmp_path: Path, content: str) -> None:
    path = tmp_path / "run.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput):
        read_run(path)
    with pytest.raises(InvalidInput):
        read_run(tmp_path)


def test_read_run_refuses_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such run file"):
        read_run(tmp_path / "missing.json")
    with pytest.raises(InvalidInput):
        read_run(tmp_path)  # a folder without a run.json
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x81\x00")
    with pytest.raises(InvalidInput):
        read_run(tmp_path / "bin.json")


# --- channel_fits ----------------------------------------------------------------------------------

def test_sms_over_three_segments_fails() -> None:
    three = "a" * (153 * 3)
    assert channel_fits([three], "sms")
    assert not channel_fits([three + "a"], "sms")
    assert channel_fits([three, three], "sms")  # each message counts on its own
    assert not channel_fits(["Hi Maya", three + "a"], "sms")
    # outside GSM-7 a segment holds 67 characters
    assert channel_fits(["é" * 10 + "✓" * (67 * 3 - 10)], "sms")
    assert not channel_fits(["✓" * (67 * 3 + 1)], "sms")


@pytest.mark.parametrize("text", ["Your **refund** is on its way.", "See [the guide](https://example.com).",
                                  "# Refunds\nSoon.",
                                  "Run ```this```", "__important__ note"])
def test_markdown_fails_where_it_is_not_rendered(text: str) -> None:
    assert not channel_fits([text], "whatsapp")
    assert not channel_fits([text], "sms")
    assert channel_fits([text], "webchat")
    assert channel_fits([text], "email")


@pytest.mark.parametrize("text", ["Steps:\n- open the app\n- tap Billing", "- open the app"])
def test_dash_lists_read_as_plain_text_everywhere(text: str) -> None:
    # the channel rules keep "- " lists on plain-text channels: a list is readable as typed
    assert channel_fits([text], "sms") and channel_fits([text], "whatsapp")


def test_plain_text_fits_every_channel() -> None:
    for channel in ("sms", "whatsapp", "messenger", "webchat", "apple_messages", "x_dm", "app", "email"):
        assert channel_fits(["Your refund is on its way - it takes 5 working days.", "Thanks, Maya!"], channel)


def test_messenger_over_2000_characters_fails() -> None:
    assert channel_fits(["x" * 2000], "messenger")
    assert not channel_fits(["x" * 2001], "messenger")
    assert not channel_fits(["Hi", "x" * 2001], "messenger")
    assert channel_fits(["x" * 4096], "whatsapp") and not channel_fits(["x" * 4097], "whatsapp")
    assert channel_fits(["x" * 20000], "webchat")


# --- score_reply -----------------------------------------------------------------------------------

def thread(channel: str = "webchat", text: str = "I paid my bill and autopay took it again. Why?",
           agent: str | None = None) -> Thread:
    messages = [{"role": "customer", "text": text, "ts": "2026-01-02T10:00:00Z"}]
    if agent:
        messages.append({"role": "agent", "text": agent, "ts": "2026-01-02T10:01:00Z"})
    return Thread.model_validate({"channel": channel, "customer": {"name": "Maya Patel"}, "messages": messages})


def case(**expect: Any) -> Case:
    return Case.model_validate({"id": "c1", "thread_id": "th-1", "expect": expect})


def citation(document_id: str, passage: str = PASSAGE) -> Citation:
    return Citation(chunk_id=f"{document_id}#0", document_id=document_id, title=document_id, passage=passage)


def suggestion(text: str, *citations: Citation, source: str = "knowledge", macro_id: str | None = None,
               messages: list[str] | None = None) -> Suggestion:
    return Suggestion(text=text, messages=messages or [text], source=source, confidence=0.8,
                      citations=list(citations), macro_id=macro_id)


def offered(*suggestions: Suggestion) -> SuggestionSet:
    return SuggestionSet(engine="grounded", answered=any(s.source != "clarify" for s in suggestions),
                         suggestions=list(suggestions))


ANSWER = "Autopay may still collect the same bill. The duplicate payment is refunded within 5 working days."
CLARIFY = suggestion("Which number or line is this about? The last 4 digits are enough.", source="clarify")


def test_answering_an_answerable_case_is_the_right_decision() -> None:
    scores = score_reply(case(documents=["autopay"]), thread(), offered(suggestion(ANSWER, citation("autopay"))),
                         None)
    assert scores["answer_decision"] == 1.0


def test_holding_back_on_an_answerable_case_is_the_wrong_decision() -> None:
    for result in (offered(), offered(CLARIFY)):
        scores = score_reply(case(documents=["autopay"]), thread(), result, None)
        assert scores["answer_decision"] == 0.0
        assert scores["citation_hit"] == 0.0
        assert "groundedness" not in scores and "citation_precision" not in scores


def test_holding_back_on_an_unanswerable_case_is_the_right_decision() -> None:
    for result in (offered(), offered(CLARIFY)):
        scores = score_reply(case(answerable=False), thread(), result, None)
        assert scores["answer_decision"] == 1.0
        assert "citation_hit" not in scores


def test_answering_an_unanswerable_case_is_the_wrong_decision() -> None:
    scores = score_reply(case(answerable=False), thread(), offered(suggestion(ANSWER, citation("autopay"))), None)
    assert scores["answer_decision"] == 0.0
    # a clarifying question first does not hide the answer after it
    scores = score_reply(case(answerable=False), thread(), offered(CLARIFY, suggestion(ANSWER, citation("autopay"))),
                         None)
    assert scores["answer_decision"] == 0.0


def test_citation_hit_when_the_cited_document_is_expected() -> None:
    expected = case(documents=["autopay", "faq.csv"])
    hit = score_reply(expected, thread(), offered(suggestion(ANSWER, citation("faq.csv"))), None)
    miss = score_reply(expected, thread(), offered(suggestion(ANSWER, citation("roaming"))), None)
    assert hit["citation_hit"] == 1.0 and miss["citation_hit"] == 0.0
    # only the top suggestion counts
    later = score_reply(expected, thread(), offered(suggestion(ANSWER, citation("roaming")),
                                                    suggestion(ANSWER, citation("autopay"))), None)
    assert later["citation_hit"] == 0.0


def test_a_macro_counts_as_cited_by_its_id() -> None:
    scores = score_reply(case(documents=["double-charge-macro"]), thread(),
                         offered(suggestion(ANSWER, source="macro", macro_id="double-charge-macro")), None)
    assert scores["citation_hit"] == 1.0


def test_citation_precision_is_the_share_of_precise_citations() -> None:
    scores = score_reply(case(documents=["autopay"]), thread(),
                         offered(suggestion(ANSWER, citation("autopay"), citation("roaming"), citation("autopay"),
                                            citation("plans"))), None)
    assert scores["citation_precision"] == pytest.approx(0.5)
    assert scores["citation_hit"] == 1.0


def test_citation_precision_needs_the_supporting_passage() -> None:
    other = "Roaming in the EU costs £2 a day on every plan, and it is charged only on days you use it."
    scores = score_reply(case(documents=["autopay"], passage=WANTED), thread(),
                         offered(suggestion(ANSWER, citation("autopay"), citation("autopay", other))), None)
    assert scores["citation_precision"] == pytest.approx(0.5)
    # with a passage and no documents, any document holding the passage is precise
    scores = score_reply(case(passage=WANTED), thread(),
                         offered(suggestion(ANSWER, citation("anything"), citation("else", other))), None)
    assert scores["citation_precision"] == pytest.approx(0.5)
    assert scores["citation_hit"] is None


def test_must_contain_and_must_not_contain() -> None:
    result = offered(suggestion("Your refund of £1,000 is on its way and arrives in 5 working days.",
                                citation("autopay")))
    scores = score_reply(case(must_contain=["REFUND", "£1000"], must_not_contain=["guarantee"]), thread(), result,
                         None)
    assert scores["must_contain"] == 1.0 and scores["must_not_contain"] == 1.0

    scores = score_reply(case(must_contain=["refund", "7 days"], must_not_contain=["guarantee", "5 working"]),
                         thread(), result, None)
    assert scores["must_contain"] == 0.0 and scores["must_not_contain"] == 0.0


def test_saying_nothing_says_nothing_forbidden() -> None:
    scores = score_reply(case(must_contain=["refund"], must_not_contain=["guarantee"]), thread(), offered(CLARIFY),
                         None)
    assert scores["must_not_contain"] == 1.0
    assert "must_contain" not in scores


def test_groundedness_leaves_the_voice_greeting_out() -> None:
    voice = BrandVoice(name="Brightwave", greeting={"default": "Hi {customer_name}, thanks for reaching out today."},
                       sign_off={"default": "Thanks for being with Brightwave Mobile."})
    text = f"Hi Maya, thanks for reaching out today. {ANSWER} Thanks for being with Brightwave Mobile."
    result = offered(suggestion(text, citation("autopay")))
    assert score_reply(case(documents=["autopay"]), thread(), result, voice)["groundedness"] == 1.0
    assert score_reply(case(documents=["autopay"]), thread(), result, None)["groundedness"] < 1.0
    # a suggestion without citations stands on nothing
    uncited = score_reply(case(documents=["autopay"]), thread(), offered(suggestion(ANSWER)), voice)
    assert uncited["groundedness"] == 0.0


def test_voice_and_channel_compliance() -> None:
    voice = BrandVoice(name="Brightwave", never_promise=["guarantee"])
    good = offered(suggestion(ANSWER, citation("autopay")))
    bad = offered(suggestion(f"I guarantee it. {ANSWER}", citation("autopay")))
    assert score_reply(case(documents=["autopay"]), thread(), good, voice)["voice_compliance"] == 1.0
    assert score_reply(case(documents=["autopay"]), thread(), bad, voice)["voice_compliance"] == 0.0
    assert "voice_compliance" not in score_reply(case(documents=["autopay"], voice=False), thread(), bad, voice)

    markdown = offered(suggestion(f"**Good news:** {ANSWER}", citation("autopay")))
    assert score_reply(case(documents=["autopay"]), thread("webchat"), markdown, None)["channel_compliance"] == 1.0
    assert score_reply(case(documents=["autopay"]), thread("whatsapp"), markdown, None)["channel_compliance"] == 0.0


def test_reply_rouge_against_the_reference() -> None:
    result = offered(suggestion(ANSWER, citation("autopay")))
    assert score_reply(case(reference=ANSWER), thread(), result, None)["reply_rougeL"] == pytest.approx(1.0)
    assert score_reply(case(reference="Roaming abroad costs nothing."), thread(), result, None)["reply_rougeL"] == 0.0


# --- score_next_actions and score_summary ----------------------------------------------------------

def action(name: str, step_id: str | None = None) -> NextAction:
    return NextAction(playbook_id="billing" if step_id else None, step_id=step_id, action=name, title=name,
                      reason="because", preconditions_met=True, blocked_by=[],
                      kind="playbook_step" if step_id else "escalation", confidence=0.5)


def actions(*items: NextAction) -> NextActions:
    return NextActions(actions=list(items), playbook=None, escalation=[], intent=None)


def test_next_action_top1_and_top3() -> None:
    ranked = actions(action("verify_identity", "v1"), action("check_payments", "c2"), action("issue_refund", "r3"),
                     action("move_to_voice"))
    assert score_next_actions(case(next_action="verify_identity"), ranked) == {"next_action_top1": 1.0,
                                                                               "next_action_top3": 1.0}
    assert score_next_actions(case(next_action="issue_refund"), ranked) == {"next_action_top1": 0.0,
                                                                            "next_action_top3": 1.0}
    assert score_next_actions(case(next_action="move_to_voice"), ranked) == {"next_action_top1": 0.0,
                                                                             "next_action_top3": 0.0}
    assert score_next_actions(case(next_action="unknown"), ranked) == {"next_action_top1": 0.0,
                                                                       "next_action_top3": 0.0}


def test_next_action_matches_a_step_id_or_any_of_a_list() -> None:
    ranked = actions(action("verify_identity", "v1"), action("check_payments", "c2"))
    assert score_next_actions(case(next_action="c2"), ranked)["next_action_top3"] == 1.0
    assert score_next_actions(case(next_action="c2"), ranked)["next_action_top1"] == 0.0
    assert score_next_actions(case(next_action=["move_to_voice", "v1"]), ranked)["next_action_top1"] == 1.0
    assert score_next_actions(case(next_action="verify_identity"), actions()) == {"next_action_top1": 0.0,
                                                                                  "next_action_top3": 0.0}


def summary(abstract: str, *facts: str) -> Summary:
    return Summary(style="after_contact", intent=None, issue="charged twice", actions=[], status=None,
                   next_steps=[], abstract=abstract, waiting_since=None, message_count=3,
                   facts=[KeyFact(kind="amount", value=f, masked=False, first_seen=0) for f in facts],
                   sentiment=SentimentTrend(start=None, end=None, direction="steady", turns=[]))


def test_score_summary_takes_the_best_reference_and_counts_facts() -> None:
    written = summary("Customer was charged twice by Autopay; agent requested a refund.", "£18")
    scores = score_summary(case(summaries=["Customer asked about roaming in Spain.",
                                           "Customer was charged twice by Autopay; agent requested a refund."],
                                facts=["£18", "refund", "TK-1234"]), written)
    assert scores["summary_rougeL"] == pytest.approx(1.0) and scores["summary_rouge1"] == pytest.approx(1.0)
    assert scores["summary_fact_recall"] == pytest.approx(2 / 3)
    assert score_summary(case(intent="billing"), written) == {}


# --- run_suite through a target --------------------------------------------------------------------

class FakeTarget:
    """A target answering from fixed data, the way an in-process wiring or a server would."""

    name = "fake"

    def __init__(self, search: list[str], *, fail: Exception | None = None) -> None:
        self.found = search
        self.fail = fail

    def describe(self, tenant: str) -> dict[str, Any]:
        return {"knowledge_version": "kv1", "model": None}

    def thread(self, tenant: str, thread_id: str) -> Thread:
        if thread_id != "th-1":
            raise NotFound(f"no thread {thread_id}")
        return thread("sms")

    def suggest(self, tenant: str, thread: Thread, engine: str) -> SuggestionSet:
        if self.fail is not None:
            raise self.fail
        result = offered(suggestion(ANSWER, citation("autopay")))
        result.intent = "billing_dispute"
        return result

    def summarize(self, tenant: str, thread: Thread, style: str, engine: str) -> Summary:
        return summary("Customer was charged twice.")

    def next_actions(self, tenant: str, thread: Thread, done_actions: list[str]) -> NextActions:
        return actions(action("verify_identity", "v1"))

    def search(self, tenant: str, query: str, k: int) -> list[str]:
        return self.found[:k]

    def voice(self, tenant: str) -> BrandVoice | None:
        return None


SUITE = "\n".join(json.dumps(r) for r in [
    {"suite": {"name": "mini", "tenant": "brightwave", "k": 3, "thresholds": {"retrieval_hit_at_k": 0.5}}},
    {"id": "second", "thread_id": "th-1", "expect": {"documents": ["autopay"], "intent": "billing_dispute",
                                                     "next_action": "verify_identity"}},
    {"id": "third", "thread_id": "th-1", "expect": {"documents": ["faq.csv"], "intent": "roaming"}},
    {"id": "absent", "thread_id": "th-1", "expect": {"documents": ["nowhere"]}},
    {"id": "kept-elsewhere", "thread_id": "th-404", "expect": {"documents": ["autopay"]}},
])


def test_run_suite_scores_retrieval_by_rank_and_records_errors() -> None:
    run = run_suite(parse_suite(SUITE), FakeTarget(["plans", "autopay", "faq.csv", "roaming"]))
    by_id = {c["id"]: c for c in run["cases"]}

    assert by_id["second"]["scores"]["retrieval_hit_at_k"] == 1.0
    assert by_id["second"]["scores"]["retrieval_mrr"] == pytest.approx(1 / 2)
    assert by_id["third"]["scores"]["retrieval_mrr"] == pytest.approx(1 / 3)
    assert by_id["absent"]["scores"]["retrieval_hit_at_k"] == 0.0 and by_id["absent"]["scores"]["retrieval_mrr"] == 0
    assert by_id["second"]["scores"]["next_action_top1"] == 1.0
    assert by_id["second"]["scores"]["intent_accuracy"] == 1.0 and by_id["third"]["scores"]["intent_accuracy"] == 0.0
    assert by_id["kept-elsewhere"]["error"] is not None and "th-404" in by_id["kept-elsewhere"]["error"]

    assert run["metrics"]["retrieval_hit_at_k"]["value"] == pytest.approx(2 / 3)
    assert run["metrics"]["retrieval_mrr"]["value"] == pytest.approx(np.mean([1 / 2, 1 / 3, 0.0]))
    assert run["errors"] == 1 and run["passed"] is False
    assert run["thresholds"][0]["passed"] is True
    assert run["format"] == FORMAT and run["suite"]["k"] == 3 and run["versions"]["knowledge_version"] == "kv1"


def test_run_suite_records_an_llm_failure_per_case() -> None:
    suite = parse_suite(SUITE)
    suite.cases = [*suite.cases[:2], Case.model_validate({"id": "actions-only", "thread_id": "th-1",
                                                          "expect": {"next_action": "verify_identity"}})]
    run = run_suite(suite, FakeTarget(["autopay"], fail=LLMTimeout("the LLM did not answer in time")))
    assert run["errors"] == 2 and run["passed"] is False
    assert all("llm-timeout" in c["error"] for c in run["cases"][:2])
    assert run["cases"][2]["error"] is None and run["cases"][2]["scores"]["next_action_top1"] == 1.0


def test_run_suite_refuses_an_unknown_threshold() -> None:
    with pytest.raises(InvalidInput, match="no_such_metric"):
        run_suite(parse_suite(SUITE), FakeTarget([]), thresholds={"no_such_metric": 1.0})
