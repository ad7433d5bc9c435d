"""Which server process owns a background job, and whether that process is provably gone.

Several processes share one database (``copilot serve --workers N``, several servers, a worker that uvicorn
restarts), so a starting process may fail only the jobs whose owner is certainly dead:

* an owner on this machine (same host name, same boot, same pid namespace) whose pid no longer runs, or runs
  a process that started at another time (the pid was reused): gone at once;
* any other owner (another host or container, or a job written before owners were kept) only once the job
  shows no sign of life for ``stale_after_s``: its process touches its live jobs every ``stale_after_s / 4``
  (``JobHeartbeat``), and a job's progress touches it too.

An owner reads ``host:pid:boot.namespace.started``; the start time is the process's start in clock ticks since
boot (``/proc/<pid>/stat``), which a reused pid does not share. Without ``/proc`` (not Linux) only the pid's
existence is checked.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.store import Store

log = logging.getLogger("copilot.jobs")
PROC = Path("/proc")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _boot_id() -> str:
    return _read(PROC / "sys/kernel/random/boot_id")[:8]


def _pid_namespace() -> str:
    try:
        link = os.readlink(PROC / "self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return ""
    return "".join(c for c in link if c.isdigit())


def _started(pid: int) -> str | None:
    """The start time of process ``pid`` in ticks since boot; "" when unknowable here, None when no such pid."""
    if PROC.joinpath("self/stat").exists():
        stat = _read(PROC / str(pid) / "stat")
        if not stat:
            return None
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses; starttime is field 22
        return stat.rsplit(")", 1)[-1].split()[19]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, owned by another user
    return ""


@dataclass(frozen=True)
class JobOwner:
    """A server process: where it runs (host, boot, pid namespace), its pid and when it started."""

    host: str
    pid: int
    boot: str
    namespace: str
    started: str

    @classmethod
    def of_pid(cls, pid: int) -> JobOwner:
        """The process ``pid`` of this machine (its start time is "" when it is not running)."""
        return cls(socket.gethostname()[:150], pid, _boot_id(), _pid_namespace(), _started(pid) or "")

    @classmethod
    def current(cls) -> JobOwner:
        return cls.of_pid(os.getpid())

    @classmethod
    def parse(cls, text: str) -> JobOwner | None:
        """The owner a job row names; None for a row without one, or one this version cannot read."""
        parts = text.rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        host, pid, token = parts
        fields = token.split(".")
        if len(fields) != 3:
            return None
        return cls(host, int(pid), *fields)

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.boot}.{self.namespace}.{self.started}"

    def is_here(self, here: JobOwner) -> bool:
        """Whether this owner's pid names a process that ``here`` can look at: same host, boot and pid namespace."""
        return (self.host, self.boot, self.namespace) == (here.host, here.boot, here.namespace)

    def is_gone(self) -> bool:
        """True when this process of this machine (``is_here``) provably no longer runs: no such pid, or the pid
        now names a process that started at another time."""
        started = _started(self.pid)
        if started is None:
            return True
        return bool(started and self.started) and started != self.started


class JobHeartbeat:
    """Touches this process's live jobs every ``stale_after_s / 4`` and fails those of processes that are gone,
    so a job of a machine that died is failed within ``stale_after_s`` even when no process restarts."""

    def __init__(self, store: Store, owner: JobOwner, stale_after_s: float) -> None:
        self.store, self.owner, self.stale_after_s = store, owner, stale_after_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="copilot-job-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def beat(self) -> None:
        self.store.touch_jobs(str(self.owner))
        self.store.fail_interrupted_jobs(self.stale_after_s, here=self.owner)

    def _run(self) -> None:
        while not self._stop.wait(self.stale_after_s / 4):
            try:
                self.beat()
            except Exception:  # the database is down: the next beat tries again, jobs go on meanwhile
                log.warning("could not touch this process's jobs", exc_info=True)
