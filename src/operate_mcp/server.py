"""MCP wiring only: tools, annotations, transports. Each handler calls one workflow function."""

import contextlib
import hashlib
import hmac
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import anyio.from_thread
from mcp.server.mcpserver import (
    AcceptedElicitation,
    CancelledElicitation,
    Context,
    DeclinedElicitation,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from operate_mcp import __version__
from operate_mcp.agent.provider import Provider
from operate_mcp.audit.redact import redact_manifest
from operate_mcp.audit.verify import VerifyReport, verify
from operate_mcp.config import Settings
from operate_mcp.errors import CommandRejected, ConfigError, OperateError
from operate_mcp.governance.approval import (
    AUTO_TRIVIAL,
    ApprovalError,
    approvers_needed,
    record_approval,
    record_rejection,
    valid_approvals,
)
from operate_mcp.identity import os_user
from operate_mcp.knowledge.capabilities import ScanReport
from operate_mcp.knowledge.manage import ManageResult
from operate_mcp.kube.manifests import describe_objects, parse_manifests
from operate_mcp.kube.runner import Kubectl
from operate_mcp.model.proposal import RiskTier
from operate_mcp.model.session import Session, SessionStatus
from operate_mcp.records.alerts import FailureAlert, FailureAlerts
from operate_mcp.records.metrics import Metrics, compute_metrics
from operate_mcp.records.models import ExecutionRecord
from operate_mcp.records.prometheus import CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from operate_mcp.records.prometheus import RunMetrics
from operate_mcp.records.store import RecordStore, SearchPage
from operate_mcp.records.summary import RunSummary
from operate_mcp.workflows.decision import write_decision_record
from operate_mcp.workflows.execute import execute
from operate_mcp.workflows.operate import OperateDeps, analyze
from operate_mcp.workflows.replay import ReplayPlan, parse_overrides, plan_replay
from operate_mcp.workflows.replay import replay as replay_session
from operate_mcp.workflows.response import OperateResponse, to_response
from operate_mcp.workflows.rollback import propose_rollback
from operate_mcp.workflows.sessions import SessionStore

if TYPE_CHECKING:
    from operate_mcp.knowledge.base import KnowledgeBase

ProviderFactory = Callable[[Settings], Provider]

INSTRUCTIONS = """operate-mcp operates Kubernetes applications safely.
Call `operate` with a natural-language intent; it returns a proposal with the exact kubectl
commands, their server-side dry-run results, a rollback plan and a risk tier, stored in a
session. Show the proposal to the person. Execution needs their approval."""


def default_provider(settings: Settings) -> Provider:
    from operate_mcp.agent.anthropic_provider import AnthropicProvider

    return AnthropicProvider(
        api_key=settings.api_key(),
        model=settings.model,
        max_tokens=settings.max_tokens,
        base_url=settings.anthropic_base_url,
    )


class Runtime:
    """What the handlers share; built once, the model provider only when first needed."""

    def __init__(self, settings: Settings, provider_factory: ProviderFactory, caller: str) -> None:
        from operate_mcp.audit.log import audit_log_for

        self.settings = settings
        self.provider_factory = provider_factory
        self.caller = caller
        # (session id, request id) -> (version, digest) the person was asked to approve
        self.shown: dict[tuple[str, Any], tuple[int, str]] = {}
        self.deps = OperateDeps(
            settings=settings,
            kubectl=Kubectl(settings),
            provider=None,
            sessions=SessionStore(settings.data_dir, settings.session_ttl_seconds),
            audit=audit_log_for(settings),
        )
        self.deps.records = RecordStore(settings.data_dir, retention_days=settings.records_retention_days)
        # Retention at start, off the request path: archives (gzip JSONL) before it deletes.
        threading.Thread(target=self._prune, name="records-retention", daemon=True).start()
        self.deps.alerts = FailureAlerts(settings.data_dir, settings.alert_webhook_url)
        self.deps.metrics = RunMetrics()
        if settings.knowledge_enabled:
            from operate_mcp.knowledge.base import KnowledgeBase

            self.deps.knowledge = KnowledgeBase(settings, kubectl=self.deps.kubectl)

    def _prune(self) -> None:
        try:
            self.deps.records.apply_retention()
        except Exception:  # a failed prune must not take the server down; the next start retries
            logging.getLogger(__name__).exception("records retention failed")

    def alert(self, step: str, intent: str, session_id: str | None, error: str) -> None:
        """Every failure leaves one line in alerts/intent-failures.log (and the webhook, if set)."""
        with contextlib.suppress(OSError):  # best effort; the caller still gets the error
            self.deps.alerts.alert(
                FailureAlert(request_id=session_id or "-", intent=intent or "-", step=step, error=error)
            )

    def knowledge(self) -> "KnowledgeBase":
        from operate_mcp.knowledge.base import KnowledgeBase

        if not isinstance(self.deps.knowledge, KnowledgeBase):
            raise OperateError("knowledge is disabled (OPERATE_MCP_KNOWLEDGE_ENABLED=false)")
        return self.deps.knowledge

    @property
    def sessions(self) -> SessionStore:
        return self.deps.sessions

    def with_provider(self, *, required: bool) -> OperateDeps:
        """Analysis needs the model; execution only uses it for validation, so it may go without."""
        if self.deps.provider is None:
            try:
                self.deps.provider = self.provider_factory(self.settings)
            except ConfigError:
                if required:
                    raise
        return self.deps


class ApprovalForm(BaseModel):
    """What the person is asked; only primitive fields, as MCP elicitation requires."""

    approve: bool = Field(description="Run exactly these commands now?")
    justification: str = Field(default="", description="Why (kept in the audit log)")


class NotAsked(BaseModel):
    """The approval resolver decided not to ask; `reason` says why.

    For `trivial`, `version` and `digest` are what was judged trivial: the body may auto-approve
    exactly that version and nothing else (a refinement in between voids the verdict).
    """

    reason: Literal[
        "not-executing", "not-proposed", "trivial", "no-elicitation", "already-approved", "blocked", "critical"
    ]
    version: int | None = None
    digest: str | None = None


MANIFEST_LINES_SHOWN = 60
AGENT_TEXT_SHOWN = 300


def as_data(text: str, limit: int | None = AGENT_TEXT_SHOWN) -> str:
    """Agent-written text on one line: control characters and newlines collapsed, length capped,
    so an intent cannot draw a fake command list or digest into the question."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    flat = " ".join(flat.split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"


def approval_question(session: Session) -> str:
    """Deterministic text (the resolver may re-run): commands, objects and digest first, agent text last."""
    p = session.proposal
    lines = [
        f"Approve {session.purpose} session {session.id} (v{p.version}), risk {p.risk.tier.value}.",
        "These commands will run exactly as shown, no shell:",
    ]
    for i, c in enumerate(p.commands, 1):
        lines.append(f"{i}. {as_data(c.display, limit=None)}")  # every argument, in full: it runs as shown
        if c.command.stdin:
            lines += [f"   object: {o}" for o in manifest_objects(c.command.stdin)]
    lines.append(f"Digest: sha256:{p.digest}")
    lines.append(f"Risk reasons: {as_data('; '.join(p.risk.reasons), 1000)}")
    lines.append(f"Intent (written by the agent, {session.caller}): {as_data(p.intent)}")
    for i, c in enumerate(p.commands, 1):
        if c.command.stdin:
            manifest = redact_manifest(c.command.stdin).splitlines()
            shown = manifest[:MANIFEST_LINES_SHOWN]
            more = len(manifest) - len(shown)
            lines.append(f"Manifest of command {i}:")
            lines += ["   | " + "".join(ch if ch.isprintable() else "?" for ch in line)[:500] for line in shown]
            stdin_sha = hashlib.sha256(c.command.stdin.encode()).hexdigest()
            prefix = f"   ({more} more line(s); " if more else "   ("
            lines.append(f"{prefix}stdin sha256:{stdin_sha[:16]}…)")
    return "\n".join(lines)


def manifest_objects(stdin: str) -> list[str]:
    """Every object a manifest holds (kind namespace/name), or why it cannot be read."""
    try:
        return describe_objects(parse_manifests(stdin))
    except CommandRejected as exc:
        return [f"UNREADABLE MANIFEST: {as_data(str(exc))}"]


def elicitation_identity(caller: str, ctx: Context[Any, Any]) -> str:
    """What an elicitation answer proves: that the MCP client program said a person agreed."""
    return f"{caller} via MCP client {as_data(_client_name(ctx), 60)}"


def _client_name(ctx: Context[Any, Any]) -> str:
    try:
        params = ctx.request_context.session.client_params
        return params.client_info.name if params is not None else "unknown"
    except AttributeError:
        return "unknown"


def _progress(ctx: Context[Any, Any]) -> Callable[[int, int, str], Awaitable[None]]:
    async def report(step: int, total: int, message: str) -> None:
        await ctx.report_progress(step, total, message)

    return report


def create_server(
    settings: Settings,
    *,
    provider_factory: ProviderFactory = default_provider,
    caller: str | None = None,
) -> MCPServer:
    runtime = Runtime(settings, provider_factory, caller or os_user())
    mcp = MCPServer(name="operate-mcp", version=__version__, instructions=INSTRUCTIONS)

    def ask_approval(
        ctx: Context[Any, Any], sessionId: str | None, executeChoice: int | None
    ) -> Elicit[ApprovalForm] | NotAsked:
        if executeChoice != 1 or not sessionId:
            return NotAsked(reason="not-executing")
        try:
            session = runtime.sessions.load(sessionId)
        except OperateError:
            return NotAsked(reason="not-proposed")  # the body reports the real error
        p = session.proposal
        if session.status is not SessionStatus.PROPOSED:
            return NotAsked(reason="not-proposed")
        if p.blocked:
            return NotAsked(reason="blocked")
        if p.risk.tier is RiskTier.TRIVIAL and settings.trivial_auto_approve:
            return NotAsked(reason="trivial", version=p.version, digest=p.digest)
        if p.risk.tier is RiskTier.CRITICAL:
            return NotAsked(reason="critical")
        who = elicitation_identity(runtime.caller, ctx)
        if any(a.approver == who for a in valid_approvals(session, settings)):
            return NotAsked(reason="already-approved")
        caps = ctx.request_context.session.client_capabilities if ctx.request_context.session else None
        if caps is None or caps.elicitation is None or "elicitation" not in settings.approval_channels:
            return NotAsked(reason="no-elicitation")
        # The body approves exactly this version and digest, or nothing.
        runtime.shown[(sessionId, ctx.request_id)] = (p.version, p.digest)
        return Elicit(approval_question(session), ApprovalForm)

    async def approve_then_execute(ctx: Context[Any, Any], session_id: str, outcome: ElicitationResult[Any]) -> Session:
        shown = runtime.shown.pop((session_id, ctx.request_id), None)
        session = runtime.sessions.reap_if_interrupted(session_id)
        audit = runtime.deps.audit
        if session.status is SessionStatus.PROPOSED:
            data = outcome.data if isinstance(outcome, AcceptedElicitation) else None
            if isinstance(outcome, DeclinedElicitation) or (isinstance(data, ApprovalForm) and not data.approve):
                session = record_rejection(
                    runtime.sessions,
                    session_id,
                    actor=runtime.caller,
                    method="elicitation",
                    justification=data.justification if isinstance(data, ApprovalForm) else "",
                )
                audit.append(
                    "rejection",
                    actor=runtime.caller,
                    session_id=session_id,
                    data={"method": "elicitation", "digest": session.proposal.digest},
                )
                write_decision_record(settings.data_dir, session)
                return session
            if isinstance(outcome, CancelledElicitation):
                raise ApprovalError(
                    f"approval of {session_id} was cancelled; nothing ran and the session stays proposed"
                )
            if isinstance(data, ApprovalForm) or (isinstance(data, NotAsked) and data.reason == "trivial"):
                if isinstance(data, ApprovalForm):
                    if shown is None:
                        raise ApprovalError(
                            f"the approval of {session_id} cannot be matched to what was shown; ask again"
                        )
                    method, who = "elicitation", elicitation_identity(runtime.caller, ctx)
                    version: int | None
                    digest: str | None
                    version, digest, judged = shown[0], shown[1], None
                else:
                    # Bound to the version and digest the resolver judged trivial, re-checked under the lock.
                    method, who = AUTO_TRIVIAL, AUTO_TRIVIAL
                    version, digest, judged = data.version, data.digest, RiskTier.TRIVIAL
                session = record_approval(
                    runtime.sessions,
                    session_id,
                    approver=who,
                    method=method,
                    settings=settings,
                    justification=data.justification if isinstance(data, ApprovalForm) else "",
                    expected_digest=digest,
                    expected_version=version,
                    judged_tier=judged,
                )
                audit.append(
                    "approval",
                    actor=who,
                    session_id=session_id,
                    data={
                        "method": method,
                        "version": session.proposal.version,
                        "digest": session.proposal.digest,
                        "tier": session.proposal.risk.tier.value,
                    },
                )
            elif isinstance(data, NotAsked) and data.reason == "critical":
                raise ApprovalError(
                    f"session {session_id} is critical risk: two enrolled people other than the server's own user "
                    f"must each approve it in their own terminal with: operate-mcp approve {session_id} "
                    "(see docs/security.md); then call operate(sessionId, executeChoice=1) again"
                )
            elif isinstance(data, NotAsked) and data.reason == "no-elicitation":
                raise ApprovalError(
                    f"session {session_id} ({session.proposal.risk.tier.value} risk) needs a person's approval, and "
                    "this MCP client cannot ask them directly. Show the proposal to the person and ask THEM to run, "
                    f"in their own terminal: operate-mcp approve {session_id} (it asks them to confirm the digest); "
                    "then call operate(sessionId, executeChoice=1) again"
                )
            if session.proposal.blocked:
                raise ApprovalError(f"session {session_id} cannot run: {session.proposal.block_reason()}")
            if session.status is SessionStatus.PROPOSED:
                have = len(valid_approvals(session, settings))
                raise ApprovalError(
                    f"session {session_id} has {have} of {approvers_needed(session.proposal.risk.tier)} approvals; "
                    f"a second, different person approves with: operate-mcp approve {session_id}"
                )
        deps = runtime.with_provider(required=False)
        return await execute(deps, session_id, actor=runtime.caller, on_progress=_progress(ctx))

    @mcp.tool(
        title="Operate a Kubernetes application",
        description=(
            "Turn an intent (update, scale, autoscale, make HA, roll back, delete) into a validated proposal: "
            "analysis, current state, changes, exact kubectl commands with server-side dry-run results, rollback "
            "commands, risk tier, session id. Refine with sessionId+refinedIntent. Execute with "
            "sessionId+executeChoice=1: the person approves (asked directly where the client supports it), then "
            "exactly the proposed commands run and are validated. Undo an execution with sessionId+rollback=1."
        ),
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=True),
    )
    async def operate(
        ctx: Context[Any, Any],
        approval: Annotated[ElicitationResult[Any], Resolve(ask_approval)],
        intent: str | None = None,
        sessionId: str | None = None,
        refinedIntent: str | None = None,
        executeChoice: int | None = None,
        rollback: int | None = None,
    ) -> OperateResponse:
        trigger = f"mcp:{_client_name(ctx)}"
        try:
            if executeChoice is not None or rollback is not None:
                if not sessionId:
                    raise OperateError("executeChoice and rollback need the sessionId of a proposal")
                if executeChoice is not None and executeChoice != 1:
                    raise OperateError("executeChoice=1 is the only choice: run the proposal's commands")
                if rollback is not None:
                    if rollback != 1:
                        raise OperateError("rollback=1 proposes undoing an executed session")
                    session = await propose_rollback(
                        runtime.deps, sessionId, caller=runtime.caller, triggered_by=trigger
                    )
                else:
                    session = await approve_then_execute(ctx, sessionId, approval)
            elif sessionId and refinedIntent:
                session = await analyze(
                    runtime.with_provider(required=True),
                    "",
                    caller=runtime.caller,
                    triggered_by=trigger,
                    refine_session=sessionId,
                    refined_intent=refinedIntent,
                    on_progress=_progress(ctx),
                )
            elif intent:
                session = await analyze(
                    runtime.with_provider(required=True),
                    intent,
                    caller=runtime.caller,
                    triggered_by=trigger,
                    on_progress=_progress(ctx),
                )
            else:
                raise OperateError(
                    "give an intent (operate(intent='scale api in shop to 5')), or a sessionId with "
                    "refinedIntent, executeChoice=1 or rollback=1"
                )
        except OperateError as exc:
            step = "rollback" if rollback else "execute" if executeChoice is not None else "analyse"
            runtime.alert(step, intent or refinedIntent or "", sessionId, str(exc))
            raise ToolError(str(exc)) from exc
        return to_response(session)

    @mcp.tool(
        title="Replay a past operation",
        description=(
            "Rebuild a past operation (record id run-... or session id opr-...) from the verified audit log as a NEW "
            "session that needs "
            "approval again: the same commands dry-run against the cluster as it is now, or with freshContext=true "
            "a new analysis of the same intent. dryRun=true only shows what would be replayed. Overrides: "
            "intent=..., namespace=.... Warns when the prompt changed since."
        ),
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True
        ),
    )
    async def replay(
        ctx: Context[Any, Any],
        id: str,
        dryRun: bool = False,
        freshContext: bool = False,
        overrides: list[str] | None = None,
    ) -> ReplayResult:
        try:
            deps = runtime.with_provider(required=freshContext)
            plan = plan_replay(deps, id, parse_overrides(overrides or []))
            if dryRun:
                return ReplayResult(plan=plan, session=None)
            session = await replay_session(
                deps, plan, caller=runtime.caller, triggered_by=f"mcp:{_client_name(ctx)}", fresh_context=freshContext
            )
        except OperateError as exc:
            raise ToolError(str(exc)) from exc
        return ReplayResult(plan=plan, session=to_response(session))

    @mcp.tool(
        title="Manage patterns and policies",
        description=(
            "Patterns (how this organisation does things) and policies (CEL rules enforced in code on every "
            "proposal): action list|get|search|create|delete|import, kind pattern|policy|capability. create and "
            "import take the item as YAML text (yamlText) or a JSON object (item)."
        ),
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=False
        ),
    )
    async def manage_knowledge(
        action: Literal["list", "get", "create", "delete", "search", "import"],
        kind: Literal["pattern", "policy", "capability"] = "pattern",
        id: str | None = None,
        query: str | None = None,
        yamlText: str | None = None,
        item: dict[str, Any] | None = None,
        k: int = 5,
    ) -> ManageResult:
        from operate_mcp.knowledge.manage import manage_knowledge as manage

        try:
            kb = runtime.knowledge()
            # The knowledge layer refuses policy changes over MCP (after parsing the items) and audits
            # every change it makes, whichever channel asked.
            return await anyio.to_thread.run_sync(
                lambda: manage(
                    kb,
                    action,
                    kind,
                    item_id=id,
                    item=item,
                    yaml_text=yamlText,
                    query=query,
                    k=k,
                    channel="mcp",
                    audit=runtime.deps.audit,
                    actor=runtime.caller,
                )
            )
        except OperateError as exc:
            raise ToolError(str(exc)) from exc

    @mcp.tool(
        title="Scan cluster capabilities",
        description=(
            "Discover what this cluster has (API resources, CRDs, add-ons such as KEDA, VPA, metrics-server, "
            "Prometheus Operator, cert-manager, Velero, CloudNativePG, Kyverno, Gatekeeper, Argo CD, Flux, Istio, "
            "Gateway API) and store it as capabilities the analysis uses. Re-scan updates only what changed."
        ),
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=True),
    )
    async def scan(ctx: Context[Any, Any]) -> ScanResult:
        try:
            kb = runtime.knowledge()

            def progress(step: int, total: int, message: str) -> None:
                anyio.from_thread.run(lambda: ctx.report_progress(step, total, message))

            report = await anyio.to_thread.run_sync(lambda: kb.scan(runtime.deps.kubectl, progress))
        except OperateError as exc:
            raise ToolError(str(exc)) from exc
        return ScanResult(report=report)

    read_only = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)

    @mcp.tool(
        title="Search execution records",
        description=(
            "Search past executions. Qualifiers status:, intent: (glob), tag:, namespace:, resource:, triggered_by:, "
            "caller:, session:, duration:>60, after:2026-01-01, before:; free text; AND / OR / NOT / -x; parentheses. "
            "Returns a page of runs and facets (counts by status, intent, namespace)."
        ),
        annotations=read_only,
    )
    async def runs_search(query: str = "", page: int = 1, perPage: int = 20) -> SearchPage:
        try:
            return await anyio.to_thread.run_sync(
                lambda: runtime.deps.records.search(query, page=page, per_page=min(max(perPage, 1), 200))
            )
        except OperateError as exc:
            raise ToolError(str(exc)) from exc

    @mcp.tool(
        title="Show one execution record", description="The full record of a run (run-...).", annotations=read_only
    )
    async def runs_show(id: str) -> ExecutionRecord:
        try:
            return await anyio.to_thread.run_sync(lambda: runtime.deps.records.get(id))
        except OperateError as exc:
            raise ToolError(str(exc)) from exc

    @mcp.tool(
        title="Summarise one execution",
        description="One line, key events, errors and suggestions for a run (run-...).",
        annotations=read_only,
    )
    async def runs_summary(id: str) -> RunSummary:
        try:
            return await anyio.to_thread.run_sync(lambda: runtime.deps.records.summary(id))
        except OperateError as exc:
            raise ToolError(str(exc)) from exc

    @mcp.tool(
        title="Execution metrics",
        description=(
            "Totals, success / failure / rollback counts, success rate, average and p95 duration, optionally per "
            "intent, and the steps that fail most. Dates are ISO (2026-11-01)."
        ),
        annotations=read_only,
    )
    async def metrics(start: str | None = None, end: str | None = None, byIntent: bool = False) -> Metrics:
        try:
            lo, hi = _date(start, "start"), _date(end, "end")
            return await anyio.to_thread.run_sync(
                lambda: compute_metrics(runtime.deps.records, start=lo, end=hi, by_intent=byIntent)
            )
        except OperateError as exc:
            raise ToolError(str(exc)) from exc

    @mcp.tool(
        title="Verify the audit log",
        description=(
            "Check the hash chain and signed checkpoints of the audit log (all of it, or the last N days): detects "
            "edited, reordered, deleted and truncated entries and a rewritten tail, and says where."
        ),
        annotations=read_only,
    )
    async def audit_verify(days: int | None = None) -> VerifyReport:
        if days is not None and days < 1:
            raise ToolError("days must be 1 or more")
        return await anyio.to_thread.run_sync(
            lambda: verify(settings.data_dir, days=days, witness=settings.audit_witness_dir)
        )

    async def prometheus_metrics(request: Request) -> Response:
        return Response(runtime.deps.metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)

    mcp.custom_route("/metrics", methods=["GET"])(prometheus_metrics)

    return mcp


def _date(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise OperateError(f"{what}={text!r} is not an ISO date such as 2026-11-01") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ScanResult(BaseModel):
    report: ScanReport


class ReplayResult(BaseModel):
    plan: ReplayPlan
    session: OperateResponse | None


class BearerAuth:
    """Refuses HTTP requests without the configured bearer token (constant-time comparison)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": b'{"error":"missing or wrong bearer token"}'})
                return
        await self.app(scope, receive, send)


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def http_app(mcp: MCPServer, settings: Settings, host: str) -> ASGIApp:
    """The streamable HTTP app; anything but loopback requires a bearer token."""
    token = settings.http_token.get_secret_value() if settings.http_token else None
    if host not in LOOPBACK and not token:
        raise OperateError(
            f"refusing to serve HTTP on {host} without a bearer token: set OPERATE_MCP_HTTP_TOKEN, or bind to 127.0.0.1"
        )
    app: ASGIApp = mcp.streamable_http_app(host=host)
    if host in LOOPBACK:
        app = HostCheck(app, LOOPBACK_SECURITY)
    return BearerAuth(app, token) if token else app


# What the SDK applies to /mcp on loopback; /metrics and any other route get the same (DNS rebinding).
LOOPBACK_SECURITY = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"],
    allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
)


class HostCheck:
    """Host/Origin validation for every HTTP route, not only the MCP endpoint."""

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        self.app = app
        self.guard = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = await self.guard.validate_request(Request(scope), is_post=False)
            if refused is not None:
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)
