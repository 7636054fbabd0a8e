"""Outcome checks: what success looks like after an operation, written as data (outcomes/default.yaml,
overridable per category and per pattern in `<data dir>/outcome-specs.yaml`) and interpreted by our code.

No shell and no arbitrary commands: a check is one of a fixed set of kinds read through the in-process
client (or, for `http`, one GET by our code). The proposal's own `verification` commands run too, each
classified again and run only if it is a read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from operate_mcp.errors import ConfigError
from operate_mcp.kube.classifier import classify_command
from operate_mcp.kube.reader import ClusterReader
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.targets import Target
from operate_mcp.model.command import CommandClass, ProposedCommand, shell_quote
from operate_mcp.model.observation import AnomalySeverity, Category
from operate_mcp.model.session import Check
from operate_mcp.observe.context import WORKLOADS
from operate_mcp.redact import redact_text

SPEC_FILE = "outcome-specs.yaml"
MAX_DETAIL = 500


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckSpec(_Spec):
    check: Literal[
        "rollout_complete", "pods_ready", "replicas_available", "no_failing_pods", "hpa_active", "field_equals", "http"
    ]
    timeout: float | None = Field(default=None, gt=0, le=3600)
    interval: float | None = Field(default=None, gt=0, le=300)
    # field_equals
    resource: str | None = None
    name: str | None = None
    namespace: str | None = None
    path: str | None = None
    value: Any = None
    # http
    url: str | None = None
    status: int = 200


class FailureIndicator(_Spec):
    reason: str
    severity: AnomalySeverity


class Defaults(_Spec):
    timeout: float = Field(default=300, gt=0, le=3600)
    interval: float = Field(default=5, gt=0, le=300)


class OutcomeSpecs(_Spec):
    defaults: Defaults = Field(default_factory=Defaults)
    failure_indicators: list[FailureIndicator] = Field(default_factory=list)
    categories: dict[Category, list[CheckSpec]] = Field(default_factory=dict)
    patterns: dict[str, list[CheckSpec]] = Field(default_factory=dict)

    def checks_for(self, category: Category, patterns: Sequence[str]) -> list[CheckSpec]:
        """A pattern's own spec wins over its category's (the first applied pattern that has one)."""
        for p in patterns:
            if p in self.patterns:
                return self.patterns[p]
        return self.categories.get(category, self.categories.get("other", []))


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with defaults, failure_indicators, categories, patterns")
    return data


def load_specs(data_dir: Path) -> OutcomeSpecs:
    """The shipped defaults, with the operator's file (if any) replacing whole categories and patterns."""
    merged = _parse(resources.files("operate_mcp.observe").joinpath("outcomes/default.yaml").read_text(), "default")
    own = data_dir / SPEC_FILE
    if own.is_file():
        mine = _parse(own.read_text(), str(own))
        for key in ("categories", "patterns"):
            merged[key] = {**(merged.get(key) or {}), **(mine.get(key) or {})}
        for key in ("defaults", "failure_indicators"):
            if key in mine:
                merged[key] = mine[key]
    try:
        return OutcomeSpecs.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise ConfigError(f"outcome specs ({own}) are invalid: {problems}") from exc


def _field(obj: Mapping[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


class _State:
    """One read of the touched objects and their pods, shared by every check of one poll."""

    def __init__(self, reader: ClusterReader, targets: Sequence[Target], default_namespace: str) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any] | None] = {}
        self.pods: list[dict[str, Any]] = []
        self.errors: list[str] = []
        lists: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for t in targets:
            ns = t.namespace or default_namespace
            for plural in (t.resource, "pods"):
                if (plural, ns) not in lists:
                    got = reader.list(plural, ns)
                    if got.error:
                        self.errors.append(got.error)
                    lists[(plural, ns)] = got.items
            obj = next((o for o in lists[(t.resource, ns)] if (o.get("metadata") or {}).get("name") == t.name), None)
            self.objects[(t.resource, ns, t.name)] = obj
            if obj is not None and t.resource in WORKLOADS:
                selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
                for pod in lists[("pods", ns)]:
                    labels = (pod.get("metadata") or {}).get("labels") or {}
                    matches = selector and all(labels.get(k) == v for k, v in selector.items())
                    if matches and not (pod.get("metadata") or {}).get("deletionTimestamp"):
                        self.pods.append(pod)

    def workloads(self) -> list[tuple[tuple[str, str, str], dict[str, Any] | None]]:
        return [(k, o) for k, o in self.objects.items() if k[0] in WORKLOADS]


def _pod_reasons(pod: Mapping[str, Any]) -> set[str]:
    status = pod.get("status") or {}
    found = {str(status.get("reason") or "")}
    for cs in status.get("containerStatuses") or ():
        found.add(str(((cs.get("state") or {}).get("waiting") or {}).get("reason") or ""))
        found.add(str(((cs.get("lastState") or {}).get("terminated") or {}).get("reason") or ""))
    return found - {""}


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _judge(spec: CheckSpec, state: _State, indicators: Sequence[FailureIndicator]) -> tuple[bool, str]:
    if spec.check == "rollout_complete":
        pending = []
        for (resource, _ns, name), obj in state.workloads():
            if obj is None:
                pending.append(f"{resource}/{name} not found")
                continue
            s, want = obj.get("status") or {}, (obj.get("spec") or {}).get("replicas", 1)
            generation = (obj.get("metadata") or {}).get("generation")
            if s.get("observedGeneration", generation) != generation or int(s.get("updatedReplicas") or 0) < want:
                pending.append(f"{resource}/{name}: {s.get('updatedReplicas') or 0}/{want} updated")
        return not pending, "; ".join(pending) or "every rollout finished"
    if spec.check == "replicas_available":
        short = []
        for (resource, _ns, name), obj in state.workloads():
            want = (obj or {}).get("spec", {}).get("replicas", 1)
            have = int(((obj or {}).get("status") or {}).get("availableReplicas") or 0)
            if obj is None or have < want:
                short.append(f"{resource}/{name}: {have}/{want} available")
        return not short, "; ".join(short) or "every workload has its replicas available"
    if spec.check == "pods_ready":
        unready = [str((p.get("metadata") or {}).get("name")) for p in state.pods if not _ready(p)]
        return not unready, (
            f"not ready: {', '.join(unready[:10])}" if unready else f"{len(state.pods)} pod(s) ready"
        )
    if spec.check == "no_failing_pods":
        bad = _failing(state, indicators)
        return not bad, "; ".join(f"{pod}: {reason} ({sev})" for pod, reason, sev in bad[:10]) or "no pod failing"
    if spec.check == "hpa_active":
        inactive = []
        for (resource, _ns, name), obj in state.objects.items():
            if resource != "horizontalpodautoscalers":
                continue
            active = next(
                (
                    c
                    for c in ((obj or {}).get("status") or {}).get("conditions") or ()
                    if c.get("type") == "ScalingActive"
                ),
                None,
            )
            if active is None or active.get("status") != "True":
                inactive.append(f"{name}: {(active or {}).get('reason', 'no ScalingActive condition yet')}")
        return not inactive, "; ".join(inactive) or "every autoscaler is active"
    if spec.check == "field_equals":
        key = next((k for k in state.objects if k[0] == spec.resource and k[2] == spec.name), None)
        obj = state.objects.get(key) if key else None
        actual = _field(obj, spec.path or "") if obj else None
        return actual == spec.value, f"{spec.resource}/{spec.name} {spec.path} = {actual!r} (expected {spec.value!r})"
    return _http(spec)


def _failing(state: _State, indicators: Sequence[FailureIndicator]) -> list[tuple[str, str, str]]:
    by_reason = {i.reason: i.severity for i in indicators}
    found: list[tuple[str, str, str]] = []
    for pod in state.pods:
        for reason in _pod_reasons(pod):
            if reason in by_reason and reason != "Unhealthy":
                found.append((str((pod.get("metadata") or {}).get("name")), reason, by_reason[reason]))
    return found


def _http(spec: CheckSpec) -> tuple[bool, str]:
    import httpx  # lazy: ~0.15 s to import; only an http verification check needs it, never tools/list

    if not spec.url:
        return False, "http check without url"
    try:
        response = httpx.get(spec.url, timeout=min(spec.timeout or 10.0, 30.0), follow_redirects=False)
    except httpx.HTTPError as exc:
        return False, f"GET {spec.url}: {type(exc).__name__}"
    return response.status_code == spec.status, f"GET {spec.url}: {response.status_code} (expected {spec.status})"


def run_checks(
    reader: ClusterReader,
    specs: OutcomeSpecs,
    checks: Sequence[CheckSpec],
    targets: Sequence[Target],
    *,
    default_namespace: str,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Check]:
    """Poll until every check passes, a failure indicator shows, or the longest timeout passes."""
    if not checks or not targets:
        return []
    started = clock()
    timeout = max(c.timeout or specs.defaults.timeout for c in checks)
    interval = min(c.interval or specs.defaults.interval for c in checks)
    while True:
        state = _State(reader, targets, default_namespace)
        results = [(c, *_judge(c, state, specs.failure_indicators)) for c in checks]
        failing_fast = bool(_failing(state, specs.failure_indicators))
        waited = clock() - started
        expired = [c for c, ok, _ in results if not ok and waited >= (c.timeout or specs.defaults.timeout)]
        if all(ok for _, ok, _ in results) or failing_fast or expired or waited >= timeout:
            break
        sleep(interval)
    return [
        Check(
            name=f"outcome: {c.check}" + (f" {c.url}" if c.url else ""),
            ok=ok,
            detail=redact_text(f"{detail} (after {waited:.0f}s)")[:MAX_DETAIL],
        )
        for c, ok, detail in results
    ]


def run_verification(kubectl: Kubectl, commands: Sequence[ProposedCommand]) -> list[Check]:
    """The proposal's verification commands, each classified again and run only if it only reads."""
    checks = []
    for cmd in commands:
        shown = shell_quote(cmd.argv)
        verdict = classify_command(cmd.argv, cmd.stdin)
        if verdict.command_class is not CommandClass.READ:
            checks.append(Check(name=f"verification: {shown}"[:300], ok=False, detail=f"not run: {verdict.reason}"))
            continue
        result = kubectl.run(cmd.argv, stdin=cmd.stdin)
        out = (result.stdout or result.stderr).strip().splitlines()
        checks.append(
            Check(
                name=f"verification: {shown}"[:300],
                ok=result.ok,
                detail=redact_text(f"exit {result.exit_code}: {' / '.join(out[-3:])}")[:MAX_DETAIL],
            )
        )
    return checks
