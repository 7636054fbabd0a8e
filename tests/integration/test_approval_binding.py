"""Approvals bound to what was judged, on the real control plane over MCP (security issue #9, findings 1, 8, 11
and the recomputed tier of finding 2). The scripted provider stands in for the hosted LLM."""

from __future__ import annotations

import subprocess

import pytest
from mcp import Client
from mcp_types import ElicitResult

from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.audit.log import AuditLog
from operate_mcp.governance.approval import AUTO_TRIVIAL, ApprovalError
from operate_mcp.kube.classifier import classify
from operate_mcp.model.command import ProposedCommand, command_digest
from operate_mcp.model.proposal import CheckedCommand, RiskAssessment, RiskTier
from operate_mcp.model.session import Session, SessionStatus
from operate_mcp.server import create_server
from operate_mcp.workflows import decide as decide_module
from operate_mcp.workflows.decide import record_approval
from operate_mcp.workflows.execute import execute
from operate_mcp.workflows.operate import analyze
from support.manifests import bed_settings, deployment, deps_for, proposal

RESTARTED = "kubectl.kubernetes.io/restartedAt"


@pytest.fixture
def settings(testbed, tmp_path):
    return bed_settings(testbed, tmp_path, provider="scripted", rollout_timeout_seconds=30, knowledge_enabled=False)


def restart(namespace: str) -> dict[str, object]:
    return {
        "argv": ["kubectl", "annotate", "deployment/web", f"{RESTARTED}=2026-11-29T10:00:00Z", "-n", namespace],
        "description": "restart marker",
    }


def set_image(namespace: str, image: str = "nginx:1.27.3") -> dict[str, object]:
    return {
        "argv": ["kubectl", "set", "image", "deployment/web", f"web={image}", "-n", namespace],
        "description": "new image",
    }


def image_of(testbed, namespace: str) -> str:
    return testbed.kubectl_run(
        "get", "deploy/web", "-n", namespace, "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    ).stdout


def server_with(settings, *answers: dict[str, object]):
    provider = ScriptedProvider([answer(a) for a in answers])
    return create_server(settings, provider_factory=lambda s: provider, caller="alice")


async def test_refinement_between_trivial_verdict_and_approval_runs_nothing(testbed, namespace, settings, monkeypatch):
    """Finding 1, made deterministic: the resolver judges v1 (a trivial restart marker) and, before the body
    records the approval, the agent refines the session to a medium `set image`. Before the fix the body's
    approval landed on v2 and the image changed with no person asked."""
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    mcp = server_with(settings, proposal("restart web", [restart(namespace)]))
    real = decide_module.record_approval
    refined: list[str] = []

    def refine_first(store, session_id, **kwargs):
        """The agent's concurrent refinement, landing exactly between the verdict and the approval."""
        cmd = ProposedCommand(**set_image(namespace))

        def refine(s: Session) -> None:
            s.voided_versions.append(s.proposal)
            s.proposal = s.proposal.model_copy(
                update={
                    "version": s.proposal.version + 1,
                    "commands": [CheckedCommand(command=cmd, display=cmd.display, classification=classify(cmd.argv))],
                    "digest": command_digest([cmd]),
                    "risk": RiskAssessment(tier=RiskTier.MEDIUM, reasons=["set image"]),
                }
            )

        store.transition(session_id, SessionStatus.PROPOSED, actor="agent", mutate=refine)
        refined.append(session_id)
        return real(store, session_id, **kwargs)

    monkeypatch.setattr(decide_module, "record_approval", refine_first)
    async with Client(mcp) as client:
        first = await client.call_tool("operate", {"intent": "restart web"})
        sid = first.structured_content["session_id"]
        assert first.structured_content["risk"]["tier"] == "trivial"
        result = await client.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
    assert refined == [sid]
    assert result.is_error
    assert "refined after you were shown it" in result.content[0].text
    assert image_of(testbed, namespace) == "nginx:1.25.5"


async def test_elicitation_approval_names_the_client_not_a_person(testbed, namespace, settings):
    """Finding 8: an elicitation answer proves what the client program said, and is recorded as such."""
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))

    async def yes(context, params):
        return ElicitResult(action="accept", content={"approve": True, "justification": "ok"})

    async with Client(
        server_with(settings, proposal("update web", [set_image(namespace)])), elicitation_callback=yes
    ) as c:
        sid = (await c.call_tool("operate", {"intent": "update web"})).structured_content["session_id"]
        result = await c.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
    assert not result.is_error, result.content
    approvals = result.structured_content["approvals"]
    assert len(approvals) == 1
    assert approvals[0]["method"] == "elicitation"
    assert approvals[0]["approver"].startswith("alice via MCP client")


async def test_hardened_channels_never_elicit_above_trivial(testbed, namespace, tmp_path):
    settings = bed_settings(testbed, tmp_path, provider="scripted", knowledge_enabled=False, approval_channels=["cli"])
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    asked: list[str] = []

    async def yes(context, params):
        asked.append(params.message)
        return ElicitResult(action="accept", content={"approve": True})

    async with Client(
        server_with(settings, proposal("update web", [set_image(namespace)])), elicitation_callback=yes
    ) as c:
        sid = (await c.call_tool("operate", {"intent": "update web"})).structured_content["session_id"]
        result = await c.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
    assert result.is_error and "operate-mcp approve" in result.content[0].text
    assert asked == []
    assert image_of(testbed, namespace) == "nginx:1.25.5"


async def test_critical_change_is_not_put_to_the_client(testbed, namespace, settings):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    asked: list[str] = []

    async def yes(context, params):
        asked.append(params.message)
        return ElicitResult(action="accept", content={"approve": True})

    delete = {"argv": ["kubectl", "delete", "deployment/web", "-n", namespace], "description": "remove"}
    async with Client(server_with(settings, proposal("delete web", [delete])), elicitation_callback=yes) as c:
        sid = (await c.call_tool("operate", {"intent": "delete web"})).structured_content["session_id"]
        result = await c.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
    assert result.is_error and "two enrolled people" in result.content[0].text
    assert asked == []
    testbed.kubectl_run("get", "deployment/web", "-n", namespace)  # still there


async def test_tier_is_recomputed_at_execution(testbed, namespace, settings):
    """Finding 2's second half: the tier comes from the commands and the cluster as they are at execution.
    A trivially approved restart marker in a namespace that is now production needs two people."""
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    deps = deps_for(settings, ScriptedProvider([answer(proposal("restart web", [restart(namespace)]))]))
    deps.audit = AuditLog(settings.data_dir)
    session: Session = await analyze(deps, "restart web", caller="agent", triggered_by="t")
    p = session.proposal
    assert p.risk.tier is RiskTier.TRIVIAL
    record_approval(
        deps.sessions,
        session.id,
        approver=AUTO_TRIVIAL,
        method=AUTO_TRIVIAL,
        settings=settings,
        expected_digest=p.digest,
        expected_version=p.version,
        judged_tier=RiskTier.TRIVIAL,
    )
    deps.settings = settings.model_copy(update={"production_namespaces": [namespace]})
    with pytest.raises(ApprovalError, match="critical risk"):
        await execute(deps, session.id, actor="agent")
    assert deps.sessions.load(session.id).status is SessionStatus.APPROVED
    annotations = testbed.kubectl_run("get", "deploy/web", "-n", namespace, "-o", "jsonpath={.metadata.annotations}")
    assert RESTARTED not in annotations.stdout


async def test_command_without_namespace_is_judged_in_the_kubeconfig_namespace(testbed, namespace, tmp_path):
    """Finding 11: with a context whose namespace is production, `set image` without -n is critical."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(testbed.kubeconfig.read_text())
    subprocess.run(
        [
            testbed.kubectl,
            "--kubeconfig",
            str(kubeconfig),
            "config",
            "set-context",
            "--current",
            f"--namespace={namespace}",
        ],
        check=True,
        capture_output=True,
    )
    settings = bed_settings(
        testbed, tmp_path, knowledge_enabled=False, kubeconfig=kubeconfig, production_namespaces=[namespace]
    )
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    no_ns = {"argv": ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.3"], "description": "new image"}
    deps = deps_for(settings, ScriptedProvider([answer(proposal("update web", [no_ns]))]))
    session = await analyze(deps, "update web", caller="agent", triggered_by="t")
    assert session.proposal.risk.tier is RiskTier.CRITICAL
    assert any(namespace in r for r in session.proposal.risk.reasons)


async def test_executed_session_set_back_to_approved_by_hand_runs_nothing(testbed, namespace, settings):
    """Red-team finding: 'runs at most once' must not rest on the status in the session file. Run a
    trivial change, then rewrite the file as a data-dir writer would (status approved, outcomes and
    observations cleared): a second execution is refused by the ledger kept beside the approval key."""
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    deps = deps_for(settings, ScriptedProvider([answer(proposal("restart web", [restart(namespace)]))]))
    session = await analyze(deps, "restart web", caller="agent", triggered_by="t")
    p = session.proposal
    record_approval(
        deps.sessions,
        session.id,
        approver=AUTO_TRIVIAL,
        method=AUTO_TRIVIAL,
        settings=settings,
        expected_digest=p.digest,
        expected_version=p.version,
        judged_tier=RiskTier.TRIVIAL,
    )
    done = await execute(deps, session.id, actor="agent")
    assert done.status is SessionStatus.EXECUTED_SUCCESSFULLY
    edited = deps.sessions.load(session.id)
    edited.status, edited.outcomes, edited.executor = SessionStatus.APPROVED, [], None
    edited.proposal.observed_objects = []
    deps.sessions.save(edited)
    with pytest.raises(ApprovalError, match="at most once"):
        await execute(deps, session.id, actor="agent")
