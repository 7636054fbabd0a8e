"""The proofs an approval carries, and the keys behind them (the rules they feed: governance/approval.py).

A `cli` approval is an Ed25519 signature by a key a person enrolled, not a typed digest. A typed
digest or a TTY check stops nobody who has a shell (the digest is printed above the prompt,
`script(1)` makes a TTY), and USER/LOGNAME name whoever the caller likes. A signature needs the
private key and its passphrase, which the agent does not have; the approver's name comes from who
owns the public key file, which the agent cannot change.

An `elicitation` or `auto(trivial)` approval carries an HMAC by the server's approval key, and the
ledger of sessions that started executing sits beside that key: both outside the data dir, so
whoever can write session files can neither forge an approval nor make a session run twice.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import getpass
import hashlib
import hmac
import json
import os
import secrets
import stat
import warnings
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel

from operate_mcp.config import Settings
from operate_mcp.errors import OperateError
from operate_mcp.fileio import atomic_write
from operate_mcp.identity import user_name
from operate_mcp.model.session import Approval

PURPOSE = "operate-mcp approval v1"
MIN_PASSPHRASE = 8
# What the server records unsigned, with its MAC.
MAC_METHODS = frozenset({"auto(trivial)", "auto(remediate)", "elicitation"})
_MAX_KEY_FILE = 4096


class SignatureError(OperateError):
    """An approval signature cannot be made or does not verify; the message says which and why."""


class ApprovalKeyError(OperateError):
    """The server's approval key cannot be read; the message says how to make a new one."""


class ApproverKey(BaseModel):
    """One enrolled public key and the person it names."""

    key_id: str  # first 16 hex characters of sha256(raw 32-byte public key)
    identity: str
    path: Path
    owner_uid: int
    public_key: str  # base64 of the raw 32-byte key


def approval_payload(
    session_id: str, version: int, digest: str, tier: str, *, signed_at: str | None = None
) -> bytes:
    """The exact bytes an approver signs: this session, this version, these commands, this tier, and when.

    `signed_at` (ISO 8601, UTC) is what an approval's expiry counts from: signing it means a writer of
    the data dir cannot restamp an old approval to bring it back to life.
    """
    body: dict[str, object] = {
        "purpose": PURPOSE,
        "session_id": session_id,
        "version": version,
        "digest": digest,
        "tier": tier,
    }
    if signed_at is not None:
        body["signed_at"] = signed_at
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def key_id_of(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _writable_by_others(mode: int) -> bool:
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def _read_key_file(path: Path) -> tuple[os.stat_result, str]:
    """Content and stat of the file itself (never a symlink's target), from one open descriptor."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        data = os.read(fd, _MAX_KEY_FILE + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE:
        raise ValueError(f"larger than {_MAX_KEY_FILE} bytes; it should hold one line `ed25519 <base64 key>`")
    return st, data.decode("ascii")


def _parse_public_key(text: str) -> bytes:
    lines = [line for line in text.splitlines() if line.strip()]
    parts = lines[0].split() if len(lines) == 1 else []
    if len(parts) != 2 or parts[0] != "ed25519":
        raise ValueError("expected one line `ed25519 <base64 public key>`")
    try:
        raw = base64.b64decode(parts[1], validate=True)
        Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the key is not a base64 raw 32-byte Ed25519 public key") from exc
    return raw


def load_registry(directory: Path, problems: list[str] | None = None) -> dict[str, ApproverKey]:
    """Enrolled keys by key id, from `<name>.pub` files in `directory`.

    The approver is the file's owner (their uid's user name): only they, or root, could have
    written it. A root-owned file names the approver by its file name (an administrator
    enrolled them), provided the directory is root's too, else its owner could rename it.
    Files anyone else could have written, or that sit in such a directory, are ignored and
    described in `problems`.
    """
    problems = problems if problems is not None else []
    try:
        dir_stat = os.stat(directory)
    except FileNotFoundError:
        problems.append(f"{directory} does not exist: nobody is enrolled (enrol with `operate-mcp approver init`)")
        return {}
    except OSError as exc:
        problems.append(f"{directory}: cannot read it ({exc.strerror})")
        return {}
    if not stat.S_ISDIR(dir_stat.st_mode):
        problems.append(f"{directory} is not a directory: nobody is enrolled")
        return {}
    if _writable_by_others(dir_stat.st_mode):
        problems.append(
            f"{directory} is writable by group or others (mode {stat.S_IMODE(dir_stat.st_mode):o}), so anyone "
            f"could enrol as anyone: every key in it is ignored; fix with `chmod 755 {directory}`"
        )
        return {}
    registry: dict[str, ApproverKey] = {}
    conflicting: set[str] = set()
    for path in sorted(directory.glob("*.pub")):
        try:
            st, text = _read_key_file(path)
            raw = _parse_public_key(text)
        except OSError as exc:
            reason = "a symbolic link; copy the key file instead" if path.is_symlink() else exc.strerror
            problems.append(f"{path}: ignored: {reason}")
            continue
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: ignored: {exc}")
            continue
        if _writable_by_others(st.st_mode):
            problems.append(
                f"{path}: ignored: writable by group or others (mode {stat.S_IMODE(st.st_mode):o}); "
                f"fix with `chmod 644 {path}`"
            )
            continue
        if st.st_uid == 0:
            if dir_stat.st_uid != 0:
                problems.append(
                    f"{path}: ignored: owned by root, so it is named by its file name, but the directory belongs "
                    f"to {user_name(dir_stat.st_uid)}, who could rename it; keep root's keys in a root-owned directory"
                )
                continue
            identity = path.stem
        else:
            identity = user_name(st.st_uid)
        entry = ApproverKey(
            key_id=key_id_of(raw),
            identity=identity,
            path=path,
            owner_uid=st.st_uid,
            public_key=base64.b64encode(raw).decode("ascii"),
        )
        seen = registry.get(entry.key_id)
        if entry.key_id in conflicting or (seen is not None and seen.identity != identity):
            problems.append(
                f"{path}: ignored: key {entry.key_id} is also enrolled for another person "
                f"({seen.identity if seen else 'see above'}); one key names one person"
            )
            registry.pop(entry.key_id, None)
            conflicting.add(entry.key_id)
            continue
        if seen is None:
            registry[entry.key_id] = entry
    return registry


def verify_approval(registry: dict[str, ApproverKey], key_id: str, payload: bytes, signature_b64: str) -> ApproverKey:
    """The enrolled key that signed exactly `payload`; SignatureError otherwise."""
    key = registry.get(key_id)
    if key is None:
        raise SignatureError(
            f"approver key {key_id} is not enrolled (see `operate-mcp approver list`; a person enrols "
            "with `operate-mcp approver init`); nothing was approved"
        )
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key.public_key))
    try:
        public.verify(base64.b64decode(signature_b64, validate=True), payload)
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise SignatureError(
            f"the signature by {key.identity}'s key {key_id} does not match this approval (another session, "
            "version, command digest or tier was signed); nothing was approved"
        ) from exc
    return key


def default_key_path() -> Path:
    """~/.config/operate-mcp/approver-key.pem (XDG_CONFIG_HOME respected)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "operate-mcp" / "approver-key.pem"


def check_can_init(private_path: Path, approvers_dir: Path, name: str, *, force: bool = False) -> list[Path]:
    """The files `init_key` would replace (only with `force`); asked before anyone types a passphrase."""
    if not name or "/" in name or name.startswith("."):
        raise OperateError(f"{name!r} cannot name a key file in {approvers_dir}")
    existing = [p for p in (private_path, approvers_dir / f"{name}.pub") if p.exists() or p.is_symlink()]
    if existing and not force:
        raise OperateError(
            f"{' and '.join(str(p) for p in existing)} already exist(s); refusing to replace an approver key "
            "(use --force to replace it: approvals signed with the old key stop counting)"
        )
    return existing


def init_key(
    private_path: Path, approvers_dir: Path, passphrase: str, name: str, *, force: bool = False
) -> ApproverKey:
    """Create a key pair: the private key encrypted with `passphrase` (0600), the public one enrolled.

    Returns the registry's entry for the new key, so a directory that would ignore it is said now,
    not at the first approval.
    """
    if len(passphrase) < MIN_PASSPHRASE:
        raise OperateError(f"the passphrase must be at least {MIN_PASSPHRASE} characters long")
    existing = check_can_init(private_path, approvers_dir, name, force=force)
    public_path = approvers_dir / f"{name}.pub"
    if not approvers_dir.exists():
        approvers_dir.mkdir(parents=True)
        os.chmod(approvers_dir, 0o755)  # noqa: S103 - public keys: readable by the server, writable by the owner only
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    raw = _raw_public(private.public_key())
    for path in existing:  # --force: a symlink is replaced, never written through
        path.unlink()
    atomic_write(private_path, pem)  # mode 0600
    atomic_write(public_path, f"ed25519 {base64.b64encode(raw).decode('ascii')}\n")
    os.chmod(public_path, 0o644)  # a public key: readable by the server, writable by its owner only
    problems: list[str] = []
    entry = load_registry(approvers_dir, problems).get(key_id_of(raw))
    if entry is None:
        raise OperateError(
            f"the key was written to {private_path} and {public_path}, but the approver registry ignores it: "
            + "; ".join(problems)
        )
    return entry


def sign_approval(private_path: Path, passphrase: str, payload: bytes) -> tuple[str, str]:
    """(key id, base64 signature) of `payload` with the key at `private_path`."""
    try:
        pem = private_path.read_bytes()
    except FileNotFoundError:
        raise SignatureError(
            f"there is no approver key at {private_path}; create one with `operate-mcp approver init`"
        ) from None
    except OSError as exc:
        raise SignatureError(f"cannot read the approver key {private_path} ({exc.strerror})") from exc
    try:
        private = serialization.load_pem_private_key(pem, password=passphrase.encode())
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"the passphrase does not unlock {private_path}") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise SignatureError(f"{private_path} is not an Ed25519 key; create one with `operate-mcp approver init`")
    return key_id_of(_raw_public(private.public_key())), base64.b64encode(private.sign(payload)).decode("ascii")


def read_passphrase(prompt: str) -> str:
    """A passphrase typed at the controlling terminal (/dev/tty), never read from a pipe on stdin."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError as exc:
        raise OperateError(
            "approvals need a person at a terminal: this process has no controlling terminal (/dev/tty), "
            "so nobody could have typed the passphrase; run `operate-mcp approve` yourself in a terminal"
        ) from exc
    with warnings.catch_warnings():
        # getpass falls back to reading stdin when /dev/tty fails; that fallback is exactly what must not happen.
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(prompt)
        except getpass.GetPassWarning as exc:
            raise OperateError(
                "approvals need a person at a terminal: the passphrase could not be read from /dev/tty"
            ) from exc
        except EOFError:
            with contextlib.suppress(OSError):
                os.write(2, b"\n")
            raise OperateError("no passphrase was entered; nothing was approved") from None


# ----------------------------------------------------------------------------- the server's approval key


def server_key(settings: Settings) -> bytes:
    """The server's approval key (created on first use, 0600), outside the data dir on purpose."""
    path = settings.approval_key_file
    try:
        key = bytes.fromhex(path.read_text().strip())
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise ApprovalKeyError(f"the approval key {path} is unreadable ({exc}); remove it to make a new one") from exc
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # first writer wins; a racing process reads the winner's key
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return bytes.fromhex(path.read_text().strip())


def _mac_message(session_id: str, a: Approval) -> bytes:
    fields = {
        "session_id": session_id,
        "approver": a.approver,
        "method": a.method,
        "at": a.at.isoformat(),
        "digest": a.digest,
        "version": a.version,
        "tier": a.tier,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def approval_mac(settings: Settings, session_id: str, approval: Approval) -> str:
    return hmac.new(server_key(settings), _mac_message(session_id, approval), hashlib.sha256).hexdigest()


def authentic_identity(session_id: str, approval: Approval, settings: Settings) -> str | None:
    """Who really gave this approval, proven by its signature or MAC; None when it proves nothing."""
    if approval.method == "cli":
        if not approval.key_id or not approval.signature:
            return None
        payload = approval_payload(
            session_id, approval.version, approval.digest, approval.tier, signed_at=approval.at.isoformat()
        )
        try:
            key = verify_approval(load_registry(settings.approvers_dir), approval.key_id, payload, approval.signature)
        except SignatureError:
            return None
        return key.identity
    # Only the two kinds the server records unsigned carry a MAC; any other method proves nothing by one.
    if approval.mac and approval.method in MAC_METHODS:
        expected = approval_mac(settings, session_id, approval)
        return approval.approver if hmac.compare_digest(expected, approval.mac) else None
    return None


# ----------------------------------------------------------------------------- the executed-session ledger


def _ledger(settings: Settings) -> Path:
    return settings.approval_key_file.with_name("executed-sessions.log")


def already_executed(settings: Settings, session_id: str) -> bool:
    """Whether this session ever started executing, by a ledger kept beside the approval key (outside
    the data dir): a session file set back to `approved` by hand must not run again."""
    try:
        with _ledger(settings).open() as fh:
            return any(line.split(" ", 1)[0] == session_id for line in fh)
    except FileNotFoundError:
        return False


def mark_executed(settings: Settings, session_id: str, digest: str) -> None:
    path = _ledger(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{session_id} {digest} {datetime.now(UTC).isoformat()}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
