"""The namespace kubectl uses when a command names none: the kubeconfig context's, else `default`.

Risk, policies and the approval text must judge the namespace a command will really act in;
a command without `-n` against a context whose namespace is production is a production change.
"""

from __future__ import annotations

import os
import re
import threading

from operate_mcp.kube.runner import Kubectl

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_cache: dict[tuple[str, ...], str] = {}
_lock = threading.Lock()


def kubeconfig_paths(kubectl: Kubectl) -> tuple[list[str], bool]:
    """The kubeconfig files kubectl will read, and whether they were configured (not the default)."""
    configured = kubectl.env.get("KUBECONFIG", "")
    if configured:
        return [p for p in configured.split(os.pathsep) if p], True
    return [os.path.join(kubectl.env.get("HOME", os.path.expanduser("~")), ".kube", "config")], False


def kubeconfig_key(kubectl: Kubectl) -> tuple[str, ...]:
    """Binary, kubeconfig files and their modification times: what a cached reading of the context
    depends on, so an edited kubeconfig is read again."""
    key = [kubectl.binary]
    for p in kubeconfig_paths(kubectl)[0]:
        try:
            key.append(f"{p}:{os.stat(os.path.expanduser(p)).st_mtime_ns}")
        except OSError:
            key.append(f"{p}:missing")
    return tuple(key)


def default_namespace(kubectl: Kubectl) -> str:
    """What `kubectl` without `-n` acts in, read the way kubectl merges kubeconfig files."""
    key = kubeconfig_key(kubectl)
    with _lock:
        if key in _cache:
            return _cache[key]
    result = kubectl.run(["kubectl", "config", "view", "--minify", "-o", "jsonpath={..context.namespace}"])
    found = result.stdout.strip() if result.ok else ""
    namespace = found if _NAMESPACE.match(found) else "default"
    with _lock:
        _cache[key] = namespace
    return namespace
