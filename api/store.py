"""The service's own records: API keys, threads and messages, suggestions, feedback, audit log, jobs.

They live in the same database as the knowledge registry (one SQLAlchemy metadata, so a tenant's rows
go with the tenant), and the schema is Alembic's: ``migrate`` brings any database to the head revision.
Every read takes the tenant: another tenant's thread, suggestion or job is simply not found.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from api.job_owner import JobOwner
from copilot.conversation import Customer, Message, Thread
from copilot.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from copilot.suggest import SuggestionSet
from knowledge.registry import Base, database_error, make_engine, transaction

Role = Literal["agent", "content", "qa", "admin"]
ROLES: tuple[str, ...] = ("agent", "content", "qa", "admin")
FeedbackEvent = Literal["shown", "accepted", "edited", "rejected"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]
LIVE_JOB_STATUSES = ("queued", "running")
KEY_PREFIX = "cpk_"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# the revision whose tables are exactly the knowledge registry's (databases made before migrations)
REGISTRY_REVISION = "0001"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def hash_key(secret: str) -> str:
    """Keys are 256-bit random tokens, so one SHA-256 is enough: no salt or stretching needed."""
    return hashlib.sha256(secret.encode()).hexdigest()


# --- tables -----------------------------------------------------------------------------------------


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ThreadRow(Base):
    __tablename__ = "threads"
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    customer: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    message_count: Mapped[int] = mapped_column(Integer, default=0)


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("tenant", "thread_id", "message_id", name="uq_message_id"),)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(40))
    thread_id: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))


Index("ix_messages_thread", MessageRow.tenant, MessageRow.thread_id, MessageRow.seq)


class SuggestionSetRow(Base):
    __tablename__ = "suggestion_sets"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), index=True)
    thread_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    engine: Mapped[str] = mapped_column(String(20))
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    answered: Mapped[bool] = mapped_column(Boolean)
    query: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(200), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    fallback_from: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    # the thread as the engine saw it: feedback on the suggestion becomes an eval case (from-feedback)
    thread: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class SuggestionRow(Base):
    __tablename__ = "suggestions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    set_id: Mapped[str] = mapped_column(ForeignKey("suggestion_sets.id", ondelete="CASCADE"), index=True)
    tenant: Mapped[str] = mapped_column(String(40), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    macro_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class FeedbackRow(Base):
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(40), index=True)
    suggestion_id: Mapped[str] = mapped_column(ForeignKey("suggestions.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(20))
    final_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    edit_distance: Mapped[int | None] = mapped_column(Integer, nullable=True)
    edit_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)


class AuditRow(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(40), index=True)
    key_id: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(200))
    object_id: Mapped[str | None] = mapped_column(String(500), nullable=True)
    outcome: Mapped[str] = mapped_column(String(60))
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)


class EvalRunRow(Base):
    """An eval run made through the API (the job of the same id ran it); ``run`` is the whole run.json."""

    __tablename__ = "eval_runs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    engine: Mapped[str] = mapped_column(String(20))
    cases: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    run: Mapped[dict[str, Any]] = mapped_column(JSON)
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)


class JobRow(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), index=True)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    current: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    # the server process that runs it (``api.job_owner``), and when that process last said it still does
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# --- records handed out -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRecord:
    id: str
    tenant: str
    role: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class StoredThread:
    thread: Thread
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AppendResult:
    thread: StoredThread
    added: list[str]       # message ids stored now
    duplicates: list[str]  # message ids that were already there (a retry)
    idle_s: float | None   # how long the thread had been quiet before these messages


@dataclass(frozen=True)
class SuggestionRecord:
    id: str
    set_id: str
    tenant: str
    text: str
    source: str
    confidence: float
    engine: str
    intent: str | None
    thread_id: str | None


@dataclass(frozen=True)
class JobRecord:
    id: str
    tenant: str
    kind: str
    status: str
    done: int
    total: int
    current: str | None
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime


def _key(row: ApiKeyRow) -> KeyRecord:
    return KeyRecord(row.id, row.tenant, row.role, row.name, _aware(row.created_at) or _now(),
                     _aware(row.revoked_at))


def _job(row: JobRow) -> JobRecord:
    return JobRecord(row.id, row.tenant, row.kind, row.status, row.done, row.total, row.current, row.result,
                     row.error, _aware(row.created_at) or _now(), _aware(row.updated_at) or _now())


# --- migrations -------------------------------------------------------------------------------------


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> str:
    """Bring the database to the head revision; returns it. A database that holds the registry's tables
    but no revision (made before migrations existed) is stamped at the registry revision first."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            current = MigrationContext.configure(connection).get_current_revision()
            if current is None and inspect(connection).has_table("tenants"):
                command.stamp(config, REGISTRY_REVISION)
            command.upgrade(config, "head")
            head = MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise database_error(exc, engine, "database unavailable") from exc
    return head or ""


def open_database(url: str) -> Engine:
    """An engine on the service database, migrated to the head revision."""
    engine = make_engine(url)
    migrate(engine)
    return engine


# --- the store --------------------------------------------------------------------------------------


class Store:
    """Keys, threads, suggestions, feedback, audit and jobs of every tenant, in one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def session(self) -> AbstractContextManager[Session]:
        return transaction(self._sessions)

    def ping(self) -> bool:
        try:
            with self.session() as session:
                session.execute(select(1))
            return True
        except ServiceUnavailable:
            return False

    # --- keys ---

    def create_key(self, tenant: str, role: str, name: str = "") -> tuple[KeyRecord, str]:
        """A new key for the tenant; the secret is returned once and only its hash is kept."""
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(id=f"key_{uuid.uuid4().hex[:12]}", tenant=tenant, role=role, name=name or role,
                        key_hash=hash_key(secret), created_at=_now())
        with self.session() as session:
            session.add(row)
        return _key(row), secret

    def revoke_key(self, key_id: str, tenant: str | None = None) -> KeyRecord:
        with self.session() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or (tenant is not None and row.tenant != tenant):
                raise NotFound(f"no API key {key_id!r}", key_id=key_id)
            if row.revoked_at is None:
                row.revoked_at = _now()
            return _key(row)

    def keys(self, tenant: str | None = None) -> list[KeyRecord]:
        with self.session() as session:
            query = select(ApiKeyRow).order_by(ApiKeyRow.tenant, ApiKeyRow.created_at)
            if tenant is not None:
                query = query.where(ApiKeyRow.tenant == tenant)
            return [_key(row) for row in session.scalars(query)]

    def authenticate(self, secret: str) -> KeyRecord | None:
        """The live key with this secret, or None (unknown and revoked keys look the same)."""
        with self.session() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(secret)))
            if row is None or row.revoked_at is not None:
                return None
            return _key(row)

    # --- threads ---

    def put_thread(self, tenant: str, thread_id: str, thread: Thread, max_messages: int) -> StoredThread:
        """Create or replace a thread with its messages."""
        _check_ids(thread.messages)
        if len(thread.messages) > max_messages:
            raise InvalidInput(f"a thread holds at most {max_messages} messages; this one has {len(thread.messages)}")
        now = _now()
        with self.session() as session:
            row = session.get(ThreadRow, (tenant, thread_id), with_for_update=True)
            if row is None:
                row = ThreadRow(tenant=tenant, id=thread_id, created_at=now)
                session.add(row)
            else:
                session.execute(delete(MessageRow).where(MessageRow.tenant == tenant,
                                                         MessageRow.thread_id == thread_id))
            row.channel = thread.channel.value
            row.customer = thread.customer.model_dump(mode="json", exclude_none=True)
            row.updated_at = now
            row.message_count = len(thread.messages)
            session.flush()
            session.add_all(_message_row(tenant, thread_id, m, now) for m in thread.messages)
        return self.thread(tenant, thread_id)

    def append_messages(self, tenant: str, thread_id: str, messages: Sequence[Message],
                        max_messages: int) -> AppendResult:
        """Append in order; a message whose id is already stored is a retry and is skipped, unless
        its text differs (a different message under a reused id is a conflict)."""
        _check_ids(messages)
        now = _now()
        with self.session() as session:
            row = session.get(ThreadRow, (tenant, thread_id), with_for_update=True)
            if row is None:
                raise NotFound(f"no thread {thread_id!r}; create it with PUT /v1/threads/{thread_id}",
                               thread_id=thread_id)
            ids = [m.id for m in messages if m.id]
            stored = {r.message_id: r for r in session.scalars(select(MessageRow).where(
                MessageRow.tenant == tenant, MessageRow.thread_id == thread_id,
                MessageRow.message_id.in_(ids)))} if ids else {}
            last_ts = session.scalar(select(func.max(MessageRow.ts)).where(
                MessageRow.tenant == tenant, MessageRow.thread_id == thread_id))
            added: list[str] = []
            duplicates: list[str] = []
            new_rows = []
            for message in messages:
                old = stored.get(message.id or "")
                if old is not None:
                    if old.text != message.text or old.role != message.role:
                        raise Conflict(f"message id {message.id!r} is already used by another message of this "
                                       "thread", message_id=message.id)
                    duplicates.append(old.message_id)
                    continue
                new_row = _message_row(tenant, thread_id, message, now)
                new_rows.append(new_row)
                added.append(new_row.message_id)
            if row.message_count + len(new_rows) > max_messages:
                raise InvalidInput(f"a thread holds at most {max_messages} messages; this append would make "
                                   f"{row.message_count + len(new_rows)}")
            session.add_all(new_rows)
            idle_s = None
            if new_rows and last_ts is not None:
                first_new = min(_aware(r.ts) or now for r in new_rows)
                idle_s = (first_new - (_aware(last_ts) or now)).total_seconds()
            if new_rows:
                row.message_count += len(new_rows)
                row.updated_at = now
        return AppendResult(self.thread(tenant, thread_id), added, duplicates, idle_s)

    def thread(self, tenant: str, thread_id: str) -> StoredThread:
        with self.session() as session:
            row = session.get(ThreadRow, (tenant, thread_id))
            if row is None:
                raise NotFound(f"no thread {thread_id!r}", thread_id=thread_id)
            messages = [
                Message(id=m.message_id, role=m.role, text=m.text, ts=_aware(m.ts))
                for m in session.scalars(select(MessageRow).where(
                    MessageRow.tenant == tenant, MessageRow.thread_id == thread_id).order_by(MessageRow.seq))
            ]
            thread = Thread(id=row.id, channel=row.channel, tenant=tenant,
                            customer=Customer.model_validate(row.customer or {}), messages=messages)
            return StoredThread(thread, _aware(row.created_at) or _now(), _aware(row.updated_at) or _now())

    def threads(self, tenant: str, limit: int = 100) -> list[tuple[str, str, int, datetime]]:
        """(id, channel, message count, updated at) of the tenant's threads, most recently active first."""
        with self.session() as session:
            rows = session.execute(select(ThreadRow.id, ThreadRow.channel, ThreadRow.message_count,
                                          ThreadRow.updated_at).where(ThreadRow.tenant == tenant)
                                   .order_by(ThreadRow.updated_at.desc()).limit(limit))
            return [(i, c, n, _aware(u) or _now()) for i, c, n, u in rows]

    # --- suggestions and feedback ---

    def record_suggestions(self, tenant: str, result: SuggestionSet, *, key_id: str | None,
                           intent: str | None, thread: dict[str, Any] | None = None) -> str:
        """Keep what was offered (for feedback, analytics and audit); returns the set id."""
        set_id = f"set_{uuid.uuid4().hex[:16]}"
        with self.session() as session:
            session.add(SuggestionSetRow(
                id=set_id, tenant=tenant, thread_id=result.thread_id, key_id=key_id, engine=result.engine,
                model=result.model, answered=result.answered, query=result.query[:4000], intent=intent,
                note=result.note, fallback_from=result.fallback_from, created_at=_now(), thread=thread))
            session.flush()
            session.add_all(SuggestionRow(
                id=s.id, set_id=set_id, tenant=tenant, rank=rank, text=s.text, source=s.source,
                confidence=s.confidence, macro_id=s.macro_id,
                citations=[c.model_dump() for c in s.citations]) for rank, s in enumerate(result.suggestions))
        return set_id

    def suggestion(self, tenant: str, suggestion_id: str) -> SuggestionRecord:
        with self.session() as session:
            found = session.execute(
                select(SuggestionRow, SuggestionSetRow)
                .join(SuggestionSetRow, SuggestionRow.set_id == SuggestionSetRow.id)
                .where(SuggestionRow.id == suggestion_id, SuggestionRow.tenant == tenant)).first()
            if found is None:
                raise NotFound(f"no suggestion {suggestion_id!r}", suggestion_id=suggestion_id)
            row, set_row = found
            return SuggestionRecord(row.id, row.set_id, row.tenant, row.text, row.source, row.confidence,
                                    set_row.engine, set_row.intent, set_row.thread_id)

    def add_feedback(self, tenant: str, suggestion_id: str, event: str, *, final_text: str | None,
                     reason: str | None, edit_distance: int | None, edit_ratio: float | None,
                     key_id: str | None) -> int:
        self.suggestion(tenant, suggestion_id)
        with self.session() as session:
            row = FeedbackRow(tenant=tenant, suggestion_id=suggestion_id, event=event, final_text=final_text,
                              reason=reason, edit_distance=edit_distance, edit_ratio=edit_ratio, key_id=key_id,
                              at=_now())
            session.add(row)
            session.flush()
            return row.id

    def feedback_rows(self, tenant: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Every feedback event of the period with what its suggestion was (for analytics)."""
        with self.session() as session:
            rows = session.execute(
                select(FeedbackRow.suggestion_id, FeedbackRow.event, FeedbackRow.reason, FeedbackRow.edit_distance,
                       FeedbackRow.edit_ratio, FeedbackRow.at, FeedbackRow.final_text, SuggestionRow.source,
                       SuggestionRow.text, SuggestionSetRow.intent, SuggestionSetRow.engine,
                       SuggestionSetRow.thread_id)
                .join(SuggestionRow, FeedbackRow.suggestion_id == SuggestionRow.id)
                .join(SuggestionSetRow, SuggestionRow.set_id == SuggestionSetRow.id)
                .where(FeedbackRow.tenant == tenant, FeedbackRow.at >= since, FeedbackRow.at < until)
                .order_by(FeedbackRow.id))
            return [dict(r._mapping) for r in rows]

    def accepted_suggestions(self, tenant: str, since: datetime) -> list[dict[str, Any]]:
        """The latest accepted or edited feedback per suggestion since ``since``, with the suggestion, its
        citations and the thread it answered (sets recorded before threads were kept have none)."""
        with self.session() as session:
            latest = (select(func.max(FeedbackRow.id).label("id"))
                      .where(FeedbackRow.tenant == tenant, FeedbackRow.at >= since,
                             FeedbackRow.event.in_(["accepted", "edited"]))
                      .group_by(FeedbackRow.suggestion_id).subquery())
            rows = session.execute(
                select(FeedbackRow.suggestion_id, FeedbackRow.event, FeedbackRow.final_text, FeedbackRow.at,
                       SuggestionRow.text, SuggestionRow.source, SuggestionRow.macro_id, SuggestionRow.citations,
                       SuggestionSetRow.intent, SuggestionSetRow.thread, SuggestionSetRow.thread_id)
                .join(latest, latest.c.id == FeedbackRow.id)
                .join(SuggestionRow, FeedbackRow.suggestion_id == SuggestionRow.id)
                .join(SuggestionSetRow, SuggestionRow.set_id == SuggestionSetRow.id)
                .order_by(FeedbackRow.id))
            return [dict(r._mapping) for r in rows]

    def suggestion_sets(self, tenant: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """The suggestion sets of the period: engine, answered, query, intent, and how many suggestions."""
        with self.session() as session:
            counts = (select(SuggestionRow.set_id, func.count().label("n")).group_by(SuggestionRow.set_id)
                      .subquery())
            rows = session.execute(
                select(SuggestionSetRow.id, SuggestionSetRow.engine, SuggestionSetRow.answered,
                       SuggestionSetRow.query, SuggestionSetRow.intent, SuggestionSetRow.fallback_from,
                       SuggestionSetRow.created_at, func.coalesce(counts.c.n, 0).label("suggestions"))
                .outerjoin(counts, counts.c.set_id == SuggestionSetRow.id)
                .where(SuggestionSetRow.tenant == tenant, SuggestionSetRow.created_at >= since,
                       SuggestionSetRow.created_at < until)
                .order_by(SuggestionSetRow.created_at))
            return [{**r._mapping, "created_at": _aware(r.created_at)} for r in rows]

    # --- audit ---

    def audit(self, *, tenant: str, key_id: str, role: str, method: str, route: str, object_id: str | None,
              outcome: str, request_id: str | None) -> None:
        with self.session() as session:
            session.add(AuditRow(tenant=tenant, key_id=key_id, role=role, method=method, route=route,
                                 object_id=object_id, outcome=outcome, request_id=request_id, at=_now()))

    def audit_log(self, tenant: str, limit: int = 100) -> list[dict[str, Any]]:
        with self.session() as session:
            rows = session.execute(
                select(AuditRow.at, AuditRow.key_id, AuditRow.role, AuditRow.method, AuditRow.route,
                       AuditRow.object_id, AuditRow.outcome, AuditRow.request_id)
                .where(AuditRow.tenant == tenant).order_by(AuditRow.id.desc()).limit(limit))
            return [{**r._mapping, "at": _aware(r.at)} for r in rows]

    # --- jobs ---

    def create_job(self, tenant: str, kind: str, *, total: int = 0, key_id: str | None = None,
                   owner: str | None = None) -> JobRecord:
        """A queued job; ``owner`` is the process that will run it (``str(JobOwner.current())``)."""
        row = JobRow(id=f"job_{uuid.uuid4().hex[:16]}", tenant=tenant, kind=kind, status="queued", done=0,
                     total=total, key_id=key_id, created_at=_now(), updated_at=_now(), owner=owner)
        with self.session() as session:
            session.add(row)
        return _job(row)

    def update_job(self, job_id: str, *, status: str | None = None, done: int | None = None,
                   total: int | None = None, current: str | None = None, result: dict[str, Any] | None = None,
                   error: str | None = None) -> None:
        values: dict[str, Any] = {"updated_at": _now()}
        for name, value in (("status", status), ("done", done), ("total", total), ("current", current),
                            ("result", result), ("error", error)):
            if value is not None:
                values[name] = value
        with self.session() as session:
            session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))

    def job(self, tenant: str, job_id: str) -> JobRecord:
        with self.session() as session:
            row = session.get(JobRow, job_id)
            if row is None or row.tenant != tenant:
                raise NotFound(f"no job {job_id!r}", job_id=job_id)
            return _job(row)

    # --- eval runs ---

    def save_eval_run(self, tenant: str, run: dict[str, Any], *, key_id: str | None) -> None:
        metrics = {name: m["value"] for name, m in run.get("metrics", {}).items()}
        with self.session() as session:
            session.add(EvalRunRow(id=run["id"], tenant=tenant, name=str(run.get("name", ""))[:200],
                                   engine=str(run.get("engine", "")), cases=len(run.get("cases", [])),
                                   passed=bool(run.get("passed")), metrics=metrics, run=run, key_id=key_id,
                                   created_at=_now()))

    def eval_run(self, tenant: str, run_id: str) -> dict[str, Any] | None:
        with self.session() as session:
            row = session.get(EvalRunRow, run_id)
            return dict(row.run) if row is not None and row.tenant == tenant else None

    def eval_runs(self, tenant: str, limit: int = 100) -> list[dict[str, Any]]:
        """The tenant's eval runs, newest first, without their cases."""
        with self.session() as session:
            rows = session.scalars(select(EvalRunRow).where(EvalRunRow.tenant == tenant)
                                   .order_by(EvalRunRow.created_at.desc()).limit(limit))
            return [{"id": r.id, "name": r.name, "engine": r.engine, "cases": r.cases, "passed": r.passed,
                     "metrics": r.metrics, "created_at": _aware(r.created_at) or _now()} for r in rows]

    def touch_jobs(self, owner: str) -> int:
        """Mark the queued and running jobs of ``owner`` as alive (its ``JobHeartbeat`` calls this)."""
        with self.session() as session:
            return _rowcount(session.execute(update(JobRow).where(
                JobRow.owner == owner, JobRow.status.in_(LIVE_JOB_STATUSES)).values(heartbeat_at=_now())))

    def fail_interrupted_jobs(self, stale_after_s: float, *, here: JobOwner | None = None) -> int:
        """Fail the queued and running jobs that provably lost their process, so nobody waits on them; returns
        how many. A job whose owner runs on this machine (``here``) is failed when that process is gone, and
        kept while it runs; any other (another machine's, or one without an owner) once it showed no sign of
        life, progress or heartbeat, for ``stale_after_s``. See ``api.job_owner``."""
        here = here or JobOwner.current()
        live = JobRow.status.in_(LIVE_JOB_STATUSES)
        with self.session() as session:
            rows = session.execute(select(JobRow.id, JobRow.owner).where(live)).all()
        gone: dict[str, list[str]] = {}
        unknown: list[str] = []
        verdicts: dict[str, bool | None] = {}  # owner -> gone (True), running (False), can't tell (None)
        for job_id, owner_text in rows:
            key = owner_text or ""
            if key not in verdicts:
                owner = JobOwner.parse(key)
                verdicts[key] = owner.is_gone() if owner is not None and owner.is_here(here) else None
            if verdicts[key] is None:
                unknown.append(job_id)
            elif verdicts[key]:
                gone.setdefault(key, []).append(job_id)
        failed = 0
        with self.session() as session:
            for owner_text, ids in gone.items():
                failed += _rowcount(session.execute(update(JobRow).where(JobRow.id.in_(ids), live).values(
                    status="failed", updated_at=_now(),
                    error=_interrupted(f"its server process ({owner_text}) stopped before it finished"))))
            if unknown:
                cutoff = _now() - timedelta(seconds=stale_after_s)
                failed += _rowcount(session.execute(update(JobRow).where(
                    JobRow.id.in_(unknown), live, JobRow.updated_at < cutoff,
                    or_(JobRow.heartbeat_at.is_(None), JobRow.heartbeat_at < cutoff)).values(
                    status="failed", updated_at=_now(),
                    error=_interrupted(f"its server process showed no sign of life for {stale_after_s:.0f} s"))))
        return failed


def _interrupted(why: str) -> str:
    return f"interrupted: {why}; start it again (an upload's documents stay at the version they had)"


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _check_ids(messages: Sequence[Message]) -> None:
    ids = [m.id for m in messages if m.id]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise InvalidInput(f"message ids must be unique within a request; repeated: {repeated}")


def _message_row(tenant: str, thread_id: str, message: Message, now: datetime) -> MessageRow:
    return MessageRow(tenant=tenant, thread_id=thread_id, message_id=message.id or f"msg_{uuid.uuid4().hex[:16]}",
                      role=message.role.value if hasattr(message.role, "value") else str(message.role),
                      text=message.text, ts=message.ts or now)
