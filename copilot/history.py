"""Learned next-best actions: what agents did next at the most similar moments of the tenant's past threads.

A tenant's labelled history is past threads whose agent, bot or system messages carry the action taken with
them (``copilot.labelled_threads``). Every labelled action is an example, the state before it and the action.
A state is what the agent saw then: the thread's opening customer turns (its topic), the customer's last turn,
the last agent, bot or system message, and the actions done so far. The texts are embedded; the last action
and the set of actions done are one-hot and multi-hot over the history's labels. The parts, each of unit
length and weighted, side by side and normalised, make one vector: the dot product of two states is their
similarity.

At request time the k nearest past states, at most one per past thread, vote for what came next, each with its
similarity. An action the thread has done already is left out, unless the neighbour had done it too before
doing it again (agents repeat some actions: a second code, another booking). A live thread's messages carry no
labels: the actions it has done are those the playbook found or the console reported, and those of the past
messages its agent messages read most like (``MESSAGE_MIN_SIMILARITY``): agent and bot messages are compared
with agent and bot messages, system notes with system notes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from copilot.conversation import Role, Thread
from copilot.errors import InvalidInput
from copilot.labelled_threads import LabelledThread
from copilot.ports import Embedder, Matrix, Vector

K = 10  # past threads that vote
MIN_VOTES = 2  # a learned action that fewer of them took is an anecdote, not a habit
# A past state less similar than this to the thread's does not vote for a live thread. On the sample brand's
# history, with each thread's own states left out, a past state's next action is the same as the state's for
# 114 of 159 pairs at 0.6 or more, 116 of 251 from 0.45 to 0.6, 26 of 148 from 0.4 to 0.45, 22 of 244 from 0.35
# to 0.4 and 1% under 0.3.
NEIGHBOUR_MIN_SIMILARITY = 0.4
# An agent message of a live thread whose similarity to a labelled past message reaches this did the same
# actions. On the sample brand's history (samples/brightwave/past-threads.history.jsonl), with each thread's own
# messages left out, the nearest labelled message has the same first action for 69 of 71 messages at 0.75 or
# more, 12 of 13 from 0.7 to 0.75, 10 of 14 from 0.6 to 0.7 and 9 of 20 under 0.6.
MESSAGE_MIN_SIMILARITY = 0.7
TOPIC_WORDS = 6  # the opening customer turns are the topic until they hold this many words
_BATCH = 512  # states compared with the history at once: 512 x 30k similarities is 60 MB
# vectors of live threads' texts kept between requests: a console asks again after every message, and the
# thread's earlier messages are the same (each is 1.5 KB)
_SEEN_TEXTS = 4096


@dataclass(frozen=True)
class StateWeights:
    """How much each part of a state counts in its similarity to another. Chosen on a development split of
    STAR's seen tasks (``scripts/history_nba.py --tune``): the last agent or system message counts most (top-1
    0.670 with it at 1, 0.690 at 2); the last action, which that message mostly says already, least (0.664 at 2,
    0.707 at 0.25 with the message at 2)."""

    topic: float = 0.5  # the opening customer turns: what the thread is about
    customer: float = 1.0  # the customer's last turn
    context: float = 2.0  # the last agent, bot or system message (a query result, a code sent)
    last: float = 0.25  # the last action done
    done: float = 0.5  # every action done so far


@dataclass(frozen=True)
class HistoryState:
    """What the agent saw before an action."""

    topic: str = ""  # the thread's opening customer turns (until they say a few words)
    customer: str = ""  # the customer's last turn
    context: str = ""  # the last agent, bot or system message
    done: tuple[str, ...] = ()  # the actions done so far, oldest first


@dataclass(frozen=True)
class HistoryExample:
    """A labelled action and the state before it; ``thread`` numbers its past thread (one vote per thread)."""

    state: HistoryState
    action: str
    thread: int


@dataclass(frozen=True)
class LearnedAction:
    """An action agents took next in the most similar past threads."""

    action: str
    confidence: float  # its share of the similarity-weighted votes, times their mean similarity
    votes: int  # how many of the neighbours took it
    neighbours: int  # how many voted
    reason: str


class _Reader:
    """Reads a thread message by message and says the state at each point."""

    def __init__(self) -> None:
        self.topic: list[str] = []
        self.customer: list[str] = []
        self.context = ""
        self.done: list[str] = []
        self._customer_open = self._topic_open = True

    def read(self, role: Role, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if role == Role.CUSTOMER:
            if not self._customer_open:
                self.customer, self._customer_open = [], True
            self.customer.append(text)
            if self._topic_open:
                self.topic.append(text)
        else:
            self.context, self._customer_open = text, False
            # "Hi" says nothing of the topic: the opening turns count until they hold a few words
            self._topic_open = len(" ".join(self.topic).split()) < TOPIC_WORDS

    def state(self) -> HistoryState:
        return HistoryState(" ".join(self.topic), " ".join(self.customer), self.context, tuple(self.done))


def _read(thread: Thread, done: Mapping[int | None, list[str]]) -> HistoryState:
    """A live thread's state, with the actions ``done`` by each message (None: the console's, counted last)."""
    reader = _Reader()
    for index, message in enumerate(thread.messages):
        reader.read(message.role, message.text)
        reader.done += done.get(index, [])
    reader.done += done.get(None, [])
    return reader.state()


def history_examples(threads: Sequence[LabelledThread]) -> list[HistoryExample]:
    """One example per labelled action; several actions of one message follow each other."""
    examples = []
    for number, thread in enumerate(threads):
        reader = _Reader()
        for message in thread.messages:
            for action in message.actions:
                examples.append(HistoryExample(reader.state(), action, number))
                reader.done.append(action)
            reader.read(message.role, message.text)
    return examples


class ActionHistory:
    """Nearest neighbours over the states of a tenant's labelled past threads, voting for the next action."""

    def __init__(self, examples: Sequence[HistoryExample], embedder: Embedder, *, k: int = K,
                 weights: StateWeights | None = None, thread_ids: Sequence[str | None] = (),
                 messages: Sequence[tuple[Role, str, tuple[str, ...]]] = ()) -> None:
        """Args:
            examples: the labelled actions with their states.
            embedder: embeds the states' texts (and the live thread's, at request time).
            k: how many past threads vote.
            weights: the parts' weights in a state's similarity.
            thread_ids: the id of each past thread, by ``HistoryExample.thread``, for the reasons.
            messages: labelled past messages (role, text, actions), to tell what a live thread's messages did.
        """
        if not examples:
            raise InvalidInput("a learned next action needs at least one labelled action in the history")
        if k < 1:
            raise InvalidInput(f"k must be at least 1, not {k}")
        self.embedder = embedder
        self.k = k
        self.weights = weights or StateWeights()
        self.thread_ids = list(thread_ids)
        self.labels = sorted({e.action for e in examples} | {a for e in examples for a in e.state.done})
        self._label_index = {label: i for i, label in enumerate(self.labels)}
        self._messages = self._embed([text for _, text, _ in messages])
        # a labelled message is the context of the state after it: embedded once
        known = {text: self._messages[row] for row, (_, text, _) in enumerate(messages)}
        self._vectors = self.encode([e.state for e in examples], known)
        self._actions = [e.action for e in examples]
        self._action_ids = np.array([self._label_index[e.action] for e in examples])
        self._threads = np.array([e.thread for e in examples])
        self._repeated = np.array([e.action in e.state.done for e in examples])
        self._message_actions = [actions for _, _, actions in messages]
        self._message_system = np.array([role == Role.SYSTEM for role, _, _ in messages])
        self._seen: OrderedDict[str, Vector] = OrderedDict()
        self._seen_lock = threading.Lock()

    @classmethod
    def from_threads(cls, threads: Sequence[LabelledThread], embedder: Embedder, *, k: int = K,
                     weights: StateWeights | None = None) -> ActionHistory:
        messages = [(m.role, m.text.strip(), tuple(m.actions)) for t in threads for m in t.messages
                    if m.actions and m.text.strip()]
        return cls(history_examples(threads), embedder, k=k, weights=weights, thread_ids=[t.id for t in threads],
                   messages=messages)

    # -- states as vectors ---------------------------------------------------------------------------------------

    def _embed(self, texts: Sequence[str], known: Mapping[str, Vector] | None = None) -> Matrix:
        """Each distinct text embedded once (those in ``known`` not again); the empty text is the zero vector."""
        known = known or {}
        distinct = list(dict.fromkeys(t for t in texts if t))
        rows = {text: i + 1 for i, text in enumerate(distinct)}
        table = np.zeros((len(distinct) + 1, self.embedder.dimension), dtype=np.float32)
        new = [t for t in distinct if t not in known]
        if new:
            table[[rows[t] for t in new]] = self.embedder.embed_documents(new)
        for text in distinct:
            if text in known:
                table[rows[text]] = known[text]
        return table[[rows.get(t, 0) for t in texts]]

    def encode(self, states: Sequence[HistoryState], known: Mapping[str, Vector] | None = None) -> Matrix:
        """The states as unit vectors: the weighted parts side by side."""
        w = self.weights
        texts = self._embed([t for s in states for t in (s.topic, s.customer, s.context)], known)
        count = len(states)
        last = np.zeros((count, len(self.labels)), dtype=np.float32)
        done = np.zeros((count, len(self.labels)), dtype=np.float32)
        for row, state in enumerate(states):
            labels = [self._label_index[a] for a in state.done if a in self._label_index]
            if labels:
                last[row, labels[-1]] = 1.0
                done[row, labels] = 1.0
        done /= np.maximum(np.linalg.norm(done, axis=1, keepdims=True), 1e-12)
        parts = [np.sqrt(w.topic) * texts[0::3], np.sqrt(w.customer) * texts[1::3], np.sqrt(w.context) * texts[2::3],
                 np.sqrt(w.last) * last, np.sqrt(w.done) * done]
        vectors = np.hstack(parts).astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    # -- what next -----------------------------------------------------------------------------------------------

    def rank(self, states: Sequence[HistoryState], *, n: int = 3, repeats: bool = True, min_votes: int = 1,
             min_similarity: float = -1.0) -> list[list[LearnedAction]]:
        """The learned actions for each state, best first, at most ``n`` each.

        Args:
            states: what the agent sees now, one state per thread.
            n: the most actions per state.
            repeats: False leaves out every action already done; True keeps one when the neighbour that votes
                for it had done it too before doing it again.
            min_votes: the fewest neighbours that must have taken an action for it to be offered.
            min_similarity: past states less similar than this do not vote.
        """
        return self._rank(states, None, n=n, repeats=repeats, min_votes=min_votes, min_similarity=min_similarity)

    def _rank(self, states: Sequence[HistoryState], known: Mapping[str, Vector] | None, *, n: int, repeats: bool,
              min_votes: int, min_similarity: float) -> list[list[LearnedAction]]:
        if n < 1:
            raise InvalidInput(f"n must be at least 1, not {n}")
        vectors = self.encode(states, known)
        ranked = []
        for start in range(0, len(states), _BATCH):
            similarities = vectors[start : start + _BATCH] @ self._vectors.T
            for row, state in enumerate(states[start : start + _BATCH]):
                ranked.append(self._vote(similarities[row], state, n, repeats, min_votes, min_similarity))
        return ranked

    def recommend(self, thread: Thread, *, done: Iterable[tuple[int | None, str]] = (), n: int = 3,
                  min_votes: int = MIN_VOTES) -> list[LearnedAction]:
        """The learned actions for a live thread.

        Args:
            thread: the conversation so far.
            done: the actions known done, each with the index of the message that did it (None when the console
                reported it: it counts as the latest).
            n: the most actions.
            min_votes: the fewest neighbours that must have taken an action.
        """
        # the thread's texts in one call of the model: its messages (what they did) and the state's parts
        plain = _read(thread, {})
        texts = list(dict.fromkeys(t for t in [*(m.text.strip() for m in thread.messages if m.role != Role.CUSTOMER),
                                                plain.topic, plain.customer, plain.context] if t))
        known = self._vectors_of(texts)
        return self._rank([self.state_of(thread, done, known)], known, n=n, repeats=True, min_votes=min_votes,
                          min_similarity=NEIGHBOUR_MIN_SIMILARITY)[0]

    def _vectors_of(self, texts: Sequence[str]) -> dict[str, Vector]:
        """The texts' vectors, embedding in one call only those not seen in recent requests."""
        with self._seen_lock:
            known = {t: self._seen[t] for t in texts if t in self._seen}
        new = [t for t in texts if t not in known]
        if new:
            known.update(zip(new, self.embedder.embed_documents(new), strict=True))
        with self._seen_lock:
            for text in texts:
                self._seen[text] = known[text]
                self._seen.move_to_end(text)
            while len(self._seen) > _SEEN_TEXTS:
                self._seen.popitem(last=False)
        return known

    def state_of(self, thread: Thread, done: Iterable[tuple[int | None, str]] = (),
                 known: Mapping[str, Vector] | None = None) -> HistoryState:
        """The state of a live thread: its texts, and the actions done, in the order of their messages.

        Args:
            thread: the conversation so far.
            done: the actions known done, with their messages (as ``recommend`` takes them).
            known: vectors of texts of the thread, embedded already.
        """
        by_message: dict[int | None, list[str]] = {}
        for index, label in done:
            by_message.setdefault(index, []).append(label)
        for index, labels in self._did(thread, known).items():
            by_message.setdefault(index, [])
            by_message[index] += [a for a in labels if a not in by_message[index]]
        return _read(thread, by_message)

    def _did(self, thread: Thread, known: Mapping[str, Vector] | None) -> dict[int | None, list[str]]:
        """The actions of the agent, bot and system messages, from the labelled past messages they read like."""
        spoken = [(i, m.role, m.text.strip()) for i, m in enumerate(thread.messages) if m.role != Role.CUSTOMER
                  and m.text.strip()]
        if not spoken or not len(self._messages):
            return {}
        similarities = self._embed([t for _, _, t in spoken], known) @ self._messages.T
        # a system note ("Chat started from https://...") is no agent's doing, and the other way round
        other_side = np.array([[role == Role.SYSTEM] for _, role, _ in spoken]) != self._message_system[None, :]
        similarities[other_side] = -1.0
        best = similarities.argmax(axis=1)
        return {index: list(self._message_actions[best[row]]) for row, (index, _, _) in enumerate(spoken)
                if similarities[row, best[row]] >= MESSAGE_MIN_SIMILARITY}

    def _vote(self, similarities: np.ndarray, state: HistoryState, n: int, repeats: bool,
              min_votes: int, min_similarity: float) -> list[LearnedAction]:
        done = [self._label_index[a] for a in state.done if a in self._label_index]
        allowed = ~np.isin(self._action_ids, done)
        if repeats:
            allowed |= self._repeated
        scores = np.where(allowed & (similarities >= min_similarity), similarities, -np.inf)
        neighbours = self._nearest(scores)
        if not neighbours:
            return []
        weights: dict[str, float] = {}
        votes: dict[str, list[int]] = {}
        for i in neighbours:
            action = self._actions[i]
            weights[action] = weights.get(action, 0.0) + max(float(scores[i]), 0.0)
            votes.setdefault(action, []).append(i)
        total = sum(weights.values()) or 1.0
        closeness = min(1.0, max(0.0, float(np.mean([scores[i] for i in neighbours]))))
        learned = []
        for action in sorted(weights, key=lambda a: (-weights[a], -len(votes[a]))):
            if len(votes[action]) < min_votes:
                continue
            learned.append(LearnedAction(action=action, confidence=round(weights[action] / total * closeness, 3),
                                         votes=len(votes[action]), neighbours=len(neighbours),
                                         reason=self._reason(votes[action], len(neighbours), scores)))
        return learned[:n]

    def _nearest(self, scores: np.ndarray) -> list[int]:
        """The best example of each of the k most similar past threads, most similar first."""
        finite = int(np.isfinite(scores).sum())
        take = min(finite, self.k * 8)
        while True:
            top = np.argpartition(-scores, take - 1)[:take] if 0 < take < len(scores) else np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")]
            chosen: list[int] = []
            seen: set[int] = set()
            for i in top:
                if not np.isfinite(scores[i]) or int(self._threads[i]) in seen:
                    continue
                seen.add(int(self._threads[i]))
                chosen.append(int(i))
                if len(chosen) == self.k:
                    return chosen
            if take >= finite:
                return chosen
            take = min(finite, take * 4)

    def _reason(self, voters: list[int], neighbours: int, scores: np.ndarray) -> str:
        closest = voters[0]
        thread = int(self._threads[closest])
        name = self.thread_ids[thread] if thread < len(self.thread_ids) else None
        cited = f" (closest: {name}, similarity {float(scores[closest]):.2f})" if name else ""
        return f"Agents did this next in {len(voters)} of the {neighbours} most similar past threads{cited}."
