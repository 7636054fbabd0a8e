"""Which commands touch a Secret, and what of a failed one may be shown.

The API server's answers about a Secret (validation errors above all) can quote its values. The
model's dry-run tools (kube/tools.py) and the proposal's dry-run (workflows/dryrun.py) both ask
here whether a command touches a Secret, and show such a command's failure as its status only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import yaml

from operate_mcp.errors import CommandRejected
from operate_mcp.kube.classifier import parse_kubectl
from operate_mcp.kube.runner import CommandResult
from operate_mcp.model.resources import canonical_resource

__all__ = ["SECRET_KINDS", "failure_status", "is_secret_resource", "manifest_has_secret", "touches_secret"]

SECRET_KINDS = {"secret", "secrets"}


def is_secret_resource(resource: str) -> bool:
    """Every spelling kubectl resolves to Secrets: secret, Secrets, secret.v1, secrets.v1., secrets.v1.core, ..."""
    return canonical_resource(resource) == "secrets" or resource.split(".")[0].lower() in SECRET_KINDS


def manifest_has_secret(text: str) -> bool:
    """Whether any document, list item or nested object in a manifest says it is a Secret.

    Walks the YAML node graph rather than the loaded data so a repeated `kind` key counts in every
    spelling (kubectl's decoders may keep another one than PyYAML), and `kind` matches in any case,
    as Go's JSON decoding does. A manifest we cannot read counts as a Secret: kubectl might read it.
    """
    try:
        stack: list[yaml.Node] = [n for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None]
    except yaml.YAMLError:
        return True
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if (
                    isinstance(key, yaml.ScalarNode)
                    and isinstance(value, yaml.ScalarNode)
                    and key.value.lower() == "kind"
                    and value.value.strip().lower() in ("secret", "secretlist")
                ):
                    return True
                stack += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    return False


def touches_secret(argv: Sequence[str], stdin: str | None = None) -> bool:
    """Whether a command names a Secret or feeds one on stdin. The API server's answers about a Secret
    (validation errors above all) can quote its values, so callers show such answers as status only."""
    try:
        parsed = parse_kubectl(argv)
    except CommandRejected:
        return True
    if any(is_secret_resource(r.type) or r.resource == "secrets" for r in parsed.resources):
        return True
    return stdin is not None and manifest_has_secret(stdin)


# The status reasons the API server sends (metav1.StatusReason) and their HTTP codes. Only these words
# are ever taken from a withheld answer, so nothing else in it can reach the model.
_STATUS_CODES = {
    "BadRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "NotAcceptable": 406,
    "AlreadyExists": 409,
    "Conflict": 409,
    "Gone": 410,
    "RequestEntityTooLarge": 413,
    "UnsupportedMediaType": 415,
    "Invalid": 422,
    "TooManyRequests": 429,
    "InternalError": 500,
    "ServerTimeout": 500,
    "ServiceUnavailable": 503,
    "Timeout": 504,
}
_SERVER_REASON = re.compile(r"Error from server \((\w+)\)")
_INVALID = re.compile(r"^The \w+ \"[^\"\n]*\" is invalid\b", re.M)


def failure_status(result: CommandResult) -> str:
    """A failed command as status and reason only, e.g. "Invalid (422)": no word of the message itself."""
    if result.timed_out:
        return "timed out"
    text = f"{result.stderr}\n{result.stdout}"
    found = _SERVER_REASON.search(text)
    reason = found.group(1) if found and found.group(1) in _STATUS_CODES else None
    if reason is None and _INVALID.search(text):
        reason = "Invalid"
    if reason is None:
        return f"kubectl error (exit {result.exit_code})"
    return f"{reason} ({_STATUS_CODES[reason]})"
