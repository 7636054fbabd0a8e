"""The cluster preflight: before a single model call, check what no model can fix.

An analysis with no cluster, a missing kubeconfig or credentials that cannot dry-run would spend
every model turn and end in a raw kubectl error. The preflight fails first, in one sentence naming
the kubeconfig, context and server it tried and what to set. On the happy path it costs two kubectl
calls (`config view`, read locally, and one SelfSubjectRulesReview), and a pass is cached for a minute
per kubeconfig. `unfixable` reads the same failures in a tool call's result, so the loop can stop too.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from operate_mcp.errors import OperateError
from operate_mcp.kube.context import kubeconfig_key, kubeconfig_paths
from operate_mcp.kube.runner import CommandResult, Kubectl

CACHE_SECONDS = 60.0
REQUEST_TIMEOUT = "--request-timeout=5s"
# What a server-side dry-run of a change needs: the same RBAC verbs as the change itself.
READ_VERBS = frozenset({"get", "list"})
DRY_RUN_VERBS = frozenset({"patch", "create"})
FIX_KUBECONFIG = "set OPERATE_MCP_KUBECONFIG to a kubeconfig that reaches your cluster"


class PreflightError(OperateError):
    """The cluster cannot serve an analysis; the message names the kubeconfig, context, server and fix."""


class KubeconfigMissing(PreflightError):
    """No kubeconfig file where one is configured (or expected)."""


class KubeconfigInvalid(PreflightError):
    """The kubeconfig selects no usable context or cluster."""


class ClusterUnreachable(PreflightError):
    """kubectl cannot talk to the API server: refused, no such host, timed out, untrusted certificate."""


class NotAuthorized(PreflightError):
    """The API server rejects the credentials (401), or the identity lacks the verbs an analysis needs."""


@dataclass(frozen=True)
class ClusterTarget:
    """The cluster an analysis will work on, as the kubeconfig selects it."""

    kubeconfig: str
    context: str
    server: str
    namespace: str

    def where(self) -> str:
        return f"context {self.context}, kubeconfig {self.kubeconfig}"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _ClusterEntry(_Loose):
    server: str = ""


class _NamedCluster(_Loose):
    cluster: _ClusterEntry = Field(default_factory=_ClusterEntry)


class _ContextEntry(_Loose):
    namespace: str = ""


class _NamedContext(_Loose):
    name: str = ""
    context: _ContextEntry = Field(default_factory=_ContextEntry)


class _MinifiedConfig(_Loose):
    """`kubectl config view --minify -o json`: the current context and its cluster only."""

    current_context: str = Field(default="", alias="current-context")
    clusters: list[_NamedCluster] = Field(default_factory=list)
    contexts: list[_NamedContext] = Field(default_factory=list)


class _ResourceRule(_Loose):
    verbs: list[str] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=list)


class _RulesStatus(_Loose):
    resourceRules: list[_ResourceRule] = Field(default_factory=list)
    incomplete: bool = False


class _RulesReview(_Loose):
    status: _RulesStatus = Field(default_factory=_RulesStatus)


_cache: dict[tuple[str, ...], tuple[float, ClusterTarget]] = {}
_lock = threading.Lock()


def _check_files(paths: list[str], configured: bool) -> str:
    """The kubeconfig as shown in messages; raises when no file is there to read."""
    shown = os.pathsep.join(paths)
    if any(os.path.isfile(p) for p in paths):
        return shown
    if configured:
        raise KubeconfigMissing(
            f"the kubeconfig {shown} does not exist; {FIX_KUBECONFIG} (OPERATE_MCP_KUBECONFIG or KUBECONFIG "
            "names a file that is not there)"
        )
    raise KubeconfigMissing(f"no kubeconfig is configured and the default {shown} does not exist; {FIX_KUBECONFIG}")


_LOG_PREFIX = re.compile(r"^[EWI]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] ")


def _last_line(text: str) -> str:
    """kubectl's own error line, without klog's `E1130 … memcache.go:265]` prefix, capped."""
    lines = [_LOG_PREFIX.sub("", line).strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else "no error message"
    line = line.removeprefix("error: ")
    return line if len(line) <= 240 else line[:240] + "…"


def connection_problem(stderr: str) -> str | None:
    """Why kubectl could not talk to the API server at all, in a few words; None if it did."""
    text = stderr.lower()
    if "refused" in text:
        return "connection refused"
    if "no such host" in text:
        return "no such host (the server's name does not resolve)"
    if "x509" in text or ("certificate" in text and "unable to connect" in text):
        return "its TLS certificate is not trusted (x509)"
    if any(s in text for s in ("i/o timeout", "deadline exceeded", "client.timeout", "timed out", "tls handshake")):
        return "timed out"
    if "unable to connect to the server" in text or "no route to host" in text or "network is unreachable" in text:
        return _last_line(stderr)
    return None


def _unauthorized(stderr: str) -> bool:
    return any(
        s in stderr for s in ("(Unauthorized)", "must be logged in to the server", "asked for the client to provide")
    )


_FORBIDDEN = re.compile(r'cannot (\w+) resource "([^"]+)"(?: in API group "([^"]*)")?(?: in the namespace "([^"]+)")?')


def unfixable(result: CommandResult, *, changes: bool, kubeconfig: str) -> str | None:
    """The failure of a tool call that no model can fix, as one sentence; None for one it can.

    Unreachable and unauthenticated always; forbidden only for a dry-run of a change (`changes`),
    because that verb is the proposal itself, while a read the identity may not do can be worked around.
    The sentence is built from the failure's kind, never by quoting the API server's message.
    """
    if result.ok:
        return None
    where = f"kubeconfig {kubeconfig}"
    problem = connection_problem(result.stderr)
    if problem is not None:
        return f"kubectl cannot reach the cluster ({where}): {problem}; start the cluster or {FIX_KUBECONFIG}"
    if _unauthorized(result.stderr):
        return (
            f"the cluster rejected the credentials ({where}): Unauthorized (401); renew the token or certificate, "
            f"or {FIX_KUBECONFIG}"
        )
    if changes and "(Forbidden)" in result.stderr:
        found = _FORBIDDEN.search(result.stderr)
        what = "this change"
        if found:
            verb, resource, group, namespace = found.groups()
            kind = f"{resource}.{group}" if group else resource
            what = f"{verb} {kind}" + (f" in namespace {namespace}" if namespace else "")
        return (
            f"this identity may not {what} ({where}): Forbidden (403), and a server-side dry-run needs the same "
            "RBAC verbs as the real change; grant them to the kubeconfig's user (see docs/guide.md, Troubleshooting)"
        )
    return None


def _read_target(kubectl: Kubectl, kubeconfig: str) -> ClusterTarget:
    result = kubectl.run(["kubectl", "config", "view", "--minify", "-o", "json"], timeout=10)
    if not result.ok:
        raise KubeconfigInvalid(
            f"the kubeconfig {kubeconfig} cannot be used: {_last_line(result.stderr)}; select a context with "
            f"`kubectl config use-context NAME` or {FIX_KUBECONFIG}"
        )
    try:
        config = _MinifiedConfig.model_validate(json.loads(result.stdout))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise KubeconfigInvalid(
            f"the kubeconfig {kubeconfig} could not be read by kubectl config view ({type(exc).__name__}); "
            f"check the file or {FIX_KUBECONFIG}"
        ) from exc
    server = config.clusters[0].cluster.server if config.clusters else ""
    context = config.contexts[0] if config.contexts else _NamedContext()
    name = config.current_context or context.name or "(none)"
    if not server:
        raise KubeconfigInvalid(
            f"the kubeconfig {kubeconfig} (context {name}) names no cluster server; select a context with "
            f"`kubectl config use-context NAME` or {FIX_KUBECONFIG}"
        )
    namespace = context.context.namespace or "default"
    return ClusterTarget(kubeconfig=kubeconfig, context=name, server=server, namespace=namespace)


def _rules_review(namespace: str) -> str:
    return json.dumps(
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": namespace}}
    )


def _granted(rules: list[_ResourceRule]) -> set[str]:
    """The verbs granted on some real resource; every user may create its own access reviews, which
    says nothing about changing the cluster."""
    verbs: set[str] = set()
    for rule in rules:
        if rule.resources and all(r.startswith("selfsubject") for r in rule.resources):
            continue
        verbs |= set(rule.verbs)
    return {v for v in (READ_VERBS | DRY_RUN_VERBS) if v in verbs or "*" in verbs}


def _check_access(kubectl: Kubectl, target: ClusterTarget) -> None:
    """Reachable, authenticated and allowed to read and dry-run in the context's namespace: one call."""
    # Our code creates a SelfSubjectRulesReview (never stored by the API server): the identity's rules,
    # as JSON, and the reachability check in the same request. --validate=false: client-side validation
    # would first download the OpenAPI schema and list CRDs, which a namespaced identity may not do.
    result = kubectl.run(
        ["kubectl", "create", "-f", "-", "-o", "json", "--validate=false", REQUEST_TIMEOUT],
        stdin=_rules_review(target.namespace),
        timeout=15,
    )
    at = f"the cluster at {target.server} ({target.where()})"
    if not result.ok:
        problem = "timed out" if result.timed_out else connection_problem(result.stderr)
        if problem is not None:
            raise ClusterUnreachable(f"cannot reach {at}: {problem}; start the cluster or {FIX_KUBECONFIG}")
        if _unauthorized(result.stderr):
            raise NotAuthorized(
                f"{at} rejected the credentials: Unauthorized (401); renew the token or certificate, "
                f"or {FIX_KUBECONFIG}"
            )
        raise PreflightError(
            f"could not check this identity's permissions on {at}: {_last_line(result.stderr)}; {FIX_KUBECONFIG}"
        )
    try:
        review = _RulesReview.model_validate(json.loads(result.stdout))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise PreflightError(f"{at} answered the permission check with something unreadable ({exc})") from exc
    if review.status.incomplete:
        return  # an authorizer that cannot list its rules (e.g. a webhook): absence proves nothing
    granted = _granted(review.status.resourceRules)
    ns = target.namespace
    if not granted >= READ_VERBS:
        raise NotAuthorized(
            f"this identity cannot read (get/list) in namespace {ns} on {at}; bind it a Role granting get and "
            f"list there, or set the context's namespace to one it may read"
        )
    if not DRY_RUN_VERBS & granted:
        raise NotAuthorized(
            f"this identity cannot dry-run changes (patch/create) in namespace {ns} on {at}: a server-side "
            "dry-run needs the same RBAC verbs as the change itself; bind it a Role granting patch and create "
            "there (see docs/guide.md, Troubleshooting)"
        )


def preflight(kubectl: Kubectl, *, clock: Callable[[], float] = time.monotonic) -> ClusterTarget:
    """Check the kubeconfig, the cluster and the identity, or raise a PreflightError that says what to fix.

    A pass is remembered for CACHE_SECONDS per kubeconfig (and its modification time); a failure never is,
    so a fixed setup is seen at once.
    """
    paths, configured = kubeconfig_paths(kubectl)
    key = kubeconfig_key(kubectl)
    with _lock:
        cached = _cache.get(key)
    if cached is not None and clock() < cached[0]:
        return cached[1]
    kubeconfig = _check_files(paths, configured)
    target = _read_target(kubectl, kubeconfig)
    _check_access(kubectl, target)
    with _lock:
        _cache[key] = (clock() + CACHE_SECONDS, target)
    return target
