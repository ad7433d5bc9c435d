"""The next-best-action contract: what the engine returns for a thread, field by field.

``copilot.nextactions`` fills it from the tenant's playbooks and the customer's mood, ``copilot.history`` adds
what agents did next in the most similar past threads of the tenant's labelled history.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ActionKind = Literal["playbook_step", "learned", "escalation", "channel_switch"]
Target = Literal["voice", "supervisor", "specialist"]
Trigger = Literal["playbook_condition", "asks_for_person", "time_critical", "complaint", "negative_sentiment",
                  "worsening_sentiment", "long_thread"]


class DoneStep(BaseModel):
    """A playbook step found done, with the evidence."""

    step_id: str = Field(..., description="The playbook step found done.")
    evidence: str = Field(..., description="The sentence of the message that shows it, or the console's report.")
    message_index: int | None = Field(..., description="Index in the thread's messages of that message; null "
                                                       "when the console reported the step.")
    matched_by: Literal["cue", "similarity", "console"] = Field(
        ..., description="cue: the message holds one of the step's cues; similarity: a sentence close in meaning "
                         "to one; console: the console reported the step id or action in done_actions.")


class PlaybookProgress(BaseModel):
    """The playbook that applies to a thread and how far the thread has got through it."""

    playbook_id: str = Field(..., description="The playbook that applies to the thread.")
    name: str = Field(..., description="Its name.")
    matched_by: Literal["intent", "similarity"] = Field(
        ..., description="intent: the classifier's intent is one of its trigger intents; similarity: the "
                         "customer's turns read closest to it.")
    score: float = Field(..., description="For intent, the classifier's decision value; for similarity, the "
                                          "cosine similarity in [-1, 1]. Higher is surer.")
    done: list[DoneStep] = Field(..., description="Steps found done, in playbook order.")
    awaiting_customer: list[str] = Field(..., description="Step ids the agent asked the customer for (a code, "
                                                          "a choice) that the customer has not answered yet.")
    remaining: list[str] = Field(..., description="Step ids not done yet, in playbook order.")


class NextAction(BaseModel):
    """One thing the agent could do next: a playbook step, what agents did next in similar past threads, an
    escalation or a move to a call."""

    playbook_id: str | None = Field(..., description="The playbook of the step or of the escalation condition; "
                                                     "null for advice and learned actions that no playbook gave.")
    step_id: str | None = Field(..., description="The playbook step; null for escalation and channel advice and "
                                                 "for learned actions.")
    action: str = Field(..., description="What to do, as a machine name: the step's action, the label of a learned "
                                         "action (as the tenant's labelled history names it), or move_to_voice, "
                                         "escalate_to_supervisor, escalate_to_specialist.")
    title: str = Field(..., description="What to do, for the agent to read.")
    reason: str = Field(..., description="Why now, citing the thread, the playbook, or how often agents did it "
                                         "next in the most similar past threads.")
    preconditions_met: bool = Field(..., description="False when earlier steps must be done first.")
    blocked_by: list[str] = Field(..., description="Titles of the steps to do first, in playbook order.")
    kind: ActionKind = Field(..., description="playbook_step; learned (what agents did next in the most similar "
                                              "past threads of the tenant's labelled history, outside the playbook: "
                                              "a learned action that is a playbook step or advice raises that one's "
                                              "confidence instead); escalation (to a supervisor or specialist); or "
                                              "channel_switch (move the thread to a call).")
    confidence: float = Field(..., ge=0.0, le=1.0, description="How sure the engine is; orders the actions. "
                                                               "A ranking score, not a calibrated probability.")


class EscalationAdvice(BaseModel):
    """Advice to hand the thread to someone else or move it to a call, with the rule and evidence."""

    kind: Literal["escalation", "channel_switch"] = Field(..., description="Hand the thread to someone else, or "
                                                                           "move it to a call.")
    target: Target = Field(..., description="voice (call the customer), supervisor or specialist.")
    trigger: Trigger = Field(..., description="The rule that fired.")
    reason: str = Field(..., description="Why, citing the evidence.")
    evidence: str = Field(..., description="The customer's words (or the thread's facts) the advice rests on.")
    message_index: int | None = Field(..., description="Index in the thread's messages of the evidence; null "
                                                       "when it is about the whole thread.")
    confidence: float = Field(..., ge=0.0, le=1.0, description="How strongly the evidence points to it.")


class NextActions(BaseModel):
    """The next-best actions for a thread: playbook steps, learned actions and escalation advice, each with its
    reason."""

    actions: list[NextAction] = Field(..., description="Playbook steps, learned actions and escalation advice, best "
                                                       "first, at most n.")
    playbook: PlaybookProgress | None = Field(
        ..., description="The playbook that applies and its progress; null when none applies (then the actions "
                         "hold learned actions and escalation advice only).")
    escalation: list[EscalationAdvice] = Field(..., description="Every escalation and channel-switch advice, "
                                                                "strongest first.")
    intent: str | None = Field(..., description="The classifier's intent for the thread; null without one.")
