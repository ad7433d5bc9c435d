"""API keys to tenants and roles, what each role may do, and the per-key rate limit."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import StrEnum

from limits import parse, storage, strategies

from api.store import KeyRecord, Store
from copilot.errors import Forbidden, InvalidInput, NotAuthenticated, RateLimited


class Permission(StrEnum):
    ASSIST = "assist"        # suggestions, summaries, next actions, search, threads, feedback
    SEARCH = "search"        # knowledge search (agents and content owners)
    CONTENT = "content"      # knowledge, brand voice, macros, playbooks: writes and reads
    ANALYTICS = "analytics"  # analytics and knowledge gaps
    EVALS = "evals"          # eval runs
    JOBS = "jobs"            # the status of the tenant's background jobs
    ADMIN = "admin"          # keys and the audit log of the tenant


GRANTS: dict[str, frozenset[Permission]] = {
    "agent": frozenset({Permission.ASSIST, Permission.SEARCH, Permission.JOBS}),
    "content": frozenset({Permission.CONTENT, Permission.SEARCH, Permission.ANALYTICS, Permission.JOBS}),
    "qa": frozenset({Permission.EVALS, Permission.ANALYTICS, Permission.JOBS}),
    "admin": frozenset(Permission),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a live key of one tenant with one role."""

    key_id: str
    tenant: str
    role: str

    def require(self, permission: Permission) -> None:
        if permission not in GRANTS.get(self.role, frozenset()):
            allowed = sorted(role for role, grants in GRANTS.items() if permission in grants)
            raise Forbidden(f"a key with role {self.role!r} may not do this; it needs one of: {', '.join(allowed)}")


class Authenticator:
    """Bearer keys checked against their stored hashes on every request: a revoked key fails at once."""

    def __init__(self, store: Store, rate_limit: str) -> None:
        self.store = store
        try:
            self.limit = parse(rate_limit)
        except ValueError as exc:
            raise InvalidInput(f"COPILOT_RATE_LIMIT {rate_limit!r} is not a rate such as '600/minute'") from exc
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise NotAuthenticated("send an API key: 'Authorization: Bearer <key>'")
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthenticated("the Authorization header must be 'Bearer <key>'")
        key: KeyRecord | None = self.store.authenticate(secret.strip())
        if key is None:
            raise NotAuthenticated("unknown or revoked API key")
        if not self.limiter.hit(self.limit, key.id):
            reset = self.limiter.get_window_stats(self.limit, key.id).reset_time
            retry_after = max(1, math.ceil(reset - time.time()))
            raise RateLimited(f"rate limit of {self.limit} for this key reached; retry in {retry_after} s",
                              retry_after=retry_after)
        return Principal(key.id, key.tenant, key.role)
