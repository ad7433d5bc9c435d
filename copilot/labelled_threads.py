"""Labelled past threads: a tenant's conversations whose agent, bot or system messages name the action taken.

An action is a playbook step's id or action, or any name of the tenant's own: the names a console reports in
``done_actions``. ``copilot.history`` learns what agents do next from them; ``knowledge.action_history`` reads
them from ``*.history.jsonl`` files, one thread a line.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from copilot.conversation import Role
from copilot.errors import InvalidInput, describe_validation_error


class HistoryMessage(BaseModel):
    """One message of a labelled past thread."""

    role: Role = Field(..., description="customer, agent, system or bot.")
    text: str = Field("", max_length=20_000, description="What the message said; may be empty when it only "
                                                         "records an action.")
    action: str | list[str] | None = Field(None, description="The action taken with this message (agent, bot "
                                                             "or system messages only), or several in order.")

    @field_validator("action")
    @classmethod
    def _names(cls, value: str | list[str] | None) -> str | list[str] | None:
        names = [value] if isinstance(value, str) else value or []
        if any(not name.strip() for name in names):
            raise ValueError("an action needs a name")
        return value

    @model_validator(mode="after")
    def _labelled_by_the_agent_side(self) -> HistoryMessage:
        if self.actions and self.role == Role.CUSTOMER:
            raise ValueError("a customer message carries no action: label the agent's message that answered it")
        if not self.text.strip() and not self.actions:
            raise ValueError("a message needs a text or an action")
        return self

    @property
    def actions(self) -> list[str]:
        names = [self.action] if isinstance(self.action, str) else self.action or []
        return [name.strip() for name in names]


class LabelledThread(BaseModel):
    """A past thread whose agent messages say which action they took."""

    id: str | None = Field(None, description="The thread's id, cited in the reasons of learned actions.")
    messages: list[HistoryMessage] = Field(..., min_length=1, description="The messages, oldest first.")

    @property
    def actions(self) -> list[str]:
        return [a for m in self.messages for a in m.actions]


def parse_history(text: str) -> list[LabelledThread]:
    """Labelled threads from JSON lines, one thread a line (blank lines skipped); a bad line is an
    ``InvalidInput`` that names it."""
    threads = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            threads.append(LabelledThread.model_validate(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"line {number}: not JSON ({exc.msg}, column {exc.colno})", line=number) from exc
        except ValidationError as exc:
            raise InvalidInput(f"line {number}: {describe_validation_error(exc)}", line=number) from exc
    return threads
