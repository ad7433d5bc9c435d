"""Measures the learned next-best action (copilot.history.ActionHistory) on STAR when the tenant has history.

The "tenant has labelled history" case is STAR's seen tasks: each task's dialogues (a dialogue of several
tasks goes with its set of tasks) are split 80/20 with a seeded shuffle; the 80% are the labelled history,
and every wizard action of the 20% is predicted from the state before it. Beside it, the bigram baseline of
evals/benchmarks/star.py, fitted on the same 80%. Figures: top-1 and top-3 over all test actions.

With ``--tune``, the 80% is split 80/20 again and a small grid of k and state weights is scored on that
development part (the test part is not looked at): each weight of ``StateWeights`` left out, halved and doubled,
and k halved and doubled. The defaults came from such runs.

Usage: .venv/bin/python scripts/history_nba.py [../shared/datasets/star] [--seed 0] [--tune]
       [--cache /tmp/star-embeddings.npz]   (embeddings of all STAR texts take minutes; never cache in the repo)
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from copilot.actionrank import FREE_TEXT, ActionExample
from copilot.history import TOPIC_WORDS, ActionHistory, HistoryExample, HistoryState, K, StateWeights
from copilot.ports import Embedder, Matrix, Vector
from copilot.settings import Settings
from evals.benchmarks.star import BigramBaseline, Dialogue, load
from knowledge.embeddings import embedder_from_settings

REPO = Path(__file__).resolve().parent.parent


class CachedEmbedder:
    """Embeds each distinct text once, and keeps the vectors in a file outside the repository if asked."""

    def __init__(self, embedder: Embedder, path: Path | None) -> None:
        self._embedder = embedder
        self._path = path
        self._vectors: dict[str, Vector] = {}
        if path is not None and path.is_file():
            saved = np.load(path, allow_pickle=False)
            texts = json.loads(saved["texts"].tobytes().decode("utf-8"))
            self._vectors = dict(zip(texts, saved["vectors"], strict=True))

    @property
    def name(self) -> str:
        return self._embedder.name

    @property
    def dimension(self) -> int:
        return self._embedder.dimension

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        new = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if new:
            started = time.perf_counter()
            self._vectors.update(zip(new, self._embedder.embed_documents(new), strict=True))
            print(f"  embedded {len(new)} texts in {time.perf_counter() - started:.0f} s", flush=True)
            if self._path is not None:
                packed = np.frombuffer(json.dumps(list(self._vectors)).encode("utf-8"), dtype=np.uint8)
                np.savez(self._path, texts=packed, vectors=np.stack(list(self._vectors.values())))
        return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def embed_query(self, text: str) -> Vector:
        return self.embed_documents([text])[0]


@dataclass(frozen=True)
class Case:
    """A STAR wizard action: its state as the learned recommender and as the baseline see it."""

    example: HistoryExample
    star: ActionExample


def cases(dialogue: Dialogue, number: int) -> list[Case]:
    """The dialogue's actions with the state a live thread would give: the opening customer turns as the
    topic (as copilot.history reads them), the last customer message, the last result or agent message, and
    the labelled actions done (the wizard's own free text carries none)."""
    out = []
    topic: list[str] = []
    previous = ""
    for example in dialogue.examples:
        state = example.state
        if state.customer and state.customer != previous and len(" ".join(topic).split()) < TOPIC_WORDS:
            topic.append(state.customer)
        previous = state.customer
        done = tuple(a for a in state.done if a != FREE_TEXT)
        history_state = HistoryState(" ".join(topic), state.customer, state.result or state.agent, done)
        out.append(Case(HistoryExample(history_state, example.label, number), example))
    return out


def split(dialogues: Sequence[Dialogue], share: float, seed: int) -> tuple[list[Dialogue], list[Dialogue]]:
    """Per task (set of tasks), a seeded ``1 - share`` / ``share`` split of its dialogues."""
    groups: dict[tuple[str, ...], list[Dialogue]] = defaultdict(list)
    for dialogue in dialogues:
        groups[dialogue.tasks].append(dialogue)
    rng = random.Random(seed)
    train, test = [], []
    for tasks in sorted(groups):
        group = sorted(groups[tasks], key=lambda d: d.id)
        rng.shuffle(group)
        cut = round(len(group) * share)
        test += group[:cut]
        train += group[cut:]
    return train, test


def score(history: ActionHistory, test: Sequence[Case], *, repeats: bool) -> tuple[float, float, float]:
    started = time.perf_counter()
    ranked = history.rank([c.example.state for c in test], n=3, repeats=repeats)
    per_ms = (time.perf_counter() - started) * 1000 / max(1, len(test))
    labels = [[a.action for a in r] for r in ranked]
    top1 = np.mean([bool(r) and r[0] == c.example.action for r, c in zip(labels, test, strict=True)])
    top3 = np.mean([c.example.action in r[:3] for r, c in zip(labels, test, strict=True)])
    return float(top1), float(top3), per_ms


def baseline(train: Sequence[Case], test: Sequence[Case]) -> tuple[float, float]:
    bigram = BigramBaseline([c.star for c in train])
    ranked = [bigram.rank(c.star.state) for c in test]
    top1 = np.mean([bool(r) and r[0] == c.star.label for r, c in zip(ranked, test, strict=True)])
    top3 = np.mean([c.star.label in r[:3] for r, c in zip(ranked, test, strict=True)])
    return float(top1), float(top3)


def numbered(dialogues: Sequence[Dialogue]) -> list[Case]:
    return [c for number, d in enumerate(dialogues) for c in cases(d, number)]


def tune(train_dialogues: list[Dialogue], embedder: Embedder, seed: int) -> None:
    fit, dev = split(train_dialogues, 0.2, seed + 1)
    fit_cases, dev_cases = numbered(fit), numbered(dev)
    print(f"tuning: {len(fit_cases)} history actions, {len(dev_cases)} development actions")
    print(f"  bigram baseline: top1 {baseline(fit_cases, dev_cases)[0]:.3f}")
    base = StateWeights()
    grid = [("default", base, K), ("k=5", base, 5), ("k=20", base, 20)]
    for part in ("topic", "customer", "context", "last", "done"):
        value = getattr(base, part)
        grid += [(f"{part} x{factor:g}", replace(base, **{part: value * factor}), K) for factor in (0.0, 0.5, 2.0)]
    for name, weights, k in grid:
        history = ActionHistory([c.example for c in fit_cases], embedder, k=k, weights=weights)
        top1, top3, _ = score(history, dev_cases, repeats=True)
        print(f"  {name:14s} top1 {top1:.3f} top3 {top3:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default="../shared/datasets/star")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--tune", action="store_true", help="Score a grid of settings on a development split.")
    parser.add_argument("--cache", type=Path, help="An .npz file outside the repository to keep embeddings in.")
    args = parser.parse_args()
    if args.cache is not None and REPO in args.cache.resolve().parents:
        parser.error("keep the embeddings cache outside the repository, e.g. /tmp/star-embeddings.npz")
    flows, dialogues = load(Path(args.data))
    embedder = CachedEmbedder(embedder_from_settings(Settings()), args.cache)
    train_dialogues, test_dialogues = split(dialogues, args.test_share, args.seed)
    if args.tune:
        tune(train_dialogues, embedder, args.seed)
        return
    train, test = numbered(train_dialogues), numbered(test_dialogues)
    print(f"STAR seen tasks: {len(flows)} tasks, {len(train_dialogues)} history dialogues ({len(train)} actions), "
          f"{len(test_dialogues)} test dialogues ({len(test)} actions), seed {args.seed}")
    started = time.perf_counter()
    history = ActionHistory([c.example for c in train], embedder)
    print(f"history of {len(train)} states built in {time.perf_counter() - started:.0f} s")
    unseen = np.mean([c.example.action not in set(history.labels) for c in test])
    repeated = np.mean([c.example.action in c.example.state.done for c in test])
    print(f"test actions whose label the history lacks: {unseen:.4f}; already done in the thread: {repeated:.4f}")
    embedder.embed_documents([t for c in test for t in (c.example.state.topic, c.example.state.customer,
                                                        c.example.state.context) if t])  # not in the timings
    print("model                                       top1    top3   ms/state (embeddings aside)")
    top1, top3, ms = score(history, test, repeats=True)
    print(f"learned, done left out unless repeated     {top1:.4f}  {top3:.4f}  {ms:.2f}")
    top1, top3, ms = score(history, test, repeats=False)
    print(f"learned, every done action left out        {top1:.4f}  {top3:.4f}  {ms:.2f}")
    top1, top3 = baseline(train, test)
    print(f"bigram baseline (star.py)                  {top1:.4f}  {top3:.4f}")


if __name__ == "__main__":
    main()
