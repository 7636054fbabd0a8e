"""`operate` analysis against the real control plane, with the scripted provider standing in
for the hosted LLM (unreachable here). Dry-runs, reads and sessions are all real."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from operate_mcp.agent.scripted import ScriptedProvider, answer, last_user_text, use
from operate_mcp.model.session import SessionStatus
from operate_mcp.server import create_server
from operate_mcp.workflows.operate import analyze
from support.manifests import bed_settings, deployment, deps_for, hpa, proposal


@pytest.fixture
def settings(testbed, tmp_path):
    return bed_settings(testbed, tmp_path, provider="scripted")


async def test_update_image_proposes_set_image_whose_dry_run_passed(testbed, namespace, settings):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    set_image = ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.3", "-n", namespace]
    provider = ScriptedProvider(
        [
            use(
                "kube_get",
                {
                    "resource": "deployment",
                    "name": "web",
                    "namespace": namespace,
                    "output": "json",
                    "fields": ["spec.template.spec.containers"],
                },
            ),
            use(
                "dry_run_set_image",
                {
                    "resource": "deployment",
                    "name": "web",
                    "namespace": namespace,
                    "container": "web",
                    "image": "nginx:1.27.3",
                },
            ),
            answer(
                proposal(
                    "update web to nginx:1.27.3",
                    [{"argv": set_image, "description": "new image"}],
                    [
                        {
                            "argv": ["kubectl", "rollout", "undo", "deployment/web", "-n", namespace],
                            "description": "back to the previous revision",
                        }
                    ],
                )
            ),
        ]
    )
    session = await analyze(
        deps_for(settings, provider), "update web to nginx:1.27", caller="alice", triggered_by="test"
    )
    p = session.proposal
    assert session.status is SessionStatus.PROPOSED
    assert [c.command.argv for c in p.commands] == [set_image]
    assert p.commands[0].classification.command_class.value == "mutating"
    assert p.commands[0].dry_run is not None and p.commands[0].dry_run.ok, p.commands[0].dry_run
    assert "--dry-run=server" in p.commands[0].dry_run.argv
    assert p.risk.tier.value == "medium"
    web = [o for o in p.observed_objects if o.name == "web"]
    assert web and web[0].exists and web[0].resource_version
    # the model saw the real image through the read tool, wrapped as untrusted data
    seen = provider.calls[1]["messages"][-1]["content"][0]["content"]
    assert "nginx:1.25.5" in seen and 'trust="untrusted"' in seen
    # nothing changed in the cluster: analysis only reads and dry-runs
    image = testbed.kubectl_run(
        "get", "deploy/web", "-n", namespace, "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    ).stdout
    assert image == "nginx:1.25.5"


async def test_scale_proposal(testbed, namespace, settings):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("api", namespace, replicas=3))
    scale = ["kubectl", "scale", "deployment/api", "--replicas=5", "-n", namespace]
    provider = ScriptedProvider(
        [
            use("kube_get", {"resource": "deployment", "name": "api", "namespace": namespace}),
            answer(
                proposal(
                    "scale api from 3 to 5",
                    [{"argv": scale, "description": "scale"}],
                    [
                        {
                            "argv": ["kubectl", "scale", "deployment/api", "--replicas=3", "-n", namespace],
                            "description": "back to 3",
                        }
                    ],
                )
            ),
        ]
    )
    session = await analyze(
        deps_for(settings, provider), "scale api to 5 replicas", caller="alice", triggered_by="test"
    )
    cmd = session.proposal.commands[0]
    assert cmd.dry_run and cmd.dry_run.ok and cmd.dry_run.output == "deployment.apps/api"
    assert session.proposal.risk.tier.value == "low"
    assert testbed.kubectl_run("get", "deploy/api", "-n", namespace, "-o", "jsonpath={.spec.replicas}").stdout == "3"


async def test_hpa_manifest_goes_through_stdin_and_passes_dry_run(testbed, namespace, settings):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("api", namespace))
    apply = {
        "argv": ["kubectl", "apply", "-f", "-", "-n", namespace],
        "stdin": hpa("api", namespace),
        "description": "create the HPA",
    }
    provider = ScriptedProvider(
        [
            use("kube_api_resources", {"api_group": "autoscaling"}),
            use("dry_run_apply", {"manifest": hpa("api", namespace), "namespace": namespace}),
            answer(
                proposal(
                    "autoscale api on CPU",
                    [apply],
                    [{"argv": ["kubectl", "delete", "hpa", "api", "-n", namespace], "description": "remove"}],
                )
            ),
        ]
    )
    session = await analyze(deps_for(settings, provider), "add an HPA to api", caller="alice", triggered_by="test")
    cmd = session.proposal.commands[0]
    assert cmd.command.stdin and "HorizontalPodAutoscaler" in cmd.command.stdin
    assert cmd.dry_run and cmd.dry_run.ok, cmd.dry_run
    hpa_obj = [o for o in session.proposal.observed_objects if o.kind == "HorizontalPodAutoscaler"]
    assert hpa_obj and not hpa_obj[0].exists
    missing = testbed.kubectl_run("get", "hpa", "api", "-n", namespace, check=False)
    assert missing.returncode != 0, "the dry-run must not have created the HPA"


async def test_invalid_manifest_gets_the_api_servers_error_back_and_is_fixed(testbed, namespace, settings):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("api", namespace))
    bad = hpa("api", namespace, min_replicas=0)
    errors_seen: list[str] = []

    def fix(messages):
        text = last_user_text(messages)
        errors_seen.append(text)
        return answer(
            proposal(
                "fixed",
                [
                    {
                        "argv": ["kubectl", "apply", "-f", "-", "-n", namespace],
                        "stdin": hpa("api", namespace),
                        "description": "create the HPA",
                    }
                ],
            )
        )

    provider = ScriptedProvider(
        [
            answer(
                proposal(
                    "first try",
                    [
                        {
                            "argv": ["kubectl", "apply", "-f", "-", "-n", namespace],
                            "stdin": bad,
                            "description": "create the HPA",
                        }
                    ],
                )
            ),
            fix,
        ]
    )
    session = await analyze(deps_for(settings, provider), "add an HPA to api", caller="alice", triggered_by="test")
    assert "failed its server-side dry-run" in errors_seen[0]
    assert "minReplicas" in errors_seen[0] and "Invalid value" in errors_seen[0]
    assert session.proposal.analysis == "fixed"
    assert all(c.dry_run and c.dry_run.ok for c in session.proposal.commands)


async def test_forbidden_command_is_sent_back_and_never_reaches_the_proposal(testbed, namespace, settings):
    exec_cmd = {"argv": ["kubectl", "exec", "-n", namespace, "web", "--", "sh"], "description": "look inside"}
    token = {
        "argv": ["kubectl", "scale", "deployment/web", "--replicas=2", "-n", namespace, "--token=abc"],
        "description": "scale",
    }
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    provider = ScriptedProvider(
        [
            answer(proposal("try", [exec_cmd, token])),
            answer(
                proposal(
                    "ok",
                    [
                        {
                            "argv": ["kubectl", "scale", "deployment/web", "--replicas=3", "-n", namespace],
                            "description": "scale",
                        }
                    ],
                )
            ),
        ]
    )
    session = await analyze(deps_for(settings, provider), "scale web", caller="alice", triggered_by="test")
    feedback = provider.calls[1]["messages"][-1]["content"]
    assert "command 1" in feedback and "forbidden" in feedback and "command 2" in feedback
    assert [c.command.argv[1] for c in session.proposal.commands] == ["scale"]
    assert all("--token=abc" not in c.command.argv for c in session.proposal.commands)


async def test_refinement_makes_a_new_version_and_voids_the_old(testbed, namespace, settings):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("api", namespace))

    def scale_to(n):
        return answer(
            proposal(
                f"scale to {n}",
                [
                    {
                        "argv": ["kubectl", "scale", "deployment/api", f"--replicas={n}", "-n", namespace],
                        "description": "scale",
                    }
                ],
            )
        )

    deps = deps_for(settings, ScriptedProvider([scale_to(4), scale_to(3)]))
    first = await analyze(deps, "scale api up", caller="alice", triggered_by="test")
    second = await analyze(
        deps, "", caller="alice", triggered_by="test", refine_session=first.id, refined_intent="only to 3"
    )
    assert second.id == first.id and second.proposal.version == 2
    assert second.proposal.digest != first.proposal.digest
    assert [v.version for v in second.voided_versions] == [1]
    assert "only to 3" in deps.provider.calls[-1]["messages"][0]["content"]


async def test_operate_over_mcp_returns_structured_proposal_with_progress(testbed, namespace, settings):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("api", namespace))
    provider = ScriptedProvider(
        [
            use("kube_get", {"resource": "deployment", "name": "api", "namespace": namespace}),
            answer(
                proposal(
                    "scale",
                    [
                        {
                            "argv": ["kubectl", "scale", "deployment/api", "--replicas=4", "-n", namespace],
                            "description": "scale",
                        }
                    ],
                )
            ),
        ]
    )
    server = create_server(settings, provider_factory=lambda s: provider, caller="alice")
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(p, total, message):
        progress.append((p, total, message))

    async with Client(server) as client:
        result = await client.call_tool("operate", {"intent": "scale api to 4"}, progress_callback=on_progress)
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["status"] == "proposed" and data["session_id"].startswith("opr-")
    assert data["commands"][0]["dry_run"]["ok"] is True
    assert data["risk"]["tier"] == "low"
    assert "executeChoice=1" in data["next_action"]
    assert [p[0] for p in progress] == [1, 2] and progress[0][1] == settings.max_iterations
    saved = json.loads((settings.data_dir / "sessions" / f"{data['session_id']}.json").read_text())
    assert saved["proposal"]["digest"] == data["digest"]


async def test_operate_without_intent_is_a_tool_error_not_a_crash(settings):
    server = create_server(settings, provider_factory=lambda s: ScriptedProvider([]), caller="alice")
    async with Client(server) as client:
        result = await client.call_tool("operate", {})
        assert result.is_error and "give an intent" in result.content[0].text
        again = await client.call_tool("operate", {"sessionId": "../../etc/passwd", "refinedIntent": "x"})
        assert again.is_error and "not a session id" in again.content[0].text
