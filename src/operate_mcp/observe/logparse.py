"""What one container's captured log says, read without a model: each line's format and level, stack
traces kept whole, error counts, the rate and the stalls, and the log with its repeats collapsed.

Pure and linear: every pattern is anchored or bounded (no nested quantifiers, no unbounded backtracking),
so a hostile line costs time proportional to its length. A stack trace is one entry: it counts once, and
when it follows the error line that logged it (`logger.exception`, logback's `log.error("...", e)`), the
line and its trace are one error together. A trace after an info or warning line stands on its own: an
uncaught exception printed after an unrelated line must not hide as an info.

The only side effect is `templates.observe(...)` when error templates are handed in.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from pydantic_core import from_json

from operate_mcp.model.observation import ContainerLog, LogAnalysis

if TYPE_CHECKING:
    from operate_mcp.observe.templates import ErrorTemplates

LEVELS = ("debug", "info", "warning", "error", "fatal")
MAX_COLLAPSED = 100  # entries of `collapsed`: the first 50, a marker, the last 49
MAX_TRACES = 20  # distinct stack traces kept (each whole up to MAX_TRACE_LINES)
MAX_TRACE_LINES = 400  # a goroutine dump of thousands of goroutines keeps its head
MAX_TEXT = 1000  # characters of one line in `collapsed` and `first_error`
MAX_PARSE = 65536  # characters of one line looked at when reading its format
MAX_TEMPLATES = 50  # templates kept in the analysis (new ones first)
_TRACE_CONTINUATION_LIMIT = 64  # lines of a Node error's property block

_LEVEL_WORDS = {
    "trace": "debug", "debug": "debug", "fine": "debug", "finer": "debug", "finest": "debug", "verbose": "debug",
    "info": "info", "information": "info", "notice": "info", "config": "info",
    "warn": "warning", "warning": "warning",
    "error": "error", "err": "error", "severe": "error",
    "fatal": "fatal", "critical": "fatal", "crit": "fatal", "panic": "fatal", "dpanic": "fatal",
    "alert": "fatal", "emerg": "fatal", "emergency": "fatal",
}  # fmt: skip
_KLOG_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "fatal"}

_LVL = r"(?P<lvl>TRACE|DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|SEVERE|CRITICAL|FATAL)"
_ISO = (
    r"(?P<ts>(?P<Y>\d{4})-(?P<M>\d{2})-(?P<D>\d{2})[T ](?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})"
    r"(?:(?P<sep>[.,])(?P<frac>\d{1,9}))?(?:\s?(?P<zone>Z|[+-]\d{2}:?\d{2}))?)"
)
# `kubectl logs --timestamps`: RFC3339 with a zone, then one space.
_KUBECTL_TS = re.compile(
    r"(?P<Y>\d{4})-(?P<M>\d{2})-(?P<D>\d{2})T(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})"
    r"(?:\.(?P<frac>\d{1,9}))?(?P<zone>Z|[+-]\d{2}:\d{2})(?: |$)"
)
_ISO_AT_START = re.compile(_ISO)
# E1130 12:00:00.123456       1 file.go:42] msg
_KLOG = re.compile(
    r"(?P<lvl>[IWEF])(?P<M>\d{2})(?P<D>\d{2}) (?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})\.(?P<frac>\d{1,9})"
    r" +\d+ [^\s\]]{1,300}\] ?"
)
# After a date (parsed once, `_ISO_AT_START`), the layouts are told apart by what follows it.
# Spring Boot: 2026-11-30 12:00:00.123 ERROR 1 --- [main] c.e.App : msg (kubectl's date may have gone first).
_SPRING = re.compile(rf"\s*{_LVL}\s+\d+\s+---\s")
# Logback/log4j2: 2026-11-30 12:00:00.123 [main] ERROR c.e.App - msg
_LOGBACK = re.compile(rf"\s+\[[^\]]{{0,200}}\]\s+{_LVL}\s")
# ... and without a date: 12:00:00.123 [main] ERROR c.e.App - msg
_LOGBACK_TIME = re.compile(
    rf"(?P<h>\d{{2}}):(?P<m>\d{{2}}):(?P<s>\d{{2}})[.,](?P<frac>\d{{3}})\s+\[[^\]]{{0,200}}\]\s+{_LVL}\s"
)
# log4j2 / Quarkus: 2026-11-30 12:00:00,123 ERROR [c.e.App] (main) msg
_LOG4J = re.compile(rf"\s+{_LVL}\s+\[[^\]]{{0,200}}\]\s")
# zap's console encoder: 2026-11-30T12:00:00.000Z<TAB>ERROR<TAB>pkg/file.go:42<TAB>msg
_ZAP_CONSOLE = re.compile(r"\t(?P<lvl>[A-Za-z]{3,6})\t")
# Python logging: `2026-11-30 12:00:00,123 ERROR name: msg`, `... - name - ERROR - msg`, Flask's
# `[2026-11-30 12:00:00,123] ERROR in app: msg`, gunicorn's `[2026-11-30 12:00:00 +0000] [1] [ERROR] msg`.
_DATED_LEVEL = re.compile(
    rf"\]?\s+(?:-\s+)?(?P<pid>\[\d{{1,10}}\]\s+)?(?P<name>[\w.\-]{{1,200}}\s+-\s+)?\[?{_LVL}\]?(?=[\s:]|$)[\s:\-]*"
)
# java.util.logging / Tomcat: 30-Nov-2026 12:00:00.123 SEVERE [main] org.apache... msg
_JUL = re.compile(
    r"(?P<D>\d{2})-(?P<mon>[A-Z][a-z]{2})-(?P<Y>\d{4}) (?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}))?"
    r" (?P<lvl>SEVERE|WARNING|INFO|CONFIG|FINE|FINER|FINEST)\s"
)
# Python's basicConfig `ERROR:root:msg`, uvicorn's `ERROR:    msg`.
_PY_BASIC = re.compile(rf"{_LVL}:(?:[\w.\-<>]{{0,200}}:|\s+)")
# Go's log package: 2026/11/30 12:00:00 msg
_GO_STD = re.compile(
    r"(?P<Y>\d{4})/(?P<M>\d{2})/(?P<D>\d{2}) (?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}))? "
)
_LEADING_LEVEL = re.compile(
    r"\[?(?P<lvl>TRACE|DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|ERR|SEVERE|CRITICAL|FATAL|PANIC)\]?(?=[\s:]|$)[\s:\-]*"
)
# logfmt (slog, logrus text): time=... level=ERROR msg="..."
_LOGFMT_VALUE = re.compile(r'"(?P<q>[^"\\]*(?:\\.[^"\\]*)*)"|(?P<bare>[^\s"]{1,4000})')  # unrolled: linear
_JSON_LEVEL_KEYS = ("level", "lvl", "severity", "levelname", "log.level", "loglevel", "@l")
_JSON_TIME_KEYS = ("time", "ts", "timestamp", "@timestamp", "@t")
_JSON_MESSAGE_KEYS = ("msg", "message", "@m", "@mt")
_JSON_LEVEL = re.compile(
    r'"(?:level|lvl|severity|levelname|log\.level|loglevel)"\s?:\s?"?(?P<lvl>[A-Za-z]{1,10}|\d{1,3})'
)
_JSON_TIME = re.compile(r'"(?:time|ts|timestamp|@timestamp)"\s?:\s?"?(?P<val>[^",}\s]{1,40})')
_JSON_MESSAGE = re.compile(r'"(?:msg|message)"\s?:\s?"(?P<msg>(?:[^"\\]|\\.){0,1000})')
_NODE_ERROR = re.compile(r"(?:Uncaught\s+)?(?:[A-Z][A-Za-z0-9]{0,80})?Error(?:\s\[[\w-]{1,80}\])?:\s")
_JAVA_EXCEPTION = re.compile(
    r'(?:Exception in thread "[^"\n]{0,200}"\s+)?[a-zA-Z_$][\w$]{0,100}(?:\.[\w$]{1,100}){1,30}(?::\s|:?$)'
)

# Stack traces.
_PY_TRACE_START = ("Traceback (most recent call last):", "Exception Group Traceback (most recent call last):")
_PY_GROUP_START = "  + Exception Group Traceback (most recent call last):"
_PY_CHAIN = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
_TRACE_START = re.compile(
    r"(?:Traceback \(most|Exception Group Traceback|  \+ Exception Group|panic: |fatal error: |SIG[A-Z]{2,6}: |"
    r"goroutine \d)"
)
_PY_EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]{0,200}(?::\s|:$|$)")
_FRAME = re.compile(r"\s+at\s")
_TRACE_HEAD = re.compile(
    r'(?:Exception in thread "[^"\n]{0,200}"\s+)?(?:Uncaught\s+)?(?P<name>[A-Za-z_$][\w$.]{0,300})'
    r"(?:\s\[[\w-]{1,80}\])?(?::|$)"
)
_JAVA_CONTINUATION = re.compile(r"\s+at\s|\s+\.\.\. \d+ (?:more|common frames omitted)|\s*(?:Caused by|Suppressed): ")
_GO_TRACE_START = ("panic: ", "fatal error: ", "SIGQUIT: ", "SIGABRT: ", "SIGSEGV: ", "SIGBUS: ", "SIGILL: ")
_GOROUTINE = re.compile(r"goroutine \d+ [^\n]{0,300}\]:$")
_GO_CONTINUATION = re.compile(
    r"(?:goroutine \d+ |\[signal |\[originating from goroutine |created by |panic: |fatal error: |PC=|signal arrived |"
    r"\.\.\.additional frames elided\.\.\.|[a-z0-9]{2,6}\s+0x[0-9a-f]+$)"
)
_EXIT_STATUS = re.compile(r"exit status \d+$")
_GO_GOROUTINE_WITHIN = 20  # lines after `panic:` within which its first goroutine is printed

# Collapsing: tokens with a digit (numbers, hex ids, IPs, timestamps, pod suffixes) are the same.
_VARIABLE_TOKEN = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z]*\d)[A-Za-z0-9]+")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}  # fmt: skip


@dataclass(slots=True)
class _Entry:
    """One log event: a line, a stack trace, or a line and the trace it logged."""

    text: str = ""  # the line as logged (without kubectl's timestamp); "" for a trace on its own
    message: str = ""  # what it says, without its prefix: mined as a template when it is an error
    level: str | None = None
    fmt: str | None = None
    ts: float | None = None
    trace: list[str] = field(default_factory=list)
    trace_kind: str = ""
    trace_headline: str = ""
    embedded_trace: str = ""  # a stack inside a JSON line (pino's err.stack, zap's stacktrace)


def analyze_log(
    log: ContainerLog, *, templates: ErrorTemplates | None = None, stall_seconds: float = 30.0
) -> LogAnalysis:
    """Read one container's captured log: levels, errors, whole stack traces, rate, stalls, repeats.

    With `templates`, the error lines are mined into templates and each is marked new or known.
    """
    kubectl_ts, texts = _strip_kubectl_timestamps(log.lines)
    entries, line_ts = _entries(texts, kubectl_ts)

    levels = dict.fromkeys(LEVELS, 0)
    formats: Counter[str] = Counter()
    first_error: str | None = None
    traces: list[str] = []
    seen_traces: set[str] = set()
    mined: list[str] = []
    for entry in entries:
        if entry.level is not None:
            levels[entry.level] += 1
        if entry.fmt is not None:
            formats[entry.fmt] += 1
        if (entry.trace or entry.embedded_trace) and len(traces) < MAX_TRACES:
            for trace in _trace_texts(entry):
                key = _normalize(trace)
                if key not in seen_traces and len(traces) < MAX_TRACES:
                    seen_traces.add(key)
                    traces.append(trace)
        if entry.level in ("error", "fatal"):
            if first_error is None:
                first_error = _clip(entry.text or entry.trace_headline)
            if entry.message:
                mined.append(entry.message)
            if entry.text and entry.trace_headline:
                mined.append(entry.trace_headline)

    rate, stalls = _rate_and_stalls(line_ts, stall_seconds)
    return LogAnalysis(
        pod=log.pod,
        namespace=log.namespace,
        container=log.container,
        previous=log.previous,
        format=formats.most_common(1)[0][0] if formats else "plain",
        lines=len(log.lines),
        levels=levels,
        errors=levels["error"] + levels["fatal"],
        first_error=first_error,
        stack_traces=traces,
        lines_per_second=rate,
        stalls=stalls,
        collapsed=_collapse(entries),
        templates=templates.observe(mined)[:MAX_TEMPLATES] if templates is not None and mined else [],
    )


# -- lines and entries --------------------------------------------------------------------------------


def _strip_kubectl_timestamps(lines: list[str]) -> tuple[list[float | None], list[str]]:
    """Each line's `kubectl logs --timestamps` time and the line without it. Only when every non-empty line
    carries one: an application that itself starts its lines with RFC3339 (Spring Boot 3, zap) keeps them."""
    stamps: list[float | None] = []
    texts: list[str] = []
    for line in lines:
        line = line.rstrip("\r\n")
        m = _KUBECTL_TS.match(line) if len(line) >= 20 and line[10] == "T" else None
        if m is None:
            if line.strip():
                return [None] * len(lines), [line.rstrip("\r\n") for line in lines]
            stamps.append(None)
            texts.append(line)
        else:
            stamps.append(_epoch(m))
            texts.append(line[m.end():])
    return stamps, texts


def _entries(texts: list[str], kubectl_ts: list[float | None]) -> tuple[list[_Entry], list[tuple[int, float]]]:
    """Group the lines into entries; also each timestamped line's (index, epoch seconds)."""
    entries: list[_Entry] = []
    line_ts: list[tuple[int, float]] = []
    n = len(texts)
    i = 0
    head: _Entry | None = None  # the line just before (blank lines aside), when it may have logged a trace
    while i < n:
        trace_end, kind = _trace_at(texts, i)
        if kind:
            lines = texts[i:trace_end]
            headline = _headline(kind, lines)
            # Loggers print a Python or Java trace right after the error line that logged it; a Go
            # panic or a Node crash is printed by the runtime and belongs to no line.
            if head is not None and kind in ("python", "java") and head.level in ("error", "fatal"):
                head.trace, head.trace_kind, head.trace_headline = lines, kind, headline
            else:
                entries.append(_Entry(level="fatal" if kind == "go" else "error", fmt=kind, trace=lines,
                                      trace_kind=kind, trace_headline=headline, message=headline))
            for j in range(i, trace_end):
                stamp = kubectl_ts[j]
                if stamp is not None:
                    line_ts.append((j, stamp))
            head = None
            i = trace_end
            continue
        entry = _parse_line(texts[i][:MAX_PARSE])
        entry.text = texts[i]
        stamp = kubectl_ts[i] if kubectl_ts[i] is not None else entry.ts
        if stamp is not None:
            line_ts.append((i, stamp))
        entries.append(entry)
        if entry.text.strip():
            head = entry
        i += 1
    return entries, line_ts


def _parse_line(text: str) -> _Entry:
    """The format, level, timestamp and message of one line (no trace)."""
    if not text:
        return _Entry()
    first = text[0]
    if first == "{":
        entry = _parse_json(text)
        if entry is not None:
            return entry
    if first in "IWEF" and text[1:5].isdigit():
        m = _KLOG.match(text)
        if m:
            return _Entry(message=text[m.end():], level=_KLOG_LEVELS[m["lvl"]], fmt="klog", ts=_epoch(m, year="2000"))
    if "level=" in text or "lvl=" in text:
        entry = _parse_logfmt(text)
        if entry is not None:
            return entry
    if first.isdigit() or first == "[":
        entry = _parse_dated(text)
        if entry is not None:
            return entry
    if first.isupper() or first == " ":
        m = _SPRING.match(text)
        if m:
            return _Entry(message=_after(text[m.end():], " : "), level=_level(m["lvl"]), fmt="java")
        m = _PY_BASIC.match(text)
        if m:
            return _Entry(message=text[m.end():].lstrip(), level=_level(m["lvl"]), fmt="python")
        m = _NODE_ERROR.match(text)
        if m:
            return _Entry(message=text, level="error", fmt="node")
    if first.isupper() or first == "[":
        m = _LEADING_LEVEL.match(text)
        if m:
            return _Entry(message=text[m.end():], level=_level(m["lvl"]))
    if text.startswith(("panic: ", "fatal error: ")):
        return _Entry(message=text, level="fatal", fmt="go")
    if first.isalpha() and "." in text:
        m = _JAVA_EXCEPTION.match(text)
        if m and _is_exception_name(text[: m.end()].rstrip(": ").rsplit(" ", 1)[-1]):
            return _Entry(message=text, level="error", fmt="java")
    return _Entry(message=text)


def _parse_dated(text: str) -> _Entry | None:
    """A line that starts with a date or a time (or `[` and one): Java, Python, zap, Go's log, or plain."""
    bracket = 1 if text[0] == "[" else 0
    d = _ISO_AT_START.match(text, bracket)
    if d is not None:
        ts, at = _epoch(d), d.end()
        if not bracket:
            m = _SPRING.match(text, at)
            if m:
                return _Entry(message=_after(text[m.end():], " : "), level=_level(m["lvl"]), fmt="java", ts=ts)
            m = _LOGBACK.match(text, at) or _LOG4J.match(text, at)
            if m:
                return _Entry(message=_after(text[m.end():], " - "), level=_level(m["lvl"]), fmt="java", ts=ts)
            m = _ZAP_CONSOLE.match(text, at)
            if m and m["lvl"].lower() in _LEVEL_WORDS:
                return _Entry(message=text[m.end():].split("\t", 1)[-1], level=_level(m["lvl"]), fmt="go", ts=ts)
        m = _DATED_LEVEL.match(text, at)
        if m:
            python = d["sep"] == "," or m["pid"] is not None or m["name"] is not None
            return _Entry(message=_after(text[m.end():], ": ", limit=80), level=_level(m["lvl"]),
                          fmt="python" if python else None, ts=ts)
        rest = text[at:].lstrip(" ]")  # a dated line of no known layout: its time still counts
        lm = _LEADING_LEVEL.match(rest)
        return _Entry(message=rest[lm.end():] if lm else rest, level=_level(lm["lvl"]) if lm else None, ts=ts)
    m = _LOGBACK_TIME.match(text)
    if m:
        return _Entry(message=_after(text[m.end():], " - "), level=_level(m["lvl"]), fmt="java",
                      ts=_epoch_parts(2000, 1, 1, m))  # a time of day alone: only the gaps between lines matter
    m = _GO_STD.match(text)
    if m:
        rest = text[m.end():]
        lm = _LEADING_LEVEL.match(rest)
        return _Entry(message=rest[lm.end():] if lm else rest, level=_level(lm["lvl"]) if lm else None,
                      fmt="go", ts=_epoch(m))
    m = _JUL.match(text)
    if m:
        month = _MONTHS.get(m["mon"])
        ts = _epoch_parts(int(m["Y"]), month, int(m["D"]), m) if month else None
        return _Entry(message=text[m.end():], level=_level(m["lvl"]), fmt="java", ts=ts)
    return None


def _parse_json(text: str) -> _Entry | None:
    if not text.rstrip().endswith("}"):
        return _parse_json_prefix(text)
    try:
        obj = from_json(text)  # pydantic-core's parser: fast, and depth-limited (a ValueError, never a crash)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        return _parse_json_prefix(text)
    raw_level: Any = None
    for key in _JSON_LEVEL_KEYS:
        if key in obj:
            raw_level = obj[key]
            break
    else:
        nested = obj.get("log")
        if isinstance(nested, dict):
            raw_level = nested.get("level")
    if isinstance(raw_level, str):
        level = _level(raw_level)
    elif isinstance(raw_level, int | float) and not isinstance(raw_level, bool):
        level = _pino_level(raw_level)
    else:
        level = None
    ts: float | None = None
    for key in _JSON_TIME_KEYS:
        if key in obj:
            ts = _json_time(obj[key])
            break
    message = ""
    for key in _JSON_MESSAGE_KEYS:
        value = obj.get(key)
        if isinstance(value, str):
            message = value
            break
    stack = _json_stack(obj) if level in ("error", "fatal") else ""
    return _Entry(message=message or text, level=level, fmt="json", ts=ts, embedded_trace=stack)


def _parse_json_prefix(text: str) -> _Entry | None:
    """A JSON line cut short (the capture keeps the first 500 characters of a line): its level by pattern."""
    m = _JSON_LEVEL.search(text, 0, 2000)
    if m is None:
        return None
    raw = m["lvl"]
    level = _pino_level(int(raw)) if raw.isdigit() else _level(raw)
    if level is None:
        return None
    tm = _JSON_TIME.search(text, 0, 2000)
    mm = _JSON_MESSAGE.search(text, 0, 4000)
    ts = _json_time_text(tm["val"]) if tm else None
    return _Entry(message=mm["msg"] if mm else text, level=level, fmt="json", ts=ts)


def _json_time_text(value: str) -> float | None:
    try:
        return _json_time(float(value)) if value[:1].isdigit() and "-" not in value else _json_time(value)
    except ValueError:
        return None


def _json_stack(obj: dict[str, Any]) -> str:
    """A multi-line stack inside a JSON line: pino's err.stack, zap's stacktrace, python-json-logger's exc_info."""
    candidates: list[Any] = [obj.get(k) for k in ("stack", "stacktrace", "stack_trace", "exc_info", "exception")]
    for key in ("err", "error"):
        inner = obj.get(key)
        if isinstance(inner, dict):
            candidates += [inner.get("stack"), inner.get("stack_trace")]
    for value in candidates:
        if isinstance(value, str) and "\n" in value:
            return value.strip("\n")
    return ""


def _parse_logfmt(text: str) -> _Entry | None:
    raw_level = _logfmt_value(text, "level=") or _logfmt_value(text, "lvl=")
    level = _level(raw_level)
    if level is None:
        return None
    stamp = _logfmt_value(text, "time=") or _logfmt_value(text, "ts=")
    im = _ISO_AT_START.match(stamp) if stamp else None
    return _Entry(message=_logfmt_value(text, "msg=") or text, level=level, fmt="go", ts=_epoch(im) if im else None)


def _logfmt_value(text: str, key: str) -> str | None:
    """The value of `key=` (quoted or bare) where the key starts the line or follows a space."""
    at = text.find(key)
    while at > 0 and text[at - 1] != " ":
        at = text.find(key, at + 1)
    if at < 0:
        return None
    m = _LOGFMT_VALUE.match(text, at + len(key))
    if m is None:
        return None
    return m["q"] if m["q"] is not None else m["bare"]


# -- stack traces -------------------------------------------------------------------------------------


def _trace_at(texts: list[str], i: int) -> tuple[int, str]:
    """(the index after the trace, its kind) when a stack trace starts at line i, else (i, "")."""
    text = texts[i]
    if not text:
        return i, ""
    if _TRACE_START.match(text):
        if text.startswith(_PY_TRACE_START) or text.startswith(_PY_GROUP_START):
            return _python_trace_end(texts, i), "python"
        if text.startswith(_GO_TRACE_START) or _GOROUTINE.match(text):
            end = _go_trace_end(texts, i)
            return (end, "go") if end is not None else (i, "")
    if text[0] in " \t":
        return i, ""
    if i + 1 < len(texts) and texts[i + 1][:1] in (" ", "\t") and _FRAME.match(texts[i + 1]):
        m = _TRACE_HEAD.match(text)
        if m:
            kind = "java" if "." in m["name"] else "node"
            return _frames_end(texts, i + 1, kind), kind
    return i, ""


def _python_trace_end(texts: list[str], i: int) -> int:
    n = len(texts)
    group = texts[i].startswith(_PY_GROUP_START)
    j = i + 1
    while j < n:
        line = texts[j]
        if line[:1] in (" ", "\t", "+", "|"):
            j += 1
            continue
        if not group and _PY_EXCEPTION_LINE.match(line):
            j += 1  # the exception itself closes the trace
        chained = _skip_blank(texts, j)
        if chained < n and texts[chained] in _PY_CHAIN:
            nxt = _skip_blank(texts, chained + 1)
            if nxt < n and texts[nxt].startswith(_PY_TRACE_START):
                j = nxt + 1
                group = False
                continue
        return j
    return j


def _go_trace_end(texts: list[str], i: int) -> int | None:
    """The index after a Go panic or goroutine dump starting at i; None when no `goroutine N [...]:` line
    comes within its first lines (then it is a line like any other, and a failed try costs little)."""
    n = len(texts)
    goroutine = _GOROUTINE.match(texts[i]) is not None
    j = i + 1
    while j < n:
        if not goroutine and j - i > _GO_GOROUTINE_WITHIN:
            return None
        line = texts[j]
        if not line:
            nxt = _skip_blank(texts, j)
            if nxt < n and _go_continues(texts[nxt]):
                j = nxt
                continue
            break
        if not _go_continues(line):
            break
        goroutine = goroutine or _GOROUTINE.match(line) is not None
        j += 1
        if _EXIT_STATUS.match(line):
            break
    return j if goroutine else None


def _go_continues(line: str) -> bool:
    if line[:1] in (" ", "\t") or _GO_CONTINUATION.match(line) or _EXIT_STATUS.match(line):
        return True
    # a frame's function: main.main(), net/http.(*conn).serve(0xc000...), with no space before its "("
    paren = line.find("(")
    return paren > 0 and " " not in line[:paren] and (line.endswith(")") or line.endswith("...)"))


def _frames_end(texts: list[str], j: int, kind: str) -> int:
    n = len(texts)
    while j < n:
        line = texts[j]
        if kind == "java" and _JAVA_CONTINUATION.match(line):
            j += 1
        elif kind == "node" and _FRAME.match(line):
            j += 1
            if line.endswith("{"):  # Node prints an error's own properties after its frames: { code: ... }
                k = j
                while k < n and k - j < _TRACE_CONTINUATION_LIMIT and texts[k] != "}":
                    k += 1
                if k < n and texts[k] == "}":
                    j = k + 1
                    return j
        else:
            return j
    return j


def _headline(kind: str, lines: list[str]) -> str:
    """What the trace threw: Python's last line, otherwise the first (Java's, Node's, Go's panic)."""
    if kind == "python":
        for line in reversed(lines):
            if line and line[0] not in " \t+|":
                return line
        for line in lines:
            stripped = line.lstrip(" |")
            if stripped != line and _PY_EXCEPTION_LINE.match(stripped) and ":" in stripped:
                return stripped
    return lines[0]


def _trace_texts(entry: _Entry) -> list[str]:
    found = []
    if entry.trace:
        lines = entry.trace
        if len(lines) > MAX_TRACE_LINES:
            lines = [*lines[:MAX_TRACE_LINES], f"... {len(entry.trace) - MAX_TRACE_LINES} more lines"]
        found.append("\n".join(lines))
    if entry.embedded_trace:
        found.append(entry.embedded_trace)
    return found


def _skip_blank(texts: list[str], j: int) -> int:
    while j < len(texts) and not texts[j]:
        j += 1
    return j


# -- rate, stalls, repeats ----------------------------------------------------------------------------


def _rate_and_stalls(line_ts: list[tuple[int, float]], stall_seconds: float) -> tuple[float | None, list[float]]:
    """Lines per second between the first and the last timestamped line; the gaps longer than the threshold."""
    stalls = []
    for (_, before), (_, after) in pairwise(line_ts):
        gap = after - before
        if gap > stall_seconds:
            stalls.append(round(gap, 3))
    if len(line_ts) < 2:
        return None, stalls
    (first_index, first), (last_index, last) = line_ts[0], line_ts[-1]
    span = last - first
    if span <= 0:
        return None, stalls
    return round((last_index - first_index) / span, 3), stalls


def _collapse(entries: list[_Entry]) -> list[str]:
    """The log as a reader wants it: consecutive repeats (equal but for numbers and ids) as `line (xN)`."""
    shown: list[str] = []
    counts: list[int] = []
    last_text = ""
    for entry in entries:
        items = [entry.text] if entry.text else []
        if entry.trace:
            items.append(f"{entry.trace_headline} [{entry.trace_kind} stack trace, {len(entry.trace)} lines]")
        for text in items:
            if shown and _repeats(text, last_text):
                counts[-1] += 1
            else:
                shown.append(_clip(text))
                counts.append(1)
            last_text = text
    collapsed = [text if count == 1 else f"{text} (x{count})" for text, count in zip(shown, counts, strict=True)]
    if len(collapsed) > MAX_COLLAPSED:
        head, tail = MAX_COLLAPSED // 2, MAX_COLLAPSED // 2 - 1
        omitted = len(collapsed) - head - tail
        collapsed = [*collapsed[:head], f"... {omitted} more entries ...", *collapsed[-tail:]]
    return collapsed


def _repeats(text: str, previous: str) -> bool:
    """Equal but for the tokens that carry a digit. Masking never crosses a space, so the lines are compared
    word by word and only the words that differ are masked: most pairs differ in a plain word early."""
    if text == previous:
        return True
    words, previous_words = text[:MAX_PARSE].split(" "), previous[:MAX_PARSE].split(" ")
    if len(words) != len(previous_words):
        return False
    return all(a == b or _normalize(a) == _normalize(b) for a, b in zip(words, previous_words, strict=True))


def _normalize(text: str) -> str:
    return _VARIABLE_TOKEN.sub("#", text)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


# -- levels and time ----------------------------------------------------------------------------------


def _level(word: str | None) -> str | None:
    return _LEVEL_WORDS.get(word.lower()) if word else None


def _pino_level(number: float) -> str:
    """pino and bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal."""
    if number <= 20:
        return "debug"
    if number <= 30:
        return "info"
    if number <= 40:
        return "warning"
    if number <= 50:
        return "error"
    return "fatal"


def _is_exception_name(name: str) -> bool:
    return name.endswith(("Exception", "Error", "Throwable"))


def _after(message: str, separator: str, limit: int = 300) -> str:
    """The message after its logger's name (`c.e.App : msg`, `com.example.App - msg`, `name: msg`)."""
    at = message.find(separator, 0, limit)
    if at < 0 or " " in message[:at].strip():
        return message
    return message[at + len(separator):]


_DAYS: dict[tuple[str, str, str], float] = {}  # (year, month, day) -> epoch seconds of its midnight


def _epoch(m: re.Match[str], year: str | None = None) -> float | None:
    """Epoch seconds of a matched timestamp (groups Y M D h m s frac zone); naive times are taken as UTC."""
    try:
        if year is None:
            year, month, day, hours, minutes, secs, frac = m.group("Y", "M", "D", "h", "m", "s", "frac")
        else:
            month, day, hours, minutes, secs, frac = m.group("M", "D", "h", "m", "s", "frac")
        midnight = _DAYS.get((year, month, day))
        if midnight is None:
            if len(_DAYS) > 4096:
                _DAYS.clear()
            midnight = _DAYS[(year, month, day)] = datetime(int(year), int(month), int(day), tzinfo=UTC).timestamp()
        seconds = midnight + int(hours) * 3600 + int(minutes) * 60 + int(secs)
    except (TypeError, ValueError, IndexError):
        return None
    if frac:
        seconds += int(frac) / 10 ** len(frac)
    if "zone" in m.re.groupindex:
        seconds -= _zone_offset(m["zone"])
    return seconds


def _zone_offset(zone: str | None) -> int:
    if not zone or zone == "Z":
        return 0
    digits = zone[1:].replace(":", "")
    offset = int(digits[:2]) * 3600 + int(digits[2:4]) * 60
    return offset if zone[0] == "+" else -offset


def _epoch_parts(year: int, month: int, day: int, m: re.Match[str]) -> float | None:
    """Epoch seconds from a date given apart and a match's h m s frac (JUL's month names, logback's time alone)."""
    try:
        midnight = datetime(year, month, day, tzinfo=UTC).timestamp()
    except ValueError:
        return None
    hours, minutes, secs, frac = m.group("h", "m", "s", "frac")
    return midnight + int(hours) * 3600 + int(minutes) * 60 + int(secs) + (int(frac) / 10 ** len(frac) if frac else 0)


def _json_time(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        for threshold, scale in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3)):  # ns, µs, ms since the epoch
            if number > threshold:
                return number / scale
        return number
    if isinstance(value, str):
        m = _ISO_AT_START.match(value)
        return _epoch(m) if m else None
    return None
