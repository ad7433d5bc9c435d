"""Measures the grounded engine's confidence and its "nothing fits" threshold on doc2dial.

Questions that the knowledge can answer come from doc2dial with their own domain's documents indexed;
questions it cannot answer are the same questions asked of another domain's documents (DMV questions of
the SSA pages, and so on), where any passage offered would be unrelated. Every retrieved candidate is
labelled right when it holds the gold grounding span (``doc2dial.is_hit``), and a logistic regression of
that label on the candidate's dense similarity and its lead over the next candidate gives the confidence.
The threshold is the one that maximises F1 of "offer the top candidate" against "the top candidate is
right" over both kinds of questions; its precision, coverage and the share of unanswerable questions
that still get an offer are reported.
"""

from __future__ import annotations

import random
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from copilot.conversation import retrieval_query
from copilot.errors import InvalidInput
from copilot.ports import Embedder
from copilot.settings import Settings
from copilot.suggest import KNOWLEDGE_KINDS, Calibration, dense_margins
from evals.benchmarks.doc2dial import Case, gold_tokens, is_hit, load, read_rows, source_documents
from knowledge.base import KnowledgeBase


def _domains(path: Path) -> dict[str, str]:
    """Case id -> domain, from the file's ``domain`` column."""
    out = {row["id"]: row.get("domain", "") for row in read_rows(path)}
    if not any(out.values()):
        raise InvalidInput(f"{path} has no 'domain' column: calibration needs questions of several domains")
    return out


def run(path: Path, embedder: Embedder, log: Callable[[str], None], *, limit: int = 1500,
        seed: int = 0) -> dict[str, Any]:
    cases, documents = load(path)
    domain_of = _domains(path)
    by_domain: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        by_domain[domain_of[case.id]].append(case)
    domains = sorted(by_domain)
    if len(domains) < 2:
        raise InvalidInput("calibration needs questions of at least two domains")
    doc_domain = {case.document_id: domain_of[case.id] for case in cases}
    rng = random.Random(seed)
    sample = rng.sample(cases, min(limit, len(cases)))
    rows: list[tuple[float, float, int, bool, bool]] = []  # dense, margin, rank, right, answerable
    with tempfile.TemporaryDirectory(prefix="copilot-calibrate-") as workdir:
        settings = Settings(data_dir=Path(workdir), database_url=None, chroma_url=None,
                            _env_file=None)
        kb = KnowledgeBase(settings, embedder=embedder)
        for domain in domains:
            kb.ensure_tenant(f"calibrate-{domain}")
            docs = {t: c for t, c in documents.items() if doc_domain.get(t) == domain}
            log(f"calibrate: indexing {len(docs)} {domain} documents")
            kb.ingest_documents(f"calibrate-{domain}", source_documents(docs), by="calibration")
        for n, case in enumerate(sample, start=1):
            own = domain_of[case.id]
            foreign = rng.choice([d for d in domains if d != own])
            query = retrieval_query(case.thread)
            gold = gold_tokens(case.gold_text)
            for tenant, answerable in ((own, True), (foreign, False)):
                passages = kb.search(f"calibrate-{tenant}", query, 6, kinds=KNOWLEDGE_KINDS)
                for rank, (passage, margin) in enumerate(zip(passages, dense_margins(passages), strict=True)):
                    right = answerable and is_hit(passage.text, gold)
                    rows.append((float(passage.metadata.get("dense", 0.0)), margin, rank, right, answerable))
            if n % 250 == 0:
                log(f"calibrate: {n}/{len(sample)} questions")
    return fit(rows)


def fit(rows: list[tuple[float, float, int, bool, bool]]) -> dict[str, Any]:
    features = np.array([[d, m] for d, m, *_ in rows])
    labels = np.array([r[3] for r in rows])
    model = LogisticRegression(C=10.0).fit(features, labels)
    calibration = Calibration(intercept=float(model.intercept_[0]), dense=float(model.coef_[0][0]),
                              margin=float(model.coef_[0][1]))
    tops = [r for r in rows if r[2] == 0]
    conf = np.array([calibration.confidence(d, m) for d, m, *_ in tops])
    right = np.array([r[3] for r in tops])
    answerable = np.array([r[4] for r in tops])
    best: tuple[float, float] = (0.0, 0.5)
    for threshold in np.arange(0.05, 0.95, 0.01):
        offered = conf >= threshold
        if not offered.any():
            continue
        precision = float((right & offered).sum() / offered.sum())
        recall = float((right & offered).sum() / max(1, right.sum()))
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if f1 > best[0]:
            best = (f1, float(threshold))
    threshold = round(best[1], 2)
    offered = conf >= threshold
    # calibration check: mean predicted confidence against the observed share right, per decile
    bins = np.clip((conf * 10).astype(int), 0, 9)
    reliability = [
        {"bin": f"{b / 10:.1f}-{(b + 1) / 10:.1f}", "n": int((bins == b).sum()),
         "mean_confidence": round(float(conf[bins == b].mean()), 3),
         "share_right": round(float(right[bins == b].mean()), 3)}
        for b in range(10) if (bins == b).any()
    ]
    return {
        "calibration": {"intercept": round(calibration.intercept, 3), "dense": round(calibration.dense, 3),
                        "margin": round(calibration.margin, 3), "threshold": threshold},
        "candidates": len(rows),
        "questions": int(answerable.sum()),
        "at_threshold": {
            "precision_of_offers": round(float((right & offered).sum() / max(1, offered.sum())), 3),
            "answerable_offered": round(float(offered[answerable].mean()), 3),
            "answerable_offered_and_right": round(float((offered & right)[answerable].mean()), 3),
            "unanswerable_offered": round(float(offered[~answerable].mean()), 3),
            "f1": round(best[0], 3),
        },
        "without_threshold": {"top1_right_when_answerable": round(float(right[answerable].mean()), 3)},
        "reliability": reliability,
    }
