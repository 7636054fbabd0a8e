"""CronJobs: an invalid schedule, a schedule that never fired, the newest Job failed, suspension.

No clock (analyzers are pure): "now" is the newest time the objects read show (`observed_time`), a lower
bound of the real now, so an age is never overstated: a CronJob in a quiet namespace may be reported
late, never wrongly. Without a cron library installed, "never scheduled" is judged against a day, not
against the schedule's own period: created more than 24 h before that time and never scheduled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from operate_mcp.analyzers.job import created, failed_condition
from operate_mcp.analyzers.objects import KubeObject, deleting, meta, shown_condition, spec, status
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding

NEVER_SCHEDULED_AFTER = timedelta(hours=24)
SCHEDULE_EVENTS = frozenset({"UnparseableSchedule", "InvalidSchedule", "UnknownTimeZone", "MissSchedule"})


class CronJobAnalyzer:
    """Suspended is `info`: someone chose it, yet nothing runs until someone un-suspends it, which a person
    looking at the namespace should know (post-execution validation does not fail on info)."""

    name = "cronjob"
    resource = "cronjobs"
    cluster_scoped = False
    reads: tuple[str, ...] = ("jobs", "events")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        now = observed_time([*objects, *related.objects("jobs"), *related.objects("events")])
        findings: list[Finding] = []
        for cj in objects:
            if deleting(cj):
                continue
            found = _schedule(cj, related) or _suspended(cj) or _never_scheduled(cj, now, related)
            if found is not None:
                findings.append(found)
            last = _last_job_failed(cj, related)
            if last is not None:
                findings.append(last)
        return findings


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time as the API server writes it (`2026-11-30T01:12:22Z`, with or without fractions)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _times(obj: KubeObject) -> Iterable[object]:
    yield meta(obj).get("creationTimestamp")
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        yield obj.get(key)
    series = obj.get("series")
    if isinstance(series, Mapping):
        yield series.get("lastObservedTime")
    for c in status(obj).get("conditions") or ():
        if isinstance(c, Mapping):
            yield c.get("lastTransitionTime")
            yield c.get("lastProbeTime")
    for key in ("lastScheduleTime", "lastSuccessfulTime", "startTime", "completionTime", "lastScaleTime"):
        yield status(obj).get(key)


def observed_time(objects: Iterable[KubeObject]) -> datetime | None:
    """The newest time any of `objects` shows (written by the API server and controllers): "now" at least."""
    found = [t for obj in objects for t in map(parse_time, _times(obj)) if t is not None]
    return max(found, default=None)


# The five fields robfig/cron's standard parser (the CronJob controller's) accepts, and their names.
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_EVERY = re.compile(r"@every (\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")


def schedule_error(schedule: str) -> str | None:
    """Why the CronJob controller cannot parse `schedule`, or None: the standard five fields, or a descriptor."""
    text = schedule.strip()
    if re.match(r"(CRON_)?TZ=\S+\s", text):
        text = text.split(None, 1)[1]
    if text.startswith("@"):
        return None if text in _DESCRIPTORS or _EVERY.fullmatch(text) else f"unrecognized descriptor {text}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}"
    for value, (field, low, high, names) in zip(fields, _FIELDS, strict=True):
        for item in value.split(","):
            error = _item_error(item, low, high, names)
            if error:
                return f"{field} {value!r}: {error}"
    return None


def _item_error(item: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    span, _, step = item.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        return f"step {step!r} is not a positive number"
    if span in ("*", "?"):
        return None
    bounds = span.split("-")
    if len(bounds) > 2 or not all(bounds):
        return f"{span!r} is not a number or a range"
    for bound in bounds:
        number = names.index(bound.lower()) + low if bound.lower() in names else None
        if number is None and not bound.isdigit():
            return f"{bound!r} is not a number"
        number = int(bound) if number is None else number
        if not low <= number <= high:
            return f"{number} is outside {low}-{high}"
    if len(bounds) == 2 and int(_number(bounds[0], low, names)) > int(_number(bounds[1], low, names)):
        return f"range {span} runs backwards"
    return None


def _number(bound: str, low: int, names: tuple[str, ...]) -> int:
    return names.index(bound.lower()) + low if bound.lower() in names else int(bound)


def _schedule(cj: KubeObject, related: Related) -> Finding | None:
    schedule = str(spec(cj).get("schedule") or "")
    error = schedule_error(schedule)
    if error is None:
        return None
    return Finding.of(
        cj,
        problem=f"its schedule {schedule!r} is not a valid cron schedule ({error}): no Job will ever be created",
        severity="error",
        evidence=[Evidence.spec("spec.schedule", schedule), *related.events_for(cj, reasons=SCHEDULE_EVENTS)],
    )


def _suspended(cj: KubeObject) -> Finding | None:
    if spec(cj).get("suspend") is not True:
        return None
    return Finding.of(
        cj,
        problem="it is suspended: no Job is scheduled until spec.suspend is false",
        severity="info",
        evidence=[Evidence.spec("spec.suspend", True)],
    )


def _never_scheduled(cj: KubeObject, now: datetime | None, related: Related) -> Finding | None:
    born = parse_time(meta(cj).get("creationTimestamp"))
    if status(cj).get("lastScheduleTime") or born is None or now is None or now - born < NEVER_SCHEDULED_AFTER:
        return None
    hours = int((now - born).total_seconds() // 3600)
    return Finding.of(
        cj,
        problem=f"it has never been scheduled, {hours} hours after it was created",
        severity="warning",
        evidence=[
            Evidence.spec("spec.schedule", spec(cj).get("schedule")),
            Evidence.status("metadata.creationTimestamp", meta(cj).get("creationTimestamp")),
            Evidence.status("status.lastScheduleTime", "not set"),
            *related.events_for(cj, warning_only=True),
        ],
    )


def _last_job_failed(cj: KubeObject, related: Related) -> Finding | None:
    jobs: list[KubeObject] = sorted(
        related.owned(cj, "Job"), key=lambda j: (created(j), str(meta(j).get("name")))
    )
    if not jobs:
        return None
    newest = jobs[-1]
    failed: Mapping[str, Any] | None = failed_condition(newest)
    if failed is None or deleting(newest):
        return None
    name = str(meta(newest).get("name"))
    evidence = [Evidence.related("Job", name, f"status.conditions[Failed]: {shown_condition(failed)}")]
    for key in ("lastScheduleTime", "lastSuccessfulTime"):
        if status(cj).get(key):
            evidence.append(Evidence.status(f"status.{key}", status(cj)[key]))
    evidence += related.events_for(cj, warning_only=True)
    evidence += related.events_for(newest, warning_only=True, name_object=True, limit=1)
    return Finding.of(
        cj,
        problem=f"its last Job {name} failed ({failed.get('reason') or 'Failed'})",
        severity="error",
        evidence=evidence,
    )
