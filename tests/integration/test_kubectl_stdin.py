"""kubectl never reads the server's stdin, never reads a kuberc, never uses a shared cache (issue #9, finding 9).

Over stdio the server's stdin is the MCP JSON-RPC stream: a kubectl that inherits it takes a client's
message as the answer to `delete -i`, or reads it as the manifest of `apply -f -`.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from operate_mcp.config import Settings
from operate_mcp.errors import ConfigError
from operate_mcp.kube.classifier import classify_command
from operate_mcp.kube.runner import Kubectl
from operate_mcp.model.command import CommandClass
from support.manifests import bed_settings

# What a client sends over stdio while a tool call runs; "y" first, as the answer a prompt would take.
JSON_RPC = 'y\n{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"operate"}}\n'

# Runs in a child whose stdin is a pipe holding JSON_RPC, as the server's is; reports what kubectl did
# and what was left on its stdin afterwards.
CHILD = textwrap.dedent("""
    import json, sys
    from operate_mcp.config import Settings
    from operate_mcp.kube.runner import Kubectl

    settings = Settings(**json.loads(sys.argv[1]))
    kubectl = Kubectl(settings)
    results = []
    for argv in json.loads(sys.argv[2]):
        r = kubectl.run(argv)
        results.append({"exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr,
                        "seconds": r.duration_seconds, "timed_out": r.timed_out})
    print(json.dumps({"results": results, "stdin_left": sys.stdin.read()}))
""")


CHILD_SETTINGS = {"data_dir", "kubeconfig", "kubectl", "command_timeout_seconds"}


@pytest.fixture
def settings(testbed, tmp_path) -> Settings:
    return bed_settings(testbed, tmp_path, command_timeout_seconds=20)


def run_in_child_with_stdin(settings: Settings, commands: list[list[str]]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, settings.model_dump_json(include=CHILD_SETTINGS), json.dumps(commands)],
        input=JSON_RPC,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_delete_interactive_is_refused_by_the_classifier(testbed, namespace) -> None:
    argv = ["kubectl", "delete", "configmap", "cfg", "-n", namespace, "-i"]
    verdict = classify_command(argv, None)
    assert verdict.command_class is CommandClass.FORBIDDEN
    assert "y/N" in verdict.reason


def test_interactive_delete_run_raw_takes_no_answer_from_the_servers_stdin(settings, testbed, namespace) -> None:
    # Before the fix kubectl read "y" off the JSON-RPC stream and deleted the ConfigMap.
    testbed.kubectl_run("create", "configmap", "cfg", "-n", namespace, "--from-literal=a=b")
    report = run_in_child_with_stdin(settings, [["kubectl", "delete", "configmap", "cfg", "-n", namespace, "-i"]])
    (result,) = report["results"]
    assert not result["timed_out"] and result["seconds"] < 15
    assert "cancelled" in result["stdout"] + result["stderr"]
    assert report["stdin_left"] == JSON_RPC
    assert testbed.kubectl_run("get", "configmap", "cfg", "-n", namespace, "-o", "name").stdout.strip() == (
        "configmap/cfg"
    )


def test_stdin_manifest_without_a_manifest_fails_at_once_and_leaves_the_stream_alone(settings, namespace) -> None:
    assert classify_command(["kubectl", "apply", "-f", "-", "-n", namespace], None).command_class is (
        CommandClass.FORBIDDEN
    )
    report = run_in_child_with_stdin(settings, [["kubectl", "apply", "-f", "-", "-n", namespace]])
    (result,) = report["results"]
    assert result["exit_code"] != 0 and not result["timed_out"]
    assert result["seconds"] < 15
    assert "no objects passed to apply" in result["stderr"]
    assert report["stdin_left"] == JSON_RPC


def test_a_manifest_given_as_stdin_still_reaches_kubectl(settings, testbed, namespace) -> None:
    manifest = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: piped\n  namespace: {namespace}\ndata:\n  a: b\n"
    result = Kubectl(settings).run(["kubectl", "apply", "-f", "-"], stdin=manifest)
    assert result.ok, result.stderr
    assert testbed.kubectl_run("get", "configmap", "piped", "-n", namespace, "-o", "name").stdout.strip() == (
        "configmap/piped"
    )


# ----------------------------------------------------------------------------- kuberc and cache

KUBERC = textwrap.dedent("""
    apiVersion: kubectl.config.k8s.io/v1beta1
    kind: Preference
    defaults:
    - command: annotate
      options:
      - name: output
        default: json
""")


@pytest.fixture
def home_with_kuberc(tmp_path, monkeypatch) -> Path:
    """A HOME whose ~/.kube/kuberc makes every annotate print the object (Secret data included)."""
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "kuberc").write_text(KUBERC)
    monkeypatch.setenv("HOME", str(home))
    return home


def test_kuberc_defaults_cannot_make_a_dry_run_print_a_secret(settings, testbed, namespace, home_with_kuberc) -> None:
    testbed.kubectl_run("create", "secret", "generic", "db", "-n", namespace, "--from-literal=password=hunter2-kuberc")
    secret_b64 = base64.b64encode(b"hunter2-kuberc").decode()
    argv = ["kubectl", "annotate", "secret", "db", "note=x", "-n", namespace, "--dry-run=server"]
    kubectl = Kubectl(settings)

    # The same kubectl with the kuberc read (the environment as it was) prints the Secret back.
    exposed = dict(kubectl.env)
    exposed.pop("KUBERC", None)
    exposed.pop("KUBECTL_KUBERC", None)
    leaked = subprocess.run(
        [kubectl.binary, *argv[1:]],
        env=exposed,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert secret_b64 in leaked.stdout, "the planted kuberc no longer takes effect; the test proves nothing"

    result = kubectl.run(argv, redact=False)
    assert result.ok, result.stderr
    assert secret_b64 not in result.stdout
    assert result.stdout.strip() == "secret/db annotated (server dry run)"


def test_kubectl_caches_in_a_private_directory_of_ours(settings, home_with_kuberc) -> None:
    result = Kubectl(settings).run(["kubectl", "get", "namespaces", "-o", "name"])
    assert result.ok, result.stderr
    cache = settings.data_dir / "kubectl-cache"
    assert cache.stat().st_mode & 0o777 == 0o700
    assert any(cache.iterdir()), "kubectl wrote no discovery cache where KUBECACHEDIR points"
    assert not (home_with_kuberc / ".kube" / "cache").exists()


def test_kubectl_env_turns_kuberc_off_and_names_the_cache(tmp_path) -> None:
    env = Settings(data_dir=tmp_path / "data").kubectl_env()
    assert env["KUBERC"] == "off" and env["KUBECTL_KUBERC"] == "false"
    assert env["KUBECACHEDIR"] == str(tmp_path / "data" / "kubectl-cache")


def test_shared_cache_directory_is_refused(tmp_path) -> None:
    cache = tmp_path / "data" / "kubectl-cache"
    cache.mkdir(parents=True)
    os.chmod(cache, 0o777)
    with pytest.raises(ConfigError, match="not a private directory"):
        Settings(data_dir=tmp_path / "data").kubectl_env()


def test_cache_directory_that_is_a_symlink_is_refused(tmp_path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "kubectl-cache").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="not a private directory"):
        Settings(data_dir=tmp_path / "data").kubectl_env()
