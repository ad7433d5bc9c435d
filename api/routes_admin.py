"""What QA teams and tenant admins call: analytics with knowledge gaps, the audit log, API keys."""


from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api import analytics
from api.auth import GRANTS, Permission, Principal
from api.deps import caller, problems
from api.schemas import Analytics, AuditEntry, AuditLog, KeyCreated, KeyIdentity, KeyList, KeyRequest, KeyView
from api.service import Service, period
from api.store import KeyRecord


def _key(record: KeyRecord) -> KeyView:
    return KeyView(id=record.id, tenant=record.tenant, role=record.role, name=record.name,
                   created_at=record.created_at, revoked_at=record.revoked_at)


def router(service: Service) -> APIRouter:
    api = APIRouter(prefix="/v1")
    Analyst = Annotated[Principal, Depends(caller(service, Permission.ANALYTICS))]
    Admin = Annotated[Principal, Depends(caller(service, Permission.ADMIN))]

    @api.get("/analytics", response_model=Analytics, responses=problems(), tags=["analytics"],
             summary="Suggestions shown, acceptance, edits and rejections by source and intent, and knowledge gaps.")
    def get_analytics(who: Analyst,
                      since: Annotated[datetime | None, Query(description="Start (ISO 8601); default 30 days "
                                                                           "before 'until'.")] = None,
                      until: Annotated[datetime | None, Query(description="End (ISO 8601); default now.")] = None,
                      gaps: Annotated[int, Query(ge=0, le=100, description="Knowledge gaps at most.")] = 20,
                      ) -> Analytics:
        start, end = period(_utc(since), _utc(until), now=datetime.now(UTC))
        sets = service.store.suggestion_sets(who.tenant, start, end)
        events = service.store.feedback_rows(who.tenant, start, end)
        body = analytics.report(sets, events, service.kb.embedder, gap_limit=gaps)
        return Analytics(tenant=who.tenant, since=start, until=end, **body)

    Anyone = Annotated[Principal, Depends(caller(service, Permission.JOBS))]  # every role holds JOBS

    @api.get("/me", response_model=KeyIdentity, responses=problems(), tags=["admin"],
             summary="Who the key is: its tenant, role and what the role may do (pages use it to sign in).")
    def me(who: Anyone) -> KeyIdentity:
        return KeyIdentity(key_id=who.key_id, tenant=who.tenant, role=who.role,
                           permissions=sorted(p.value for p in GRANTS.get(who.role, frozenset())))

    @api.get("/audit", response_model=AuditLog, responses=problems(), tags=["admin"],
             summary="Who did what, when: every write of the tenant, newest first.")
    def audit(who: Admin, limit: Annotated[int, Query(ge=1, le=1000, description="At most.")] = 100) -> AuditLog:
        return AuditLog(entries=[AuditEntry(**e) for e in service.store.audit_log(who.tenant, limit)])

    @api.get("/keys", response_model=KeyList, responses=problems(), tags=["admin"],
             summary="The tenant's API keys (never their secrets).")
    def list_keys(who: Admin) -> KeyList:
        return KeyList(keys=[_key(k) for k in service.store.keys(who.tenant)])

    @api.post("/keys", response_model=KeyCreated, status_code=201, responses=problems(413, 415), tags=["admin"],
              summary="A new key for this tenant; the secret is in this answer only.")
    def create_key(body: KeyRequest, who: Admin) -> KeyCreated:
        record, secret = service.store.create_key(who.tenant, body.role, body.name)
        return KeyCreated(**_key(record).model_dump(), key=secret)

    @api.delete("/keys/{key_id}", response_model=KeyView, responses=problems(404), tags=["admin"],
                summary="Revoke a key: it is refused from the next request on.")
    def revoke_key(key_id: Annotated[str, Path(max_length=40, description="The key id.")], who: Admin) -> KeyView:
        return _key(service.store.revoke_key(key_id, tenant=who.tenant))

    return api


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
