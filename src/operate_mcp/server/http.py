"""The streamable HTTP face: bearer token, Host/Origin checks on every route, and /metrics."""

from __future__ import annotations

import hmac

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from operate_mcp.config import Settings
from operate_mcp.errors import OperateError
from operate_mcp.records.prometheus import CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from operate_mcp.server.app import App

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# What the SDK applies to /mcp on loopback; /metrics and any other route get the same (DNS rebinding).
LOOPBACK_SECURITY = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"],
    allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
)


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


def add_metrics_route(mcp: MCPServer, app: App) -> None:
    """GET /metrics: the Prometheus counters of this server's executions."""

    async def prometheus_metrics(request: Request) -> Response:
        return Response(app.metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)

    mcp.custom_route("/metrics", methods=["GET"])(prometheus_metrics)


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
