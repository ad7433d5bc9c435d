"""The HTML report of an eval run: self-contained, escaped, and saying what the run says."""

from __future__ import annotations

from typing import Any

import lxml.html
from lxml.html import HtmlElement

from evals.report import render
from evals.runs import finish, new_run

SCRIPT = "<script>alert(1)</script>"


def record(case_id: str, scores: dict[str, float | None], suggest_ms: float, *, intent: tuple[str, str] | None = None,
           tags: tuple[str, ...] = (), text: str = "Where is my refund?", error: str | None = None) -> dict[str, Any]:
    """A case record as the runner writes it (see evals.runner.run_case)."""
    return {
        "id": case_id, "tags": list(tags), "note": None, "channel": "webchat",
        "thread": {"customer": {"name": "Maya"},
                   "messages": [{"role": "customer", "text": text, "ts": "2025-01-02T10:00:00Z"},
                                {"role": "agent", "text": "Let me check.", "ts": None}]},
        "expect": {"documents": ["refunds"]},
        "outputs": {"answered": True, "engine": "grounded", "fallback_from": None,
                    "suggestions": [{"text": "Refunds take 5 days.", "source": "grounded", "confidence": 0.8,
                                     "citations": [{"document_id": "refunds", "title": "Refunds",
                                                    "section": "Timing", "passage": "Refunds take 5 days."}]}],
                    "summary": {"abstract": "Customer asks about a refund.", "facts": [], "status": "open"},
                    "next_actions": [{"action": "issue_refund", "step_id": None, "title": "Issue the refund"}],
                    "search": ["refunds"]},
        "scores": scores,
        "intent": {"expected": intent[0], "predicted": intent[1]} if intent else None,
        "latency_ms": {"suggest": suggest_ms, "summary": suggest_ms * 2},
        "error": error,
    }


def suite_cases(hits: list[float], *, intents: bool = False) -> list[dict[str, Any]]:
    """One case per hit; with ``intents`` each also has an intent (its macro F1 bootstraps slowly: few tests)."""
    return [record(f"case-{i}", {"citation_hit": hit, "must_contain": 1.0}, 100.0 + 10 * i,
                   intent=("refund", "refund" if hit else "billing") if intents else None, tags=("refunds",))
            for i, hit in enumerate(hits)]


def suite_run(cases: list[dict[str, Any]], thresholds: dict[str, float] | None = None,
              baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    run = new_run("suite", "brightwave-regression", target="in-process", engine="grounded",
                  versions={"copilot": "0.1.0", "git_commit": "abc123", "model": None},
                  suite={"name": "brightwave-regression", "tenant": "brightwave", "cases": len(cases)},
                  cases=cases)
    return finish(run, thresholds or {}, baseline)


def parse(page: str) -> HtmlElement:
    return lxml.html.document_fromstring(page)


def text_of(element: HtmlElement) -> str:
    return " ".join(element.text_content().split())


def test_render_page_is_one_document_without_outside_resources() -> None:
    cases = suite_cases([1.0, 0.0, 1.0])
    cases[1]["outputs"]["suggestions"][0]["citations"][0]["title"] = "https://cdn.example.com/evil.js"
    page = render(suite_run(cases, {"citation_hit": 0.5}))

    assert page.count("<html") == 1 and page.count("</html>") == 1
    doc = parse(page)
    assert len(doc.xpath("//head")) == 1 and len(doc.xpath("//body")) == 1
    assert doc.xpath("//link") == [] and doc.xpath("//iframe|//img|//object|//embed") == []
    for element in doc.iter():
        for attribute, value in element.attrib.items():
            if attribute.split("}")[-1] in ("src", "href", "action", "srcset", "data"):
                assert not value.strip().lower().startswith(("http:", "https:", "//")), (attribute, value)
    for style in doc.xpath("//style"):
        assert "@import" not in style.text_content() and "url(" not in style.text_content()
    # the URL in the citation is shown as text, never as a link
    assert "https://cdn.example.com/evil.js" in text_of(doc)
    assert doc.xpath("//svg")


def test_render_escapes_script_in_customer_message_case_id_and_tag() -> None:
    cases = suite_cases([1.0, 1.0])
    cases.append(record(f"bad {SCRIPT}", {"citation_hit": 0.0, "must_contain": 0.0}, 90.0,
                        tags=(SCRIPT,), text=f"Hello {SCRIPT} there"))
    page = render(suite_run(cases))

    assert SCRIPT not in page
    doc = parse(page)
    scripts = doc.xpath("//script")
    assert len(scripts) == 1 and "alert" not in scripts[0].text_content()
    worst = doc.get_element_by_id("worst-cases")
    assert f"bad {SCRIPT}" in [text_of(h) for h in worst.xpath(".//h3")]
    assert f"Hello {SCRIPT} there" in [text_of(p) for p in worst.xpath(".//li[contains(@class, 'msg')]/p")]
    assert SCRIPT in [text_of(th) for th in doc.get_element_by_id("by-tag").xpath(".//tbody/tr/th")]


def test_render_lists_every_metric_with_its_value() -> None:
    run = suite_run(suite_cases([1.0, 0.0, 1.0, 1.0], intents=True), {"citation_hit": 0.5})
    doc = parse(render(run))
    table = doc.get_element_by_id("metrics-table")

    assert run["metrics"]  # citation_hit, must_contain, intent_macro_f1 and the latency percentiles
    for name, entry in run["metrics"].items():
        rows = table.xpath(".//tr[@data-metric=$name]", name=name)
        assert len(rows) == 1, name
        value = rows[0].xpath("./td")[0]
        shown = f"{entry['value']:,.0f} ms" if entry["unit"] == "ms" else f"{entry['value']:.3f}"
        assert text_of(value) == shown, name
    hit = table.xpath(".//tr[@data-metric='citation_hit']")[0]
    assert "0.750" in text_of(hit) and "0.500" in text_of(hit)  # value and threshold


def test_render_verdict_follows_the_thresholds_and_errors() -> None:
    cases = suite_cases([1.0, 0.0, 1.0, 1.0])
    passing = parse(render(suite_run(cases, {"citation_hit": 0.7})))
    failing = parse(render(suite_run(cases, {"citation_hit": 0.9})))
    broken = suite_cases([1.0, 1.0])
    broken[0]["error"] = "service_unavailable: the model timed out"
    errored = parse(render(suite_run(broken, {"citation_hit": 0.5})))

    assert text_of(passing.get_element_by_id("verdict")).startswith("PASS")
    assert "FAIL" not in text_of(passing.get_element_by_id("verdict"))
    verdict = text_of(failing.get_element_by_id("verdict"))
    assert verdict.startswith("FAIL") and "citation_hit" in verdict and "0.750" in verdict
    assert text_of(errored.get_element_by_id("verdict")).startswith("FAIL")
    assert "1 case failed to run" in text_of(errored.get_element_by_id("verdict"))


def test_render_shows_the_comparison_only_with_a_baseline_and_names_regressions() -> None:
    before = suite_run(suite_cases([1.0] * 10))
    after = suite_run(suite_cases([0.0] * 8 + [1.0] * 2), baseline=before)
    assert after["comparison"]["regressions"] == ["citation_hit"]

    alone = parse(render(suite_run(suite_cases([0.0] * 8 + [1.0] * 2))))
    assert alone.xpath("//*[@id='comparison']") == []

    doc = parse(render(after, before))
    section = doc.get_element_by_id("comparison")
    assert "citation_hit" in text_of(section.get_element_by_id("regressions"))
    assert "citation_hit" in text_of(doc.get_element_by_id("verdict"))
    changed = section.get_element_by_id("changed-cases").xpath(".//tbody/tr")
    assert len(changed) == 8  # citation_hit moved for cases 0-7
    first = [text_of(td) for td in changed[0].xpath("./th|./td")]
    assert first[1] == "citation_hit" and first[2:4] == ["1.000", "0.000"] and "worse" in first[4]


def test_render_computes_the_comparison_when_the_run_lacks_one() -> None:
    before = suite_run(suite_cases([1.0] * 10))
    after = suite_run(suite_cases([0.0] * 8 + [1.0] * 2))
    section = parse(render(after, before)).get_element_by_id("comparison")
    assert "citation_hit" in text_of(section.get_element_by_id("regressions"))


def test_render_benchmark_with_score_only_cases_and_a_baseline_system() -> None:
    cases = [{"id": f"q{i}", "scores": {"retrieval_hit_at_k": float(i % 3 != 0), "f1_token": 0.25 * (i % 5)},
              "latency_ms": {"suggest": 20.0 + i}} for i in range(12)]
    run = finish(new_run("benchmark", "doc2dial", target="in-process", engine="grounded",
                         details={"dataset": "doc2dial", "split": "validation", "questions": 12},
                         baseline_system={"name": "Lead", "metrics": {"retrieval_hit_at_k": 0.5}}, cases=cases),
                 {"retrieval_hit_at_k": 0.5})
    doc = parse(render(run))

    assert text_of(doc.get_element_by_id("verdict")).startswith("PASS")
    table = text_of(doc.get_element_by_id("metrics-table"))
    assert "f1_token" in table and "Lead" in table
    assert doc.xpath("//li[contains(@class, 'msg')]") == []  # no threads to show
    assert doc.get_element_by_id("latency") is not None
    worst = [text_of(h) for h in doc.get_element_by_id("worst-cases").xpath(".//h3")]
    assert worst and worst[0] == "q0"  # hit 0 and f1 0


def test_render_benchmark_with_metrics_only() -> None:
    run = finish(new_run("benchmark", "banking77", metrics={
        "intent_accuracy": {"value": 0.91, "ci": [0.89, 0.93], "n": 3080, "higher_is_better": True, "unit": "",
                            "description": "Share of right intents."},
        "suggest_p95_ms": {"value": 42.0, "ci": None, "n": 3080, "higher_is_better": False, "unit": "ms",
                           "description": "p95"}}), {"suggest_p95_ms": 30})
    doc = parse(render(run))

    verdict = text_of(doc.get_element_by_id("verdict"))
    assert verdict.startswith("FAIL") and "suggest_p95_ms" in verdict
    assert [s.get("id") for s in doc.xpath("//section")] == ["metric-chart", "metrics"]


def test_render_puts_the_sections_in_order() -> None:
    before = suite_run(suite_cases([1.0] * 6))
    after = suite_run(suite_cases([0.0] * 3 + [1.0] * 3, intents=True), {"citation_hit": 0.5}, baseline=before)
    doc = parse(render(after))
    ids = [s.get("id") for s in doc.xpath("//header|//section")]
    assert ids == ["summary", "metric-chart", "metrics", "latency", "by-intent", "by-tag", "worst-cases",
                   "comparison"]
    for svg in doc.xpath("//svg"):
        assert svg.get("role") == "img" and svg.xpath("./title")
