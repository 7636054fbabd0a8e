"""The model's tools: structured, read-only or server-side dry-run, never a free-form command line.

Every argv built here is classified before it runs; anything that is not `read` or
`dry-run` is refused in code, whatever the model asked for. Dry-run is added here,
so the model cannot turn it off. The dry-runs never become a way to read Secrets: patches of
Secrets and patch operations that read stored values are refused, and any dry-run that touches a
Secret answers with its status only, never the API server's message (which can quote values).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from operate_mcp.kube.classifier import classify
from operate_mcp.kube.preflight import unfixable
from operate_mcp.kube.runner import CommandResult, Kubectl, cap
from operate_mcp.kube.secrets import failure_status, is_secret_resource, touches_secret
from operate_mcp.model.command import CommandClass, shell_quote
from operate_mcp.model.tool_call import ToolCall

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_RESOURCE = re.compile(r"^[a-zA-Z][a-zA-Z0-9.-]{0,120}$")
_SELECTOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/=!,() -]{0,500}$")
_FIELD_PATH = re.compile(r"^[A-Za-z0-9_.\[\]-]{1,200}$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,500}$")

MAX_TOOL_OUTPUT = 24_000
# A get forced to JSON is read whole so it parses and can be stripped (Secrets: keys only) before
# the rendered text is capped; cutting raw JSON first would hand the model unparsed Secret values.
JSON_GET_OUTPUT_CAP = 8_000_000


class ToolInputError(ValueError):
    """The model sent arguments we will not turn into a command; the message goes back to it."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check(pattern: re.Pattern[str], what: str, value: str | None) -> str | None:
    if value is not None and not pattern.match(value):
        raise ValueError(f"{what} {value!r} is not a valid Kubernetes {what}")
    return value


class _Target(_Args):
    resource: str = Field(description="Resource type, e.g. deployment, pods, hpa, deployments.apps")
    name: str | None = Field(default=None, description="Object name; omit to list")
    namespace: str | None = Field(default=None, description="Namespace; omit for the kubeconfig default")

    @field_validator("resource")
    @classmethod
    def _resource(cls, v: str) -> str:
        return _check(_RESOURCE, "resource type", v) or v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return _check(_DNS_SUBDOMAIN, "name", v)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str | None) -> str | None:
        return _check(_DNS_LABEL, "namespace", v)


class GetArgs(_Target):
    selector: str | None = Field(default=None, description="Label selector, e.g. app=web")
    all_namespaces: bool = False
    output: Literal["table", "yaml", "json"] = "table"
    fields: list[str] | None = Field(
        default=None, description="With json/yaml: keep only these dotted paths, e.g. spec.replicas"
    )

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: str | None) -> str | None:
        return _check(_SELECTOR, "label selector", v)

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: list[str] | None) -> list[str] | None:
        for f in v or []:
            _check(_FIELD_PATH, "field path", f)
        return v


class DescribeArgs(_Target):
    selector: str | None = None

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: str | None) -> str | None:
        return _check(_SELECTOR, "label selector", v)


class LogsArgs(_Args):
    pod: str
    namespace: str | None = None
    container: str | None = None
    previous: bool = Field(default=False, description="Logs of the previous (crashed) container")
    tail_lines: int = Field(default=200, ge=1, le=2000)
    limit_bytes: int = Field(default=32_000, ge=1, le=200_000)

    @field_validator("pod")
    @classmethod
    def _pod(cls, v: str) -> str:
        return _check(_DNS_SUBDOMAIN, "name", v) or v

    @field_validator("namespace", "container")
    @classmethod
    def _label(cls, v: str | None) -> str | None:
        return _check(_DNS_LABEL, "name", v)


class EventsArgs(_Args):
    namespace: str | None = None
    for_object: str | None = Field(default=None, description="kind/name, e.g. pod/web-123 or deployment/web")
    warnings_only: bool = False

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str | None) -> str | None:
        return _check(_DNS_LABEL, "namespace", v)

    @field_validator("for_object")
    @classmethod
    def _for(cls, v: str | None) -> str | None:
        if v is None:
            return v
        kind, _, name = v.partition("/")
        _check(_RESOURCE, "resource type", kind)
        _check(_DNS_SUBDOMAIN, "name", name)
        return v


class ApiResourcesArgs(_Args):
    api_group: str | None = None

    @field_validator("api_group")
    @classmethod
    def _group(cls, v: str | None) -> str | None:
        return _check(_DNS_SUBDOMAIN, "API group", v) if v else v


class ExplainArgs(_Args):
    field: str = Field(description="e.g. deployment.spec.strategy or hpa.spec (CRDs too)")
    recursive: bool = False

    @field_validator("field")
    @classmethod
    def _field(cls, v: str) -> str:
        return _check(_FIELD_PATH, "field path", v) or v


class ApplyArgs(_Args):
    manifest: str = Field(description="YAML or JSON manifest, one or more documents")
    namespace: str | None = None

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str | None) -> str | None:
        return _check(_DNS_LABEL, "namespace", v)


class PatchArgs(_Target):
    name: str
    patch: str = Field(
        description="The patch body, JSON or YAML. A json patch is a list of add, replace or remove operations "
        "with the value given; copy, move and test are refused. Secrets cannot be patched."
    )
    patch_type: Literal["strategic", "merge", "json"] = "strategic"


class DeleteArgs(_Target):
    name: str


class ScaleArgs(_Target):
    name: str
    replicas: int = Field(ge=0, le=100_000)


class SetImageArgs(_Target):
    name: str
    container: str
    image: str

    @field_validator("container")
    @classmethod
    def _container(cls, v: str) -> str:
        return _check(_DNS_LABEL, "container name", v) or v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        return _check(_IMAGE, "image reference", v) or v


class RolloutUndoArgs(_Target):
    name: str
    to_revision: int | None = Field(default=None, ge=1)


@dataclass(frozen=True)
class Tool:
    """One tool the model may call. `kind` is what the loop is allowed to offer."""

    name: str
    description: str
    args: type[_Args]
    kind: Literal["read", "dry-run"]
    build: Callable[[Any], tuple[list[str], str | None]]

    def input_schema(self) -> dict[str, Any]:
        return self.args.model_json_schema()


def _ns(argv: list[str], namespace: str | None) -> list[str]:
    return [*argv, "-n", namespace] if namespace else argv


def _target(a: _Target) -> list[str]:
    return [a.resource, a.name] if a.name else [a.resource]


def _build_get(a: GetArgs) -> tuple[list[str], str | None]:
    argv = ["kubectl", "get", *_target(a)]
    argv = ["kubectl", "get", *_target(a), "--all-namespaces"] if a.all_namespaces else _ns(argv, a.namespace)
    if a.selector:
        argv += ["-l", a.selector]
    is_secret = is_secret_resource(a.resource)
    if a.output != "table" or a.fields or is_secret:
        argv += ["-o", "json"]
    return argv, None


def _build_describe(a: DescribeArgs) -> tuple[list[str], str | None]:
    argv = _ns(["kubectl", "describe", *_target(a)], a.namespace)
    if a.selector:
        argv += ["-l", a.selector]
    return argv, None


def _build_logs(a: LogsArgs) -> tuple[list[str], str | None]:
    argv = _ns(["kubectl", "logs", a.pod], a.namespace)
    if a.container:
        argv += ["-c", a.container]
    if a.previous:
        argv.append("--previous")
    return [*argv, f"--tail={a.tail_lines}", f"--limit-bytes={a.limit_bytes}"], None


def _build_events(a: EventsArgs) -> tuple[list[str], str | None]:
    argv = _ns(["kubectl", "events"], a.namespace)
    if a.for_object:
        argv += ["--for", a.for_object]
    if a.warnings_only:
        argv += ["--types=Warning"]
    return argv, None


def _build_api_resources(a: ApiResourcesArgs) -> tuple[list[str], str | None]:
    argv = ["kubectl", "api-resources"]
    return ([*argv, f"--api-group={a.api_group}"] if a.api_group else argv), None


def _build_explain(a: ExplainArgs) -> tuple[list[str], str | None]:
    argv = ["kubectl", "explain", a.field]
    return ([*argv, "--recursive"] if a.recursive else argv), None


DRY = "--dry-run=server"


def _build_apply(a: ApplyArgs) -> tuple[list[str], str | None]:
    return [*_ns(["kubectl", "apply", "-f", "-"], a.namespace), DRY], a.manifest


JSON_PATCH_OPS = ("add", "replace", "remove")
_JSON_PATCH_KEYS = frozenset({"op", "path", "value"})
# Why the other RFC 6902 operations are not offered: each one reads a value the model has not seen.
_REFUSED_JSON_PATCH_OPS = {
    "copy": "copies a stored value into another field, and the API server's error about that field quotes it",
    "move": "moves a stored value into another field, and the API server's error about that field quotes it",
    "test": "answers whether a stored value equals a guess, which confirms guessed values one by one",
}
_VALUE_PATHS = ("/data", "/stringData")


def _refuse_patch(why: str) -> ToolInputError:
    return ToolInputError(f"dry_run_patch refused: {why}")


def _check_json_patch(body: Any) -> None:
    if not isinstance(body, list) or not body or not all(isinstance(op, dict) for op in body):
        raise _refuse_patch(
            'a json patch is a non-empty list of operations, e.g. [{"op": "replace", "path": "/spec/replicas", '
            '"value": 3}]'
        )
    for number, op in enumerate(body, 1):
        name = op.get("op")
        if name in _REFUSED_JSON_PATCH_OPS:
            raise _refuse_patch(
                f"operation {number} is {name!r}, which {_REFUSED_JSON_PATCH_OPS[name]}; "
                "use add, replace or remove with the value written out"
            )
        if name not in JSON_PATCH_OPS:
            raise _refuse_patch(f"operation {number} has op {name!r}; use add, replace or remove")
        source = op.get("from")
        if "from" in op:
            reads = " (a Secret's values)" if isinstance(source, str) and source.startswith(_VALUE_PATHS) else ""
            raise _refuse_patch(f"operation {number} reads from {source!r}{reads}; write the value out instead")
        unknown = sorted(set(map(str, op)) - _JSON_PATCH_KEYS)
        if unknown:
            raise _refuse_patch(f"operation {number} has unknown keys {unknown}; an operation has op, path and value")
        if not isinstance(op.get("path"), str) or not op["path"].startswith("/"):
            raise _refuse_patch(f"operation {number} needs a path such as /spec/replicas")
        if name != "remove" and "value" not in op:
            raise _refuse_patch(f"operation {number} ({name}) needs a value")


def _checked_patch(a: PatchArgs) -> str:
    """The patch as the JSON kubectl will be given: checked, then re-serialised, so kubectl runs exactly
    what was checked (no duplicate keys or YAML spellings read one way here and another way there)."""
    if is_secret_resource(a.resource):
        raise _refuse_patch(
            f"{a.resource!r} is a Secret; the API server's answers to a patch of a Secret can quote its values, "
            "so Secrets are never patched by these tools. To change one, propose a Secret manifest "
            "(kubectl apply -f - with the manifest on stdin) for a person to review"
        )
    try:
        body = yaml.safe_load(a.patch)
    except yaml.YAMLError as exc:
        raise _refuse_patch(f"the patch is not valid JSON or YAML ({exc})") from exc
    if a.patch_type == "json":
        _check_json_patch(body)
    elif not isinstance(body, dict):
        raise _refuse_patch(f'a {a.patch_type} patch is a mapping, e.g. {{"spec": {{"replicas": 3}}}}')
    try:
        return json.dumps(body, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _refuse_patch(f"the patch holds a value JSON cannot carry ({exc}); quote dates and times") from exc


def _build_patch(a: PatchArgs) -> tuple[list[str], str | None]:
    argv = _ns(["kubectl", "patch", a.resource, a.name], a.namespace)
    return [*argv, f"--type={a.patch_type}", "-p", _checked_patch(a), DRY], None


def _build_delete(a: DeleteArgs) -> tuple[list[str], str | None]:
    return [*_ns(["kubectl", "delete", a.resource, a.name], a.namespace), DRY], None


def _build_scale(a: ScaleArgs) -> tuple[list[str], str | None]:
    return [*_ns(["kubectl", "scale", f"{a.resource}/{a.name}"], a.namespace), f"--replicas={a.replicas}", DRY], None


def _build_set_image(a: SetImageArgs) -> tuple[list[str], str | None]:
    argv = _ns(["kubectl", "set", "image", f"{a.resource}/{a.name}"], a.namespace)
    return [*argv, f"{a.container}={a.image}", DRY], None


def _build_undo(a: RolloutUndoArgs) -> tuple[list[str], str | None]:
    argv = _ns(["kubectl", "rollout", "undo", f"{a.resource}/{a.name}"], a.namespace)
    if a.to_revision:
        argv.append(f"--to-revision={a.to_revision}")
    return [*argv, DRY], None


TOOLS: tuple[Tool, ...] = (
    Tool(
        "kube_get",
        "List or fetch objects (table, yaml or json; optional field selection).",
        GetArgs,
        "read",
        _build_get,
    ),
    Tool(
        "kube_describe",
        "kubectl describe: status, conditions and recent events of objects.",
        DescribeArgs,
        "read",
        _build_describe,
    ),
    Tool(
        "kube_logs",
        "Container logs, tail- and byte-capped; previous=true for the crashed container.",
        LogsArgs,
        "read",
        _build_logs,
    ),
    Tool("kube_events", "Events in a namespace, optionally for one object.", EventsArgs, "read", _build_events),
    Tool(
        "kube_api_resources",
        "Which resource types the cluster serves (CRDs included).",
        ApiResourcesArgs,
        "read",
        _build_api_resources,
    ),
    Tool("kube_explain", "Schema of a resource field (built-in or CRD).", ExplainArgs, "read", _build_explain),
    Tool(
        "dry_run_apply",
        "Server-side dry-run of applying a manifest (validation, admission, defaults).",
        ApplyArgs,
        "dry-run",
        _build_apply,
    ),
    Tool(
        "dry_run_patch",
        "Server-side dry-run of a patch (strategic, merge, or json with add/replace/remove); not for Secrets.",
        PatchArgs,
        "dry-run",
        _build_patch,
    ),
    Tool("dry_run_delete", "Server-side dry-run of deleting one object.", DeleteArgs, "dry-run", _build_delete),
    Tool("dry_run_scale", "Server-side dry-run of scaling a workload.", ScaleArgs, "dry-run", _build_scale),
    Tool(
        "dry_run_set_image",
        "Server-side dry-run of changing a container image.",
        SetImageArgs,
        "dry-run",
        _build_set_image,
    ),
    Tool(
        "dry_run_rollout_undo",
        "Server-side dry-run of rolling back a workload.",
        RolloutUndoArgs,
        "dry-run",
        _build_undo,
    ),
)
TOOLS_BY_NAME = {t.name: t for t in TOOLS}


def wrap_untrusted(source: str, text: str) -> str:
    """Mark cluster data as data: the prompt tells the model never to obey what is inside."""
    safe = text.replace("</cluster-data", "<\\/cluster-data")
    return f'<cluster-data source="{source}" trust="untrusted">\n{safe}\n</cluster-data>'


def _strip_object(obj: Any) -> Any:
    """Drop noise and every Secret value (names and keys stay) from a decoded kubectl object."""
    if isinstance(obj, dict):
        if obj.get("kind") == "List" or ("items" in obj and isinstance(obj["items"], list)):
            obj = {**obj, "items": [_strip_object(i) for i in obj["items"]]}
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            meta = {k: v for k, v in meta.items() if k != "managedFields"}
            annotations = meta.get("annotations")
            if isinstance(annotations, dict):
                meta["annotations"] = {
                    k: v for k, v in annotations.items() if k != "kubectl.kubernetes.io/last-applied-configuration"
                }
            obj = {**obj, "metadata": meta}
        if obj.get("kind") == "Secret":
            for key in ("data", "stringData"):
                if isinstance(obj.get(key), dict):
                    obj = {**obj, key: {k: "[REDACTED]" for k in obj[key]}}
    return obj


def _select(obj: Any, paths: list[str]) -> dict[str, Any]:
    def one(o: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"name": o.get("metadata", {}).get("name")} if isinstance(o, dict) else {}
        for path in paths:
            cur: Any = o
            for part in path.split("."):
                cur = cur.get(part) if isinstance(cur, dict) else None
            out[path] = cur
        return out

    if isinstance(obj, dict) and isinstance(obj.get("items"), list):
        return {"items": [one(i) for i in obj["items"]]}
    return one(obj)


def _is_json_get(argv: list[str]) -> bool:
    return any(a == "-o" and b == "json" for a, b in itertools.pairwise(argv))


WITHHELD = (
    "[the API server's answer is withheld: the command touches a Secret, and answers about a Secret can quote "
    "its values; only the status is shown]"
)


def _render_withheld(args: Any, result: CommandResult) -> str:
    status = "ok" if result.ok else f"failed: {failure_status(result)}"
    return f"$ {shell_quote(result.argv)}\n[{status}]\n{wrap_untrusted(args.__class__.__name__, WITHHELD)}"


def _render(args: Any, result: CommandResult, *, withhold: bool = False) -> str:
    """What the model sees of a tool call; `withhold` (a command touching a Secret) leaves status only."""
    if withhold:
        return _render_withheld(args, result)
    text = result.stdout
    if isinstance(args, GetArgs) and text.strip() and _is_json_get(result.argv):
        try:
            obj = _strip_object(json.loads(text))  # a failed get may still print the objects it found
        except json.JSONDecodeError:
            obj = None
        if obj is None:
            # Never the raw text: it may hold Secret values (kubectl prints `data` before `metadata`),
            # and only parsed JSON can be stripped. Cut, timed-out or failed output is withheld.
            text = (
                "[output withheld: it could not be read as complete JSON (too large, cut or failed), and raw "
                "output may hold secret values; narrow the query with name, namespace or selector]"
            )
        else:
            if args.fields:
                obj = _select(obj, args.fields)
            if args.output == "table" and not args.fields:
                text = yaml.safe_dump(obj, sort_keys=False)  # secrets: keys only, never values
            else:
                text = json.dumps(obj, indent=1) if args.output == "json" else yaml.safe_dump(obj, sort_keys=False)
    body = text
    if result.stderr.strip():
        body = f"{body}\n[stderr]\n{result.stderr}" if body.strip() else f"[stderr]\n{result.stderr}"
    status = "ok" if result.ok else f"failed (exit {result.exit_code})"
    capped, _ = cap(body, MAX_TOOL_OUTPUT)
    return f"$ {shell_quote(result.argv)}\n[{status}]\n{wrap_untrusted(args.__class__.__name__, capped)}"


class ToolBox:
    """The kubectl Toolset (agent/toolset.py): executes the model's tool calls; refuses anything that
    would not be read-only or dry-run."""

    def __init__(self, kubectl: Kubectl, tools: tuple[Tool, ...] = TOOLS, *, read_only: bool = False) -> None:
        if read_only:
            tools = tuple(t for t in tools if t.kind == "read")
        for tool in tools:
            if tool.kind not in ("read", "dry-run"):
                raise ValueError(f"tool {tool.name} is {tool.kind}; the loop only gets read and dry-run tools")
        self.kubectl = kubectl
        self.tools = {t.name: t for t in tools}

    def definitions(self) -> list[dict[str, Any]]:
        return [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema()}
            for t in self.tools.values()
        ]

    def call(self, name: str, raw: dict[str, Any]) -> tuple[str, ToolCall]:
        tool = self.tools.get(name)
        if tool is None:
            msg = f"unknown tool {name!r}; available: {', '.join(self.tools)}"
            return msg, ToolCall(name=name, input=raw, ok=False, is_error=True)
        try:
            args = tool.args.model_validate(raw)
        except ValidationError as exc:
            msg = f"invalid arguments for {name}: " + "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            return msg, ToolCall(name=name, input=raw, ok=False, is_error=True)
        try:
            argv, stdin = tool.build(args)
        except ToolInputError as exc:
            return str(exc), ToolCall(name=name, input=raw, ok=False, is_error=True)
        verdict = classify(argv)
        allowed = CommandClass.READ if tool.kind == "read" else CommandClass.DRY_RUN
        if verdict.command_class != allowed:
            msg = f"refused: {shell_quote(argv)} is {verdict.command_class.value} ({verdict.reason})"
            return msg, ToolCall(name=name, input=raw, argv=argv, ok=False, is_error=True)
        if isinstance(args, GetArgs) and _is_json_get(argv):
            result = self.kubectl.run(argv, stdin=stdin, output_cap=JSON_GET_OUTPUT_CAP)
        else:
            result = self.kubectl.run(argv, stdin=stdin)
        kubeconfig = str(self.kubectl.kubeconfig() or "~/.kube/config")
        fatal = unfixable(result, changes=tool.kind == "dry-run", kubeconfig=kubeconfig)
        call = ToolCall(
            name=name, input=raw, argv=argv, ok=result.ok, duration_seconds=result.duration_seconds, fatal=fatal
        )
        withhold = tool.kind == "dry-run" and touches_secret(argv, stdin)
        return _render(args, result, withhold=withhold), call
