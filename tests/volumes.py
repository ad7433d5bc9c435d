"""Real full and read-only disks for the storage fault tests: a small tmpfs that runs full, a read-only view.

As root, permissions do not stop writes, so both are made for real: mounting needs root with CAP_SYS_ADMIN (the
project's containers have it); elsewhere ``mount`` fails and the tests that need one skip.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1024 * 1024


class VolumeUnavailable(Exception):
    """No tmpfs can be mounted here (not root, or no CAP_SYS_ADMIN)."""


class SmallVolume:
    """A tmpfs of ``size_bytes`` mounted at ``path``; ``fill`` takes its free space, ``free`` gives it back."""

    def __init__(self, path: Path, size_bytes: int) -> None:
        self.path = path
        self.size_bytes = size_bytes
        self.filler = path / ".filler"
        self._mounted = False

    def mount(self) -> SmallVolume:
        self.path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes}", "tmpfs", str(self.path)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise VolumeUnavailable(f"mount -t tmpfs failed: {result.stderr.strip() or result.returncode}")
        self._mounted = True
        return self

    def unmount(self) -> None:
        """Lazily: files the test process still holds open (a database, Chroma) close when it lets them go."""
        if self._mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
            self._mounted = False

    def fill(self, leave_bytes: int = 0) -> None:
        """Write a filler file until only ``leave_bytes`` are free (or none)."""
        room = shutil.disk_usage(self.path).free - leave_bytes
        with open(self.filler, "ab") as handle:
            try:
                while room > 0:
                    handle.write(b"\0" * min(CHUNK, room))
                    handle.flush()
                    room -= CHUNK
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    @property
    def free_bytes(self) -> int:
        return shutil.disk_usage(self.path).free


class ReadOnlyView:
    """``source`` seen read-only at ``path`` (a bind mount), as a data directory on a volume mounted read-only.

    Remounting the volume itself read-only is refused while a process holds files on it open for writing."""

    def __init__(self, source: Path, path: Path) -> None:
        self.source = source
        self.path = path
        self._mounted = False

    def mount(self) -> ReadOnlyView:
        self.path.mkdir(parents=True, exist_ok=True)
        for args in (["--bind", str(self.source)], ["-o", "remount,bind,ro"]):
            result = subprocess.run(["mount", *args, str(self.path)], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                self.unmount()
                raise VolumeUnavailable(f"mount {' '.join(args)} failed: {result.stderr.strip() or result.returncode}")
            self._mounted = True
        return self

    def unmount(self) -> None:
        if self._mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
            self._mounted = False


def small_volume(path: Path, size_bytes: int = 16 * 1024 * 1024) -> Iterator[SmallVolume]:
    """A mounted tmpfs of ``size_bytes`` for a fixture to yield from (the test is skipped where mount is refused)."""
    import pytest

    small = SmallVolume(path, size_bytes)
    try:
        small.mount()
    except VolumeUnavailable as exc:
        pytest.skip(f"cannot make a small volume here: {exc}")
    try:
        yield small
    finally:
        small.unmount()
