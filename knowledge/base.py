"""A tenant-aware knowledge base: the registry, the vector and lexical indexes, ingestion and retrieval."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from copilot.errors import ServiceUnavailable, StorageUnwritable, UnknownTenant
from copilot.labelled_threads import LabelledThread
from copilot.macros import Macro
from copilot.playbooks import Playbook
from copilot.ports import Embedder, Passage, RetrievalQuery
from copilot.settings import Settings
from copilot.suggest import TenantProfile
from copilot.voice import BrandVoice
from knowledge.chunking import Chunker
from knowledge.consistency import IndexCheck
from knowledge.documents import Kind, SourceDocument
from knowledge.embeddings import embedder_from_settings
from knowledge.ingest import Ingestor, IngestReport, ProgressCallback
from knowledge.registry import DocumentRecord, Registry, VersionRecord, make_engine, volume_problem
from knowledge.retrieval import HybridRetriever, RetrievalParams
from knowledge.vectors import VectorIndex


class KnowledgeBase:
    """What content owners write to and what the engines read from, for every tenant of a deployment."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None,
                 registry: Registry | None = None, params: RetrievalParams | None = None) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.registry = registry or Registry(make_engine(settings.resolved_database_url,
                                                         settings.database_timeout_s))
        self.embedder = embedder or embedder_from_settings(settings)
        self.vectors = VectorIndex(
            path=None if settings.chroma_url else settings.data_dir / "chroma",
            url=settings.chroma_url, model_name=self.embedder.name, dimension=self.embedder.dimension,
            timeout_s=settings.chroma_timeout_s,
        )
        self.chunker = Chunker(max_tokens=settings.chunk_tokens,
                               overlap_tokens=settings.chunk_overlap_tokens)
        self.ingestor = Ingestor(self.registry, self.vectors, self.embedder, self.chunker,
                                 settings.max_file_bytes, lock_dir=settings.data_dir / "locks")
        self.retriever = HybridRetriever(self.registry, self.vectors, self.embedder, params,
                                         saved_dir=settings.data_dir / "lexical")
        self._profiles: dict[str, tuple[int, TenantProfile]] = {}
        self._profiles_lock = threading.Lock()

    # --- tenants ---

    def create_tenant(self, name: str, display_name: str | None = None) -> None:
        self.registry.create_tenant(name, display_name)

    def ensure_tenant(self, name: str) -> None:
        try:
            self.registry.require_tenant(name)
        except UnknownTenant:
            self.registry.create_tenant(name)

    # --- content ---

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A store's failure during a write, said as the full or read-only disk of the data directory when that is
        the cause: the embedded Chroma's own message may not say so ("Failed to apply logs to the metadata
        segment")."""
        try:
            yield
        except ServiceUnavailable as exc:
            local = not isinstance(exc, StorageUnwritable) and not self.settings.chroma_url
            problem = volume_problem(self.settings.data_dir) if local else None
            if problem is None:
                raise
            raise StorageUnwritable(f"the disk of the data directory {self.settings.data_dir} is {problem} "
                                    f"({exc.message}): free space or make it writable, then retry") from exc

    def ingest(self, tenant: str, paths: Sequence[Path], *, prune: bool = False, by: str = "cli",
               progress: ProgressCallback | None = None) -> IngestReport:
        with self._writing():
            return self.ingestor.ingest_paths(tenant, paths, prune=prune, by=by, progress=progress)

    def ingest_documents(self, tenant: str, documents: Sequence[SourceDocument], *,
                         by: str = "cli") -> IngestReport:
        self.registry.require_tenant(tenant)
        report = IngestReport()
        with self._writing():
            for start in range(0, len(documents), 32):
                self.ingestor.ingest_documents(tenant, documents[start : start + 32], report, by=by)
        return report

    def remove(self, tenant: str, document_id: str, *, by: str = "cli") -> int:
        with self._writing():
            return self.ingestor.remove(tenant, document_id, by=by)

    def reindex(self, tenant: str, progress: ProgressCallback | None = None) -> int:
        with self._writing():
            return self.ingestor.reindex(tenant, progress)

    def check(self, tenant: str) -> IndexCheck:
        """The vector index against the registry: vectors missing, of no live chunk, or that no query reaches."""
        return self.ingestor.check(tenant)

    def repair(self, tenant: str, progress: ProgressCallback | None = None) -> IndexCheck:
        """Mend the vector index from the registry (every ingest of paths does it first); returns what was found."""
        with self._writing():
            return self.ingestor.repair(tenant, progress)

    def documents(self, tenant: str, kind: str | None = None) -> list[DocumentRecord]:
        return self.registry.documents(tenant, kind)

    def document(self, tenant: str, document_id: str) -> DocumentRecord:
        self.registry.require_tenant(tenant)
        return self.registry.document(tenant, document_id)

    def history(self, tenant: str, document_id: str) -> list[VersionRecord]:
        return self.registry.history(tenant, document_id)

    def profile(self, tenant: str) -> TenantProfile:
        """The tenant's voice guide, macros, playbooks, intent examples and labelled history as the engines use
        them (from the ingested files), read once per knowledge version: every write raises the version, so a
        change made through any process is seen at the next request, and a request in between costs one indexed
        lookup."""
        version = self.registry.knowledge_version(tenant)  # before the documents: a write in between rebuilds
        with self._profiles_lock:
            cached = self._profiles.get(tenant)
        if cached is not None and cached[0] == version:
            return cached[1]
        profile = self._read_profile(tenant)
        with self._profiles_lock:
            self._profiles[tenant] = (version, profile)
        return profile

    def _read_profile(self, tenant: str) -> TenantProfile:
        records = self.registry.documents(tenant)
        voices = [BrandVoice.model_validate(r.payload) for r in records if r.kind == Kind.BRAND_VOICE and r.payload]
        macros = [Macro.model_validate(m) for r in records if r.kind == Kind.MACRO and r.payload
                  for m in r.payload.get("macros", [])]
        playbooks = [Playbook.model_validate(r.payload) for r in records if r.kind == Kind.PLAYBOOK and r.payload]
        examples = [(e["example"], e["intent"]) for r in records if r.kind == Kind.INTENTS and r.payload
                    for e in r.payload.get("examples", [])]
        history = [LabelledThread.model_validate(t) for r in records if r.kind == Kind.ACTION_HISTORY and r.payload
                   for t in r.payload.get("threads", [])]
        return TenantProfile(voice=voices[0] if voices else None, macros=macros, playbooks=playbooks,
                             intent_examples=examples, action_history=history)

    # --- retrieval ---

    def search(self, tenant: str, query: RetrievalQuery | str, k: int = 5, *,
               kinds: Sequence[str] | None = None, tags: Sequence[str] | None = None,
               locale: str | None = None) -> list[Passage]:
        return self.retriever.search(tenant, query, k, kinds=kinds, tags=tags, locale=locale)
