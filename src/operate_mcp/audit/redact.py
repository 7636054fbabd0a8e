"""Masks secrets in structured data before it reaches the audit log, which is kept for years.

Callers redact what they know is sensitive; this is the safety net `AuditLog.append` always applies.
It adds what text rules cannot see (secret-looking keys, argv flags, Secret manifests) to the
project-wide text rules in `operate_mcp.redact`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from operate_mcp.kube.manifests import ManifestError, read_documents
from operate_mcp.redact import redact_text as redact_common_text

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
_SECRET_JOINED = ("apikey", "privatekey", "accesskey", "secretkey", "signingkey", "clientsecret")
# A last word that makes the key *about* a secret rather than the secret itself: secretName, token_expiry.
_NOT_SECRET_LAST = frozenset(
    {"name", "names", "ref", "refs", "kind", "type", "count", "usage", "length", "expiry", "expires", "ttl"}
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")

_SENSITIVE_NAME = (  # a regex for names like DB_PASSWORD, --token, client-secret
    r"[A-Za-z0-9_\-]*"
    r"(?:token|pass(?:word|wd|phrase)?|pwd|secret|api[_-]?key|private[_-]?key|access[_-]?key|credentials?)"
)
_STRING_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|$)"),
        "[REDACTED PRIVATE KEY]",
    ),
    (
        re.compile(
            r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|digest|negotiate|token)\s+)?[^\s\"',;}]+"
        ),
        r"\1" + MASK,
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*"), r"\1" + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "[REDACTED JWT]"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@"), r"\1" + MASK + "@"),
    (
        re.compile(r"(?i)(?<![A-Za-z0-9])((?:--?)?" + _SENSITIVE_NAME + r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"),
        r"\1" + MASK,
    ),
)
# A bare argv flag whose *next* element is the secret: ["kubectl", "--token", "abc"].
_SECRET_FLAG = re.compile(r"(?i)^--?" + _SENSITIVE_NAME + r"$")
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


def redact_text(text: str) -> str:
    """Mask bearer tokens, private key blocks, key=value secrets, URL passwords and JWTs inside a string.

    Text that is (or looks like) a manifest is read with the manifest parser first: Secret values are
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
    return _string_rules(text)


def _string_rules(text: str) -> str:
    for pattern, replacement in _STRING_RULES:
        text = pattern.sub(replacement, text)
    return redact_common_text(text)  # the project-wide rules too (cloud keys, API keys)


def redact_manifest(text: str) -> str:
    """A manifest (what `kubectl apply -f -` reads) with every Secret value masked, whatever the keys.

    Read with the same parser as risk and policies (kube/manifests.py). A manifest it cannot read
    exactly is masked whole: kubectl might find a Secret in it that we cannot see. Unchanged text is
    kept as written, so a manifest without secrets still matches its digest.
    """
    if len(text) >= _MAX_STRUCTURED:
        return f"{MASK} (a manifest of {len(text)} characters, too large to check for Secret values, is not kept)"
    try:
        documents = read_documents(text)
    except ManifestError as exc:
        reason = redact_common_text(str(exc))
        return f"{MASK} (a manifest that could not be read exactly is not kept, it may hold Secret values: {reason})"
    values = [d.value for d in documents]
    cleaned = [redact(v) for v in values]
    return _string_rules(text if cleaned == values else yaml.safe_dump_all(cleaned, sort_keys=False))


def _looks_like_manifest(text: str) -> bool:
    return text.lstrip().startswith(("{", "---")) or bool(_MANIFEST_KEY.search(text))


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
            elif key == "items" and isinstance(value, list):
                out[key] = [redact(item, kind.removesuffix("list")) for item in value]
            else:
                out[key] = redact(value)
        return out
    if isinstance(obj, Sequence) and not isinstance(obj, bytes | bytearray):
        items: list[Any] = []
        mask_next = False
        for item in obj:
            if mask_next and isinstance(item, str):
                items.append(MASK)
                mask_next = False
                continue
            mask_next = isinstance(item, str) and bool(_SECRET_FLAG.match(item))
            items.append(redact(item))
        return items
    return obj
