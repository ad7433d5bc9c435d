"""Hybrid retrieval: dense (Chroma, cosine) and lexical (BM25) fused by reciprocal rank, then de-duplicated.

A thread becomes three texts (``copilot.conversation.retrieval_query``): the latest customer turn, the
earlier turns as context, and the opening exchange that says what the thread is about.

- dense: one Chroma query with the latest turn's vector plus half the context's vector;
- lexical: BM25 of the latest turn plus a tenth of the context's BM25 (the context is long, so its raw
  scores are large; a small weight lets it break ties without drowning the question);
- the two rankings are fused by reciprocal rank; passages of the documents that the opening exchange is
  about (its own dense + lexical ranking, voted per document) are lifted;
- near-duplicate passages (overlapping chunks, copied paragraphs) are dropped from the top k.

Measured on the doc2dial dev file (README, "Retrieval, measured"): each step above was kept because it
raised hit@1; a learned linear reranker over cosine/BM25 features, pseudo-relevance feedback and a lift
for the passage the agent last answered from were tried and lowered it, so they are not here.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from copilot.errors import InvalidInput
from copilot.ports import Embedder, Passage, RetrievalQuery, Vector
from copilot.tokens import count_tokens, head
from knowledge.documents import DEFAULT_SEARCH_KINDS, Kind, embed_text
from knowledge.lexical import LexicalIndex, corpus_digest
from knowledge.registry import ChunkRecord, Registry
from knowledge.vectors import VectorIndex

_WORD = re.compile(r"[a-z0-9]+")
Scores = npt.NDArray[np.float32]


@dataclass(frozen=True)
class RetrievalParams:
    """The knobs of hybrid retrieval; the defaults are those measured best on the doc2dial dev file."""

    candidates: int = 100              # per ranking, before fusion
    rrf_k: int = 30
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    dense_context_weight: float = 0.5  # context vector added to the latest turn's vector
    dense_context_tokens: int = 128    # the context's newest tokens that its vector is made of (0: all of it)
    lexical_context_weight: float = 0.1
    topic_weight: float = 2.0          # lift for the documents the opening exchange is about
    topic_dense: bool = True           # the opening exchange votes by its vector too, not only by its words
    topic_tokens: int = 48             # the opening exchange's first tokens that its vector is made of (0: all)
    dense_floor: float = 0.5           # dense candidates under this share of the best similarity are left out
    duplicate_jaccard: float = 0.6     # word-set overlap above which a passage repeats one already chosen


def _order(scores: Scores, n: int) -> list[int]:
    """Positions of the ``n`` best positive scores, best first."""
    if n <= 0:
        return []
    positive = np.flatnonzero(scores > 0)
    if len(positive) > 4 * n:  # a common word matches most of a large tenant: sort only the best n of them
        values = scores[positive]
        nth_best = np.partition(values, len(values) - n)[len(values) - n]
        positive = positive[values >= nth_best]  # ties with the n-th kept: they break by position, as before
    return [int(i) for i in positive[np.argsort(-scores[positive], kind="stable")][:n]]


def _newest(turns: Sequence[str], budget: int) -> str:
    """The newest of ``turns`` (newest first) within ``budget`` tokens, the newest one cut to it when it alone is
    longer; all of them when ``budget`` is 0."""
    if budget <= 0:
        return " ".join(turns)
    kept: list[str] = []
    for turn in turns:
        cost = count_tokens(turn)
        if cost > budget:
            if not kept:
                kept.append(head(turn, budget))
            break
        kept.append(turn)
        budget -= cost
    return " ".join(kept)


def _prune(kept: Path) -> None:
    """Remove a tenant's saved indexes of earlier versions once ``kept`` is in place (a process still reading one
    keeps its memory-mapped pages until it moves on)."""
    for folder in kept.parent.iterdir():
        if folder != kept and folder.name.startswith("v") and folder.name[1:].isdigit() \
                and int(folder.name[1:]) < int(kept.name[1:]):
            shutil.rmtree(folder, ignore_errors=True)


class TenantIndex:
    """The live chunks of one tenant at one knowledge version, with their BM25 index."""

    def __init__(self, version: int, rows: Sequence[ChunkRecord], saved: Path | None = None) -> None:
        """``saved``: the folder where this version's BM25 index is kept between processes (none: built here)."""
        self.version = version
        self.rows = list(rows)
        self.position = {row.chunk_id: i for i, row in enumerate(self.rows)}
        self.kinds = np.array([row.kind for row in self.rows], dtype=object)
        self.documents = np.array([row.document_id for row in self.rows], dtype=object)
        self._kind_masks: dict[tuple[str, ...], npt.NDArray[np.bool_]] = {}
        ids = [r.chunk_id for r in self.rows]
        texts = [embed_text(r.title, r.section, r.text) for r in self.rows]
        digest = corpus_digest(ids, texts) if saved is not None else ""
        loaded = LexicalIndex.load(saved, ids, digest) if saved is not None else None
        self.lexical = loaded or LexicalIndex(ids, texts)
        self.loaded = loaded is not None
        if saved is not None and loaded is None and self.lexical.save(saved, digest):
            _prune(saved)

    def allowed(self, kinds: Sequence[str], tags: Sequence[str] | None, locale: str | None) -> npt.NDArray[np.bool_]:
        key = tuple(sorted(kinds))
        by_kind = self._kind_masks.get(key)
        if by_kind is None:  # an object-array comparison per search costs milliseconds at 100k chunks
            by_kind = self._kind_masks.setdefault(key, np.isin(self.kinds, list(key)))
        mask = by_kind.copy()
        if tags:
            wanted = set(tags)
            mask &= np.array([bool(wanted & set(r.tags or [])) for r in self.rows], dtype=bool)
        if locale:
            base = locale.split("-")[0].lower()
            mask &= np.array([(r.locale or "en").split("-")[0].lower() == base for r in self.rows], dtype=bool)
        return mask


class HybridRetriever:
    """Implements ``copilot.ports.Retriever`` over the registry, Chroma and BM25."""

    def __init__(self, registry: Registry, vectors: VectorIndex, embedder: Embedder,
                 params: RetrievalParams | None = None, saved_dir: Path | None = None) -> None:
        """``saved_dir``: where each tenant's BM25 index is saved per knowledge version (none: not saved)."""
        self.registry = registry
        self.vectors = vectors
        self.embedder = embedder
        self.params = params or RetrievalParams()
        self.saved_dir = saved_dir
        self._indexes: dict[str, TenantIndex] = {}
        self._lock = threading.Lock()

    def index(self, tenant: str) -> TenantIndex:
        """The tenant's index at its current knowledge version (rebuilt when any process changed it)."""
        version = self.registry.knowledge_version(tenant)
        current = self._indexes.get(tenant)
        if current is not None and current.version == version:
            return current
        with self._lock:
            current = self._indexes.get(tenant)
            if current is None or current.version != version:
                saved = self.saved_dir / tenant / f"v{version}" if self.saved_dir is not None else None
                current = TenantIndex(version, self.registry.chunks(tenant), saved)
                self._indexes[tenant] = current
        return current

    def search(self, tenant: str, query: RetrievalQuery | str, k: int = 5, *,
               kinds: Sequence[str] | None = None, tags: Sequence[str] | None = None,
               locale: str | None = None) -> list[Passage]:
        if isinstance(query, str):
            query = RetrievalQuery.plain(query)
        if not query.text.strip():
            raise InvalidInput("the query is empty")
        if not 1 <= k <= 100:
            raise InvalidInput(f"k must be between 1 and 100, not {k}")
        kinds = list(kinds or [kind.value for kind in DEFAULT_SEARCH_KINDS])
        unknown = [kind for kind in kinds if kind not in {x.value for x in Kind}]
        if unknown:
            raise InvalidInput(f"unknown kind(s) {unknown}; known: {[x.value for x in Kind]}")
        index = self.index(tenant)
        if not index.rows:
            return []
        allowed = index.allowed(kinds, tags, locale)
        if not allowed.any():
            return []
        p = self.params
        context = " ".join(query.context)

        fused: dict[int, float] = {}
        vectors = [self._query_vector(query.text, _newest(query.context, p.dense_context_tokens))]
        topic = query.topic.strip() if p.topic_weight else ""
        if topic and p.topic_dense:
            vectors.append(self.embedder.embed_query(_newest([topic], p.topic_tokens)))
        dense, *topic_dense = self._dense(tenant, index, kinds, vectors, allowed)  # one Chroma call per kind
        self._add_ranking(fused, self._dense_order(dense), p.dense_weight)
        lexical = self._lexical(index, query.text, allowed)
        if context and p.lexical_context_weight:
            lexical = lexical + p.lexical_context_weight * self._lexical(index, context, allowed)
        self._add_ranking(fused, _order(lexical, p.candidates), p.lexical_weight)
        if topic:
            self._lift_topic(index, topic, topic_dense[0] if topic_dense else None, allowed, fused)

        ranked = sorted(fused, key=lambda i: (-fused[i], -dense.get(i, 0.0)))
        return self._select(index, ranked, fused, dense, lexical, k)

    def _add_ranking(self, fused: dict[int, float], order: Sequence[int], weight: float) -> None:
        """Reciprocal rank fusion: a ranking adds weight / (k + rank) to each of its top candidates."""
        for rank, i in enumerate(order[: self.params.candidates]):
            fused[i] = fused.get(i, 0.0) + weight / (self.params.rrf_k + rank + 1)

    def _dense_order(self, dense: dict[int, float]) -> list[int]:
        """The dense ranking, without passages far less similar than the best one.

        In a small knowledge base every passage is somewhere in the dense list; an unrelated one there
        plus a single weak word match would outrank the clear dense winner in the fusion.
        """
        if not dense:
            return []
        floor = self.params.dense_floor * max(dense.values())
        return sorted((i for i in dense if dense[i] >= floor), key=lambda i: -dense[i])

    def _lift_topic(self, index: TenantIndex, topic: str, dense: dict[int, float] | None,
                    allowed: npt.NDArray[np.bool_], fused: dict[int, float]) -> None:
        """Lift the passages of the documents that the thread's opening exchange is about (``dense``: its
        vector's nearest passages, when it votes by its vector too)."""
        votes: dict[int, float] = {}
        if dense is not None:
            self._add_ranking(votes, self._dense_order(dense), 1.0)
        self._add_ranking(votes, _order(self._lexical(index, topic, allowed), self.params.candidates), 1.0)
        best: dict[str, float] = {}
        for i, score in votes.items():
            best[index.documents[i]] = max(best.get(index.documents[i], 0.0), score)
        rank = {doc: r for r, doc in enumerate(sorted(best, key=lambda doc: -best[doc]))}
        for i in fused:
            position = rank.get(index.documents[i])
            if position is not None:
                fused[i] += self.params.topic_weight / (self.params.rrf_k + position + 1)

    def _query_vector(self, text: str, context: str) -> Vector:
        vector = self.embedder.embed_query(text)
        if context and self.params.dense_context_weight:
            vector = vector + self.params.dense_context_weight * self.embedder.embed_query(context)
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return vector

    def _dense(self, tenant: str, index: TenantIndex, kinds: Sequence[str], vectors: Sequence[Vector],
               allowed: npt.NDArray[np.bool_]) -> list[dict[int, float]]:
        """Each vector's nearest allowed passages (position -> similarity), over all ``kinds``."""
        scores: list[dict[int, float]] = [{} for _ in vectors]
        for kind in kinds:
            for found, nearest in zip(scores, self.vectors.query_many(tenant, kind, vectors, self.params.candidates),
                                      strict=True):
                for chunk_id, similarity in nearest:
                    position = index.position.get(chunk_id)
                    if position is not None and allowed[position]:  # vectors of uncommitted versions are skipped
                        found[position] = similarity
        return scores

    @staticmethod
    def _lexical(index: TenantIndex, text: str, allowed: npt.NDArray[np.bool_]) -> Scores:
        return np.where(allowed, index.lexical.scores(text), np.float32(0.0))

    def _select(self, index: TenantIndex, ranked: Sequence[int], fused: dict[int, float],
                dense: dict[int, float], lexical: Scores, k: int) -> list[Passage]:
        chosen: list[tuple[int, set[str]]] = []
        for i in ranked:
            words = set(_WORD.findall(index.rows[i].text.lower()))
            if any(self._near_duplicate(words, other) for _, other in chosen):
                continue
            chosen.append((i, words))
            if len(chosen) == k:
                break
        passages = []
        for i, _ in chosen:
            row = index.rows[i]
            passages.append(Passage(
                chunk_id=row.chunk_id, document_id=row.document_id, title=row.title, section=row.section,
                text=row.text, score=round(fused[i], 6), source=row.source, kind=row.kind,
                metadata={"dense": round(dense.get(i, 0.0), 4), "lexical": round(float(lexical[i]), 4),
                          "tags": row.tags, "locale": row.locale, **row.extra},
            ))
        return passages

    def _near_duplicate(self, a: set[str], b: set[str]) -> bool:
        if not a or not b:
            return False
        smaller, larger = sorted((len(a), len(b)))
        if smaller / larger < self.params.duplicate_jaccard:  # the overlap is at most the smaller set
            return False
        shared = len(a & b)
        return shared / (len(a) + len(b) - shared) >= self.params.duplicate_jaccard
