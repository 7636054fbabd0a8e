"""Anomaly detection after every execution (and on demand): rules in YAML, conditions in CEL over the record.

The default rules are `observe/rules/default.yaml`; operators add or replace rules (same `id`) with
YAML files in `<data_dir>/anomaly-rules/*.yaml`. A rule file or rule that is wrong is reported with
its file and rule, and every other rule still runs. Our code computes the facts — the pods and usage
before and after, the log windows, the duration baselines (baselines.py), the same operation's
recent history from the records store — and the rules only judge them, in CEL: no I/O, no Python
eval, a bounded expression size and comprehension depth over bounded lists. A rule that fails at run
time is logged once and skipped; detection itself never fails because of a rule.

Variables every rule sees (`variables()` builds them; numbers that can be fractional are doubles):

  record    id, category, status, succeeded, failed, purpose, intent, caller, triggered_by, started_at
            (timestamp), duration_seconds, failed_step, error ("" when none), namespaces, resources, tags,
            commands [{index, step, command, exit_code, duration_seconds, timed_out, ok}],
            outcome_checks [{name, ok, detail}], failed_checks [names]
  before    captured (bool), workloads [{ref, kind, name, namespace, exists, replicas, ready, available,
  after       updated} (-1 when unknown)], pods [{name, namespace, workload, owner, phase, ready, restarts,
            waiting_reason, last_termination_reason, last_exit_code (-1 none), node, new, restarts_added,
            reasons}], events, warning_events, errors. `after.pods[].new`: not there before;
            `restarts_added`: restarts since the before snapshot (all of a new pod's);
            `reasons`: the waiting reason, and the last termination reason when it is fresh (restarted).
  usage     workloads [{workload, namespace, before_percent, after_percent (of the memory limit, -1.0
            unknown), increase_pp, before_bytes, after_bytes, limit_bytes}], max_increase_pp,
            before / after [{pod, namespace, workload, cpu_millicores, memory_bytes, memory_limit_bytes,
            memory_percent}]
  logs      before / after {lines, errors, error_rate (errors per line), error_lines}: the snapshots'
            log tails read by logparse; analyses [{pod, namespace, container, workload, previous, format, lines, errors,
            first_error, stack_traces, lines_per_second, stalls, templates [{template, count, new}]}];
            new_templates [{template, count, pod, namespace, container, workload}]; first_error
  baseline  the run's duration against its category's baseline: duration, known, samples, min_samples,
            ewma, median, mad, z (robust z-score), ratio (duration / ewma), and steps [same, with step]
  history   this category's runs on the same targets within the flaky window (this run excluded):
            window_hours, runs [{id, status, started_at (ISO text), resources}], succeeded [ids],
            failed [ids], targets (the resources they share with this run)
  params    the rule's own `params` (thresholds, lists), so an operator tunes a rule without rewriting it
Functions: CEL's own, min/max/sum, string helpers (join, split, lowerAscii, ...), math.*, sets.*,
list helpers (distinct, sort, first, ...), and fixed(number, digits) -> "12.3".
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from operate_mcp.errors import ConfigError
from operate_mcp.model.observation import (
    Anomaly,
    AnomalySeverity,
    ContainerLog,
    LogAnalysis,
    PodState,
    Snapshot,
    TemplateCount,
    Usage,
)
from operate_mcp.observe.baselines import Baselines, Judgement, RunJudgement
from operate_mcp.observe.logparse import analyze_log
from operate_mcp.records.anomaly_store import anomaly_id
from operate_mcp.records.category import step_kind
from operate_mcp.records.models import FAILURE_STATUSES, ExecutionRecord, RecordError, RunStatus
from operate_mcp.records.store import RecordStore
from operate_mcp.redact import redact_text

logger = logging.getLogger(__name__)

RULES_DIR = "anomaly-rules"
DEFAULT_RULES = "rules/default.yaml"  # package data of operate_mcp.observe
FLAKY_WINDOW = timedelta(hours=24)
SUCCESS_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.ROLLED_BACK})
MAX_EXPRESSION_CHARS = 2_000
MAX_COMPREHENSION_DEPTH = 2  # x.exists(p, p.reasons.exists(...)): lists are capped, so work is bounded
MAX_LIST_ITEMS = 200  # each list a rule sees
MAX_TEXT_CHARS = 500  # expected, actual, each evidence line
MAX_EVIDENCE = 20
MAX_HISTORY_RUNS = 200
MAX_SIMILAR_RUNS = 5
SEVERITIES: tuple[AnomalySeverity, ...] = ("P1", "P2", "P3")

_RULE_ID = r"^[a-z][a-z0-9_.-]{0,63}$"
_MACRO_CALL = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*$")
_WORD = re.compile(r"[A-Za-z][A-Za-z_-]{3,}")
_STOP_WORDS = frozenset({"error", "with", "from", "that", "this", "have", "were", "will", "into", "when", "then"})


class AnomalyRuleError(ConfigError):
    """An anomaly rule that cannot be loaded; the message names the file and the rule."""


class AnomalyRule(BaseModel):
    """One rule as written in YAML. Every expression is CEL over the variables in this module's docstring."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_RULE_ID)
    description: str = ""
    enabled: bool = True
    severity: AnomalySeverity
    severity_expression: str | None = None  # CEL -> "P1" | "P2" | "P3"; `severity` when it fails
    condition: str  # CEL -> bool
    expected: str  # CEL -> text
    actual: str  # CEL -> text
    evidence: str | None = None  # CEL -> list of text (or one text)
    target: str | None = None  # CEL -> kind/name; the record's first resource by default
    namespace: str | None = None  # CEL -> namespace; the record's first namespace by default
    suggested_action: str = ""
    params: dict[str, Any] = Field(default_factory=dict)

    def expressions(self) -> dict[str, str]:
        fields = ("condition", "severity_expression", "expected", "actual", "evidence", "target", "namespace")
        return {name: value for name in fields if isinstance(value := getattr(self, name), str)}


class _RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Any] = Field(default_factory=list)  # each validated on its own: one bad rule spoils only itself


@dataclass
class CompiledRule:
    rule: AnomalyRule
    source: str  # the file it came from
    programs: dict[str, Any]  # field name -> cel.Program


@dataclass
class RuleSet:
    """The rules in force and what could not be loaded (each problem names its file and rule)."""

    rules: tuple[CompiledRule, ...]
    problems: tuple[str, ...] = ()
    _reported: set[str] = field(default_factory=set, repr=False)

    def by_id(self, rule_id: str) -> AnomalyRule:
        for compiled in self.rules:
            if compiled.rule.id == rule_id:
                return compiled.rule
        raise KeyError(rule_id)

    def report_once(self, key: str, message: str) -> None:
        if key not in self._reported and len(self._reported) < 10_000:
            self._reported.add(key)
            logger.warning("%s", message)


# -- CEL: compiled with bounds, evaluated with a fixed, pure function set ----------------------------------


def _cel() -> Any:
    try:
        import cel  # the compiled CEL library; imported when rules load, not when the server starts
    except ImportError as exc:
        raise ConfigError("anomaly rules need the CEL library: pip install common-expression-language") from exc
    return cel


def _fixed(value: Any, digits: Any = 1) -> str:
    places = max(0, min(6, int(digits)))
    return f"{float(value):.{places}f}"


def _functions() -> dict[str, Callable[..., Any]]:
    """CEL's extended library minus what could grow without bound (`replace`, `lists.range`) or is no use here."""
    from cel.stdlib import EXTENSIONS  # same library as _cel(), loaded with it

    chosen: dict[str, Callable[..., Any]] = {}
    for library in ("core", "strings", "math", "sets", "lists"):
        chosen.update(EXTENSIONS[library])
    for unbounded in ("replace", "lists.range"):
        chosen.pop(unbounded, None)
    chosen["fixed"] = _fixed
    return chosen


def comprehension_depth(expression: str) -> int:
    """How deeply the comprehension macros (all, exists, exists_one, map, filter) nest; string literals skipped."""
    depth = deepest = 0
    stack: list[bool] = []
    quote: str | None = None
    i = 0
    while i < len(expression):
        ch = expression[i]
        if quote is not None:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            macro = bool(_MACRO_CALL.search(expression[:i]))
            stack.append(macro)
            depth += macro
            deepest = max(deepest, depth)
        elif ch == ")" and stack:
            depth -= stack.pop()
        i += 1
    return deepest


def compile_expression(expression: str) -> Any:
    """A CEL program, refused when it is longer or nests comprehensions deeper than evaluation may cost."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"is {len(expression)} characters long; the limit is {MAX_EXPRESSION_CHARS}")
    depth = comprehension_depth(expression)
    if depth > MAX_COMPREHENSION_DEPTH:
        raise ValueError(
            f"nests comprehensions (exists, all, map, filter) {depth} deep; the limit is {MAX_COMPREHENSION_DEPTH}"
        )
    try:
        return _cel().compile(expression)
    except ValueError as exc:
        raise ValueError(f"does not compile as CEL: {exc}") from exc


def _context(variables: Mapping[str, Any]) -> Any:
    return _cel().Context(variables=dict(variables), functions=_functions())


# -- loading rules -----------------------------------------------------------------------------------------


def _compile_rule(raw: Any, source: str, index: int) -> CompiledRule:
    name = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else f"#{index + 1}"
    where = f"{source}: rule {name}"
    try:
        rule = AnomalyRule.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}" for e in exc.errors())
        raise AnomalyRuleError(f"{where}: {problems}") from None
    programs: dict[str, Any] = {}
    for field_name, expression in rule.expressions().items():
        try:
            programs[field_name] = compile_expression(expression)
        except ValueError as exc:
            raise AnomalyRuleError(f"{where}: `{field_name}` {exc}") from None
    compiled = CompiledRule(rule, source, programs)
    _try_on_sample(compiled, where)
    return compiled


def _try_on_sample(compiled: CompiledRule, where: str) -> None:
    """Run every expression on a sample run: a misspelt variable or field is refused now, not at 3 a.m.
    Errors that depend on the data (an index past the end, a filter that found nothing) are not."""
    context = _context({**_sample_variables(), "params": compiled.rule.params})
    for field_name, program in compiled.programs.items():
        try:
            program.execute(context)
        except KeyError as exc:
            raise AnomalyRuleError(f"{where}: `{field_name}` reads a field that does not exist: {exc}") from None
        except RuntimeError as exc:
            if "Undefined variable" in str(exc):
                raise AnomalyRuleError(f"{where}: `{field_name}`: {exc}") from None
        except Exception:  # data-dependent (IndexError, TypeError on a sample value): judged at run time  # noqa: S110
            pass


def _read_file(text: str, source: str) -> tuple[list[CompiledRule], list[str]]:
    try:
        data = yaml.safe_load(text)
        parsed = _RuleFile.model_validate(data if data is not None else {})
    except yaml.YAMLError as exc:
        return [], [f"{source}: not valid YAML ({exc}); none of its rules run until it is fixed"]
    except ValidationError as exc:
        return [], [f"{source}: expected a mapping with a `rules:` list ({exc.errors()[0]['msg']}); "
                    "none of its rules run until it is fixed"]
    rules: list[CompiledRule] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(parsed.rules):
        try:
            compiled = _compile_rule(raw, source, index)
        except AnomalyRuleError as exc:
            problems.append(f"{exc}; fix or delete it (the other rules still run)")
            continue
        if compiled.rule.id in seen:
            problems.append(f"{source}: rule {compiled.rule.id} appears twice; the second one is ignored")
            continue
        seen.add(compiled.rule.id)
        rules.append(compiled)
    return rules, problems


def load_rules(data_dir: Path | None = None) -> RuleSet:
    """The default rules, then `<data_dir>/anomaly-rules/*.yaml` in name order; a rule with the id of an
    earlier one replaces it (`enabled: false` turns it off). Problems are logged and kept in `problems`."""
    default = resources.files("operate_mcp.observe").joinpath(DEFAULT_RULES)
    by_id: dict[str, CompiledRule] = {}
    rules, problems = _read_file(default.read_text(encoding="utf-8"), f"operate_mcp/observe/{DEFAULT_RULES}")
    by_id.update((c.rule.id, c) for c in rules)
    folder = data_dir / RULES_DIR if data_dir is not None else None
    if folder is not None and folder.is_dir():
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"{path}: cannot be read ({exc}); none of its rules run")
                continue
            found, file_problems = _read_file(text, str(path))
            problems.extend(file_problems)
            by_id.update((c.rule.id, c) for c in found)
    for problem in problems:
        logger.warning("anomaly rules: %s", problem)
    return RuleSet(tuple(c for c in by_id.values() if c.rule.enabled), tuple(problems))


def validate_rule_file(path: Path) -> list[str]:
    """The problems of one operator rule file (empty when every rule loads), for a CLI `check` before deploying."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path}: cannot be read ({exc})"]
    return _read_file(text, str(path))[1]


# -- the facts the rules judge -----------------------------------------------------------------------------


def _capped(items: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if len(out) >= MAX_LIST_ITEMS:
            break
        out.append(item)
    return out


def _text(value: str, limit: int = MAX_TEXT_CHARS) -> str:
    value = redact_text(value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _workload_of(pod: PodState) -> str:
    return pod.owner or f"pod/{pod.name}"


def _pod_views(snapshot: Snapshot | None, before: Snapshot | None, *, is_after: bool) -> list[dict[str, Any]]:
    if snapshot is None:
        return []
    earlier = {(p.namespace, p.name): p for p in before.pods} if (is_after and before is not None) else {}
    views = []
    for p in _capped(snapshot.pods):
        prior = earlier.get((p.namespace, p.name))
        new = is_after and before is not None and prior is None
        added = max(0, p.restarts - prior.restarts) if prior is not None else (p.restarts if new else 0)
        reasons = [p.waiting_reason] if p.waiting_reason else []
        if p.last_termination_reason and (added > 0 or not is_after):
            reasons.append(p.last_termination_reason)
        views.append({
            "name": p.name, "namespace": p.namespace, "owner": p.owner, "workload": _workload_of(p),
            "phase": p.phase, "ready": p.ready, "restarts": p.restarts, "waiting_reason": p.waiting_reason,
            "last_termination_reason": p.last_termination_reason,
            "last_exit_code": -1 if p.last_exit_code is None else p.last_exit_code, "node": p.node,
            "new": new, "restarts_added": added, "reasons": reasons,
        })
    return views


def _snapshot_view(snapshot: Snapshot | None, before: Snapshot | None, *, is_after: bool) -> dict[str, Any]:
    if snapshot is None:
        return {"captured": False, "workloads": [], "pods": [], "events": [], "warning_events": [], "errors": []}

    def known(value: int | None) -> int:
        return -1 if value is None else value

    workloads = [
        {"ref": f"{w.kind.lower()}/{w.name}", "kind": w.kind, "name": w.name, "namespace": w.namespace,
         "exists": w.exists, "replicas": known(w.replicas), "ready": known(w.ready),
         "available": known(w.available), "updated": known(w.updated)}
        for w in _capped(snapshot.workloads)
    ]
    return {
        "captured": True,
        "workloads": workloads,
        "pods": _pod_views(snapshot, before, is_after=is_after),
        "events": _capped(snapshot.events),
        "warning_events": _capped(e for e in snapshot.events if e.startswith("Warning")),
        "errors": _capped(snapshot.errors),
    }


def _usage_views(usage: Sequence[Usage], snapshot: Snapshot | None) -> list[dict[str, Any]]:
    owners = {(p.namespace, p.name): _workload_of(p) for p in snapshot.pods} if snapshot else {}
    return [
        {"pod": u.pod, "namespace": u.namespace, "workload": owners.get((u.namespace, u.pod), f"pod/{u.pod}"),
         "cpu_millicores": float(u.cpu_millicores), "memory_bytes": u.memory_bytes,
         "memory_limit_bytes": u.memory_limit_bytes or 0,
         "memory_percent": -1.0 if u.memory_percent is None else float(u.memory_percent)}
        for u in _capped(usage)
    ]


def _usage_view(before: Snapshot | None, after: Snapshot | None) -> dict[str, Any]:
    """Per workload, the highest memory use of its pods as a share of their limit, before and after.

    Pods are compared by workload, not by name: a rollout replaces them."""
    sides = {"before": _usage_views(before.usage if before else [], before),
             "after": _usage_views(after.usage if after else [], after)}
    keys: dict[tuple[str, str], dict[str, Any]] = {}
    for side, views in sides.items():
        for u in views:
            entry = keys.setdefault((u["namespace"], u["workload"]), {
                "workload": u["workload"], "namespace": u["namespace"], "before_percent": -1.0,
                "after_percent": -1.0, "before_bytes": 0, "after_bytes": 0, "limit_bytes": 0, "increase_pp": 0.0,
            })
            entry[f"{side}_percent"] = max(entry[f"{side}_percent"], u["memory_percent"])
            entry[f"{side}_bytes"] = max(entry[f"{side}_bytes"], u["memory_bytes"])
            entry["limit_bytes"] = max(entry["limit_bytes"], u["memory_limit_bytes"])
    for entry in keys.values():
        if entry["before_percent"] >= 0 and entry["after_percent"] >= 0:
            entry["increase_pp"] = entry["after_percent"] - entry["before_percent"]
    workloads = _capped(keys.values())
    return {**sides, "workloads": workloads,
            "max_increase_pp": max((w["increase_pp"] for w in workloads), default=0.0)}


def _log_window(logs: Sequence[ContainerLog]) -> dict[str, Any]:
    """Errors per line of a snapshot's log tails, read by logparse (the same levels the log analysis counts)."""
    lines = errors = 0
    samples: list[str] = []
    for log in logs:
        analysis = analyze_log(log)
        lines += analysis.lines
        errors += analysis.errors
        if analysis.first_error and len(samples) < 5:
            samples.append(_text(f"{log.pod}/{log.container}: {analysis.first_error}", 300))
    return {"lines": lines, "errors": errors, "error_rate": errors / lines if lines else 0.0, "error_lines": samples}


def _logs_view(record: ExecutionRecord) -> dict[str, Any]:
    owners = {(p.namespace, p.name): _workload_of(p)
              for snap in (record.before, record.after) if snap is not None for p in snap.pods}
    analyses = []
    new_templates: dict[str, dict[str, Any]] = {}
    first_error = ""
    for a in _capped(record.log_analysis):
        workload = owners.get((a.namespace, a.pod), f"pod/{a.pod}")
        first_error = first_error or (a.first_error or "")
        analyses.append(_analysis_view(a, workload))
        for t in a.templates:
            if t.new:
                seen = new_templates.setdefault(t.template, {
                    "template": _text(t.template, 300), "count": 0, "pod": a.pod, "namespace": a.namespace,
                    "container": a.container, "workload": workload,
                })
                seen["count"] += t.count
    return {
        "before": _log_window(record.before.logs if record.before else []),
        "after": _log_window(record.after.logs if record.after else []),
        "analyses": analyses,
        "new_templates": _capped(new_templates.values()),
        "first_error": _text(first_error),
    }


def _analysis_view(a: LogAnalysis, workload: str) -> dict[str, Any]:
    def template(t: TemplateCount) -> dict[str, Any]:
        return {"template": _text(t.template, 300), "count": t.count, "new": t.new}

    return {
        "pod": a.pod, "namespace": a.namespace, "container": a.container, "workload": workload,
        "previous": a.previous, "format": a.format, "lines": a.lines, "errors": a.errors,
        "first_error": _text(a.first_error or ""), "stack_traces": len(a.stack_traces),
        "lines_per_second": -1.0 if a.lines_per_second is None else float(a.lines_per_second),
        "stalls": len(a.stalls), "templates": _capped(template(t) for t in a.templates),
    }


def _record_view(record: ExecutionRecord) -> dict[str, Any]:
    commands = [
        {"index": c.index, "step": step_kind(c.argv), "command": _text(" ".join(c.argv), 300),
         "exit_code": c.exit_code, "duration_seconds": float(c.duration_seconds), "timed_out": c.timed_out,
         "ok": c.ok}
        for c in _capped(record.commands)
    ]
    checks = [{"name": c.name, "ok": c.ok, "detail": _text(c.detail)} for c in _capped(record.outcome_checks)]
    return {
        "id": record.id, "category": record.category, "status": record.status.value,
        "succeeded": record.status in SUCCESS_STATUSES, "failed": record.status in FAILURE_STATUSES,
        "purpose": record.purpose, "intent": _text(record.intent), "caller": record.caller,
        "triggered_by": record.triggered_by, "started_at": record.started_at,
        "duration_seconds": float(record.duration_seconds), "failed_step": record.failed_step or "",
        "error": _text(record.error or ""), "namespaces": list(record.namespaces),
        "resources": list(record.resources), "tags": list(record.tags), "commands": commands,
        "outcome_checks": checks, "failed_checks": [c["name"] for c in checks if not c["ok"]],
    }


@dataclass(frozen=True)
class History:
    """This category's recent runs on the same targets, for flaky detection."""

    window: timedelta
    runs: tuple[ExecutionRecord, ...] = ()
    targets: tuple[str, ...] = ()

    def view(self) -> dict[str, Any]:
        return {
            "window_hours": self.window.total_seconds() / 3600.0,
            "runs": [{"id": r.id, "status": r.status.value, "started_at": r.started_at.isoformat(),
                      "resources": list(r.resources)} for r in self.runs],
            "succeeded": [r.id for r in self.runs if r.status in SUCCESS_STATUSES],
            "failed": [r.id for r in self.runs if r.status in FAILURE_STATUSES],
            "targets": list(self.targets),
        }


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def recent_history(record: ExecutionRecord, store: RecordStore, *, now: datetime,
                   window: timedelta = FLAKY_WINDOW) -> History:
    """Runs of the same category that touched one of this run's resources within `window` before `now`."""
    if not record.resources:
        return History(window)
    since = (now - window).astimezone(UTC).isoformat()
    targets = " OR ".join(f"resource:{_quoted(r)}" for r in record.resources[:20])
    query = f"after:{_quoted(since)} ({targets})"
    mine = {r.lower() for r in record.resources}
    runs: list[ExecutionRecord] = []
    shared: dict[str, None] = {}
    try:
        for other in store.iter_matches(query, limit=MAX_HISTORY_RUNS):
            if other.id == record.id or other.category != record.category or other.started_at > now:
                continue
            common = [r for r in other.resources if r.lower() in mine]
            if common:
                runs.append(other)
                shared.update(dict.fromkeys(common))
    except RecordError as exc:
        logger.warning("anomaly detection: could not read the recent runs of %s (%s)", record.id, exc)
    return History(window, tuple(runs), tuple(shared))


def variables(record: ExecutionRecord, *, baseline: RunJudgement, history: History) -> dict[str, Any]:
    """Everything a rule sees (documented in the module docstring), bounded and redacted."""
    return {
        "record": _record_view(record),
        "before": _snapshot_view(record.before, None, is_after=False),
        "after": _snapshot_view(record.after, record.before, is_after=True),
        "usage": _usage_view(record.before, record.after),
        "logs": _logs_view(record),
        "baseline": baseline.view(),
        "history": history.view(),
    }


def similar_failures(record: ExecutionRecord, store: RecordStore, *, limit: int = MAX_SIMILAR_RUNS) -> list[str]:
    """Earlier failed runs with the same failing step or the same words in their first error, newest first."""
    terms: list[str] = []
    if record.failed_step:
        terms.append(f"step:{_quoted(record.failed_step)}")
    error = record.error or next((a.first_error for a in record.log_analysis if a.first_error), None) or ""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(error) if w.lower() not in _STOP_WORDS))[:6]
    if words:
        terms.append("(" + " ".join(_quoted(w) for w in words) + ")")
    if not terms:
        return []
    statuses = " OR ".join(f"status:{s.value}" for s in sorted(FAILURE_STATUSES))
    query = f"({statuses}) before:{_quoted(record.started_at.astimezone(UTC).isoformat())} ({' OR '.join(terms)})"
    try:
        page = store.search(query, per_page=limit + 1)
    except RecordError as exc:
        logger.warning("anomaly detection: could not search for runs like %s (%s)", record.id, exc)
        return []
    return [row.id for row in page.items if row.id != record.id][:limit]


# -- judging -----------------------------------------------------------------------------------------------


def _as_text(value: Any) -> str:
    return _text(value if isinstance(value, str) else str(value))


def _as_evidence(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [_as_text(v) for v in items[:MAX_EVIDENCE] if v not in (None, "")]


def _severity(compiled: CompiledRule, context: Any, record: ExecutionRecord, rules: RuleSet) -> AnomalySeverity:
    """The rule's `severity_expression` when it gives P1, P2 or P3; else (reported once) its `severity`."""
    program = compiled.programs.get("severity_expression")
    if program is None:
        return compiled.rule.severity
    try:
        chosen = program.execute(context)
    except Exception as exc:  # CEL evaluation errors: the anomaly stands at the rule's own severity
        chosen = f"{type(exc).__name__}: {exc}"
    for severity in SEVERITIES:
        if chosen == severity:
            return severity
    rules.report_once(
        f"{compiled.rule.id}:severity",
        f"anomaly rule {compiled.rule.id} ({compiled.source}): `severity_expression` gave {chosen!r} on run "
        f"{record.id}, not P1, P2 or P3; using its `severity` {compiled.rule.severity} (reported once per process)",
    )
    return compiled.rule.severity


def _evaluate(
    compiled: CompiledRule, context: Any, record: ExecutionRecord, now: datetime, rules: RuleSet, late: bool
) -> Anomaly | None:
    rule = compiled.rule

    def run(field_name: str) -> Any:
        return compiled.programs[field_name].execute(context)

    try:
        fired = run("condition")
        if not isinstance(fired, bool):
            raise TypeError(f"`condition` returned {type(fired).__name__}, not bool")
        if not fired:
            return None
        severity = _severity(compiled, context, record, rules)
        expected, actual = _as_text(run("expected")), _as_text(run("actual"))
        evidence = _as_evidence(run("evidence")) if "evidence" in compiled.programs else []
        target = _as_text(run("target")) if "target" in compiled.programs else ""
        namespace = _as_text(run("namespace")) if "namespace" in compiled.programs else ""
    except Exception as exc:  # CEL raises KeyError, TypeError, IndexError, RuntimeError, ...; never fatal
        rules.report_once(
            f"{rule.id}:{type(exc).__name__}",
            f"anomaly rule {rule.id} ({compiled.source}) could not be evaluated on run {record.id}: "
            f"{type(exc).__name__}: {exc}; it is skipped where it fails (reported once per process)",
        )
        return None
    target = target or (record.resources[0] if record.resources else "")
    namespace = namespace or (record.namespaces[0] if record.namespaces else "")
    return Anomaly(
        id=anomaly_id(record.id, rule.id, target),
        run_id=record.id,
        rule=rule.id,
        severity=severity,
        detected_at=now,
        category=record.category,
        namespace=namespace,
        target=target,
        expected=expected,
        actual=actual,
        evidence=evidence,
        suggested_action=_text(rule.suggested_action),
        late=late,
    )


def detect(
    record: ExecutionRecord,
    *,
    store: RecordStore,
    baselines: Baselines,
    rules: RuleSet,
    now: datetime | None = None,
    learn: bool = True,
    late: bool = False,
    flaky_window: timedelta = FLAKY_WINDOW,
) -> list[Anomaly]:
    """The anomalies of one run, each linked to similar past failures; then the run teaches the baselines.

    Nothing is saved here but the baselines: the caller stores the anomalies (AnomalyStore.save_many)
    and puts their ids on the record. `learn=False` judges without learning (a second look on demand).
    """
    now = now or datetime.now(UTC)
    judgement = baselines.judge_record(record)  # before learning: a run is never compared with itself
    history = recent_history(record, store, now=now, window=flaky_window)
    facts = variables(record, baseline=judgement, history=history)
    found: list[Anomaly] = []
    for compiled in rules.rules:
        context = _context({**facts, "params": compiled.rule.params})
        anomaly = _evaluate(compiled, context, record, now, rules, late)
        if anomaly is not None:
            found.append(anomaly)
    if found:
        similar = similar_failures(record, store)
        found = [a.model_copy(update={"similar_runs": similar}) for a in found]
    if learn:
        baselines.learn_record(record, now=now)
    return found


# -- a sample run, to catch misspelt names when rules load -------------------------------------------------


@functools.cache
def _sample_variables() -> dict[str, Any]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    pod = PodState(name="web-1", namespace="shop", owner="deployment/web", phase="Running", ready=True)
    crashed = pod.model_copy(update={"restarts": 1, "waiting_reason": "CrashLoopBackOff",
                                     "last_termination_reason": "OOMKilled", "last_exit_code": 137})
    log = ContainerLog(pod="web-1", namespace="shop", container="web", lines=["ERROR boom", "ok"])

    def snap(p: PodState, memory: int) -> Snapshot:
        usage = Usage(pod="web-1", namespace="shop", cpu_millicores=10.0, memory_bytes=memory, memory_limit_bytes=200)
        return Snapshot(at=at, pods=[p], usage=[usage], logs=[log], events=["Warning BackOff Pod/web-1: x"])

    record = ExecutionRecord.model_validate({
        "id": "run-1767225600000-00000000", "started_at": at, "triggered_by": "cli", "caller": "sample",
        "intent": "sample", "status": "failed", "category": "update",
        "before": snap(pod, 50), "after": snap(crashed, 190),
        "commands": [{"index": 1, "argv": ["kubectl", "scale", "deployment/web", "--replicas=2"], "exit_code": 0,
                      "duration_seconds": 1.0}],
        "outcome_checks": [{"name": "pods_ready", "ok": False, "detail": "1 of 2"}],
        "log_analysis": [LogAnalysis(pod="web-1", namespace="shop", container="web", errors=1, lines=2,
                                     first_error="boom", templates=[TemplateCount(template="boom <*>", count=1,
                                                                                  new=True)])],
        "resources": ["deployment/web"], "namespaces": ["shop"],
    })
    step = {"step": "scale deployment", "duration": 1.0, "samples": 12, "known": True, "ewma": 1.0, "median": 1.0,
            "mad": 0.1, "z": 0.0, "ratio": 1.0}
    baseline = {**step, "step": "", "min_samples": 10, "steps": [step]}
    history = History(FLAKY_WINDOW, (record,), ("deployment/web",)).view()
    unknown = Judgement("update", "", 0.0, 0, False, 0.0, 0.0, 0.0, 0.0, 0.0)
    facts = variables(record, baseline=RunJudgement(unknown, (), 0), history=History(FLAKY_WINDOW))
    return {**facts, "baseline": baseline, "history": history}

