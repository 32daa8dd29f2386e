"""Spill files: KIS buffer entries that neither Redis nor the buffer's memory could take, on local disk.

When Redis is down the buffer (:mod:`krxflow.kis.buffer`) holds entries in memory up to its cap;
past the cap they go to a spill file, and from there back to Redis once it answers again. A file
left at the end of a window (Redis still down) is named in the trigger's event, and the task
that drains the window writes it to PostgreSQL (:func:`krxflow.intraday.drain.write_spilled`); a file
nobody finished (the task ran on another host, the triggerer died) is replayed into Redis by the
next buffer of the same stream on this host.

Layout: ``<spill dir>/<stream key, made file-safe>/<window>-<host>-<pid>-<random>.jsonl``, one
entry a line: ``[records, fields]`` (``records``: how many records the entry carries — one for a
polled quote, a list's length for a WebSocket batch). Whoever reads or writes a file holds an
exclusive ``flock`` on it for as long as it has it open, and deletes it once every entry went on
(to Redis or PostgreSQL), so a file is never read by two at once; a reader that finds the file
already deleted (``st_nlink == 0``) after getting the lock leaves it alone. A reader stopped half
way leaves the file whole: the next one writes its entries again, and the tables' keys keep the
rows unique.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"


class SpillFull(OSError):
    """The spill file reached its size limit."""


def stream_dir(spill_dir: Path, stream: str) -> Path:
    """The folder of ``stream``'s spill files (the stream's Redis key made safe for a file name)."""
    return Path(spill_dir) / re.sub(r"[^A-Za-z0-9._-]", "_", stream)


def encode(fields: dict, records: int) -> bytes:
    return json.dumps([records, fields], separators=(",", ":")).encode() + b"\n"


class SpillFile:
    """One spill file, locked while open: appended by its writer, read back in order.

    :param path: the file.
    :param fd: an open descriptor on it (read/write), already locked.
    :param entries: entries in the file not yet read (counted for an adopted file).
    """

    def __init__(self, path: Path, fd: int, entries: int = 0) -> None:
        self.path = path
        self._file = os.fdopen(fd, "r+b", buffering=0)
        self._read_at = 0
        self.unread = entries
        self.size = self._file.seek(0, os.SEEK_END)

    # ---------------------------------------------------------------- opening
    @classmethod
    def create(cls, spill_dir: Path, stream: str, window: int) -> SpillFile:
        """A new, empty spill file of ``stream`` (its folder made if needed)."""
        folder = stream_dir(spill_dir, stream)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{window}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return cls(path, fd)

    @classmethod
    def claim(cls, path: Path) -> SpillFile | None:
        """Take ``path`` over to read it; None if it is gone or another process has it open."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if os.fstat(fd).st_nlink == 0:  # finished and deleted by the one that held the lock before us
            os.close(fd)
            return None
        spill = cls(path, fd)
        spill.unread = spill._count_lines()
        return spill

    @classmethod
    def orphans(cls, spill_dir: Path, stream: str) -> list[SpillFile]:
        """The spill files of ``stream`` that nobody has open (left by a window that could not finish)."""
        folder = stream_dir(spill_dir, stream)
        if not folder.is_dir():
            return []
        claimed = [cls.claim(path) for path in sorted(folder.glob(f"*{SUFFIX}"))]
        return [spill for spill in claimed if spill is not None]

    # ---------------------------------------------------------------- writing and reading
    def append(self, lines: list[bytes], max_bytes: int) -> None:
        """Append encoded entries (:func:`encode`); :class:`SpillFull` if the file would pass ``max_bytes``."""
        data = b"".join(lines)
        if self.size + len(data) > max_bytes:
            raise SpillFull(f"spill file {self.path} would pass {max_bytes} bytes")
        self._file.seek(0, os.SEEK_END)
        self._file.write(data)
        self.size += len(data)
        self.unread += len(lines)

    def read(self, max_entries: int, max_bytes: int) -> tuple[list[tuple[dict, int, int]], int]:
        """The next entries as ``(fields, size, records)``, at most ``max_entries`` / about ``max_bytes``
        (at least one); and how many lines could not be decoded (a line cut short by a crash)."""
        out: list[tuple[dict, int, int]] = []
        bad = taken = 0
        self._file.seek(self._read_at)
        reader = _Lines(self._file)
        while self.unread and len(out) < max_entries and (not out or taken < max_bytes):
            line = reader.next()
            if line is None:
                self.unread = 0
                break
            self.unread -= 1
            try:
                records, fields = json.loads(line)
            except (ValueError, TypeError):
                bad += 1
                continue
            out.append((fields, len(line), int(records)))
            taken += len(line)
        self._read_at += reader.consumed
        return out, bad

    def finish(self) -> None:
        """Delete the file (every entry went on) and let it go."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        self.close()

    def close(self) -> None:
        """Let the file go, kept on disk (its entries still to be written by someone)."""
        if not self._file.closed:
            self._file.close()  # closing the descriptor releases the lock

    def _count_lines(self) -> int:
        self._file.seek(0)
        lines = 0
        last = b"\n"
        while chunk := self._file.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
        return lines + (last != b"\n")  # a last line cut short by a crash counts (and fails to decode)


class _Lines:
    """Lines of an unbuffered binary file from its current position, counting the bytes consumed."""

    def __init__(self, file) -> None:
        self.file = file
        self.buffer = b""
        self.consumed = 0

    def next(self) -> bytes | None:
        while b"\n" not in self.buffer:
            chunk = self.file.read(1 << 16)
            if not chunk:
                if self.buffer:  # a last line without its newline: cut short by a crash
                    line, self.buffer = self.buffer, b""
                    self.consumed += len(line)
                    return line
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        self.consumed += len(line) + 1
        return line


def read_all(path: Path, chunk: int = 2_000) -> Iterator[list[dict]]:
    """The entries of the spill file ``path`` in chunks, then the file is deleted (see module doc).

    Yields nothing if the file is gone or another process has it open. The file is deleted only
    after the caller has taken the last chunk (and asked for the next), so a caller that dies half
    way leaves it for the next reader.
    """
    spill = SpillFile.claim(Path(path))
    if spill is None:
        return
    try:
        while spill.unread:
            entries, bad = spill.read(chunk, 1 << 62)
            if bad:
                log.warning("spill file %s: %d lines could not be decoded (cut short); skipped", path, bad)
            if entries:
                yield [fields for fields, _, _ in entries]
        spill.finish()
    finally:
        spill.close()
