"""Faults with real parts: a ``copilot knowledge ingest`` killed with SIGKILL mid-update, Chroma's graph files lost,
searches racing an ingest, and a data disk that runs full or turns read-only.

What ingestion promises (``knowledge.ingest``): a document version goes live in one registry transaction, after its
vectors were written, so every document is whole at one version; the registry is the source of truth and the vector
index is mended from it (at the next ingest, or ``copilot knowledge check --repair``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from api.cli import app
from api.store import open_database
from copilot.errors import ServiceUnavailable, StorageUnwritable
from copilot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.consistency import IndexCheck, KindCheck
from knowledge.documents import embed_text
from knowledge.embeddings import LocalEmbedder
from knowledge.registry import Registry
from tests.volumes import ReadOnlyView, SmallVolume, VolumeUnavailable, small_volume

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TENANT = "acme"
# the word that marks each version of a document in every one of its chunks: version 1 says "kestrel", 2 "osprey"...
EDITIONS = ("kestrel", "osprey", "heron", "plover", "avocet", "curlew", "dunlin")
_EDITION = re.compile(r"Edition (\w+)\.")


def _article(n: int, version: int, extra: str = "") -> str:
    """A store page of two sections (two chunks), each marked with the edition of ``version``."""
    edition = EDITIONS[version - 1]
    return (f"# Store {n}\n\nStore {n} opens at {n % 12 + 7} in the morning from Monday to Saturday. Parcels for "
            f"collection wait at the front desk for fourteen days, then go back to the sender. Edition {edition}.\n\n"
            f"## Returns at store {n}\n\nA return handed in at store {n} reaches the card you paid with within "
            f"{n % 5 + 2} working days; keep the receipt until the refund shows on your statement. {extra}"
            f"Edition {edition}.\n")


def _version_of(text: str) -> int:
    found = set(_EDITION.findall(text))
    assert len(found) == 1, f"a chunk carries {found or 'no'} edition: {text!r}"
    return EDITIONS.index(found.pop()) + 1


def _write_corpus(folder: Path, version: int, count: int, first: int = 0, extra: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(first, first + count):
        (folder / f"store-{n:03d}.md").write_text(_article(n, version, extra), encoding="utf-8")


def _settings(data: Path, **values: Any) -> Settings:
    return Settings(data_dir=data, _env_file=None, **values)


def _create_tenant(data: Path) -> None:
    """The tenant, in the service's migrated database (as ``copilot tenants create`` makes it), without Chroma."""
    data.mkdir(parents=True, exist_ok=True)
    engine = open_database(_settings(data).resolved_database_url)
    Registry(engine, create_schema=False).create_tenant(TENANT)
    engine.dispose()


def _kind(found: IndexCheck, kind: str = "article") -> KindCheck:
    return next(k for k in found.kinds if k.kind == kind)


def _assert_whole(kb: KnowledgeBase) -> dict[str, int]:
    """Every document's chunks, in the registry, are all those of one edition (no mixture, none missing); returns
    each document's edition (its registry version too, for a document that existed since edition 1)."""
    documents = {d.document_id: d for d in kb.documents(TENANT)}
    chunks = defaultdict(list)
    for row in kb.registry.chunks(TENANT):
        chunks[row.document_id].append(row)
    assert set(chunks) <= set(documents)
    editions = {}
    for document_id, document in documents.items():
        assert document.chunk_count == len(chunks[document_id]) == 2, document_id
        found = {_version_of(row.text) for row in chunks[document_id]}
        assert len(found) == 1, f"{document_id} mixes editions {found}"
        editions[document_id] = found.pop()
    return editions


def _assert_consistent(kb: KnowledgeBase) -> None:
    """The index holds exactly the registry's live chunks, and queries reach them (HNSW is approximate: a graph
    just rebuilt can miss one or two of a query as large as the collection, as the check allows)."""
    found = kb.check(TENANT)
    assert found.ok, found.as_json()
    assert all(k.chunks == k.vectors and k.unreachable == 0 for k in found.kinds), found.as_json()


# --- the command line ---------------------------------------------------------------------------------------------


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COPILOT_DATABASE_URL", "COPILOT_CHROMA_URL")}
    return env | {"COPILOT_DATA_DIR": str(data), "PYTHONPATH": str(REPO)}


def _copilot(*args: str) -> list[str]:
    """A ``copilot`` command as its own process (run with ``_env``: the model cache folder comes with it)."""
    return [sys.executable, "-m", "api.cli", *args]


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """``copilot`` in this process, on ``tmp_path / "data"`` (this process's view of Chroma stays the same)."""
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COPILOT_DATABASE_URL", raising=False)
    monkeypatch.delenv("COPILOT_CHROMA_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def _invoke(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, list(args))


# --- kill -9 in the middle of an update ---------------------------------------------------------------------------

KILL_DOCS = 150


def _kill_after_first_commit(command: list[str], data: Path, cwd: Path) -> None:
    """Start ``command`` (an ingest of version 2) and SIGKILL it as soon as its first document committed."""
    database = sqlite3.connect(data / "copilot.db", timeout=30)
    log = cwd / "killed-ingest.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command, env=_env(data), cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr)
    started = time.monotonic()
    try:
        while True:
            committed = database.execute("SELECT count(*) FROM documents WHERE tenant = ? AND version = 2",
                                         (TENANT,)).fetchone()[0]
            if committed:
                process.send_signal(signal.SIGKILL)
                break
            if process.poll() is not None:
                pytest.fail(f"the ingest ended before it was killed: {log.read_text()[-2000:]}")
            assert time.monotonic() - started < 180, "no document committed in 180 s"
            time.sleep(0.002)
    finally:
        process.kill()
        process.wait()
        database.close()
    assert process.returncode == -signal.SIGKILL


def test_kill_9_mid_update_leaves_each_document_whole_and_a_rerun_finishes_it(
        tmp_path: Path, embedder: LocalEmbedder, runner: CliRunner) -> None:
    data, folder = tmp_path / "data", tmp_path / "content"
    _create_tenant(data)
    _write_corpus(folder, 1, KILL_DOCS)
    ingest = _copilot("knowledge", "ingest", str(folder), "--tenant", TENANT, "--json")
    first = subprocess.run(ingest, env=_env(data), cwd=tmp_path, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    _write_corpus(folder, 2, KILL_DOCS)

    _kill_after_first_commit(ingest, data, tmp_path)

    # a new process on the same data directory: the CLI's check sees what the crash left in the index
    check = _invoke(runner, "knowledge", "check", "--tenant", TENANT, "--json")
    assert check.exit_code == 4, check.output
    assert "--repair" in check.stderr
    kb = KnowledgeBase(_settings(data), embedder=embedder)
    versions = _assert_whole(kb)
    assert versions == {d.document_id: d.version for d in kb.documents(TENANT)}
    committed = sum(1 for v in versions.values() if v == 2)
    assert len(versions) == KILL_DOCS and set(versions.values()) <= {1, 2}
    assert 1 <= committed < KILL_DOCS
    found = _kind(kb.check(TENANT))
    # Chroma replays its log on open, so a kill -9 loses none of the vectors it acknowledged (with chromadb 1.5.9;
    # its HNSW files being lost is the test below): only vectors of no live chunk are left
    assert not found.missing and not found.unreachable, found.as_json()
    assert found.orphans, "the interrupted batch had staged its vectors"
    staged = {cid.split("#")[0] for cid in found.orphans if versions[cid.split("#")[0]] == 1}
    replaced = {cid.split("#")[0] for cid in found.orphans if versions[cid.split("#")[0]] == 2}
    assert staged and replaced <= {d for d, v in versions.items() if v == 2}
    # search answers, only from live versions: never a staged chunk, never a replaced one
    for query in ("returns reach the card within working days", "parcels wait at the front desk osprey"):
        results = kb.search(TENANT, query, k=20)
        assert results
        for passage in results:
            assert passage.chunk_id not in found.orphans
            assert _version_of(passage.text) == versions[passage.document_id]

    started = time.monotonic()
    rerun = _invoke(runner, "knowledge", "ingest", str(folder), "--tenant", TENANT, "--json")
    took = time.monotonic() - started

    assert rerun.exit_code == 0, rerun.output
    report = _json_line(rerun)
    assert (report["added"], report["updated"], report["unchanged"]) == (0, KILL_DOCS - committed, committed)
    assert report["failed"] == []
    assert report["repaired"] == {"orphans": len(found.orphans), "missing": 0, "unreachable": 0}
    assert set(_assert_whole(kb).values()) == {2}
    _assert_consistent(kb)
    assert _invoke(runner, "knowledge", "check", "--tenant", TENANT).exit_code == 0
    top = kb.search(TENANT, "how long does a return at store 42 take to reach my card")[0]
    assert top.document_id == "store-042.md" and _version_of(top.text) == 2
    print(f"\nkill -9 mid-update of {KILL_DOCS} documents: {committed} committed at version 2, {len(staged)} staged "
          f"(vectors written, not committed), {KILL_DOCS - committed - len(staged)} not reached; "
          f"{len(found.orphans)} orphan vectors; the rerun took {took:.1f} s")


def _json_line(result: Result) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


# --- Chroma's graph files lost --------------------------------------------------------------------------------------

FAQ_ROWS = 1100  # over Chroma's hnsw:sync_threshold (1000): the graph is written to files and the log purged


def _lose_hnsw_files(chroma: Path) -> int:
    """Delete the HNSW segment folders, as a power cut can leave them (Chroma fsyncs its SQLite, not these)."""
    segments = [p for p in chroma.iterdir() if p.is_dir() and (p / "header.bin").exists()]
    for segment in segments:
        shutil.rmtree(segment)
    return len(segments)


def test_lost_hnsw_files_are_found_by_check_and_rebuilt_from_the_registry(
        tmp_path: Path, embedder: LocalEmbedder, runner: CliRunner) -> None:
    data = tmp_path / "data"
    _create_tenant(data)
    faq = tmp_path / "faq.csv"
    faq.write_text("question,answer\n" + "".join(f"Where is locker {n}?,Locker {n} is in aisle {n * 7 % 97}.\n"
                                                 for n in range(FAQ_ROWS)), encoding="utf-8")
    ingest = subprocess.run(_copilot("knowledge", "ingest", str(faq), "--tenant", TENANT, "--json"),
                            env=_env(data), cwd=tmp_path, capture_output=True, text=True, check=False)
    assert ingest.returncode == 0, ingest.stderr
    assert _lose_hnsw_files(data / "chroma") >= 1

    check = _invoke(runner, "knowledge", "check", "--tenant", TENANT, "--json")

    assert check.exit_code == 4, check.output
    faq_kind = next(k for k in _json_line(check)["kinds"] if k["kind"] == "faq")
    # every id is still listed and counted: only a query shows that the graph lost them
    assert faq_kind["chunks"] == faq_kind["vectors"] == FAQ_ROWS and faq_kind["missing"] == 0
    assert faq_kind["unreachable"] > FAQ_ROWS // 2
    kb = KnowledgeBase(_settings(data), embedder=embedder)
    row = next(r for r in kb.registry.chunks(TENANT) if r.section == "Where is locker 517?")
    own_vector = embedder.embed_documents([embed_text(row.title, row.section, row.text)])[0]
    assert row.chunk_id not in dict(kb.vectors.query(TENANT, "faq", own_vector, 10))  # dense cannot find it
    assert kb.search(TENANT, "where is locker 517", kinds=["faq"])  # lexical still answers

    repair = _invoke(runner, "knowledge", "check", "--tenant", TENANT, "--repair", "--json")

    assert repair.exit_code == 0, repair.output
    payload = _json_line(repair)
    assert payload["ok"] and next(k for k in payload["before"] if k["kind"] == "faq")["unreachable"] > 0
    _assert_consistent(kb)
    assert kb.vectors.query(TENANT, "faq", own_vector, 1)[0][0] == row.chunk_id


# --- searches while an ingest replaces documents ------------------------------------------------------------------

MOVING = 12        # documents replaced at every generation
GENERATIONS = 6    # generation g writes version g of each (its edition word)
QUERIES = ("how long does a return take to reach my card", "when does the store open in the morning",
           "parcels wait at the front desk", "store 7 returns", "keep the receipt until the refund shows")


@dataclass
class Progress:
    """What the writer has started and finished; what the searchers saw."""

    started: int = 0
    finished: int = 0
    searches: int = 0
    during_ingest: int = 0
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _write_generation(folder: Path, generation: int) -> None:
    _write_corpus(folder, generation, MOVING)
    flicker = folder / "flicker.md"  # there in odd generations, pruned in even ones
    if generation % 2:
        flicker.write_text(_article(99, generation, "A flicker page. "), encoding="utf-8")
    else:
        flicker.unlink(missing_ok=True)


def _search_until(kb: KnowledgeBase, stop: threading.Event, progress: Progress, offset: int) -> None:
    """Search again and again; every result set is checked against what the writer had committed."""
    n = offset
    try:
        while not stop.is_set():
            finished_before = progress.finished
            results = kb.search(TENANT, QUERIES[n % len(QUERIES)], k=10)
            started_by_end = progress.started
            n += 1
            seen: dict[str, set[int]] = defaultdict(set)
            for passage in results:
                seen[passage.document_id].add(_version_of(passage.text))
            for document_id, versions in seen.items():
                assert len(versions) == 1, f"{document_id} mixes versions {versions} in one result set"
                version = versions.pop()
                # never older than what an ingest finished before the search began, never newer than one begun
                assert finished_before <= version <= started_by_end or document_id == "flicker.md", (
                    document_id, version, finished_before, started_by_end)
                if document_id != "flicker.md":  # committed: the registry holds this version or a later one
                    assert kb.registry.document(TENANT, document_id).version >= version
            if "flicker.md" in seen:  # removed by an even generation: not seen after that prune finished
                assert finished_before % 2 or started_by_end > finished_before, (finished_before, started_by_end)
            with progress.lock:
                progress.searches += 1
                progress.during_ingest += started_by_end > finished_before
    except BaseException as exc:
        progress.errors.append(exc)
        stop.set()


def test_searches_during_ingests_never_see_a_partial_or_mixed_document(
        tmp_path: Path, embedder: LocalEmbedder) -> None:
    """What "partial" could mean here, and why none of it shows: an ingest writes the new version's vectors (new chunk
    ids) before one transaction swaps the document's chunk rows, then deletes the old vectors. A search reads the
    live chunks of one knowledge version in one statement and takes from Chroma only ids among them, so a result set
    holds, per document, chunks of one committed version: never a staged chunk of a version not committed yet,
    never a replaced one, never both."""
    folder = tmp_path / "content"
    kb = KnowledgeBase(_settings(tmp_path / "data"), embedder=embedder)
    kb.create_tenant(TENANT)
    other = KnowledgeBase(_settings(tmp_path / "data"), embedder=embedder)  # a second reader, its own caches
    progress = Progress()
    _write_generation(folder, 1)
    kb.ingest(TENANT, [folder], prune=True)
    progress.started = progress.finished = 1

    stop = threading.Event()
    searchers = [threading.Thread(target=_search_until, args=(base, stop, progress, n), daemon=True)
                 for n, base in enumerate((kb, kb, other))]
    for searcher in searchers:
        searcher.start()
    try:
        for generation in range(2, GENERATIONS + 1):
            _write_generation(folder, generation)
            progress.started = generation
            report = kb.ingest(TENANT, [folder], prune=True)
            assert report.failed == [] and report.updated == MOVING, report.as_json()
            progress.finished = generation
            time.sleep(0.2)  # a few searches between two ingests too
            if stop.is_set():
                break
    finally:
        stop.set()
        for searcher in searchers:
            searcher.join(timeout=60)

    assert not progress.errors, progress.errors[0]
    assert progress.during_ingest >= 5, f"only {progress.during_ingest} of {progress.searches} searches overlapped"
    print(f"\n{progress.searches} searches, {progress.during_ingest} of them during one of {GENERATIONS - 1} ingests")
    editions = _assert_whole(kb)
    assert set(editions.values()) == {GENERATIONS} and "flicker.md" not in editions
    _assert_consistent(kb)


# --- a full or read-only disk ---------------------------------------------------------------------------------------


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[SmallVolume]:
    """A 16 MiB tmpfs: a real disk to run out of space on."""
    yield from small_volume(tmp_path / "volume")


def _runner_on(data: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """``copilot`` in this process, on the data directory ``data``."""
    monkeypatch.setenv("COPILOT_DATA_DIR", str(data))
    monkeypatch.delenv("COPILOT_DATABASE_URL", raising=False)
    monkeypatch.delenv("COPILOT_CHROMA_URL", raising=False)
    return CliRunner()


def test_ingest_on_a_full_disk_says_so_and_leaves_the_knowledge_whole(
        volume: SmallVolume, tmp_path: Path, embedder: LocalEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = volume.path / "data"
    kb = KnowledgeBase(_settings(data), embedder=embedder)
    kb.create_tenant(TENANT)
    folder = tmp_path / "content"
    _write_corpus(folder, 1, 30)
    kb.ingest(TENANT, [folder])
    _write_corpus(folder, 2, 30)
    _write_corpus(folder, 2, 100, first=30, extra="Bring the parcel unopened with all of its labels. " * 6)
    # room for the first batch's vectors, not for all of its commits (where it stops depends on sizes: what is
    # asserted below holds wherever it stops)
    volume.fill(leave_bytes=1200 * 1024)

    with pytest.raises(ServiceUnavailable, match="full") as caught:
        kb.ingest(TENANT, [folder])
    cli = _invoke(_runner_on(data, monkeypatch), "knowledge", "ingest", str(folder), "--tenant", TENANT)

    assert cli.exit_code == 3, cli.output
    assert "full" in cli.stderr and "internal error" not in cli.stderr
    volume.free()
    versions = _assert_whole(kb)  # each document whole at version 1 or 2; the new ones whole or absent
    assert all(versions.get(f"store-{n:03d}.md") in (1, 2) for n in range(30))
    found = kb.check(TENANT)
    assert not _kind(found).missing and not _kind(found).unreachable, found.as_json()
    results = kb.search(TENANT, "when does store 12 open in the morning")
    assert results[0].document_id == "store-012.md"
    assert _version_of(results[0].text) == versions["store-012.md"]

    # this process writes again: its embedded Chroma was reopened from its files after the failed write
    # (without that, chromadb 1.5.9 could hang here for good, holding the GIL, about one time in three)
    again = kb.ingest(TENANT, [folder])
    assert not again.failed, again.failed
    assert set(_assert_whole(kb).values()) == {2}

    # the operator runs the same command again, in a new process: nothing is left to do, and the index is whole
    rerun = subprocess.run(_copilot("knowledge", "ingest", str(folder), "--tenant", TENANT, "--json"),
                           env=_env(data), cwd=tmp_path, capture_output=True, text=True, check=False)
    check = subprocess.run(_copilot("knowledge", "check", "--tenant", TENANT, "--json"),
                           env=_env(data), cwd=tmp_path, capture_output=True, text=True, check=False)

    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["failed"] == [] and report["added"] + report["updated"] + report["unchanged"] == 130
    assert check.returncode == 0, check.stdout + check.stderr
    assert set(_assert_whole(kb).values()) == {2}
    committed = sum(v == 2 for v in versions.values())
    print(f"\nfull disk: {type(caught.value).__name__}: {caught.value.message}; {committed} documents had "
          f"committed version 2 before it filled; the rerun repaired {again.repaired}")


@pytest.fixture
def read_only_view(tmp_path: Path) -> Iterator[ReadOnlyView]:
    """``tmp_path / "rw"`` seen read-only at ``tmp_path / "ro"``."""
    view = ReadOnlyView(tmp_path / "rw", tmp_path / "ro")
    (tmp_path / "rw").mkdir()
    try:
        view.mount()
    except VolumeUnavailable as exc:
        pytest.skip(f"cannot make a read-only view here: {exc}")
    try:
        yield view
    finally:
        view.unmount()


def test_a_read_only_data_directory_is_refused_with_a_clear_error(
        read_only_view: ReadOnlyView, tmp_path: Path, embedder: LocalEmbedder,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    kb = KnowledgeBase(_settings(read_only_view.source / "data"), embedder=embedder)
    kb.create_tenant(TENANT)
    folder = tmp_path / "content"
    _write_corpus(folder, 1, 10)
    kb.ingest(TENANT, [folder])
    _write_corpus(folder, 2, 10)
    data = read_only_view.path / "data"

    cli = _invoke(_runner_on(data, monkeypatch), "knowledge", "ingest", str(folder), "--tenant", TENANT)
    with pytest.raises(ServiceUnavailable, match=r"read-?only"):
        KnowledgeBase(_settings(data), embedder=embedder)  # SQLite in WAL mode and Chroma both write on open

    assert cli.exit_code == 3, cli.output
    assert "read-only" in cli.stderr and "internal error" not in cli.stderr
    assert set(_assert_whole(kb).values()) == {1}
    report = kb.ingest(TENANT, [folder])  # the same data directory, writable
    assert report.updated == 10 and report.failed == []
    _assert_consistent(kb)


def test_ingest_with_a_read_only_database_stops_at_the_first_commit_and_keeps_the_old_versions(
        tmp_path: Path, embedder: LocalEmbedder) -> None:
    """Needs no mount: the database opened read-only (``mode=ro``) refuses the commit after the vectors were
    written; the ingest stops there, and the next one with a writable database sweeps those vectors."""
    data, folder = tmp_path / "data", tmp_path / "content"
    kb = KnowledgeBase(_settings(data), embedder=embedder)
    kb.create_tenant(TENANT)
    _write_corpus(folder, 1, 10)
    kb.ingest(TENANT, [folder])
    _write_corpus(folder, 2, 10)
    read_only = KnowledgeBase(_settings(data, database_url=f"sqlite:///file:{data / 'copilot.db'}?mode=ro&uri=true"),
                              embedder=embedder)

    with pytest.raises(StorageUnwritable, match="read-only"):
        read_only.ingest(TENANT, [folder])

    assert set(_assert_whole(kb).values()) == {1}
    assert _kind(kb.check(TENANT)).orphans  # the vectors written before the refused commit
    assert _version_of(kb.search(TENANT, "when does store 3 open")[0].text) == 1
    report = kb.ingest(TENANT, [folder])
    assert report.updated == 10 and report.repaired["orphans"] > 0
    _assert_consistent(kb)


def test_edition_words_parse_back_to_their_version() -> None:
    """A guard for the helpers above: each chunk's edition word gives its version."""
    assert [_version_of(_article(1, v)) for v in range(1, len(EDITIONS) + 1)] == list(range(1, len(EDITIONS) + 1))
    assert Counter(_EDITION.findall(_article(5, 2))) == Counter({"osprey": 2})


def test_a_database_that_cannot_be_read_at_search_time_is_service_unavailable(tmp_path: Path) -> None:
    """The knowledge version is read at every search: a database that fails there answers 503, not a raw error."""
    _create_tenant(tmp_path)
    engine = open_database(_settings(tmp_path).resolved_database_url)
    registry = Registry(engine, create_schema=False)
    try:
        assert registry.knowledge_version(TENANT) >= 0
        with sqlite3.connect(tmp_path / "copilot.db") as raw:
            raw.execute("DROP TABLE tenants")  # what a damaged or foreign database looks like to the query

        with pytest.raises(ServiceUnavailable):
            registry.knowledge_version(TENANT)
    finally:
        engine.dispose()
