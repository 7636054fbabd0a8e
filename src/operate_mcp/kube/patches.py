"""A `kubectl patch -p` body read exactly as kubectl sends it to the API server, or refused.

kubectl sends a body that starts with `{` as written (JSON); anything else it converts from YAML with
go-yaml, which reads merge keys, tags, anchors and numbers (`1e3`) otherwise than PyYAML. A body judged
by one reading and run by another could say "restart" to us and "replicas: 0" to the cluster, so the
risk tier and the policies read it here, one way: strict JSON (no duplicate keys, no NaN), or YAML the
way go-yaml reads it (`manifest_stream`), one document.
"""

from __future__ import annotations

import json
from typing import Any

from operate_mcp.manifest_stream import HOW_TO_WRITE, ManifestError, read_documents

__all__ = ["UnreadablePatch", "patch_body", "sent_as_json"]


class UnreadablePatch(ValueError):
    """A patch body we cannot read exactly as kubectl sends it; the message says why."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice in one object, and decoders differ on which one counts")
    return dict(pairs)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_not_json)


def sent_as_json(text: str) -> bool:
    """Whether kubectl sends this body as written (it starts with `{` after spaces and line breaks)."""
    return text.lstrip(" \t\r\n").startswith("{")


def patch_body(text: str) -> Any:
    """The patch as the API server receives it; UnreadablePatch when we cannot read it exactly."""
    if sent_as_json(text):
        try:
            return _STRICT_JSON.decode(text)
        except ValueError as exc:
            why = f"it starts with '{{', so kubectl sends it as written, and it is not strict JSON ({exc})"
            raise UnreadablePatch(why) from None
    try:
        documents = read_documents(text)
    except ManifestError as exc:
        reason = str(exc).replace("of the manifest", "of the patch").removesuffix(f"; {HOW_TO_WRITE}")
        raise UnreadablePatch(f"read as YAML the way kubectl reads it, {reason}") from None
    if len(documents) != 1:
        raise UnreadablePatch(f"it holds {len(documents)} YAML documents where kubectl reads one")
    return documents[0].value
