"""Incremental, atomic ingestion of files and folders into a tenant's knowledge.

A document version goes live only when its registry row commits, after its vectors are written; a
crash before that leaves unreferenced vectors that are swept later, never a half-indexed document.
An ingest of paths first mends the vector index from the registry (``knowledge.consistency``), so
re-running the ingest a crash interrupted finishes the job. A store that is down, full or read-only
stops the ingest with its error: what committed before stays, the rest is ingested again next time.
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from copilot.errors import (
    CopilotError,
    DocumentError,
    InvalidInput,
    ServiceUnavailable,
    StorageUnwritable,
    storage_error,
)
from copilot.injection import injection_flag
from copilot.ports import Embedder
from knowledge.chunking import Chunker
from knowledge.consistency import IndexCheck, check_index
from knowledge.documents import SEARCHABLE_KINDS, Chunk, SourceDocument, embed_text
from knowledge.loaders import file_format, load_document
from knowledge.registry import ChunkRecord, Registry
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
    # documents indexed now whose passages read as prompt injection: document_id plus the injection flag
    flagged: list[dict[str, Any]] = field(default_factory=list)
    # what the vector index held wrongly when the ingest began (a crash, a lost file), mended from the registry
    repaired: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "removed": self.removed, "failed": self.failed, "chunks": self.chunks,
                "chunks_removed": self.chunks_removed, "ignored": self.ignored, "flagged": self.flagged,
                "repaired": self.repaired}


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
                if file_format(name) is None:
                    report.ignored += 1
                    continue
                found.append((Path(dirpath) / name, rel))
                if len(found) > MAX_FILES:
                    raise DocumentError(f"more than {MAX_FILES:,} files under {given}; ingest subfolders",
                                        str(given))
    return found


def _ignored(rel: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(Path(rel).name, p) for p in patterns)


class _VectorItem(NamedTuple):
    chunk_id: str
    kind: str
    document_id: str
    text: str
    locale: str


@contextmanager
def tenant_write_lock(lock_dir: Path | None, tenant: str) -> Iterator[None]:
    """One writer per tenant at a time across the processes of this machine.

    The sweep of unreferenced vectors must not delete the staged vectors of another process's ingest.
    """
    if lock_dir is None:
        yield
        return
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        handle = os.open(lock_dir / f"{tenant}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a full or read-only disk: said as such, not as a bug
        raise storage_error(exc, f"opening the write lock of tenant {tenant!r} in {lock_dir}") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def _under(source: str, roots: Sequence[Path]) -> bool:
    path = Path(source)
    return any(path == root or path.is_relative_to(root) for root in roots)


class Ingestor:
    """Loads, chunks, embeds and commits documents, one batch of documents at a time."""

    def __init__(self, registry: Registry, vectors: VectorIndex, embedder: Embedder, chunker: Chunker,
                 max_file_bytes: int, batch_chunks: int = 256, lock_dir: Path | None = None) -> None:
        self.registry = registry
        self.vectors = vectors
        self.embedder = embedder
        self.chunker = chunker
        self.max_file_bytes = max_file_bytes
        self.batch_chunks = batch_chunks
        self.lock_dir = lock_dir

    def ingest_paths(self, tenant: str, paths: Sequence[Path], *, prune: bool = False, by: str = "cli",
                     progress: ProgressCallback | None = None) -> IngestReport:
        """Ingest files and folders; with ``prune``, documents once ingested from these paths and no
        longer there are removed (documents from other paths or uploads are left alone)."""
        self.registry.require_tenant(tenant)
        missing = [str(p) for p in paths if not p.exists()]
        if prune and missing:
            raise InvalidInput(f"--prune needs every path to exist, and these do not: {', '.join(missing)}")
        report = IngestReport()
        with tenant_write_lock(self.lock_dir, tenant):
            files = discover(paths, report)
            found = self._repair(tenant)
            if not found.ok:
                report.repaired = {"orphans": sum(len(k.orphans) for k in found.kinds),
                                   "missing": sum(len(k.missing) for k in found.kinds),
                                   "unreachable": sum(k.unreachable for k in found.kinds)}
            seen: dict[str, str] = {}
            documents: list[SourceDocument] = []
            sections = 0
            for done, (path, path_id) in enumerate(files, start=1):
                if progress:
                    progress(Progress(done, len(files), str(path)))
                try:
                    document = load_document(path.resolve(), path_id, self.max_file_bytes)
                except DocumentError as exc:
                    seen.setdefault(path_id, str(path))  # still there: never pruned for failing to parse
                    report.failed.append({"path": str(path), "error": exc.message})
                    continue
                if document.document_id in seen:
                    report.failed.append({"path": str(path), "error": (
                        f"document id {document.document_id!r} is also {seen[document.document_id]}")})
                    continue
                seen[document.document_id] = str(path)
                documents.append(document)
                sections += len(document.sections)
                if sections >= self.batch_chunks:
                    self._ingest_batch(tenant, documents, report, by)
                    documents, sections = [], 0
            self._ingest_batch(tenant, documents, report, by)
            if prune:
                roots = [p.resolve() for p in paths]
                for record in self.registry.documents(tenant):
                    if record.document_id not in seen and _under(record.source, roots):
                        self._remove(tenant, record.document_id, by, report)
        return report

    def ingest_documents(self, tenant: str, documents: Sequence[SourceDocument], report: IngestReport,
                         *, by: str = "cli") -> None:
        """Index these documents; each is committed on its own so one failure loses only itself."""
        with tenant_write_lock(self.lock_dir, tenant):
            self._ingest_batch(tenant, documents, report, by)

    def version_of(self, document: SourceDocument) -> str:
        """The content hash and the chunking settings: a change of either re-indexes the document."""
        return hashlib.sha256(f"{document.content_hash}:{self.chunker.signature}".encode()).hexdigest()

    def _ingest_batch(self, tenant: str, documents: Sequence[SourceDocument], report: IngestReport,
                      by: str) -> None:
        if not documents:
            return
        live = self.registry.hashes(tenant)
        pending: list[tuple[SourceDocument, str, list[Chunk]]] = []
        for document in documents:
            digest = self.version_of(document)
            if live.get(document.document_id) == digest:
                report.unchanged += 1
                continue
            pending.append((document, digest, self.chunker.chunk(document, digest)))
        searchable = [_VectorItem(c.chunk_id, c.kind.value, c.document_id, c.embed_text, document.locale)
                      for document, _, chunks in pending for c in chunks if c.kind in SEARCHABLE_KINDS]
        try:
            self._write_vectors(tenant, searchable)
        except ServiceUnavailable:  # the store or model is down, full or read-only: the next batch would fail too
            raise
        except CopilotError as exc:  # nothing of this batch went live: each document is reported
            report.failed.extend({"path": d.source, "error": exc.message} for d, _, _ in pending)
            return
        stale: list[tuple[str, str]] = []
        for document, digest, chunks in pending:
            # flagged for content owners; the engines withhold such passages at query time anyway
            flag = injection_flag((c.section, c.text) for c in chunks)
            try:
                action, old = self.registry.commit_document(tenant, document, digest, chunks, by, flagged=flag)
            except StorageUnwritable:  # no document after it could commit either; its vectors are swept later
                raise
            except CopilotError as exc:  # its vectors stay unreferenced until the next sweep
                report.failed.append({"path": document.source, "error": exc.message})
                continue
            if flag:
                report.flagged.append({"document_id": document.document_id, **flag})
            new_ids = {c.chunk_id for c in chunks}
            stale.extend((cid, kind) for cid, kind in old if cid not in new_ids)
            report.chunks += len(chunks)
            report.chunks_removed += len(old)
            if action == "added":
                report.added += 1
            else:
                report.updated += 1
        self._delete_vectors(tenant, stale)

    def remove(self, tenant: str, document_id: str, *, by: str = "cli") -> int:
        with tenant_write_lock(self.lock_dir, tenant):
            return self._remove(tenant, document_id, by, IngestReport())

    def _remove(self, tenant: str, document_id: str, by: str, report: IngestReport) -> int:
        old = self.registry.remove_document(tenant, document_id, by)
        self._delete_vectors(tenant, old)
        report.removed += 1
        report.chunks_removed += len(old)
        return len(old)

    def check(self, tenant: str) -> IndexCheck:
        """The vector index against the registry (under the write lock: an ingest's staged vectors are no orphans)."""
        self.registry.require_tenant(tenant)
        with tenant_write_lock(self.lock_dir, tenant):
            return check_index(self.vectors, tenant, self._searchable_rows(tenant))

    def repair(self, tenant: str, progress: ProgressCallback | None = None) -> IndexCheck:
        """Mend the vector index from the registry; returns what was found before."""
        self.registry.require_tenant(tenant)
        with tenant_write_lock(self.lock_dir, tenant):
            return self._repair(tenant, progress)

    def _repair(self, tenant: str, progress: ProgressCallback | None = None) -> IndexCheck:
        """Delete orphan vectors, embed missing chunks again, and rebuild a kind whose graph lost vectors."""
        rows = self._searchable_rows(tenant)
        found = check_index(self.vectors, tenant, rows)
        for kind in found.kinds:
            if kind.unreachable:  # the ids are listed but not searchable: only a new collection mends that
                self.vectors.drop_tenant(tenant, [kind.kind])
                self._embed_rows(tenant, [r for r in rows if r.kind == kind.kind], progress)
                continue
            self.vectors.delete(tenant, kind.kind, sorted(kind.orphans))
            self._embed_rows(tenant, [r for r in rows if r.chunk_id in kind.missing], progress)
        return found

    def _searchable_rows(self, tenant: str) -> list[ChunkRecord]:
        return self.registry.chunks(tenant, kinds=[k.value for k in SEARCHABLE_KINDS])

    def reindex(self, tenant: str, progress: ProgressCallback | None = None) -> int:
        """Rebuild the tenant's vector collections from the registry (after a model change or lost index)."""
        self.registry.require_tenant(tenant)
        with tenant_write_lock(self.lock_dir, tenant):
            return self._reindex(tenant, progress)

    def _reindex(self, tenant: str, progress: ProgressCallback | None) -> int:
        self.vectors.drop_tenant(tenant, [k.value for k in SEARCHABLE_KINDS])
        rows = self._searchable_rows(tenant)
        self._embed_rows(tenant, rows, progress)
        return len(rows)

    def _embed_rows(self, tenant: str, rows: Sequence[ChunkRecord], progress: ProgressCallback | None) -> None:
        """Embed live chunks again from their registry text and store their vectors."""
        for start in range(0, len(rows), self.batch_chunks):
            batch = rows[start : start + self.batch_chunks]
            self._write_vectors(tenant, [
                _VectorItem(r.chunk_id, r.kind, r.document_id, embed_text(r.title, r.section, r.text), r.locale)
                for r in batch])
            if progress:
                progress(Progress(min(start + len(batch), len(rows)), len(rows), ""))

    def _write_vectors(self, tenant: str, items: Sequence[_VectorItem]) -> None:
        """Embed and store, one write per kind."""
        if not items:  # every document unchanged: a remote embedder is not called at all
            return
        vectors = self.embedder.embed_documents([item.text for item in items])
        for kind in {item.kind for item in items}:
            rows = [n for n, item in enumerate(items) if item.kind == kind]
            self.vectors.add(tenant, kind, [items[n].chunk_id for n in rows], vectors[rows],
                             [{"document_id": items[n].document_id, "locale": items[n].locale} for n in rows])

    def _delete_vectors(self, tenant: str, ids: Sequence[tuple[str, str]]) -> None:
        """Best effort: vectors no registry row refers to are never returned, and the next sweep retries."""
        for kind in {k for _, k in ids}:
            try:
                self.vectors.delete(tenant, kind, [cid for cid, k in ids if k == kind])
            except CopilotError:
                continue

