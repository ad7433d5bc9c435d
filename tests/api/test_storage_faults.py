"""A full data disk over HTTP: an upload answers 503 problem+json that says so, never a 500, and nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.deps import PROBLEM
from copilot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.embeddings import LocalEmbedder
from tests.api.conftest import make_api
from tests.volumes import SmallVolume, small_volume

pytestmark = pytest.mark.slow

REFUNDS = b"# Refunds\n\nA refund reaches your card within five working days of the return.\n"
DELIVERY = b"# Delivery\n\nStandard delivery takes two working days; parcels are left with a neighbour.\n"


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[SmallVolume]:
    yield from small_volume(tmp_path / "volume")


def test_upload_on_a_full_disk_answers_503_and_keeps_what_was_there(volume: SmallVolume,
                                                                    embedder: LocalEmbedder) -> None:
    settings = Settings(data_dir=volume.path / "data", _env_file=None)
    kb = KnowledgeBase(settings, embedder=embedder)
    kb.create_tenant("acme")
    for api in make_api(settings, kb, "acme"):
        content = api.headers("content")
        put = api.client.put("/v1/knowledge/documents/refunds.md", files={"file": ("refunds.md", REFUNDS)},
                             headers=content)
        assert put.status_code == 201, put.text
        volume.fill()

        full = api.client.put("/v1/knowledge/documents/delivery.md", files={"file": ("delivery.md", DELIVERY)},
                              headers=content)

        assert full.status_code == 503, full.text
        assert full.headers["content-type"] == PROBLEM
        assert full.json()["type"].endswith("/storage-unwritable") and "full" in full.json()["detail"]
        volume.free()
        assert not list((volume.path / "data" / "uploads").rglob("*.part"))  # no half-written upload left
        listed = api.client.get("/v1/knowledge/documents", headers=content).json()
        assert [d["document_id"] for d in listed["documents"]] == ["refunds.md"]
        again = api.client.put("/v1/knowledge/documents/delivery.md", files={"file": ("delivery.md", DELIVERY)},
                               headers=content)
        assert again.status_code == 201, again.text
        found = api.client.get("/v1/knowledge/search", params={"q": "how long does delivery take"},
                               headers=api.headers("agent")).json()
        assert "two working days" in str(found)
