"""The one redactor: masks secrets in whatever reaches the model, a log, a record, an alert or a prompt.

One set of rules, four ways in, chosen by what the caller holds:

- `redact(value)`: structured data (audit entries, argv lists, parsed JSON). Keys that name a secret
  (`password`, `apiKey`, `X-Auth-Token`, but not `secretName`), the value after an argv flag such as
  `--token`, `data`/`stringData` of a Kubernetes Secret (by kind, in any case, list items included),
  a `stdin` manifest; every string inside gets `redact_text`.
- `redact_text(text)`: a string of unknown shape that is kept (records, the audit log, alerts,
  displays). JSON and manifests are read as structure first, so Secret values are masked whatever
  their keys; a manifest that cannot be read exactly is masked whole. Anything else: the string rules.
- `redact_plain(text)`: text read as text (kubectl's describe, logs, events and tables for the model,
  knowledge prose, policy messages). The same string rules, nothing parsed: a YAML snippet in a
  pattern or a `describe` of a ConfigMap holding a manifest stays readable instead of being masked
  whole, and an 8 MB `get -o json` is not parsed twice (the model's tools strip Secrets from it).
- `redact_manifest(text)`: a manifest on stdin, as kubectl reads it (`operate_mcp.manifest_stream`).

The string rules recognise credentials by shape: private key blocks (certificates and public keys
stay: they are public), `Authorization` headers, Bearer and Basic credentials, JWTs, passwords in
URLs and DSNs, `name=value` pairs whose name says secret, AWS/GCP/Azure key shapes, GitHub, Slack
and Anthropic tokens. A name that is *about* a secret keeps its value (`secretName: db`,
`password_policy: strict`, `token_expiry: 3600`), and so do URLs without a password
(`postgres://db:5432/app`). This is pattern matching, a safety net: callers still mask what they
know is sensitive, and a secret in a shape no rule knows gets through.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from operate_mcp.manifest_stream import ManifestError, read_documents

__all__ = ["MASK", "is_secret_key", "names_a_secret", "redact", "redact_manifest", "redact_plain", "redact_text"]

MASK = "[REDACTED]"

# Words that make a key secret wherever they appear in it (api_key, X-Auth-Token, dbPassword ...).
_SECRET_WORDS = frozenset(
    {
        "token",
        "password",
        "passwd",
        "pwd",
        "pass",
        "passphrase",
        "secret",
        "authorization",
        "bearer",
        "credential",
        "credentials",
        "cookie",
        "apikey",
        "privatekey",
    }
)
# Pairs that only mean a secret together ("key" alone is a label key, "api" alone is a group).
_SECRET_JOINED = ("apikey", "privatekey", "accesskey", "secretkey", "signingkey", "clientsecret", "accountkey")
# A last word that makes the key *about* a secret rather than the secret itself: secretName, token_expiry.
_NOT_SECRET_LAST = frozenset(
    {"name", "names", "ref", "refs", "kind", "type", "count", "usage", "length", "expiry", "expires", "ttl"}
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")

# A name ending in one of these names a secret: DB_PASSWORD, --token, client-secret, AccountKey.
_SENSITIVE_ENDINGS = (
    "token",
    "pass",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "credential",
    "credentials",
    *(f"{word}{sep}key" for word in ("api", "private", "access", "account") for sep in ("", "_", "-")),
)
_SENSITIVE_NAME = r"[A-Za-z0-9_\-]*(?:" + "|".join(_SENSITIVE_ENDINGS) + ")"
# The same test as lookbehinds after a whole name: scanning each name once keeps an 8 MB output fast.
_ENDS_SENSITIVE = "(?:" + "|".join(f"(?<={ending})" for ending in _SENSITIVE_ENDINGS) + ")"


def _mask_basic(match: re.Match[str]) -> str:
    """`Basic <base64>` is a credential when the base64 decodes to readable text (RFC 7617: user:password);
    `Basic authentication` or `Basic settings` do not decode so, and stay."""
    try:
        decoded = base64.b64decode(match.group(2), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return match.group(0)
    return match.group(1) + MASK if decoded.isprintable() else match.group(0)


# MySQL-family clients: for them a value glued to `-p` is the password (`-p` alone, or `-p` and a space, asks
# at a prompt and the next word is a database). Elsewhere `-p` is a patch, a port or `mkdir -p`, and stays.
_MYSQL_CLIENT = (
    r"(?i:mysql(?:dump|admin|import|check|show|slap|pump|binlog|sh|_upgrade)?"
    r"|mariadb(?:-(?:dump|admin|import|check|show|slap|binlog|upgrade))?|mycli)(?i:\.exe)?"
)
# /usr/bin/mysql, ./mysql, C:/mysql/bin/mysql.exe, C:\mysql\bin\mysql.exe; not deploy/mysql
_MYSQL_PATH = r"(?:(?:[A-Za-z]:)?\.{0,2}[/\\](?:[\w.\-]+[/\\])*)?"
_MYSQL_ITEM = re.compile(_MYSQL_PATH + _MYSQL_CLIENT)  # an argv element
# In text, a whole word: not part of a name (`mysql-0`, `mysql:8.0`, `app=mysql`, `admin@mysql.shop`).
_MYSQL_WORD = r"(?<![\w.\-$@/=:])" + _MYSQL_PATH + _MYSQL_CLIENT + r"(?![\w.\-/:@])"
# A word after which a client's name names a thing, not a command: `kubectl patch deploy mysql -p'{..}'`,
# `docker run --name mysql -p3306:3306`, `ssh mysql -p2222`. Not `-c`: `sh -c "mysql -p..."` runs it.
_NAMES_NEXT = frozenset(
    {
        *("--name", "--container", "-n", "--namespace", "--hostname", "ssh", "scp"),
        *("pod", "pods", "po", "deploy", "deployment", "deployments", "sts", "statefulset", "statefulsets"),
        *("rs", "replicaset", "replicasets", "ds", "daemonset", "daemonsets", "job", "jobs", "cronjob", "cronjobs"),
        *("svc", "service", "services", "cm", "configmap", "configmaps", "secret", "secrets", "pvc", "ns"),
    }
)
_GLUED_P_ITEM = re.compile(r"-p.+", re.S)  # an argv element: no shell, the value is the rest
_NOT_IN_WORD = re.compile(r"[^\w.\-/]")  # what ends the word before a client
# In a command line: a client word, or a `-p` glued to something at the start of a word or a quoted item.
_MYSQL_SCAN = re.compile(r"(?P<client>" + _MYSQL_WORD + r")|(?<=[\s\"'\[,(])-p(?=\S)")
_SHELL_WORD = re.compile(r"""(?:'[^'\n]*'?|"(?:\\.|[^"\\\n])*"?|\\.|[^\s'"\\;&|<>])+""")
# The shell's command separators (`;`, `&&`, `||`, `|`, `&`) outside quotes: a `-p` after one is the next command's.
_SHELL_TOKENS = re.compile(r"""'[^'\n]*'?|"(?:\\.|[^"\\\n])*"?|\\.|(?P<op>[;&|]+)|[^'"\\;&|]+""")
_QUOTED_REST = {q: re.compile(rf"(?:\\.|[^{q}\\\n])*") for q in "\"'"}


def _runs_mysql(previous: str | None, item: str) -> bool:
    """Whether `item` (a word or an argv element) is a MySQL-family client run as a command, `previous`
    being the word before it: after `deploy` or `--name` it names a thing."""
    if not _MYSQL_ITEM.fullmatch(item):
        return False
    return previous is None or previous.lower().split(".")[0] not in _NAMES_NEXT


def _mask_mysql_command_line(match: re.Match[str]) -> str:
    """From a client word to the end of its line (a line ending in `\\` goes on), every `-pVALUE` after a
    client run as a command has its value masked (a shell word, or the rest of a quoted item: `"-pVALUE"`). The
    line is cut only at a `;`, `&&` or `|` outside quotes (a quoted `-e "select 1; ..."` does not end the
    command): a later command's `-p` (a patch body, a port) stays."""
    text, end = match.string, match.end()
    line_start = text.rfind("\n", 0, match.start()) + 1
    pieces: list[str] = []
    pos = match.start()
    command = False
    ops = [t.start() for t in _SHELL_TOKENS.finditer(text, match.start(), end) if t["op"]]
    for found in _MYSQL_SCAN.finditer(text, match.start(), end):
        if found.start() < pos:
            continue  # inside a value already masked
        while ops and ops[0] < found.start():  # a new command begins
            ops.pop(0)
            command = False
        if found["client"] is not None:
            before = text[max(line_start, found.start() - 100) : found.start()].rstrip(" \t\"',[")
            # Once a client runs, a later `mysql` is its argument (`mysqldump -n mysql -p...`): still its line.
            command = command or _runs_mysql(_NOT_IN_WORD.split(before)[-1] or None, found["client"])
            continue
        if not command:
            continue
        quote = text[found.start() - 1]
        value = _QUOTED_REST.get(quote, _SHELL_WORD).match(text, found.end(), end)
        if value is None or value.end() == found.end():
            continue
        pieces += [text[pos : found.end()], MASK]
        pos = value.end()
    return "".join(pieces) + text[pos:end]


def _mask_mysql_arg_lines(match: re.Match[str]) -> str:
    """describe's Command/Args, one per line (or a YAML block list): after a client's line, the lines at its
    indent (and an `Args:` header) that are `-pVALUE` have the value masked."""
    indent = re.escape(match[1])
    rest = re.sub(rf"(?m)^({indent}-p)\S[^\n]*", lambda m: m[1] + MASK, match[3])
    return match[1] + match[2] + rest


_Replacement = str | Callable[[re.Match[str]], str]
# In order. Where a rule of the former weak redactor (`password=...` without a lookbehind, which also
# takes what follows an `&`) catches a shape the stronger one leaves, both are kept.
_STRING_RULES: tuple[tuple[re.Pattern[str], _Replacement], ...] = (
    (  # PEM and PGP private keys; an unterminated block is masked to the end. Certificates stay.
        re.compile(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
            r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)"
        ),
        "[REDACTED PRIVATE KEY]",
    ),
    (
        re.compile(
            # 8+ characters, as for Bearer: containerd's "may require authorization: server message: ..." stays.
            r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|digest|negotiate|token)\s+)?[^\s\"',;}]{8,}"
        ),
        r"\1" + MASK,
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MASK),
    (re.compile(r"(?i)\b(basic\s+)([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])"), _mask_basic),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "[REDACTED JWT]"),
    # scheme://user:password@host, also with no user (redis://:pw@h) and an '@' in the password.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+(?:@[^/\s@\"'?#]+)*@"), r"\1" + MASK + "@"),
    # Go's MySQL DSN, often a DATABASE_URL: user:password@tcp(host:3306)/db. The password is bounded: every
    # `word:` in an 8 MB compact JSON would otherwise scan to the next space, and the rule turn quadratic.
    (
        re.compile(r"(?<![A-Za-z0-9_.:/-])([A-Za-z0-9_.-]+:)[^\s@/]{1,256}(@(?:tcp|udp|unix)\()"),
        r"\1" + MASK + r"\2",
    ),
    # kubectl describe's data layout (ConfigMaps): `password:`, a `----` line, then the value up to a blank line.
    (
        re.compile(
            r"(?im)^([ \t]*[A-Za-z0-9_.\-]++" + _ENDS_SENSITIVE + r":[ \t]*\n[ \t]*-{4}[ \t]*\n)(?![ \t]*\n)"
            r"[\s\S]*?(?=\n[ \t]*\n|\Z)"
        ),
        r"\1" + MASK,
    ),
    # describe's args, one per line: the line after a bare secret flag (`--db-password`) is its value.
    (
        re.compile(r"(?im)^([ \t]*--?[A-Za-z0-9_\-]++" + _ENDS_SENSITIVE + r"[ \t]*\n[ \t]*)\S[^\n]*"),
        r"\1" + MASK,
    ),
    # A MySQL-family password glued to `-p`: on a command line (a log, `sh -c`, describe's exec probe, a JSON
    # or YAML flow list on one line) ...
    (re.compile(_MYSQL_WORD + r"(?:[^\n\\]|\\[\s\S])*"), _mask_mysql_command_line),
    # ... and in describe's Command/Args lines or a YAML block list, one argument per line.
    (
        re.compile(
            r"(?m)^([ \t]*- |[ \t]+)(" + _MYSQL_PATH + _MYSQL_CLIENT + r"[ \t]*\n)"
            r"((?:\1(?=\S)[^\n]*(?:\n|\Z)|[ \t]*(?i:args):[ \t]*\n)*)"
        ),
        _mask_mysql_arg_lines,
    ),
    (
        re.compile(
            r"(?i)(?<![A-Za-z0-9_\-])([A-Za-z0-9_\-]++" + _ENDS_SENSITIVE + r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"
        ),
        r"\1" + MASK,
    ),
    (
        re.compile(
            r"(?i)(?=[pstac])((?:password|passwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret)"
            r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;}{]{4,})"
        ),
        r"\1" + MASK,
    ),
    (re.compile(r"(?i)([?&;]sig=)[^&\s\"';]+"), r"\1" + MASK),  # Azure shared access signatures
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), "[REDACTED AWS KEY]"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"), "[REDACTED API KEY]"),  # Google API keys
    (re.compile(r"\bsk-ant-[A-Za-z0-9_-]{10,}"), "[REDACTED API KEY]"),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"), "[REDACTED GITHUB TOKEN]"),
    (re.compile(r"\b(?:xox[abposr]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,})"), "[REDACTED SLACK TOKEN]"),
    (re.compile(r"(https://hooks\.slack\.com/services/)[A-Za-z0-9/_-]+"), r"\1" + MASK),
)
# A bare argv flag whose *next* element is the secret: ["kubectl", "--token", "abc"].
_SECRET_FLAG = re.compile(r"(?i)^--?" + _SENSITIVE_NAME + r"$")
_SENSITIVE_NAME_FULL = re.compile(r"(?i)" + _SENSITIVE_NAME)
_MAX_STRUCTURED = 1_000_000  # characters; larger text is not parsed
# A `kind:`/`apiVersion:` key, or a double-quoted key with escapes (`"\x6bind": Secret`), at a line start or in a flow.
_MANIFEST_KEY = re.compile(r"""(?m)(?:^|[{,])[ \t]*(?:[-?][ \t]+)*(?:["']?(?:kind|apiVersion)["']?\s*:|"[^"\n]*\\)""")


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret value (password, apiKey, X-Auth-Token), not a reference to one."""
    words = [w for w in _SPLIT.split(_CAMEL.sub("_", key).lower()) if w]
    if not words or words[-1] in _NOT_SECRET_LAST:
        return False
    joined = "".join(words)
    return any(w in _SECRET_WORDS for w in words) or any(j in joined for j in _SECRET_JOINED)


def names_a_secret(name: str) -> bool:
    """A key that names a secret (`is_secret_key`), or a name run together that ends in a secret word, as
    env vars and flags are written: PGPASSWORD, APITOKEN, MYSQL_PWD (the string rules read them so too)."""
    return is_secret_key(name) or bool(_SENSITIVE_NAME_FULL.fullmatch(name))


def redact_plain(text: str) -> str:
    """Mask every credential the string rules know, reading `text` as text only (see the module docstring)."""
    for pattern, replacement in _STRING_RULES:
        text = pattern.sub(replacement, text)
    return text


def redact_text(text: str) -> str:
    """Mask bearer tokens, private key blocks, key=value secrets, URL passwords and JWTs inside a string.

    Text that is (or looks like) a manifest is read with the manifest reader first: Secret values are
    masked whatever their keys, and a manifest that cannot be read exactly is masked whole.
    """
    stripped = text.strip()
    single_json = False
    if stripped[:1] in ("{", "[") and len(stripped) < _MAX_STRUCTURED:
        # kubectl -o json output, last-applied-configuration: redact the structure, not just the text.
        try:
            parsed = json.loads(stripped)
        except ValueError:
            pass
        else:
            single_json = True
            cleaned = redact(parsed)
            if cleaned != parsed:
                return json.dumps(cleaned, sort_keys=True)
    if not single_json and _looks_like_manifest(text):
        return redact_manifest(text)
    return redact_plain(text)


def redact_manifest(text: str) -> str:
    """A manifest (what `kubectl apply -f -` reads) with every Secret value masked, whatever the keys.

    Read with the reader kubectl's reading is checked against (operate_mcp/manifest_stream.py, the one
    risk and policies see through kube/manifests.py). A manifest it cannot read exactly is masked whole:
    kubectl might find a Secret in it that we cannot see. Unchanged text is kept as written, so a
    manifest without secrets still matches its digest.
    """
    if len(text) >= _MAX_STRUCTURED:
        return f"{MASK} (a manifest of {len(text)} characters, too large to check for Secret values, is not kept)"
    try:
        documents = read_documents(text)
    except ManifestError as exc:
        reason = redact_plain(str(exc))
        return f"{MASK} (a manifest that could not be read exactly is not kept, it may hold Secret values: {reason})"
    values = [d.value for d in documents]
    cleaned = [redact(v) for v in values]
    return redact_plain(text if cleaned == values else yaml.safe_dump_all(cleaned, sort_keys=False))


def _looks_like_manifest(text: str) -> bool:
    head = text.lstrip()
    # A PEM block's '-----BEGIN' line is no YAML separator (kubectl refuses it too): such text is left to the
    # string rules, which keep a certificate and mask a private key, instead of being masked whole.
    starts_a_stream = head.startswith("{") or (head.startswith("---") and not head.startswith("-----BEGIN"))
    return starts_a_stream or bool(_MANIFEST_KEY.search(text))


def redact(obj: Any, _list_kind: str | None = None) -> Any:
    """A copy of a JSON-like value with every secret masked; keys are kept so the shape stays readable.

    Secrets are recognised as kubectl reads them: by kind in any case, and as items of a list
    (`kind: SecretList`) that leave kind and apiVersion out. A `stdin` string is a manifest.
    """
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, Mapping):
        kind = obj.get("kind")
        if not (isinstance(kind, str) and kind) and not obj.get("apiVersion") and _list_kind:
            kind = _list_kind  # kubectl gives such list items the list's kind, minus "List"
        kind = kind.lower() if isinstance(kind, str) else ""
        is_k8s_secret = kind == "secret"
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if is_secret_key(str(key)):
                out[key] = MASK
            elif is_k8s_secret and key in ("data", "stringData"):
                out[key] = dict.fromkeys(value, MASK) if isinstance(value, Mapping) else MASK
            elif key == "stdin" and isinstance(value, str):
                out[key] = redact_manifest(value)
            elif key == "args" and isinstance(value, list) and _command_runs_mysql(obj.get("command")):
                out[key] = _redact_argv(value, after_mysql=True)
            elif key == "items" and isinstance(value, list):
                out[key] = [redact(item, kind.removesuffix("list")) for item in value]
            else:
                out[key] = redact(value)
        return out
    if isinstance(obj, Sequence) and not isinstance(obj, bytes | bytearray):
        return _redact_argv(obj)
    return obj


def _redact_argv(obj: Sequence[Any], after_mysql: bool = False) -> list[Any]:
    """A list, read as argv too: the item after a secret flag (`--token`, `abc`) is masked, and so is the
    value of a `-pVALUE` after a MySQL-family client (`after_mysql`: the container's command runs one)."""
    items: list[Any] = []
    mask_next = False
    mysql = after_mysql
    previous: str | None = None
    for item in obj:
        if not isinstance(item, str):
            items.append(redact(item))
            mask_next = False
            continue
        if mask_next:
            items.append(MASK)
        elif mysql and _GLUED_P_ITEM.fullmatch(item):
            items.append("-p" + MASK)
        else:
            items.append(redact(item))
        mask_next = not mask_next and bool(_SECRET_FLAG.match(item))
        mysql = mysql or _runs_mysql(previous, item)
        previous = item
    return items


def _command_runs_mysql(command: Any) -> bool:
    """Whether a container's `command` list runs a MySQL-family client, so its `args` are that client's."""
    if not isinstance(command, list):
        return False
    words = [item if isinstance(item, str) else "" for item in command]
    return any(_runs_mysql(previous, word) for previous, word in zip([None, *words], words, strict=False))
