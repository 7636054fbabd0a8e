"""What each proposed command would change, normalised so one policy rule covers every way to say it.

`kubectl scale --replicas=500`, a manifest with `replicas: 500` and a patch setting `/spec/replicas`
all become a change with `replicas: 500`; `set image`, manifests and patches all fill `images`.
Policies (CEL) evaluate over these dicts, so every key is always present (None when the command does not set
it). A change we cannot read exactly as kubectl and the API server read it (a YAML patch with merge keys or tags,
a replica count reset to its default, a JSON patch `copy`) carries `parse_error`: it is unknown, and every
policy fails on it (knowledge/policies.py), since null there would read as "unchanged".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from operate_mcp.errors import CommandRejected
from operate_mcp.kube.classifier import ParsedCommand, ResourceRef, parse_kubectl
from operate_mcp.kube.manifests import ManifestError, parse_manifests
from operate_mcp.kube.patches import UnreadablePatch, patch_body
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.resources import kind_of, resource_of_kind

_CONTAINER_KEYS = ("containers", "initContainers", "ephemeralContainers")
# Replica fields under spec, and the change key each fills ("instances" first: "replicas" wins when both are set).
_REPLICA_KEYS = {
    "instances": "replicas",
    "replicas": "replicas",
    "minReplicas": "min_replicas",
    "minReplicaCount": "min_replicas",
    "maxReplicas": "max_replicas",
    "maxReplicaCount": "max_replicas",
}
_REPLICA_PARENT = ["spec"]
_REPLICA_POINTERS = [["spec", key] for key in _REPLICA_KEYS]
_HOW_TO_PATCH = "write it as a JSON object, or a JSON patch list of add/replace/remove, with whole numbers"
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
    """A replica count as the API server takes it: a whole JSON number (`1e3` and `0.0` arrive as 1000 and 0)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
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


def _replicas_set(fragment: Any, doubts: list[str]) -> dict[str, int]:
    """The replica fields a patch fragment sets. Null (the API server resets the field to its default) or
    a value that is not a whole number leaves the count unknown: a doubt, never "unchanged"."""
    if not isinstance(fragment, dict) or "spec" not in fragment:
        return {}
    spec = fragment["spec"]
    if not isinstance(spec, dict):
        doubts.append("it sets spec to null" if spec is None else "it sets spec to something not an object")
        return {}
    found: dict[str, int] = {}
    for key, field in _REPLICA_KEYS.items():
        if key in spec:
            value = _int(spec[key])
            if spec[key] is None:
                doubts.append(f"it sets spec.{key} to null, which the API server resets to its default")
            elif value is None:
                doubts.append(f"it sets spec.{key} to {json.dumps(spec[key])}, not a whole number")
            else:
                found[field] = value
    return found


def _directives(body: Any, doubts: list[str]) -> None:
    """Strategic-merge directives that replace or delete what the patch does not spell out."""
    spec = body.get("spec") if isinstance(body, dict) else None
    for where, node in (("the patch", body), ("spec", spec)):
        if isinstance(node, dict):
            for key in ("$patch", "$retainKeys"):
                if key in node:
                    doubts.append(f"{where} carries the directive {key}, which drops fields it does not name")


def _pointer(path: Any, doubts: list[str]) -> list[str] | None:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        doubts.append(f"the path {json.dumps(path)} is not a JSON pointer")
        return None
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]] if path else []


def _nested(tokens: list[str], value: Any) -> Any:
    """The value placed at its path, so a fragment reads like a merge patch (an index under a container
    list becomes a one-item list)."""
    node = value
    for i in range(len(tokens) - 1, -1, -1):
        index = tokens[i].isdigit() or tokens[i] == "-"
        node = [node] if index and i > 0 and tokens[i - 1] in _CONTAINER_KEYS else {tokens[i]: node}
    return node


def _json_patch_fragments(ops: Any, doubts: list[str]) -> tuple[list[Any], list[dict[str, Any]]]:
    """Each add/replace as a fragment, plus images set at an `.../image` path outside a container list.
    copy and move take their value from the stored object, and removing a replica count resets it: doubts."""
    if not isinstance(ops, list):
        doubts.append("a JSON patch (--type=json) is a list of operations")
        return [], []
    fragments: list[Any] = []
    images: list[dict[str, Any]] = []
    for op in ops:
        if not isinstance(op, dict):
            doubts.append("an operation is not a JSON object")
            continue
        kind, tokens = op.get("op"), _pointer(op.get("path"), doubts)
        if kind == "test" or tokens is None:
            continue
        if kind in ("add", "replace"):
            fragment = _nested(tokens, op.get("value"))
            fragments.append(fragment)
            if tokens == _REPLICA_PARENT[: len(tokens)] and not _replica_keys_in(fragment):
                doubts.append(f"it {kind}s {op.get('path') or 'the whole object'} without a replica count, "
                              "which resets it to its default")
            if tokens[-1:] == ["image"] and isinstance(op.get("value"), str) and not _images_in(fragment):
                images.append(image_ref(op["value"]))
        elif kind == "remove":
            if any(tokens == watched[: len(tokens)] for watched in _REPLICA_POINTERS):
                doubts.append(f"it removes {op.get('path') or 'the whole object'}, which resets the replica count")
        else:
            doubts.append(f"the operation {json.dumps(kind)} takes its value from the stored object or is not one "
                          "the API server knows")
    return fragments, images


def _replica_keys_in(fragment: Any) -> bool:
    spec = fragment.get("spec") if isinstance(fragment, dict) else None
    return isinstance(spec, dict) and any(k in spec for k in _REPLICA_KEYS)


def _patch_effect(change: dict[str, Any], patch_text: str, patch_type: str | None) -> None:
    """What a patch sets, read as kubectl sends it. Whatever we cannot read exactly leaves the change
    unknown (`parse_error`), and every policy fails closed on it (knowledge/policies.py)."""
    try:
        body = patch_body(patch_text)
    except UnreadablePatch as exc:
        change["parse_error"] = f"the patch (-p) cannot be read exactly as kubectl reads it: {exc}; {_HOW_TO_PATCH}"
        return
    change["patch"] = body
    doubts: list[str] = []
    if (patch_type or "").lower() == "json" or isinstance(body, list):
        fragments, images = _json_patch_fragments(body, doubts)
    else:
        _directives(body, doubts)
        fragments, images = [body], []
    for fragment in fragments:
        change.update(_replicas_set(fragment, doubts))
        images += _images_in(fragment)
        change["labels"].update(_labels(fragment))
    change["images"] = images
    if doubts:
        change["parse_error"] = f"the patch (-p): {'; '.join(doubts)}; {_HOW_TO_PATCH}"


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
