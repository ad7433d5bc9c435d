"""Playbooks: procedures an agent follows, as ordered steps with preconditions."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class Step(BaseModel):
    id: str = Field(..., min_length=1)
    action: str = Field(..., min_length=1)
    title: str = ""
    description: str = ""
    preconditions: list[str] = Field(default_factory=list)
    cues: list[str] = Field(default_factory=list, description="Phrases an agent message has when done.")


class Playbook(BaseModel):
    id: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = Field(..., min_length=1)
    trigger_intents: list[str] = Field(default_factory=list)
    description: str = ""
    steps: list[Step] = Field(..., min_length=1)
    escalate_when: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _preconditions_name_earlier_steps(self) -> Playbook:
        seen: set[str] = set()
        for step in self.steps:
            unknown = [p for p in step.preconditions if p not in seen]
            if unknown:
                raise ValueError(
                    f"step {step.id!r} has preconditions {unknown} that are not earlier steps of the playbook"
                )
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return self
