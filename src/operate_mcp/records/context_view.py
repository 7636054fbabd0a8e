"""A record's observed context as lines for a person (`operate-mcp runs show`): the workloads and pods
before and after, their events, usage and log lines, and what the logs say. Cluster text is made inert
(control characters escaped) so a log line cannot redraw the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from operate_mcp.model.observation import LogAnalysis, Snapshot

MAX_LOG_LINES = 8


def _inert(text: str) -> str:
    return "".join(ch if ch.isprintable() or ch == "\t" else f"\\x{ord(ch):02x}" for ch in text)


def snapshot_lines(title: str, snap: Snapshot | None) -> list[str]:
    if snap is None:
        return [f"{title}: not captured"]
    lines = [
        f"{title} ({snap.at:%H:%M:%S} UTC, cluster {snap.cluster_version or '?'}, kubectl "
        f"{snap.client_version or '?'}, read in {snap.read_seconds:.2f}s)"
    ]
    for w in snap.workloads:
        if not w.exists:
            lines.append(f"  {w.kind}/{w.name}: not found")
            continue
        images = ", ".join(f"{i.container}={i.image}" for i in w.images)
        lines.append(
            f"  {w.kind}/{w.name}: {w.ready}/{w.replicas} ready, {w.available} available, {w.updated} updated; {images}"
        )
    usage = {u.pod: u for u in snap.usage}
    for p in snap.pods:
        state = p.phase + (" ready" if p.ready else " not ready")
        if p.waiting_reason:
            state += f", waiting {p.waiting_reason}"
        if p.restarts:
            state += f", {p.restarts} restarts"
        if p.last_termination_reason:
            state += f", last exit {p.last_exit_code} ({p.last_termination_reason})"
        u = usage.get(p.name)
        if u is not None:
            pct = f" ({u.memory_percent:.0f}% of limit)" if u.memory_percent is not None else ""
            state += f"; cpu {u.cpu_millicores:.0f}m, memory {u.memory_bytes / 2**20:.0f}Mi{pct}"
        ids = ", ".join(i.image_id.rsplit("@", 1)[-1][:19] for i in p.images if i.image_id)
        lines.append(f"    Pod/{p.name}: {state}" + (f"; image id {ids}" if ids else ""))
    lines += [f"    event {_inert(e)}" for e in snap.events[:10]]
    for log in snap.logs:
        which = "previous" if log.previous else "current"
        lines.append(
            f"    log {log.pod}/{log.container} ({which}, last {min(len(log.lines), MAX_LOG_LINES)} "
            f"of {len(log.lines)} lines):"
        )
        lines += [f"      {_inert(line)}" for line in log.lines[-MAX_LOG_LINES:]]
    lines += [f"    not read: {e}" for e in snap.errors]
    return lines


def log_analysis_lines(analyses: Sequence[LogAnalysis]) -> list[str]:
    lines = []
    for a in analyses:
        which = "previous" if a.previous else "current"
        levels = ", ".join(f"{k} {v}" for k, v in sorted(a.levels.items()))
        lines.append(
            f"  {a.pod}/{a.container} ({which}, {a.format}): {a.lines} lines; {levels or 'no levels'}; "
            f"{a.errors} errors"
        )
        if a.first_error:
            lines.append(f"    first error: {_inert(a.first_error)}")
        lines += [f"    {'NEW ' if t.new else ''}template (x{t.count}): {_inert(t.template)}" for t in a.templates[:5]]
    return lines
