"""Approval rules: a human decision, proportionate to risk, bound to the exact commands, and expiring.

Pure rules only; the proofs (signatures, the server's MAC, the executed-session ledger) live in
`operate_mcp.approvers`, and recording a decision in `workflows/decide.py`.

The agent cannot approve its own proposal. Nothing in a session file is believed at execution:
an approval counts only if it proves itself (`identity_of` returns who proved it) —

* `cli`: an Ed25519 signature over (session, version, digest, tier) by an enrolled approver key
  (`operate-mcp approver init`); the approver's identity is the key's, never a name in the file;
* `elicitation` / `auto(trivial)` / `auto(remediate)`: an HMAC by the server's key, which lives outside the data dir,
  so a hand-written approval in `sessions/<id>.json` counts for nothing.

Trivial operations run on `executeChoice=1` (configurable), bound to the version and digest that
were judged trivial; low and medium need a person (elicitation, where enabled, or a signature);
critical needs two signatures by two different enrolled people, neither of them the server's own user.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from operate_mcp.config import Settings
from operate_mcp.errors import CommandRejected, SessionError
from operate_mcp.kube.classifier import parse_kubectl
from operate_mcp.model.command import command_digest, shell_quote
from operate_mcp.model.proposal import RiskTier
from operate_mcp.model.session import Approval, Session

AUTO_TRIVIAL = "auto(trivial)"
AUTO_REMEDIATE = "auto(remediate)"  # a remediate fix within the server's configured limits (off by default)
SIGNATURE_MAX_AGE = timedelta(minutes=10)  # a signature is recorded right after it is made
CLOCK_SKEW = timedelta(minutes=1)
METHODS = (AUTO_TRIVIAL, AUTO_REMEDIATE, "elicitation", "cli")
ORDER = [RiskTier.TRIVIAL, RiskTier.LOW, RiskTier.MEDIUM, RiskTier.CRITICAL]

IdentityOf = Callable[[Approval], str | None]
"""Who really gave an approval, proven by its signature or MAC; None when it proves nothing."""


class ApprovalError(SessionError):
    """The approval is refused; the message says why and what to do instead."""


class ApprovalPending(ApprovalError):
    """Nothing is wrong: the session waits for a person's approval. The normal path, never alerted on."""


def approvers_needed(tier: RiskTier) -> int:
    return 2 if tier is RiskTier.CRITICAL else 1


def approval_expiry(approval: Approval, settings: Settings) -> datetime:
    return approval.at + timedelta(seconds=settings.approval_sla_seconds.get(approval.tier, 900))


def auto_remediation_refused(session: Session, tier: RiskTier, settings: Settings) -> str | None:
    """Why this session's fix may not run without a person, or None when the server's limits allow it:
    a remediate session, at most the configured tier (never critical), every command naming with -n one
    of the configured namespaces (never a production one). Judged on the commands, not on what they say."""
    limit = settings.remediate_auto_max_tier
    if limit is None or not settings.remediate_auto_namespaces:
        return "automatic remediation is off (OPERATE_MCP_REMEDIATE_AUTO_MAX_TIER / _NAMESPACES)"
    if session.purpose != "remediate":
        return "only a remediate fix runs automatically"
    if tier is RiskTier.CRITICAL or ORDER.index(tier) > ORDER.index(RiskTier(limit)):
        return f"the fix is {tier.value} risk, above the automatic limit ({limit})"
    allowed = set(settings.remediate_auto_namespaces) - set(settings.production_namespaces)
    for cmd in session.proposal.command_list():
        try:
            parsed = parse_kubectl(cmd.argv)
        except CommandRejected as exc:
            return f"a command cannot be read: {exc}"
        if parsed.all_namespaces or parsed.namespace is None:
            return f"`{shell_quote(cmd.argv)}` names no single namespace with -n"
        if parsed.namespace not in allowed:
            return f"namespace {parsed.namespace} is not one where fixes run automatically"
    return None


def channel_counts(
    method: str, identity: str, tier: RiskTier, settings: Settings, *, server_user: str, session: Session | None = None
) -> bool:
    """Whether an approval given through `method` is enough for `tier` under the configured channels."""
    if method == AUTO_TRIVIAL:
        return tier is RiskTier.TRIVIAL and settings.trivial_auto_approve
    if method == AUTO_REMEDIATE:
        return session is not None and auto_remediation_refused(session, tier, settings) is None
    if method == "elicitation":
        return "elicitation" in settings.approval_channels and tier is not RiskTier.CRITICAL
    if method == "cli":
        if "cli" not in settings.approval_channels:
            return False
        # Two people for critical: two enrolled keys, neither the server's own user (whom the agent may share).
        return tier is not RiskTier.CRITICAL or identity != server_user
    return False


def counted_approvals(
    session: Session,
    settings: Settings,
    identity_of: IdentityOf,
    *,
    server_user: str,
    now: datetime,
    tier: RiskTier | None = None,
) -> list[Approval]:
    """Approvals that count: same version and digest, inside their SLA window, proven (`identity_of`),
    given for a tier at least as high as `tier` (default: the stored one), one per identity.

    The returned approvals carry the proven identity as `approver`.
    """
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
        identity = identity_of(a)
        if identity is None or not channel_counts(
            a.method, identity, tier, settings, server_user=server_user, session=session
        ):
            continue
        counted.setdefault(identity, a.model_copy(update={"approver": identity}))
    return list(counted.values())


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


def check_approvable(
    session: Session,
    *,
    method: str,
    settings: Settings,
    shown_version: int,
    shown_digest: str,
    judged_tier: RiskTier | None,
    signed: bool,
    signed_at: datetime | None,
    now: datetime,
) -> None:
    """Every refusal that needs no proof yet: the method, the commands, what the person was shown, and
    whether this channel may approve this tier at all. ApprovalError says which and what to do."""
    session_id, p = session.id, session.proposal
    if method not in METHODS:
        raise ApprovalError(f"unknown approval method {method!r}; one of {', '.join(METHODS)}")
    check_digest(session)
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
    elif method == AUTO_REMEDIATE:
        refused = auto_remediation_refused(session, tier, settings)
        if refused is not None or judged_tier is not tier:
            raise ApprovalError(f"session {session_id} needs a person's approval: {refused or 'its tier changed'}")
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
        if not signed or signed_at is None:
            raise ApprovalError("a CLI approval must be signed with an enrolled approver key (operate-mcp approve)")
        if not now - SIGNATURE_MAX_AGE <= signed_at <= now + CLOCK_SKEW:
            raise ApprovalError(
                f"the approval was signed at {signed_at.isoformat()}, not just now; sign again with "
                f"operate-mcp approve {session_id}"
            )


def check_approver(session: Session, *, method: str, approver: str, counted: list[Approval], server_user: str) -> None:
    """Refusals that depend on who proved the approval: the server's own user on a critical operation,
    and anyone approving twice (the two-person rule)."""
    if method == "cli" and session.proposal.risk.tier is RiskTier.CRITICAL and approver == server_user:
        raise ApprovalError(
            f"{approver} is the user the server runs as; a critical operation needs two enrolled people other "
            "than the server's own user (see docs/security.md)"
        )
    if any(a.approver == approver for a in counted):
        raise ApprovalError(
            f"{approver} has already approved session {session.id}; a critical operation needs a second, "
            "different approver (two-person rule)"
        )
