"""The records database as every store in it opens it: private, WAL, one write lock taken up front.

`RecordStore` and `AnomalyStore` keep their tables in the same `records.db`, each through its own
connection; they open it and write to it the same way, here."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path


def open_private(path: Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection to `path` (its directory made 0700 and the file 0600), in WAL mode; autocommit, so
    transactions are explicit (`write_transaction`); usable from any thread under the store's lock."""
    if synchronous not in ("OFF", "NORMAL", "FULL"):
        raise ValueError(f"synchronous must be OFF, NORMAL or FULL, not {synchronous!r}")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    return db


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection, lock: threading.RLock) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE takes the write lock up front, so a transaction never fails half-way on a busy db."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
