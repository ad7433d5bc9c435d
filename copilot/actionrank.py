"""Learned next-best action over flowcharts, for tasks (flows) that training never saw.

A ``Flow`` is a task's flowchart: the actions an agent can take (label and reply template), the edges
to the next node, a start node, and pseudo nodes that are not said but decided (an API call, its
success or failure, the customer's yes or no). An ``ActionState`` is what the agent's console knows
before the next action: the actions done so far, the last customer, agent and result texts, and what
happened since the last action.

``ActionRanker`` scores every action of the flows plus the generic actions learned in training
(greetings, "anything else?", goodbyes: labels picked under many flows) with a gradient-boosted
pointwise model over task-agnostic features: where the candidate sits in the flow relative to the
actions done (successor, within three steps, the same counted in actions with the flow's decisions passed
through, reached from the query just made, rank among those not done), how well its template and
name fit the last customer, agent and result texts (embeddings), whether the result holds the
template's placeholders, the words of its name, a bigram prior over labels, the similarity of its
template to the reply predicted from the nearest training states, what chooses a branch: whether the
customer's turn reads as a yes or a no, whether the result says no, whether the query checked or booked; and,
for a thread with several flows, whether the candidate's flow was started, whether the last action was of it,
and whether the candidate is its flow's first step not done yet (STAR top-3 0.788 -> 0.793 with one model), and
how far its flow is from the flow the customer's turn fits best (0.793 -> 0.796).
Several models, each trained on its own sample of the negative rows, are averaged.

The prior and the neighbours come from training threads, so on a training state they would know its
own task, which a new task's state never does; the model would learn to trust them and fail on new
tasks. While training, both leave out every thread that shares a flow with the state. On STAR's
unseen tasks this took top-1 from 0.36 to 0.51 (the neighbours of the prototype only left out threads
of the very same set of flows, and its prior left out nothing); the branch features took it to 0.57.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from copilot.actionflow import (
    FREE_TEXT,
    ActionExample,
    ActionState,
    Branch,
    Event,
    Flow,
    FlowCandidates,
    flow_affinity,
    label_words,
    placeholders,
    progress,
    slots_filled,
)
from copilot.errors import InvalidInput
from copilot.ports import Embedder, Matrix, Vector

__all__ = ["FREE_TEXT", "MEMBERS", "ActionExample", "ActionRanker", "ActionState", "Branch", "EmbeddingCache", "Event",
           "Flow", "RankedAction", "label_words", "placeholders"]

MEMBERS = 5  # models averaged by default (ActionRanker's ``members``)
_STATE_WEIGHTS = (1.0, 0.6, 0.6)  # customer, agent, result parts of the state vector for neighbours
_CATEGORICAL = [0, 1]  # feature columns: the generic action the candidate is, the one the last action was
# the customer's answer to a yes/no question, and a result that says no: they choose the branch of a flow
_YES, _NO = "Yes, please, that's right.", "No, thanks, that's not right."
_NEGATIVE_RESULT = re.compile(r"\b(not|no|nothing|unavailable|fail\w*|sorry|cannot|can't|unable|denied|"
                              r"incorrect|invalid|error)\b", re.I)


class RankedAction(NamedTuple):
    label: str
    score: float  # the model's probability that this is the next action


class EmbeddingCache:
    """An ``Embedder`` that embeds each distinct text once and keeps it; the empty text is the zero vector."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._rows: dict[str, int] = {"": 0}
        self._matrix: Matrix = np.zeros((1, embedder.dimension), dtype=np.float32)

    @property
    def name(self) -> str:
        return self._embedder.name

    @property
    def dimension(self) -> int:
        return self._embedder.dimension

    def __len__(self) -> int:
        return len(self._rows) - 1

    def add(self, texts: Iterable[str], *, batch: int = 4096, log: Callable[[str], None] | None = None) -> None:
        """Embed the texts not seen yet, in batches (``log`` hears of each)."""
        new = list(dict.fromkeys(t for t in texts if t not in self._rows))
        for start in range(0, len(new), batch):
            chunk = new[start : start + batch]
            vectors = np.asarray(self._embedder.embed_documents(chunk), dtype=np.float32)
            for offset, text in enumerate(chunk):
                self._rows[text] = len(self._matrix) + offset
            self._matrix = np.vstack([self._matrix, vectors])
            if log is not None:
                log(f"embedded {min(start + batch, len(new))}/{len(new)} texts")

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        self.add(texts)
        return self._matrix[[self._rows[t] for t in texts]]

    def embed_query(self, text: str) -> Vector:
        return self.embed_documents([text])[0]

class ActionRanker:
    """Ranks the next action of a thread among its flows' actions and the generic ones learned in training.

    Args:
        embedder: texts to unit vectors; wrapped in an ``EmbeddingCache`` unless it is one.
        neighbours: how many training states predict the next reply (the nearest-neighbour feature).
        min_flows: a label picked under at least this many distinct flows is generic: a candidate
            everywhere, with its most common text as template; a word of action names used by at least
            this many flows is a name feature.
        state_dims: neighbours are searched among the training states projected on their first
            ``state_dims`` principal directions (256 of 1152 kept the predicted reply at cosine 0.99 on
            STAR, for a fifth of the work).
        negatives: the share of negative candidate rows the model trains on (all positive ones): most
            candidates are plainly wrong, and training time follows the rows.
        relative: also give the model each candidate's similarities and bigram prior relative to the best
            candidate of its state (the difference and the rank): a pointwise model sees one row at a time.
        max_leaf_nodes, learning_rate: 15 and 0.1 generalise to unseen tasks better than 31 and 0.2 (with the
            relative features, STAR top-3 0.759 -> 0.774 over the 5 task folds; 7 and 0.05 gave 0.762).
        members: models trained, each on its own sample of negative rows with its own early-stopping split
            (seeds ``seed``, ``seed + 1``, ...); a candidate's score is their mean probability. On STAR's 5 task
            folds three gave top-3 0.793 -> 0.798 (better in each fold) for three times the training; five
            took fold 1 from 0.744 (three) to 0.747.
        threads: OpenMP threads of the gradient boosting. One by default: on a machine busy with other
            work its parallel regions wait for each other (a STAR fold trained 3.4 times slower with two
            threads than with one), and one row set per request is too small to gain from more.
    """

    def __init__(self, embedder: Embedder, *, neighbours: int = 25, min_flows: int = 5, state_dims: int = 256,
                 negatives: float = 0.3, max_iter: int = 300, learning_rate: float = 0.1, max_leaf_nodes: int = 15,
                 threads: int = 1, seed: int = 0, relative: bool = True, members: int = MEMBERS) -> None:
        if not 0.0 < negatives <= 1.0:
            raise InvalidInput("negatives must be a share in (0, 1]")
        if members < 1:
            raise InvalidInput("members must be at least 1")
        self.cache = embedder if isinstance(embedder, EmbeddingCache) else EmbeddingCache(embedder)
        self.neighbours = neighbours
        self.min_flows = min_flows
        self.state_dims = state_dims
        self.negatives = negatives
        self.members = members
        self.threads = threads
        self.seed = seed
        self.relative = relative
        self._models = [HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=learning_rate,
                                                       max_leaf_nodes=max_leaf_nodes, random_state=seed + k,
                                                       categorical_features=_CATEGORICAL)
                        for k in range(members)]
        self._projection: Matrix | None = None
        self.generic: dict[str, str] = {}
        self.name_words: list[str] = []
        # how often each action followed each other one, in all and per set of flows (to leave a set out)
        self._pairs: Counter[tuple[str, str]] = Counter()
        self._previous: Counter[str] = Counter()
        self._own: defaultdict[frozenset[str], tuple[Counter[tuple[str, str]], Counter[str]]] = defaultdict(
            lambda: (Counter(), Counter()))
        self._bank_states: Matrix = np.zeros((0, 3 * self.cache.dimension), dtype=np.float32)
        self._bank_replies: Matrix = np.zeros((0, self.cache.dimension), dtype=np.float32)
        self._bank_flows: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)  # ids of each bank state's flows
        self._bank_flow_ids: dict[frozenset[str], int] = {}
        self._candidates: dict[tuple[str, ...], FlowCandidates] = {}
        self._fitted = False

    # --- training -----------------------------------------------------------------------------

    def fit(self, examples: Sequence[ActionExample], *, log: Callable[[str], None] | None = None) -> ActionRanker:
        if not examples:
            raise InvalidInput("action ranking needs training examples")
        if any(not e.flows for e in examples):
            raise InvalidInput("every training example needs the flows of its thread")
        self._learn_vocabulary(examples)
        self._candidates.clear()
        with_text = [e for e in examples if e.text]
        self.cache.add([*(e.text for e in with_text), *self._texts([e.state for e in examples]),
                        *self._flow_texts(examples)])
        self._projection = None
        states = self._state_vectors([e.state for e in with_text])
        if states.shape[1] > self.state_dims:
            # uncentred principal directions: the projection keeps inner products, which neighbours use
            _, vectors = np.linalg.eigh(states.T @ states)
            self._projection = np.ascontiguousarray(vectors[:, -self.state_dims :], dtype=np.float32)
        self._bank_states = self._project(states)
        self._bank_replies = self.cache.embed_documents([e.text for e in with_text])
        self._bank_flow_ids = {}
        self._bank_flows = np.array([self._bank_flow_ids.setdefault(_names(e.flows), len(self._bank_flow_ids))
                                     for e in with_text], dtype=np.int64)
        if log is not None:
            log(f"action ranker: {len(examples)} examples, {len(self.generic)} generic actions, "
                f"{len(self.name_words)} name words; computing features")
        features, _ = self._features([e.state for e in examples], [e.flows for e in examples], leave_out=True)
        target = np.concatenate([np.array(self._lookup(e.flows).labels) == e.label
                                 for e in examples]).astype(np.int8)
        if target.min() == target.max():
            raise InvalidInput("action ranking needs examples whose action is among their candidates, and others")
        for k, model in enumerate(self._models):
            keep = (target == 1) | (np.random.default_rng(self.seed + k).random(len(target)) < self.negatives)
            if log is not None:
                log(f"action ranker: model {k + 1}/{len(self._models)} training on {int(keep.sum())} of "
                    f"{len(target)} candidate rows x {features.shape[1]} features")
            with threadpool_limits(self.threads, user_api="openmp"):
                model.fit(features[keep], target[keep])
        self._fitted = True
        return self

    def _learn_vocabulary(self, examples: Sequence[ActionExample]) -> None:
        flows_of: defaultdict[str, set[str]] = defaultdict(set)
        texts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._pairs, self._previous = Counter(), Counter()
        self._own.clear()
        word_flows: defaultdict[str, set[str]] = defaultdict(set)
        for example in examples:
            flows_of[example.label].update(f.name for f in example.flows)
            if example.text:
                texts[example.label][example.text] += 1
            last = example.state.done[-1] if example.state.done else ""
            own_pairs, own_previous = self._own[_names(example.flows)]
            for pairs, previous in ((self._pairs, self._previous), (own_pairs, own_previous)):
                pairs[(last, example.label)] += 1
                previous[last] += 1
            for flow in example.flows:
                for label in flow.actions:
                    for word in label_words(label).split():
                        word_flows[word].add(flow.name)
        self.generic = {label: texts[label].most_common(1)[0][0] for label, names in flows_of.items()
                        if len(names) >= self.min_flows and texts[label]}
        self.name_words = sorted(w for w, names in word_flows.items() if len(names) >= self.min_flows)

    # --- ranking ------------------------------------------------------------------------------

    def rank(self, state: ActionState, flows: Sequence[Flow]) -> list[RankedAction]:
        return self.rank_many([state], [flows])[0]

    def rank_many(self, states: Sequence[ActionState],
                  flows: Sequence[Sequence[Flow]]) -> list[list[RankedAction]]:
        """Rank for many states at once (much faster than one by one); ``flows[i]`` are state i's flows."""
        if not self._fitted:
            raise InvalidInput("the action ranker has not been trained")
        if len(states) != len(flows):
            raise InvalidInput("rank_many needs the flows of every state")
        if any(not f for f in flows):
            raise InvalidInput("ranking actions needs at least one flow")
        self.cache.add([*self._texts(states), *self._flow_texts(flows)])
        features, groups = self._features(states, flows, leave_out=False)
        scores = self._score(features)
        out = []
        for i, flow_set in enumerate(flows):
            labels = self._lookup(flow_set).labels
            mine = scores[groups[i] : groups[i + 1]]
            order = np.argsort(-mine, kind="stable")
            out.append([RankedAction(labels[j], float(mine[j])) for j in order])
        return out

    def _score(self, features: Matrix) -> npt.NDArray[np.float64]:
        """The members' mean probability that each row's candidate is the next action."""
        with threadpool_limits(self.threads, user_api="openmp"):
            return np.mean([model.predict_proba(features)[:, 1] for model in self._models], axis=0)

    # --- features -----------------------------------------------------------------------------

    def _lookup(self, flows: Sequence[Flow]) -> FlowCandidates:
        key = tuple(f.name for f in flows)
        if key not in self._candidates:
            self._candidates[key] = FlowCandidates(flows, self.generic)
        return self._candidates[key]

    @staticmethod
    def _texts(states: Iterable[ActionState]) -> list[str]:
        return [t for s in states for t in (s.customer, s.agent, s.result)]

    def _flow_texts(self, groups: Iterable[ActionExample | Sequence[Flow]]) -> list[str]:
        texts = list(self.generic.values()) + [label_words(label) for label in self.generic]
        seen: set[str] = set()
        for group in groups:
            for flow in group.flows if isinstance(group, ActionExample) else group:
                if flow.name not in seen:
                    seen.add(flow.name)
                    texts += [*flow.replies.values(), *(label_words(label) for label in flow.replies)]
        return texts

    def _state_vectors(self, states: Sequence[ActionState]) -> Matrix:
        parts = [w * self.cache.embed_documents([getattr(s, part) for s in states])
                 for w, part in zip(_STATE_WEIGHTS, ("customer", "agent", "result"), strict=True)]
        vectors = np.hstack(parts)
        return vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9)

    def _project(self, vectors: Matrix) -> Matrix:
        return vectors if self._projection is None else vectors @ self._projection

    def _predicted_replies(self, states: Sequence[ActionState], barred: npt.NDArray[np.bool_] | None) -> Matrix:
        """The similarity-weighted mean of the replies that followed the nearest training states, never
        the ``barred`` ones."""
        queries = self._project(self._state_vectors(states))
        out = np.zeros((len(states), self.cache.dimension), dtype=np.float32)
        size = len(self._bank_states)
        k = min(self.neighbours, size - 1 if barred is None else size - int(barred.sum()))
        if k < 1:
            return out
        for start in range(0, len(queries), 1024):
            sim = queries[start : start + 1024] @ self._bank_states.T
            if barred is not None:
                sim[:, barred] = -9.0
            top = _top_k(sim, k)
            weight = np.maximum(np.take_along_axis(sim, top, axis=1), 0.0) ** 3 + 1e-6
            mean = np.einsum("nk,nkd->nd", weight, self._bank_replies[top]) / weight.sum(1, keepdims=True)
            out[start : start + 1024] = mean
        return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-9)

    def _features(self, states: Sequence[ActionState], flows: Sequence[Sequence[Flow]], *,
                  leave_out: bool) -> tuple[Matrix, npt.NDArray[np.int64]]:
        """One row per (state, candidate), states in order; ``groups[i]:groups[i+1]`` are state i's rows.

        ``leave_out`` (training): the neighbours and the bigram prior of a state leave out every training
        example of a thread that shares a flow with it, as they would for a task never seen.
        """
        by_flows: defaultdict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, flow_set in enumerate(flows):
            by_flows[tuple(f.name for f in flow_set)].append(i)
        blocks: list[Matrix] = [np.zeros((0, 0), dtype=np.float32)] * len(states)
        for indices in by_flows.values():
            names = _names(flows[indices[0]])
            barred = np.isin(self._bank_flows, [i for n, i in self._bank_flow_ids.items() if n & names]) \
                if leave_out else None
            group = [states[i] for i in indices]
            block = self._block(self._lookup(flows[indices[0]]), group, self._predicted_replies(group, barred),
                                names if leave_out else frozenset())
            for row, i in enumerate(indices):
                blocks[i] = block[row]
        sizes = np.array([0] + [len(b) for b in blocks], dtype=np.int64)
        return np.vstack(blocks), np.cumsum(sizes)

    def _priors(self, lasts: Iterable[str], labels: Sequence[str],
                leave_out: frozenset[str]) -> dict[str, npt.NDArray[np.float32]]:
        """For each last action, how often each label followed it in training, leaving out the threads
        with a flow of ``leave_out``."""
        pairs: Counter[tuple[str, str]] = Counter()
        previous: Counter[str] = Counter()
        for names, (own_pairs, own_previous) in self._own.items():
            if names & leave_out:
                pairs.update(own_pairs)
                previous.update(own_previous)
        out = {}
        for last in lasts:
            total = self._previous[last] - previous[last]
            counts = [self._pairs[(last, label)] - pairs[(last, label)] for label in labels]
            out[last] = np.array(counts, dtype=np.float32) / np.float32(max(total, 1))
        return out

    def _block(self, cands: FlowCandidates, states: Sequence[ActionState], predicted: Matrix,
               leave_out: frozenset[str]) -> Matrix:
        """Features of every candidate for states that share one set of flows: (states, candidates, features)."""
        n, c = len(states), len(cands.labels)
        last_label = [s.done[-1] if s.done else "" for s in states]
        templates = self.cache.embed_documents(cands.templates)
        names = self.cache.embed_documents([label_words(label) for label in cands.labels])
        customer = self.cache.embed_documents([s.customer for s in states])
        agent = self.cache.embed_documents([s.agent for s in states])
        result = self.cache.embed_documents([s.result for s in states])
        priors = self._priors(set(last_label), cands.labels, leave_out)
        similar = [customer @ templates.T, result @ templates.T, agent @ templates.T, customer @ names.T,
                   result @ names.T, predicted @ templates.T]
        prior = np.stack([priors[label] for label in last_label])
        pair = [*progress(cands, states), *similar, *slots_filled(cands, states), prior,
                flow_affinity(cands, similar[0])]
        if self.relative:
            # a pointwise model sees one candidate at a time: how far each is from the best of its state
            # says what the raw similarity cannot (0.6 is high for one question and low for another)
            for values in (*similar, prior):
                pair.append(values - values.max(axis=1, keepdims=True))
                pair.append((-values).argsort(axis=1, kind="stable").argsort(axis=1).astype(np.float32))
        words = self.name_words
        static = np.hstack([
            cands.position[:, None], (cands.position >= 0)[:, None], cands.is_generic[:, None],
            cands.in_flow[:, None], cands.slots.sum(1)[:, None], cands.after_branch, cands.via_branch,
            _one_hot([set(label_words(label).split()) for label in cands.labels], words),
        ])
        since = [set(s.since) for s in states]
        per_state = np.hstack([
            np.array([[len(s.done), Event.CUSTOMER in e, Event.RESULT in e, Event.QUERY in e, Event.AGENT in e,
                       bool(s.since) and s.since[-1] == Event.RESULT, len(s.since),
                       "book" in s.query.lower(), "check" in s.query.lower(),
                       bool(s.result) and bool(_NEGATIVE_RESULT.search(s.result)), s.result == "nothing found"]
                      for s, e in zip(states, since, strict=True)], dtype=np.float32),
            _one_hot([set(label_words(label).split()) for label in last_label], words),
            customer @ self.cache.embed_documents([_YES, _NO]).T,
        ])
        # first the two categorical columns (_CATEGORICAL): which generic action the candidate and the
        # last action are, if any
        generic_id = {g: float(j) for j, g in enumerate(sorted(self.generic))}
        identity = np.stack(np.broadcast_arrays(
            np.array([generic_id.get(label, np.nan) for label in cands.labels], dtype=np.float32)[None, :],
            np.array([generic_id.get(label, np.nan) for label in last_label], dtype=np.float32)[:, None]), axis=2)
        features = np.concatenate([
            identity,
            np.stack([np.asarray(p, dtype=np.float32) for p in pair], axis=2),
            np.broadcast_to(static[None, :, :], (n, c, static.shape[1])),
            np.broadcast_to(per_state[:, None, :], (n, c, per_state.shape[1])),
        ], axis=2)
        return np.asarray(features, dtype=np.float32)

def _names(flows: Sequence[Flow]) -> frozenset[str]:
    return frozenset(f.name for f in flows)


def _one_hot(word_sets: Sequence[set[str]], vocabulary: Sequence[str]) -> npt.NDArray[np.float32]:
    return np.array([[w in words for w in vocabulary] for words in word_sets], dtype=np.float32).reshape(
        len(word_sets), len(vocabulary))


def _top_k(scores: Matrix, k: int, block: int = 64) -> npt.NDArray[np.intp]:
    """The columns of the k largest scores of each row (in no order).

    The k largest lie in the k blocks of columns with the largest maxima (any other block's maximum is
    beaten by k values), so a selection over block maxima and then over k blocks replaces a selection
    over every column, several times faster on wide rows.
    """
    rows, width = scores.shape
    if width <= 4 * k * block:
        return np.argpartition(scores, width - k, axis=1)[:, width - k :]
    pad = -width % block
    padded = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf) if pad else scores
    blocks = padded.reshape(rows, -1, block)
    best = np.argpartition(blocks.max(axis=2), blocks.shape[1] - k, axis=1)[:, -k:]
    inside = blocks[np.arange(rows)[:, None], best].reshape(rows, -1)
    pick = np.argpartition(inside, inside.shape[1] - k, axis=1)[:, -k:]
    return np.asarray(best[np.arange(rows)[:, None], pick // block] * block + pick % block)
