"""The documents of a manifest stream (`kubectl apply -f -`), split and read the way kubectl reads them, failing closed.

kubectl (cli-runtime's StreamVisitor over apimachinery's YAMLOrJSONDecoder) reads stdin as a JSON
stream when it starts with '{' (concatenated objects, as Go's json.Decoder reads them), otherwise as
YAML documents split at lines starting with '---', each document read by go-yaml v2 and turned into
JSON. Where our reading could differ from kubectl's (tags, anchors, merge keys, duplicate keys,
content after a '...' end marker, a JSON stream continued as YAML), the stream is refused with the
document number and the reason, never half-read.

It sits on the ground floor because two floors read manifests: the redactor (`operate_mcp.redact`
masks Secret values in whatever it is given) and the object checks of `kube/manifests.py`, which
risk, policies, drift, snapshots, replay and the dry-run comparison use. Both must read exactly
what kubectl reads, so they share this reader.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from operate_mcp.errors import CommandRejected

__all__ = ["HOW_TO_WRITE", "Document", "ManifestError", "read_documents", "shown"]

# kubectl peeks this many bytes for a leading '{' to choose JSON over YAML (StreamVisitor's buffer).
_SNIFF_BYTES = 4096
_JSON_SPACE = " \t\r\n"  # what Go's json.Decoder skips between values
HOW_TO_WRITE = "write plain YAML documents separated by lines '---', or a stream of JSON objects"
_END_MARKER = re.compile(r"^\.\.\.(?:[ \t].*)?$")


class ManifestError(CommandRejected):
    """A manifest on stdin cannot be read exactly; the message names the document and what is wrong."""


@dataclass(frozen=True)
class Document:
    """One document of a stream as read, before any shape checks: number, first line, value."""

    number: int
    line: int
    value: Any


def read_documents(text: str) -> list[Document]:
    """The documents of a stream as kubectl splits them, read strictly; null documents are skipped as kubectl does.

    This is the structural reading (the redactor uses it); `kube.manifests.parse_manifests` adds the object checks.
    """
    if _sniffs_as_json(text):
        try:
            return list(_json_documents(text))
        except _FirstJSONFailed:
            pass  # older kubectl fails on such a stream, so reading it as YAML covers what any version applies
    return list(_yaml_documents(text))


# --------------------------------------------------------------------------- JSON streams


class _FirstJSONFailed(Exception):
    """The stream's first value is not JSON: kubectl >= 1.34 then reads the whole stream as YAML."""


def _go_space(ch: str) -> bool:
    """Go's unicode.IsSpace, which kubectl uses to find the first character."""
    return ch in "\t\n\v\f\r \x85\xa0" or (ord(ch) > 0xFF and ch.isspace())


def _sniffs_as_json(text: str) -> bool:
    head = text.encode("utf-8")[:_SNIFF_BYTES].decode("utf-8", errors="ignore")
    i = 0
    while i < len(head) and _go_space(head[i]):
        i += 1
    return head[i : i + 1] == "{"


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"the key {shown(key)} appears twice in one object")
        out[key] = value
    return out


def _json_constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


_JSON = json.JSONDecoder(object_pairs_hook=_json_pairs, parse_constant=_json_constant)


def _json_documents(text: str) -> Iterator[Document]:
    """Concatenated JSON values, as Go's json.Decoder reads them; whatever is not JSON is refused."""
    index, number = 0, 0
    while True:
        while index < len(text) and text[index] in _JSON_SPACE:
            index += 1
        if index >= len(text):
            return
        number += 1
        line = _line_of(text, index)
        try:
            value, end = _JSON.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            if number == 1:
                raise _FirstJSONFailed from None
            raise ManifestError(
                f"document {number} (line {line}) of the manifest is not valid JSON ({exc.msg} at line {exc.lineno}, "
                f"column {exc.colno}); a manifest that starts with '{{' is read as a stream of JSON objects, and "
                f"kubectl versions disagree on streams that mix JSON and YAML; {HOW_TO_WRITE}"
            ) from None
        except _Refused as exc:
            raise ManifestError(f"document {number} (line {line}) of the manifest: {exc.reason}") from None
        index = end
        if value is not None:  # kubectl skips null documents
            yield Document(number, line, value)


# --------------------------------------------------------------------------- YAML documents


class _Refused(Exception):
    """Something in a document we will not read; `mark` is where, when known."""

    def __init__(self, reason: str, mark: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mark = mark


def shown(value: str, limit: int = 60) -> str:
    """A value quoted for a message, cut at `limit` characters."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


_OUT_OF_SIGHT = "anchors and aliases repeat content out of sight"
_PLAIN = "tag:operate-mcp,2026:plain"  # a plain scalar: resolved the way go-yaml v2 resolves it
_GO_BOOLS = {
    **dict.fromkeys(["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"], True),
    **dict.fromkeys(["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"], False),
}
_GO_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_GO_SPECIAL_FLOATS = frozenset(
    [".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"]
)
_GO_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_GO_DOT_FLOAT = re.compile(r"^\.[0-9]+([eE][-+]?[0-9]+)?$")
_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdef"}


def _go_int(plain: str) -> int | None:
    """strconv.ParseInt(plain, 0, 64), then ParseUint: what go-yaml v2 makes of a number-looking scalar."""
    sign, body = 1, plain
    if body[:1] in ("+", "-"):
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    low = body.lower()
    if low[:2] in ("0x", "0o", "0b"):
        base, digits = {"x": 16, "o": 8, "b": 2}[low[1]], low[2:]
    elif low.startswith("0") and len(low) > 1:
        base, digits = 8, low[1:]
    else:
        base, digits = 10, low
    if not digits or any(c not in _DIGITS[base] for c in digits):
        return None
    value = sign * int(digits, base)
    if -(2**63) <= value < 2**63 or (plain[:1] != "-" and plain[:1] != "+" and 0 <= value < 2**64):
        return value
    return None


def _go_plain(value: str) -> Any:
    """A plain scalar as go-yaml v2 resolves it, then as it reaches the API server as JSON."""
    if value in _GO_NULLS:
        return None
    if value in _GO_BOOLS:
        return _GO_BOOLS[value]
    if value in _GO_SPECIAL_FLOATS:
        raise _Refused(f"{value} cannot be sent as JSON")
    first = value[:1]
    number: int | float | None = None
    if first == ".":
        number = float(value) if _GO_DOT_FLOAT.match(value) else None
    elif first.isdigit() or first in ("+", "-"):
        plain = value.replace("_", "")
        number = _go_int(plain)
        if number is None and _GO_FLOAT.match(plain):
            number = float(plain)
    if isinstance(number, float):
        if math.isinf(number):
            return value  # Go's ParseFloat fails on overflow, so go-yaml keeps the text
        return _json_number(number)
    return value if number is None else number


def _json_number(number: float) -> int | float:
    # sigs.k8s.io/yaml marshals go-yaml's float64 with encoding/json: 3.0 reaches the server as 3.
    return int(number) if number.is_integer() and abs(number) < 2**63 else number


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, narrowed to what go-yaml v2 and PyYAML read alike.

    Tags, anchors, aliases, directives and merge keys are refused (a '!tag' is never constructed);
    plain scalars resolve as go-yaml v2 resolves them (so `0o17`, `1e3`, `y` mean what kubectl sends);
    keys must be unique strings.
    """

    def compose_document(self) -> Any:
        start = self.peek_event()  # type: ignore[no-untyped-call]
        if getattr(start, "version", None) or getattr(start, "tags", None):
            raise _Refused("YAML directives (%YAML, %TAG) are refused", start.start_mark)
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(f"the alias '*{event.anchor}' is refused: {_OUT_OF_SIGHT}", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise _Refused(f"the anchor '&{event.anchor}' is refused: {_OUT_OF_SIGHT}", event.start_mark)
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise _Refused(
                f"the tag {shown(tag)} is refused: tags change how a value is read, and readers disagree on them",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def construct_plain(self, node: yaml.ScalarNode) -> Any:
        try:
            return _go_plain(str(node.value))
        except _Refused as exc:
            raise _Refused(exc.reason, node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _PLAIN and key_node.value == "<<":
                raise _Refused("merge keys ('<<') are refused: they pull content in out of sight", key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise _Refused(
                    f"a mapping key reads as {type(key).__name__} {key!r}, not a string; quote it", key_node.start_mark
                )
            if key in mapping:
                raise _Refused(f"the key {shown(key)} appears twice in one mapping", key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_StrictLoader.add_constructor(_PLAIN, _StrictLoader.construct_plain)


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """kubectl's YAMLReader: documents split at lines starting with '---' (then only spaces or a comment)."""
    buffer: list[str] = []
    start = 1
    lines = text.split("\n")
    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") and number < len(lines) else raw
        if line.startswith("---"):
            rest = line[3:].strip()
            if rest and not rest.startswith("#"):
                raise ManifestError(
                    f"line {number} of the manifest starts with '---' but is not a document separator "
                    f"(kubectl refuses '---' followed by {shown(rest, 20)}); put the separator on its own line"
                )
            if buffer:
                yield start, "\n".join(buffer) + "\n"
            buffer, start = [], number + 1
            continue
        buffer.append(line)
    if buffer:
        yield start, "\n".join(buffer) + "\n"


def _blank(chunk: str) -> bool:
    return all(not s or s.startswith("#") for s in (line.strip() for line in chunk.split("\n")))


def _yaml_documents(text: str) -> Iterator[Document]:
    number = 0
    for start, chunk in _chunks(text):
        if _blank(chunk):
            continue
        number += 1
        where = f"document {number} (line {start}) of the manifest"
        _check_end_marker(chunk, start, where)
        values = _load(chunk, start, where)
        if len(values) > 1:
            raise ManifestError(
                f"{where} holds {len(values)} YAML documents without a '---' line between them; kubectl reads "
                f"only the first, so the rest would be dropped unseen; {HOW_TO_WRITE}"
            )
        if values and values[0] is not None:
            yield Document(number, start, values[0])


def _check_end_marker(chunk: str, start: int, where: str) -> None:
    """Content after '...' is ignored by kubectl's go-yaml and an error for PyYAML: refuse it with the reason."""
    lines = chunk.split("\n")
    for i, line in enumerate(lines):
        if _END_MARKER.match(line) and not _blank("\n".join(lines[i + 1 :])):
            raise ManifestError(
                f"{where}: content follows the end marker '...' on line {start + i}; kubectl would silently "
                f"ignore it, so it is refused; {HOW_TO_WRITE}"
            )


def _load(chunk: str, start: int, where: str) -> list[Any]:
    try:
        loader = _StrictLoader(chunk)  # the reader already rejects control characters here
    except yaml.YAMLError as exc:
        raise ManifestError(f"{where} is not valid YAML ({type(exc).__name__}); {HOW_TO_WRITE}") from None
    try:
        values = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            values.append(loader.get_data())
        return values
    except _Refused as exc:
        at = f", at line {start + exc.mark.line} column {exc.mark.column + 1}" if exc.mark is not None else ""
        raise ManifestError(f"{where}{at}: {exc.reason}") from None
    except yaml.MarkedYAMLError as exc:
        # Never the snippet PyYAML adds: it would quote the manifest, Secret values included.
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {start + mark.line}, column {mark.column + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "unreadable"
        raise ManifestError(f"{where} is not valid YAML ({problem}{at}); {HOW_TO_WRITE}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{where} is not valid YAML ({type(exc).__name__}); {HOW_TO_WRITE}") from None
    finally:
        loader.dispose()
