"""The YAML settings file: a typo is an error naming the key and the nearest valid one, never ignored."""

from __future__ import annotations

import pytest

from operate_mcp.config import load_settings
from operate_mcp.errors import ConfigError


def test_unknown_key_names_the_nearest_setting(tmp_path, monkeypatch):
    path = tmp_path / "operate.yaml"
    path.write_text("production_namespace: [prod]\n")
    monkeypatch.setenv("OPERATE_MCP_CONFIG", str(path))
    with pytest.raises(
        ConfigError, match="unknown setting 'production_namespace'; did you mean 'production_namespaces'"
    ):
        load_settings()


def test_known_keys_are_read(tmp_path, monkeypatch):
    path = tmp_path / "operate.yaml"
    path.write_text("production_namespaces: [live]\ndrift_mode: warn\n")
    monkeypatch.setenv("OPERATE_MCP_CONFIG", str(path))
    settings = load_settings()
    assert settings.production_namespaces == ["live"] and settings.drift_mode == "warn"


def test_a_fresh_data_dir_is_created_private_not_just_its_last_directory(tmp_path):
    """mkdir(parents=True) applies its mode to the last directory only: the data dir itself, which holds
    sessions, records and the audit log, must not be left readable by other users."""
    from operate_mcp.config import Settings

    data = tmp_path / "fresh" / "data"
    Settings(data_dir=data).kubectl_env()
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "kubectl-cache").stat().st_mode & 0o777 == 0o700
