"""Settings in one place: env vars `OPERATE_MCP_*`, an optional YAML file, defaults."""

from __future__ import annotations

import argparse
import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from operate_mcp.errors import ConfigError

ApprovalChannel = Literal["elicitation", "cli"]
APPROVAL_CHANNELS: tuple[ApprovalChannel, ...] = ("elicitation", "cli")


def _default_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "operate-mcp"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "operate-mcp"


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the file named by OPERATE_MCP_CONFIG; env vars still win over it."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get("OPERATE_MCP_CONFIG")
        self._data: dict[str, Any] = {}
        if path:
            try:
                loaded = yaml.safe_load(Path(path).read_text())
            except OSError as exc:
                raise ConfigError(f"OPERATE_MCP_CONFIG={path}: cannot read it ({exc.strerror})") from exc
            except yaml.YAMLError as exc:
                raise ConfigError(f"OPERATE_MCP_CONFIG={path}: not valid YAML ({exc})") from exc
            if loaded is not None and not isinstance(loaded, dict):
                raise ConfigError(f"OPERATE_MCP_CONFIG={path}: expected a mapping of setting: value")
            self._data = loaded or {}
            known = set(settings_cls.model_fields)
            for key in self._data:
                if key not in known:
                    near = difflib.get_close_matches(str(key), sorted(known), n=1)
                    hint = f"; did you mean {near[0]!r}?" if near else f"; settings are: {', '.join(sorted(known))}"
                    raise ConfigError(f"OPERATE_MCP_CONFIG={path}: unknown setting {key!r}{hint}")

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPERATE_MCP_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    kubeconfig: Path | None = None
    kubectl: str = "kubectl"
    command_timeout_seconds: float = 120.0
    output_cap_bytes: int = 64_000
    records_retention_days: int = Field(default=30, ge=0)
    alert_webhook_url: str | None = None

    # The model behind analysis (docs/guide.md, "Model gateways and providers"): Anthropic's API or a gateway
    # speaking it, Amazon Bedrock or Google Vertex AI. OPERATE_MCP_MODEL is the model id each of them expects.
    provider: Literal["anthropic", "bedrock", "vertex", "scripted"] = "anthropic"
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None  # without /v1 (a trailing /v1 is stripped, with a warning)
    anthropic_auth_header: Literal["x-api-key", "bearer"] = "x-api-key"  # "bearer": Authorization: Bearer <key>
    aws_region: str | None = None  # provider=bedrock; else AWS_REGION / the profile's region
    aws_profile: str | None = None  # provider=bedrock; else boto3's usual credential chain
    vertex_region: str | None = None  # provider=vertex; else CLOUD_ML_REGION
    vertex_project_id: str | None = None  # provider=vertex; else the application default credentials' project
    model: str = "claude-sonnet-5"
    max_tokens: int = 8192
    max_iterations: int = 30

    session_ttl_seconds: int = 3600
    production_namespaces: list[str] = Field(default_factory=lambda: ["production", "prod"])
    trivial_auto_approve: bool = True
    # Automatic remediation (off by default): a `remediate` fix runs without a person only up to this tier and
    # only when every command names (-n) one of these namespaces. Never critical, never production; never from
    # anything the calling agent passes.
    remediate_auto_max_tier: Literal["trivial", "low", "medium"] | None = None
    remediate_auto_namespaces: list[str] = Field(default_factory=list)
    approval_sla_seconds: dict[str, int] = Field(
        default_factory=lambda: {"trivial": 3600, "low": 1800, "medium": 900, "critical": 600}
    )
    drift_mode: Literal["refuse", "warn"] = "refuse"
    # Who may approve above the trivial tier: "elicitation" trusts the MCP client program to have asked a
    # person; "cli" is a signature made with an enrolled approver key (operate-mcp approve). Hardened: ["cli"].
    approval_channels: list[ApprovalChannel] = Field(default_factory=lambda: list(APPROVAL_CHANNELS))
    # Public keys of enrolled approvers (<name>.pub). Kept outside the data dir: a writer of the data dir must
    # not be able to enrol itself. A file's owner uid names the approver (root-owned: the file name does).
    approvers_dir: Path = Field(default_factory=lambda: _default_config_dir() / "approvers")
    # Server key (HMAC) binding elicitation and automatic approvals; outside the data dir for the same reason.
    approval_key_file: Path = Field(default_factory=lambda: _default_config_dir() / "approval.key")
    # Annotation keys (exact, or prefixes ending in "/") whose setting is harmless enough to need no person.
    trivial_annotation_keys: list[str] = Field(default_factory=lambda: ["kubectl.kubernetes.io/restartedAt"])
    # Signed audit checkpoints are also written here (another mount, not writable by the data dir's writer).
    audit_witness_dir: Path | None = None
    rollout_timeout_seconds: int = 120
    validation_max_iterations: int = 10

    http_token: SecretStr | None = None
    http_user: str = "http-client"

    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    embedding_model: str = "all-MiniLM-L6-v2"
    # torch (sentence-transformers) or onnx (ONNX Runtime, no torch; docs/install.md); auto: torch if installed
    embedding_backend: Literal["auto", "torch", "onnx"] = "auto"
    knowledge_enabled: bool = True
    read_only_tools: bool = True  # kube_get, kube_logs, ... over MCP; false leaves `operate` and the rest alone

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFileSource(settings_cls))

    def api_key(self) -> str | None:
        """OPERATE_MCP_ANTHROPIC_API_KEY, else the SDK's usual ANTHROPIC_API_KEY."""
        if self.anthropic_api_key is not None:
            return self.anthropic_api_key.get_secret_value()
        return os.environ.get("ANTHROPIC_API_KEY")

    def kubectl_env(self) -> dict[str, str]:
        """A sanitised environment for kubectl: no inherited secrets, our kubeconfig only.

        kuberc is off (KUBERC=off, and its feature gate KUBECTL_KUBERC=false): kubectl >= 1.33 reads
        ~/.kube/kuberc, whose aliases and default flags would change what an approved command means.
        KUBECACHEDIR is a private directory of ours (created 0700 here): the discovery cache decides
        which resource a name resolves to, so one written by another user or agent is never read.
        """
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
        kubeconfig = self.kubeconfig or (Path(os.environ["KUBECONFIG"]) if "KUBECONFIG" in os.environ else None)
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        env["KUBERC"] = "off"
        env["KUBECTL_KUBERC"] = "false"
        cache = self.data_dir / "kubectl-cache"
        try:
            # The data dir first, private: mkdir's mode applies only to the last directory it makes.
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            cache.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = cache.lstat()
        except OSError as exc:
            raise ConfigError(
                f"cannot create kubectl's cache directory {cache} ({exc.strerror}); check OPERATE_MCP_DATA_DIR"
            ) from exc
        if cache.is_symlink() or not cache.is_dir() or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise ConfigError(
                f"kubectl's cache directory {cache} is not a private directory of this user (mode "
                f"{info.st_mode & 0o777:o}, owner uid {info.st_uid}); a shared cache can redirect resource names. "
                "Remove it: it only holds a cache and is recreated private (0700)"
            )
        env["KUBECACHEDIR"] = str(cache)
        return env


def load_settings(**overrides: Any) -> Settings:
    """Settings from file + env + overrides, with a readable error instead of a traceback."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"OPERATE_MCP_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    """`--data-dir`, the same on every subcommand that reads or writes the data directory."""
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory (default: OPERATE_MCP_DATA_DIR)")


def settings_for(args: argparse.Namespace) -> Settings:
    """Settings for a CLI command: `--data-dir` wins over the environment and the config file."""
    data_dir = getattr(args, "data_dir", None)
    return load_settings(data_dir=data_dir) if data_dir is not None else load_settings()
