"""What the security tests share: a FakeLLM per module, the app wired to it, and every log line captured."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.observability import configure_logging
from copilot.settings import Settings
from tests.fakellm import FakeLLM

CORPUS = Path(__file__).resolve().parent / "corpus"
# The injection cues each document of corpus/hostile carries in what the loaders keep of it
HOSTILE_CUES = {
    "billing-update.md": ["ignore_instructions", "role_change", "tell_the_customer"],
    "direct-debit-help.txt": ["addressed_to_model"],
    "late-fees.md": ["addressed_to_model"],
    "plan-changes.html": ["role_change", "addressed_to_model"],
    "refund-faq.json": ["reveal_prompt"],
}
# A passage block of the llm engine's prompt: <<data-NONCE passage P1 title="...">> text <<end-NONCE>>
PASSAGE_BLOCK = re.compile(r"<<data-(\w+) passage (P\d+) title=\"[^\"]*\">>\n(.*?)\n<<end-\1>>", re.DOTALL)


def passages_in(body: dict[str, Any]) -> dict[str, str]:
    """The passages a chat request carries, by id (P1, P2...)."""
    prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    return {pid: text for _, pid, text in PASSAGE_BLOCK.findall(prompt)}


def llm_settings(data_dir: Path, fake: FakeLLM, **overrides: Any) -> Settings:
    """Settings of an app whose llm engine is the fake."""
    return Settings(data_dir=data_dir, llm_base_url=fake.base_url, llm_model=fake.model,
                    llm_timeout_s=5.0, _env_file=None, **overrides)


@pytest.fixture(scope="module")
def module_llm() -> Iterator[FakeLLM]:
    """One fake model for a module's app (the app keeps its base URL); tests reset its script."""
    with FakeLLM() as server:
        yield server


class _RawRecords(logging.Handler):
    """Every record as it was logged, before any handler's filter (the JSON handler masks records in place)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what was passed
            message = f"{record.msg!r} {record.args!r}"
        traceback = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        self.lines.append(" ".join([record.name, message, repr(record.__dict__), traceback,
                                    record.stack_info or ""]))


@dataclass
class CapturedLogs:
    """What was logged during a test: the raw records, pytest's caplog, and the app's JSON log stream."""

    raw: _RawRecords
    caplog: pytest.LogCaptureFixture
    json_stream: io.StringIO

    def everything(self) -> str:
        return "\n".join([*self.raw.lines, self.caplog.text, *(repr(r.__dict__) for r in self.caplog.records),
                          self.json_stream.getvalue()])

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.json_stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[CapturedLogs]:
    """Everything every logger writes at DEBUG and up while the test runs, and the app's JSON log lines.

    Use it after the app is built: ``create_app`` (re)configures the JSON handler, which this points at a buffer.
    """
    root = logging.getLogger()
    copilot_logger = logging.getLogger("copilot")
    levels = root.level, copilot_logger.level
    handler = configure_logging("DEBUG")
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    raw = _RawRecords()
    root.handlers.insert(0, raw)  # first, so it sees each record before the JSON handler masks it
    caplog.set_level(logging.DEBUG)
    try:
        yield CapturedLogs(raw, caplog, stream)
    finally:
        root.removeHandler(raw)
        if previous is not None:
            handler.setStream(previous)
        root.setLevel(levels[0])
        copilot_logger.setLevel(levels[1])

