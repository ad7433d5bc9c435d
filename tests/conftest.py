"""Shared fixtures. No test can reach the network: only loopback connections are allowed."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests import netguard

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
# the local model's ONNX export goes to a folder of the tests' own (made once, then reused), never ~/.cache;
# the servers and CLIs the tests start inherit it
MODEL_CACHE = Path(os.environ.setdefault("COPILOT_MODEL_CACHE_DIR",
                                         str(Path(tempfile.gettempdir()) / "copilot-test-models")))
netguard.install()

from copilot.playbooks import Playbook  # noqa: E402
from copilot.settings import Settings  # noqa: E402
from knowledge.base import KnowledgeBase  # noqa: E402
from knowledge.embeddings import LocalEmbedder  # noqa: E402
from tests.fakellm import FakeLLM  # noqa: E402
from tests.servers import ChromaServer, postgres_database  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "brightwave"
DATASETS = REPO.parent / "shared" / "datasets"


def sample_playbooks() -> list[Playbook]:
    """The sample brand's playbooks, as the next-action tests build engines from them."""
    playbooks = []
    for path in sorted((SAMPLE / "playbooks").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.pop("kind")
        playbooks.append(Playbook.model_validate(data))
    return playbooks


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    """The real packaged MiniLM, loaded once per test session."""
    return LocalEmbedder(cache_dir=MODEL_CACHE)


# COPILOT_TEST_BACKEND=server runs what uses ``settings`` on a Chroma server (started here on loopback, one
# database per test) and a PostgreSQL database per test (COPILOT_TEST_POSTGRES_URL), as several workers would
BACKEND = os.environ.get("COPILOT_TEST_BACKEND", "embedded")
if BACKEND not in ("embedded", "server"):
    raise pytest.UsageError(f"COPILOT_TEST_BACKEND is 'embedded' or 'server', not {BACKEND!r}")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A Chroma server for the session (``chroma run`` on loopback)."""
    with ChromaServer(tmp_path_factory.mktemp("chroma-server") / "index") as server:
        yield server


@pytest.fixture
def server_settings(tmp_path: Path, chroma_server: ChromaServer) -> Iterator[Settings]:
    """Settings of the server configuration: this test's own Chroma database and PostgreSQL database."""
    with postgres_database() as url:
        yield Settings(data_dir=tmp_path / "data", database_url=url,  # type: ignore[call-arg]
                       chroma_url=f"{chroma_server.url}/{tmp_path.name[:40]}-{uuid.uuid4().hex[:8]}",
                       _env_file=None)


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if BACKEND == "server":
        return request.getfixturevalue("server_settings")  # type: ignore[no-any-return]
    return Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def kb(settings: Settings, embedder: LocalEmbedder) -> Iterator[KnowledgeBase]:
    base = KnowledgeBase(settings, embedder=embedder)
    base.create_tenant("acme")
    yield base


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A started OpenAI-compatible chat server on loopback; script it with ``reply``, ``fail``, ``delay``..."""
    with FakeLLM() as server:
        yield server


SAMPLE_TENANT = "brightwave"


@pytest.fixture(scope="session")
def sample_kb(tmp_path_factory: pytest.TempPathFactory, embedder: LocalEmbedder) -> KnowledgeBase:
    """The sample brand ingested once per session: read it, never write to it (use ``kb`` for writes)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("sample") / "data", _env_file=None)  # type: ignore[call-arg]
    base = KnowledgeBase(settings, embedder=embedder)
    base.create_tenant(SAMPLE_TENANT)
    report = base.ingest(SAMPLE_TENANT, [SAMPLE])
    assert not report.failed, report.failed
    return base
