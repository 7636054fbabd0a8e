"""What each proposed command would change, normalised so one policy rule covers every way to say it.

`kubectl scale --replicas=500`, a manifest with `replicas: 500` and a patch setting `/spec/replicas`
all become a change with `replicas: 500`; `set image`, manifests and patches all fill `images`.
Policies (CEL) evaluate over these dicts, so every key is always present (None when unknown).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from operate_mcp.errors import CommandRejected
from operate_mcp.kube.classifier import ParsedCommand, ResourceRef, parse_kubectl
from operate_mcp.kube.manifests import ManifestError, parse_manifests
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.resources import kind_of, resource_of_kind

_CONTAINER_KEYS = ("containers", "initContainers", "ephemeralContainers")
_IMAGE_RE = re.compile(
    r"^(?P<name>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z0-9_+.-]+:[0-9a-fA-F]+))?$"
)


def image_ref(ref: str, container: str | None = None) -> dict[str, Any]:
    """An image reference split into name, tag and digest; `tag` is "" when none is given (means latest)."""
    match = _IMAGE_RE.match(ref.strip())
    name, tag, digest = (match.group("name"), match.group("tag") or "", match.group("digest") or "") if match else (
        ref, "", "")
    if ":" in name.rsplit("/", 1)[-1]:  # the regex keeps odd refs whole; split what is left conservatively
        name, _, tag = name.rpartition(":")
    return {"ref": ref, "name": name, "tag": tag, "digest": digest, "container": container or ""}


def _containers(node: Any) -> Iterator[dict[str, Any]]:
    """Every container spec under a manifest or patch, wherever the pod template sits."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _CONTAINER_KEYS and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _containers(value)


def _images_in(node: Any) -> list[dict[str, Any]]:
    return [image_ref(c["image"], c.get("name")) for c in _containers(node) if isinstance(c.get("image"), str)]


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _replica_fields(obj: Any) -> dict[str, int | None]:
    spec = obj.get("spec") if isinstance(obj, dict) else None
    spec = spec if isinstance(spec, dict) else {}
    return {
        "replicas": _int(spec.get("replicas", spec.get("instances"))),
        "min_replicas": _int(spec.get("minReplicas", spec.get("minReplicaCount"))),
        "max_replicas": _int(spec.get("maxReplicas", spec.get("maxReplicaCount"))),
    }


def _labels(obj: Any) -> dict[str, str]:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def blank_change(index: int, command: ProposedCommand, parsed: ParsedCommand | None) -> dict[str, Any]:
    """A change with every key present, so CEL rules can test `x != null` instead of `has(x)`."""
    return {
        "index": index,
        "command": parsed.command if parsed else "",
        "verb": parsed.verb if parsed else "",
        "subverb": (parsed.subverb or "") if parsed else "",
        "argv": list(command.argv),
        "kind": "",
        "resource": "",
        "name": "",
        "namespace": (parsed.namespace or "") if parsed else "",
        "all_namespaces": bool(parsed and parsed.all_namespaces),
        "selector": (parsed.selector or "") if parsed else "",
        "replicas": None,
        "min_replicas": None,
        "max_replicas": None,
        "images": [],
        "labels": {},
        "manifest": None,
        "patch": None,
        "from_manifest": False,
        "parse_error": "",
    }


def _flag(parsed: ParsedCommand, name: str) -> str | None:
    values = [v for v in parsed.flag_values(name) if v is not None]
    return values[-1] if values else None


def _manifest_objects(stdin: str) -> tuple[list[dict[str, Any]], str]:
    """The objects kubectl reads from stdin (kube/manifests.py), or why the manifest cannot be read."""
    try:
        return [o.body for o in parse_manifests(stdin)], ""
    except ManifestError as exc:
        return [], str(exc)


def _patch_effect(change: dict[str, Any], patch_text: str, patch_type: str | None) -> None:
    """What a patch sets: merge/strategic patches read like manifests; JSON patches by path."""
    try:
        body = yaml.safe_load(patch_text)
    except yaml.YAMLError as exc:
        change["parse_error"] = f"patch is not valid JSON/YAML: {exc}"
        return
    change["patch"] = body
    if patch_type == "json" or isinstance(body, list):
        for op in body if isinstance(body, list) else []:
            if not isinstance(op, dict) or op.get("op") not in ("add", "replace"):
                continue
            path, value = str(op.get("path", "")), op.get("value")
            if path == "/spec/replicas":
                change["replicas"] = _int(value)
            elif path in ("/spec/maxReplicas", "/spec/maxReplicaCount"):
                change["max_replicas"] = _int(value)
            elif path in ("/spec/minReplicas", "/spec/minReplicaCount"):
                change["min_replicas"] = _int(value)
            elif path.endswith("/image") and isinstance(value, str):
                change["images"].append(image_ref(value))
            elif isinstance(value, (dict, list)):
                change["images"] += _images_in(value)
        return
    change.update({k: v for k, v in _replica_fields(body).items() if v is not None})
    change["images"] = _images_in(body)
    change["labels"] = _labels(body)


def changes_for(index: int, command: ProposedCommand) -> list[dict[str, Any]]:
    """One change per object the command touches; a command we cannot read still yields one change."""
    try:
        parsed = parse_kubectl(command.argv)
    except CommandRejected as exc:
        change = blank_change(index, command, None)
        change["parse_error"] = str(exc)
        return [change]
    changes: list[dict[str, Any]] = []
    refs: list[ResourceRef | None] = [*parsed.resources] or [None]
    for ref in refs:
        change = blank_change(index, command, parsed)
        if ref is not None:
            change.update(resource=ref.resource, kind=kind_of(ref.resource) or ref.type, name=ref.name or "")
        _command_effect(change, parsed)
        changes.append(change)
    if parsed.uses_stdin and command.stdin:
        objects, error = _manifest_objects(command.stdin)
        if error:
            changes[0]["parse_error"] = error
        manifest_changes = [_manifest_change(index, command, parsed, obj) for obj in objects]
        if manifest_changes and not parsed.resources:
            changes = manifest_changes  # the placeholder change stood for "whatever the manifest holds"
        else:
            changes += manifest_changes
    return changes


def _manifest_change(
    index: int, command: ProposedCommand, parsed: ParsedCommand, obj: dict[str, Any]
) -> dict[str, Any]:
    change = blank_change(index, command, parsed)
    raw_meta = obj.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else ""
    api_version = str(obj.get("apiVersion", ""))
    resource = resource_of_kind(kind, api_version.rpartition("/")[0]) if kind else ""
    manifest = {k: v for k, v in obj.items() if k not in ("data", "stringData")} if kind == "Secret" else obj
    change.update(
        kind=kind,
        resource=resource,
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace") or change["namespace"]),
        manifest=manifest,
        images=_images_in(obj),
        labels=_labels(obj),
        from_manifest=True,
        **_replica_fields(obj),
    )
    return change


def _command_effect(change: dict[str, Any], parsed: ParsedCommand) -> None:
    """Replicas and images a command line sets by itself (no manifest)."""
    what = parsed.command
    if parsed.verb == "scale":
        change["replicas"] = _int(_flag(parsed, "replicas"))
    elif what == "create deployment":
        change["replicas"] = _int(_flag(parsed, "replicas"))
        change["images"] = [image_ref(v) for v in parsed.flag_values("image") if v]
    elif what in ("create job", "create cronjob") or parsed.verb == "run":
        change["images"] = [image_ref(v) for v in parsed.flag_values("image") if v]
    elif parsed.verb == "autoscale":
        change["min_replicas"] = _int(_flag(parsed, "min"))
        change["max_replicas"] = _int(_flag(parsed, "max"))
    elif what == "set image":
        pairs = [a for a in parsed.args if "=" in a and "/" not in a.split("=", 1)[0]]
        change["images"] = [image_ref(a.split("=", 1)[1], a.split("=", 1)[0]) for a in pairs]
    elif parsed.verb == "patch":
        patch = _flag(parsed, "patch")
        if patch is not None:
            _patch_effect(change, patch, _flag(parsed, "type"))


def changes_of(commands: Iterable[ProposedCommand]) -> list[dict[str, Any]]:
    """Every change of a proposal, commands numbered from 1 as the proposal shows them."""
    return [c for i, cmd in enumerate(commands, 1) for c in changes_for(i, cmd)]


def describe(change: dict[str, Any]) -> str:
    """Short text naming a change in a policy message: `command 2 (scale deployments/api in shop)`."""
    target = f"{change['resource']}/{change['name']}" if change["name"] else (change["kind"] or change["resource"])
    where = f" in {change['namespace']}" if change["namespace"] else ""
    return f"command {change['index']} ({change['command']} {target}{where})".replace("  ", " ")


def to_json(change: dict[str, Any]) -> str:
    return json.dumps(change, sort_keys=True, default=str)
