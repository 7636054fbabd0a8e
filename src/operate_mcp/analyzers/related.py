"""What an analyzer may look at besides its own objects: events by object, objects by owner.

Built once per namespace by the caller from everything it read, so analyzers share one index and
never list anything themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from operate_mcp.analyzers.objects import KubeObject, meta
from operate_mcp.model.finding import Evidence

LOGS = "logs"  # pseudo-resource: container log tails the caller read (see analyzers/logs.py)


def _involved(event: KubeObject) -> Mapping[str, Any]:
    """The object an event is about: `involvedObject` (core/v1) or `regarding` (events.k8s.io/v1)."""
    value = event.get("involvedObject") or event.get("regarding") or {}
    return value if isinstance(value, Mapping) else {}


def _count(event: KubeObject) -> int:
    series = event.get("series")
    count = series.get("count") if isinstance(series, Mapping) else None
    if not isinstance(count, int):
        count = event.get("count") or event.get("deprecatedCount")
    return count if isinstance(count, int) and count > 0 else 1


def _when(event: KubeObject) -> str:
    """The time it was last seen, as the API server wrote it (RFC 3339 strings sort by time)."""
    series = event.get("series")
    last = series.get("lastObservedTime") if isinstance(series, Mapping) else None
    return str(
        last
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or meta(event).get("creationTimestamp")
        or ""
    )


def event_text(event: KubeObject) -> str:
    """`Warning BackOff (x4): Back-off restarting failed container`: type, reason, count, message."""
    count = _count(event)
    times = f" (x{count})" if count > 1 else ""
    message = str(event.get("message") or event.get("note") or "").strip()
    return f"{event.get('type', 'Normal')} {event.get('reason', '')}{times}: {message}"


class Related:
    """An index over every object read in one namespace, keyed by resource (`pods`, `events`, ...)."""

    def __init__(self, objects: Mapping[str, Sequence[KubeObject]]) -> None:
        self._objects = objects
        self._events: dict[tuple[str, str, str], list[KubeObject]] = defaultdict(list)
        for event in objects.get("events", ()):
            who = _involved(event)
            key = (str(who.get("kind", "")), str(who.get("namespace", "")), str(who.get("name", "")))
            self._events[key].append(event)
        for found in self._events.values():
            found.sort(key=_when, reverse=True)
        self._logs: dict[tuple[str, str, str, bool], Sequence[str]] = {}
        for log in objects.get(LOGS, ()):
            m = meta(log)
            key = (str(m.get("namespace", "")), str(m.get("name", "")), str(log.get("container")))
            self._logs[(*key, bool(log.get("previous")))] = [str(line) for line in log.get("lines") or ()]
        self._children: dict[str, list[KubeObject]] = defaultdict(list)
        for resource, items in objects.items():
            if resource in ("events", LOGS):
                continue
            for obj in items:
                for ref in meta(obj).get("ownerReferences") or ():
                    if isinstance(ref, Mapping) and ref.get("uid"):
                        self._children[str(ref["uid"])].append(obj)

    def objects(self, resource: str) -> Sequence[KubeObject]:
        return self._objects.get(resource, ())

    def has(self, resource: str) -> bool:
        """Whether `resource` was read: an empty list means "none exist", an absent one "unknown"
        (forbidden, not served), and an analyzer says nothing it cannot prove."""
        return resource in self._objects

    def log(self, pod: KubeObject, container: str, *, previous: bool) -> Sequence[str] | None:
        """The log lines read for one container (its previous instance's with `previous`), if read."""
        m = meta(pod)
        return self._logs.get((str(m.get("namespace", "")), str(m.get("name", "")), container, previous))

    def events(self, obj: KubeObject) -> list[KubeObject]:
        """Events about `obj`, newest first; never those of an earlier object of the same name (by uid)."""
        m = meta(obj)
        uid = m.get("uid")
        found = self._events.get((str(obj.get("kind", "")), str(m.get("namespace", "")), str(m.get("name", ""))), [])
        return [e for e in found if not uid or not _involved(e).get("uid") or _involved(e).get("uid") == uid]

    def events_for(
        self,
        obj: KubeObject,
        *,
        warning_only: bool = False,
        reasons: Iterable[str] | None = None,
        limit: int = 3,
        name_object: bool = False,
    ) -> list[Evidence]:
        """The newest matching events about `obj` as evidence; `name_object` prefixes `Kind/name: `."""
        wanted = set(reasons) if reasons is not None else None
        prefix = f"{obj.get('kind')}/{meta(obj).get('name')}: " if name_object else ""
        picked: list[Evidence] = []
        for event in self.events(obj):
            if warning_only and event.get("type") != "Warning":
                continue
            if wanted is not None and event.get("reason") not in wanted:
                continue
            picked.append(Evidence(source="event", text=prefix + event_text(event)))
            if len(picked) >= limit:
                break
        return picked

    def owned(self, owner: KubeObject, kind: str | None = None) -> list[KubeObject]:
        """Objects whose ownerReferences name `owner` (a Deployment's ReplicaSets, a ReplicaSet's Pods)."""
        uid = meta(owner).get("uid")
        children = self._children.get(str(uid), []) if uid else []
        return [c for c in children if kind is None or c.get("kind") == kind]

    def descendants(self, owner: KubeObject, kind: str | None = None) -> list[KubeObject]:
        """Everything `owner` owns, transitively: a Deployment's ReplicaSets and their Pods."""
        found: list[KubeObject] = []
        seen: set[str] = set()
        queue = [owner]
        while queue:
            for child in self.owned(queue.pop()):
                uid = str(meta(child).get("uid"))
                if uid in seen:
                    continue
                seen.add(uid)
                found.append(child)
                queue.append(child)
        return [c for c in found if kind is None or c.get("kind") == kind]

    def pods_of(self, owner: KubeObject) -> list[KubeObject]:
        return self.descendants(owner, "Pod")
