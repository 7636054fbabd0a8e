"""Approvals: a human decision, proportionate to risk, bound to the exact commands, and expiring.

The agent cannot approve its own proposal. Nothing in a session file is believed at execution:
an approval counts only if it proves itself —

* `cli`: an Ed25519 signature over (session, version, digest, tier) by an enrolled approver key
  (`operate-mcp approver init`); the approver's identity is the key's, never a name in the file;
* `elicitation` / `auto(trivial)`: an HMAC by the server's key, which lives outside the data dir,
  so a hand-written approval in `sessions/<id>.json` counts for nothing.

Trivial operations run on `executeChoice=1` (configurable), bound to the version and digest that
were judged trivial; low and medium need a person (elicitation, where enabled, or a signature);
critical needs two signatures by two different enrolled people, neither of them the server's own user.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from operate_mcp.approvers import SignatureError, approval_payload, load_registry, verify_approval
from operate_mcp.config import Settings
from operate_mcp.errors import SessionError
from operate_mcp.identity import os_user
from operate_mcp.model.command import command_digest
from operate_mcp.model.proposal import RiskTier
from operate_mcp.model.session import Approval, Session, SessionStatus
from operate_mcp.workflows.sessions import SessionStore

AUTO_TRIVIAL = "auto(trivial)"
SIGNATURE_MAX_AGE = timedelta(minutes=10)  # a signature is recorded right after it is made
CLOCK_SKEW = timedelta(minutes=1)
METHODS = (AUTO_TRIVIAL, "elicitation", "cli")
ORDER = [RiskTier.TRIVIAL, RiskTier.LOW, RiskTier.MEDIUM, RiskTier.CRITICAL]


class ApprovalError(SessionError):
    """The approval is refused; the message says why and what to do instead."""


def approvers_needed(tier: RiskTier) -> int:
    return 2 if tier is RiskTier.CRITICAL else 1


def approval_expiry(approval: Approval, settings: Settings) -> datetime:
    return approval.at + timedelta(seconds=settings.approval_sla_seconds.get(approval.tier, 900))


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
        raise ApprovalError(f"the approval key {path} is unreadable ({exc}); remove it to make a new one") from exc
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
    if approval.method in (AUTO_TRIVIAL, "elicitation") and approval.mac:
        expected = approval_mac(settings, session_id, approval)
        return approval.approver if hmac.compare_digest(expected, approval.mac) else None
    return None


def _channel_counts(approval: Approval, identity: str, tier: RiskTier, settings: Settings) -> bool:
    """Whether this kind of approval is enough for this tier under the configured channels."""
    if approval.method == AUTO_TRIVIAL:
        return tier is RiskTier.TRIVIAL and settings.trivial_auto_approve
    if approval.method == "elicitation":
        return "elicitation" in settings.approval_channels and tier is not RiskTier.CRITICAL
    if approval.method == "cli":
        if "cli" not in settings.approval_channels:
            return False
        # Two people for critical: two enrolled keys, neither the server's own user (whom the agent may share).
        return tier is not RiskTier.CRITICAL or identity != os_user()
    return False


def valid_approvals(
    session: Session, settings: Settings, now: datetime | None = None, tier: RiskTier | None = None
) -> list[Approval]:
    """Approvals that count: same version and digest, inside their SLA window, proven by signature or MAC,
    given for a tier at least as high as `tier` (default: the stored one), one per identity.

    The returned approvals carry the proven identity as `approver`.
    """
    now = now or datetime.now(UTC)
    p = session.proposal
    tier = tier or p.risk.tier
    counted: dict[str, Approval] = {}
    for a in session.approvals:
        if a.version != p.version or a.digest != p.digest or approval_expiry(a, settings) <= now:
            continue
        try:
            approved_for = RiskTier(a.tier)
        except ValueError:
            continue
        if ORDER.index(approved_for) < ORDER.index(tier):
            continue  # the person approved a lower-risk assessment than the one that holds now
        identity = authentic_identity(session.id, a, settings)
        if identity is None or not _channel_counts(a, identity, tier, settings):
            continue
        counted.setdefault(identity, a.model_copy(update={"approver": identity}))
    return list(counted.values())


def enough_approvals(session: Session, settings: Settings, tier: RiskTier | None = None) -> bool:
    tier = tier or session.proposal.risk.tier
    return len(valid_approvals(session, settings, tier=tier)) >= approvers_needed(tier)


def check_digest(session: Session) -> None:
    """The stored commands must still hash to what was proposed and approved."""
    actual = command_digest(session.proposal.command_list())
    if actual != session.proposal.digest:
        raise ApprovalError(
            f"session {session.id}: the stored commands no longer match their digest "
            f"({actual[:12]}… ≠ {session.proposal.digest[:12]}…); the file was edited after analysis. "
            "Nothing was run. Analyse again with operate(intent=...)"
        )
    for a in session.approvals:
        if a.version == session.proposal.version and a.digest != actual:
            raise ApprovalError(
                f"session {session.id}: {a.approver} approved digest {a.digest[:12]}…, the commands now hash to "
                f"{actual[:12]}…; nothing was run"
            )


def record_approval(
    store: SessionStore,
    session_id: str,
    *,
    approver: str,
    method: str,
    settings: Settings,
    justification: str = "",
    expected_digest: str | None = None,
    expected_version: int | None = None,
    key_id: str | None = None,
    signature: str | None = None,
    signed_at: datetime | None = None,
    judged_tier: RiskTier | None = None,
) -> Session:
    """Add one approval; the session becomes `approved` once enough proven approvals exist.

    `expected_digest` / `expected_version` are what the person (or the trivial check) was shown:
    if the proposal was refined meanwhile, the approval is refused rather than landing on a
    version nobody saw. The check is repeated under the session lock.
    """
    if method not in METHODS:
        raise ApprovalError(f"unknown approval method {method!r}; one of {', '.join(METHODS)}")
    session = store.load(session_id)
    check_digest(session)
    p = session.proposal
    shown_digest = expected_digest or p.digest
    shown_version = expected_version if expected_version is not None else p.version
    if shown_digest != p.digest or shown_version != p.version:
        raise ApprovalError(
            f"session {session_id} was refined after you were shown it (v{shown_version}, digest "
            f"{shown_digest[:12]}… is now v{p.version}, {p.digest[:12]}…); nothing was approved: "
            "review the new proposal"
        )
    if p.blocked:
        raise ApprovalError(f"session {session_id} cannot be approved: {p.block_reason()}")
    if not p.commands:
        raise ApprovalError(f"session {session_id} proposes no commands; there is nothing to approve")
    tier = p.risk.tier
    if method == AUTO_TRIVIAL:
        if judged_tier is not RiskTier.TRIVIAL or tier is not RiskTier.TRIVIAL or not settings.trivial_auto_approve:
            raise ApprovalError(
                f"session {session_id} is {tier.value} risk: executeChoice=1 alone runs only trivial operations; "
                f"a person approves this one (operate-mcp approve {session_id})"
            )
        approver = AUTO_TRIVIAL
    elif method == "elicitation":
        if "elicitation" not in settings.approval_channels:
            raise ApprovalError(
                "approval through the MCP client is turned off (OPERATE_MCP_APPROVAL_CHANNELS); "
                f"the person approves with: operate-mcp approve {session_id}"
            )
        if tier is RiskTier.CRITICAL:
            raise ApprovalError(
                "critical operations need two enrolled approvers' signatures: each runs "
                f"operate-mcp approve {session_id}"
            )
    else:
        if not key_id or not signature or signed_at is None:
            raise ApprovalError("a CLI approval must be signed with an enrolled approver key (operate-mcp approve)")
        now = datetime.now(UTC)
        if not now - SIGNATURE_MAX_AGE <= signed_at <= now + CLOCK_SKEW:
            raise ApprovalError(
                f"the approval was signed at {signed_at.isoformat()}, not just now; sign again with "
                f"operate-mcp approve {session_id}"
            )
        payload = approval_payload(session_id, p.version, p.digest, tier.value, signed_at=signed_at.isoformat())
        try:
            key = verify_approval(load_registry(settings.approvers_dir), key_id, payload, signature)
        except SignatureError as exc:
            raise ApprovalError(f"the approval signature is not accepted: {exc}") from exc
        approver = key.identity
        if tier is RiskTier.CRITICAL and approver == os_user():
            raise ApprovalError(
                f"{approver} is the user the server runs as; a critical operation needs two enrolled people other "
                "than the server's own user (see docs/security.md)"
            )
    approval = Approval(
        approver=approver,
        at=signed_at if method == "cli" and signed_at is not None else datetime.now(UTC),
        method=method,
        justification=justification,
        digest=p.digest,
        version=p.version,
        tier=tier.value,
        key_id=key_id if method == "cli" else None,
        signature=signature if method == "cli" else None,
    )
    if method != "cli":
        approval.mac = approval_mac(settings, session_id, approval)
    current = valid_approvals(session, settings)
    if any(a.approver == approver for a in current):
        raise ApprovalError(
            f"{approver} has already approved session {session_id}; a critical operation needs a second, "
            "different approver (two-person rule)"
        )
    enough = len(current) + 1 >= approvers_needed(tier)

    def add(s: Session) -> None:
        if s.proposal.digest != shown_digest or s.proposal.version != shown_version:
            raise ApprovalError(
                f"session {session_id} changed while it was being approved (now version {s.proposal.version}, "
                f"digest {s.proposal.digest[:12]}…); nothing was approved: review the new proposal"
            )
        if s.proposal.risk.tier is not tier:
            raise ApprovalError(
                f"session {session_id} changed risk tier while it was being approved; nothing was approved"
            )
        s.approvals = [*valid_approvals(s, settings), approval]

    return store.transition(
        session_id,
        SessionStatus.APPROVED if enough else SessionStatus.PROPOSED,
        actor=approver,
        expected={SessionStatus.PROPOSED},
        note=f"approved via {method}"
        + ("" if enough else f"; {approvers_needed(tier) - 1 - len(current)} more approver(s) needed"),
        mutate=add,
    )


def record_rejection(
    store: SessionStore, session_id: str, *, actor: str, method: str, justification: str = ""
) -> Session:
    session = store.load(session_id)
    rejection = Approval(
        approver=actor,
        at=datetime.now(UTC),
        method=method,
        justification=justification,
        digest=session.proposal.digest,
        version=session.proposal.version,
        tier=session.proposal.risk.tier.value,
    )

    def set_rejection(s: Session) -> None:
        s.rejection = rejection

    return store.transition(
        session_id,
        SessionStatus.REJECTED,
        actor=actor,
        expected={SessionStatus.PROPOSED, SessionStatus.APPROVED},
        note=f"rejected via {method}: {justification}".rstrip(": "),
        mutate=set_rejection,
    )
