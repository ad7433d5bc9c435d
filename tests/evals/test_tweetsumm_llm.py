"""The TweetSumm benchmark with the llm engine beside the grounded one, against a real OpenAI-compatible server
on loopback (tests.fakellm): its ROUGE, its fallbacks, its progress, and an endpoint that cannot be reached."""

from __future__ import annotations

import itertools
import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from api.cli import app
from copilot.drafting import LLMSummarizer
from copilot.errors import LLMError
from copilot.llm import OpenAIChatModel
from copilot.summarize import abstract
from evals.benchmarks import tweetsumm
from evals.runs import read_run, write_run
from tests.conftest import DATASETS
from tests.fakellm import FakeLLM

TWEETSUMM = DATASETS / "tweetsumm" / "tweetsumm_valid.jsonl"

# Each dialogue has one word no other has (router, parcel, invoice), so a responder can tell them apart; the
# references state no number, so a model that writes them is never refused.
DIALOGUES = {
    "router": ("\tCustomer:\t@Acme my router keeps dropping the wifi every evening\n"
               "\tAgent:\t@17 Sorry! Please restart it and tell us if the lights go red /MT\n",
               "Customer's router drops the wifi in the evening. Agent asks them to restart it."),
    "parcel": ("\tCustomer:\t@Acme where is my parcel? Order 55120 was due on Monday\n"
               "\tAgent:\t@18 It is with the courier and arrives tomorrow ^JI\n",
               "Customer asks where the parcel is. Agent says the courier delivers it tomorrow."),
    "invoice": ("\tCustomer:\t@Acme I was charged twice on my invoice this month\n"
                "\tAgent:\t@19 Please DM us your account email and we'll check the charges\n",
                "Customer was charged twice on the invoice. Agent asks for a DM to check the charges."),
}


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "mini.jsonl"
    path.write_text("".join(json.dumps({"dialog_id": key, "text": text, "abstractive_summaries": [reference]}) + "\n"
                            for key, (text, reference) in DIALOGUES.items()), encoding="utf-8")
    return path


def _conversation(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


def _reference_writer(body: dict[str, Any]) -> str:
    """A model that writes each dialogue's reference summary: its ROUGE is 1."""
    conversation = _conversation(body)
    return next(reference for key, (_, reference) in DIALOGUES.items() if key in conversation)


def _collect(lines: list[str]) -> Any:
    return lines.append


def test_the_llm_engine_is_scored_beside_the_grounded_one_and_lead(tmp_path: Path) -> None:
    lines: list[str] = []
    with FakeLLM(responder=_reference_writer) as fake, \
            OpenAIChatModel(fake.base_url, fake.model, timeout_s=5) as chat:
        result = tweetsumm.run(_file(tmp_path), _collect(lines), llm=LLMSummarizer(chat), engines="both")
        asked = len(fake.chat_requests)

    assert asked == len(DIALOGUES)
    assert result.system == "copilot" and result.baseline is not None and result.baseline.system == "lead"
    [llm] = result.others
    assert llm.system == "llm" and llm.n == result.n == len(DIALOGUES)
    assert llm.metrics["rougeL"] == pytest.approx(1.0)
    assert llm.metrics["rougeL"] > result.metrics["rougeL"] > 0
    assert llm.details == {"model": "fake-chat", "llm_abstracts": 3, "fallbacks": 0, "refused": 0, "failed": 0}
    assert [c["outputs"]["summary"]["engine"] for c in llm.cases] == ["llm"] * 3
    assert any("3/3 dialogues, 0 fell back" in line for line in lines)
    payload = result.as_json()
    assert payload["others"][0]["system"] == "llm" and payload["others"][0]["details"]["fallbacks"] == 0
    assert payload["baseline"]["system"] == "lead"

    run_path, report_path = write_run(result.to_run(dataset="mini.jsonl"), tmp_path / "out")
    run = read_run(run_path)
    [other] = run["other_systems"]
    assert other["name"] == "llm" and other["metrics"]["rougeL"] == pytest.approx(1.0)
    assert other["details"]["fallbacks"] == 0 and other["metrics"]["p50_ms"] >= 0
    assert run["baseline_system"]["name"] == "lead" and run["engine"] == "copilot"
    html = report_path.read_text(encoding="utf-8")
    assert "Also ran: llm" in html and '<th scope="col">llm</th>' in html and "1.000" in html


def test_a_refused_or_failed_llm_abstract_falls_back_to_the_grounded_one_and_is_counted(tmp_path: Path) -> None:
    def write(body: dict[str, Any]) -> str:
        if "parcel" in _conversation(body):  # a number the thread does not state: refused
            return "Customer asks about a parcel. Agent refunds £99 on 7 December."
        return _reference_writer(body)

    with FakeLLM(responder=write) as fake, \
            OpenAIChatModel(fake.base_url, fake.model, timeout_s=5, backoff_s=0.01) as chat:
        fake.fail(500).fail(500).fail(500)  # the first dialogue: every attempt fails
        result = tweetsumm.run(_file(tmp_path), _collect([]), llm=LLMSummarizer(chat), engines="both")

    [llm] = result.others
    assert llm.details == {"model": "fake-chat", "llm_abstracts": 1, "fallbacks": 2, "refused": 1, "failed": 1}
    by_id = {c["id"]: c["outputs"]["summary"] for c in llm.cases}
    threads = {ident: thread for ident, thread, _ in tweetsumm.load(_file(tmp_path))}
    for ident, why in (("router", "llm engine failed"), ("parcel", "refused")):
        assert by_id[ident]["engine"] == "grounded" and why in by_id[ident]["note"]
        assert by_id[ident]["abstract"] == abstract(threads[ident])
    assert "99" in by_id["parcel"]["note"]
    assert by_id["invoice"] == {"abstract": DIALOGUES["invoice"][1], "engine": "llm"}
    grounded = {c["id"]: c["scores"]["rougeL"] for c in result.cases}
    assert {c["id"]: c["scores"]["rougeL"] for c in llm.cases if c["id"] != "invoice"} == {
        ident: pytest.approx(grounded[ident]) for ident in ("router", "parcel")}


def test_an_endpoint_that_keeps_failing_stops_the_run(tmp_path: Path) -> None:
    with FakeLLM() as fake, OpenAIChatModel(fake.base_url, fake.model, timeout_s=5, max_retries=0) as chat:
        for _ in range(tweetsumm.FAILURES_IN_A_ROW):
            fake.fail(503)
        with pytest.raises(LLMError, match=f"failed on {tweetsumm.FAILURES_IN_A_ROW} dialogues in a row.*HTTP 503"):
            tweetsumm.run(_file(tmp_path), _collect([]), llm=LLMSummarizer(chat), engines="llm")


@pytest.mark.skipif(not TWEETSUMM.is_file(), reason="TweetSumm is not in shared/datasets")
def test_a_slice_of_tweetsumm_valid_reports_llm_figures_and_progress(tmp_path: Path) -> None:
    path = tmp_path / "valid_12.jsonl"
    with TWEETSUMM.open(encoding="utf-8") as handle:
        path.write_text("".join(itertools.islice(handle, 12)), encoding="utf-8")

    def first_customer_line(body: dict[str, Any]) -> str:  # words of the thread, no number: never refused
        line = next(x for x in _conversation(body).splitlines() if x.startswith("customer: "))
        return re.sub(r"[^A-Za-z' ]+", " ", line.removeprefix("customer: ")).strip() + "."

    lines: list[str] = []
    with FakeLLM(responder=first_customer_line) as fake, \
            OpenAIChatModel(fake.base_url, fake.model, timeout_s=5) as chat:
        result = tweetsumm.run(path, _collect(lines), llm=LLMSummarizer(chat), engines="both")

    [llm] = result.others
    assert llm.n == result.n == 12 and llm.details["llm_abstracts"] == 12
    assert all(0 < llm.metrics[m] < 1 for m in ("rouge1", "rouge2", "rougeL"))
    assert result.baseline is not None and llm.metrics != result.baseline.metrics != result.metrics
    progress = [line for line in lines if line.startswith("tweetsumm llm: ") and "dialogues," in line]
    assert [line.split()[2] for line in progress] == ["10/12", "12/12"]


# --- the command line ---------------------------------------------------------------------------------------

@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("COPILOT_LLM_BASE_URL", "COPILOT_LLM_MODEL", "COPILOT_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def _configure(monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", base_url)
    monkeypatch.setenv("COPILOT_LLM_MODEL", "fake-chat")


def _benchmark(runner: CliRunner, data: Path, *args: str) -> Result:
    return runner.invoke(app, ["eval", "benchmark", "tweetsumm", "--data", str(data), *args])


def test_cli_reports_the_llm_engine_when_one_is_configured(runner: CliRunner, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    data = _file(tmp_path)
    with FakeLLM(responder=_reference_writer) as fake:
        _configure(monkeypatch, fake.base_url)
        as_json = _benchmark(runner, data, "--json", "--out", str(tmp_path / "run"))
        text = _benchmark(runner, data)
        grounded_only = _benchmark(runner, data, "--engine", "grounded", "--json")
        asked = len(fake.chat_requests)

    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.stdout)
    assert payload["system"] == "copilot" and payload["baseline"]["system"] == "lead"
    assert payload["others"][0]["system"] == "llm" and payload["others"][0]["metrics"]["rougeL"] == pytest.approx(1)
    assert "tweetsumm llm: 3/3 dialogues" in as_json.stderr
    assert read_run(tmp_path / "run")["other_systems"][0]["name"] == "llm"
    assert text.exit_code == 0, text.output
    assert re.search(r"llm\s.*1\.000", text.stdout) and "0 of 3 abstracts fell back" in text.stdout
    assert grounded_only.exit_code == 0 and "others" not in json.loads(grounded_only.stdout)
    assert asked == 2 * len(DIALOGUES)  # --engine grounded called no model


def test_cli_engine_llm_scores_the_llm_alone_and_needs_one_configured(runner: CliRunner, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    data = _file(tmp_path)
    unconfigured = _benchmark(runner, data, "--engine", "llm")
    unknown = _benchmark(runner, data, "--engine", "gpt")
    elsewhere = runner.invoke(app, ["eval", "benchmark", "doc2dial", "--data", str(data), "--engine", "llm"])
    with FakeLLM(responder=_reference_writer) as fake:
        _configure(monkeypatch, fake.base_url)
        alone = _benchmark(runner, data, "--engine", "llm", "--json")

    assert unconfigured.exit_code == 2 and "COPILOT_LLM_BASE_URL" in unconfigured.output
    assert unknown.exit_code == 2 and "grounded, llm, both" in unknown.output
    assert elsewhere.exit_code == 2 and "--engine is for tweetsumm" in elsewhere.output
    assert alone.exit_code == 0, alone.output
    payload = json.loads(alone.stdout)
    assert payload["system"] == "llm" and payload["details"]["llm_abstracts"] == 3 and "others" not in payload


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("as_json", [False, True])
def test_cli_with_an_unreachable_endpoint_exits_3_with_a_message(runner: CliRunner, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  as_json: bool) -> None:
    _configure(monkeypatch, f"http://127.0.0.1:{_closed_port()}/v1")
    monkeypatch.setenv("COPILOT_LLM_TIMEOUT_S", "2")

    result = _benchmark(runner, _file(tmp_path), *(["--json"] if as_json else []))

    assert result.exit_code == 3, result.output
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert "Traceback" not in result.output
    message = " ".join(result.stderr.split())
    assert "could not reach" in message and "3 dialogues in a row" in message and "--engine grounded" in message
    if as_json:
        assert json.loads(result.stdout)["error"]["type"] == "llm-error"
