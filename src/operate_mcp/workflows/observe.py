"""observe: what the execution path asks of observation — the cluster before and after the commands,
the outcome checks and verification commands after validation. Best effort where it only informs (a
snapshot that cannot be read says so in its `errors`); binding where it judges (a failed outcome check
fails the run like a failed validation check).
"""

from __future__ import annotations

import json
import logging
import threading

import anyio

from operate_mcp.errors import OperateError
from operate_mcp.kube.context import default_namespace
from operate_mcp.kube.reader import reader_for
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.targets import unique_targets
from operate_mcp.model.observation import LogAnalysis, Snapshot
from operate_mcp.model.session import Check, Session
from operate_mcp.observe.anomalies import detect, load_rules
from operate_mcp.observe.baselines import Baselines
from operate_mcp.observe.context import capture
from operate_mcp.observe.logparse import analyze_log
from operate_mcp.observe.outcomes import load_specs, run_checks, run_verification
from operate_mcp.records.category import categorize
from operate_mcp.records.models import ExecutionRecord
from operate_mcp.workflows.operate import OperateDeps

logger = logging.getLogger(__name__)
_client_versions: dict[str, str] = {}
_lock = threading.Lock()


def client_version(kubectl: Kubectl) -> str:
    """kubectl's own version (`v1.34.4`), read once per binary."""
    with _lock:
        if kubectl.binary in _client_versions:
            return _client_versions[kubectl.binary]
    result = kubectl.run(["kubectl", "version", "--client", "-o", "json"])
    try:
        version = str(json.loads(result.stdout)["clientVersion"]["gitVersion"]) if result.ok else ""
    except (ValueError, KeyError, TypeError):
        version = ""
    with _lock:
        _client_versions[kubectl.binary] = version
    return version


def snapshot(deps: OperateDeps, session: Session) -> Snapshot | None:
    """The touched objects now; None when the cluster cannot be reached at all (the run says why)."""
    targets = unique_targets(session.proposal.command_list())
    if not targets:
        return None
    try:
        return capture(
            reader_for(deps.kubectl),
            targets,
            default_namespace=default_namespace(deps.kubectl),
            client_version=client_version(deps.kubectl),
        )
    except OperateError as exc:
        logger.warning("no snapshot for %s: %s", session.id, exc)
        return None


async def snapshot_async(deps: OperateDeps, session: Session) -> Snapshot | None:
    return await anyio.to_thread.run_sync(snapshot, deps, session)


def outcome_checks(deps: OperateDeps, session: Session) -> list[Check]:
    """The outcome spec of the run's category (or of a pattern it applied), then its verification commands."""
    commands = session.proposal.command_list()
    targets = unique_targets(commands)
    try:
        specs = load_specs(deps.settings.data_dir)
    except OperateError as exc:
        return [Check(name="outcome specs", ok=False, detail=str(exc)[:500])]
    category = categorize(session.purpose, commands)
    checks = specs.checks_for(category, session.proposal.patterns_applied)
    found = run_checks(
        reader_for(deps.kubectl), specs, checks, targets, default_namespace=default_namespace(deps.kubectl)
    )
    return found + run_verification(deps.kubectl, session.proposal.verification)


async def outcome_checks_async(deps: OperateDeps, session: Session) -> list[Check]:
    return await anyio.to_thread.run_sync(outcome_checks, deps, session)


def analyze_logs(deps: OperateDeps, before: Snapshot | None, after: Snapshot | None) -> list[LogAnalysis]:
    """What the captured logs say after the change, error templates marked new or known. The logs from
    before the change are mined first, so an error that was already there is never "new"."""
    # lazy: drain3 and jsonpickle (~0.05 s) are only needed once logs are mined, never to list tools
    from operate_mcp.observe.templates import ErrorTemplates

    templates = ErrorTemplates(deps.settings.data_dir)
    for log in before.logs if before is not None else ():
        analyze_log(log, templates=templates)
    return [analyze_log(log, templates=templates) for log in (after.logs if after is not None else ())]


def find_anomalies(deps: OperateDeps, record: ExecutionRecord) -> list[str]:
    """The anomalies of a finished run, saved (P1/P2 alerted by the store); their ids for the record.
    Detection informs, it never fails an execution: a broken rule or store is logged and skipped."""
    if deps.anomalies is None or deps.records is None:
        return []
    try:
        rules = load_rules(deps.settings.data_dir)
        for problem in rules.problems:
            logger.warning("anomaly rules: %s", problem)
        found = detect(record, store=deps.records, baselines=Baselines(deps.anomalies), rules=rules)
        deps.anomalies.save_many(found, intent=record.intent)
    except Exception:
        logger.exception("anomaly detection failed for %s", record.id)
        return []
    return [a.id for a in found]
