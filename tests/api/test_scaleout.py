"""Several server processes on one Chroma server and one PostgreSQL database: a knowledge change made through one
is answered by the others within seconds (vectors, the BM25 index and the tenant's profile alike)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve import COPILOT, served
from tests.servers import ChromaServer, postgres_database

pytestmark = pytest.mark.slow

VISIBLE_WITHIN_S = 5.0


def _cli(env: dict[str, str], *args: str) -> dict[str, object]:
    done = subprocess.run([*COPILOT, *args, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.fixture
def shared(tmp_path: Path, chroma_server: ChromaServer) -> Iterator[dict[str, str]]:
    """What the servers share: a PostgreSQL database and a Chroma database (each server has its own data dir)."""
    try:
        database = postgres_database()
        url = database.__enter__()
    except Exception as exc:  # no server: skip with the reason, never silently
        pytest.skip(f"no PostgreSQL server: {type(exc).__name__}: {exc}")
    env = {**os.environ, "COPILOT_DATABASE_URL": url, "COPILOT_CHROMA_URL": f"{chroma_server.url}/{tmp_path.name}",
           "COPILOT_DATA_DIR": str(tmp_path / "cli"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("COPILOT_LLM_BASE_URL", None)
    try:
        yield env
    finally:
        database.__exit__(None, None, None)


def _search_until(client: httpx.Client, query: str, wanted: str, unwanted: str | None = None) -> float:
    """Seconds until a search answers a passage with ``wanted`` and none with ``unwanted``."""
    started = time.monotonic()
    while True:
        response = client.get("/v1/knowledge/search", params={"q": query, "k": 3})
        assert response.status_code == 200, response.text
        texts = [r["text"] for r in response.json()["results"]]
        if any(wanted in t for t in texts) and not (unwanted and any(unwanted in t for t in texts)):
            return time.monotonic() - started
        if time.monotonic() - started > VISIBLE_WITHIN_S:
            pytest.fail(f"after {VISIBLE_WITHIN_S} s the other server still answers {texts}")
        time.sleep(0.1)


def test_a_change_through_one_server_is_seen_by_another(shared: dict[str, str], tmp_path: Path) -> None:
    _cli(shared, "tenants", "create", "acme")
    content_key = _cli(shared, "keys", "create", "--tenant", "acme", "--role", "content")["key"]
    agent_key = _cli(shared, "keys", "create", "--tenant", "acme", "--role", "agent")["key"]
    env_a = {**shared, "COPILOT_DATA_DIR": str(tmp_path / "a")}
    env_b = {**shared, "COPILOT_DATA_DIR": str(tmp_path / "b")}

    with served(env_a, tmp_path / "a.log") as base_a, served(env_b, tmp_path / "b.log") as base_b, \
            httpx.Client(base_url=base_a, timeout=30, headers={"Authorization": f"Bearer {content_key}"}) as a, \
            httpx.Client(base_url=base_b, timeout=30, headers={"Authorization": f"Bearer {agent_key}"}) as b:
        b.get("/v1/knowledge/search", params={"q": "warm up"})  # B has built its indexes before the change
        added = a.put("/v1/knowledge/documents/articles/loyalty.md", files={"file": (
            "loyalty.md", b"# Loyalty points\n\nEvery zephyrine order earns loyalty points worth five pence.\n")})
        assert added.status_code == 201, added.text
        first = _search_until(b, "zephyrine loyalty points", "zephyrine")

        replaced = a.put("/v1/knowledge/documents/articles/loyalty.md", files={"file": (
            "loyalty.md", b"# Loyalty points\n\nEvery quillfeather order earns loyalty points worth ten pence.\n")})
        assert replaced.status_code == 200, replaced.text
        # "quillfeather" is a word only BM25 knows: B answers it only once its lexical index is the new one
        second = _search_until(b, "quillfeather", "quillfeather", unwanted="zephyrine")

        assert a.delete("/v1/knowledge/documents/articles/loyalty.md").status_code == 204
        started = time.monotonic()
        while any("quillfeather" in r["text"] for r in
                  b.get("/v1/knowledge/search", params={"q": "quillfeather"}).json()["results"]):
            assert time.monotonic() - started < VISIBLE_WITHIN_S, "a removed document is still answered"
            time.sleep(0.1)
    print(f"seen by the other server after {first:.2f} s (new), {second:.2f} s (replaced)")


def test_serve_with_several_workers_answers_from_each(shared: dict[str, str], tmp_path: Path) -> None:
    _cli(shared, "tenants", "create", "acme")
    key = _cli(shared, "keys", "create", "--tenant", "acme", "--role", "agent")["key"]
    with served(shared, tmp_path / "workers.log", args=("--workers", "2")) as base, \
            httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        answered = [client.get("/v1/knowledge/search", params={"q": "refund"}).status_code for _ in range(20)]
    assert answered == [200] * 20
    log = (tmp_path / "workers.log").read_text()
    assert log.count("Started server process") >= 2 or log.count('"worker"') >= 2, log[-2000:]
