"""Server-side dry-run of one proposed command, exactly as written, by our code.

kubectl is asked for `-o name` as well, so it prints one `kind.group/name` line per object it would
touch. For a manifest on stdin those objects must be exactly the ones our parser read
(kube/manifests.py), which risk, policies and the approver see; any difference fails the dry-run,
and a failed dry-run blocks the proposal. Only kubectl's result lines are kept: never its raw
output, which for some commands carried Secret values to the client, the session and the model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from operate_mcp.errors import CommandRejected
from operate_mcp.kube.classifier import ParsedCommand, classify, parse_kubectl, with_server_dry_run
from operate_mcp.kube.manifests import ManifestObject, parse_manifests
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.secrets import failure_status, touches_secret
from operate_mcp.model.command import CommandClass, ProposedCommand
from operate_mcp.model.proposal import DryRunResult
from operate_mcp.redact import redact_text

KUBECTL_ERROR_CHARS = 300  # what is kept of kubectl's stderr when a dry-run fails
OWN_ERROR_CHARS = 600  # our own reasons (unreadable manifest, objects differ) say how to fix it
KEPT_LINES = 100

_REF = r"[a-z0-9][-a-z0-9.]*"
# `deployment.apps/web` (-o name); for commands that take no -o, `node/n1 cordoned (server dry run)`
# and delete's `deployment.apps "web" deleted from shop namespace (server dry run)`.
_NAME_LINE = re.compile(rf"^(?P<kind>{_REF})/(?P<name>[^\s/\"]+)$")
_RESULT_LINE = re.compile(rf"^(?P<kind>{_REF})/(?P<name>[^\s/\"]+) [a-z][-a-z0-9 ]* \(server dry run\)$")
_QUOTED_LINE = re.compile(rf"^(?P<kind>{_REF}) \"(?P<name>[^\s/\"]+)\" [a-z][-a-z0-9 ]* \(server dry run\)$")
_LINE_SHAPES = (_NAME_LINE, _RESULT_LINE, _QUOTED_LINE)
# Commands whose output objects are new ones derived from the manifest's (a Service, an HPA):
# only their number can be compared.
_DERIVING_VERBS = frozenset({"expose", "autoscale"})


def dry_run(kubectl: Kubectl, command: ProposedCommand, index: int) -> DryRunResult:
    try:
        parsed = parse_kubectl(command.argv)
        argv = _with_name_output(with_server_dry_run(command.argv))
        expected = parse_manifests(command.stdin or "") if parsed.uses_stdin else None
    except CommandRejected as exc:
        return DryRunResult(command_index=index, argv=list(command.argv), ok=False, output="", error=_own(str(exc)))
    result = kubectl.run(argv, stdin=command.stdin)
    refs, withheld = _result_refs(result.stdout)
    output = _shown_output(refs, withheld)
    if not result.ok:
        # The API server's errors about a Secret can quote its values (a JSON patch copying /data into a
        # validated field); they reach the model, so only status and reason are kept.
        if touches_secret(command.argv, command.stdin):
            error = f"the dry-run failed: {failure_status(result)} (details withheld: the command touches a Secret)"
        else:
            error = _kubectl_error(result.stderr, result.exit_code)
        return DryRunResult(command_index=index, argv=argv, ok=False, output=output, error=error)
    problem = _compare(expected, refs, parsed) if expected is not None else ""
    return DryRunResult(command_index=index, argv=argv, ok=not problem, output=output, error=problem)


def _with_name_output(argv: list[str]) -> list[str]:
    """`-o name` wherever kubectl takes it on this command and the line stays a dry run."""
    if parse_kubectl(argv).output == "name":
        return argv
    candidate = [*argv, "-o", "name"]
    return candidate if classify(candidate).command_class is CommandClass.DRY_RUN else argv


def _result_refs(stdout: str) -> tuple[list[str], int]:
    """The `kind.group/name` of each result line, and how many other lines were withheld."""
    refs: list[str] = []
    withheld = 0
    for line in (raw.strip() for raw in stdout.splitlines()):
        if not line:
            continue
        match = next((m for shape in _LINE_SHAPES if (m := shape.match(line))), None)
        if match is None:
            withheld += 1
        else:
            refs.append(f"{match['kind']}/{match['name']}")
    return refs, withheld


def _shown_output(refs: Sequence[str], withheld: int) -> str:
    lines = [redact_text(r) for r in refs[:KEPT_LINES]]
    if len(refs) > KEPT_LINES:
        lines.append(f"... and {len(refs) - KEPT_LINES} more object(s)")
    if withheld:
        lines.append(f"({withheld} other output line(s) withheld: only result lines are kept)")
    return "\n".join(lines)


def _kubectl_error(stderr: str, exit_code: int) -> str:
    """The first lines of kubectl's error, redacted and capped; never stdout."""
    lines = [line.strip() for line in redact_text(stderr).splitlines() if line.strip()][:3]
    text = " / ".join(lines) or f"kubectl exited {exit_code} without an error message"
    return text if len(text) <= KUBECTL_ERROR_CHARS else text[: KUBECTL_ERROR_CHARS - 1] + "…"


def _own(message: str) -> str:
    text = redact_text(message)
    return text if len(text) <= OWN_ERROR_CHARS else text[: OWN_ERROR_CHARS - 1] + "…"


def _listed(refs: Counter[str]) -> str:
    names = sorted(refs.elements())
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def _compare(objects: Sequence[ManifestObject], refs: Sequence[str], parsed: ParsedCommand) -> str:
    """Why the objects kubectl reported differ from the objects we read from stdin, or ""."""
    if parsed.verb in _DERIVING_VERBS:
        if len(refs) == len(objects):
            return ""
        return _own(
            f"kubectl's dry-run reported {len(refs)} object(s) for the {len(objects)} object(s) we read from stdin; "
            "what kubectl reads must be what is reviewed. Send plain YAML documents separated by '---'"
        )
    want = Counter(o.name_ref for o in objects)
    got = Counter(refs)
    unexpected, missing = got - want, want - got
    ignore_missing = parsed.verb == "delete" and any(
        f.name == "ignore-not-found" and f.value in (None, "1", "t", "T", "true", "True", "TRUE") for f in parsed.flags
    )
    if ignore_missing:
        missing = Counter()
    if not unexpected and not missing:
        return ""
    parts = []
    if unexpected:
        parts.append(f"it reported {_listed(unexpected)}, which the manifest we read does not hold")
    if missing:
        parts.append(f"it did not report {_listed(missing)}, which we read from the manifest")
    return _own(
        "kubectl's dry-run read other objects from stdin than we did: "
        + "; ".join(parts)
        + ". Risk, policies and the approver see only what we read, so this is refused; send plain YAML "
        "documents separated by '---', or a stream of JSON objects"
    )
