"""Reads the cluster in-process through the Kubernetes Python client: one list call per resource and
namespace (or one per resource across all namespaces), never one process per object.

The analyzers need whole objects, fast: `diagnose` of a namespace of 1,000 pods is a handful of HTTP
requests here, where kubectl would start a process per resource and parse its output twice. The
client is built from the same kubeconfig files kubectl uses (`KUBECONFIG` in the kubectl env), so the
two never disagree on which cluster they talk to.

Secrets are never read whole: `secret_names` asks the API server for metadata only and keeps the name.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from operate_mcp import tracing
from operate_mcp.kube.context import kubeconfig_key, kubeconfig_paths
from operate_mcp.kube.preflight import KubeconfigInvalid
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.secrets import is_secret_resource
from operate_mcp.model.resources import RESOURCES, Resource
from operate_mcp.redact import MASK, redact, redact_plain, redact_text

__all__ = ["ClusterReader", "Listing", "ReadFailed", "reader_for"]

# The version each group is read at (the analyzers read the fields of these versions).
VERSIONS: Mapping[str, str] = {
    "": "v1",
    "apps": "v1",
    "batch": "v1",
    "networking.k8s.io": "v1",
    "autoscaling": "v2",
    "policy": "v1",
    "discovery.k8s.io": "v1",
    "storage.k8s.io": "v1",
    "admissionregistration.k8s.io": "v1",
    "gateway.networking.k8s.io": "v1",
}
# Kinds the built-in table does not know (CRDs an analyzer reads when the cluster serves them).
EXTRA: tuple[Resource, ...] = (
    Resource("gatewayclasses", "GatewayClass", "gateway.networking.k8s.io"),
    Resource("gateways", "Gateway", "gateway.networking.k8s.io"),
    Resource("httproutes", "HTTPRoute", "gateway.networking.k8s.io"),
    Resource("validatingwebhookconfigurations", "ValidatingWebhookConfiguration", "admissionregistration.k8s.io"),
    Resource("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", "admissionregistration.k8s.io"),
)
CLUSTER_SCOPED = frozenset(
    {
        "nodes",
        "namespaces",
        "persistentvolumes",
        "storageclasses",
        "ingressclasses",
        "customresourcedefinitions",
        "clusterroles",
        "clusterrolebindings",
        "gatewayclasses",
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
        "priorityclasses",
        "certificatesigningrequests",
        "runtimeclasses",
        "apiservices",
    }
)
SECRET_NAMES = "secretnames"  # noqa: S105  pseudo-resource: Secrets by name only (metadata list, annotations dropped)
REQUEST_TIMEOUT = 30.0
LOG_TIMEOUT = 5.0
PAGE = 2000  # items per list page: big namespaces come in a few pages, never one giant response
# What is left of a private key whose BEGIN line fell before the tail that was read.
_HEADLESS_KEY = re.compile(r"\A[\s\S]*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"  # what kubectl asks for its columns
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@dataclass
class Listing:
    """What one list returned: its items (kind and apiVersion set on each) or why it could not be read."""

    items: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def _table() -> dict[str, Resource]:
    return {r.plural: r for r in (*RESOURCES, *EXTRA)}


class ClusterReader:
    """Lists, logs and discovery through one `ApiClient` (thread-safe; its connection pool is shared)."""

    def __init__(self, kubeconfig: str) -> None:
        # lazy: the kubernetes client costs ~0.3 s to import; a server that never diagnoses never pays it.
        from kubernetes import config as kube_config

        self._resources = _table()
        self._served: dict[str, bool] = {}
        self._lock = threading.Lock()
        try:
            self._client: Any = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, persist_config=False
            )
        except Exception as exc:  # the loader raises ConfigException, ValueError, OSError, ...
            raise KubeconfigInvalid(
                f"cannot load the kubeconfig {kubeconfig}: {redact_text(str(exc))[:300]}; check KUBECONFIG / "
                "OPERATE_MCP_KUBECONFIG and that its current context names a cluster and a user"
            ) from exc
        self._client.configuration.retries = 1

    def close(self) -> None:
        self._client.close()

    def resource(self, plural: str) -> Resource | None:
        return self._resources.get(plural)

    def namespaced(self, plural: str) -> bool:
        return plural not in CLUSTER_SCOPED

    def _path(self, r: Resource, namespace: str | None) -> str:
        version = VERSIONS.get(r.group, "v1")
        base = f"/api/{version}" if not r.group else f"/apis/{r.group}/{version}"
        if namespace is not None and self.namespaced(r.plural):
            return f"{base}/namespaces/{namespace}/{r.plural}"
        return f"{base}/{r.plural}"

    def _get(self, path: str, query: list[tuple[str, str]], accept: str, timeout: float) -> bytes:
        method, url, headers, body, post = self._client.param_serialize(
            "GET", path, query_params=query, header_params={"Accept": accept}, auth_settings=["BearerToken"]
        )
        with tracing.cluster_read(path) as span:
            response = self._client.call_api(method, url, headers, body, post, _request_timeout=timeout)
            data: bytes = response.read()
            span.set_attribute("http.response.status_code", int(response.status))
        if not 200 <= response.status < 300:
            raise _HttpError(response.status, str(response.reason or ""), data)
        return data

    def served(self, group: str) -> bool:
        """Whether the cluster serves `group` at the version we read (Gateway API, for one, is a CRD)."""
        if group in ("", "apps", "batch"):
            return True
        with self._lock:
            if group in self._served:
                return self._served[group]
        try:
            self._get(f"/apis/{group}/{VERSIONS.get(group, 'v1')}", [], "application/json", REQUEST_TIMEOUT)
            found = True
        except Exception as exc:
            found = getattr(exc, "status", None) != 404
        with self._lock:
            self._served[group] = found
        return found

    def list(self, plural: str, namespace: str | None) -> Listing:
        """Every object of `plural` in `namespace` (None: all namespaces, or the cluster-scoped kind).

        A failure is returned as a sentence, never raised: one forbidden kind must not hide the rest."""
        if plural == SECRET_NAMES:
            return self._secret_names(namespace)
        if is_secret_resource(plural):
            raise ValueError("the reader never reads Secrets whole; ask for secret names (secretnames)")
        r = self._resources.get(plural)
        if r is None:
            return Listing(error=f"unknown resource {plural!r}")
        version = VERSIONS.get(r.group, "v1")
        api_version = f"{r.group}/{version}" if r.group else version
        items: list[dict[str, Any]] = []
        query: list[tuple[str, str]] = [("limit", str(PAGE))]
        while True:
            try:
                body = json.loads(self._get(self._path(r, namespace), query, "application/json", REQUEST_TIMEOUT))
            except Exception as exc:
                return Listing(error=_why(exc, plural, namespace))
            for item in body.get("items") or ():
                if isinstance(item, dict):
                    item.setdefault("kind", r.kind)
                    item.setdefault("apiVersion", api_version)
                    (item.get("metadata") or {}).pop("managedFields", None)
                    _mask_messages(item)
                    items.append(item)
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return Listing(items=items)
            query = [("limit", str(PAGE)), ("continue", str(token))]

    def _secret_names(self, namespace: str | None) -> Listing:
        """Secrets by name: the API server's metadata-only list; annotations (which may hold
        `last-applied-configuration`, values included) and everything else are dropped here."""
        path = f"/api/v1/namespaces/{namespace}/secrets" if namespace else "/api/v1/secrets"
        accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        try:
            body = json.loads(self._get(path, [], accept, REQUEST_TIMEOUT))
        except Exception as exc:
            return Listing(error=_why(exc, "secrets", namespace))
        items = []
        for item in body.get("items") or ():
            m = (item.get("metadata") or {}) if isinstance(item, dict) else {}
            items.append(
                {"kind": "Secret", "apiVersion": "v1", "metadata": {k: m[k] for k in ("name", "namespace") if k in m}}
            )
        return Listing(items=items)

    def pod_metrics(self, namespace: str) -> Listing:
        """CPU and memory of every pod in `namespace` from the metrics API (metrics-server), if served."""
        path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"
        try:
            body = json.loads(self._get(path, [], "application/json", REQUEST_TIMEOUT))
        except Exception as exc:
            return Listing(error=_why(exc, "pod metrics", namespace))
        return Listing(items=[i for i in body.get("items") or () if isinstance(i, dict)])

    def read(
        self,
        r: Resource,
        namespace: str | None,
        *,
        name: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        table: bool = False,
    ) -> dict[str, Any]:
        """One object, or a list (every page), as JSON or as the API server's Table (kubectl's own columns).

        Raises `ReadFailed`. A Secret's values never leave here: `data` and `stringData` keep their keys
        only, and a Table row carries its object's name and namespace, nothing else."""
        path = self._path(r, namespace) + (f"/{name}" if name else "")
        base: list[tuple[str, str]] = []
        if label_selector:
            base.append(("labelSelector", label_selector))
        if field_selector:
            base.append(("fieldSelector", field_selector))
        version = VERSIONS.get(r.group, "v1")
        api_version = f"{r.group}/{version}" if r.group else version
        query = base if name else [*base, ("limit", str(PAGE))]
        merged: dict[str, Any] | None = None
        while True:
            try:
                body = json.loads(self._get(path, query, TABLE if table else "application/json", REQUEST_TIMEOUT))
            except _HttpError as exc:
                raise ReadFailed(exc.status, redact_text(exc.message or exc.reason)[:300]) from exc
            except Exception as exc:
                raise ReadFailed(None, redact_text(str(exc))[:300]) from exc
            if not isinstance(body, dict):
                raise ReadFailed(None, "the API server's answer is not a JSON object")
            if table:
                body["rows"] = [_bare_row(row) for row in body.get("rows") or () if isinstance(row, dict)]
            elif name:
                body.setdefault("kind", r.kind)
                body.setdefault("apiVersion", api_version)
                return _keys_only(body)
            else:
                items = [i for i in body.get("items") or () if isinstance(i, dict)]
                for item in items:
                    item.setdefault("kind", r.kind)
                    item.setdefault("apiVersion", api_version)
                body = {
                    "apiVersion": "v1",
                    "kind": "List",
                    "items": [_keys_only(i) for i in items],
                    "metadata": {"continue": (body.get("metadata") or {}).get("continue")},
                }
            key = "rows" if table else "items"
            if merged is None:
                merged = body
            else:
                merged[key].extend(body[key])
            token = (body.get("metadata") or {}).get("continue")
            if name or not token:
                (merged.get("metadata") or {}).pop("continue", None)
                return merged
            query = [*base, ("limit", str(PAGE)), ("continue", str(token))]

    def log_text(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None,
        previous: bool,
        tail: int,
        limit_bytes: int,
        since_seconds: int | None = None,
    ) -> str:
        """A container's log as `kubectl logs` prints it, redacted whole (a private key spans lines).
        Raises `ReadFailed`."""
        query = [("tailLines", str(tail)), ("limitBytes", str(limit_bytes)), ("previous", str(previous).lower())]
        if container:
            query.append(("container", container))
        if since_seconds:
            query.append(("sinceSeconds", str(since_seconds)))
        try:
            raw = self._get(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query, "*/*", REQUEST_TIMEOUT)
        except _HttpError as exc:
            raise ReadFailed(exc.status, redact_text(exc.message or exc.reason)[:300]) from exc
        except Exception as exc:
            raise ReadFailed(None, redact_text(str(exc))[:300]) from exc
        text = whole_lines(raw, limit_bytes).decode("utf-8", "replace")
        return _HEADLESS_KEY.sub("[REDACTED PRIVATE KEY]", redact_plain(text))

    def node_metrics(self, label_selector: str | None = None) -> Listing:
        """CPU and memory of every node from the metrics API (metrics-server), if served."""
        return self._metrics("/apis/metrics.k8s.io/v1beta1/nodes", label_selector, "node metrics", None)

    def pod_metrics_in(self, namespace: str | None, label_selector: str | None = None) -> Listing:
        """`pod_metrics` of one namespace or (None) all of them, optionally by label selector."""
        where = f"/namespaces/{namespace}" if namespace else ""
        path = f"/apis/metrics.k8s.io/v1beta1{where}/pods"
        return self._metrics(path, label_selector, "pod metrics", namespace)

    def _metrics(self, path: str, label_selector: str | None, what: str, namespace: str | None) -> Listing:
        query = [("labelSelector", label_selector)] if label_selector else []
        try:
            body = json.loads(self._get(path, query, "application/json", REQUEST_TIMEOUT))
        except Exception as exc:
            return Listing(error=_why(exc, what, namespace))
        return Listing(items=[i for i in body.get("items") or () if isinstance(i, dict)])

    def server_version(self) -> str:
        """The API server's gitVersion (`v1.34.4`), or "" when it cannot be read."""
        try:
            body = json.loads(self._get("/version", [], "application/json", REQUEST_TIMEOUT))
        except Exception:
            return ""
        return str(body.get("gitVersion") or "") if isinstance(body, dict) else ""

    def logs(self, namespace: str, pod: str, container: str, *, previous: bool, tail: int) -> Listing:
        """The last `tail` lines of one container's log (the previous instance's with `previous`), redacted:
        log lines are the application's and may carry anything."""
        query = [("container", container), ("tailLines", str(tail)), ("previous", "true" if previous else "false")]
        try:
            raw = self._get(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query, "*/*", LOG_TIMEOUT)
        except Exception as exc:
            return Listing(error=_why(exc, f"the log of {pod}/{container}", namespace))
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return Listing(items=[{"lines": log_lines(text, tail)}])


def whole_lines(raw: bytes, limit_bytes: int) -> bytes:
    """A log the API server cut at `limit_bytes` ends mid-line: drop that partial line, since a credential
    cut before its delimiter (`postgres://u:pass` without its `@host`) no longer matches the redactor."""
    if len(raw) < limit_bytes or raw.endswith(b"\n"):
        return raw
    cut = raw.rfind(b"\n")
    return raw[: cut + 1] if cut >= 0 else b""


def log_lines(text: str, tail: int) -> list[str]:
    """A log's last `tail` lines, redacted as a whole first: a private key spans lines, and its body lines,
    read one at a time, look like any base64. The tail may begin inside a key: up to its END line is masked."""
    text = _HEADLESS_KEY.sub("[REDACTED PRIVATE KEY]", redact_plain(text))
    return [redact_text(line)[:500] for line in text.splitlines() if line.strip()][-tail:]


def _mask_messages(item: dict[str, Any]) -> None:
    """Messages are free text the cluster's components and applications write (an event, a condition, the
    termination message an app leaves), and a container's command line may carry a password: masked before
    any analyzer cites them, and `diagnose` prints or returns them."""
    for key in ("message", "note"):
        if item.get("kind") == "Event" and isinstance(item.get(key), str):
            item[key] = redact_plain(item[key])
    spec = item.get("spec")
    if item.get("kind") == "Pod" and isinstance(spec, dict):
        for container in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
            for key in ("command", "args"):
                if isinstance(container, dict) and isinstance(container.get(key), list):
                    container[key] = redact(container[key])  # `--password x` too: the flag masks the next item
    stack: list[Any] = [item.get("status")]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "message" and isinstance(inner, str):
                    value[key] = redact_plain(inner)
                else:
                    stack.append(inner)
        elif isinstance(value, list):
            stack.extend(value)


def _keys_only(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without managedFields; a Secret with its keys and no values (nor last-applied annotation)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    if str(obj.get("kind", "")).lower() != "secret":
        return obj
    for key in ("data", "stringData"):
        if isinstance(obj.get(key), dict):
            obj[key] = dict.fromkeys(obj[key], MASK)
        elif key in obj:
            obj[key] = MASK
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if isinstance(annotations, dict):
        annotations.pop(_LAST_APPLIED, None)
    return obj


def _bare_row(row: dict[str, Any]) -> dict[str, Any]:
    """A Table row's cells, and of its object only the name and namespace (its annotations may hold values)."""
    meta = (row.get("object") or {}).get("metadata") or {}
    return {
        "cells": row.get("cells") or [],
        "object": {"metadata": {k: meta[k] for k in ("name", "namespace") if k in meta}},
    }


class ReadFailed(Exception):
    """The API server (or the way to it) refused a read: `status` is the HTTP status, None when none came."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status, self.message = status, message


class _HttpError(Exception):
    def __init__(self, status: int, reason: str, body: bytes) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status, self.reason = status, reason
        try:
            self.message = str(json.loads(body).get("message") or "")
        except (ValueError, AttributeError):
            self.message = ""


def _why(exc: Exception, plural: str, namespace: str | None) -> str:
    where = f" in {namespace}" if namespace else ""
    status = getattr(exc, "status", None)
    if status == 403:
        return f"not allowed to list {plural}{where} (403 Forbidden)"
    if status == 404:
        return f"{plural} is not served by this cluster (404)"
    if status:
        detail = getattr(exc, "message", "") or getattr(exc, "reason", "")
        return redact_text(f"listing {plural}{where} failed: HTTP {status} {detail}".rstrip())[:300]
    return f"listing {plural}{where} failed: {redact_text(str(exc))[:200]}"


_readers: dict[tuple[str, ...], ClusterReader] = {}
_readers_lock = threading.Lock()


def reader_for(kubectl: Kubectl) -> ClusterReader:
    """The reader for the kubeconfig `kubectl` uses, shared while those files are unchanged."""
    key = kubeconfig_key(kubectl)
    with _readers_lock:
        reader = _readers.get(key)
        if reader is None:
            reader = ClusterReader(os.pathsep.join(kubeconfig_paths(kubectl)[0]))
            _readers[key] = reader
        return reader


def list_many(reader: ClusterReader, plurals: Sequence[str], namespace: str | None) -> dict[str, Listing]:
    """Several lists side by side (the client's pool is shared; the API server does the work)."""
    wanted = list(dict.fromkeys(plurals))
    if not wanted:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
        return dict(zip(wanted, pool.map(lambda p: reader.list(p, namespace), wanted), strict=True))
