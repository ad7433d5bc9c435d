"""``copilot serve`` in a subprocess on a free loopback port, for tests that need the real server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

COPILOT = [sys.executable, "-m", "api.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(env: dict[str, str], log_path: Path, *, ready_s: float = 90, args: tuple[str, ...] = ()) -> Iterator[str]:
    """The server's base URL once /readyz answers 200; its output goes to ``log_path``; stopped on exit.
    ``args``: more ``copilot serve`` options (``--workers 2``)."""
    port = free_port()
    log = log_path.open("w")
    process = subprocess.Popen([*COPILOT, "serve", "--port", str(port), *args], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            pytest.fail("the server did not become ready: " + log_path.read_text()[-2000:])
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
