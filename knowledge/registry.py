"""The document registry: tenants, documents with their versions, and the text of every live chunk.

The registry is the source of truth. A document version is live once its row commits here; the vector
index may hold chunks of versions that never committed (a crash mid-ingest), and those are ignored by
retrieval and swept on the next ingest. ``reindex`` rebuilds the vector index from these rows.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from copilot.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    StorageUnwritable,
    TenantExists,
    UnknownTenant,
)
from knowledge.documents import Chunk, SourceDocument

TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,38}[a-z0-9]$")


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


class TenantRow(Base):
    __tablename__ = "tenants"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    knowledge_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class DocumentRow(Base):
    __tablename__ = "documents"
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), primary_key=True)
    document_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(20))
    tags: Mapped[list[str]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    chunk_count: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(200))


class DocumentVersionRow(Base):
    __tablename__ = "document_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), index=True)
    document_id: Mapped[str] = mapped_column(String(500), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(20))
    chunk_count: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    by: Mapped[str] = mapped_column(String(200))


class ChunkRow(Base):
    __tablename__ = "chunks"
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), primary_key=True)
    chunk_id: Mapped[str] = mapped_column(String(600), primary_key=True)
    document_id: Mapped[str] = mapped_column(String(500), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    section: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(20))
    tags: Mapped[list[str]] = mapped_column(JSON)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON)


REGISTRY_TABLES = (TenantRow, DocumentRow, DocumentVersionRow, ChunkRow)


@dataclass(frozen=True)
class DocumentRecord:
    tenant: str
    document_id: str
    title: str
    kind: str
    source: str
    locale: str
    tags: list[str]
    content_hash: str
    version: int
    chunk_count: int
    payload: dict[str, Any] | None
    updated_at: datetime
    updated_by: str
    # set when passages of this version read as prompt injection (copilot.injection.injection_flag's shape)
    flagged: dict[str, Any] | None = None


@dataclass(frozen=True)
class ChunkRecord:
    """A live chunk as retrieval and reindexing read it."""

    chunk_id: str
    document_id: str
    ordinal: int
    kind: str
    title: str
    section: str
    text: str
    source: str
    locale: str
    tags: list[str]
    extra: dict[str, Any]


@dataclass(frozen=True)
class VersionRecord:
    version: int
    content_hash: str
    action: str
    chunk_count: int
    at: datetime
    by: str


# The injection flag is kept in the payload column under this key, so no schema change was needed; readers
# of a DocumentRecord see the document's own payload and the flag apart.
FLAG_KEY = "_injection_flag"


def _stored_payload(payload: dict[str, Any] | None, flagged: dict[str, Any] | None) -> dict[str, Any] | None:
    own = {k: v for k, v in payload.items() if k != FLAG_KEY} if payload is not None else None
    return own if not flagged else {**(own or {}), FLAG_KEY: flagged}


def _record(row: DocumentRow) -> DocumentRecord:
    payload, flagged = row.payload, None
    if payload is not None and FLAG_KEY in payload:
        flagged = payload[FLAG_KEY]
        payload = {k: v for k, v in payload.items() if k != FLAG_KEY} or None
    return DocumentRecord(
        row.tenant, row.document_id, row.title, row.kind, row.source, row.locale, list(row.tags or []),
        row.content_hash, row.version, row.chunk_count, payload, row.updated_at, row.updated_by, flagged,
    )


def make_engine(url: str, connect_timeout_s: float = 5.0) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):  # libpq waits for a connection as long as the OS does (minutes) otherwise
        connect_args["connect_timeout"] = max(1, round(connect_timeout_s))
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


_FULL_BELOW = 256 * 1024  # bytes free under which a SQLite volume counts as full (a page write needs some)


def volume_problem(folder: Path) -> str | None:
    """'full' or 'read-only' when the disk of ``folder`` cannot take writes; None otherwise."""
    try:
        if shutil.disk_usage(folder).free < _FULL_BELOW:
            return "full"
        if not os.access(folder, os.W_OK):  # EROFS even for root
            return "read-only"
    except OSError:
        return None
    return None


def _volume_problem(engine: Engine | None) -> str | None:
    """``volume_problem`` of a SQLite file's folder (None for another database).

    SQLite says "disk I/O error" or "unable to open database file" when it cannot create its -wal or -shm file,
    which does not name the cause."""
    if engine is None or engine.url.get_backend_name() != "sqlite":
        return None
    database = (engine.url.database or "").removeprefix("file:")
    if not database or database == ":memory:":
        return None
    return volume_problem(Path(database).resolve().parent)


def database_error(exc: SQLAlchemyError, engine: Engine | None, what: str = "database error") -> ServiceUnavailable:
    """A database failure as the copilot's own error: StorageUnwritable when the database's disk is full or
    read-only (SQLite's SQLITE_FULL or SQLITE_READONLY*, PostgreSQL's disk_full or read_only_sql_transaction, or
    any SQLite error on a volume without free space), ServiceUnavailable otherwise."""
    orig = getattr(exc, "orig", None) or exc
    name = str(getattr(orig, "sqlite_errorname", "") or "")
    state = str(getattr(orig, "sqlstate", "") or getattr(orig, "pgcode", "") or "")
    volume = _volume_problem(engine) if isinstance(exc, OperationalError) else None
    if volume == "full" or name == "SQLITE_FULL" or state == "53100":
        return StorageUnwritable(f"the database cannot be written, its disk is full ({orig}): free space, then retry")
    if volume == "read-only" or name.startswith("SQLITE_READONLY") or state == "25006":
        return StorageUnwritable(f"the database cannot be written, it is read-only ({orig}): make it writable, "
                                 "then retry")
    return ServiceUnavailable(f"{what}: {orig}")


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One session that commits on success; database errors become the copilot's own (409 or 503)."""
    with sessions() as session:
        try:
            yield session
            session.commit()
        except IntegrityError as exc:  # two writers raced to create the same row
            session.rollback()
            raise Conflict(f"the change conflicts with another one made at the same time: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            session.rollback()
            bind = sessions.kw.get("bind")
            raise database_error(exc, bind if isinstance(bind, Engine) else None) from exc


class Registry:
    """Tenants, documents and live chunks in a relational database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, *, create_schema: bool = True) -> None:
        """With ``create_schema`` the registry's own tables are made when missing (tools and tests that
        use the knowledge base alone); the service migrates the whole schema with Alembic instead."""
        self.engine = engine
        if create_schema:
            try:
                tables = [Base.metadata.tables[t.__tablename__] for t in REGISTRY_TABLES]
                Base.metadata.create_all(engine, tables=tables)
            except OperationalError as exc:
                raise database_error(exc, engine, "database unavailable") from exc
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def session(self) -> AbstractContextManager[Session]:
        return transaction(self._sessions)

    # --- tenants ---

    def create_tenant(self, name: str, display_name: str | None = None) -> None:
        if not TENANT_NAME.match(name):
            raise InvalidInput(
                f"invalid tenant name {name!r}: 3-40 characters of a-z, 0-9, '-' or '_', "
                "starting and ending with a letter or digit"
            )
        with self.session() as session:
            if session.get(TenantRow, name) is not None:
                raise TenantExists(f"tenant {name!r} already exists", tenant=name)
            session.add(TenantRow(name=name, display_name=display_name or name, knowledge_version=0))

    def tenants(self) -> list[str]:
        with self.session() as session:
            return list(session.scalars(select(TenantRow.name).order_by(TenantRow.name)))

    def require_tenant(self, name: str) -> None:
        with self.session() as session:
            if session.get(TenantRow, name) is None:
                raise UnknownTenant(name)

    def knowledge_version(self, tenant: str) -> int:
        # read at every search: a plain connection, not an ORM session (a quarter of the time)
        try:
            with self.engine.connect() as connection:
                version = connection.execute(
                    select(TenantRow.knowledge_version).where(TenantRow.name == tenant)).scalar()
        except SQLAlchemyError as exc:
            raise database_error(exc, self.engine) from exc
        if version is None:
            raise UnknownTenant(tenant)
        return int(version)

    # --- documents ---

    def documents(self, tenant: str, kind: str | None = None) -> list[DocumentRecord]:
        self.require_tenant(tenant)
        with self.session() as session:
            query = select(DocumentRow).where(DocumentRow.tenant == tenant)
            if kind:
                query = query.where(DocumentRow.kind == kind)
            return [_record(row) for row in session.scalars(query.order_by(DocumentRow.document_id))]

    def document(self, tenant: str, document_id: str) -> DocumentRecord:
        with self.session() as session:
            row = session.get(DocumentRow, (tenant, document_id))
            if row is None:
                raise NotFound(f"no document {document_id!r} in tenant {tenant!r}", document_id=document_id)
            return _record(row)

    def hashes(self, tenant: str) -> dict[str, str]:
        with self.session() as session:
            rows = session.execute(
                select(DocumentRow.document_id, DocumentRow.content_hash).where(DocumentRow.tenant == tenant)
            )
            return {doc_id: digest for doc_id, digest in rows}

    def history(self, tenant: str, document_id: str) -> list[VersionRecord]:
        with self.session() as session:
            rows = session.scalars(
                select(DocumentVersionRow)
                .where(DocumentVersionRow.tenant == tenant, DocumentVersionRow.document_id == document_id)
                .order_by(DocumentVersionRow.id)
            )
            return [VersionRecord(r.version, r.content_hash, r.action, r.chunk_count, r.at, r.by) for r in rows]

    def commit_document(self, tenant: str, document: SourceDocument, content_hash: str,
                        chunks: Sequence[Chunk], by: str, *,
                        flagged: dict[str, Any] | None = None) -> tuple[str, list[tuple[str, str]]]:
        """Make this version live in one transaction; returns the action and the (id, kind) of old chunks.

        ``flagged`` is what to tell content owners of its passages that read as prompt injection (None clears
        the flag of an earlier version).
        """
        now = _now()
        with self.session() as session:
            row = session.get(DocumentRow, (tenant, document.document_id), with_for_update=True)
            old = [(cid, kind) for cid, kind in session.execute(
                select(ChunkRow.chunk_id, ChunkRow.kind).where(
                    ChunkRow.tenant == tenant, ChunkRow.document_id == document.document_id))]
            session.execute(delete(ChunkRow).where(
                ChunkRow.tenant == tenant, ChunkRow.document_id == document.document_id))
            session.add_all(ChunkRow(
                tenant=tenant, chunk_id=c.chunk_id, document_id=c.document_id, ordinal=c.ordinal,
                kind=c.kind.value, title=c.title, section=c.section, text=c.text, source=document.source,
                locale=document.locale,
                # a FAQ row carries its own tags (maybe none); other chunks take the document's
                tags=list(c.metadata.get("tags", document.tags)),
                extra={k: v for k, v in c.metadata.items() if k != "tags"},
            ) for c in chunks)
            action = "added" if row is None else "updated"
            version = 1 if row is None else row.version + 1
            values = dict(title=document.title, kind=document.kind.value, source=document.source,
                          locale=document.locale, tags=document.tags, content_hash=content_hash,
                          version=version, chunk_count=len(chunks),
                          payload=_stored_payload(document.payload, flagged),
                          updated_at=now, updated_by=by)
            if row is None:
                session.add(DocumentRow(tenant=tenant, document_id=document.document_id, **values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)
            session.add(DocumentVersionRow(tenant=tenant, document_id=document.document_id, version=version,
                                           content_hash=content_hash, action=action,
                                           chunk_count=len(chunks), at=now, by=by))
            self._bump(session, tenant)
        return action, old

    def remove_document(self, tenant: str, document_id: str, by: str) -> list[tuple[str, str]]:
        with self.session() as session:
            row = session.get(DocumentRow, (tenant, document_id))
            if row is None:
                raise NotFound(f"no document {document_id!r} in tenant {tenant!r}", document_id=document_id)
            old = [(cid, kind) for cid, kind in session.execute(
                select(ChunkRow.chunk_id, ChunkRow.kind).where(
                    ChunkRow.tenant == tenant, ChunkRow.document_id == document_id))]
            session.execute(delete(ChunkRow).where(
                ChunkRow.tenant == tenant, ChunkRow.document_id == document_id))
            session.add(DocumentVersionRow(tenant=tenant, document_id=document_id, version=row.version + 1,
                                           content_hash=row.content_hash, action="removed", chunk_count=0,
                                           at=_now(), by=by))
            session.delete(row)
            self._bump(session, tenant)
        return old

    @staticmethod
    def _bump(session: Session, tenant: str) -> None:
        session.execute(update(TenantRow).where(TenantRow.name == tenant)
                        .values(knowledge_version=TenantRow.knowledge_version + 1))

    # --- chunks ---

    def chunks(self, tenant: str, kinds: Sequence[str] | None = None) -> list[ChunkRecord]:
        # columns, not ORM objects: building 100k mapped rows at a cold start took seconds
        columns = (ChunkRow.chunk_id, ChunkRow.document_id, ChunkRow.ordinal, ChunkRow.kind, ChunkRow.title,
                   ChunkRow.section, ChunkRow.text, ChunkRow.source, ChunkRow.locale, ChunkRow.tags, ChunkRow.extra)
        with self.session() as session:
            query = select(*columns).where(ChunkRow.tenant == tenant)
            if kinds:
                query = query.where(ChunkRow.kind.in_(list(kinds)))
            return [
                ChunkRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], list(r[9] or []), dict(r[10] or {}))
                for r in session.execute(query.order_by(ChunkRow.document_id, ChunkRow.ordinal))
            ]

    def chunk_count(self, tenant: str) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.count()).select_from(ChunkRow)
                                      .where(ChunkRow.tenant == tenant)) or 0)
