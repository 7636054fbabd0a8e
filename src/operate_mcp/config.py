"""Settings in one place: env vars `OPERATE_MCP_*`, an optional YAML file, defaults."""

from __future__ import annotations

import argparse
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

    provider: Literal["anthropic", "scripted"] = "anthropic"
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    model: str = "claude-sonnet-5"
    max_tokens: int = 8192
    max_iterations: int = 30

    session_ttl_seconds: int = 3600
    production_namespaces: list[str] = Field(default_factory=lambda: ["production", "prod"])
    trivial_auto_approve: bool = True
    approval_sla_seconds: dict[str, int] = Field(
        default_factory=lambda: {"trivial": 3600, "low": 1800, "medium": 900, "critical": 600}
    )
    drift_mode: Literal["refuse", "warn"] = "refuse"
    rollout_timeout_seconds: int = 120
    validation_max_iterations: int = 10

    http_token: SecretStr | None = None
    http_user: str = "http-client"

    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    embedding_model: str = "all-MiniLM-L6-v2"
    knowledge_enabled: bool = True

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
        """A sanitised environment for kubectl: no inherited secrets, our kubeconfig only."""
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
        kubeconfig = self.kubeconfig or (Path(os.environ["KUBECONFIG"]) if "KUBECONFIG" in os.environ else None)
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
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
