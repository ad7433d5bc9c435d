"""Flows (a task's flowchart read as a playbook) and what is known of a thread before its next action.

``FlowCandidates`` holds, for one set of flows, the candidate actions and everything about them that depends
on the flows alone: where each sits, which actions lead to which (pseudo nodes such as a query's outcome or
the customer's yes passed through), and the placeholders of their templates. ``progress`` and
``slots_filled`` relate a batch of states to them; ``copilot.actionrank`` turns these into features.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

FREE_TEXT = "<free text>"  # an entry of ``ActionState.done``: the agent wrote a message of their own

_PLACEHOLDER = re.compile(r"\{(\w+)")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


class Event(StrEnum):
    """What happened in a thread since the agent's last action."""

    CUSTOMER = "customer"  # the customer wrote
    AGENT = "agent"  # the agent wrote a message of their own (not an action of the flow)
    QUERY = "query"  # the agent queried a system (an API call)
    RESULT = "result"  # the system answered the query


class Branch(StrEnum):
    """What a pseudo node of a flow stands for: something decided or called, never said."""

    CALL = "call"  # a query to a system
    SUCCESS = "success"  # the query found what was asked
    FAILURE = "failure"  # it did not
    YES = "yes"  # the customer agreed
    NO = "no"  # the customer declined
    OTHER = "other"


@dataclass(frozen=True)
class Flow:
    """A task's flowchart. ``name`` identifies it (flows of one name are one task)."""

    name: str
    replies: Mapping[str, str]  # node label -> reply template ("{placeholder}" for values from results)
    edges: Mapping[str, tuple[str, ...]]  # node label -> the nodes that may come next
    start: str
    pseudo: Mapping[str, Branch] = field(default_factory=dict)  # nodes that are not actions

    @property
    def actions(self) -> list[str]:
        return [label for label in self.replies if label not in self.pseudo]

    def order(self) -> list[str]:
        """The nodes reachable from the start, breadth first."""
        seen = [self.start]
        for node in seen:
            seen += [n for n in self.edges.get(node, ()) if n not in seen]
        return seen


@dataclass(frozen=True)
class ActionState:
    """What is known before the agent's next action."""

    done: tuple[str, ...] = ()  # action labels in order; FREE_TEXT for the agent's own messages
    customer: str = ""  # the last customer message
    agent: str = ""  # the last agent message (an action's text or the agent's own)
    result: str = ""  # the last query result as text, when one came since the last action
    result_keys: frozenset[str] = frozenset()  # the field names of that result
    since: tuple[Event, ...] = ()  # what happened since the last action, in order
    query: str = ""  # the last query sent since the last action
    call: str = ""  # the flow's node of that query (a lookup or a booking), when the console knows it


@dataclass(frozen=True)
class ActionExample:
    """A recorded action: the state before it, the flows of the thread, its label and what was said."""

    state: ActionState
    flows: tuple[Flow, ...]
    label: str
    text: str = ""

def label_words(label: str) -> str:
    """``inform_bookingAvailable`` -> ``inform booking available``."""
    return _CAMEL.sub(" ", label).replace("_", " ").lower().strip()


def key(name: str) -> str:
    return _NOT_ALNUM.sub("", name.lower())


def placeholders(template: str) -> set[str]:
    return {key(p) for p in _PLACEHOLDER.findall(template)}

class FlowCandidates:
    """The candidate actions for one combination of flows, with everything that depends only on them."""

    def __init__(self, flows: Sequence[Flow], generic: Mapping[str, str]) -> None:
        replies: dict[str, str] = {}
        pseudo: dict[str, Branch] = {}
        position: dict[str, float] = {}
        for flow in flows:
            pseudo.update(flow.pseudo)
            replies.update({label: text for label, text in flow.replies.items() if label not in flow.pseudo})
            order = flow.order()
            for rank, node in enumerate(order):
                position.setdefault(node, rank / max(1, len(order)))
        self.labels = sorted(set(replies) | set(generic))
        self.templates = [replies.get(label) or generic[label] for label in self.labels]
        self.in_flow = np.array([label in replies for label in self.labels], dtype=np.float32)
        self.is_generic = np.array([label in generic for label in self.labels], dtype=np.float32)
        nodes = list(dict.fromkeys([*self.labels, *position, *pseudo,
                                    *(n for f in flows for e in f.edges.items() for n in (e[0], *e[1]))]))
        self.node = {label: i for i, label in enumerate(nodes)}
        self.cand = np.array([self.node[label] for label in self.labels])
        size = len(nodes)
        # one extra all-zero row: the successors of an unknown node (a free-text turn, another task's action)
        step = np.zeros((size + 1, size), dtype=np.float32)
        for flow in flows:
            for src, dsts in flow.edges.items():
                for dst in dsts:
                    step[self.node[src], self.node[dst]] = 1.0
        two = np.minimum(step[:, :] @ step[:size], 1.0)
        three = np.minimum(two @ step[:size], 1.0)
        self.step = step[:, self.cand]
        self.within3 = np.minimum(step + two + three, 1.0)[:, self.cand]
        self.step_full = step[:size]
        self.position = np.array([position.get(label, -1.0) for label in self.labels], dtype=np.float32)
        ordered = sorted((position[label], i) for i, label in enumerate(self.labels) if label in replies
                         and label in position)
        self.frontier = np.array([i for _, i in ordered], dtype=np.int64)
        self.after_branch = np.zeros((len(self.labels), len(Branch)), dtype=np.float32)
        for node, kind in pseudo.items():
            if node in self.node:
                column = list(Branch).index(kind)
                self.after_branch[:, column] = np.maximum(self.after_branch[:, column],
                                                          step[self.node[node], self.cand])
        # the flow as an agent lives it: pseudo nodes are passed through, not said; count the actions between
        implied = step[:size]
        is_pseudo = np.array([n in pseudo for n in nodes], dtype=bool)
        through = implied.copy()  # reachable with only pseudo nodes in between
        for _ in range(4):
            through = np.minimum(through + through[:, is_pseudo] @ implied[is_pseudo], 1.0)
        act = through * (~is_pseudo)[None, :]
        act2 = np.minimum(act @ act, 1.0)
        act3 = np.minimum(act2 @ act, 1.0)
        pad = np.zeros((1, size), dtype=np.float32)
        self.next1 = np.vstack([act, pad])[:, self.cand]
        self.next2 = np.vstack([act2, pad])[:, self.cand]
        self.next3 = np.vstack([act3, pad])[:, self.cand]
        self.after_call = np.vstack([through, pad])[:, self.cand]  # from a call node, through pseudo nodes only
        self.via_branch = np.zeros((len(self.labels), len(Branch)), dtype=np.float32)
        for node, kind in pseudo.items():
            if node in self.node:
                column = list(Branch).index(kind)
                self.via_branch[:, column] = np.maximum(self.via_branch[:, column], act[self.node[node], self.cand])
        # which flow each candidate belongs to, and the actions that name one flow alone (to tell which
        # flows a thread has started, and which one its last action was of)
        index = {label: j for j, label in enumerate(self.labels)}
        self.member = np.zeros((len(self.labels), len(flows)), dtype=np.float32)
        self.steps: list[list[int]] = []  # each flow's actions among the candidates, in flow order
        for f, flow in enumerate(flows):
            mine = [label for label in flow.actions if label in index]
            self.member[[index[label] for label in mine], f] = 1.0
            self.steps.append([index[n] for n in dict.fromkeys(flow.order() + flow.actions)
                               if n in index and n not in flow.pseudo])
        self.own_flow = {label: int(np.argmax(self.member[j])) for label, j in index.items()
                         if self.member[j].sum() == 1}
        slots = [placeholders(t) for t in self.templates]
        self.slot_column = {k: j for j, k in enumerate(sorted({k for names in slots for k in names}))}
        self.slots = np.zeros((len(self.labels), len(self.slot_column)), dtype=np.float32)
        for row, names in enumerate(slots):
            self.slots[row, [self.slot_column[k] for k in names]] = 1.0

def progress(cands: FlowCandidates, states: Sequence[ActionState]) -> list[npt.NDArray[np.float32]]:
    """Where each candidate stands relative to the actions done: (states, candidates) each."""
    n, c, unknown = len(states), len(cands.labels), len(cands.node)
    last = np.array([cands.node.get(s.done[-1], unknown) if s.done else unknown for s in states])
    counts = np.zeros((n, unknown + 1), dtype=np.float32)
    for i, s in enumerate(states):
        for label in s.done:
            counts[i, cands.node.get(label, unknown)] += 1
    counts = counts[:, :unknown]
    done_count = counts[:, cands.cand]
    not_done = done_count[:, cands.frontier] == 0
    frontier = np.full((n, c), -1.0, dtype=np.float32)  # rank among the flow's actions not done yet
    frontier[:, cands.frontier] = np.where(not_done, np.cumsum(not_done, axis=1) - 1, -1)
    after_any_done = np.minimum(counts, 1.0) @ cands.step_full[:, cands.cand] > 0
    call = np.array([cands.node.get(s.call, unknown) if s.call else unknown for s in states])
    return [cands.step[last], cands.within3[last], cands.next1[last], cands.next2[last], cands.next3[last],
            cands.after_call[call],
            after_any_done.astype(np.float32), done_count,
            (last[:, None] == cands.cand[None, :]).astype(np.float32), frontier, *flow_progress(cands, states)]


def flow_progress(cands: FlowCandidates, states: Sequence[ActionState]) -> list[npt.NDArray[np.float32]]:
    """Which of a thread's flows each candidate belongs to: one the thread has started (an action of that flow
    alone done), the one of the last such action, and whether it is its flow's first action not done yet."""
    n, c = len(states), len(cands.labels)
    started = np.zeros((n, cands.member.shape[1]), dtype=np.float32)
    current = np.zeros_like(started)
    first = np.zeros((n, c), dtype=np.float32)
    for i, s in enumerate(states):
        flows = [cands.own_flow[label] for label in s.done if label in cands.own_flow]
        started[i, flows] = 1.0
        if flows:
            current[i, flows[-1]] = 1.0
        done = set(s.done)
        for steps in cands.steps:
            ahead = next((j for j in steps if cands.labels[j] not in done), None)
            if ahead is not None:
                first[i, ahead] = 1.0
    member = cands.member.T
    single = float(cands.member.shape[1] == 1)
    return [np.minimum(started @ member, 1.0), np.minimum(current @ member, 1.0), first,
            np.full((n, c), single, dtype=np.float32)]


def flow_affinity(cands: FlowCandidates, fit: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """How far each candidate's flow is from the flow that the customer's turn fits best, given ``fit`` (states,
    candidates: the turn against each candidate's template). A flow fits as well as its best template; 0 for
    the best flow, below for the others, -1 for an action of no flow (a flow's own action can also be -1 away;
    the ``in_flow`` feature tells them apart). It tells of a second task begun mid-thread, which the actions
    done cannot."""
    member = cands.member.astype(bool)
    out = np.full(fit.shape, -1.0, dtype=np.float32)
    if not member.any():
        return out
    per_flow = np.where(member[None, :, :], fit[:, :, None], -np.inf).max(axis=1)  # (states, flows)
    best = per_flow.max(axis=1, keepdims=True)
    mine = np.where(member[None, :, :], per_flow[:, None, :], -np.inf).max(axis=2)
    np.subtract(mine, best, out=out, where=np.isfinite(mine))
    return out


def slots_filled(cands: FlowCandidates, states: Sequence[ActionState]) -> list[npt.NDArray[np.float32]]:
    """How many of each template's placeholders the last result has, their share, and how many it lacks."""
    has = np.zeros((len(states), len(cands.slot_column)), dtype=np.float32)
    for i, s in enumerate(states):
        has[i, [cands.slot_column[k] for k in map(key, s.result_keys) if k in cands.slot_column]] = 1.0
    wanted = cands.slots.sum(1)[None, :]
    matched = has @ cands.slots.T
    any_keys = np.array([bool(s.result_keys) for s in states])[:, None]
    return [matched, np.where(wanted > 0, matched / np.maximum(wanted, 1.0), -1.0).astype(np.float32),
            np.where(any_keys, wanted - matched, -1.0).astype(np.float32)]
