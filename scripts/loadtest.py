"""Load test: a console mix against `copilot serve` on loopback, with locust as a library.

    .venv/bin/python scripts/loadtest.py --workers 1 --workers 4 --users 50 --minutes 5 --out DIR

For each worker count it prepares a data directory with the sample brand (PostgreSQL and a Chroma server when
there are several workers, as a deployment runs them), starts the server, and runs ``--users`` simulated
agents for ``--minutes``. Each agent works one conversation at a time (8-30 messages, then a new thread) like a
console: the customer writes (append), the agent asks for suggestions, sometimes a summary or the next actions,
and reports what it did with a suggestion (feedback), pausing 1-3 s between steps as a person does. It writes
``load.json`` and ``load.md``: throughput, p50/p95/p99 per request kind, errors, and the server's memory (RSS
of all its processes) sampled every 10 s, and keeps each server's log beside them. Only loopback is used; the
run is bounded by ``--minutes``.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import ExitStack, contextmanager  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import httpx  # noqa: E402
from locust import HttpUser, between, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.servers import ChromaServer, free_port, postgres_database  # noqa: E402

COPILOT = [sys.executable, "-m", "api.cli"]
SAMPLE = REPO / "samples" / "brightwave"
TENANT = "brightwave"


def _customer_turns() -> list[str]:
    """What customers write: the customer turns of the sample brand's eval threads."""
    turns = []
    for line in (SAMPLE / "evals" / "suite.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        thread = case.get("thread") or {}
        turns += [m["text"] for m in thread.get("messages", []) if m.get("role") == "customer"]
    return turns or ["I was charged twice for my bill this month"]


TURNS = _customer_turns()
KEYS: list[str] = []


class Agent(HttpUser):
    """One agent at a console, on one thread of their own."""

    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.key = KEYS[random.randrange(len(KEYS))]
        self.client.headers.update({"Authorization": f"Bearer {self.key}"})
        self._new_thread()

    def _new_thread(self) -> None:
        """The next conversation: a messaging thread runs to 8-30 messages, then the agent takes another."""
        self.thread_id = f"load-{uuid.uuid4().hex[:12]}"
        self.length = random.randint(8, 30)
        self.count = 0
        self.last_suggestion: str | None = None
        self.started = datetime.now(UTC)
        self.client.put(f"/v1/threads/{self.thread_id}", name="put thread", json={
            "channel": random.choice(["sms", "whatsapp", "webchat", "messenger"]),
            "customer": {"name": "Sam Taylor", "id": "C-1"},
            "messages": [self._message("customer")]})

    def _message(self, role: str) -> dict[str, Any]:
        self.count += 1
        text = random.choice(TURNS) if role == "customer" else "Thanks, let me check that for you."
        ts = self.started + timedelta(seconds=self.count)
        return {"id": f"m{self.count}", "role": role, "text": text, "ts": ts.isoformat()}

    @task(4)
    def customer_writes_then_suggest(self) -> None:
        if self.count >= self.length:
            self._new_thread()
        self.client.post(f"/v1/threads/{self.thread_id}/messages", name="append",
                         json={"messages": [self._message("customer")]})
        with self.client.post("/v1/suggestions", name="suggestions", json={"thread_id": self.thread_id},
                              catch_response=True) as response:
            if response.status_code == 200:
                suggestions = response.json().get("suggestions") or []
                self.last_suggestion = suggestions[0]["id"] if suggestions else None
                response.success()

    @task(2)
    def feedback(self) -> None:
        if self.last_suggestion is None:
            return
        event = random.choice(["accepted", "edited", "rejected", "shown"])
        body: dict[str, Any] = {"suggestion_id": self.last_suggestion, "event": event}
        if event == "edited":
            body["final_text"] = "Thanks for waiting, here is what I found."
        if event == "rejected":
            body["reason"] = "not_needed"
        self.client.post("/v1/feedback", name="feedback", json=body)
        self.client.post(f"/v1/threads/{self.thread_id}/messages", name="append",
                         json={"messages": [self._message("agent")]})

    @task(1)
    def summary(self) -> None:
        self.client.post("/v1/summaries", name="summaries", json={"thread_id": self.thread_id,
                                                                  "style": random.choice(["handoff", "after_contact"])})

    @task(1)
    def next_actions(self) -> None:
        self.client.post("/v1/next-best-actions", name="next actions", json={"thread_id": self.thread_id})


def _cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run([*COPILOT, *args, "--json"], env=env, capture_output=True, text=True, timeout=600,
                          cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"copilot {' '.join(args)} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants (the uvicorn workers), MB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


@contextmanager
def _server(workers: int, scratch: Path, users: int,
            keep_log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The server on a new data directory in ``scratch``; its log is copied to ``keep_log`` when it stops."""
    env = {**os.environ, "COPILOT_DATA_DIR": str(scratch / "data"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    env.pop("COPILOT_LLM_BASE_URL", None)
    with ExitStack() as stack:
        if workers > 1:
            chroma = stack.enter_context(ChromaServer(scratch / "chroma"))
            env["COPILOT_CHROMA_URL"] = chroma.url
            env["COPILOT_DATABASE_URL"] = stack.enter_context(postgres_database())
            env["COPILOT_RATE_LIMIT_STORAGE"] = "redis://127.0.0.1:6379/0"
        _cli(env, "tenants", "create", TENANT)
        _cli(env, "knowledge", "ingest", str(SAMPLE), "--tenant", TENANT)
        KEYS[:] = [_cli(env, "keys", "create", "--tenant", TENANT, "--role", "agent")["key"]
                   for _ in range(users)]
        port = free_port()
        log = (scratch / "server.log").open("wb")
        process = subprocess.Popen([*COPILOT, "serve", "--port", str(port), "--workers", str(workers)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start: {(scratch / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
            yield base, process
        finally:
            process.terminate()
            process.wait(60)
            log.close()
            keep_log.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(scratch / "server.log", keep_log)


def _stats(environment: Environment) -> dict[str, Any]:
    rows = {}
    for entry in [*environment.stats.entries.values(), environment.stats.total]:
        name = "all" if entry is environment.stats.total else entry.name
        rows[name] = {"requests": entry.num_requests, "failures": entry.num_failures,
                      "per_s": round(entry.total_rps, 2),
                      "p50_ms": entry.get_response_time_percentile(0.5),
                      "p95_ms": entry.get_response_time_percentile(0.95),
                      "p99_ms": entry.get_response_time_percentile(0.99),
                      "max_ms": round(entry.max_response_time or 0, 1)}
    return rows


def run_one(workers: int, users: int, minutes: float, log: Any, out: Path) -> dict[str, Any]:
    server_log = out / f"server-{workers}-workers.log"
    with (tempfile.TemporaryDirectory(prefix="copilot-load-") as tmp,
          _server(workers, Path(tmp), users, server_log) as (base, proc)):
        environment = Environment(user_classes=[Agent], host=base, events=events)
        errors: dict[str, int] = {}

        def on_request(request_type: str, name: str, response: Any, exception: Any, **_: Any) -> None:
            if exception is not None:
                key = f"{request_type} {name}: {getattr(response, 'status_code', '')} {str(exception)[:120]}"
                errors[key] = errors.get(key, 0) + 1

        environment.events.request.add_listener(on_request)
        runner = environment.create_local_runner()
        memory: list[tuple[float, float]] = [(0.0, round(_tree_rss_mb(proc.pid), 1))]
        started = time.monotonic()
        runner.start(users, spawn_rate=max(1, users / 10))
        while (elapsed := time.monotonic() - started) < minutes * 60:
            gevent.sleep(min(10.0, minutes * 60 - elapsed))
            memory.append((round(time.monotonic() - started, 1), round(_tree_rss_mb(proc.pid), 1)))
            total = environment.stats.total
            print(f"  {workers} worker(s), {elapsed:5.0f} s: {total.num_requests} requests, "
                  f"{total.num_failures} failed, RSS {memory[-1][1]:.0f} MB", file=log, flush=True)
        runner.quit()
        stats = _stats(environment)
        environment.events.request.remove_listener(on_request)
    rss = [m for _, m in memory]
    settled = rss[len(rss) // 3:]  # after the first third: caches and indexes are built by then
    return {"workers": workers, "users": users, "seconds": round(minutes * 60), "stats": stats, "errors": errors,
            "memory_mb": memory, "rss_start_mb": rss[0], "rss_max_mb": max(rss), "rss_end_mb": rss[-1],
            "rss_growth_after_warmup_mb": round(settled[-1] - settled[0], 1) if settled else 0.0}


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| workers | kind | requests | per s | p50 ms | p95 ms | p99 ms | failures |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        for name, row in sorted(result["stats"].items(), key=lambda kv: kv[0] != "all"):
            lines.append(f"| {result['workers']} | {name} | {row['requests']} | {row['per_s']} | {row['p50_ms']:.0f} "
                         f"| {row['p95_ms']:.0f} | {row['p99_ms']:.0f} | {row['failures']} |")
    lines += ["", "| workers | RSS at start MB | max MB | at end MB | growth after the first third MB |",
              "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['workers']} | {r['rss_start_mb']:.0f} | {r['rss_max_mb']:.0f} | {r['rss_end_mb']:.0f} | "
              f"{r['rss_growth_after_warmup_mb']:+.0f} |" for r in results]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, action="append", help="worker counts to test (repeatable)")
    parser.add_argument("--users", type=int, default=50, help="concurrent simulated agents")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long each run lasts")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for load.json, load.md and each server's log")
    args = parser.parse_args()
    if args.users < 1 or args.minutes <= 0:
        parser.error("--users must be at least 1 and --minutes above 0")
    results = []
    for workers in args.workers or [1]:
        print(f"{workers} worker(s), {args.users} agents, {args.minutes} min", file=sys.stderr, flush=True)
        results.append(run_one(workers, args.users, args.minutes, sys.stderr, args.out))
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
              "load_average_end": os.getloadavg(), "runs": results}
    (args.out / "load.json").write_text(json.dumps(report, indent=2))
    (args.out / "load.md").write_text(markdown(results))
    print(markdown(results))
    errors = sum(sum(r["errors"].values()) for r in results)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
