"""The append-only, hash-chained audit log: one JSONL file per UTC day, one chain across all of them.

Every proposal, approval, execution step and replay is an entry; each entry hashes its content and
the previous entry's hash, so an edit, a deletion or a reordering breaks the chain where it happened.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import to_jsonable_python

from operate_mcp.audit.checkpoint import (
    CHECKPOINTS_FILE,
    ORIGIN,
    Checkpoint,
    CheckpointWitness,
    default_signing_key_path,
    load_or_create_signing_key,
    parse_checkpoints,
    public_key_path_for,
    sign_checkpoint,
)
from operate_mcp.config import Settings
from operate_mcp.errors import OperateError
from operate_mcp.redact import redact

GENESIS_HASH = "0" * 64
AUDIT_DIR = "audit"
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")


class AuditEntry(BaseModel):
    """One line of the log. `hash` is SHA-256 over the canonical JSON of every other field."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    seq: int
    ts: str
    kind: str
    session_id: str | None = None
    record_id: str | None = None
    actor: str
    data: dict[str, Any]
    prev_hash: str
    hash: str

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.ts)


class TornTail(BaseModel):
    """The bytes at the end of a day file that are not a complete entry (an interrupted write)."""

    file: str
    path: str
    line: int
    offset: int
    length: int
    reason: str

    def message(self) -> str:
        return (
            f"audit log {self.file} line {self.line} {self.reason} ({self.length} bytes): a write was "
            "interrupted. Nothing has been dropped; run `operate-mcp audit repair` to move these bytes to a "
            ".torn file and record the repair in the log."
        )


class AuditLogCorrupt(OperateError):
    """The log cannot be appended to safely; the message names the file and line."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.line = line


def canonical_json(obj: Any) -> bytes:
    """The one serialisation that is hashed: sorted keys, no spaces, UTF-8, no NaN."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode()


def entry_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 hex of an entry's fields without `hash` (a `hash` key, if present, is ignored)."""
    return hashlib.sha256(canonical_json({k: v for k, v in content.items() if k != "hash"})).hexdigest()


def day_file_name(day: date) -> str:
    return f"{day.isoformat()}.jsonl"


def day_files(audit_dir: Path) -> list[tuple[date, Path]]:
    """The day files in chain order (oldest first); .torn and other files are not part of the chain."""
    found: list[tuple[date, Path]] = []
    try:
        names = os.listdir(audit_dir)
    except FileNotFoundError:
        return []
    for name in names:
        match = _DAY_FILE.match(name)
        if match:
            try:
                found.append((date.fromisoformat(match.group(1)), audit_dir / name))
            except ValueError:
                continue
    return sorted(found)


def parse_entry(line: bytes) -> AuditEntry | None:
    """The entry on a line, or None when the line is not one."""
    try:
        return AuditEntry.model_validate(json.loads(line))
    except (ValueError, ValidationError):
        return None


def find_entry(audit_dir: Path, seq: int) -> tuple[AuditEntry, Path, int] | None:
    """The entry with sequence number `seq`, its file and line; newest files are searched first."""
    for _, path in reversed(day_files(audit_dir)):
        with path.open("rb") as f:
            first = parse_entry(f.readline())
        if first is None or first.seq > seq:
            continue
        for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
            entry = parse_entry(raw) if raw else None
            if entry is not None and entry.seq == seq:
                return entry, path, number
        return None
    return None


def format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware (got a naive datetime)")
    return now.astimezone(UTC)


@dataclass
class _Scan:
    """What reading a day file from `offset` found: complete lines, the last entry, a torn tail."""

    path: Path
    inode: int
    offset: int  # end of the last good line
    lines: int
    last: AuditEntry | None
    torn: TornTail | None


def _scan(path: Path, offset: int = 0, lines: int = 0, last: AuditEntry | None = None) -> _Scan:
    with path.open("rb") as f:
        inode = os.fstat(f.fileno()).st_ino
        f.seek(offset)
        chunk = f.read()
    complete_end = chunk.rfind(b"\n") + 1
    count = chunk.count(b"\n", 0, complete_end)
    if count:
        start = chunk.rfind(b"\n", 0, complete_end - 1) + 1
        entry = parse_entry(chunk[start : complete_end - 1])
        if entry is None:
            torn = TornTail(
                file=path.name,
                path=str(path),
                line=lines + count,
                offset=offset + start,
                length=len(chunk) - start,
                reason="is not a valid audit entry",
            )
            return _Scan(path, inode, offset + start, lines + count - 1, None, torn)
        offset, lines, last = offset + complete_end, lines + count, entry
    if complete_end < len(chunk):
        torn = TornTail(
            file=path.name,
            path=str(path),
            line=lines + 1,
            offset=offset,
            length=len(chunk) - complete_end,
            reason="ends without a newline",
        )
        return _Scan(path, inode, offset, lines, last, torn)
    return _Scan(path, inode, offset, lines, last, None)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


class AuditLog:
    """Appends entries and signs checkpoints; safe across threads and processes sharing a data dir."""

    def __init__(
        self, data_dir: Path, signing_key_path: Path | None = None, *, witness: CheckpointWitness | None = None
    ) -> None:
        self.data_dir = data_dir
        self.witness = witness if witness is not None else CheckpointWitness()  # syslog only, unless a dir
        self.audit_dir = data_dir / AUDIT_DIR
        self.checkpoints_path = self.audit_dir / CHECKPOINTS_FILE
        self.signing_key_path = signing_key_path or default_signing_key_path(data_dir)
        self.public_key_path = public_key_path_for(self.signing_key_path)
        self._thread_lock = threading.Lock()
        self._cache: _Scan | None = None
        self.audit_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        self.torn_tail: TornTail | None = None
        with self._locked():
            self.torn_tail = self._tail()[2]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time: a thread lock for this process, flock for the others."""
        with self._thread_lock:
            fd = os.open(self.audit_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _tail(self) -> tuple[Path | None, AuditEntry | None, TornTail | None]:
        """(newest day file, last complete entry, torn tail); reads only what changed since last time."""
        files = day_files(self.audit_dir)
        if not files:
            self._cache = None
            return None, None, None
        newest = files[-1][1]
        cached = self._cache
        size_and_inode = newest.stat()
        if (
            cached is not None
            and cached.path == newest
            and cached.inode == size_and_inode.st_ino
            and size_and_inode.st_size >= cached.offset
        ):
            scan = _scan(newest, cached.offset, cached.lines, cached.last)
        else:
            scan = _scan(newest)
        self._cache = scan if scan.torn is None else None
        if scan.torn is not None or scan.last is not None:
            return newest, scan.last, scan.torn
        for _, older in reversed(files[:-1]):  # the newest file is empty: the chain ends in an older one
            previous = _scan(older)
            if previous.torn is not None or previous.last is not None:
                return newest, previous.last, previous.torn
        return newest, None, None

    def _raise_if_torn(self, torn: TornTail | None) -> None:
        self.torn_tail = torn
        if torn is not None:
            raise AuditLogCorrupt(torn.message(), file=torn.file, line=torn.line)

    def append(
        self,
        kind: str,
        *,
        actor: str,
        data: Mapping[str, Any],
        session_id: str | None = None,
        record_id: str | None = None,
        now: datetime | None = None,
    ) -> AuditEntry:
        """Redact `data`, chain it to the last entry, write and fsync it; returns what was written."""
        moment = _utc(now)
        try:
            clean = json.loads(canonical_json(redact(to_jsonable_python(dict(data)))))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"audit data for {kind!r} is not JSON-serialisable: {exc}") from exc
        with self._locked():
            return self._append_locked(kind, actor, clean, session_id, record_id, moment)

    def _append_locked(
        self,
        kind: str,
        actor: str,
        data: dict[str, Any],
        session_id: str | None,
        record_id: str | None,
        moment: datetime,
    ) -> AuditEntry:
        newest, last, torn = self._tail()
        self._raise_if_torn(torn)
        content: dict[str, Any] = {
            "seq": (last.seq + 1) if last else 1,
            "ts": format_ts(moment),
            "kind": kind,
            "session_id": session_id,
            "record_id": record_id,
            "actor": actor,
            "data": data,
            "prev_hash": last.hash if last else GENESIS_HASH,
        }
        entry = AuditEntry.model_validate({**content, "hash": entry_hash(content)})
        # A clock that went backwards still appends to the newest file, so file order stays chain order.
        day = moment.date()
        if newest is not None:
            day = max(day, date.fromisoformat(newest.name.removesuffix(".jsonl")))
        path = self.audit_dir / day_file_name(day)
        payload = canonical_json(entry.model_dump(mode="json")) + b"\n"
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            _write_all(fd, payload)
            os.fsync(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.audit_dir)
        cached = self._cache
        lines = cached.lines + 1 if cached is not None and cached.path == path else 1
        self._cache = _Scan(path, st.st_ino, st.st_size, lines, entry, None)
        return entry

    def checkpoint(self, *, now: datetime | None = None) -> Checkpoint:
        """Sign the current size and last hash and append the note to checkpoints.log.

        Refuses when the log no longer matches the previous checkpoint, so a truncated or rewritten
        log is never blessed by a fresh signature.
        """
        moment = _utc(now)
        with self._locked():
            _, last, torn = self._tail()
            self._raise_if_torn(torn)
            key = load_or_create_signing_key(self.signing_key_path)
            size, root = (last.seq, last.hash) if last else (0, GENESIS_HASH)
            previous = self._last_checkpoint(key.public_key())
            if previous is not None and previous.tree_size > 0:
                self._check_still_matches(previous, size)
            checkpoint = sign_checkpoint(key, size, root, format_ts(moment))
            fd = os.open(self.checkpoints_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                _write_all(fd, (checkpoint.note() + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self.witness.send(checkpoint)  # after the local copy: a witness never holds more than the log
            return checkpoint

    def _last_checkpoint(self, public_key: Ed25519PublicKey) -> Checkpoint | None:
        """The newest checkpoint this key signed; forged notes are verify's to report, not ours to trust."""
        try:
            with self.checkpoints_path.open("rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - 8192))
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            return None
        marker = text.rfind(f"\n\n{ORIGIN}\n")
        notes = parse_checkpoints(text[marker + 2 :] if marker >= 0 else text)
        checkpoints = [n.checkpoint for n in notes if n.checkpoint and n.checkpoint.verify_signature(public_key)]
        return checkpoints[-1] if checkpoints else None

    def _check_still_matches(self, previous: Checkpoint, size: int) -> None:
        hint = "run `operate-mcp audit verify` to see what changed"
        if previous.tree_size > size:
            raise AuditLogCorrupt(
                f"refusing to sign a checkpoint: the last one covers {previous.tree_size} entries but "
                f"the log now ends at seq {size} (truncated?); {hint}"
            )
        found = find_entry(self.audit_dir, previous.tree_size)
        if found is None or found[0].hash != previous.root_hash:
            where = f"{found[1].name} line {found[2]}" if found else "nowhere"
            raise AuditLogCorrupt(
                f"refusing to sign a checkpoint: entry seq {previous.tree_size} ({where}) no longer matches "
                f"the last signed checkpoint (rewritten?); {hint}",
                file=found[1].name if found else None,
                line=found[2] if found else None,
            )

    def repair_torn_tail(self, *, actor: str = "operate-mcp", now: datetime | None = None) -> AuditEntry | None:
        """Move a torn tail to `<file>.torn-<ts>`, cut it from the log and record an `audit.repair` entry.

        Explicit on purpose: the torn bytes are evidence, so they are kept and the repair is chained.
        Returns None when there was nothing to repair.
        """
        moment = _utc(now)
        with self._locked():
            _, _, torn = self._tail()
            if torn is None:
                self.torn_tail = None
                return None
            path = Path(torn.path)
            with path.open("rb") as f:
                f.seek(torn.offset)
                torn_bytes = f.read()
            torn_path = path.with_name(f"{path.name}.torn-{moment.strftime('%Y%m%dT%H%M%S%fZ')}")
            fd = os.open(torn_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                _write_all(fd, torn_bytes)
                os.fsync(fd)
            finally:
                os.close(fd)
            fd = os.open(path, os.O_WRONLY)
            try:
                os.ftruncate(fd, torn.offset)
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_dir(self.audit_dir)
            self._cache = None
            self.torn_tail = None
            data = {
                "file": torn.file,
                "line": torn.line,
                "offset": torn.offset,
                "bytes": len(torn_bytes),
                "sha256": hashlib.sha256(torn_bytes).hexdigest(),
                "reason": torn.reason,
                "moved_to": torn_path.name,
                "preview_b64": base64.b64encode(torn_bytes[:64]).decode(),
            }
            return self._append_locked("audit.repair", actor, data, None, None, moment)

    def entries(self, from_date: date | None = None, to_date: date | None = None) -> Iterator[AuditEntry]:
        """Entries of the day files in [from_date, to_date] (inclusive, UTC), in file order.

        Reads, does not verify: callers that act on entries (replay) run verify first.
        """
        for day, path in day_files(self.audit_dir):
            if (from_date is not None and day < from_date) or (to_date is not None and day > to_date):
                continue
            with self._locked():
                raw = path.read_bytes()
            lines = raw.split(b"\n")
            for number, line in enumerate(lines, start=1):
                if number == len(lines) and not line:
                    break
                entry = parse_entry(line) if number < len(lines) else None
                if entry is None:
                    raise AuditLogCorrupt(
                        f"audit log {path.name} line {number} is not a complete audit entry; "
                        "run `operate-mcp audit verify`",
                        file=path.name,
                        line=number,
                    )
                yield entry


def audit_log_for(settings: Settings) -> AuditLog:
    """The audit log of a configured installation: its data dir, and its checkpoint witness."""
    return AuditLog(settings.data_dir, witness=CheckpointWitness(settings.audit_witness_dir))
