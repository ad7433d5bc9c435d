"""The grounded abstract and the TweetSumm benchmark's reading of its files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from copilot.conversation import Message, Role, Thread
from copilot.summarize import abstract, clean
from evals.benchmarks.tweetsumm import thread_from_text

DIALOGUE = ("\tCustomer:\t@Brightwave my bill doubled this month?? https://t.co/x1\n"
            "\tAgent:\t@1234 Sorry about that! Which plan are you on? /MT\n"
            "\tCustomer:\t@Brightwave Wave Plus\n"
            "\tAgent:\t@1234 Thanks. Please DM us your account number and we'll check the charges. ^JI\n")


def test_clean_drops_handles_links_and_initials() -> None:
    assert clean("@Brightwave my bill doubled?? https://t.co/x1 /MT") == "my bill doubled??"


def test_thread_from_text_reads_roles_in_order() -> None:
    thread = thread_from_text(DIALOGUE)

    assert [m.role for m in thread.messages] == [Role.CUSTOMER, Role.AGENT, Role.CUSTOMER, Role.AGENT]
    assert thread.messages[2].text == "@Brightwave Wave Plus"


def test_abstract_says_who_asked_what_and_what_the_agent_did() -> None:
    summary = abstract(thread_from_text(DIALOGUE))

    assert summary == ("Customer is asking about my bill doubled this month?? "
                       "Agent suggests Thanks. Please DM us your account number and we'll check the charges.")


def test_abstract_without_agent_reply_has_only_the_question() -> None:
    thread = Thread(messages=[Message(role=Role.CUSTOMER, text="Is there an outage in Leeds?")])

    assert abstract(thread) == "Customer is asking about Is there an outage in Leeds?"


def test_benchmark_tweetsumm_reports_rouge_beside_lead(tmp_path: Path) -> None:
    data = tmp_path / "mini.jsonl"
    reference = "Customer is asking about a doubled bill. Agent asks for the account number by DM."
    data.write_text(json.dumps({"dialog_id": "d1", "text": DIALOGUE, "abstractive_summaries": [reference]}) + "\n",
                    encoding="utf-8")

    result = CliRunner().invoke(app, ["eval", "benchmark", "tweetsumm", "--data", str(data), "--json"])

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["benchmark"], payload["system"], payload["n"]) == ("tweetsumm", "copilot", 1)
    assert set(payload["metrics"]) == {"rouge1", "rouge2", "rougeL"}
    assert payload["baseline"]["system"] == "lead"
    assert payload["metrics"]["rougeL"] > payload["baseline"]["metrics"]["rougeL"]


@pytest.mark.parametrize("content", ["not json\n", json.dumps({"dialog_id": "x"}) + "\n", ""])
def test_benchmark_tweetsumm_bad_file_exits_2(tmp_path: Path, content: str) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(content, encoding="utf-8")

    result = CliRunner().invoke(app, ["eval", "benchmark", "tweetsumm", "--data", str(data)])

    assert result.exit_code == 2
