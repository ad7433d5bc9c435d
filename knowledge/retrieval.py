"""Hybrid retrieval: dense (Chroma, cosine) and lexical (BM25) fused by reciprocal rank, then de-duplicated.

The query is a thread turned into the latest customer turn plus earlier turns as context. Both sides
weigh the latest turn over the context; a document-level vote from the whole candidate list then lifts
passages of the document the conversation is about, and near-duplicate passages are dropped.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from copilot.errors import InvalidInput
from copilot.ports import Embedder, Passage, RetrievalQuery
from knowledge.documents import DEFAULT_SEARCH_KINDS, Kind, embed_text
from knowledge.lexical import LexicalIndex
from knowledge.registry import ChunkRow, Registry
from knowledge.vectors import VectorIndex

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class RetrievalParams:
    """The knobs of hybrid retrieval; defaults measured on the doc2dial dev file (see README)."""

    candidates: int = 100          # per list, before fusion
    dense_context_weight: float = 0.5
    lexical_context_weight: float = 0.3
    rrf_k: int = 60
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    document_weight: float = 0.0   # lift for passages of the documents the whole candidate list favours
    duplicate_jaccard: float = 0.6


class TenantIndex:
    """The live chunks of one tenant at one knowledge version, with their BM25 index."""

    def __init__(self, version: int, rows: Sequence[ChunkRow]) -> None:
        self.version = version
        self.rows = list(rows)
        self.position = {row.chunk_id: i for i, row in enumerate(self.rows)}
        self.kinds = np.array([row.kind for row in self.rows], dtype=object)
        self.documents = np.array([row.document_id for row in self.rows], dtype=object)
        self.lexical = LexicalIndex([r.chunk_id for r in self.rows],
                                    [embed_text(r.title, r.section, r.text) for r in self.rows])

    def allowed(self, kinds: Sequence[str], tags: Sequence[str] | None,
                locale: str | None) -> npt.NDArray[np.bool_]:
        mask = np.isin(self.kinds, list(kinds))
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
                 params: RetrievalParams | None = None) -> None:
        self.registry = registry
        self.vectors = vectors
        self.embedder = embedder
        self.params = params or RetrievalParams()
        self._indexes: dict[str, TenantIndex] = {}
        self._lock = threading.Lock()

    def index(self, tenant: str) -> TenantIndex:
        """The tenant's index at its current knowledge version (rebuilt when another process changed it)."""
        version = self.registry.knowledge_version(tenant)
        current = self._indexes.get(tenant)
        if current is not None and current.version == version:
            return current
        with self._lock:
            current = self._indexes.get(tenant)
            if current is None or current.version != version:
                current = TenantIndex(version, self.registry.chunks(tenant))
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
        kinds = list(kinds or [k_.value for k_ in DEFAULT_SEARCH_KINDS])
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

        dense_scores = self._dense(tenant, index, kinds, query.text, context, allowed)
        lexical = index.lexical.scores(query.text)
        if context and p.lexical_context_weight:
            lexical = lexical + p.lexical_context_weight * index.lexical.scores(context)
        lexical = np.where(allowed, lexical, 0.0)

        fused: dict[int, float] = {}
        dense_order = sorted(dense_scores, key=lambda i: -dense_scores[i])[: p.candidates]
        for rank, i in enumerate(dense_order):
            fused[i] = fused.get(i, 0.0) + p.dense_weight / (p.rrf_k + rank + 1)
        positive = np.flatnonzero(lexical > 0)
        lexical_order = positive[np.argsort(-lexical[positive], kind="stable")][: p.candidates]
        for rank, i in enumerate(lexical_order):
            fused[int(i)] = fused.get(int(i), 0.0) + p.lexical_weight / (p.rrf_k + rank + 1)

        if p.document_weight and fused:
            votes: dict[str, float] = {}
            for i, score in fused.items():
                doc = index.documents[i]
                votes[doc] = max(votes.get(doc, 0.0), score)
            doc_rank = {d: r for r, d in enumerate(sorted(votes, key=lambda d: -votes[d]))}
            for i in fused:
                fused[i] += p.document_weight / (p.rrf_k + doc_rank[index.documents[i]] + 1)

        ranked = sorted(fused, key=lambda i: -fused[i])
        return self._select(index, ranked, fused, dense_scores, lexical, k)

    def _dense(self, tenant: str, index: TenantIndex, kinds: Sequence[str], text: str, context: str,
               allowed: npt.NDArray[np.bool_]) -> dict[int, float]:
        vector = self.embedder.embed_query(text)
        if context and self.params.dense_context_weight:
            vector = vector + self.params.dense_context_weight * self.embedder.embed_query(context)
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        scores: dict[int, float] = {}
        for kind in kinds:
            for chunk_id, similarity in self.vectors.query(tenant, kind, vector, self.params.candidates):
                position = index.position.get(chunk_id)
                if position is not None and allowed[position]:  # vectors of uncommitted versions are skipped
                    scores[position] = similarity
        return scores

    def _select(self, index: TenantIndex, ranked: Sequence[int], fused: dict[int, float],
                dense: dict[int, float], lexical: npt.NDArray[np.float32], k: int) -> list[Passage]:
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
                          "tags": list(row.tags or []), "locale": row.locale, **(row.extra or {})},
            ))
        return passages

    def _near_duplicate(self, a: set[str], b: set[str]) -> bool:
        if not a or not b:
            return False
        return len(a & b) / len(a | b) >= self.params.duplicate_jaccard
