"""The performance benchmark over HTTP: ``copilot serve`` started on a data directory, timed from outside.

Evals never import the API: the server runs as a subprocess of the ``copilot`` command line and is called
over loopback, as an agent console calls it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from copilot.conversation import Thread
from copilot.errors import ServiceUnavailable
from evals.contract import latency_summary

START_LIMIT_S = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float | None:
    """A process's peak RSS (Linux ``/proc``); None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def server_env(data_dir: Path) -> dict[str, str]:
    """This environment on ``data_dir`` alone (no database or Chroma server, no LLM), with no rate limit
    in the way of sequential requests and only warnings logged."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("COPILOT_DATABASE_URL", "COPILOT_CHROMA_URL", "COPILOT_LLM_BASE_URL")}
    return env | {"COPILOT_DATA_DIR": str(data_dir), "COPILOT_RATE_LIMIT": "1000000/minute",
                  "COPILOT_LOG_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def agent_key(cli: Sequence[str], env: dict[str, str], tenant: str) -> str:
    done = subprocess.run([*cli, "keys", "create", "--tenant", tenant, "--role", "agent", "--json"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise ServiceUnavailable(f"could not create an agent key: {done.stderr.strip()[-500:]}")
    return str(json.loads(done.stdout)["key"])


@contextmanager
def served(cli: Sequence[str], env: dict[str, str], port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``copilot serve`` on loopback, stopped (killed if it must be) however the block ends, Ctrl-C included."""
    with log_path.open("wb") as server_log:
        process = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=server_log,
                                   stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def _body(thread: Thread) -> dict[str, Any]:
    return {"thread": thread.model_dump(mode="json", exclude_none=True), "n": 3}


def _first_answer(client: httpx.Client, url: str, thread: Thread, process: subprocess.Popen[bytes],
                  log_path: Path, started: float) -> None:
    """Ask until the server answers: connection refused while it starts, 503 while it loads."""
    while True:
        if process.poll() is not None:
            raise ServiceUnavailable(f"copilot serve exited ({process.returncode}): "
                                     f"{log_path.read_text(errors='replace')[-1500:]}")
        if time.perf_counter() - started > START_LIMIT_S:
            raise ServiceUnavailable(f"copilot serve gave no suggestion within {START_LIMIT_S:g} s")
        try:
            response = client.post(url, json=_body(thread))
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        if response.status_code == 503:
            time.sleep(0.05)
            continue
        if response.status_code != 200:
            raise ServiceUnavailable(f"POST /v1/suggestions answered {response.status_code}: {response.text[:500]}")
        return


def measure_http(cli: Sequence[str], data_dir: Path, tenant: str, first: Thread, threads: Sequence[Thread],
                 log: Callable[[str], None]) -> dict[str, float]:
    """Cold start (process start to ``first`` answered), suggestion latency and throughput over ``threads``
    asked one after another, and the server's peak RSS."""
    env = server_env(data_dir)
    key = agent_key(cli, env, tenant)  # before the clock starts: a console has its key before the service starts
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/suggestions"
    log_path = data_dir.parent / "server.log"
    figures: dict[str, float] = {}
    log("  over HTTP: starting copilot serve")
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
        started = time.perf_counter()
        with served(cli, env, port, log_path) as process:
            _first_answer(client, url, first, process, log_path, started)
            figures["cold_start_s"] = time.perf_counter() - started
            log(f"  over HTTP: answered {figures['cold_start_s']:.1f} s after start; {len(threads)} suggestions")
            samples = []
            begun = time.perf_counter()
            for thread in threads:
                sent = time.perf_counter()
                response = client.post(url, json=_body(thread))
                samples.append((time.perf_counter() - sent) * 1000)
                if response.status_code != 200:
                    raise ServiceUnavailable(f"POST /v1/suggestions answered {response.status_code}: "
                                             f"{response.text[:500]}")
            wall = time.perf_counter() - begun
            figures.update({f"suggest_http_{k}_ms": v for k, v in latency_summary(samples).items()})
            figures["suggest_http_per_s"] = len(samples) / max(wall, 1e-9)
            rss = peak_rss_mb(process.pid)
            if rss is not None:
                figures["rss_mb"] = rss
    return figures
