"""The vector index checked against the registry, its source of truth.

Three ways the two can disagree, per kind of chunk:

- orphans: vectors no live chunk refers to. A crash mid-ingest leaves them (the vectors of a version staged but never
  committed, or of the version just replaced and not deleted yet). Retrieval ignores them; they only take space.
- missing: live chunks without a vector (a store that lost writes, an index restored from an older copy). Dense
  retrieval never finds them, lexical still does.
- unreachable: vectors the index lists and counts but no query reaches. Chroma writes its HNSW graph to files only
  every ``hnsw:sync_threshold`` additions, replays its log for the rest and then purges that log: when those files
  are lost or older than the log (a power cut, a restored backup), ``get`` and ``count`` still report every id while
  queries return only what the graph holds. Counting ids cannot see it, so a query as large as the collection does.

``Ingestor.repair`` mends all three from the registry: orphans are deleted, missing chunks embedded again, and a kind
whose graph lost vectors is rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from knowledge.documents import SEARCHABLE_KINDS
from knowledge.registry import ChunkRecord
from knowledge.vectors import VectorIndex


@dataclass(frozen=True)
class KindCheck:
    """One kind of one tenant: the registry's live chunks against the vectors of the index."""

    kind: str
    chunks: int                # live chunks in the registry
    vectors: int               # ids the index lists
    reachable: int             # vectors a query can return
    missing: frozenset[str]    # live chunks without a vector
    orphans: frozenset[str]    # vectors of no live chunk

    @property
    def unreachable(self) -> int:
        """Vectors no query reaches, beyond what an intact graph misses (HNSW search is approximate: a query as
        large as the collection left 1 of 1,100 out of a graph just rebuilt); a lost graph leaves out nearly all."""
        missed = self.vectors - self.reachable
        return missed if missed > max(2, self.vectors // 100) else 0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.orphans and not self.unreachable

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind, "chunks": self.chunks, "vectors": self.vectors, "reachable": self.reachable,
                "missing": len(self.missing), "orphans": len(self.orphans), "unreachable": self.unreachable,
                "ok": self.ok}


@dataclass(frozen=True)
class IndexCheck:
    """A tenant's vector index against its registry, kind by kind."""

    tenant: str
    kinds: tuple[KindCheck, ...]

    @property
    def ok(self) -> bool:
        return all(kind.ok for kind in self.kinds)

    def as_json(self) -> dict[str, object]:
        return {"tenant": self.tenant, "ok": self.ok, "kinds": [kind.as_json() for kind in self.kinds]}


def check_index(vectors: VectorIndex, tenant: str, rows: Sequence[ChunkRecord]) -> IndexCheck:
    """Compare the index with ``rows``, the tenant's live chunks as the registry holds them.

    Costs one id listing and one query per kind: about 0.1 s each at 20k vectors.
    """
    # any unit vector will do: the query asks for as many neighbours as the collection has ids
    probe = np.full(vectors.dimension, 1.0 / np.sqrt(vectors.dimension), dtype=np.float32)
    kinds = []
    for kind in (k.value for k in SEARCHABLE_KINDS):
        live = {row.chunk_id for row in rows if row.kind == kind}
        stored = vectors.ids(tenant, kind)
        reachable = len(vectors.query(tenant, kind, probe, len(stored))) if stored else 0
        kinds.append(KindCheck(kind, len(live), len(stored), reachable, frozenset(live - stored),
                               frozenset(stored - live)))
    return IndexCheck(tenant, tuple(kinds))
