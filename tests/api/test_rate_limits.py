"""The per-key rate limit across processes: workers that share a Redis share one budget per key.

Two ``Authenticator`` objects on one database are two workers. The shared-budget test uses the Redis at
COPILOT_TEST_REDIS_URL (default redis://127.0.0.1:6379/0) and the outage test a ``redis-server`` of its own
that it stops; each is skipped, with the reason shown, when it has no Redis.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from api.auth import Authenticator
from api.observability import Metrics
from api.store import Store, migrate
from copilot.errors import InvalidInput, RateLimited, ServiceUnavailable
from knowledge.registry import Registry, make_engine

REDIS_URL = os.environ.get("COPILOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    engine = make_engine(f"sqlite:///{tmp_path / 'copilot.db'}")
    migrate(engine)
    Registry(engine, create_schema=False).create_tenant("acme")
    yield Store(engine)
    engine.dispose()


def _bearer(store: Store) -> str:
    """A new key (its id is random, so its counters are its own even in a shared Redis)."""
    return f"Bearer {store.create_key('acme', 'agent')[1]}"


def _answers(auth: Authenticator, bearer: str, times: int) -> list[str]:
    answers = []
    for _ in range(times):
        try:
            auth.authenticate(bearer)
            answers.append("ok")
        except RateLimited:
            answers.append("429")
    return answers


def test_two_workers_sharing_redis_share_one_keys_budget(store: Store) -> None:
    if not _redis_answers(REDIS_URL):
        pytest.skip(f"no Redis answers at {REDIS_URL}")
    worker_a = Authenticator(store, "5/minute", REDIS_URL)
    worker_b = Authenticator(store, "5/minute", REDIS_URL)
    bearer, other = _bearer(store), _bearer(store)

    first = _answers(worker_a, bearer, 3) + _answers(worker_b, bearer, 2)
    over = _answers(worker_b, bearer, 1) + _answers(worker_a, bearer, 1)

    assert first == ["ok"] * 5 and over == ["429", "429"]
    assert _answers(worker_b, other, 1) == ["ok"]  # per key, not per server


def test_workers_counting_in_memory_each_give_the_key_its_rate(store: Store) -> None:
    worker_a, worker_b = Authenticator(store, "2/minute"), Authenticator(store, "2/minute")
    bearer = _bearer(store)

    assert _answers(worker_a, bearer, 3) == ["ok", "ok", "429"]
    assert _answers(worker_b, bearer, 3) == ["ok", "ok", "429"]  # why several workers need Redis


@pytest.mark.parametrize("uri", ["nonsense", "mongo://127.0.0.1", "redis://127.0.0.1:port/0",
                                 "memcached://127.0.0.1:11211"])
def test_a_storage_uri_that_names_no_usable_storage_is_invalid_input(store: Store, uri: str) -> None:
    with pytest.raises(InvalidInput, match="COPILOT_RATE_LIMIT_STORAGE"):
        Authenticator(store, "5/minute", uri)


def test_a_redis_that_does_not_answer_at_start_is_service_unavailable_without_its_password(store: Store) -> None:
    with pytest.raises(ServiceUnavailable, match="does not answer") as caught:
        Authenticator(store, "5/minute", f"redis://:hunter2@127.0.0.1:{_free_port()}/0")
    assert "hunter2" not in caught.value.message and ":***@" in caught.value.message


class RedisServer:
    """A redis-server of the test's own on a loopback port, to stop and start again."""

    def __init__(self, tmp_path: Path) -> None:
        self.port, self.dir = _free_port(), tmp_path
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _redis_answers(self.url):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on PATH to stop and start")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_redis_that_fails_mid_run_lets_requests_through_with_a_warning_and_a_metric(
        store: Store, redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    worker = Authenticator(store, "2/minute", redis_server.url, on_unchecked=metrics.record_rate_limit_unchecked,
                           recheck_after_s=0.2)
    bearer = _bearer(store)
    assert _answers(worker, bearer, 1) == ["ok"]

    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="copilot.auth"):
        started = time.monotonic()
        during = _answers(worker, bearer, 5)  # over the rate, but nothing can count it
        took = time.monotonic() - started
        redis_server.start()  # empty: it forgot the hit before the outage
        time.sleep(0.3)
        after = _answers(worker, bearer, 3)

    assert during == ["ok"] * 5 and took < 2.0
    assert after == ["ok", "ok", "429"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "copilot.auth"]
    assert len(warnings) == 2 and "unchecked" in warnings[0] and "answers again" in warnings[1]
    assert b"copilot_rate_limit_unchecked_total 5.0" in metrics.render()[0]
