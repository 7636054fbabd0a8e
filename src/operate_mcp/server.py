"""MCP wiring only: tools, annotations, transports. Each handler calls one workflow function."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from operate_mcp import __version__
from operate_mcp.agent.provider import Provider
from operate_mcp.config import Settings
from operate_mcp.errors import OperateError
from operate_mcp.identity import os_user
from operate_mcp.kube.runner import Kubectl
from operate_mcp.workflows.operate import OperateDeps, analyze
from operate_mcp.workflows.response import OperateResponse, to_response
from operate_mcp.workflows.sessions import SessionStore

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
    """What the handlers share; built once, the provider only when first needed."""

    def __init__(self, settings: Settings, provider_factory: ProviderFactory, caller: str) -> None:
        self.settings = settings
        self.provider_factory = provider_factory
        self.caller = caller
        self.kubectl = Kubectl(settings)
        self.sessions = SessionStore(settings.data_dir, settings.session_ttl_seconds)
        self._deps: OperateDeps | None = None

    def deps(self) -> OperateDeps:
        if self._deps is None:
            self._deps = OperateDeps(
                settings=self.settings,
                kubectl=self.kubectl,
                provider=self.provider_factory(self.settings),
                sessions=self.sessions,
            )
        return self._deps


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


class OperateInput(BaseModel):
    intent: str | None = Field(default=None, description="What you want done, in plain words")


def create_server(
    settings: Settings,
    *,
    provider_factory: ProviderFactory = default_provider,
    caller: str | None = None,
) -> MCPServer:
    runtime = Runtime(settings, provider_factory, caller or os_user())
    mcp = MCPServer(name="operate-mcp", version=__version__, instructions=INSTRUCTIONS)

    @mcp.tool(
        title="Operate a Kubernetes application",
        description=(
            "Turn an intent (update, scale, autoscale, make HA, roll back, delete) into a validated proposal: "
            "analysis, current state, changes, exact kubectl commands with server-side dry-run results, rollback "
            "commands, risk tier, session id. Refine with sessionId+refinedIntent. Execute an approved proposal "
            "with sessionId+executeChoice=1."
        ),
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=True
        ),
    )
    async def operate(
        ctx: Context[Any, Any],
        intent: str | None = None,
        sessionId: str | None = None,
        refinedIntent: str | None = None,
        executeChoice: int | None = None,
    ) -> OperateResponse:
        try:
            if executeChoice is not None:
                raise OperateError(
                    "execution is not available in this build yet: approve and run the commands from the "
                    "proposal yourself, or wait for the approve/execute release"
                )
            if sessionId and refinedIntent:
                session = await analyze(
                    runtime.deps(),
                    "",
                    caller=runtime.caller,
                    triggered_by=f"mcp:{_client_name(ctx)}",
                    refine_session=sessionId,
                    refined_intent=refinedIntent,
                    on_progress=_progress(ctx),
                )
            elif intent:
                session = await analyze(
                    runtime.deps(),
                    intent,
                    caller=runtime.caller,
                    triggered_by=f"mcp:{_client_name(ctx)}",
                    on_progress=_progress(ctx),
                )
            else:
                raise OperateError(
                    "give an intent (operate(intent='scale api in shop to 5')), or a sessionId with "
                    "refinedIntent or executeChoice=1"
                )
        except OperateError as exc:
            raise ToolError(str(exc)) from exc
        return to_response(session)

    return mcp


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
            f"refusing to serve HTTP on {host} without a bearer token: set OPERATE_MCP_HTTP_TOKEN, "
            "or bind to 127.0.0.1"
        )
    app: ASGIApp = mcp.streamable_http_app(host=host)
    return BearerAuth(app, token) if token else app
