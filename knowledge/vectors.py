"""The vector index on Chroma: one collection per tenant and kind. Only this module imports chromadb.

Chroma's default embedding function would download a model at first use, so collections are created
with no embedding function and always given vectors; telemetry is off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import numpy as np

from copilot.errors import IndexMismatch, ServiceUnavailable
from copilot.ports import Matrix, Vector

log = logging.getLogger(__name__)
_BATCH = 4000  # ids per Chroma call
_DEFAULT_DATABASE = "default_database"
T = TypeVar("T")


def _is_gone(exc: Exception) -> bool:
    return type(exc).__name__ == "NotFoundError" or "does not exist" in str(exc)


def _server_client(chromadb: Any, url: str, settings: Any, timeout_s: float) -> Any:
    """A client of the Chroma server at ``url`` whose calls time out (chromadb's own never do: a server that
    stops answering would hold every request that searches)."""
    import httpx

    parsed = urlparse(url)
    host, port, ssl = parsed.hostname or "127.0.0.1", parsed.port or 8000, parsed.scheme == "https"
    database = parsed.path.strip("/") or _DEFAULT_DATABASE
    if database != _DEFAULT_DATABASE:
        from chromadb.config import Settings as ChromaSettings

        admin = chromadb.AdminClient(ChromaSettings(
            anonymized_telemetry=False, chroma_api_impl="chromadb.api.fastapi.FastAPI", chroma_server_host=host,
            chroma_server_http_port=port, chroma_server_ssl_enabled=ssl))
        try:
            admin.get_database(database)
        except Exception:  # missing: make it (a worker beside this one may have just made it)
            try:
                admin.create_database(database)
            except Exception as exc:
                if "exists" not in str(exc).lower():
                    raise
    client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings, database=database)
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0))
    return client


class VectorIndex:
    """Vectors of chunks, kept per (tenant, kind) in Chroma collections."""

    def __init__(self, *, path: Path | None = None, url: str | None = None,
                 model_name: str, dimension: int, timeout_s: float = 10.0) -> None:
        """``url``: a Chroma server, ``http://host:port[/database]`` (the database is made when missing; several
        deployments can share one server that way); ``timeout_s``: the most one call to that server may take."""
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self._chromadb = chromadb
        self._chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        self._path = None if url else path
        try:
            if url:
                self._client = _server_client(chromadb, url, self._chroma_settings, timeout_s)
            else:
                assert path is not None
                path.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(path), settings=self._chroma_settings)
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

    def _run(self, tenant: str, kind: str, create: bool, what: str, action: Callable[[Any], T]) -> T | None:
        """Run ``action`` on the collection (None when it does not exist and ``create`` is off).

        A handle cached before another process dropped and recreated the collection (a reindex) fails
        with "does not exist": the handle is dropped and the action retried once on a fresh one.
        """
        for attempt in (1, 2):
            collection = self._collection(tenant, kind, create=create)
            if collection is None:
                return None
            try:
                return action(collection)
            except Exception as exc:
                if attempt == 1 and _is_gone(exc):
                    self._collections.pop(self.collection_name(tenant, kind), None)
                    continue
                if what in ("write", "delete"):
                    self._reopen()
                raise ServiceUnavailable(f"vector store {what} failed: {exc}") from exc
        return None

    def _reopen(self) -> None:
        """Open the embedded store again from its files after a write failed (a full disk): chromadb 1.5.9 can
        hang this process's next large write otherwise, holding the GIL. A server needs nothing here."""
        if self._path is None:
            return
        self._collections.clear()
        with suppress(Exception):
            self._client.close()  # stops chromadb's shared system when this was its last client
        try:
            self._client = self._chromadb.PersistentClient(path=str(self._path), settings=self._chroma_settings)
        except Exception:  # the disk is still full or gone: the next call fails clearly and tries again
            log.warning("could not reopen the vector store at %s", self._path, exc_info=True)

    def add(self, tenant: str, kind: str, ids: Sequence[str], vectors: Matrix,
            metadatas: Sequence[dict[str, Any]]) -> None:
        def upsert(collection: Any) -> None:
            for start in range(0, len(ids), _BATCH):
                collection.upsert(ids=list(ids[start : start + _BATCH]), embeddings=vectors[start : start + _BATCH],
                                  metadatas=list(metadatas[start : start + _BATCH]))

        self._run(tenant, kind, True, "write", upsert)

    def delete(self, tenant: str, kind: str, ids: Sequence[str]) -> None:
        def remove(collection: Any) -> None:
            for start in range(0, len(ids), _BATCH):
                collection.delete(ids=list(ids[start : start + _BATCH]))

        if ids:
            self._run(tenant, kind, False, "delete", remove)

    def ids(self, tenant: str, kind: str) -> set[str]:
        found = self._run(tenant, kind, False, "read", lambda c: set(c.get(include=[])["ids"]))
        return found or set()

    def count(self, tenant: str, kind: str) -> int:
        return self._run(tenant, kind, False, "count", lambda c: int(c.count())) or 0

    def query(self, tenant: str, kind: str, vector: Vector, n: int) -> list[tuple[str, float]]:
        """The ``n`` nearest chunk ids with their cosine similarity, best first."""
        return self.query_many(tenant, kind, [vector], n)[0]

    def query_many(self, tenant: str, kind: str, vectors: Sequence[Vector], n: int) -> list[list[tuple[str, float]]]:
        """``query`` for several vectors in one call (two vectors cost 1.4 times one at 100k chunks, not twice)."""
        def nearest(collection: Any) -> list[list[tuple[str, float]]]:
            # chromadb 1.5 answers fewer ids when the collection holds fewer than n (none when empty): no
            # count() first, which cost as much as the query itself (profiled in issue 8)
            result = collection.query(query_embeddings=[np.asarray(v, dtype=np.float32) for v in vectors],
                                      n_results=n, include=["distances"])
            distances = result.get("distances") or [[] for _ in vectors]
            return [[(i, 1.0 - float(d)) for i, d in zip(ids, found, strict=True)]
                    for ids, found in zip(result["ids"], distances, strict=True)]

        if not vectors:
            return []
        return self._run(tenant, kind, False, "query", nearest) or [[] for _ in vectors]

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
