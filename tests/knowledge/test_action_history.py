"""Labelled history files (*.history.jsonl): recognised by name, read line by line, refused with the bad line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from copilot.errors import DocumentError, EmptyDocument, InvalidInput, UnsupportedFormat
from copilot.labelled_threads import parse_history
from knowledge.base import KnowledgeBase
from knowledge.documents import Kind
from knowledge.ingest import IngestReport, discover
from knowledge.loaders import load_document

REFUND = {"id": "past-1", "messages": [
    {"role": "customer", "text": "you charged me twice"},
    {"role": "agent", "text": "I've sent a one-time code to check it's you.", "action": "verify_identity"},
    {"role": "customer", "text": "code 123456"},
    {"role": "agent", "text": "Thanks. I can see two payments and will refund one.",
     "action": ["check_charges", "issue_refund"]},
]}
ORDER = {"messages": [
    {"role": "customer", "text": "where is my order"},
    {"role": "agent", "text": "It was dispatched today with Parcelway.", "action": "track_order"},
]}


def _lines(*threads: dict[str, Any] | str) -> str:
    return "\n".join(t if isinstance(t, str) else json.dumps(t) for t in threads) + "\n"


def _file(tmp_path: Path, body: str, name: str = "support.history.jsonl") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def test_load_history_file_keeps_the_threads_as_payload(tmp_path: Path) -> None:
    path = _file(tmp_path, _lines(REFUND, "", ORDER))  # a blank line is skipped

    document = load_document(path, path.name, 1_000_000)

    assert document.kind == Kind.ACTION_HISTORY
    assert document.title == "Action history: Support"
    assert document.payload is not None
    [refund, order] = document.payload["threads"]
    assert refund["id"] == "past-1" and refund["messages"][3]["action"] == ["check_charges", "issue_refund"]
    assert "id" not in order and order["messages"][1]["action"] == "track_order"
    assert document.sections[0].text.startswith("2 labelled threads, 4 actions")
    assert "verify_identity: 1" in document.sections[0].text


@pytest.mark.parametrize("line, message", [
    ("{not json", "not JSON (Expecting property name enclosed in double quotes, column 2)"),
    (json.dumps({"messages": []}), "messages"),
    (json.dumps({"messages": [{"role": "customer", "text": "hi", "action": "greet"}]}), "customer message"),
    (json.dumps({"messages": [{"role": "agent", "text": ""}]}), "a text or an action"),
    (json.dumps({"messages": [{"role": "robot", "text": "hi"}]}), "role"),
    (json.dumps({"messages": [{"role": "agent", "text": "hi", "action": " "}]}), "needs a name"),
])
def test_load_history_bad_line_is_refused_naming_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = _file(tmp_path, _lines(REFUND, ORDER, line))

    with pytest.raises(DocumentError) as caught:
        load_document(path, path.name, 1_000_000)

    assert caught.value.message.startswith("labelled history line 3:")
    assert message in caught.value.message
    assert caught.value.path == str(path)


def test_parse_history_bad_line_is_invalid_input_with_its_number() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_history(_lines(REFUND, "[1, 2]"))

    assert caught.value.fields == {"line": 2}
    assert caught.value.message.startswith("line 2:")


def test_load_history_without_any_action_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, _lines({"messages": [{"role": "customer", "text": "hi"}, {"role": "agent", "text": "hi"}]}))

    with pytest.raises(DocumentError, match="no message of the history carries an action"):
        load_document(path, path.name, 1_000_000)


def test_load_history_of_blank_lines_is_empty(tmp_path: Path) -> None:
    path = _file(tmp_path, "\n\n")

    with pytest.raises(EmptyDocument):
        load_document(path, path.name, 1_000_000)


def test_other_jsonl_files_are_not_knowledge(tmp_path: Path) -> None:
    suite = _file(tmp_path, _lines(REFUND), name="suite.jsonl")
    _file(tmp_path, _lines(REFUND), name="past.history.jsonl")
    report = IngestReport()

    found = discover([tmp_path], report)

    assert [document_id for _, document_id in found] == ["past.history.jsonl"]
    assert report.ignored == 1
    with pytest.raises(UnsupportedFormat, match=r"\*\.history\.jsonl"):
        load_document(suite, suite.name, 1_000_000)


def test_ingested_history_is_in_the_tenant_profile(kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = tmp_path / "content"
    _file(folder, _lines(REFUND, ORDER), name="history/2026.history.jsonl")

    report = kb.ingest("acme", [folder])

    assert report.added == 1 and not report.failed
    profile = kb.profile("acme")
    assert [t.id for t in profile.action_history] == ["past-1", None]
    assert [t.actions for t in profile.action_history] == [["verify_identity", "check_charges", "issue_refund"],
                                                           ["track_order"]]
    assert kb.search("acme", "where is my order") == []  # stored, not searched
