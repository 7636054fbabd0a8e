"""Kubeconfigs for ServiceAccounts on the test bed: a token from `kubectl create token`, the bed's server
and CA, the context's namespace set. Made by tests with the bed's admin kubeconfig, never by product code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def service_account_kubeconfig(
    testbed: Any, account: str, account_namespace: str, context_namespace: str, path: Path
) -> Path:
    """A kubeconfig acting as `account_namespace/account`, whose context works in `context_namespace`."""
    token = testbed.kubectl_run("create", "token", account, "-n", account_namespace, "--duration=1h").stdout.strip()
    admin = json.loads(testbed.kubectl_run("config", "view", "--minify", "--raw", "-o", "json").stdout)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bed", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "bed", "user": account, "namespace": context_namespace}}],
        "current-context": account,
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path
