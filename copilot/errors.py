"""The copilot's own exceptions. HTTP status codes and CLI exit codes are chosen at the edge.

CopilotError
├── InvalidInput               a caller's mistake: bad value, malformed request
│   ├── UnknownTenant          the tenant does not exist
│   ├── Conflict               a concurrent change got there first; retry
│   │   └── TenantExists       a tenant of that name already exists
│   ├── NotFound               a document, thread, suggestion... of this tenant does not exist
│   ├── NotAuthenticated       no API key, or one that is unknown or revoked
│   ├── Forbidden              the key's role may not do this
│   ├── TooLarge               a body, upload or list over its limit
│   ├── UnsupportedMediaType   a body in a format the route does not take
│   └── RateLimited            the key made too many requests; retry after ``retry_after`` seconds
├── DocumentError              one source file could not be read or parsed (reported, then skipped)
│   ├── UnsupportedFormat
│   ├── FileTooLarge
│   └── EmptyDocument
├── IndexMismatch              the stored index was built with another embedding model: reindex
└── ServiceUnavailable         a backing store or model is down or not loaded (runtime failure)
    ├── StorageUnwritable      the data volume is full or read-only: nothing more can be written
    └── LLMError               the LLM endpoint failed (LLMTimeout, LLMRateLimited, LLMBadOutput)
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class CopilotError(Exception):
    """Base class; ``type`` is a stable slug used in problem+json bodies and ``--json`` errors."""

    type = "copilot-error"

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


class InvalidInput(CopilotError):
    type = "invalid-input"


class UnknownTenant(InvalidInput):
    type = "unknown-tenant"

    def __init__(self, tenant: str) -> None:
        super().__init__(
            f"unknown tenant {tenant!r}: create it first with `copilot tenants create {tenant}`",
            tenant=tenant,
        )


class Conflict(InvalidInput):
    type = "conflict"


class TenantExists(Conflict):
    type = "tenant-exists"


class NotFound(InvalidInput):
    type = "not-found"


class NotAuthenticated(InvalidInput):
    type = "not-authenticated"


class Forbidden(InvalidInput):
    type = "forbidden"


class TooLarge(InvalidInput):
    type = "too-large"


class UnsupportedMediaType(InvalidInput):
    type = "unsupported-media-type"


class RateLimited(InvalidInput):
    type = "rate-limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class DocumentError(CopilotError):
    type = "document-error"

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message, path=path)
        self.path = path


class UnsupportedFormat(DocumentError):
    type = "unsupported-format"


class FileTooLarge(DocumentError):
    type = "file-too-large"


class EmptyDocument(DocumentError):
    type = "empty-document"


class IndexMismatch(CopilotError):
    type = "index-mismatch"


class ServiceUnavailable(CopilotError):
    type = "service-unavailable"


class StorageUnwritable(ServiceUnavailable):
    """The disk under the data directory or database is full or read-only; writes resume once it is not."""

    type = "storage-unwritable"


# errno values that say the volume itself refuses writes (not this one file)
_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS}


def storage_error(exc: OSError, doing: str) -> ServiceUnavailable:
    """An ``OSError`` met while writing, as the copilot's own error: StorageUnwritable when the volume is full or
    read-only, ServiceUnavailable otherwise."""
    if exc.errno in _FULL:
        return StorageUnwritable(f"the disk is full (no space left) while {doing}: free space, then retry")
    if exc.errno in _READ_ONLY:
        return StorageUnwritable(f"the disk is read-only while {doing}: make it writable, then retry")
    return ServiceUnavailable(f"cannot write while {doing}: {exc}")


class LLMError(ServiceUnavailable):
    """The LLM endpoint failed: the grounded engine answers instead and the response says why."""

    type = "llm-error"


class LLMTimeout(LLMError):
    type = "llm-timeout"


class LLMRateLimited(LLMError):
    type = "llm-rate-limited"


class LLMBadOutput(LLMError):
    """The endpoint answered, but not with what was asked for (e.g. JSON that does not parse)."""

    type = "llm-bad-output"


def describe_validation_error(exc: ValidationError, limit: int = 3) -> str:
    """The first problems of a pydantic validation, as a caller reads them: ``where: what; ...``."""
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
