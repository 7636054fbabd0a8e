"""The kubectl grammar the classifier reads: commands, their flags, and what a proposal may carry.

Data, not logic: which commands exist and which of them change the cluster, which flags each takes
and whether a flag consumes a value (that decides which token kubectl treats as a target), the
flags a mutating proposal may carry, and the commands and flags no proposal may contain, each with
the reason a person is shown. kube/classifier.py parses and judges command lines against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

__all__ = [
    "COMMANDS",
    "FORBIDDEN_COMMANDS",
    "FORBIDDEN_FLAGS",
    "GLOBAL_FLAGS",
    "JSON_PATCH_OPS",
    "MAX_VERBOSITY",
    "PRINTING_FLAGS",
    "PROPOSAL_GLOBALS",
    "REFUSED_ON_CHANGES",
    "SECRET_VALUE_FLAGS",
    "CommandSpec",
    "FlagKind",
    "FlagSet",
    "Shape",
    "forbidden_flag_reason",
    "merge",
]

# --------------------------------------------------------------------------- flag tables
# Taken from `kubectl <command> --help` (v1.32). Unknown flags are rejected rather than guessed,
# because guessing whether a flag takes a value decides which token kubectl treats as a target.


class FlagKind(Enum):
    """How pflag reads a flag: whether it takes the next token as its value."""

    VALUE = "value"  # --flag value, --flag=value, -fvalue, -f=value
    BOOL = "bool"  # --flag, --flag=false; never consumes the next token
    OPTIONAL = "optional"  # has a default when bare (pflag NoOptDefVal): only --flag=value sets it


@dataclass(frozen=True)
class FlagSet:
    """The flags a command accepts (long name -> kind) and their one-letter shorthands."""

    kinds: Mapping[str, FlagKind]
    shorts: Mapping[str, str]


def _flags(values: str = "", bools: str = "", optional: str = "") -> FlagSet:
    kinds: dict[str, FlagKind] = {}
    shorts: dict[str, str] = {}
    for spec, kind in ((values, FlagKind.VALUE), (bools, FlagKind.BOOL), (optional, FlagKind.OPTIONAL)):
        for item in spec.split():
            name, _, short = item.partition(":")
            kinds[name] = kind
            if short:
                shorts[short] = name
    return FlagSet(kinds, shorts)


def _words(*lines: str) -> frozenset[str]:
    return frozenset(word for line in lines for word in line.split())


def merge(*sets: FlagSet) -> FlagSet:
    """One flag set holding all of them, as cobra merges a command's flags with the inherited ones."""
    kinds: dict[str, FlagKind] = {}
    shorts: dict[str, str] = {}
    for s in sets:
        kinds.update(s.kinds)
        shorts.update(s.shorts)
    return FlagSet(kinds, shorts)


# Global flags, including the forbidden ones: they must parse so the verdict can name them.
GLOBAL_FLAGS = _flags(
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
_CREATE_SUB = merge(_PRINT, _DRY, _FM, _VALIDATE, _flags(bools="save-config"))
_LABELLING = merge(
    _PRINT,
    _FILES,
    _DRY,
    _FM,
    _SEL,
    _flags("field-selector resource-version", "all all-namespaces:A list local overwrite"),
)

# How positional arguments name targets.
Shape = Literal["resources", "pairs", "taints", "last", "name", "nodes", "pod", "typed", "can-i", "explain", "none"]


@dataclass(frozen=True)
class CommandSpec:
    """One kubectl command (or subcommand): its flags, whether it changes the cluster, how its arguments
    name targets, and its subcommands."""

    name: str
    flags: FlagSet
    mutating: bool = False
    shape: Shape = "resources"
    implied_type: str | None = None
    subcommands: Mapping[str, CommandSpec] = field(default_factory=dict)
    subcommand_required: bool = False
    # Mutating commands only: the flags (long names) a proposal may carry besides PROPOSAL_GLOBALS.
    proposal_flags: frozenset[str] | None = None

    @property
    def accepts_dry_run(self) -> bool:
        return "dry-run" in self.flags.kinds


def _cmd(
    name: str,
    *flag_sets: FlagSet,
    mutating: bool = False,
    shape: Shape = "resources",
    implied_type: str | None = None,
    subs: Sequence[tuple[str, CommandSpec]] = (),
    required: bool = False,
    allowed: str = "",
) -> CommandSpec:
    """A command; a mutating one may carry only the flags in `allowed` (and the proposal globals).

    The allow-list is checked against the flag table here, so a misspelt entry fails at import
    instead of silently allowing nothing.
    """
    flags = merge(*flag_sets)
    proposal_flags = _words(allowed) if mutating else None
    if not mutating and allowed:
        raise ValueError(f"kubectl {name} only reads; an allow-list of flags means nothing on it")
    unknown = sorted((proposal_flags or frozenset()) - set(flags.kinds))
    if unknown:
        raise ValueError(f"allow-list of kubectl {name} names flags it does not have: {', '.join(unknown)}")
    return CommandSpec(name, flags, mutating, shape, implied_type, dict(subs), required, proposal_flags)


def _sub(names: str, command: CommandSpec) -> list[tuple[str, CommandSpec]]:
    """Register a subcommand under its name and kubectl's aliases for it."""
    return [(n, command) for n in names.split()]


def _create(
    name: str, values: str = "", bools: str = "", implied_type: str | None = None, allowed: str | None = None
) -> CommandSpec:
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


def _setter(name: str, shape: Shape, *extra: FlagSet, allowed: str = "") -> CommandSpec:
    return _cmd(name, _PRINT, _DRY, _FM, _flags(bools="all local"), *extra, mutating=True, shape=shape, allowed=allowed)


_ROLLOUT_CHANGE = (_FILES, _PRINT, _FM, _SEL)

COMMANDS: dict[str, CommandSpec] = {
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
                        # no --from/--keys/--prefix: see REFUSED_ON_CHANGES["from"].
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
FORBIDDEN_COMMANDS: dict[str, str] = {
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

_VMODULE = (
    "raises log verbosity per source file, and above 5 kubectl logs HTTP requests and responses "
    "(Secret data included); use -v=5 or less"
)
# Flags (long names) that may never appear in a proposal, with the reason.
FORBIDDEN_FLAGS: dict[str, str] = {
    **dict.fromkeys(
        _words(
            "token as as-group as-uid as-user-extra user username password client-certificate client-key",
            "certificate-authority insecure-skip-tls-verify insecure-skip-tls-verify-backend tls-server-name",
        ),
        "overrides the identity or TLS checks kubectl uses; commands run as the server is configured",
    ),
    **dict.fromkeys(
        _words("kubeconfig server cluster context kuberc"),
        "points kubectl at another cluster or configuration; commands run against the configured one",
    ),
    **dict.fromkeys(
        _words("cache-dir profile profile-output log-dir log-file output-directory"),
        "makes kubectl write files on the server's disk",
    ),
    **dict.fromkeys(
        _words("kustomize from-file from-env-file patch-file cert key"),
        "makes kubectl read local files or URLs; manifests and data go through stdin",
    ),
    "raw": "sends a request to an arbitrary API path, outside the resources the classifier understands",
    "edit": "opens an interactive editor",
    "vmodule": _VMODULE,
}


def forbidden_flag_reason(name: str) -> str | None:
    """Why a flag (long name) may never appear in a proposal, or None if it may."""
    return FORBIDDEN_FLAGS.get(name)


# --------------------------------------------------------------------------- what a proposal may carry

# Flags any proposal may carry on a mutating command, besides the command's own allow-list. Their values
# are judged by the classifier: --dry-run server or client only, -o name only, -v up to MAX_VERBOSITY.
PROPOSAL_GLOBALS = _words("namespace request-timeout v log-flush-frequency dry-run output")
# Why flags that are not on an allow-list are left off, where "not needed" is not the whole story.
REFUSED_ON_CHANGES: dict[str, str] = {
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

# Flags that make a command print objects back. On a mutating command (dry run or not) the printed
# object would carry whatever the server holds, Secret data included, into responses and records.
PRINTING_FLAGS = frozenset({"output", "template", "show-managed-fields", "allow-missing-template-keys"})
# Flags that put secret values on the command line, where they are shown, stored and logged.
SECRET_VALUE_FLAGS = frozenset({"from-literal", "from-env-file", "from-file", "docker-password"})
# The JSON patch operations a patch may use: copy, move and test read stored values (a Secret's data).
JSON_PATCH_OPS = frozenset({"add", "replace", "remove"})

# kubectl logs request URLs from -v=6, headers from 7 and request and response bodies from 8: a dry
# run or a read at that level would write Secret data to stderr, which is shown and recorded.
MAX_VERBOSITY = 5
