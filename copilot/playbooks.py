"""Playbooks: procedures an agent follows, as ordered steps with preconditions."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Step(BaseModel):
    """One step of a playbook."""

    id: str = Field(..., min_length=1, description="Unique within the playbook; next-best actions name it as "
                                                   "step_id, and consoles report it done in done_actions.")
    action: str = Field(..., min_length=1, description="What the step does, as a machine name a console can act "
                                                       "on, e.g. bar_sim or verify_identity; several steps may "
                                                       "share one (e.g. inform_customer).")
    title: str = Field("", description="What to do, for the agent to read; default: the action.")
    description: str = Field("", description="How to do it; its first sentence is the reason a next-best action "
                                             "gives.")
    preconditions: list[str] = Field(default_factory=list, description="Ids of earlier steps that must be done "
                                                                       "first; a later or unknown id is refused.")
    cues: list[str] = Field(default_factory=list, description="Phrases an agent message has when done.")


class Playbook(BaseModel):
    """A procedure for one kind of issue: the next-best actions follow its steps in order."""

    id: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                    description="Unique within the tenant: a letter or digit, then letters, digits, '_', '.' or "
                                "'-'.")
    name: str = Field(..., min_length=1, description="Its name, for the agent to read; also matched against the "
                                                     "customer's words.")
    trigger_intents: list[str] = Field(default_factory=list, description=(
        "Intents (labels of the tenant's intents) for which it applies; without a confident intent the playbook "
        "whose name, description and intents read closest to the customer's turns applies."))
    description: str = Field("", description="The issue it is for and how it goes; matched against the "
                                             "customer's words.")
    steps: list[Step] = Field(..., min_length=1, description="The steps in order; at least one.")
    escalate_when: list[str] = Field(default_factory=list, description=(
        "Conditions in words under which the thread goes to a supervisor or specialist, e.g. \"customer says a "
        "SIM swap happened that they didn't request\"; a customer sentence close in meaning to one triggers "
        "escalation advice."))

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "sim-swap-lost-phone", "name": "Lost or stolen phone and SIM swap",
        "trigger_intents": ["lost_stolen_phone", "sim_swap"],
        "description": "The customer's phone is lost or stolen: bar the SIM, verify the account holder, then "
                       "issue a replacement SIM.",
        "steps": [
            {"id": "bar_sim", "action": "bar_sim", "title": "Bar the SIM if the phone is lost or stolen",
             "description": "Barring takes effect within 15 minutes and keeps the number on the account.",
             "cues": ["barred your SIM", "bar the SIM"]},
            {"id": "verify_identity", "action": "verify_identity",
             "title": "Verify the account holder with PIN and one-time code",
             "cues": ["account PIN", "one-time code"]},
            {"id": "issue_replacement", "action": "order_replacement_sim", "title": "Order the replacement SIM",
             "preconditions": ["bar_sim", "verify_identity"], "cues": ["replacement SIM is on its way"]}],
        "escalate_when": ["customer says a SIM swap happened that they didn't request"]}]})

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
