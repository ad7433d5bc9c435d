"""The service store on both databases it supports: SQLite (the default) and the PostgreSQL server.

The PostgreSQL tests run in a database of their own, made and dropped here; they are skipped, with the
reason shown, only when no server answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text, update
from sqlalchemy.engine import Engine

from api.job_owner import JobHeartbeat, JobOwner
from api.store import JobRow, Store, alembic_config, migrate
from copilot.conversation import Message, Thread
from copilot.errors import Conflict, InvalidInput, NotFound
from copilot.suggest import Citation, Suggestion, SuggestionSet
from knowledge.registry import Base, Registry, make_engine

PG_ADMIN_URL = os.environ.get("COPILOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_database() -> Iterator[str]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            name = f"copilot_test_{uuid.uuid4().hex[:10]}"
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server: skip with the reason, never silently
        admin.dispose()
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN_URL}: {type(exc).__name__}: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = make_engine(f"sqlite:///{tmp_path / 'copilot.db'}")
        yield made
        made.dispose()
        return
    for url in _postgres_database():
        made = make_engine(url)
        yield made
        made.dispose()


@pytest.fixture
def store(engine: Engine) -> Store:
    migrate(engine)
    registry = Registry(engine, create_schema=False)
    registry.create_tenant("acme")
    registry.create_tenant("globex")
    return Store(engine)


def _thread(*texts: str, start: datetime | None = None) -> Thread:
    start = start or datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    return Thread(channel="sms", customer={"name": "Ana"}, messages=[
        Message(id=f"m{i}", role="customer" if i % 2 == 0 else "agent", text=t, ts=start + timedelta(minutes=i))
        for i, t in enumerate(texts)])


def _suggestions(thread_id: str) -> SuggestionSet:
    citation = Citation(chunk_id="c1", document_id="roaming.md", title="Roaming", passage="Roaming costs 5 pounds.")
    return SuggestionSet(thread_id=thread_id, engine="grounded", answered=True, query="how much is roaming",
                         suggestions=[Suggestion(text="Roaming costs 5 pounds a day.", messages=["x"],
                                                 source="knowledge", confidence=0.8, citations=[citation])])


def test_migrations_build_exactly_the_models_schema(engine: Engine) -> None:
    assert migrate(engine) == migrate(engine)  # a second run is a no-op
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_a_database_made_before_migrations_is_stamped_then_upgraded(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    Registry(engine).create_tenant("acme")  # the registry's own tables, as the knowledge tools make them

    migrate(engine)

    tables = set(inspect(engine).get_table_names())
    assert {"api_keys", "threads", "messages", "suggestions", "feedback", "audit_log", "jobs"} <= tables
    assert Registry(engine, create_schema=False).tenants() == ["acme"]


def test_keys_keep_only_a_hash_and_revoked_keys_stop_at_once(store: Store) -> None:
    record, secret = store.create_key("acme", "agent", "console")

    assert store.authenticate(secret) == record
    with store.engine.connect() as connection:
        stored = [tuple(row) for row in connection.execute(text("select * from api_keys"))]
    assert secret not in repr(stored)
    store.revoke_key(record.id)
    assert store.authenticate(secret) is None
    with pytest.raises(NotFound):
        store.revoke_key(record.id, tenant="globex")  # another tenant's key is not found
    with pytest.raises(InvalidInput):
        store.create_key("acme", "superuser")


def test_appends_are_idempotent_by_message_id_and_keep_order(store: Store) -> None:
    store.put_thread("acme", "t1", _thread("hi", "hello"), max_messages=100)
    retry = [Message(id="m1", role="agent", text="hello"), Message(id="m2", role="customer", text="roaming?")]

    first = store.append_messages("acme", "t1", retry, max_messages=100)
    again = store.append_messages("acme", "t1", retry, max_messages=100)

    assert (first.added, first.duplicates) == (["m2"], ["m1"])
    assert (again.added, again.duplicates) == ([], ["m1", "m2"])
    assert [m.text for m in store.thread("acme", "t1").thread.messages] == ["hi", "hello", "roaming?"]


def test_a_reused_message_id_with_other_text_is_a_conflict_and_stores_nothing(store: Store) -> None:
    store.put_thread("acme", "t1", _thread("hi"), max_messages=100)

    with pytest.raises(Conflict):
        store.append_messages("acme", "t1", [Message(id="new", role="customer", text="a"),
                                             Message(id="m0", role="customer", text="not hi")], max_messages=100)

    assert [m.id for m in store.thread("acme", "t1").thread.messages] == ["m0"]


def test_thread_limits_and_tenants(store: Store) -> None:
    store.put_thread("acme", "t1", _thread("a", "b"), max_messages=3)

    with pytest.raises(InvalidInput, match="at most 3"):
        store.append_messages("acme", "t1", [Message(id="x", role="customer", text="c"),
                                             Message(id="y", role="customer", text="d")], max_messages=3)
    with pytest.raises(NotFound):
        store.thread("globex", "t1")
    with pytest.raises(NotFound):
        store.append_messages("globex", "t1", [Message(id="z", role="customer", text="e")], max_messages=3)
    assert len(store.thread("acme", "t1").thread.messages) == 2


def test_the_idle_time_before_an_append_is_measured(store: Store) -> None:
    store.put_thread("acme", "t1", _thread("hi", start=datetime(2026, 11, 20, 9, 0, tzinfo=UTC)), max_messages=10)
    later = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)

    result = store.append_messages("acme", "t1", [Message(id="m9", role="customer", text="still there?", ts=later)],
                                   max_messages=10)

    assert result.idle_s == pytest.approx(5 * 3600)


def test_suggestions_feedback_and_audit_are_kept_per_tenant(store: Store) -> None:
    offered = _suggestions("t1")
    store.record_suggestions("acme", offered, key_id="key_1", intent="roaming")
    suggestion_id = offered.suggestions[0].id

    store.add_feedback("acme", suggestion_id, "edited", final_text="Roaming is 5 pounds a day.", reason=None,
                       edit_distance=5, edit_ratio=0.2, key_id="key_1")
    store.audit(tenant="acme", key_id="key_1", role="agent", method="POST", route="/v1/feedback",
                object_id=None, outcome="ok", request_id="r1")

    now = datetime.now(UTC)
    rows = store.feedback_rows("acme", now - timedelta(hours=1), now + timedelta(hours=1))
    assert [(r["event"], r["source"], r["intent"], r["edit_distance"]) for r in rows] == [
        ("edited", "knowledge", "roaming", 5)]
    assert store.suggestion("acme", suggestion_id).text == "Roaming costs 5 pounds a day."
    with pytest.raises(NotFound):
        store.suggestion("globex", suggestion_id)
    with pytest.raises(NotFound):
        store.add_feedback("globex", suggestion_id, "accepted", final_text=None, reason=None, edit_distance=0,
                           edit_ratio=0.0, key_id="key_2")
    assert store.feedback_rows("globex", now - timedelta(hours=1), now + timedelta(hours=1)) == []
    assert [e["route"] for e in store.audit_log("acme")] == ["/v1/feedback"]
    assert store.audit_log("globex") == []


@pytest.fixture
def other_process() -> Iterator[JobOwner]:
    """Another live process of this machine, as another worker or server is."""
    process = subprocess.Popen(["sleep", "120"])
    try:
        yield JobOwner.of_pid(process.pid)
    finally:
        process.kill()
        process.wait()


def _gone_process() -> JobOwner:
    """A process of this machine that ran and exited, as a worker that crashed has."""
    process = subprocess.Popen(["sleep", "0"])
    owner = JobOwner.of_pid(process.pid)
    process.wait()
    return owner


def _age(store: Store, job_id: str, seconds: float) -> None:
    """Make a job look as if nothing touched it for ``seconds``."""
    with store.session() as session:
        session.execute(update(JobRow).where(JobRow.id == job_id).values(
            updated_at=datetime.now(UTC) - timedelta(seconds=seconds)))


def test_jobs_report_progress_and_interrupted_ones_fail(store: Store) -> None:
    job = store.create_job("acme", "ingest", total=4, key_id="key_1", owner=str(_gone_process()))
    store.update_job(job.id, status="running", done=2, current="faq.csv")

    seen = store.job("acme", job.id)
    assert (seen.status, seen.done, seen.total, seen.current) == ("running", 2, 4, "faq.csv")
    with pytest.raises(NotFound):
        store.job("globex", job.id)
    assert store.fail_interrupted_jobs(300) == 1
    failed = store.job("acme", job.id)
    assert failed.status == "failed" and "interrupted" in (failed.error or "")


def test_a_starting_process_fails_only_jobs_whose_process_is_gone(store: Store, other_process: JobOwner) -> None:
    here = JobOwner.current()
    elsewhere = replace(other_process, host="another-host")
    reused_pid = replace(here, started=str(int(here.started or "0") + 1))  # our pid, another process's start
    jobs = {name: store.create_job("acme", "ingest", owner=str(owner)).id for name, owner in [
        ("this process", here), ("live other process", other_process), ("dead pid", _gone_process()),
        ("reused pid", reused_pid), ("other host, recent", elsewhere), ("other host, stale", elsewhere)]}
    jobs["no owner, recent"] = store.create_job("acme", "ingest").id
    jobs["no owner, stale"] = store.create_job("acme", "eval").id
    store.update_job(jobs["live other process"], status="running", done=1)
    for name in ("other host, stale", "no owner, stale"):
        _age(store, jobs[name], 600)

    failed = store.fail_interrupted_jobs(300, here=here)

    status = {name: store.job("acme", job_id).status for name, job_id in jobs.items()}
    assert status == {"this process": "queued", "live other process": "running", "dead pid": "failed",
                      "reused pid": "failed", "other host, recent": "queued", "other host, stale": "failed",
                      "no owner, recent": "queued", "no owner, stale": "failed"}
    assert failed == 4
    assert "stopped" in (store.job("acme", jobs["dead pid"]).error or "")
    assert "no sign of life for 300 s" in (store.job("acme", jobs["no owner, stale"]).error or "")


def test_a_heartbeat_keeps_a_quiet_job_of_another_host_alive(store: Store) -> None:
    elsewhere = replace(JobOwner.current(), host="another-host")
    waiting = store.create_job("acme", "ingest", owner=str(elsewhere))  # queued behind a long job: no progress
    _age(store, waiting.id, 600)

    assert store.touch_jobs(str(elsewhere)) == 1
    assert store.fail_interrupted_jobs(300) == 0
    assert store.job("acme", waiting.id).status == "queued"


def test_a_processs_heartbeat_touches_its_jobs_and_fails_those_of_gone_processes(store: Store) -> None:
    here = JobOwner.current()
    mine = store.create_job("acme", "ingest", owner=str(here))
    crashed = store.create_job("acme", "ingest", owner=str(_gone_process()))
    heartbeat = JobHeartbeat(store, here, stale_after_s=0.2)  # beats every 0.05 s
    heartbeat.start()
    try:
        deadline = time.monotonic() + 10
        while store.job("acme", crashed.id).status != "failed":
            assert time.monotonic() < deadline, "the heartbeat never failed the crashed process's job"
            time.sleep(0.02)
    finally:
        heartbeat.stop()
    with store.session() as session:
        assert session.get(JobRow, mine.id).heartbeat_at is not None  # type: ignore[union-attr]
    assert store.job("acme", mine.id).status == "queued"


def test_owners_read_back_and_another_machines_pid_is_never_judged(other_process: JobOwner) -> None:
    assert JobOwner.parse(str(other_process)) == other_process
    assert JobOwner.parse("") is None and JobOwner.parse("legacy") is None
    assert not other_process.is_gone() and _gone_process().is_gone()
    assert not replace(other_process, namespace="1").is_here(JobOwner.current())


def test_the_job_owner_migration_upgrades_a_database_with_jobs(engine: Engine) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    Registry(engine, create_schema=False).create_tenant("acme")
    before = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(text("insert into jobs (id, tenant, kind, status, done, total, created_at, updated_at) "
                                "values ('job_old', 'acme', 'ingest', 'running', 1, 3, :at, :at)"), {"at": before})

    migrate(engine)

    columns = {c["name"] for c in inspect(engine).get_columns("jobs")}
    assert {"owner", "heartbeat_at"} <= columns
    store = Store(engine)
    assert store.fail_interrupted_jobs(300) == 0  # a job of the old version's process, still fresh: kept
    assert store.job("acme", "job_old").status == "running"
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
