"""Learned actions beside the playbook's: one list of next-best actions for the agent.

A learned action (``copilot.history``) that is a step the playbook still has to do, or advice already given,
is that action: its confidence rises (the two are combined as independent evidence, 1 - (1 - a)(1 - b)) and
its reason says how often agents did it next. Any other learned action joins the list as kind ``learned``,
titled as the tenant's playbooks title a step of that action, else by its name's words.
"""

from __future__ import annotations

from collections.abc import Sequence

from copilot.history import LearnedAction
from copilot.nextaction_contract import NextAction, PlaybookProgress
from copilot.playbooks import Playbook


def done_labels(playbook: Playbook | None, progress: PlaybookProgress | None,
                done_actions: Sequence[str]) -> list[tuple[int | None, str]]:
    """The actions a thread has done, as history labels them (step id and action), with their messages."""
    steps = {s.id: s for s in playbook.steps} if playbook is not None else {}
    done: list[tuple[int | None, str]] = []
    for step in progress.done if progress is not None else []:
        done += [(step.message_index, step.step_id), (step.message_index, steps[step.step_id].action)]
    return done + [(None, label) for label in done_actions]


def with_learned(actions: Sequence[NextAction], learned: Sequence[LearnedAction],
                 playbooks: Sequence[Playbook]) -> list[NextAction]:
    """``actions`` with the learned ones merged in or added."""
    merged = list(actions)
    for item in learned:
        same = [i for i, a in enumerate(merged) if item.action in (a.action, a.step_id) and a.kind != "learned"]
        if same:  # a shared action (inform_customer): the step ready to do, then the surest
            best = max(same, key=lambda i: (merged[i].preconditions_met, merged[i].confidence))
            action = merged[best]
            merged[best] = action.model_copy(update={
                "confidence": round(1 - (1 - action.confidence) * (1 - item.confidence), 3),
                "reason": f"{action.reason} {item.reason}"})
            continue
        merged.append(NextAction(playbook_id=None, step_id=None, action=item.action,
                                 title=_title(item.action, playbooks), reason=item.reason, preconditions_met=True,
                                 blocked_by=[], kind="learned", confidence=item.confidence))
    return merged


def _title(label: str, playbooks: Sequence[Playbook]) -> str:
    step = next((s for p in playbooks for s in p.steps if label in (s.id, s.action) and s.title), None)
    if step is not None:
        return step.title
    words = label.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]
