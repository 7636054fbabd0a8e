"""Two embeddings backends, one model: torch (sentence-transformers) and ONNX Runtime give the same vectors,
so the light install (no torch) searches a store the full one built; the server loads the model in the
background once it serves."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from operate_mcp.config import Settings
from operate_mcp.errors import ConfigError
from operate_mcp.knowledge.base import KnowledgeBase
from operate_mcp.knowledge.embeddings import (
    DEFAULT_MODEL,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    bundled_model_path,
    make_embedder,
)
from operate_mcp.knowledge.models import load_yaml_items, starter_dir
from operate_mcp.server.app import App

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")

STARTER_TEXTS = [item.search_text() for item in load_yaml_items(starter_dir())]
EDGE_TEXTS = ["scale api in namespace shop to 5 replicas", "", "roll back " * 300]  # short, empty, truncated


def test_both_backends_give_vectors_within_1e_3_cosine_on_the_starter_texts() -> None:
    texts = STARTER_TEXTS + EDGE_TEXTS
    torch_vectors = np.array(SentenceTransformerEmbedder().embed(texts))
    onnx_vectors = np.array(OnnxEmbedder().embed(texts))
    assert onnx_vectors.shape == torch_vectors.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)
    cosines = (torch_vectors * onnx_vectors).sum(axis=1)
    assert cosines.min() >= 1 - 1e-3, f"least similar: {texts[int(cosines.argmin())][:60]!r} at {cosines.min()}"


def test_both_backends_record_the_same_model_so_stored_vectors_stay_valid() -> None:
    assert OnnxEmbedder().model_id == SentenceTransformerEmbedder().model_id == DEFAULT_MODEL
    assert OnnxEmbedder().dimension == 384


def test_the_backend_setting_picks_the_embedder() -> None:
    assert isinstance(make_embedder("all-MiniLM-L6-v2", "onnx"), OnnxEmbedder)
    assert isinstance(make_embedder("all-MiniLM-L6-v2", "torch"), SentenceTransformerEmbedder)
    # auto keeps sentence-transformers where it is installed, as before the setting existed
    assert isinstance(make_embedder("all-MiniLM-L6-v2", "auto"), SentenceTransformerEmbedder)
    kb = KnowledgeBase(Settings(embedding_backend="onnx"))
    assert isinstance(kb.embedder, OnnxEmbedder) and not kb.embedder.loaded


def test_a_store_built_with_torch_is_searched_with_onnx(tmp_path) -> None:
    full = KnowledgeBase(Settings(data_dir=tmp_path, embedding_backend="torch"))
    query = "make the database highly available"
    expected = [hit.item.id for hit in full.search("pattern", query, k=3)]
    light = KnowledgeBase(Settings(data_dir=tmp_path, embedding_backend="onnx"))
    assert [hit.item.id for hit in light.search("pattern", query, k=3)] == expected


LIGHT_INSTALL = textwrap.dedent("""
    import json, sys

    for name in ("torch", "sentence_transformers", "transformers"):  # a light install, seen from inside
        sys.modules[name] = None
    from operate_mcp.knowledge.embeddings import make_embedder
    embedder = make_embedder("all-MiniLM-L6-v2", "auto")
    vector = embedder.embed(["scale api to 5"])[0]
    heavy = sorted(m for m, module in sys.modules.items() if module is not None and m.split(".")[0] in (
        "torch", "sentence_transformers", "transformers"))
    print(json.dumps({"backend": embedder.backend, "size": len(vector), "heavy": heavy}))
""")


def test_without_torch_auto_embeds_with_onnx_runtime_and_never_imports_torch() -> None:
    proc = subprocess.run([sys.executable, "-c", LIGHT_INSTALL], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"backend": "onnx", "size": 384, "heavy": []}


def test_the_onnx_backend_says_which_models_it_cannot_run(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "xlm-roberta", "hidden_act": "gelu"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(ConfigError, match="OPERATE_MCP_EMBEDDING_BACKEND=torch"):
        OnnxEmbedder(str(tmp_path)).embed(["x"])
    with pytest.raises(ConfigError, match="local directory"):
        OnnxEmbedder("some-org/some-hub-model").embed(["x"])


def test_the_onnx_backend_runs_a_model_from_a_local_directory(tmp_path) -> None:
    bundled = bundled_model_path()
    assert bundled is not None
    local = tmp_path / "minilm"
    local.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "sentence_bert_config.json"):
        (local / name).symlink_to(bundled / name)
    embedder = OnnxEmbedder(str(local))
    assert embedder.model_id == str(local.resolve())
    same = np.dot(embedder.embed(["restart the api"])[0], OnnxEmbedder().embed(["restart the api"])[0])
    assert same == pytest.approx(1.0, abs=1e-6)


def _warm_up_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "knowledge-warm-up"]


def test_the_server_warms_the_model_up_in_the_background(tmp_path) -> None:
    app = App(Settings(data_dir=tmp_path, embedding_backend="onnx"), caller="tester")
    assert app.knowledge is not None and not app.knowledge.embedder.loaded  # type: ignore[attr-defined]
    app.start_warm_up()
    for thread in _warm_up_threads():
        thread.join(timeout=120)
    assert app.knowledge.embedder.loaded  # type: ignore[attr-defined]
    assert {i.id for i in app.knowledge.items("policy")} >= {"no-latest-tag"}  # store opened and seeded


def test_a_failed_warm_up_is_logged_and_the_server_goes_on(tmp_path, caplog) -> None:
    missing = tmp_path / "no-such-model"
    missing.mkdir()
    app = App(Settings(data_dir=tmp_path, embedding_backend="onnx", embedding_model=str(missing)), caller="tester")
    with caplog.at_level(logging.WARNING, logger="operate_mcp.server.app"):
        app.start_warm_up()
        for thread in _warm_up_threads():
            thread.join(timeout=60)
    assert any("knowledge warm-up" in r.getMessage() and "has no config.json" in r.getMessage() for r in caplog.records)


def test_no_warm_up_when_knowledge_is_off(tmp_path) -> None:
    app = App(Settings(data_dir=tmp_path, knowledge_enabled=False), caller="tester")
    app.start_warm_up()
    assert _warm_up_threads() == []
