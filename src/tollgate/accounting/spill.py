"""The spend log's local, append-only spill files: what makes queued rows survive a crash.

Each process owns one spill file ``<owner>.jsonl`` in the spill directory, guarded by an
exclusive ``flock`` on ``<owner>.lock`` held for the process lifetime. Rows are appended to an
in-memory buffer on enqueue and written (``write(2)``, no fsync) by ``flush_buffer`` every 100 ms,
so once written they survive SIGKILL of the process (they are in the OS page cache); only rows
buffered in the last interval are lost. After a successful database flush the owner rewrites its
file to hold only the rows still queued (``compact``). Files whose owner's lock is free belong to
a dead process: ``adopt_orphans`` renames them to ``<me>.backlog-<n>.jsonl``; backlog files are
drained in batches and deleted. Replays may repeat rows already written to the database; the
store skips request ids it has (``record_spend`` is idempotent), so nothing counts twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path


class SpillDir:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._lock_fd = os.open(directory / f"{self.owner}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = directory / f"{self.owner}.jsonl"
        self._fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        self._buffer: list[bytes] = []
        self._backlog_seq = 0

    def append(self, line: bytes) -> None:
        self._buffer.append(line)

    def flush_buffer(self) -> None:
        """Write buffered lines to the file (a few µs to the page cache)."""
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            _write_all(self._fd, data)

    def compact(self, pending: Sequence[bytes]) -> None:
        """Make the file hold exactly ``pending`` (the rows not yet in the database); the buffer
        is dropped, as everything buffered is in ``pending``."""
        self._buffer.clear()
        if not pending:
            os.ftruncate(self._fd, 0)
            return
        tmp = self.directory / f"{self.owner}.tmp"
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, b"".join(pending))
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)

    def rotate_to_backlog(self) -> Path:
        """Move the whole current file to the backlog (after writing the buffer); start a new one."""
        self.flush_buffer()
        os.close(self._fd)
        target = self._backlog_path()
        os.replace(self.path, target)
        self._fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        return target

    def _backlog_path(self) -> Path:
        self._backlog_seq += 1
        return self.directory / f"{self.owner}.backlog-{self._backlog_seq}-{secrets.token_hex(2)}.jsonl"

    def adopt_orphans(self) -> list[Path]:
        """Claim the files of owners that are gone; returns every backlog file of this owner."""
        owners = {p.name.split(".", 1)[0] for p in self.directory.glob("*.jsonl")}
        owners.discard(self.owner)
        for owner in sorted(owners):
            fd = self._claim(owner)
            if fd is None:
                continue
            try:
                for path in sorted(self.directory.glob(f"{owner}.*jsonl")):
                    with contextlib.suppress(FileNotFoundError):  # another process adopted it
                        os.replace(path, self._backlog_path())
                for leftover in (f"{owner}.lock", f"{owner}.tmp"):
                    (self.directory / leftover).unlink(missing_ok=True)
            finally:
                if fd >= 0:
                    os.close(fd)
        return self.backlog()

    def backlog(self) -> list[Path]:
        return sorted(self.directory.glob(f"{self.owner}.backlog-*.jsonl"), key=lambda p: p.stat().st_mtime)

    def _claim(self, owner: str) -> int | None:
        """The lock of a dead owner, held (-1 if it left no lock file); ``None`` if it lives."""
        try:
            fd = os.open(self.directory / f"{owner}.lock", os.O_RDWR)
        except FileNotFoundError:
            return -1
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def close(self, *, remove: bool) -> None:
        """Release the file; ``remove`` when every row reached the database."""
        self.flush_buffer()
        os.close(self._fd)
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self._lock_fd)
        (self.directory / f"{self.owner}.lock").unlink(missing_ok=True)


def read_lines(path: Path, batch: int) -> Iterator[list[bytes]]:
    """Complete lines of ``path`` in lists of at most ``batch``; a torn last line is skipped."""
    chunk: list[bytes] = []
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break
            chunk.append(line)
            if len(chunk) >= batch:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
