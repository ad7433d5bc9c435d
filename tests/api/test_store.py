"""The service store on both databases it supports: SQLite (the default) and the PostgreSQL server.

The PostgreSQL tests run in a database of their own, made and dropped here; they are skipped, with the
reason shown, only when no server answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from api.store import Store, migrate
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


def test_jobs_report_progress_and_interrupted_ones_fail(store: Store) -> None:
    job = store.create_job("acme", "ingest", total=4, key_id="key_1")
    store.update_job(job.id, status="running", done=2, current="faq.csv")

    seen = store.job("acme", job.id)
    assert (seen.status, seen.done, seen.total, seen.current) == ("running", 2, 4, "faq.csv")
    with pytest.raises(NotFound):
        store.job("globex", job.id)
    assert store.fail_interrupted_jobs() == 1
    failed = store.job("acme", job.id)
    assert failed.status == "failed" and "interrupted" in (failed.error or "")
