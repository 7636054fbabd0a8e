"""The safety classifier for kubectl command lines, applied in code to every proposed command.

A command is an argv list run without a shell. It is parsed the way kubectl's flag parser
(cobra/pflag) reads it, so a flag cannot hide from us where kubectl would find it, and it gets a
class -- read, dry-run, mutating or forbidden -- with a reason a person can read.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field

from operate_mcp.errors import CommandRejected
from operate_mcp.model.command import Classification, CommandClass, ProposedCommand, command_digest, shell_quote

__all__ = [
    "Classification",
    "CommandClass",
    "ParsedCommand",
    "ParsedFlag",
    "ProposedCommand",
    "ResourceRef",
    "canonical_resource",
    "check_stdin",
    "classify",
    "classify_command",
    "command_digest",
    "parse_kubectl",
    "shell_quote",
    "with_server_dry_run",
]


class ParsedFlag(BaseModel):
    """One flag as kubectl would read it: long name after shorthand and ``_`` normalisation."""

    name: str
    value: str | None = None
    token: str
    index: int


class ResourceRef(BaseModel):
    """A target named on the command line; ``resource`` is the canonical plural, for policies."""

    type: str
    resource: str
    name: str | None = None


class ParsedCommand(BaseModel):
    """A kubectl command line taken apart: the command path, its targets and its flags."""

    argv: list[str]
    verb: str
    subverb: str | None = None
    resources: list[ResourceRef] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    trailing_args: list[str] = Field(default_factory=list)
    has_terminator: bool = False
    namespace: str | None = None
    all_namespaces: bool = False
    selector: str | None = None
    output: str | None = None
    dry_run: Literal["server", "client", "none"] | None = None
    uses_stdin: bool = False
    flags: list[ParsedFlag] = Field(default_factory=list)

    @property
    def command(self) -> str:
        """The command path as a person types it, e.g. ``rollout undo`` or ``create secret generic``."""
        return f"{self.verb} {self.subverb}" if self.subverb else self.verb

    @property
    def resource_types(self) -> list[str]:
        """Canonical resource types named on the line, in order, without repeats."""
        return list(dict.fromkeys(r.resource for r in self.resources))

    @property
    def names(self) -> list[str]:
        """Object names named on the line, in order, without repeats."""
        return list(dict.fromkeys(r.name for r in self.resources if r.name is not None))

    def flag_values(self, name: str) -> list[str | None]:
        """Every value given for a flag (long name), in order; kubectl uses the last."""
        return [f.value for f in self.flags if f.name == name]


# --------------------------------------------------------------------------- flag tables
# Taken from `kubectl <command> --help` (v1.32). Unknown flags are rejected rather than guessed,
# because guessing whether a flag takes a value decides which token kubectl treats as a target.


class _Kind(Enum):
    VALUE = "value"  # --flag value, --flag=value, -fvalue, -f=value
    BOOL = "bool"  # --flag, --flag=false; never consumes the next token
    OPTIONAL = "optional"  # has a default when bare (pflag NoOptDefVal): only --flag=value sets it


@dataclass(frozen=True)
class _FlagSet:
    kinds: Mapping[str, _Kind]
    shorts: Mapping[str, str]


def _flags(values: str = "", bools: str = "", optional: str = "") -> _FlagSet:
    kinds: dict[str, _Kind] = {}
    shorts: dict[str, str] = {}
    for spec, kind in ((values, _Kind.VALUE), (bools, _Kind.BOOL), (optional, _Kind.OPTIONAL)):
        for item in spec.split():
            name, _, short = item.partition(":")
            kinds[name] = kind
            if short:
                shorts[short] = name
    return _FlagSet(kinds, shorts)


def _words(*lines: str) -> frozenset[str]:
    return frozenset(word for line in lines for word in line.split())


def _merge(*sets: _FlagSet) -> _FlagSet:
    kinds: dict[str, _Kind] = {}
    shorts: dict[str, str] = {}
    for s in sets:
        kinds.update(s.kinds)
        shorts.update(s.shorts)
    return _FlagSet(kinds, shorts)


# Global flags, including the forbidden ones: they must parse so the verdict can name them.
_GLOBAL = _flags(
    values="namespace:n request-timeout v:v vmodule log-flush-frequency kubeconfig server:s token as "
    "as-group as-uid as-user-extra user cluster context certificate-authority client-certificate "
    "client-key username password tls-server-name cache-dir kuberc profile profile-output log-dir log-file",
    bools="insecure-skip-tls-verify disable-compression match-server-version warnings-as-errors help:h",
)
_PRINT = _flags("output:o template", "allow-missing-template-keys show-managed-fields")
_FILES = _flags("filename:f kustomize:k", "recursive:R")
_DRY = _flags(optional="dry-run")
_FM = _flags("field-manager")
_SEL = _flags("selector:l")
_VALIDATE = _flags(optional="validate")
_CASCADE = _flags(optional="cascade")
_CREATE_SUB = _merge(_PRINT, _DRY, _FM, _VALIDATE, _flags(bools="save-config"))
_LABELLING = _merge(
    _PRINT,
    _FILES,
    _DRY,
    _FM,
    _SEL,
    _flags("field-selector resource-version", "all all-namespaces:A list local overwrite"),
)

# How positional arguments name targets.
_Shape = Literal["resources", "pairs", "taints", "last", "name", "nodes", "pod", "typed", "can-i", "explain", "none"]


@dataclass(frozen=True)
class _Command:
    name: str
    flags: _FlagSet
    mutating: bool = False
    shape: _Shape = "resources"
    implied_type: str | None = None
    subcommands: Mapping[str, _Command] = field(default_factory=dict)
    subcommand_required: bool = False
    # Mutating commands only: the flags (long names) a proposal may carry besides _PROPOSAL_GLOBALS.
    proposal_flags: frozenset[str] | None = None

    @property
    def accepts_dry_run(self) -> bool:
        return "dry-run" in self.flags.kinds


def _cmd(
    name: str,
    *flag_sets: _FlagSet,
    mutating: bool = False,
    shape: _Shape = "resources",
    implied_type: str | None = None,
    subs: Sequence[tuple[str, _Command]] = (),
    required: bool = False,
    allowed: str = "",
) -> _Command:
    """A command; a mutating one may carry only the flags in `allowed` (and the proposal globals).

    The allow-list is checked against the flag table here, so a misspelt entry fails at import
    instead of silently allowing nothing.
    """
    flags = _merge(*flag_sets)
    proposal_flags = _words(allowed) if mutating else None
    if not mutating and allowed:
        raise ValueError(f"kubectl {name} only reads; an allow-list of flags means nothing on it")
    unknown = sorted((proposal_flags or frozenset()) - set(flags.kinds))
    if unknown:
        raise ValueError(f"allow-list of kubectl {name} names flags it does not have: {', '.join(unknown)}")
    return _Command(name, flags, mutating, shape, implied_type, dict(subs), required, proposal_flags)


def _sub(names: str, command: _Command) -> list[tuple[str, _Command]]:
    """Register a subcommand under its name and kubectl's aliases for it."""
    return [(n, command) for n in names.split()]


def _create(
    name: str, values: str = "", bools: str = "", implied_type: str | None = None, allowed: str | None = None
) -> _Command:
    """A `create <kind>` generator: by default a proposal may carry its own value flags."""
    own = " ".join(item.partition(":")[0] for item in f"{values} {bools}".split())
    return _cmd(
        name,
        _CREATE_SUB,
        _flags(values, bools),
        mutating=True,
        shape="name",
        implied_type=implied_type or name,
        allowed=f"{own if allowed is None else allowed} field-manager validate save-config",
    )


def _setter(name: str, shape: _Shape, *extra: _FlagSet, allowed: str = "") -> _Command:
    return _cmd(name, _PRINT, _DRY, _FM, _flags(bools="all local"), *extra, mutating=True, shape=shape, allowed=allowed)


_ROLLOUT_CHANGE = (_FILES, _PRINT, _FM, _SEL)

_COMMANDS: dict[str, _Command] = {
    c.name: c
    for c in [
        _cmd(
            "get",
            _PRINT,
            _FILES,
            _SEL,
            _flags(
                "chunk-size field-selector label-columns:L raw sort-by subresource",
                "all-namespaces:A ignore-not-found no-headers output-watch-events server-print show-kind "
                "show-labels watch:w watch-only",
            ),
        ),
        _cmd("describe", _FILES, _SEL, _flags("chunk-size", "all-namespaces:A show-events")),
        _cmd(
            "logs",
            _flags(
                "container:c limit-bytes max-log-requests pod-running-timeout selector:l since since-time tail",
                "all-containers all-pods follow:f ignore-errors insecure-skip-tls-verify-backend prefix "
                "previous:p timestamps",
            ),
            shape="pod",
        ),
        _cmd(
            "events",
            _flags(
                "chunk-size for output:o template types",
                "all-namespaces:A allow-missing-template-keys no-headers show-managed-fields watch:w",
            ),
            shape="none",
        ),
        _cmd(
            "top",
            _flags(),
            subs=[
                *_sub(
                    "pod pods po",
                    _cmd(
                        "pod",
                        _flags(
                            "field-selector selector:l sort-by",
                            "all-namespaces:A containers no-headers sum use-protocol-buffers",
                        ),
                        shape="typed",
                        implied_type="pod",
                    ),
                ),
                *_sub(
                    "node nodes no",
                    _cmd(
                        "node",
                        _flags("selector:l sort-by", "no-headers show-capacity use-protocol-buffers"),
                        shape="typed",
                        implied_type="node",
                    ),
                ),
            ],
            required=True,
        ),
        _cmd("explain", _flags("api-version output:o", "recursive"), shape="explain"),
        _cmd(
            "api-resources",
            _flags("api-group categories output:o sort-by verbs", "cached namespaced no-headers"),
            shape="none",
        ),
        _cmd("api-versions", _flags(), shape="none"),
        _cmd("version", _flags("output:o", "client"), shape="none"),
        _cmd(
            "cluster-info",
            _flags(),
            shape="none",
            subs=_sub(
                "dump",
                _cmd(
                    "dump",
                    _PRINT,
                    _flags("namespaces output-directory pod-running-timeout", "all-namespaces:A"),
                    shape="none",
                ),
            ),
        ),
        _cmd(
            "auth",
            _flags(),
            subs=[
                *_sub(
                    "can-i",
                    _cmd(
                        "can-i",
                        _flags("subresource", "all-namespaces:A list no-headers quiet:q"),
                        shape="can-i",
                    ),
                ),
                *_sub("whoami", _cmd("whoami", _PRINT, shape="none")),
            ],
            required=True,
        ),
        _cmd(
            "rollout",
            _flags(),
            subs=[
                *_sub("status", _cmd("status", _FILES, _SEL, _flags("revision timeout", "watch:w"))),
                *_sub("history", _cmd("history", _FILES, _PRINT, _SEL, _flags("revision"))),
                *_sub(
                    "undo",
                    _cmd(
                        "undo", _FILES, _PRINT, _DRY, _SEL, _flags("to-revision"), mutating=True, allowed="to-revision"
                    ),
                ),
                *_sub("restart", _cmd("restart", *_ROLLOUT_CHANGE, mutating=True, allowed="selector")),
                *_sub("pause", _cmd("pause", *_ROLLOUT_CHANGE, mutating=True, allowed="selector")),
                *_sub("resume", _cmd("resume", *_ROLLOUT_CHANGE, mutating=True, allowed="selector")),
            ],
            required=True,
        ),
        _cmd(
            "diff",
            _FILES,
            _SEL,
            _flags(
                "concurrency field-manager prune-allowlist",
                "force-conflicts prune server-side show-managed-fields",
            ),
            shape="none",
        ),
        _cmd("wait", _PRINT, _FILES, _SEL, _flags("field-selector for timeout", "all all-namespaces:A local")),
        _cmd(
            "apply",
            _PRINT,
            _FILES,
            _DRY,
            _FM,
            _SEL,
            _VALIDATE,
            _CASCADE,
            _flags(
                "grace-period prune-allowlist subresource timeout",
                "all force force-conflicts openapi-patch overwrite prune server-side wait",
            ),
            mutating=True,
            shape="none",
            # --prune, -l and --all only make sense together; the reason and the risk tier flag them.
            allowed="filename server-side force-conflicts field-manager prune prune-allowlist selector all "
            "validate wait timeout",
            subs=[
                *_sub(
                    "set-last-applied",
                    _cmd(
                        "set-last-applied",
                        _DRY,
                        _PRINT,
                        _flags("filename:f", "create-annotation"),
                        mutating=True,
                        shape="none",
                        allowed="filename create-annotation",
                    ),
                ),
                *_sub(
                    "view-last-applied",
                    _cmd("view-last-applied", _FILES, _flags("output:o selector:l", "all")),
                ),
            ],
        ),
        _cmd(
            "create",
            _PRINT,
            _FILES,
            _DRY,
            _FM,
            _SEL,
            _VALIDATE,
            _flags("raw", "edit save-config windows-line-endings"),
            mutating=True,
            shape="none",
            allowed="filename field-manager validate save-config",
            subs=[
                *_sub(
                    "clusterrole",
                    _create("clusterrole", "aggregation-rule non-resource-url resource resource-name verb"),
                ),
                *_sub(
                    "clusterrolebinding",
                    _create("clusterrolebinding", "clusterrole group serviceaccount user"),
                ),
                *_sub(
                    "configmap cm",
                    _create(
                        "configmap",
                        "from-env-file from-file from-literal",
                        "append-hash",
                        allowed="from-literal append-hash",
                    ),
                ),
                *_sub("cronjob cj", _create("cronjob", "image restart schedule")),
                *_sub("deployment deploy", _create("deployment", "image port replicas:r")),
                *_sub("ingress ing", _create("ingress", "annotation class default-backend rule")),
                *_sub("job", _create("job", "from image")),
                *_sub("namespace ns", _create("namespace")),
                *_sub(
                    "poddisruptionbudget pdb",
                    _create("poddisruptionbudget", "max-unavailable min-available selector"),
                ),
                *_sub(
                    "priorityclass pc",
                    _create("priorityclass", "description preemption-policy value", "global-default"),
                ),
                *_sub("quota resourcequota", _create("quota", "hard scopes")),
                *_sub("role", _create("role", "resource resource-name verb")),
                *_sub("rolebinding", _create("rolebinding", "clusterrole group role serviceaccount user")),
                *_sub(
                    "secret",
                    _cmd(
                        "secret",
                        _flags(),
                        subs=[
                            *_sub(
                                "docker-registry",
                                _create(
                                    "docker-registry",
                                    "docker-email docker-password docker-server docker-username from-file",
                                    "append-hash",
                                    "secret",
                                    allowed="docker-email docker-server docker-username append-hash",
                                ),
                            ),
                            *_sub(
                                "generic",
                                _create(
                                    "generic",
                                    "from-env-file from-file from-literal type",
                                    "append-hash",
                                    "secret",
                                    allowed="type append-hash",
                                ),
                            ),
                            *_sub("tls", _create("tls", "cert key", "append-hash", "secret", allowed="append-hash")),
                        ],
                        required=True,
                    ),
                ),
                *_sub(
                    "service svc",
                    _cmd(
                        "service",
                        _flags(),
                        subs=[
                            *_sub("clusterip", _create("clusterip", "clusterip tcp", implied_type="service")),
                            *_sub(
                                "externalname",
                                _create("externalname", "external-name tcp", implied_type="service"),
                            ),
                            *_sub("loadbalancer", _create("loadbalancer", "tcp", implied_type="service")),
                            *_sub("nodeport", _create("nodeport", "node-port tcp", implied_type="service")),
                        ],
                        required=True,
                    ),
                ),
                *_sub("serviceaccount sa", _create("serviceaccount")),
            ],
        ),
        _cmd(
            "patch",
            _PRINT,
            _FILES,
            _DRY,
            _FM,
            _flags("patch:p patch-file subresource type", "local"),
            mutating=True,
            allowed="patch type subresource",
        ),
        _cmd(
            "replace",
            _PRINT,
            _FILES,
            _DRY,
            _FM,
            _VALIDATE,
            _CASCADE,
            _flags("grace-period raw subresource timeout", "force save-config wait"),
            mutating=True,
            shape="none",
            # --force deletes and re-creates (for immutable fields); the others tune that deletion.
            allowed="filename field-manager validate save-config subresource force grace-period cascade wait timeout",
        ),
        _cmd(
            "delete",
            _DRY,
            _FILES,
            _SEL,
            _CASCADE,
            _flags(
                "field-selector grace-period output:o raw timeout",
                "all all-namespaces:A force ignore-not-found interactive:i now wait",
            ),
            mutating=True,
            # --all and -A stay allowed: the reason names them and the risk tier is critical.
            allowed="filename selector field-selector all all-namespaces grace-period cascade wait "
            "ignore-not-found timeout force now",
        ),
        _cmd(
            "scale",
            _PRINT,
            _FILES,
            _DRY,
            _SEL,
            _flags("current-replicas replicas resource-version timeout", "all"),
            mutating=True,
            allowed="replicas current-replicas resource-version timeout",
        ),
        _cmd(
            "autoscale",
            _PRINT,
            _FILES,
            _DRY,
            _FM,
            _flags("cpu-percent max min name", "save-config"),
            mutating=True,
            allowed="min max cpu-percent name",
        ),
        _cmd(
            "set",
            _flags(),
            subs=[
                *_sub(
                    "env",
                    _setter(
                        "env",
                        "pairs",
                        _FILES,
                        _SEL,
                        _flags("containers:c env:e from keys prefix", "list overwrite resolve"),
                        # No --list/--resolve (they print current values, Secret references resolved), and
                        # no --from/--keys/--prefix: see _REFUSED_ON_CHANGES["from"].
                        allowed="containers env overwrite selector all",
                    ),
                ),
                *_sub("image", _setter("image", "pairs", _FILES, _SEL, allowed="selector all")),
                *_sub(
                    "resources",
                    _setter(
                        "resources",
                        "resources",
                        _FILES,
                        _SEL,
                        _flags("containers:c limits requests"),
                        allowed="containers limits requests selector all",
                    ),
                ),
                *_sub(
                    "selector",
                    _setter(
                        "selector",
                        "last",
                        _flags("filename:f resource-version", "recursive:R"),
                        allowed="resource-version all",
                    ),
                ),
                *_sub("serviceaccount sa", _setter("serviceaccount", "last", _FILES, allowed="all")),
                *_sub(
                    "subject",
                    _setter(
                        "subject",
                        "resources",
                        _FILES,
                        _SEL,
                        _flags("group serviceaccount user"),
                        allowed="group serviceaccount selector all",
                    ),
                ),
            ],
            required=True,
        ),
        # No --list: it prints every annotation, and kubectl.kubernetes.io/last-applied-configuration
        # holds the whole object as last applied, Secret data included.
        _cmd("label", _LABELLING, mutating=True, shape="pairs", allowed="overwrite resource-version selector all"),
        _cmd("annotate", _LABELLING, mutating=True, shape="pairs", allowed="overwrite resource-version selector all"),
        _cmd("cordon", _DRY, _SEL, mutating=True, shape="nodes", implied_type="node", allowed="selector"),
        _cmd("uncordon", _DRY, _SEL, mutating=True, shape="nodes", implied_type="node", allowed="selector"),
        _cmd(
            "drain",
            _DRY,
            _SEL,
            _flags(
                "chunk-size grace-period pod-selector skip-wait-for-delete-timeout timeout",
                "delete-emptydir-data disable-eviction force ignore-daemonsets",
            ),
            mutating=True,
            shape="nodes",
            implied_type="node",
            # Not --disable-eviction: it deletes pods past their PodDisruptionBudgets.
            allowed="ignore-daemonsets delete-emptydir-data force grace-period timeout pod-selector selector "
            "skip-wait-for-delete-timeout",
        ),
        _cmd(
            "taint",
            _PRINT,
            _DRY,
            _FM,
            _SEL,
            _VALIDATE,
            _flags(bools="all overwrite"),
            mutating=True,
            shape="taints",
            allowed="overwrite selector all",
        ),
        _cmd(
            "expose",
            _PRINT,
            _FILES,
            _DRY,
            _FM,
            _flags(
                "cluster-ip external-ip labels:l load-balancer-ip name override-type overrides port protocol "
                "selector session-affinity target-port type",
                "save-config",
            ),
            mutating=True,
            allowed="port target-port protocol type name selector labels cluster-ip external-ip load-balancer-ip "
            "session-affinity",
        ),
    ]
}

# Commands kubectl has that no proposal may contain, with the reason a person is shown.
_FORBIDDEN_COMMANDS: dict[str, str] = {
    "exec": "runs commands inside containers",
    "cp": "copies files between containers and the server's own disk",
    "attach": "attaches to the terminal of a running container",
    "port-forward": "opens network tunnels from the server into the cluster",
    "proxy": "opens a proxy to the API server on the server's network",
    "debug": "starts debug containers and copies of workloads with access to their processes",
    "run": "starts arbitrary pods; propose a manifest on stdin with kubectl apply -f - instead",
    "edit": "opens an interactive editor",
    "plugin": "lists or runs kubectl plugins, which are arbitrary programs",
    "config": "reads and changes kubeconfig files, which hold credentials",
    "kustomize": "builds from local directories or URLs; send the rendered manifest on stdin instead",
    "certificate": "approves or denies certificate requests, which grants or withholds cluster credentials",
    "completion": "prints shell code and does nothing on the cluster",
    "alpha": "runs alpha features outside what the classifier models",
    "options": "prints help and does nothing on the cluster",
    "help": "prints help and does nothing on the cluster",
    "auth reconcile": "rewrites RBAC roles and bindings wholesale",
    "create token": "mints a service-account bearer token",
    "apply edit-last-applied": "opens an interactive editor",
}

_CREDENTIAL_FLAGS = _words(
    "token as as-group as-uid as-user-extra user username password client-certificate client-key",
    "certificate-authority insecure-skip-tls-verify insecure-skip-tls-verify-backend tls-server-name",
)
_TARGET_FLAGS = _words("kubeconfig server cluster context kuberc")
_LOCAL_WRITE_FLAGS = _words("cache-dir profile profile-output log-dir log-file output-directory")
_LOCAL_READ_FLAGS = _words("kustomize from-file from-env-file patch-file cert key")


def _forbidden_flag_reason(name: str) -> str | None:
    """Why a flag (long name) may never appear in a proposal, or None if it may."""
    if name in _CREDENTIAL_FLAGS:
        return "overrides the identity or TLS checks kubectl uses; commands run as the server is configured"
    if name in _TARGET_FLAGS:
        return "points kubectl at another cluster or configuration; commands run against the configured one"
    if name in _LOCAL_WRITE_FLAGS:
        return "makes kubectl write files on the server's disk"
    if name in _LOCAL_READ_FLAGS:
        return "makes kubectl read local files or URLs; manifests and data go through stdin"
    if name == "raw":
        return "sends a request to an arbitrary API path, outside the resources the classifier understands"
    if name == "edit":
        return "opens an interactive editor"
    if name == "vmodule":
        return (
            "raises log verbosity per source file, and above 5 kubectl logs HTTP requests and responses "
            "(Secret data included); use -v=5 or less"
        )
    return None


# --------------------------------------------------------------------------- resources

_RESOURCE_ALIASES: dict[str, str] = {
    alias: plural
    for plural, aliases in {
        "pods": "pod po",
        "services": "service svc",
        "deployments": "deployment deploy",
        "replicasets": "replicaset rs",
        "statefulsets": "statefulset sts",
        "daemonsets": "daemonset ds",
        "jobs": "job",
        "cronjobs": "cronjob cj",
        "configmaps": "configmap cm",
        "secrets": "secret",
        "namespaces": "namespace ns",
        "nodes": "node no",
        "persistentvolumeclaims": "persistentvolumeclaim pvc",
        "persistentvolumes": "persistentvolume pv",
        "serviceaccounts": "serviceaccount sa",
        "ingresses": "ingress ing",
        "ingressclasses": "ingressclass",
        "horizontalpodautoscalers": "horizontalpodautoscaler hpa",
        "poddisruptionbudgets": "poddisruptionbudget pdb",
        "networkpolicies": "networkpolicy netpol",
        "events": "event ev",
        "endpoints": "ep",
        "endpointslices": "endpointslice",
        "replicationcontrollers": "replicationcontroller rc",
        "resourcequotas": "resourcequota quota",
        "limitranges": "limitrange limits",
        "storageclasses": "storageclass sc",
        "customresourcedefinitions": "customresourcedefinition crd crds",
        "roles": "role",
        "rolebindings": "rolebinding",
        "clusterroles": "clusterrole",
        "clusterrolebindings": "clusterrolebinding",
        "priorityclasses": "priorityclass pc",
        "certificatesigningrequests": "certificatesigningrequest csr",
        "leases": "lease",
        "podtemplates": "podtemplate",
        "controllerrevisions": "controllerrevision",
        "runtimeclasses": "runtimeclass",
        "apiservices": "apiservice",
        "validatingwebhookconfigurations": "validatingwebhookconfiguration",
        "mutatingwebhookconfigurations": "mutatingwebhookconfiguration",
    }.items()
    for alias in [plural, *aliases.split()]
}
_BUILTIN_GROUPS = _words(
    "core apps batch autoscaling policy networking.k8s.io rbac.authorization.k8s.io storage.k8s.io",
    "apiextensions.k8s.io coordination.k8s.io discovery.k8s.io scheduling.k8s.io certificates.k8s.io",
    "admissionregistration.k8s.io apiregistration.k8s.io node.k8s.io events.k8s.io",
)
_VERSION = re.compile(r"v\d+(?:(?:alpha|beta)\d+)?")
_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+~-]*$")


def canonical_resource(type_name: str) -> str:
    """The plural resource a type spelling means (``deploy``, ``deployments.apps`` -> ``deployments``).

    Built-in groups are dropped so policies need one spelling; custom resources keep their group
    (without the version), and their short names and singulars are left as written.
    """
    lowered = type_name.lower()
    head, _, rest = lowered.partition(".")
    if rest:
        version, _, after = rest.partition(".")
        group = (after or "core") if _VERSION.fullmatch(version) else rest
        if group not in _BUILTIN_GROUPS:
            return f"{head}.{group}"  # a custom resource: the version is not part of its identity
    return _RESOURCE_ALIASES.get(head, head)


def _ref(type_name: str, name: str | None) -> ResourceRef:
    for part in (type_name, name or ""):
        if part.startswith("-"):
            raise CommandRejected(f"'{part}' looks like a flag hidden in a resource name; refused as injection")
    if not _TYPE_RE.match(type_name):
        raise CommandRejected(f"'{type_name}' is not a resource type")
    if name is not None and not _NAME_RE.match(name):
        raise CommandRejected(f"'{name}' is not a valid object name")
    return ResourceRef(type=type_name, resource=canonical_resource(type_name), name=name)


def _resource_args(args: Sequence[str]) -> list[ResourceRef]:
    """Targets in kubectl's forms: ``TYPE/NAME ...`` or ``TYPE[,TYPE...] [NAME ...]``."""
    if not args:
        return []
    if any("/" in a for a in args):
        refs = []
        for a in args:
            type_name, slash, name = a.partition("/")
            if not slash or not type_name or not name or "/" in name:
                raise CommandRejected(
                    f"'{a}' mixes forms; once one target is TYPE/NAME, write every target as TYPE/NAME"
                )
            refs.append(_ref(type_name, name))
        return refs
    types = args[0].split(",")
    if any(not t for t in types):
        raise CommandRejected(f"'{args[0]}' has an empty resource type in its comma list")
    names = list(args[1:])
    if not names:
        return [_ref(t, None) for t in types]
    return [_ref(t, n) for t in types for n in names]


def _targets(command: _Command, args: list[str]) -> list[ResourceRef]:
    shape = command.shape
    if shape == "resources":
        return _resource_args(args)
    if shape in ("pairs", "taints"):
        seps = "=:" if shape == "taints" else "="
        return _resource_args([a for a in args if not (any(s in a for s in seps) or a.endswith("-"))])
    if shape == "last":
        return _resource_args(args[:-1]) if len(args) > 1 else []
    if shape in ("name", "typed", "nodes"):
        implied = command.implied_type or command.name
        if shape == "name" and len(args) != 1:
            raise CommandRejected(f"kubectl create {command.name} takes exactly one NAME, got {len(args)}")
        return [_ref(implied, a) for a in args]
    if shape == "pod":
        if not args:
            return []
        if len(args) > 2:
            raise CommandRejected("kubectl logs takes a pod (or TYPE/NAME) and at most one container name")
        first = args[0]
        return _resource_args([first]) if "/" in first else [_ref("pod", first)]
    if shape == "explain":
        if len(args) != 1:
            raise CommandRejected("kubectl explain takes exactly one TYPE[.FIELD...] argument")
        return [_ref(args[0].split(".", 1)[0], None)]
    if shape == "none" and args:
        raise CommandRejected(f"kubectl {command.name} takes no arguments, got '{args[0]}'")
    return []  # can-i: the arguments are a question, not targets


# --------------------------------------------------------------------------- parsing

_BOOL_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_BOOL_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _is_true(flag: ParsedFlag) -> bool:
    return flag.value is None or flag.value in _BOOL_TRUE


@dataclass
class _FlagScan:
    flags: list[ParsedFlag] = field(default_factory=list)
    positionals: list[tuple[int, str]] = field(default_factory=list)
    terminator: int | None = None


def _normalise(name: str) -> str:
    # kubectl installs pflag's word-separator normaliser: --dry_run is --dry-run.
    return name.replace("_", "-")


def _scan(
    argv: Sequence[str], start: int, flagset: _FlagSet, where: str, stop_at_positional: bool = False
) -> _FlagScan:
    """Read flags as pflag does; with stop_at_positional, stop at the first non-flag token."""
    out = _FlagScan()
    i = start
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            out.terminator = i
            break
        if not tok.startswith("-") or tok == "-":
            out.positionals.append((i, tok))
            if stop_at_positional:
                break
            i += 1
            continue
        if tok.startswith("--"):
            raw_name, eq, value = tok[2:].partition("=")
            name = _normalise(raw_name)
            if not name or name.startswith("-"):
                raise CommandRejected(f"'{tok}' is not a flag kubectl accepts (bad flag syntax)")
            kind = flagset.kinds.get(name)
            if kind is None:
                raise CommandRejected(f"unknown flag '--{name}' for {where}")
            flag_index = i
            flag_value: str | None = value if eq else None
            if not eq and kind is _Kind.VALUE:
                if i + 1 >= len(argv):
                    raise CommandRejected(f"flag '--{name}' needs a value")
                i += 1
                flag_value = argv[i]
            _check_bool(kind, name, flag_value)
            out.flags.append(ParsedFlag(name=name, value=flag_value, token=tok, index=flag_index))
            i += 1
            continue
        shorts = tok[1:]
        index = i
        while shorts:
            char = shorts[0]
            name_or_none = flagset.shorts.get(char)
            if name_or_none is None:
                raise CommandRejected(f"unknown shorthand flag '-{char}' in '{tok}' for {where}")
            name = name_or_none
            kind = flagset.kinds[name]
            if len(shorts) > 2 and shorts[1] == "=":
                flag_value, shorts = shorts[2:], ""
            elif kind is not _Kind.VALUE:
                flag_value, shorts = None, shorts[1:]
            elif len(shorts) > 1:
                flag_value, shorts = shorts[1:], ""
            elif i + 1 < len(argv):
                i += 1
                flag_value, shorts = argv[i], ""
            else:
                raise CommandRejected(f"flag '-{char}' needs a value")
            _check_bool(kind, name, flag_value)
            out.flags.append(ParsedFlag(name=name, value=flag_value, token=tok, index=index))
        i += 1
    return out


def _check_bool(kind: _Kind, name: str, value: str | None) -> None:
    if kind is _Kind.BOOL and value is not None and value not in _BOOL_TRUE | _BOOL_FALSE:
        raise CommandRejected(f"'--{name}={value}' is not a boolean; kubectl would reject it")


def _check_program(argv: Sequence[str]) -> None:
    if not argv:
        raise CommandRejected("the command is empty")
    if any(not isinstance(a, str) for a in argv):
        raise CommandRejected("every argument must be a string")
    program = argv[0]
    if program == "kubectl":
        return
    if program.rsplit("/", 1)[-1] == "kubectl" or program.endswith("kubectl.exe"):
        raise CommandRejected(
            f"'{program}' is a path; commands name plain 'kubectl' so the server runs its own trusted binary"
        )
    raise CommandRejected(f"'{program}' is not kubectl; only kubectl commands can be proposed")


def _parse(argv: Sequence[str]) -> tuple[ParsedCommand, _Command]:
    args = list(argv)
    _check_program(args)

    # Find the command path the way cobra does: skip flags known at each level.
    try:
        head = _scan(args, 1, _GLOBAL, "kubectl", stop_at_positional=True)
    except CommandRejected as exc:
        raise CommandRejected(f"{exc}; only global flags such as -n may come before the command name") from None
    if not head.positionals:
        raise CommandRejected("no kubectl command given (e.g. get, apply, scale)")
    index, verb = head.positionals[0]
    if verb in _FORBIDDEN_COMMANDS:
        raise CommandRejected(f"kubectl {verb} is forbidden: it {_FORBIDDEN_COMMANDS[verb]}")
    command = _COMMANDS.get(verb)
    if command is None:
        raise CommandRejected(
            f"'{verb}' is not a kubectl command this server allows; kubectl would look for a plugin program "
            f"named kubectl-{verb}"
        )
    path_indices = [index]
    path = [verb]
    while command.subcommands:
        step = _scan(
            args,
            index + 1,
            _merge(_GLOBAL, command.flags),
            f"kubectl {' '.join(path)}",
            stop_at_positional=True,
        )
        word = step.positionals[0][1] if step.positionals else None
        candidate = " ".join([*path, word]) if word else ""
        if word is not None and candidate in _FORBIDDEN_COMMANDS:
            raise CommandRejected(f"kubectl {candidate} is forbidden: it {_FORBIDDEN_COMMANDS[candidate]}")
        if word is not None and word in command.subcommands:
            index = step.positionals[0][0]
            command = command.subcommands[word]
            path_indices.append(index)
            path.append(command.name)
            continue
        if command.subcommand_required or (word is not None and command.shape == "none"):
            choices = ", ".join(sorted({c.name for c in command.subcommands.values()}))
            given = f"'{word}'" if word else "none"
            raise CommandRejected(f"kubectl {' '.join(path)} needs a subcommand ({choices}); got {given}")
        break

    scan = _scan(args, 1, _merge(_GLOBAL, command.flags), f"kubectl {' '.join(path)}")
    positional_indices = [i for i, _ in scan.positionals]
    if positional_indices[: len(path_indices)] != path_indices:
        raise CommandRejected("flags before the command name make the command ambiguous; put them after it")
    rest = [tok for _, tok in scan.positionals[len(path_indices) :]]
    trailing = args[scan.terminator + 1 :] if scan.terminator is not None else []

    def last(name: str) -> ParsedFlag | None:
        found = [f for f in scan.flags if f.name == name]
        return found[-1] if found else None

    namespace = last("namespace")
    all_ns = last("all-namespaces")
    # expose and create pdb use --selector for the object they create, not to pick targets.
    selector = last("selector") if command.name not in ("expose", "poddisruptionbudget") else None
    output = last("output")
    return (
        ParsedCommand(
            argv=args,
            verb=verb,
            subverb=" ".join(path[1:]) or None,
            resources=_targets(command, rest),
            args=rest,
            trailing_args=trailing,
            has_terminator=scan.terminator is not None,
            namespace=namespace.value if namespace else None,
            all_namespaces=bool(all_ns and _is_true(all_ns)),
            selector=selector.value if selector else None,
            output=output.value if output else None,
            dry_run=_dry_run_strategy(last("dry-run")),
            uses_stdin=any(f.name == "filename" and f.value == "-" for f in scan.flags),
            flags=scan.flags,
        ),
        command,
    )


def _dry_run_strategy(flag: ParsedFlag | None) -> Literal["server", "client", "none"] | None:
    """kubectl's reading of --dry-run: bare or boolean true means client, false means none."""
    if flag is None:
        return None
    value = flag.value
    if value is None or value in _BOOL_TRUE or value == "client":
        return "client"
    if value == "server":
        return "server"
    if value == "none" or value in _BOOL_FALSE:
        return "none"
    raise CommandRejected(f"'{flag.token}' is not a dry-run mode kubectl accepts; use --dry-run=server")


def parse_kubectl(argv: Sequence[str]) -> ParsedCommand:
    """Take a kubectl argv apart as kubectl would.

    Only the commands and flags the classifier models parse; anything else (unknown verbs,
    plugins, unknown flags, forbidden commands) raises CommandRejected saying why, because a
    command we cannot read exactly is a command we cannot judge.
    """
    return _parse(argv)[0]


# --------------------------------------------------------------------------- classification

_SHELL_METACHARACTERS = frozenset(";&|`$<>")
_PIECE_SPLIT = re.compile(r"[\s/,=:'\"()\[\]{}@!]+")


def _check_characters(argv: Sequence[str]) -> None:
    for position, arg in enumerate(argv[1:], 1):
        if arg == "":
            raise CommandRejected(f"argument {position} is empty")
        for ch in arg:
            if ch in _SHELL_METACHARACTERS:
                raise CommandRejected(
                    f"argument {arg!r} contains the shell metacharacter '{ch}'; commands run without a "
                    "shell, so this only signals an injection attempt"
                )
            category = unicodedata.category(ch)
            if category[0] == "C" or category in ("Zl", "Zp") or (ch.isspace() and ch != " "):
                raise CommandRejected(
                    f"argument {position} contains the control or invisible character U+{ord(ch):04X}; "
                    "what a person reads must be what runs"
                )


def _flag_like_pieces(token: str) -> list[str]:
    return [p for p in _PIECE_SPLIT.split(token) if p.startswith("-")]


def _named_flag(piece: str) -> str | None:
    """The forbidden flag a dash-led piece spells, in any of pflag's spellings, if any."""
    if piece.startswith("--"):
        name = _normalise(piece[2:].partition("=")[0]).lower()
        return f"--{name}" if _forbidden_flag_reason(name) else None
    if piece.startswith("-s"):
        return "-s"
    return None


def _check_hidden_flags(argv: Sequence[str]) -> None:
    """Refuse forbidden flags wherever they appear: as flags, inside names or values, after '--'."""
    try:
        terminator = argv.index("--", 1)
    except ValueError:
        terminator = len(argv)
    for position, token in enumerate(argv[1:], 1):
        pieces = _flag_like_pieces(token)
        for piece in pieces:
            flag = _named_flag(piece)
            if flag is None:
                continue
            why = _forbidden_flag_reason("server" if flag == "-s" else flag[2:])
            if position > terminator:
                raise CommandRejected(f"'{token}' after '--' is the flag {flag}, which {why}")
            if token.startswith(piece):
                raise CommandRejected(f"'{token}': {flag} {why}")
            raise CommandRejected(f"'{token}' hides the flag {flag} inside an argument; {flag} {why}")


def _check_forbidden_verb(argv: Sequence[str]) -> None:
    """Name a forbidden command first: it is the clearest reason, whatever else the line holds."""
    try:
        head = _scan(argv, 1, _GLOBAL, "kubectl", stop_at_positional=True)
    except CommandRejected:
        return  # the full parse explains it
    if head.positionals and head.positionals[0][1] in _FORBIDDEN_COMMANDS:
        verb = head.positionals[0][1]
        raise CommandRejected(f"kubectl {verb} is forbidden: it {_FORBIDDEN_COMMANDS[verb]}")


def _check_bare_dry_run(argv: Sequence[str]) -> None:
    """A bare --dry-run never takes the next token as its mode; say so before it misleads a reader."""
    for position, token in enumerate(argv[1:], 1):
        if _normalise(token) != "--dry-run":
            continue
        following = argv[position + 1] if position + 1 < len(argv) else ""
        if following in ("server", "client", "none"):
            raise CommandRejected(
                f"'{token} {following}' is not --dry-run={following}: kubectl reads a bare --dry-run as "
                f"client and '{following}' as a target; write --dry-run={following}"
            )
        raise CommandRejected(
            f"bare '{token}' is deprecated and means client; write --dry-run=server or --dry-run=client"
        )


# kubectl logs request URLs from -v=6, headers from 7 and request and response bodies from 8: a dry
# run or a read at that level would write Secret data to stderr, which is shown and recorded.
_MAX_VERBOSITY = 5
_LEVEL = re.compile(r"[+-]?[0-9]+")  # klog parses -v with strconv.ParseInt(value, 10, 32)
# -v/--v with a level inside a larger argument: "--namespace=x --v=9", "-l a=b,-v9".
_HIDDEN_VERBOSITY = re.compile(r"(?:^|[\s/,=:'\"()\[\]{}@!])(--?v)(?:\s*=\s*|\s+)?([+-]?[0-9]+)")


def _verbosity_problem(value: str | None) -> str | None:
    """Why a -v value may not run, or None when it is a level of 5 or less."""
    if value is None or not _LEVEL.fullmatch(value):
        return f"is not a log verbosity level; use an integer from 0 to {_MAX_VERBOSITY}"
    level = int(value)
    if level > _MAX_VERBOSITY:
        return (
            f"sets log verbosity {level}: above {_MAX_VERBOSITY} kubectl logs HTTP requests and responses to "
            f"stderr, Secret data included; use -v={_MAX_VERBOSITY} or less"
        )
    return None


def _check_hidden_verbosity(argv: Sequence[str]) -> None:
    """Refuse -v above 5 wherever it appears, like _check_hidden_flags does for forbidden flags."""
    try:
        terminator = argv.index("--", 1)
    except ValueError:
        terminator = len(argv)
    for position, token in enumerate(argv[1:], 1):
        for match in _HIDDEN_VERBOSITY.finditer(token):
            why = _verbosity_problem(match.group(2))
            if why is None:
                continue
            spelled = f"{match.group(1)}={match.group(2)}"
            if position > terminator:
                raise CommandRejected(f"'{token}' after '--' is the flag {spelled}, which {why}")
            if match.start(1) == 0:
                raise CommandRejected(f"'{token}' {why}")
            raise CommandRejected(f"'{token}' hides the flag {spelled} inside an argument; it {why}")


# Flags any proposal may carry on a mutating command, besides the command's own allow-list. Their values
# are judged elsewhere: --dry-run server or client only, -o name only, -v by _verbosity_problem.
_PROPOSAL_GLOBALS = _words("namespace request-timeout v log-flush-frequency dry-run output")
# Why flags that are not on an allow-list are left off, where "not needed" is not the whole story.
_REFUSED_ON_CHANGES: dict[str, str] = {
    "list": "prints the current labels, annotations or environment instead of changing them, and those hold "
    "Secret data (kubectl.kubernetes.io/last-applied-configuration, literal env values); read with kubectl get",
    "resolve": "prints the values behind Secret and ConfigMap references",
    "interactive": "asks for a y/N answer on stdin; the person approves the proposal, not a prompt",
    "local": "computes the change locally and never reaches the server; propose the change itself, our code "
    "dry-runs it on the server",
    # kubectl set env --from=secret/x reads the Secret when it runs and adds a secretKeyRef for every key it
    # finds: the approved command line does not show which variables appear, the set depends on the Secret
    # at run time, and the workload gains every value in it. Name each variable instead.
    "from": "reads a Secret or ConfigMap when kubectl runs and adds a variable for every key in it, so the "
    "approved command does not show what is set; name each variable (NAME=value), or patch valueFrom explicitly",
    "keys": "only works with --from, which is refused; name each variable (NAME=value)",
    "prefix": "only works with --from, which is refused; name each variable (NAME=value)",
    "disable-eviction": "deletes pods directly, past their PodDisruptionBudgets",
    "help": "prints help instead of running the command",
    "filename": "reads objects from a manifest; this command names its targets on the command line",
}


def _check_proposal_flags(parsed: ParsedCommand, command: _Command) -> None:
    """A mutating command carries only the flags on its allow-list: what it needs, nothing that prints."""
    allowed = command.proposal_flags or frozenset()
    for flag in parsed.flags:
        if flag.name in allowed or flag.name in _PROPOSAL_GLOBALS:
            continue
        shown = flag.token if flag.token.startswith("--") else f"{flag.token} (--{flag.name})"
        why = _REFUSED_ON_CHANGES.get(flag.name)
        if why is not None:
            raise CommandRejected(f"'{shown}' on kubectl {parsed.command} {why}")
        choices = ", ".join(f"--{name}" for name in sorted(allowed)) or "none besides -n and --request-timeout"
        raise CommandRejected(
            f"'{shown}' is not a flag a kubectl {parsed.command} proposal may carry; its flags are: {choices}"
        )


def _output_reads_a_file(output: str) -> bool:
    fmt = output.partition("=")[0].lower()
    return fmt.endswith("file")


# Flags that make a command print objects back. On a mutating command (dry run or not) the printed
# object would carry whatever the server holds, Secret data included, into responses and records.
_PRINTING_FLAGS = frozenset({"output", "template", "show-managed-fields", "allow-missing-template-keys"})
# Flags that put secret values on the command line, where they are shown, stored and logged.
_SECRET_VALUE_FLAGS = frozenset({"from-literal", "from-env-file", "from-file", "docker-password"})


def _check_mutating_prints_nothing(parsed: ParsedCommand) -> None:
    for flag in parsed.flags:
        if flag.name in _PRINTING_FLAGS and not (flag.name == "output" and flag.value == "name"):
            shown = flag.token if flag.token.startswith("--") else f"{flag.token} (--{flag.name})"
            raise CommandRejected(
                f"'{shown}' prints the changed object back, secret data included; mutating commands print "
                "nothing but their result line; read with kubectl get"
            )
    if parsed.verb == "create" and (parsed.subverb or "").startswith("secret"):
        for flag in parsed.flags:
            if flag.name in _SECRET_VALUE_FLAGS:
                raise CommandRejected(
                    f"'{flag.token}' puts secret values on the command line, where they are shown and recorded; "
                    "secrets arrive only as a Secret manifest on stdin (kubectl apply -f -)"
                )


JSON_PATCH_OPS = frozenset({"add", "replace", "remove"})


def _check_json_patch(parsed: ParsedCommand) -> None:
    """A JSON patch may only write: `copy`/`move` put a stored value (a Secret's data) where the API
    server's error quotes it, and `test` confirms a guessed value; unreadable patches are refused."""
    kinds = parsed.flag_values("type")
    if not kinds or (kinds[-1] or "").lower() != "json":  # kubectl reads the type case-insensitively
        return
    if "secrets" in parsed.resource_types:
        raise CommandRejected(
            "a JSON patch of a Secret is refused: its errors can quote the Secret's values; send the new Secret "
            "as a manifest (kubectl apply -f -)"
        )
    for text in parsed.flag_values("patch"):
        try:
            ops = json.loads(text or "")
        except ValueError:
            raise CommandRejected("the JSON patch (-p) is not valid JSON; kubectl would reject it") from None
        if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
            raise CommandRejected("a JSON patch (--type=json) is a list of operations, each a JSON object")
        for o in ops:
            if o.get("op") not in JSON_PATCH_OPS or "from" in o:
                op = o.get("op")
                raise CommandRejected(
                    f"JSON patch operation {op!r} is refused: a patch may add, replace or remove; copy, move and test "
                    "read stored values, which errors can reveal (Secret data)"
                )


def _verdict_for(parsed: ParsedCommand, command: _Command) -> Classification:
    path = f"kubectl {parsed.command}"
    for flag in parsed.flags:
        why = _forbidden_flag_reason(flag.name)
        if why is not None:
            shown = flag.token if flag.token.startswith("--") else f"{flag.token} (--{flag.name})"
            raise CommandRejected(f"'{shown}' {why}")
        if flag.name == "v":
            why = _verbosity_problem(flag.value)
            if why is not None:
                shown = flag.token if flag.value is None or flag.value in flag.token else f"{flag.token} {flag.value}"
                raise CommandRejected(f"'{shown}' {why}")
    for arg in [*parsed.args]:
        if _flag_like_pieces(arg):
            raise CommandRejected(f"argument '{arg}' looks like a flag hidden in a name; refused as injection")
    if parsed.has_terminator:
        raise CommandRejected(
            "'--' passes the rest of the line through unparsed; no command the agent may propose needs it"
        )
    for flag in parsed.flags:
        if flag.name == "filename" and flag.value != "-":
            where = "a URL" if flag.value and "://" in flag.value else "a local path"
            raise CommandRejected(f"'{flag.token}' reads {where} ({flag.value}); manifests go through stdin with -f -")
        if flag.name == "output" and flag.value and _output_reads_a_file(flag.value):
            raise CommandRejected(f"output format '{flag.value}' reads a template from a local file")
        if flag.name == "env" and flag.value == "-":
            raise CommandRejected(
                f"'{flag.token}' with '-' makes kubectl set env read variables from stdin; name each one (NAME=value)"
            )
    if command.mutating:
        _check_mutating_prints_nothing(parsed)
        _check_proposal_flags(parsed, command)
    if parsed.verb == "patch":
        _check_json_patch(parsed)
    for name, shown in (("namespace", "-n/--namespace"), ("dry-run", "--dry-run")):
        values = parsed.flag_values(name)
        if len(values) > 1:
            raise CommandRejected(f"{shown} is given {len(values)} times; say it once so the reader sees what runs")
    dry = [f for f in parsed.flags if f.name == "dry-run"]
    if dry:
        flag = dry[0]
        if flag.value is None:
            raise CommandRejected(
                f"bare '{flag.token}' is deprecated and means client; write --dry-run=server or --dry-run=client"
            )
        if parsed.dry_run == "none":
            raise CommandRejected(
                f"'{flag.token}' turns the dry run off; write the command without --dry-run, our code dry-runs it"
            )
        if flag.value not in ("server", "client"):
            raise CommandRejected(f"'{flag.token}' is a deprecated boolean spelling; write --dry-run=server")

    if not command.mutating:
        return Classification(command_class=CommandClass.READ, reason=f"{path} only reads from the cluster")
    if parsed.dry_run == "server":
        return Classification(
            command_class=CommandClass.DRY_RUN,
            reason=f"{path} with --dry-run=server is checked by the API server and nothing is persisted",
        )
    if parsed.dry_run == "client":
        return Classification(
            command_class=CommandClass.DRY_RUN,
            reason=f"{path} with --dry-run=client is computed locally and nothing is sent",
        )
    return Classification(command_class=CommandClass.MUTATING, reason=_mutating_reason(parsed, path))


def _mutating_reason(parsed: ParsedCommand, path: str) -> str:
    notes: list[str] = []
    if parsed.verb == "delete":
        if "namespaces" in parsed.resource_types:
            notes.append("deletes a namespace and everything in it")
        if any(f.name == "all" and _is_true(f) for f in parsed.flags):
            notes.append("deletes every matching resource (--all)")
        if parsed.all_namespaces:
            notes.append("acts in all namespaces (--all-namespaces)")
    if parsed.verb == "apply" and any(f.name == "prune" and _is_true(f) for f in parsed.flags):
        notes.append("may delete resources missing from the manifest (--prune)")
    if parsed.verb == "drain":
        notes.append("evicts every pod from the node")
    targets = ", ".join(f"{r.resource}/{r.name}" if r.name else r.resource for r in parsed.resources)
    where = f" in namespace {parsed.namespace}" if parsed.namespace else ""
    what = f" {targets}{where}" if targets else (" resources from stdin" + where if parsed.uses_stdin else where)
    sentence = f"{path} changes{what or ' cluster state'}"
    return "; ".join([sentence, *notes])


def classify(argv: Sequence[str]) -> Classification:
    """Give a command line its class and a short reason; forbidden wins over everything else.

    Never raises for bad input: whatever cannot be read exactly is forbidden, with the reason.
    """
    try:
        _check_program(argv)
        _check_characters(argv)
        _check_forbidden_verb(argv)
        _check_hidden_flags(argv)
        _check_hidden_verbosity(argv)
        _check_bare_dry_run(argv)
        parsed, command = _parse(argv)
        return _verdict_for(parsed, command)
    except CommandRejected as exc:
        return Classification(command_class=CommandClass.FORBIDDEN, reason=str(exc))


def check_stdin(argv: Sequence[str], stdin: str | None) -> None:
    """Refuse a command whose stdin does not match what it reads: `-f -` needs a manifest, and a
    manifest needs `-f -`.

    kubectl run by us never inherits the server's stdin (over stdio that is the MCP stream), so a
    `-f -` without a manifest would read nothing; a manifest without `-f -` would be shown to the
    person approving but never applied. Raises CommandRejected, also when argv cannot be parsed.
    """
    parsed = parse_kubectl(argv)
    spelled = next((f.token for f in parsed.flags if f.name == "filename" and f.value == "-"), None)
    if spelled is not None and stdin is None:
        raise CommandRejected(
            f"`{shell_quote(argv)}` reads a manifest from stdin ('{spelled}') but none is given; "
            "send the manifest with the command, or name the objects instead of -f -"
        )
    if spelled is not None and stdin is not None and not stdin.strip():
        raise CommandRejected(f"`{shell_quote(argv)}` reads a manifest from stdin, but the manifest given is empty")
    if spelled is None and stdin is not None:
        raise CommandRejected(
            f"a manifest is given for `{shell_quote(argv)}`, which does not read one; add -f - to apply it, "
            "or drop the manifest"
        )


def classify_command(argv: Sequence[str], stdin: str | None) -> Classification:
    """The verdict on a whole proposed command: its argv (see classify) and the manifest it carries.

    Never raises: a command line that is forbidden, or whose stdin does not match it, is forbidden
    with the reason.
    """
    verdict = classify(argv)
    if verdict.command_class is CommandClass.FORBIDDEN:
        return verdict
    try:
        check_stdin(argv, stdin)
        if stdin is not None:  # a manifest we cannot read exactly as kubectl does is refused (ManifestError)
            from operate_mcp.kube.manifests import parse_manifests

            parse_manifests(stdin)
    except CommandRejected as exc:
        return Classification(command_class=CommandClass.FORBIDDEN, reason=str(exc))
    return verdict


def with_server_dry_run(argv: Sequence[str]) -> list[str]:
    """The same command as a server-side dry run, for our code to run before anyone approves it.

    Any client dry-run is replaced; read and forbidden commands are refused, as are commands
    kubectl cannot dry-run (rollout restart/pause/resume), since the proposal must be checked as written.
    """
    verdict = classify(argv)
    if verdict.command_class in (CommandClass.READ, CommandClass.FORBIDDEN):
        raise CommandRejected(
            f"`{shell_quote(argv)}` is {verdict.command_class.value}, so there is nothing to dry-run: {verdict.reason}"
        )
    parsed, command = _parse(argv)
    if not command.accepts_dry_run:
        hint = ""
        if parsed.verb == "rollout":
            hint = (
                "; propose a kubectl patch of spec.template.metadata.annotations "
                "(kubectl.kubernetes.io/restartedAt) or spec.paused instead"
            )
        raise CommandRejected(f"kubectl {parsed.command} has no --dry-run, so it cannot be checked as written{hint}")
    drop = {f.index for f in parsed.flags if f.name == "dry-run"}
    result = [a for i, a in enumerate(argv) if i not in drop] + ["--dry-run=server"]
    check = classify(result)
    if check.command_class is not CommandClass.DRY_RUN:
        raise CommandRejected(f"adding --dry-run=server did not give a dry run: {check.reason}")
    return result


