"""Ed25519-signed checkpoints (C2SP signed-note style), the key that signs them, and their witnesses.

A checkpoint commits to the log's size and last hash, so a later truncation or a rewritten tail
no longer matches what was signed. A witness keeps a copy where the data dir's writer cannot
rewrite it, so deleting checkpoints.log (or its newest notes with the entries they cover) shows too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import logging.handlers
import os
import re
import socket
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict

from operate_mcp.errors import OperateError

ORIGIN = "operate-mcp/audit"
KEY_NAME = "operate-mcp-audit"
CHECKPOINTS_FILE = "checkpoints.log"
WITNESS_SUFFIX = "-checkpoints.log"
SYSLOG_ADDRESS = "/dev/log"
SYSLOG_IDENT = "operate-mcp-audit"
_SIG_PREFIX = "\u2014 "  # "— ", the signed-note signature line marker
_ED25519_ALG = b"\x01"


class AuditKeyError(OperateError):
    """The audit signing key is unreadable or too widely readable."""


class AuditWitnessError(OperateError):
    """A configured witness could not take a copy of a checkpoint."""


class Checkpoint(BaseModel):
    """One signed statement "the log had `tree_size` entries and the last one hashed to `root_hash`"."""

    model_config = ConfigDict(frozen=True)

    origin: str = ORIGIN
    tree_size: int
    root_hash: str  # hex SHA-256 of entry `tree_size` (64 zeros for an empty log)
    time: str | None = None  # UTC ISO time of signing, an extension line
    key_name: str = KEY_NAME
    key_id: str  # hex of the 4-byte signed-note key hash
    signature: str  # base64 Ed25519 signature over body()

    def body(self) -> str:
        """The signed text: origin, tree size, base64 root hash, then extension lines."""
        root_b64 = base64.b64encode(bytes.fromhex(self.root_hash)).decode()
        lines = [self.origin, str(self.tree_size), root_b64]
        if self.time is not None:
            lines.append(f"time {self.time}")
        return "\n".join(lines) + "\n"

    def note(self) -> str:
        """The full signed note: body, a blank line, the signature line."""
        blob = base64.b64encode(bytes.fromhex(self.key_id) + base64.b64decode(self.signature)).decode()
        return f"{self.body()}\n{_SIG_PREFIX}{self.key_name} {blob}\n"

    def verify_signature(self, public_key: Ed25519PublicKey) -> bool:
        """True when `public_key` is the signer named by key_id and the signature covers body()."""
        if bytes.fromhex(self.key_id) != key_id(self.key_name, public_key):
            return False
        try:
            public_key.verify(base64.b64decode(self.signature), self.body().encode())
        except InvalidSignature:
            return False
        return True


class ParsedCheckpoint(BaseModel):
    """A note read back from checkpoints.log: the checkpoint, or why it could not be read."""

    line: int
    checkpoint: Checkpoint | None = None
    error: str | None = None


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """Signed-note key hash: first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + _ED25519_ALG + raw).digest()[:4]


def sign_checkpoint(private_key: Ed25519PrivateKey, tree_size: int, root_hash: str, time: str | None) -> Checkpoint:
    """Sign (tree_size, root_hash) as a C2SP-style note."""
    unsigned = Checkpoint(tree_size=tree_size, root_hash=root_hash, time=time, key_id="00" * 4, signature="")
    signature = private_key.sign(unsigned.body().encode())
    return unsigned.model_copy(
        update={
            "key_id": key_id(KEY_NAME, private_key.public_key()).hex(),
            "signature": base64.b64encode(signature).decode(),
        }
    )


def parse_checkpoints(text: str, source: str = CHECKPOINTS_FILE) -> list[ParsedCheckpoint]:
    """Every note in checkpoints.log (or a witness copy named `source`), in order, with its first line."""
    notes: list[ParsedCheckpoint] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        start = i
        body: list[str] = []
        while i < len(lines) and lines[i]:
            body.append(lines[i])
            i += 1
        i += 1  # the blank line between body and signatures
        sigs: list[str] = []
        while i < len(lines) and lines[i].startswith(_SIG_PREFIX):
            sigs.append(lines[i])
            i += 1
        notes.append(_parse_note(start + 1, body, sigs, source))
    return notes


def _parse_note(line: int, body: list[str], sigs: list[str], source: str = CHECKPOINTS_FILE) -> ParsedCheckpoint:
    def bad(why: str) -> ParsedCheckpoint:
        return ParsedCheckpoint(line=line, error=f"checkpoint at {source} line {line} {why}")

    if len(body) < 3 or body[0] != ORIGIN:
        return bad(f"is malformed: expected '{ORIGIN}', a tree size and a root hash")
    if not body[1].isdigit():
        return bad(f"has a malformed tree size {body[1]!r}")
    try:
        root = base64.b64decode(body[2], validate=True)
    except binascii.Error:
        root = b""
    if len(root) != 32:
        return bad("has a malformed root hash")
    time = next((extra[5:] for extra in body[3:] if extra.startswith("time ")), None)
    for sig in sigs:
        name, _, blob = sig[len(_SIG_PREFIX) :].partition(" ")
        if name != KEY_NAME:
            continue
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            return bad("has a signature that is not base64")
        if len(raw) != 4 + 64:
            return bad("has a truncated signature")
        checkpoint = Checkpoint(
            tree_size=int(body[1]),
            root_hash=root.hex(),
            time=time,
            key_id=raw[:4].hex(),
            signature=base64.b64encode(raw[4:]).decode(),
        )
        if checkpoint.body() != "\n".join(body) + "\n":
            return bad("has extension lines this version does not sign")
        return ParsedCheckpoint(line=line, checkpoint=checkpoint)
    return bad(f"has no signature by {KEY_NAME}")


def default_signing_key_path(data_dir: Path) -> Path:
    return data_dir / "keys" / "audit-ed25519.pem"


def public_key_path_for(signing_key_path: Path) -> Path:
    """The public key sits beside the private one: audit-ed25519.pem -> audit-ed25519.pub."""
    return signing_key_path.with_suffix(".pub")


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load the signing key, creating it (mode 0600, never overwriting) on first use.

    Callers hold the audit lock, so two processes sharing a data dir do not race to create it.
    """
    try:
        return _load_private_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    _write_public_key(key, public_key_path_for(path))
    return key


def _load_private_key(path: Path) -> Ed25519PrivateKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise AuditKeyError(
            f"audit signing key {path} has mode {mode:04o}; anyone who can read it can forge checkpoints. "
            f"Run: chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(f"audit signing key {path} is not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"audit signing key {path} is not an Ed25519 key")
    pub_path = public_key_path_for(path)
    if not pub_path.exists():
        _write_public_key(key, pub_path)
    return key


def _write_public_key(key: Ed25519PrivateKey, path: Path) -> None:
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_public_key(path: Path) -> Ed25519PublicKey | None:
    """The verification key, or None when the file does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise AuditKeyError(f"audit public key {path} is not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"audit public key {path} is not an Ed25519 key")
    return key


# -- witnesses -------------------------------------------------------------------------------------


def witness_file(witness: Path, host: str | None = None) -> Path:
    """This host's copy in a witness directory, `<dir>/<host>-checkpoints.log`; a file is its own copy
    (how another host, or an auditor, names one host's copy)."""
    if witness.is_file():
        return witness
    name = re.sub(r"[^A-Za-z0-9._-]", "_", host or socket.gethostname()) or "localhost"
    return witness / f"{name}{WITNESS_SUFFIX}"


class _BestEffortSysLogHandler(logging.handlers.SysLogHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        """A syslog line that cannot be sent is lost quietly: syslog is the best-effort witness."""


class CheckpointWitness:
    """Sends each signed checkpoint where the data dir's writer cannot rewrite it.

    * `directory`: the note is appended (O_APPEND, fsync) to `<directory>/<host>-checkpoints.log`, in
      checkpoints.log's own format. Put the directory on another mount or host, with the file
      append-only (`chattr +a`) or owned by someone else; `audit verify` compares against it. A
      directory that cannot be written is an error (AuditWitnessError): the checkpoint is then only
      local, and someone must know.
    * syslog (`syslog_address`, /dev/log when present): one line per checkpoint carrying the whole
      note, base64-encoded, for a remote syslog or journald. Best effort only: no socket, a full
      buffer or a syslog daemon that drops the line all lose it silently, and nothing verifies it.
    """

    def __init__(self, directory: Path | None = None, *, syslog_address: str | None = SYSLOG_ADDRESS) -> None:
        self.directory = directory
        self.syslog_address = syslog_address

    def send(self, checkpoint: Checkpoint) -> None:
        self._to_syslog(checkpoint)
        if self.directory is not None:
            self._to_directory(checkpoint, self.directory)

    def _to_directory(self, checkpoint: Checkpoint, directory: Path) -> None:
        path = witness_file(directory)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                payload = memoryview((checkpoint.note() + "\n").encode())
                while payload:
                    payload = payload[os.write(fd, payload) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise AuditWitnessError(
                f"could not append the checkpoint for tree size {checkpoint.tree_size} to the audit witness "
                f"{path} ({exc.strerror}); it is in {CHECKPOINTS_FILE} only. Check that "
                "OPERATE_MCP_AUDIT_WITNESS_DIR is mounted and that this user may append to that file"
            ) from exc

    def _to_syslog(self, checkpoint: Checkpoint) -> None:
        if self.syslog_address is None or not os.path.exists(self.syslog_address):
            return
        try:
            handler = _BestEffortSysLogHandler(self.syslog_address, facility=logging.handlers.SysLogHandler.LOG_AUTH)
        except OSError:
            return
        try:
            handler.ident = f"{SYSLOG_IDENT}: "
            note = base64.b64encode(checkpoint.note().encode()).decode()
            message = (
                f"checkpoint tree_size={checkpoint.tree_size} root={checkpoint.root_hash} "
                f"time={checkpoint.time or '-'} key_id={checkpoint.key_id} note={note}"
            )
            handler.emit(logging.LogRecord(SYSLOG_IDENT, logging.INFO, __file__, 0, message, None, None))
        finally:
            handler.close()
