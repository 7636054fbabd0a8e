"""The cluster preflight fails before any model call, in one sentence naming what was tried and the fix.

Real kubectl against a kubeconfig whose server is a bound but never-listening port on 127.0.0.1 (so the
connection is refused), and the scripted provider counting the model calls.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.config import Settings
from operate_mcp.kube.preflight import (
    ClusterUnreachable,
    KubeconfigInvalid,
    KubeconfigMissing,
    preflight,
    unfixable,
)
from operate_mcp.kube.runner import CommandResult, Kubectl
from operate_mcp.workflows.operate import OperateDeps, analyze
from operate_mcp.workflows.sessions import SessionStore

NOTHING = {"analysis": "nothing to do", "commands": []}


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound (so nobody else takes it) and never listens: connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def kubeconfig(path: Path, server: str, *, context: str = "kind-dev", namespace: str = "shop") -> Path:
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster: {{server: "{server}", insecure-skip-tls-verify: true}}
contexts:
- name: {context}
  context: {{cluster: dev, user: dev, namespace: {namespace}}}
current-context: {context}
users:
- name: dev
  user: {{token: not-a-real-token}}
"""
    )
    return path


def deps_with(tmp_path: Path, provider: ScriptedProvider, **settings: object) -> OperateDeps:
    s = Settings(data_dir=tmp_path / "data", knowledge_enabled=False, **settings)  # type: ignore[arg-type]
    return OperateDeps(settings=s, kubectl=Kubectl(s), provider=provider, sessions=SessionStore(s.data_dir))


def one_sentence(message: str) -> bool:
    return ". " not in message.rstrip(".") and "\n" not in message


async def test_no_cluster_fails_in_one_sentence_before_any_model_call(tmp_path, closed_port):
    config = kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{closed_port}")
    provider = ScriptedProvider([answer(NOTHING)] * 30)
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable) as raised:
        await analyze(deps_with(tmp_path, provider, kubeconfig=config), "scale api", caller="a", triggered_by="t")
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert f"https://127.0.0.1:{closed_port}" in message and str(config) in message and "kind-dev" in message
    assert "connection refused" in message and "OPERATE_MCP_KUBECONFIG" in message
    assert "memcache" not in message and one_sentence(message)
    assert provider.calls == []


async def test_a_missing_kubeconfig_is_named_before_any_model_call(tmp_path):
    missing = tmp_path / "nowhere" / "kubeconfig"
    provider = ScriptedProvider([answer(NOTHING)])
    with pytest.raises(KubeconfigMissing) as raised:
        await analyze(deps_with(tmp_path, provider, kubeconfig=missing), "scale api", caller="a", triggered_by="t")
    message = str(raised.value)
    assert f"the kubeconfig {missing} does not exist" in message and "OPERATE_MCP_KUBECONFIG" in message
    assert one_sentence(message)
    assert provider.calls == []


def test_no_kubeconfig_at_all_names_the_default_it_looked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    kubectl = Kubectl(Settings(data_dir=tmp_path / "data"))
    with pytest.raises(KubeconfigMissing, match=r"no kubeconfig is configured and the default .*\.kube/config"):
        preflight(kubectl)


def test_a_kubeconfig_without_a_current_context_says_so(tmp_path):
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    with pytest.raises(KubeconfigInvalid, match=rf"the kubeconfig {config} cannot be used: .*use-context"):
        preflight(Kubectl(Settings(data_dir=tmp_path / "data", kubeconfig=config)))


def test_a_failed_preflight_is_not_cached(tmp_path, closed_port):
    """A fixed setup is seen at once: only passes are remembered."""
    config = kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{closed_port}")
    kubectl = Kubectl(Settings(data_dir=tmp_path / "data", kubeconfig=config))
    for _ in range(2):
        with pytest.raises(ClusterUnreachable):
            preflight(kubectl)


def result(stderr: str, argv: list[str] | None = None) -> CommandResult:
    return CommandResult(argv=argv or ["kubectl"], exit_code=1, stdout="", stderr=stderr, duration_seconds=0.1)


def test_unreachable_and_unauthorized_are_unfixable_for_every_tool():
    refused = result("E1130 00:00:00.000000 1 memcache.go:265] couldn't get current server API group list: "
                     'Get "http://localhost:8080/api": dial tcp 127.0.0.1:8080: connect: connection refused')
    fatal = unfixable(refused, changes=False, kubeconfig="/k")
    assert fatal is not None and "connection refused" in fatal and "/k" in fatal and "memcache" not in fatal
    no_host = result('Unable to connect to the server: dial tcp: lookup api.example.invalid: no such host')
    assert "no such host" in (unfixable(no_host, changes=False, kubeconfig="/k") or "")
    unauthorized = result("error: You must be logged in to the server (Unauthorized)")
    assert "Unauthorized (401)" in (unfixable(unauthorized, changes=False, kubeconfig="/k") or "")


def test_forbidden_is_unfixable_only_for_the_change_itself():
    forbidden = result(
        'Error from server (Forbidden): deployments.apps "api" is forbidden: User "system:serviceaccount:shop:v" '
        'cannot patch resource "deployments" in API group "apps" in the namespace "shop"'
    )
    fatal = unfixable(forbidden, changes=True, kubeconfig="/k")
    assert fatal is not None and "may not patch deployments.apps in namespace shop" in fatal
    assert unfixable(forbidden, changes=False, kubeconfig="/k") is None  # a read it may not do: look elsewhere


def test_what_a_model_can_fix_is_not_fatal():
    invalid = result('The Deployment "api" is invalid: spec.replicas: Invalid value: -1')
    not_found = result('Error from server (NotFound): deployments.apps "apx" not found')
    assert unfixable(invalid, changes=True, kubeconfig="/k") is None
    assert unfixable(not_found, changes=False, kubeconfig="/k") is None
