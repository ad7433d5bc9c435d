"""API keys to tenants and roles, what each role may do, and the per-key rate limit.

The rate limit counts in a ``limits`` storage (``COPILOT_RATE_LIMIT_STORAGE``): ``memory://`` in each process,
or Redis, which every worker and server shares, so a key gets its rate once however many processes serve it.
A storage that is wrong or down at start stops the start. One that fails while serving fails open: requests go
through unchecked for ``RECHECK_AFTER_S`` (then the storage is asked again), with one warning per outage and
``on_unchecked`` called per request (the ``copilot_rate_limit_unchecked_total`` metric). The limit guards
against one key's runaway client, not against strangers (every request still needs a live key), so a Redis
outage should not stop every agent's console; a 503 would.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from limits import parse, storage, strategies
from limits.errors import ConfigurationError, StorageError

from api.store import KeyRecord, Store
from copilot.errors import Forbidden, InvalidInput, NotAuthenticated, RateLimited, ServiceUnavailable

log = logging.getLogger("copilot.auth")
RECHECK_AFTER_S = 5.0      # after a storage failure, requests go unchecked this long before Redis is tried again
STORAGE_TIMEOUT_S = 0.5    # the most one rate-limit check may wait on Redis (it is on every request's path)


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


def redacted(uri: str) -> str:
    """A storage URI without its password, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def open_rate_limit_storage(uri: str) -> storage.Storage:
    """The ``limits`` storage a URI names, checked to answer; a bad URI is InvalidInput, a storage that does
    not answer ServiceUnavailable."""
    shown = redacted(uri)
    options: dict[str, Any] = {}
    if urlsplit(uri).scheme in ("redis", "rediss", "redis+unix"):
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # one quick retry (a dropped pooled connection), not redis-py's ten with backoff: a request waits on it
        options = {"socket_timeout": STORAGE_TIMEOUT_S, "socket_connect_timeout": STORAGE_TIMEOUT_S,
                   "retry": Retry(NoBackoff(), 1)}
    try:
        made = storage.storage_from_string(uri, wrap_exceptions=True, **options)
    except ConfigurationError as exc:
        raise InvalidInput(f"COPILOT_RATE_LIMIT_STORAGE {shown!r} is not a usable rate-limit storage "
                           f"({str(exc).replace(uri, shown)}); use 'memory://' or 'redis://host:6379/0'") from exc
    except ValueError as exc:  # redis.from_url refuses the rest of the URI
        raise InvalidInput(f"COPILOT_RATE_LIMIT_STORAGE {shown!r} is not a valid storage URI: "
                           f"{str(exc).replace(uri, shown)}") from exc
    if not isinstance(made, storage.Storage) or not isinstance(made, storage.MovingWindowSupport):
        raise InvalidInput(f"COPILOT_RATE_LIMIT_STORAGE {shown!r} cannot keep a moving window; use 'memory://' "
                           "or 'redis://host:6379/0'")
    if not made.check():
        raise ServiceUnavailable(f"the rate-limit storage {shown} does not answer a ping (down, unreachable, or "
                                 "refusing the credentials); start it, or set COPILOT_RATE_LIMIT_STORAGE to another")
    return made


class Authenticator:
    """Bearer keys checked against their stored hashes on every request: a revoked key fails at once."""

    def __init__(self, store: Store, rate_limit: str, rate_limit_storage: str = "memory://", *,
                 on_unchecked: Callable[[], None] | None = None, recheck_after_s: float = RECHECK_AFTER_S) -> None:
        """``on_unchecked`` is called for each request let through because the rate-limit storage failed; the
        storage is asked again ``recheck_after_s`` after a failure."""
        self.store = store
        try:
            self.limit = parse(rate_limit)
        except ValueError as exc:
            raise InvalidInput(f"COPILOT_RATE_LIMIT {rate_limit!r} is not a rate such as '600/minute'") from exc
        self.storage_name = redacted(rate_limit_storage)
        self.limiter = strategies.MovingWindowRateLimiter(open_rate_limit_storage(rate_limit_storage))
        self.on_unchecked = on_unchecked
        self.recheck_after_s = recheck_after_s
        self._lock = threading.Lock()
        self._unchecked_until: float | None = None  # set while the storage is failing

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise NotAuthenticated("send an API key: 'Authorization: Bearer <key>'")
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthenticated("the Authorization header must be 'Bearer <key>'")
        key: KeyRecord | None = self.store.authenticate(secret.strip())
        if key is None:
            raise NotAuthenticated("unknown or revoked API key")
        self._check_rate(key.id)
        return Principal(key.id, key.tenant, key.role)

    def _check_rate(self, key_id: str) -> None:
        if self._unchecked_until is not None and time.monotonic() < self._unchecked_until:
            self._let_through()
            return
        try:
            allowed = self.limiter.hit(self.limit, "copilot-key", key_id)
            retry_after = 0
            if not allowed:
                reset = self.limiter.get_window_stats(self.limit, "copilot-key", key_id).reset_time
                retry_after = max(1, math.ceil(reset - time.time()))
        except StorageError as exc:
            with self._lock:
                if self._unchecked_until is None:
                    log.warning("rate-limit storage %s failed (%s: %s): requests go through unchecked until it "
                                "answers", self.storage_name, type(exc.storage_error).__name__, exc.storage_error)
                self._unchecked_until = time.monotonic() + self.recheck_after_s
            self._let_through()
            return
        if self._unchecked_until is not None:
            with self._lock:
                if self._unchecked_until is not None:
                    log.warning("rate-limit storage %s answers again: rate limits apply", self.storage_name)
                    self._unchecked_until = None
        if not allowed:
            raise RateLimited(f"rate limit of {self.limit} for this key reached; retry in {retry_after} s",
                              retry_after=retry_after)

    def _let_through(self) -> None:
        if self.on_unchecked is not None:
            self.on_unchecked()
