"""STAR next-best-action benchmark: top-1/top-3 of ``copilot.actionrank.ActionRanker`` on unseen tasks.

STAR (Mosig et al. 2020) holds Wizard-of-Oz dialogues in which the wizard (the agent) follows a task
flowchart and picks each reply from its templates, so every ``pick_suggestion`` event carries the
action label to predict. The state before it is built from what a copilot would see: the customer's and
the wizard's messages, the wizard's queries and their results. Never from ``request_suggestions`` (the
wizard's own draft of this very reply), ``ActionLabelOptions`` or the user guide's instructions.

Folds group tasks: a fold trains on the dialogues that involve none of its tasks and tests on those that
involve one, so every figure is for flowcharts the ranker never saw (a dialogue with tasks of two folds is
tested in both: ``n`` counts fold and action pairs, 55,711 for STAR's 33,468). The baseline, in the same folds,
predicts the labels that most often followed the previous wizard label in training.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.actionflow import FREE_TEXT, ActionExample, ActionState, Branch, Event, Flow
from copilot.actionrank import MEMBERS, ActionRanker, EmbeddingCache
from copilot.errors import InvalidInput
from copilot.ports import Embedder
from evals.contract import BenchmarkResult, latency_summary

# STAR's flowcharts name their decision and API nodes with these labels; a wizard never says them
PSEUDO = {"query": Branch.CALL, "query_check": Branch.CALL, "query_book": Branch.CALL,
          "query_success": Branch.SUCCESS, "available": Branch.SUCCESS, "correct": Branch.SUCCESS,
          "query_failure": Branch.FAILURE, "unavailable": Branch.FAILURE, "incorrect": Branch.FAILURE,
          "yes": Branch.YES, "no": Branch.NO, "done": Branch.OTHER, "noanswer": Branch.OTHER}
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_LATENCY_SAMPLE = 100  # single-state rank() calls timed per fold


@dataclass(frozen=True)
class Dialogue:
    id: str
    tasks: tuple[str, ...]
    examples: list[ActionExample]


def flow_from_chart(task: str, chart: dict[str, Any]) -> Flow:
    """A STAR flowchart (``replies`` templates and a ``graph`` of next nodes) as a ``Flow``."""
    replies, graph = chart.get("replies"), chart.get("graph")
    if not isinstance(replies, dict) or not isinstance(graph, dict):
        raise InvalidInput(f"the flowchart of task {task!r} needs 'replies' and 'graph' objects")
    edges = {str(a): tuple(b if isinstance(b, list) else [b]) for a, b in graph.items()}
    nodes = set(replies) | set(edges) | {n for targets in edges.values() for n in targets}
    edges.update(_implied_edges(edges, nodes, {str(k): str(v) for k, v in replies.items()}))
    start = "hello" if "hello" in nodes else next(iter(graph), next(iter(replies), ""))
    return Flow(name=task, replies={str(k): str(v) for k, v in replies.items()}, edges=edges, start=start,
                pseudo={n: kind for n, kind in PSEUDO.items() if n in nodes})


def _implied_edges(edges: dict[str, tuple[str, ...]], nodes: set[str], replies: dict[str, str]
                   ) -> dict[str, tuple[str, ...]]:
    """The edges STAR's flowcharts draw but leave out of their ``graph``: a query to its outcomes, a yes/no
    question to the answers. A chart with ``available``/``unavailable`` gives those to its check query and
    ``query_success``/``query_failure`` to its booking; without them the check query has the latter."""
    implied: dict[str, tuple[str, ...]] = {}
    targeted = {n for targets in edges.values() for n in targets}
    checked = tuple(n for n in ("available", "unavailable") if n in nodes and n not in targeted)
    outcome = tuple(n for n in ("query_success", "query_failure") if n in nodes and n not in targeted)
    if checked:
        implied["query_check"] = checked
        implied["query_book"] = outcome
    else:
        implied["query_check"] = implied["query"] = outcome
    answers = tuple(n for n in ("yes", "no", "done") if n in nodes and n not in targeted)
    for label, text in replies.items():
        if label not in edges and label not in PSEUDO and "?" in text:
            implied[label] = answers
    judged = tuple(n for n in ("correct", "incorrect", "noanswer") if n in nodes and n not in targeted)
    for query in ("query", "query_check", "query_book") if judged else ():
        for label in edges.get(query, ()):
            if label not in edges and label not in PSEUDO:
                implied[label] = judged
    return {node: targets for node, targets in implied.items() if node in nodes and node not in edges and targets}


def result_text(item: dict[str, Any] | None) -> str:
    """A query result as text: ``field words: value; ...`` (ids left out), or "nothing found"."""
    parts = []
    for key, value in (item or {}).items():
        if key in ("id", "APIName"):
            continue
        if isinstance(value, list):
            value = " ".join(map(str, value))[:200]
        parts.append(f"{_CAMEL.sub(' ', key).replace('_', ' ').lower()}: {value}")
    return "; ".join(parts) or "nothing found"


def query_text(constraints: Any) -> str:
    if not isinstance(constraints, list):
        return ""
    pairs = [(k, str(v).strip('"')) for c in constraints if isinstance(c, dict) for k, v in c.items()]
    return "; ".join(f"{_CAMEL.sub(' ', k).lower()}: {v}" for k, v in pairs)


def examples(events: Sequence[dict[str, Any]], flows: tuple[Flow, ...]) -> list[ActionExample]:
    """One example per ``pick_suggestion``, with the state a copilot would see before it."""
    out = []
    done: list[str] = []
    customer = agent = result = query = call = ""
    keys: frozenset[str] = frozenset()
    since: list[Event] = []
    for event in events:
        action, who = event.get("Action"), event.get("Agent")
        if action == "pick_suggestion":
            state = ActionState(done=tuple(done), customer=customer, agent=agent, result=result, result_keys=keys,
                                since=tuple(since), query=query, call=call)
            label, text = str(event.get("ActionLabel", "")), str(event.get("Text") or "")
            out.append(ActionExample(state=state, flows=flows, label=label, text=text))
            done.append(label)
            agent, result, query, call, keys, since = text, "", "", "", frozenset(), []
        elif action == "utter" and who == "User":
            customer = str(event.get("Text") or "")
            since.append(Event.CUSTOMER)
        elif action == "utter" and who == "Wizard":
            agent = str(event.get("Text") or "")
            done.append(FREE_TEXT)
            since = [Event.AGENT]
        elif action == "query":
            query = query_text(event.get("Constraints"))
            kind = re.search(r"request type: (\w+)", query.lower())
            call = f"query_{kind.group(1)}" if kind else "query"
            since.append(Event.QUERY)
        elif action == "return_item":
            item = event.get("Item") if isinstance(event.get("Item"), dict) else None
            result, keys = result_text(item), frozenset(k.lower() for k in item or {})
            since.append(Event.RESULT)
        # request_suggestions (the wizard's draft of this reply), instruct (the user's guide) and the
        # interface's own events are not what a copilot sees
    return out


def _dialogue_files(root: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    packed = root / "dialogues.jsonl.gz"
    if packed.is_file():
        with gzip.open(packed, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield f"{packed.name} line {number}", json.loads(line)
    elif (root / "dialogues").is_dir():
        for path in sorted((root / "dialogues").glob("*.json")):
            yield path.name, json.loads(path.read_text(encoding="utf-8"))


def load(root: Path) -> tuple[dict[str, Flow], list[Dialogue]]:
    """The flows (tasks/<task>/<task>.json) and the dialogues of their tasks (others are left out)."""
    if not root.is_dir():
        raise InvalidInput(f"no such folder: {root}")
    flows: dict[str, Flow] = {}
    for path in sorted(root.glob("tasks/*/*.json")):
        if path.stem != path.parent.name:
            continue  # responses.json and the NLU data lie beside the flowchart
        try:
            flows[path.stem] = flow_from_chart(path.stem, json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"cannot read the flowchart {path}: {exc}") from exc
    if not flows:
        raise InvalidInput(f"{root} is not in STAR format: no flowcharts tasks/<task>/<task>.json")
    dialogues = []
    where = str(root)
    try:
        for where, raw in _dialogue_files(root):
            tasks = tuple(dict.fromkeys(w["Task"] for w in raw["Scenario"]["WizardCapabilities"] if w["Task"] in flows))
            if tasks:
                dialogues.append(Dialogue(str(raw.get("DialogueID", where)), tasks,
                                          examples(raw["Events"], tuple(flows[t] for t in tasks))))
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{root} is not in STAR format ({where}): {type(exc).__name__}: {exc}") from exc
    if not dialogues:
        raise InvalidInput(f"{root} is not in STAR format: no dialogues (dialogues.jsonl.gz or dialogues/*.json) "
                           "of its tasks")
    return flows, dialogues


def task_folds(tasks: Sequence[str], folds: int, seed: int = 0) -> list[list[str]]:
    shuffled = sorted(tasks)
    random.Random(seed).shuffle(shuffled)
    return [shuffled[i::folds] for i in range(folds)]


class BigramBaseline:
    """The labels that most often followed the previous wizard label in training."""

    def __init__(self, train: Sequence[ActionExample]) -> None:
        self._next: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for example in train:
            self._next[example.state.done[-1] if example.state.done else ""][example.label] += 1

    def rank(self, state: ActionState) -> list[str]:
        return [label for label, _ in self._next[state.done[-1] if state.done else ""].most_common(3)]


@dataclass
class _Tally:
    n: int = 0
    top1: int = 0
    top3: int = 0

    def add(self, ranked: Sequence[str], label: str) -> None:
        self.n += 1
        self.top1 += bool(ranked) and ranked[0] == label
        self.top3 += label in ranked[:3]

    @staticmethod
    def scores(ranked: Sequence[str], label: str) -> dict[str, float | None]:
        """One action's scores, named as the figures."""
        return {"top1": float(bool(ranked) and ranked[0] == label), "top3": float(label in ranked[:3])}

    def figures(self) -> dict[str, float]:
        return {"top1": self.top1 / max(1, self.n), "top3": self.top3 / max(1, self.n)}


def run(data_dir: Path, embedder: Embedder, log: Callable[[str], None], *, folds: int = 5,
        holdout: Sequence[str] | None = None, seed: int = 0, members: int = MEMBERS) -> BenchmarkResult:
    """``members``: models in the ranker's ensemble (fewer train faster)."""
    flows, dialogues = load(data_dir)
    if holdout is not None:
        unknown = sorted(set(holdout) - set(flows))
        if unknown or not holdout:
            raise InvalidInput(f"unknown held-out tasks {unknown}; tasks: {', '.join(sorted(flows))}")
        splits = [list(dict.fromkeys(holdout))]
    else:
        if not 2 <= folds <= len(flows):
            raise InvalidInput(f"folds must be between 2 and the number of tasks ({len(flows)})")
        splits = task_folds(list(flows), folds, seed)
    total = sum(len(d.examples) for d in dialogues)
    log(f"star: {len(dialogues)} dialogues, {total} wizard actions, {len(flows)} tasks, {len(splits)} fold(s)")

    cache = embedder if isinstance(embedder, EmbeddingCache) else EmbeddingCache(embedder)
    started = time.perf_counter()
    texts = [t for d in dialogues for e in d.examples for t in (e.text, e.state.customer, e.state.agent,
                                                                  e.state.result)]
    texts += [t for f in flows.values() for t in f.replies.values()]
    cache.add(texts, log=lambda m: log(f"star: {m}"))
    embed_s = time.perf_counter() - started
    log(f"star: {len(cache)} distinct texts embedded in {embed_s:.0f} s")

    model, base = _Tally(), _Tally()
    latencies: list[float] = []
    base_latencies: list[float] = []
    per_task: dict[str, _Tally] = defaultdict(_Tally)
    fold_details = []
    unseen_total = 0
    cases: list[dict[str, Any]] = []
    base_cases: list[dict[str, Any]] = []
    used: set[str] = set()
    for number, held in enumerate(splits, start=1):
        began = time.perf_counter()
        held_set = set(held)
        train = [e for d in dialogues if not held_set & set(d.tasks) for e in d.examples]
        test_dialogues = [d for d in dialogues if held_set & set(d.tasks)]
        test = [e for d in test_dialogues for e in d.examples]
        if not train or not test:
            raise InvalidInput(f"fold {number} ({', '.join(held)}) has no training or no test dialogues")
        log(f"star: fold {number}/{len(splits)} holds out {', '.join(held)}: {len(train)} training and "
            f"{len(test)} test actions")
        ranker = ActionRanker(cache, seed=seed, members=members).fit(train, log=lambda m: log(f"star: {m}"))
        ranked = ranker.rank_many([e.state for e in test], [e.flows for e in test])
        timed = []
        for example in test[:_LATENCY_SAMPLE]:
            t0 = time.perf_counter()
            ranker.rank(example.state, example.flows)
            timed.append((time.perf_counter() - t0) * 1000)
        latencies += timed
        baseline = BigramBaseline(train)
        fold, fold_base = _Tally(), _Tally()
        seen = {e.label for e in train}
        unseen = sum(e.label not in seen for e in test)
        unseen_total += unseen
        position = 0
        for dialogue in test_dialogues:
            tags = [t for t in dialogue.tasks if t in held_set]
            for turn, example in enumerate(dialogue.examples):
                labels = [r.label for r in ranked[position]]
                t0 = time.perf_counter()
                guess = baseline.rank(example.state)
                base_ms = (time.perf_counter() - t0) * 1000
                base_latencies.append(base_ms)
                for tally in (model, fold, *(per_task[t] for t in tags)):
                    tally.add(labels, example.label)
                for tally in (base, fold_base):
                    tally.add(guess, example.label)
                # a dialogue with tasks of two folds is tested in both: the second gets the fold in its id
                ident = f"{dialogue.id}:{turn}"
                ident = ident if ident not in used else f"{ident}@fold{number}"
                used.add(ident)
                cases.append({"id": ident, "tags": tags, "scores": _Tally.scores(labels, example.label),
                              "latency_ms": {"rank": timed[position]} if position < len(timed) else {}})
                base_cases.append({"id": ident, "tags": tags, "scores": _Tally.scores(guess, example.label),
                                   "latency_ms": {"rank": base_ms}})
                position += 1
        figures, base_figures = fold.figures(), fold_base.figures()
        fold_details.append({"tasks": list(held), "n": fold.n, **{k: round(v, 4) for k, v in figures.items()},
                             **{f"baseline_{k}": round(v, 4) for k, v in base_figures.items()},
                             "unseen_targets": round(unseen / max(1, fold.n), 4),
                             "seconds": round(time.perf_counter() - began, 1)})
        log(f"star: fold {number}: top1 {figures['top1']:.3f} top3 {figures['top3']:.3f} (bigram "
            f"{base_figures['top1']:.3f} / {base_figures['top3']:.3f}) in {time.perf_counter() - began:.0f} s")
    details = {"folds": fold_details,
               "per_task_top1": {t: round(per_task[t].figures()["top1"], 4) for t in sorted(per_task)},
               "unseen_targets": round(unseen_total / max(1, model.n), 4),
               "embedded_texts": len(cache), "embed_s": round(embed_s, 1),
               "ranker_members": members}
    result = BenchmarkResult("star", "copilot", model.n, model.figures(), latency_summary(latencies), details,
                             cases=cases)
    result.baseline = BenchmarkResult("star", "bigram", base.n, base.figures(), latency_summary(base_latencies),
                                      cases=base_cases)
    return result
