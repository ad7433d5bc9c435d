"""Ingestion: incremental, atomic, per tenant, with real Chroma, SQLite and the packaged MiniLM."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from copilot.errors import IndexMismatch, InvalidInput, ServiceUnavailable, UnknownTenant
from copilot.ports import Embedder, Matrix, Vector
from copilot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.documents import SEARCHABLE_KINDS, Chunk, SourceDocument
from knowledge.embeddings import LocalEmbedder
from knowledge.registry import Registry, make_engine
from knowledge.vectors import VectorIndex

TENANT = "acme"

REFUNDS_V1 = """---
title: Refunds
tags: [billing]
---
Refunds go back to the card you paid with. They arrive within five working days of approval.

## Account credit

If you prefer, we add the refund to your account as credit for your next bill instead.
"""
REFUNDS_V2 = REFUNDS_V1.replace("five working days", "three working days")

FAQ = """question,answer,tags
Do you deliver on Saturdays?,"Yes, standard delivery runs Monday to Saturday.",delivery
Can I change my delivery address?,You can change it until the parcel is dispatched.,delivery
"""

MACROS = """kind: macros
macros:
  - id: refund-timing
    title: Refund timing
    text: "Hi {customer_name}, your refund will reach your card within five working days."
    tags: [billing]
  - id: delivery-delay
    title: Delivery delay
    text: "Sorry {customer_name}, your parcel is running a day late."
"""


class CountingEmbedder:
    """Delegates to a real embedder and counts what it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.document_calls = 0
        self.texts = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        self.document_calls += 1
        self.texts += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> Vector:
        return self.inner.embed_query(text)


class CrashingRegistry(Registry):
    """A real registry whose commit fails for one document, after its vectors were written."""

    crash_on: str | None = None
    error: Exception = RuntimeError("simulated crash between the vector write and the commit")

    def commit_document(self, tenant: str, document: SourceDocument, content_hash: str,
                        chunks: Sequence[Chunk], by: str, *,
                        flagged: dict[str, Any] | None = None) -> tuple[str, list[tuple[str, str]]]:
        if document.document_id == self.crash_on:
            raise self.error
        return super().commit_document(tenant, document, content_hash, chunks, by, flagged=flagged)


@pytest.fixture
def counting(embedder: LocalEmbedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


@pytest.fixture
def registry(settings: Settings) -> CrashingRegistry:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return CrashingRegistry(make_engine(settings.resolved_database_url))


@pytest.fixture
def base(settings: Settings, counting: CountingEmbedder, registry: CrashingRegistry) -> Iterator[KnowledgeBase]:
    knowledge = KnowledgeBase(settings, embedder=counting, registry=registry)
    knowledge.create_tenant(TENANT)
    yield knowledge


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    (folder / "articles").mkdir(parents=True)
    (folder / "articles" / "refunds.md").write_text(REFUNDS_V1, encoding="utf-8")
    (folder / "faq.csv").write_text(FAQ, encoding="utf-8")
    (folder / "macros.yaml").write_text(MACROS, encoding="utf-8")
    return folder


def _registry_ids(base: KnowledgeBase, document_id: str | None = None) -> set[str]:
    return {r.chunk_id for r in base.registry.chunks(TENANT) if document_id in (None, r.document_id)}


def _vector_ids(base: KnowledgeBase) -> set[str]:
    return set().union(*(base.vectors.ids(TENANT, kind.value) for kind in SEARCHABLE_KINDS))


def test_ingest_folder_reports_added_documents_and_chunks(base: KnowledgeBase, corpus: Path) -> None:
    report = base.ingest(TENANT, [corpus])

    assert (report.added, report.updated, report.unchanged, report.removed) == (3, 0, 0, 0)
    assert report.failed == []
    assert report.chunks == base.registry.chunk_count(TENANT) >= 5
    assert [d.document_id for d in base.documents(TENANT)] == ["articles/refunds.md", "faq.csv", "macros.yaml"]
    assert base.vectors.count(TENANT, "faq") == 2
    assert base.vectors.count(TENANT, "macro") == 2
    assert _vector_ids(base) == _registry_ids(base)


def test_ingest_unchanged_folder_skips_embedding(base: KnowledgeBase, corpus: Path,
                                                 counting: CountingEmbedder) -> None:
    base.ingest(TENANT, [corpus])
    assert counting.texts > 0
    counting.document_calls = counting.texts = 0
    version = base.registry.knowledge_version(TENANT)

    report = base.ingest(TENANT, [corpus])

    assert (report.added, report.updated, report.unchanged, report.chunks) == (0, 0, 3, 0)
    assert counting.document_calls == 0
    assert base.registry.knowledge_version(TENANT) == version


def test_ingest_changed_file_replaces_its_chunks_everywhere(base: KnowledgeBase, corpus: Path,
                                                            counting: CountingEmbedder) -> None:
    base.ingest(TENANT, [corpus])
    old_ids = _registry_ids(base, "articles/refunds.md")
    counting.texts = 0
    (corpus / "articles" / "refunds.md").write_text(REFUNDS_V2, encoding="utf-8")

    report = base.ingest(TENANT, [corpus])

    assert (report.added, report.updated, report.unchanged) == (0, 1, 2)
    assert report.chunks_removed == len(old_ids)
    new_ids = _registry_ids(base, "articles/refunds.md")
    assert counting.texts == len(new_ids)
    assert new_ids and old_ids.isdisjoint(new_ids)
    assert old_ids.isdisjoint(base.vectors.ids(TENANT, "article"))
    assert base.vectors.ids(TENANT, "article") == new_ids
    history = base.history(TENANT, "articles/refunds.md")
    assert [(h.version, h.action) for h in history] == [(1, "added"), (2, "updated")]
    assert base.document(TENANT, "articles/refunds.md").version == 2
    assert "three working days" in base.search(TENANT, "how many days until my refund arrives")[0].text


def test_ingest_prune_removes_deleted_files(base: KnowledgeBase, corpus: Path) -> None:
    base.ingest(TENANT, [corpus])
    (corpus / "faq.csv").unlink()

    kept = base.ingest(TENANT, [corpus])
    assert kept.removed == 0 and "faq.csv" in {d.document_id for d in base.documents(TENANT)}

    report = base.ingest(TENANT, [corpus], prune=True)

    assert report.removed == 1
    assert report.chunks_removed == 2
    assert {d.document_id for d in base.documents(TENANT)} == {"articles/refunds.md", "macros.yaml"}
    assert base.vectors.ids(TENANT, "faq") == set()
    assert _vector_ids(base) == _registry_ids(base)
    assert [h.action for h in base.history(TENANT, "faq.csv")] == ["added", "removed"]


def test_ingest_prune_keeps_documents_with_their_own_id_and_from_other_folders(
        base: KnowledgeBase, corpus: Path, tmp_path: Path) -> None:
    (corpus / "articles" / "named.md").write_text("---\nid: kb-0042\ntitle: Named\n---\nPINs have six digits.\n",
                                                   encoding="utf-8")
    other = tmp_path / "other"
    other.mkdir()
    (other / "roaming.md").write_text("# Roaming\n\nZone 1 is included on every plan.\n", encoding="utf-8")
    base.ingest(TENANT, [other])

    report = base.ingest(TENANT, [corpus], prune=True)

    assert (report.added, report.removed) == (4, 0)
    assert {"kb-0042", "roaming.md"} <= {d.document_id for d in base.documents(TENANT)}


def test_ingest_prune_with_a_missing_path_refuses_and_removes_nothing(base: KnowledgeBase, corpus: Path,
                                                                      tmp_path: Path) -> None:
    base.ingest(TENANT, [corpus])

    with pytest.raises(InvalidInput, match="--prune"):
        base.ingest(TENANT, [corpus, tmp_path / "typo"], prune=True)

    assert len(base.documents(TENANT)) == 3


def test_ingest_faq_row_without_tags_does_not_inherit_other_rows_tags(base: KnowledgeBase, tmp_path: Path) -> None:
    faq = tmp_path / "faq.csv"
    faq.write_text("question,answer,tags\nDo you deliver on Sundays?,No.,delivery\nIs there an app?,Yes.,\n",
                   encoding="utf-8")
    base.ingest(TENANT, [faq])

    tags = {r.section: r.tags for r in base.registry.chunks(TENANT)}

    assert tags == {"Do you deliver on Sundays?": ["delivery"], "Is there an app?": []}


def test_ingest_changed_chunk_settings_reindex_unchanged_files(settings: Settings, embedder: LocalEmbedder,
                                                                corpus: Path) -> None:
    first = KnowledgeBase(settings, embedder=embedder)
    first.create_tenant(TENANT)
    first.ingest(TENANT, [corpus])
    rechunked = KnowledgeBase(settings.model_copy(update={"chunk_tokens": 64}), embedder=embedder)

    report = rechunked.ingest(TENANT, [corpus])

    assert (report.updated, report.unchanged) == (3, 0)


def test_ingest_bad_file_is_reported_and_rest_indexed(base: KnowledgeBase, corpus: Path) -> None:
    bad = corpus / "articles" / "latin1.md"
    bad.write_bytes("# Café\n\nOur café opens at nine.\n".encode("latin-1"))

    report = base.ingest(TENANT, [corpus])

    assert report.added == 3
    assert len(report.failed) == 1
    assert report.failed[0]["path"] == str(bad)
    assert "UTF-8" in report.failed[0]["error"]
    assert "articles/latin1.md" not in {d.document_id for d in base.documents(TENANT)}


def test_ingest_unknown_tenant_raises_and_writes_nothing(base: KnowledgeBase, corpus: Path,
                                                         counting: CountingEmbedder) -> None:
    with pytest.raises(UnknownTenant, match="ghost"):
        base.ingest("ghost", [corpus])

    assert base.registry.tenants() == [TENANT]
    assert base.registry.chunks("ghost") == []
    assert all(base.vectors.ids("ghost", kind.value) == set() for kind in SEARCHABLE_KINDS)
    assert counting.document_calls == 0


def test_ingest_crash_before_commit_keeps_previous_version(base: KnowledgeBase, corpus: Path,
                                                           registry: CrashingRegistry) -> None:
    base.ingest(TENANT, [corpus])
    v1_ids = _registry_ids(base, "articles/refunds.md")
    v1_hash = base.document(TENANT, "articles/refunds.md").content_hash
    (corpus / "articles" / "refunds.md").write_text(REFUNDS_V2, encoding="utf-8")
    registry.crash_on = "articles/refunds.md"

    with pytest.raises(RuntimeError, match="simulated crash"):
        base.ingest(TENANT, [corpus])

    orphans = _vector_ids(base) - _registry_ids(base)
    assert orphans, "the new version's vectors were written before the crash"
    assert base.document(TENANT, "articles/refunds.md").content_hash == v1_hash
    assert _registry_ids(base, "articles/refunds.md") == v1_ids
    assert v1_ids <= _vector_ids(base)
    results = base.search(TENANT, "how many days until my refund arrives", k=10)
    assert "five working days" in results[0].text
    assert not {p.chunk_id for p in results} & orphans
    assert all("three working days" not in p.text for p in results)

    registry.crash_on = None
    (corpus / "articles" / "refunds.md").write_text(REFUNDS_V1, encoding="utf-8")
    report = base.ingest(TENANT, [corpus])

    assert report.unchanged == 3
    assert _vector_ids(base) == _registry_ids(base)


def test_ingest_failed_commit_is_reported_and_others_commit(base: KnowledgeBase, corpus: Path,
                                                            registry: CrashingRegistry) -> None:
    registry.crash_on = "faq.csv"
    registry.error = ServiceUnavailable("database is locked")

    report = base.ingest(TENANT, [corpus])

    assert report.added == 2
    assert report.failed == [{"path": str(corpus / "faq.csv"), "error": "database is locked"}]
    assert "faq.csv" not in {d.document_id for d in base.documents(TENANT)}


def test_ingest_copilotignore_patterns_are_honoured(base: KnowledgeBase, corpus: Path) -> None:
    (corpus / "drafts").mkdir()
    (corpus / "drafts" / "next-year.md").write_text("# Next year\n\nPrices rise in April.\n", encoding="utf-8")
    (corpus / "articles" / "old.wip.md").write_text("# Old\n\nNot ready to publish.\n", encoding="utf-8")
    (corpus / "intents.csv").write_text("intent,example\nbilling,charged twice\n", encoding="utf-8")
    (corpus / ".copilotignore").write_text("# not knowledge\ndrafts/\n*.wip.md\nintents.csv\n",
                                           encoding="utf-8")

    report = base.ingest(TENANT, [corpus])

    assert report.failed == []
    assert {d.document_id for d in base.documents(TENANT)} == {"articles/refunds.md", "faq.csv", "macros.yaml"}


def test_reindex_after_lost_collections_restores_dense_search(base: KnowledgeBase, corpus: Path) -> None:
    base.ingest(TENANT, [corpus])
    base.vectors.drop_tenant(TENANT, [kind.value for kind in SEARCHABLE_KINDS])
    assert _vector_ids(base) == set()
    assert all(p.metadata["dense"] == 0 for p in base.search(TENANT, "refund to my card"))

    count = base.reindex(TENANT)

    assert count == base.registry.chunk_count(TENANT)
    assert _vector_ids(base) == _registry_ids(base)
    top = base.search(TENANT, "refund to my card")[0]
    assert top.document_id == "articles/refunds.md"
    assert top.metadata["dense"] > 0.3


def test_open_index_with_other_model_raises_index_mismatch(base: KnowledgeBase, corpus: Path,
                                                          settings: Settings) -> None:
    base.ingest(TENANT, [corpus])
    other = VectorIndex(path=settings.data_dir / "chroma", model_name="another-model",
                        dimension=base.embedder.dimension)

    with pytest.raises(IndexMismatch, match="reindex") as caught:
        other.ids(TENANT, "article")
    assert "another-model" in caught.value.message
    assert base.embedder.name in caught.value.message



def test_ingest_folder_of_thousands_of_files_reports_each_bad_one_and_repeats_cleanly(
        kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(1500):
        (folder / f"note-{n:04d}.md").write_text(
            f"# Note {n}\n\nStore {n} opens at {n % 12 + 7} in the morning.\n", encoding="utf-8")
    (folder / "broken.md").write_bytes(b"\xff\xfe broken \x00 bytes")
    (folder / "empty.txt").write_text("", encoding="utf-8")

    first = kb.ingest(TENANT, [folder])
    again = kb.ingest(TENANT, [folder])

    assert (first.added, len(first.failed)) == (1500, 2)
    assert {Path(f["path"]).name for f in first.failed} == {"broken.md", "empty.txt"}
    assert all(f["error"] for f in first.failed)
    assert (again.added, again.updated, again.unchanged, len(again.failed)) == (0, 0, 1500, 2)
    assert kb.registry.chunk_count(TENANT) == 1500
    assert kb.vectors.count(TENANT, "article") == 1500


def test_search_in_another_process_survives_a_reindex(settings: Settings, embedder: LocalEmbedder,
                                                       corpus: Path) -> None:
    writer = KnowledgeBase(settings, embedder=embedder)
    writer.create_tenant(TENANT)
    writer.ingest(TENANT, [corpus])
    reader = KnowledgeBase(settings, embedder=embedder)
    assert reader.search(TENANT, "when does my refund arrive")  # caches its collection handles

    writer.reindex(TENANT)  # drops and recreates the collections under the reader's feet
    results = reader.search(TENANT, "when does my refund arrive")

    assert results[0].document_id == "articles/refunds.md"
    assert results[0].metadata["dense"] > 0
