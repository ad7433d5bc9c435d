"""What every route shares: the caller (key, tenant, role) with its audit record, and the errors it declares."""


import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import Permission, Principal
from api.observability import request_id_var, set_principal
from api.schemas import Problem
from api.service import Service
from copilot.errors import CopilotError

PROBLEM = "application/problem+json"
bearer = HTTPBearer(auto_error=False, description="An API key: `copilot keys create --tenant T --role R`.")
log = logging.getLogger("copilot.api")

_MEANING = {
    400: "Malformed request (e.g. JSON that does not parse).",
    401: "No API key, or an unknown or revoked one.",
    403: "The key's role may not do this.",
    404: "No such object in the key's tenant.",
    409: "Conflicts with the current state (e.g. a message id reused for another message).",
    413: "Body, upload or list over its limit.",
    415: "Body in a format the route does not take.",
    422: "A field is invalid.",
    429: "Rate limit of the key reached; see Retry-After.",
    503: "A backing store or model is unavailable; retry later.",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the errors a route can answer, all problem+json."""
    declared = sorted({400, 401, 403, 422, 429, 503, *codes})
    return {code: {"model": Problem, "description": _MEANING[code],
                   "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for code in declared}


def caller(service: Service, permission: Permission) -> Callable[..., Iterator[Principal]]:
    """A dependency: the authenticated key with this permission; writes are recorded in the audit log."""

    def dependency(request: Request,
                   credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Iterator[Principal]:
        header = f"{credentials.scheme} {credentials.credentials}" if credentials else request.headers.get(
            "authorization")
        principal = service.auth.authenticate(header)
        set_principal(principal.key_id, principal.tenant)
        principal.require(permission)
        outcome = "ok"
        try:
            yield principal
        except CopilotError as exc:
            outcome = exc.type
            raise
        except Exception:
            outcome = "internal-error"
            raise
        finally:
            if request.method not in ("GET", "HEAD"):
                route = request.scope.get("route")
                params = request.path_params
                object_id = next(iter(params.values()), None) if params else None
                try:
                    service.store.audit(tenant=principal.tenant, key_id=principal.key_id, role=principal.role,
                                        method=request.method, route=getattr(route, "path", request.url.path),
                                        object_id=str(object_id) if object_id is not None else None,
                                        outcome=outcome, request_id=request_id_var.get())
                except CopilotError:  # the audit store being down must not hide the answer
                    log.warning("audit record not written", extra={"route": request.url.path})

    return dependency
