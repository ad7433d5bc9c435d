"""Measures the cosine distance at which knowledge-gap questions are grouped (api.analytics.GAP_DISTANCE).

Banking77 customer questions stand in for unanswered questions: a good threshold groups questions of one
intent together (purity) without splitting an intent into many groups (clusters per intent).
Usage: .venv/bin/python scripts/gap_threshold.py [../shared/datasets/banking77/train.csv] [--sample 1500]
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score

from copilot.settings import Settings
from knowledge.embeddings import embedder_from_settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default="../shared/datasets/banking77/train.csv")
    parser.add_argument("--sample", type=int, default=1500)
    parser.add_argument("--intents", type=int, default=30, help="How many intents a sample draws from.")
    args = parser.parse_args()
    with Path(args.data).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rng = random.Random(0)
    intents = rng.sample(sorted({r["category"] for r in rows}), args.intents)
    rows = [r for r in rows if r["category"] in intents]
    rows = rng.sample(rows, min(args.sample, len(rows)))
    texts, labels = [r["text"] for r in rows], [r["category"] for r in rows]
    vectors = np.asarray(embedder_from_settings(Settings()).embed_documents(texts), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    print(f"{len(texts)} questions of {len(set(labels))} intents")
    print("distance  clusters  purity  clusters/intent  ARI")
    for distance in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6):
        found = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                        distance_threshold=distance).fit_predict(vectors)
        groups: dict[int, list[str]] = defaultdict(list)
        for label, intent in zip(found, labels, strict=True):
            groups[int(label)].append(intent)
        purity = sum(Counter(g).most_common(1)[0][1] for g in groups.values()) / len(labels)
        big = {k: g for k, g in groups.items() if len(g) >= 3}
        per_intent = np.mean([len({k for k, g in big.items() if Counter(g).most_common(1)[0][0] == i}) or 1
                              for i in set(labels)])
        print(f"{distance:8.2f}  {len(groups):8d}  {purity:6.3f}  {per_intent:15.2f}  "
              f"{adjusted_rand_score(labels, found):.3f}")


if __name__ == "__main__":
    main()
