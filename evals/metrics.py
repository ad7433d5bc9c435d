"""The metrics of an eval run: per-case scores, their aggregates and 95% bootstrap intervals.

Every metric is scored per case (``None`` where the case does not expect it) and aggregated over the cases
that have it; intervals come from resampling cases (percentile bootstrap, fixed seed), so a metric over
ten cases shows how little ten cases say. Comparisons of two runs resample the cases they share, paired.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rouge_score import rouge_scorer
from rouge_score.tokenizers import DefaultTokenizer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

BOOTSTRAP_SAMPLES = 1000
SEED = 0
MIN_PAIRED = 5  # cases both runs measured, for a difference to count as significant
# A reply sentence is supported when this share of its content words (stemmed, stop words out) is in a
# cited passage. Measured by scripts/grounding_threshold.py on doc2dial (2,000 agent sentences against
# their own document vs another of the domain, 3-span passages): best F1 0.902 at 0.55 (P 0.90, R 0.90).
SUPPORT_THRESHOLD = 0.55
MIN_CLAIM_TOKENS = 3  # shorter sentences ("Thanks, Maya.") claim nothing


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    higher_is_better: bool = True
    unit: str = ""  # "" for shares and scores in [0, 1], "ms" for latencies


def _mean(name: str, description: str) -> Metric:
    return Metric(name, description)


METRICS: dict[str, Metric] = {m.name: m for m in (
    _mean("retrieval_hit_at_k", "Share of cases whose knowledge search (the latest customer turn) finds an "
          "expected document in the top k."),
    _mean("retrieval_mrr", "Mean reciprocal rank of the first expected document in the top k (0 when absent)."),
    _mean("answer_decision", "Share of cases where the engine answered when the knowledge can answer, and held "
          "back (no suggestion, or a clarifying question) when it cannot."),
    _mean("citation_hit", "Share of answerable cases whose top suggestion cites an expected document."),
    _mean("citation_precision", "Share of the top suggestion's citations that come from an expected document and "
          "hold the supporting passage."),
    _mean("groundedness", "Share of the top suggestion's claim sentences (greeting and sign-off left out) "
          "supported by one of its cited passages (content-word overlap ≥ SUPPORT_THRESHOLD)."),
    _mean("must_contain", "Share of cases whose top suggestion holds every required fact."),
    _mean("must_not_contain", "Share of cases whose top suggestion holds none of the forbidden text."),
    _mean("reply_rougeL", "ROUGE-L F1 (stemmed) of the top suggestion against the reference reply."),
    _mean("voice_compliance", "Share of top suggestions with no violation of the tenant's voice guide."),
    _mean("channel_compliance", "Share of top suggestions whose messages fit the channel (length per message, "
          "SMS segments, no Markdown where it is not rendered)."),
    _mean("summary_rouge1", "ROUGE-1 F1 (stemmed) of the summary's abstract, best of the references."),
    _mean("summary_rouge2", "ROUGE-2 F1 (stemmed) of the summary's abstract, best of the references."),
    _mean("summary_rougeL", "ROUGE-L F1 (stemmed) of the summary's abstract, best of the references."),
    _mean("summary_fact_recall", "Share of expected facts found in the summary's key facts or abstract."),
    _mean("next_action_top1", "Share of cases whose first next-best action is the expected one."),
    _mean("next_action_top3", "Share of cases with the expected action among the first three."),
    _mean("intent_accuracy", "Share of cases whose latest customer turn gets the expected intent."),
    Metric("intent_macro_f1", "Macro-averaged F1 of the intents over the expected labels."),
    _mean("judge_faithfulness", "LLM judge (optional): the top suggestion's claims are in its cited passages; "
          "grade 1-5 as (grade - 1) / 4."),
    _mean("judge_helpfulness", "LLM judge (optional): the top suggestion answers the customer; grade 1-5 as "
          "(grade - 1) / 4."),
    Metric("suggest_p50_ms", "Median time to the suggestions.", higher_is_better=False, unit="ms"),
    Metric("suggest_p95_ms", "95th percentile time to the suggestions.", higher_is_better=False, unit="ms"),
    Metric("summary_p95_ms", "95th percentile time to the summary.", higher_is_better=False, unit="ms"),
    Metric("next_actions_p95_ms", "95th percentile time to the next-best actions.", higher_is_better=False,
           unit="ms"),
)}

_LATENCY = {"suggest_p50_ms": ("suggest", 50), "suggest_p95_ms": ("suggest", 95),
            "summary_p95_ms": ("summary", 95), "next_actions_p95_ms": ("next_actions", 95)}


def describe(name: str) -> Metric:
    """A metric of the registry, or one a benchmark reports (higher is better unless it is in ms)."""
    return METRICS.get(name) or Metric(name, name, higher_is_better=not name.endswith("_ms"),
                                       unit="ms" if name.endswith("_ms") else "")


# --- text ---------------------------------------------------------------------------------------

_tokenizer = DefaultTokenizer(use_stemmer=True)
# the tokenizer given: without one rouge-score logs through absl, which configures the root logger (DEBUG
# lines of every library on stderr)
_rouge = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=_tokenizer)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def contains(text: str, fact: str) -> bool:
    """Case- and space-insensitive containment; digits grouped with commas or spaces read the same."""
    hay, needle = normalise(text), normalise(fact)
    if needle in hay:
        return True
    squash = re.compile(r"(?<=\d)[ ,](?=\d)")
    return squash.sub("", needle) in squash.sub("", hay)


def content_tokens(text: str) -> set[str]:
    """Stemmed words without stop words (rouge-score's tokenizer and Porter stemmer)."""
    return {t for t in _tokenizer.tokenize(text) if t not in ENGLISH_STOP_WORDS}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def support(sentence: str, passages: Iterable[str]) -> float:
    """The largest share of the sentence's content words found in one passage."""
    words = content_tokens(sentence)
    if not words:
        return 1.0
    return max((len(words & content_tokens(p)) / len(words) for p in passages), default=0.0)


def groundedness(text: str, passages: Sequence[str], boilerplate: Sequence[str] = ()) -> float | None:
    """Share of claim sentences supported by a passage; greeting and sign-off (``boilerplate``) left out.
    None when the text claims nothing (a greeting alone)."""
    body = text
    for phrase in boilerplate:
        if phrase.strip():
            body = body.replace(phrase.strip(), " ")
    claims = [s for s in sentences(body) if len(content_tokens(s)) >= MIN_CLAIM_TOKENS]
    if not claims:
        return None
    return sum(support(s, passages) >= SUPPORT_THRESHOLD for s in claims) / len(claims)


def holds_passage(citation_passage: str, expected_passage: str) -> bool:
    """Whether a cited passage holds the supporting text (or is held by it: a cited sentence out of it)."""
    cited, wanted = content_tokens(citation_passage), content_tokens(expected_passage)
    if not cited or not wanted:
        return False
    overlap = len(cited & wanted)
    return overlap / len(wanted) >= 0.5 or overlap / len(cited) >= 0.8


def rouge(reference: str, candidate: str) -> dict[str, float]:
    scores = _rouge.score(reference, candidate)
    return {k: v.fmeasure for k, v in scores.items()}


def best_rouge(references: Sequence[str], candidate: str) -> dict[str, float]:
    return max((rouge(r, candidate) for r in references), key=lambda s: s["rougeL"])


# --- aggregates -----------------------------------------------------------------------------------

def _macro_f1(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Macro F1 over the expected labels (sklearn's ``f1_score(average='macro', labels=expected labels,
    zero_division=0)``), counted with numpy: the bootstrap calls it a thousand times."""
    if not pairs:
        return None
    labels = sorted({e for e, _ in pairs})
    code = {label: i for i, label in enumerate(labels)}
    expected = np.array([code[e] for e, _ in pairs])
    predicted = np.array([code.get(p, -1) for _, p in pairs])
    size = len(labels)
    true_positive = np.bincount(expected[expected == predicted], minlength=size)
    support = np.bincount(expected, minlength=size)
    claimed = np.bincount(predicted[predicted >= 0], minlength=size)
    denominator = support + claimed
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros(size), where=denominator > 0)
    return float(f1.mean())


Aggregate = Callable[[Sequence[Mapping[str, Any]]], float | None]


def aggregators(names: Iterable[str]) -> dict[str, Aggregate]:
    """name -> a function of the case records (``scores``, ``latency_ms``, ``intent``) giving the value."""
    out: dict[str, Aggregate] = {}
    for name in names:
        if name == "intent_macro_f1":
            out[name] = lambda cases: _macro_f1([(c["intent"]["expected"], c["intent"]["predicted"] or "")
                                                 for c in cases if c.get("intent")])
        elif name in _LATENCY:
            op, q = _LATENCY[name]

            def latency(cases: Sequence[Mapping[str, Any]], op: str = op, q: int = q) -> float | None:
                values = [c["latency_ms"][op] for c in cases if c.get("latency_ms", {}).get(op) is not None]
                return float(np.percentile(values, q)) if values else None
            out[name] = latency
        else:
            def mean(cases: Sequence[Mapping[str, Any]], name: str = name) -> float | None:
                values = [c["scores"][name] for c in cases if c.get("scores", {}).get(name) is not None]
                return float(np.mean(values)) if values else None
            out[name] = mean
    return out


def case_count(name: str, cases: Sequence[Mapping[str, Any]]) -> int:
    if name == "intent_macro_f1":
        return sum(1 for c in cases if c.get("intent"))
    if name in _LATENCY:
        return sum(1 for c in cases if c.get("latency_ms", {}).get(_LATENCY[name][0]) is not None)
    return sum(1 for c in cases if c.get("scores", {}).get(name) is not None)


def metric_names(cases: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metrics the cases have, in registry order, then any other score names."""
    present = {n for c in cases for n, v in c.get("scores", {}).items() if v is not None}
    if any(c.get("intent") for c in cases):
        present.add("intent_macro_f1")
    for name, (op, _) in _LATENCY.items():
        if any(c.get("latency_ms", {}).get(op) is not None for c in cases):
            present.add(name)
    ordered = [n for n in METRICS if n in present]
    return ordered + sorted(present - set(ordered))


class _Column:
    """One metric over a list of cases, computed for many resamples at once (rows of case indices)."""

    def __init__(self, name: str, cases: Sequence[Mapping[str, Any]]) -> None:
        self.name = name
        self.pairs: list[tuple[str, str]] = []
        if name == "intent_macro_f1":
            self.kind = "f1"
            self.pairs = [(c["intent"]["expected"], c["intent"]["predicted"] or "") if c.get("intent") else ("", "")
                          for c in cases]
            self.present = np.array([bool(c.get("intent")) for c in cases])
            return
        if name in _LATENCY:
            self.kind = "percentile"
            op, self.q = _LATENCY[name]
            raw = [c.get("latency_ms", {}).get(op) for c in cases]
        else:
            self.kind = "mean"
            raw = [c.get("scores", {}).get(name) for c in cases]
        self.values = np.array([np.nan if v is None else float(v) for v in raw], dtype=float)
        self.present = ~np.isnan(self.values)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """The metric of each row of case indices; NaN where no case of the row has it."""
        if self.kind == "f1":
            out = np.full(len(rows), np.nan)
            for i, row in enumerate(rows):
                pairs = [self.pairs[j] for j in row if self.present[j]]
                value = _macro_f1(pairs)
                if value is not None:
                    out[i] = value
            return out
        sample = self.values[rows]
        counts = (~np.isnan(sample)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.kind == "mean":
                return np.where(counts > 0, np.nansum(sample, axis=1) / np.maximum(counts, 1), np.nan)
            filled = np.where(np.isnan(sample), np.inf, sample)  # percentiles of the present values per row
            ordered = np.sort(filled, axis=1)
            out = np.full(len(rows), np.nan)
            for i, count in enumerate(counts):
                if count:
                    out[i] = float(np.percentile(ordered[i, :count], self.q))
            return out


def _draws(n: int, samples: int, seed: int, chunk: int = 100) -> Iterator[np.ndarray]:
    """Bootstrap resamples of n cases, ``chunk`` rows at a time (memory stays small for large benchmarks)."""
    rng = np.random.default_rng(seed)
    for start in range(0, samples, chunk):
        yield rng.integers(0, n, (min(chunk, samples - start), n))


def _interval(values: np.ndarray) -> tuple[float, float] | None:
    values = values[~np.isnan(values)]
    if not len(values):
        return None
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def aggregate(cases: Sequence[Mapping[str, Any]], *, samples: int = BOOTSTRAP_SAMPLES,
              seed: int = SEED) -> dict[str, dict[str, Any]]:
    """Every metric the cases have: value, 95% interval (percentile bootstrap over cases) and n."""
    if not cases:
        return {}
    everything = np.arange(len(cases))[None, :]
    out: dict[str, dict[str, Any]] = {}
    for name in metric_names(cases):
        column = _Column(name, cases)
        value = float(column(everything)[0])
        if np.isnan(value):
            continue
        boot = np.concatenate([column(rows) for rows in _draws(len(cases), samples, seed)])
        low, high = _interval(boot) or (value, value)
        meta = describe(name)
        out[name] = {"value": value, "ci": [low, high], "n": int(column.present.sum()),
                     "higher_is_better": meta.higher_is_better, "unit": meta.unit, "description": meta.description}
    return out


def paired_difference(name: str, a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], *,
                      samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED) -> dict[str, Any] | None:
    """B minus A over the cases both runs share (by id), with a paired bootstrap 95% interval."""
    by_id = {c["id"]: c for c in a}
    pairs = [(by_id[c["id"]], c) for c in b if c["id"] in by_id]
    if not pairs:
        return None
    left, right = _Column(name, [p[0] for p in pairs]), _Column(name, [p[1] for p in pairs])
    measured = int((left.present & right.present).sum())
    everything = np.arange(len(pairs))[None, :]
    va, vb = float(left(everything)[0]), float(right(everything)[0])
    if np.isnan(va) or np.isnan(vb):
        return None
    diffs = np.concatenate([right(rows) - left(rows) for rows in _draws(len(pairs), samples, seed)])
    interval = _interval(diffs)
    low, high = interval or (0.0, 0.0)
    # a resample of fewer than MIN_PAIRED cases is the same few cases again: no interval to speak of
    return {"a": va, "b": vb, "delta": vb - va, "ci": [low, high], "n": measured,
            "significant": measured >= MIN_PAIRED and interval is not None and (low > 0 or high < 0)}
