"""The objects kubectl would read from a manifest on stdin (`kubectl apply -f -`), failing closed.

Risk, policies, drift, snapshots, replay and the dry-run comparison all see a manifest's objects
through this module. The stream is split and read by `operate_mcp.manifest_stream`, exactly as kubectl
reads it (the redactor shares that reader); here each document becomes objects: any object with an
`items` field is a list whose items kubectl applies, and every object needs a valid apiVersion, kind
and metadata.name. What cannot be read exactly is refused with the document number and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from operate_mcp.manifest_stream import HOW_TO_WRITE, Document, ManifestError, read_documents, shown

__all__ = ["ManifestError", "ManifestObject", "describe_objects", "parse_manifests"]

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_GROUP = rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*"
_API_VERSION = re.compile(rf"^(?:{_GROUP}/)?{_DNS_LABEL}$")
_KIND = re.compile(r"^[A-Za-z][-A-Za-z0-9]{0,62}$")
_NAMESPACE = re.compile(rf"^{_DNS_LABEL}$")
# Object names differ by kind (RBAC allows ':'); the API server checks the rest. These never pass.
_BAD_NAME = re.compile(r"[/%\s\x00-\x1f\x7f]|^\.\.?$")


class ManifestObject(BaseModel):
    """One object kubectl would send to the API server, as read from stdin (list items already expanded)."""

    model_config = ConfigDict(frozen=True)

    api_version: str
    kind: str
    name: str
    namespace: str | None = None  # None: the command's -n (or the context's namespace), or cluster-scoped
    body: dict[str, Any]
    document: int  # 1-based position of its document in the stream, for messages

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def get_as(self) -> str:
        """How `kubectl get` is asked for exactly this kind: `deployment.v1.apps`, or `configmap` for the core group."""
        version = self.api_version.rpartition("/")[2]
        return f"{self.kind.lower()}.{version}.{self.group}" if self.group else self.kind.lower()

    @property
    def name_ref(self) -> str:
        """How `kubectl ... -o name` prints the object: `deployment.apps/web`, `configmap/settings`."""
        kind = f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()
        return f"{kind}/{self.name}"


def describe_objects(objects: Sequence[ManifestObject], namespace: str | None = None) -> list[str]:
    """`Kind namespace/name` per object, for a person approving; `namespace` fills objects that set none."""
    out: list[str] = []
    for obj in objects:
        ns = obj.namespace or namespace
        out.append(f"{obj.kind} {ns}/{obj.name}" if ns else f"{obj.kind} {obj.name} (no namespace in the manifest)")
    return out


def parse_manifests(text: str) -> list[ManifestObject]:
    """Every object kubectl would read from `text` on stdin, in order, or ManifestError saying why not.

    An empty stream is refused, as is any document that is not an object with string `apiVersion`,
    `kind` and `metadata.name`. Objects with only `metadata.generateName` are refused: the server
    would pick the name, so nobody could review, read, snapshot or roll back that exact object.
    """
    objects: list[ManifestObject] = []
    for doc in read_documents(text):
        objects += _objects_of(doc)
    if not objects:
        raise ManifestError(f"the manifest on stdin holds no objects; {HOW_TO_WRITE}")
    return objects


# --------------------------------------------------------------------------- objects


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _objects_of(doc: Document) -> list[ManifestObject]:
    where = f"document {doc.number} (line {doc.line}) of the manifest"
    value = doc.value
    if not isinstance(value, dict):
        raise ManifestError(f"{where} is {_type_name(value)}, not an object with apiVersion, kind and metadata")
    if "items" not in value:
        return [_object(value, doc.number, where)]
    # kubectl treats any object with an `items` field as a list; items without kind and apiVersion take the
    # list's kind (minus "List") and apiVersion.
    api_version = _identity(value, "apiVersion", where)
    kind = _identity(value, "kind", where)
    out: list[ManifestObject] = []
    for i, item in enumerate(_items(value, where), 1):
        if not any(isinstance(item.get(k), str) and item.get(k) for k in ("kind", "apiVersion")):
            item = {**item, "apiVersion": api_version, "kind": kind.removesuffix("List")}
        if isinstance(item.get("items"), list):
            raise ManifestError(
                f"{where}, item {i} is a list inside a list; kubectl versions differ on those (1.34 refuses them), "
                "so list its items directly"
            )
        out.append(_object(item, doc.number, f"{where}, item {i}"))
    return out


def _items(value: dict[str, Any], where: str) -> list[dict[str, Any]]:
    items = value.get("items")
    if not isinstance(items, list):
        raise ManifestError(
            f"{where} has an `items` field that is {_type_name(items)}; kubectl reads any object with `items` as a "
            "list, so `items` must be a list of objects"
        )
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ManifestError(f"{where}, item {i} is {_type_name(item)}, not an object")
    return items


def _identity(value: dict[str, Any], key: str, where: str) -> str:
    got = value.get(key)
    if not isinstance(got, str) or not got:
        what = "missing" if got is None else f"{_type_name(got)}, not a string"
        raise ManifestError(f"{where}: `{key}` is {what}; every object needs apiVersion, kind and metadata.name")
    pattern = _API_VERSION if key == "apiVersion" else _KIND
    if not pattern.match(got):
        raise ManifestError(f"{where}: `{key}` {shown(got)} is not a valid {key}")
    return got


def _object(value: dict[str, Any], number: int, where: str) -> ManifestObject:
    api_version = _identity(value, "apiVersion", where)
    kind = _identity(value, "kind", where)
    meta = value.get("metadata")
    if not isinstance(meta, dict):
        raise ManifestError(f"{where} ({kind}): `metadata` is {_type_name(meta)}; give metadata.name")
    name = meta.get("name")
    if name is None or name == "":
        if meta.get("generateName"):
            raise ManifestError(
                f"{where} ({kind}): metadata.generateName without metadata.name is refused: the server would pick "
                "the name, so nobody could review, observe or roll back that exact object; give metadata.name"
            )
        raise ManifestError(f"{where} ({kind}): metadata.name is missing")
    if not isinstance(name, str):
        raise ManifestError(f"{where} ({kind}): metadata.name is {_type_name(name)}, not a string; quote it")
    if len(name) > 253 or _BAD_NAME.search(name):
        raise ManifestError(f"{where} ({kind}): metadata.name {shown(name)} is not a valid object name")
    namespace = meta.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise ManifestError(f"{where} ({kind} {name}): metadata.namespace is {_type_name(namespace)}, not a string")
    if namespace and not _NAMESPACE.match(namespace):
        raise ManifestError(f"{where} ({kind} {name}): metadata.namespace {shown(namespace)} is not a valid namespace")
    return ManifestObject(
        api_version=api_version, kind=kind, name=name, namespace=namespace or None, body=value, document=number
    )
