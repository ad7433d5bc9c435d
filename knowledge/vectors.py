"""The vector index on Chroma: one collection per tenant and kind. Only this module imports chromadb.

Chroma's default embedding function would download a model at first use, so collections are created
with no embedding function and always given vectors; telemetry is off.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from copilot.errors import IndexMismatch, ServiceUnavailable
from copilot.ports import Matrix, Vector


class VectorIndex:
    """Vectors of chunks, kept per (tenant, kind) in Chroma collections."""

    def __init__(self, *, path: Path | None = None, url: str | None = None,
                 model_name: str, dimension: int) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self._chromadb = chromadb
        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        try:
            if url:
                parsed = urlparse(url)
                self._client = chromadb.HttpClient(
                    host=parsed.hostname or "127.0.0.1", port=parsed.port or 8000,
                    ssl=parsed.scheme == "https", settings=chroma_settings,
                )
            else:
                assert path is not None
                path.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        except Exception as exc:  # connection refused, bad path: chromadb raises plain exceptions
            raise ServiceUnavailable(f"cannot open the vector store: {exc}") from exc
        self.model_name = model_name
        self.dimension = dimension
        self._collections: dict[str, Any] = {}

    @staticmethod
    def collection_name(tenant: str, kind: str) -> str:
        return f"t_{tenant}__{kind}"

    def _collection(self, tenant: str, kind: str, create: bool) -> Any | None:
        name = self.collection_name(tenant, kind)
        collection = self._collections.get(name)
        if collection is not None:
            return collection
        try:
            if create:
                collection = self._client.get_or_create_collection(
                    name, embedding_function=None,
                    metadata={"hnsw:space": "cosine", "embedding_model": self.model_name,
                              "dimension": self.dimension, "tenant": tenant, "kind": kind},
                )
            else:
                collection = self._client.get_collection(name, embedding_function=None)
        except self._chromadb.errors.NotFoundError:
            return None
        except Exception as exc:
            if "does not exist" in str(exc):
                return None
            raise ServiceUnavailable(f"vector store error: {exc}") from exc
        metadata = collection.metadata or {}
        if metadata.get("embedding_model") != self.model_name or metadata.get("dimension") != self.dimension:
            raise IndexMismatch(
                f"the index of tenant {tenant!r} ({kind}) was built with embedding model "
                f"{metadata.get('embedding_model')!r} (dimension {metadata.get('dimension')}), but "
                f"{self.model_name!r} (dimension {self.dimension}) is configured; "
                f"run `copilot knowledge reindex --tenant {tenant}`",
                tenant=tenant,
            )
        self._collections[name] = collection
        return collection

    def add(self, tenant: str, kind: str, ids: Sequence[str], vectors: Matrix,
            metadatas: Sequence[dict[str, Any]]) -> None:
        collection = self._collection(tenant, kind, create=True)
        assert collection is not None
        batch = 4000
        try:
            for start in range(0, len(ids), batch):
                collection.upsert(
                    ids=list(ids[start : start + batch]),
                    embeddings=vectors[start : start + batch],
                    metadatas=list(metadatas[start : start + batch]),
                )
        except Exception as exc:
            raise ServiceUnavailable(f"vector store write failed: {exc}") from exc

    def delete(self, tenant: str, kind: str, ids: Sequence[str]) -> None:
        collection = self._collection(tenant, kind, create=False)
        if collection is None or not ids:
            return
        try:
            for start in range(0, len(ids), 4000):
                collection.delete(ids=list(ids[start : start + 4000]))
        except Exception as exc:
            raise ServiceUnavailable(f"vector store delete failed: {exc}") from exc

    def ids(self, tenant: str, kind: str) -> set[str]:
        collection = self._collection(tenant, kind, create=False)
        if collection is None:
            return set()
        try:
            return set(collection.get(include=[])["ids"])
        except Exception as exc:
            raise ServiceUnavailable(f"vector store read failed: {exc}") from exc

    def count(self, tenant: str, kind: str) -> int:
        collection = self._collection(tenant, kind, create=False)
        return 0 if collection is None else int(collection.count())

    def query(self, tenant: str, kind: str, vector: Vector, n: int) -> list[tuple[str, float]]:
        """The ``n`` nearest chunk ids with their cosine similarity, best first."""
        collection = self._collection(tenant, kind, create=False)
        if collection is None:
            return []
        try:
            available = collection.count()
            if available == 0:
                return []
            result = collection.query(query_embeddings=[np.asarray(vector, dtype=np.float32)],
                                      n_results=min(n, available), include=["distances"])
        except Exception as exc:
            raise ServiceUnavailable(f"vector store query failed: {exc}") from exc
        ids = result["ids"][0]
        distances = (result.get("distances") or [[]])[0]
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    def drop_tenant(self, tenant: str, kinds: Sequence[str]) -> None:
        for kind in kinds:
            name = self.collection_name(tenant, kind)
            self._collections.pop(name, None)
            try:
                self._client.delete_collection(name)
            except Exception:  # absent already: nothing to drop
                continue

    def heartbeat(self) -> bool:
        try:
            self._client.heartbeat()
        except Exception:
            return False
        return True
