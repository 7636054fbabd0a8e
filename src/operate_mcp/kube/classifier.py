"""The safety classifier for kubectl command lines, applied in code to every proposed command.

A command is an argv list run without a shell. It is parsed the way kubectl's flag parser
(cobra/pflag) reads it, so a flag cannot hide from us where kubectl would find it, and it gets a
class -- read, dry-run, mutating or forbidden -- with a reason a person can read. The commands and
flags it knows, and what a proposal may carry, are the grammar in kube/grammar.py.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from operate_mcp.errors import CommandRejected
from operate_mcp.kube.grammar import (
    COMMANDS,
    FORBIDDEN_COMMANDS,
    GLOBAL_FLAGS,
    JSON_PATCH_OPS,
    MAX_VERBOSITY,
    PRINTING_FLAGS,
    PROPOSAL_GLOBALS,
    REFUSED_ON_CHANGES,
    SECRET_VALUE_FLAGS,
    CommandSpec,
    FlagKind,
    FlagSet,
    forbidden_flag_reason,
    merge,
)
from operate_mcp.kube.manifests import parse_manifests
from operate_mcp.model.command import Classification, CommandClass, shell_quote
from operate_mcp.model.resources import canonical_resource

__all__ = [
    "ParsedCommand",
    "ParsedFlag",
    "ResourceRef",
    "check_stdin",
    "classify",
    "classify_command",
    "parse_kubectl",
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


# --------------------------------------------------------------------------- targets

_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+~-]*$")


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


def _targets(command: CommandSpec, args: list[str]) -> list[ResourceRef]:
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


def _scan(argv: Sequence[str], start: int, flagset: FlagSet, where: str, stop_at_positional: bool = False) -> _FlagScan:
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
            if not eq and kind is FlagKind.VALUE:
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
            elif kind is not FlagKind.VALUE:
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


def _check_bool(kind: FlagKind, name: str, value: str | None) -> None:
    if kind is FlagKind.BOOL and value is not None and value not in _BOOL_TRUE | _BOOL_FALSE:
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


def _parse(argv: Sequence[str]) -> tuple[ParsedCommand, CommandSpec]:
    args = list(argv)
    _check_program(args)

    # Find the command path the way cobra does: skip flags known at each level.
    try:
        head = _scan(args, 1, GLOBAL_FLAGS, "kubectl", stop_at_positional=True)
    except CommandRejected as exc:
        raise CommandRejected(f"{exc}; only global flags such as -n may come before the command name") from None
    if not head.positionals:
        raise CommandRejected("no kubectl command given (e.g. get, apply, scale)")
    index, verb = head.positionals[0]
    if verb in FORBIDDEN_COMMANDS:
        raise CommandRejected(f"kubectl {verb} is forbidden: it {FORBIDDEN_COMMANDS[verb]}")
    command = COMMANDS.get(verb)
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
            merge(GLOBAL_FLAGS, command.flags),
            f"kubectl {' '.join(path)}",
            stop_at_positional=True,
        )
        word = step.positionals[0][1] if step.positionals else None
        candidate = " ".join([*path, word]) if word else ""
        if word is not None and candidate in FORBIDDEN_COMMANDS:
            raise CommandRejected(f"kubectl {candidate} is forbidden: it {FORBIDDEN_COMMANDS[candidate]}")
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

    scan = _scan(args, 1, merge(GLOBAL_FLAGS, command.flags), f"kubectl {' '.join(path)}")
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
        return f"--{name}" if forbidden_flag_reason(name) else None
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
            why = forbidden_flag_reason("server" if flag == "-s" else flag[2:])
            if position > terminator:
                raise CommandRejected(f"'{token}' after '--' is the flag {flag}, which {why}")
            if token.startswith(piece):
                raise CommandRejected(f"'{token}': {flag} {why}")
            raise CommandRejected(f"'{token}' hides the flag {flag} inside an argument; {flag} {why}")


def _check_forbidden_verb(argv: Sequence[str]) -> None:
    """Name a forbidden command first: it is the clearest reason, whatever else the line holds."""
    try:
        head = _scan(argv, 1, GLOBAL_FLAGS, "kubectl", stop_at_positional=True)
    except CommandRejected:
        return  # the full parse explains it
    if head.positionals and head.positionals[0][1] in FORBIDDEN_COMMANDS:
        verb = head.positionals[0][1]
        raise CommandRejected(f"kubectl {verb} is forbidden: it {FORBIDDEN_COMMANDS[verb]}")


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


_LEVEL = re.compile(r"[+-]?[0-9]+")  # klog parses -v with strconv.ParseInt(value, 10, 32)
# -v/--v with a level inside a larger argument: "--namespace=x --v=9", "-l a=b,-v9".
_HIDDEN_VERBOSITY = re.compile(r"(?:^|[\s/,=:'\"()\[\]{}@!])(--?v)(?:\s*=\s*|\s+)?([+-]?[0-9]+)")


def _verbosity_problem(value: str | None) -> str | None:
    """Why a -v value may not run, or None when it is a level of 5 or less."""
    if value is None or not _LEVEL.fullmatch(value):
        return f"is not a log verbosity level; use an integer from 0 to {MAX_VERBOSITY}"
    level = int(value)
    if level > MAX_VERBOSITY:
        return (
            f"sets log verbosity {level}: above {MAX_VERBOSITY} kubectl logs HTTP requests and responses to "
            f"stderr, Secret data included; use -v={MAX_VERBOSITY} or less"
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


def _check_proposal_flags(parsed: ParsedCommand, command: CommandSpec) -> None:
    """A mutating command carries only the flags on its allow-list: what it needs, nothing that prints."""
    allowed = command.proposal_flags or frozenset()
    for flag in parsed.flags:
        if flag.name in allowed or flag.name in PROPOSAL_GLOBALS:
            continue
        shown = flag.token if flag.token.startswith("--") else f"{flag.token} (--{flag.name})"
        why = REFUSED_ON_CHANGES.get(flag.name)
        if why is not None:
            raise CommandRejected(f"'{shown}' on kubectl {parsed.command} {why}")
        choices = ", ".join(f"--{name}" for name in sorted(allowed)) or "none besides -n and --request-timeout"
        raise CommandRejected(
            f"'{shown}' is not a flag a kubectl {parsed.command} proposal may carry; its flags are: {choices}"
        )


def _output_reads_a_file(output: str) -> bool:
    fmt = output.partition("=")[0].lower()
    return fmt.endswith("file")


def _check_mutating_prints_nothing(parsed: ParsedCommand) -> None:
    for flag in parsed.flags:
        if flag.name in PRINTING_FLAGS and not (flag.name == "output" and flag.value == "name"):
            shown = flag.token if flag.token.startswith("--") else f"{flag.token} (--{flag.name})"
            raise CommandRejected(
                f"'{shown}' prints the changed object back, secret data included; mutating commands print "
                "nothing but their result line; read with kubectl get"
            )
    if parsed.verb == "create" and (parsed.subverb or "").startswith("secret"):
        for flag in parsed.flags:
            if flag.name in SECRET_VALUE_FLAGS:
                raise CommandRejected(
                    f"'{flag.token}' puts secret values on the command line, where they are shown and recorded; "
                    "secrets arrive only as a Secret manifest on stdin (kubectl apply -f -)"
                )


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


def _verdict_for(parsed: ParsedCommand, command: CommandSpec) -> Classification:
    path = f"kubectl {parsed.command}"
    for flag in parsed.flags:
        why = forbidden_flag_reason(flag.name)
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
