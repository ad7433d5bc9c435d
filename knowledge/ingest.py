"""Incremental, atomic ingestion of files and folders into a tenant's knowledge.

A document version goes live only when its registry row commits, after its vectors are written; a
crash before that leaves unreferenced vectors that are swept later, never a half-indexed document.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from copilot.errors import CopilotError, DocumentError
from copilot.ports import Embedder
from knowledge.chunking import Chunker
from knowledge.documents import SEARCHABLE_KINDS, Chunk, SourceDocument, embed_text
from knowledge.loaders import SUPPORTED_SUFFIXES, load_document
from knowledge.registry import Registry
from knowledge.vectors import VectorIndex

IGNORE_FILE = ".copilotignore"
MAX_FILES = 100_000


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    chunks: int = 0
    chunks_removed: int = 0
    ignored: int = 0

    def as_json(self) -> dict[str, object]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "removed": self.removed, "failed": self.failed, "chunks": self.chunks,
                "chunks_removed": self.chunks_removed, "ignored": self.ignored}


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    path: str


ProgressCallback = Callable[[Progress], None]


def _ignore_patterns(root: Path) -> list[str]:
    file = root / IGNORE_FILE
    if not file.is_file():
        return []
    lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
    return [ln.strip().rstrip("/") for ln in lines if ln.strip() and not ln.startswith("#")]


def discover(paths: Sequence[Path], report: IngestReport) -> list[tuple[Path, str]]:
    """Files to ingest with their document ids (the path relative to the folder given)."""
    found: list[tuple[Path, str]] = []
    for given in paths:
        if given.is_file():
            found.append((given, given.name))
            continue
        if not given.is_dir():
            report.failed.append({"path": str(given), "error": "no such file or folder"})
            continue
        patterns = _ignore_patterns(given)
        for dirpath, dirnames, filenames in os.walk(given):
            rel_dir = Path(dirpath).relative_to(given).as_posix()
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                                 and not _ignored(f"{rel_dir}/{d}".lstrip("./"), patterns))
            for name in sorted(filenames):
                rel = f"{rel_dir}/{name}".removeprefix("./")
                if name.startswith(".") or _ignored(rel, patterns):
                    continue
                if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
                    report.ignored += 1
                    continue
                found.append((Path(dirpath) / name, rel))
                if len(found) > MAX_FILES:
                    raise DocumentError(f"more than {MAX_FILES:,} files under {given}; ingest subfolders",
                                        str(given))
    return found


def _ignored(rel: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(Path(rel).name, p) for p in patterns)


class Ingestor:
    """Loads, chunks, embeds and commits documents, one batch of documents at a time."""

    def __init__(self, registry: Registry, vectors: VectorIndex, embedder: Embedder, chunker: Chunker,
                 max_file_bytes: int, batch_chunks: int = 256) -> None:
        self.registry = registry
        self.vectors = vectors
        self.embedder = embedder
        self.chunker = chunker
        self.max_file_bytes = max_file_bytes
        self.batch_chunks = batch_chunks

    def ingest_paths(self, tenant: str, paths: Sequence[Path], *, prune: bool = False, by: str = "cli",
                     progress: ProgressCallback | None = None) -> IngestReport:
        self.registry.require_tenant(tenant)
        report = IngestReport()
        files = discover(paths, report)
        self.sweep(tenant)
        seen: dict[str, str] = {}
        documents: list[SourceDocument] = []
        for done, (path, document_id) in enumerate(files, start=1):
            if progress:
                progress(Progress(done, len(files), str(path)))
            if document_id in seen:
                report.failed.append({"path": str(path),
                                      "error": f"document id {document_id!r} is also {seen[document_id]}"})
                continue
            seen[document_id] = str(path)
            try:
                documents.append(load_document(path, document_id, self.max_file_bytes))
            except DocumentError as exc:
                report.failed.append({"path": exc.path or str(path), "error": exc.message})
                continue
            if sum(len(d.sections) for d in documents) >= self.batch_chunks:
                self.ingest_documents(tenant, documents, report, by=by)
                documents = []
        self.ingest_documents(tenant, documents, report, by=by)
        if prune:
            for document_id in sorted(set(self.registry.hashes(tenant)) - set(seen)):
                self.remove(tenant, document_id, by=by, report=report)
        return report

    def ingest_documents(self, tenant: str, documents: Sequence[SourceDocument], report: IngestReport,
                         *, by: str = "cli") -> None:
        """Index these documents; each is committed on its own so one failure loses only itself."""
        if not documents:
            return
        live = self.registry.hashes(tenant)
        pending: list[tuple[SourceDocument, str, list[Chunk]]] = []
        for document in documents:
            digest = document.content_hash
            if live.get(document.document_id) == digest:
                report.unchanged += 1
                continue
            pending.append((document, digest, self.chunker.chunk(document, digest)))
        searchable = [(c, document.locale) for document, _, chunks in pending for c in chunks
                      if c.kind in SEARCHABLE_KINDS]
        try:
            self._write_vectors(tenant, searchable)
        except CopilotError as exc:  # nothing of this batch went live: each document is reported
            report.failed.extend({"path": d.source, "error": exc.message} for d, _, _ in pending)
            return
        stale: list[tuple[str, str]] = []
        for document, digest, chunks in pending:
            try:
                action, old = self.registry.commit_document(tenant, document, digest, chunks, by)
            except CopilotError as exc:  # its vectors stay unreferenced until the next sweep
                report.failed.append({"path": document.source, "error": exc.message})
                continue
            new_ids = {c.chunk_id for c in chunks}
            stale.extend((cid, kind) for cid, kind in old if cid not in new_ids)
            report.chunks += len(chunks)
            report.chunks_removed += len(old)
            if action == "added":
                report.added += 1
            else:
                report.updated += 1
        self._delete_vectors(tenant, stale)

    def remove(self, tenant: str, document_id: str, *, by: str = "cli",
               report: IngestReport | None = None) -> int:
        old = self.registry.remove_document(tenant, document_id, by)
        self._delete_vectors(tenant, old)
        if report is not None:
            report.removed += 1
            report.chunks_removed += len(old)
        return len(old)

    def sweep(self, tenant: str) -> int:
        """Delete vectors that no live registry row refers to (left by a crash mid-ingest)."""
        live = {row.chunk_id for row in self.registry.chunks(tenant)}
        swept = 0
        for kind in SEARCHABLE_KINDS:
            orphans = sorted(self.vectors.ids(tenant, kind.value) - live)
            self.vectors.delete(tenant, kind.value, orphans)
            swept += len(orphans)
        return swept

    def reindex(self, tenant: str, progress: ProgressCallback | None = None) -> int:
        """Rebuild the tenant's vector collections from the registry (after a model change or lost index)."""
        self.registry.require_tenant(tenant)
        self.vectors.drop_tenant(tenant, [k.value for k in SEARCHABLE_KINDS])
        rows = [r for r in self.registry.chunks(tenant) if r.kind in {k.value for k in SEARCHABLE_KINDS}]
        for start in range(0, len(rows), self.batch_chunks):
            batch = rows[start : start + self.batch_chunks]
            texts = [embed_text(r.title, r.section, r.text) for r in batch]
            matrix = self.embedder.embed_documents(texts)
            for kind in {r.kind for r in batch}:
                picked = [i for i, r in enumerate(batch) if r.kind == kind]
                self.vectors.add(tenant, kind, [batch[i].chunk_id for i in picked], matrix[picked],
                                 [_vector_metadata(batch[i].document_id, batch[i].locale) for i in picked])
            if progress:
                progress(Progress(min(start + len(batch), len(rows)), len(rows), ""))
        return len(rows)

    def _write_vectors(self, tenant: str, chunks: Sequence[tuple[Chunk, str]]) -> None:
        """Embed and store the chunks (with their document's locale), one write per kind."""
        if not chunks:  # every document unchanged: a remote embedder is not called at all
            return
        vectors = self.embedder.embed_documents([c.embed_text for c, _ in chunks])
        for kind in {c.kind for c, _ in chunks}:
            rows = [n for n, (c, _) in enumerate(chunks) if c.kind == kind]
            self.vectors.add(tenant, kind.value, [chunks[n][0].chunk_id for n in rows], vectors[rows],
                             [_vector_metadata(chunks[n][0].document_id, chunks[n][1]) for n in rows])

    def _delete_vectors(self, tenant: str, ids: Sequence[tuple[str, str]]) -> None:
        for kind in {k for _, k in ids}:
            self.vectors.delete(tenant, kind, [cid for cid, k in ids if k == kind])


def _vector_metadata(document_id: str, locale: object) -> dict[str, object]:
    return {"document_id": document_id, "locale": str(locale or "en")}
