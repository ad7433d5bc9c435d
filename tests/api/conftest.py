"""An HTTP client on the real app with API keys: ``api.headers(role)`` for a key of the client's tenant."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.service import Service
from copilot.settings import Settings
from knowledge.base import KnowledgeBase


@dataclass
class Api:
    client: TestClient
    service: Service
    tenant: str
    _keys: dict[tuple[str, str], str] = field(default_factory=dict)

    def key(self, role: str, tenant: str | None = None) -> str:
        tenant = tenant or self.tenant
        if (tenant, role) not in self._keys:
            self._keys[(tenant, role)] = self.service.store.create_key(tenant, role, f"test {role}")[1]
        return self._keys[(tenant, role)]

    def headers(self, role: str = "agent", tenant: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key(role, tenant)}"}


def make_api(settings: Settings, kb: KnowledgeBase, tenant: str) -> Iterator[Api]:
    app = create_app(settings, knowledge=kb)
    with TestClient(app) as client:
        yield Api(client, app.state.service, tenant)
    app.state.service.close()


@pytest.fixture
def sample_api(sample_kb: KnowledgeBase) -> Iterator[Api]:
    """The API over the session's sample brand (read it; write only threads, suggestions and feedback)."""
    yield from make_api(sample_kb.settings, sample_kb, "brightwave")
