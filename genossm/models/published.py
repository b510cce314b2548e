"""Published HyenaDNA and Caduceus checkpoints -> genossm checkpoint directories, exactly.

    convert_published(DIR, OUT, source="auto" | "hyenadna" | "caduceus")

DIR is a downloaded checkpoint folder, recognised from its config.json:
- HyenaDNA, Hugging Face layout (LongSafari/hyenadna-*-hf): config.json (model_type "hyenadna")
  + model.safetensors or pytorch_model.bin, keys `hyena.backbone.*` and `lm_head.weight`;
- HyenaDNA, original Lightning layout (LongSafari/hyenadna-*-seqlen): config.json with a `layer`
  section + weights.ckpt, keys `model.backbone.*` (`.mixer.layer.` / `.mlp.layer.` when trained
  with checkpoint_mixer / checkpoint_mlp); the head is tied to the embeddings, as the original LM;
- Caduceus (kuleshov-group/caduceus-ph_* and caduceus-ps_*), Hugging Face layout: config.json
  (model_type "caduceus") + model.safetensors or pytorch_model.bin, keys `caduceus.backbone.*`.

The peers' behaviour becomes config options of the genossm model, so the converted model gives
the peer's logits and hidden states (to float32 rounding): HyenaDNA's filter time scaled by
l_max - 1 in its float32 table and its 0.05 decay shift (`hyena.filter_features`,
`hyena.decay_shift`), its
vocabulary and padded embedding rows (`tokenizer`, `vocab_size`), its separate or tied head;
Caduceus' BiMamba (bidirectional, in/out projections tied), RC-PS weight sharing
(`rc_equivariant`, and `rc_swap_halves` for the fused add+norm path the published PS models
ran), post-hoc RC averaging for Ph (`rc_posthoc`). Tensors the peers store but genossm derives
(HyenaDNA's positional features and decay rates, Caduceus' complement maps, tied copies) are
checked against genossm's values instead of loaded: a checkpoint whose values differ is refused,
naming the key, as is any unknown or missing key and any config value genossm cannot represent.

Reading is safe: safetensors, or torch.load(weights_only=True); a file that needs arbitrary
objects unpickled is refused with a one-line error saying how to re-save it. config.json of the
output records the provenance (project, layout, original config, SHA-256 of the source weights).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

from genossm.errors import InputError

log = logging.getLogger("genossm.models.published")

SOURCES = ("auto", "hyenadna", "caduceus")
HUGGINGFACE = "huggingface"
LIGHTNING = "lightning"
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
LIGHTNING_WEIGHTS = "weights.ckpt"

# The character tokenizers of both projects (HyenaDNA's CharacterTokenizer, CaduceusTokenizer):
# seven specials, then the characters; any other character is [UNK]; [SEP] ends every sequence.
PEER_VOCAB = ["[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]", "A", "C", "G", "T", "N"]
PEER_TOKENIZER = {"vocab": PEER_VOCAB, "unknown": "[UNK]", "append": ["[SEP]"]}

# Keys every Hugging Face config.json may carry that do not change the model's numbers.
HF_GENERIC_KEYS = {
    "architectures", "auto_map", "model_type", "transformers_version", "torch_dtype", "dtype",
    "_name_or_path", "name_or_path", "pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id",
    "cls_token_id", "mask_token_id", "unk_token_id", "output_hidden_states", "output_attentions",
    "return_dict", "use_return_dict", "use_cache", "id2label", "label2id", "num_labels",
    "problem_type", "is_encoder_decoder", "is_decoder", "add_cross_attention", "tokenizer_class",
    "chunk_size_feed_forward", "torchscript", "pruned_heads", "tie_encoder_decoder",
    "finetuning_task", "prefix", "task_specific_params", "_commit_hash", "_attn_implementation",
    "initializer_range", "initializer_cfg", "model_max_length",
}


# ---------------------------------------------------------------------------------------- reading
def read_peer_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.is_file():
        raise InputError("no config.json: expected a downloaded HyenaDNA or Caduceus checkpoint folder",
                         path=directory)
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"config.json is not valid JSON ({err})", path=path) from None
    if not isinstance(config, dict):
        raise InputError("config.json does not hold a JSON object", path=path)
    return config


def detect_source(directory: Path, config: dict[str, Any], source: str = "auto") -> tuple[str, str, Path]:
    """(project "hyenadna" | "caduceus", layout, weights file) of a checkpoint folder."""
    if source not in SOURCES:
        raise InputError(f"--from {source!r}: expected one of {', '.join(SOURCES)}")
    if config.get("format") == "genossm-checkpoint":
        raise InputError("already a genossm checkpoint; convert it without --from", path=directory)
    model_type = str(config.get("model_type", "")).lower()
    architectures = " ".join(map(str, config.get("architectures") or [])).lower()
    layer = config.get("layer")
    if model_type == "caduceus" or "caduceus" in architectures:
        found = ("caduceus", HUGGINGFACE)
    elif model_type == "hyenadna" or "hyena" in architectures:
        found = ("hyenadna", HUGGINGFACE)
    elif isinstance(layer, dict) and str(layer.get("_name_", "hyena")).startswith("hyena") and "d_model" in config:
        found = ("hyenadna", LIGHTNING)
    else:
        raise InputError("config.json is neither a HyenaDNA config (model_type 'hyenadna', or the original "
                         "layout's 'layer' section) nor a Caduceus config (model_type 'caduceus')",
                         path=directory / "config.json")
    if source != "auto" and source != found[0]:
        raise InputError(f"--from {source}, but config.json describes a {found[0]} model "
                         f"({found[1]} layout); use --from {found[0]} or --from auto", path=directory)
    if found[1] == LIGHTNING:
        names = (LIGHTNING_WEIGHTS,)
    else:
        names = HF_WEIGHT_FILES
    for name in names:
        if (directory / name).is_file():
            return found[0], found[1], directory / name
    if (directory / "model.safetensors.index.json").is_file() or (directory / "pytorch_model.bin.index.json").is_file():
        raise InputError("sharded Hugging Face weights are not supported; save the model as one "
                         "model.safetensors (save_pretrained(..., max_shard_size='100GB'))", path=directory)
    raise InputError(f"no weights file: expected {' or '.join(names)} beside config.json", path=directory)


def read_weights(path: Path) -> dict:
    """Tensors of a safetensors file, or of a torch.save'd dict read with weights_only=True."""
    import pickle

    import torch

    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise InputError(f"corrupt safetensors file ({err})", path=path) from None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        from genossm.models.checkpoint import _unpickler_detail

        name = path.name
        resave = (f"torch.save({{'state_dict': torch.load('{name}', weights_only=False)['state_dict']}}, '{name}')"
                  if name.endswith(".ckpt") else f"torch.save(torch.load('{name}', weights_only=False), '{name}')")
        raise InputError(
            f"cannot read it safely: torch.load(weights_only=True) refused it ({_unpickler_detail(str(err))}); "
            f"re-save only its tensors, from a copy you trust: {resave}",
            path=path,
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise InputError(f"not a readable PyTorch file ({str(err).splitlines()[0]})", path=path) from None
    if isinstance(data, dict) and "state_dict" in data:
        data = data["state_dict"]
    if not isinstance(data, dict) or not data:
        raise InputError("holds no state dict (expected a dict of tensors, or {'state_dict': ...})", path=path)
    bad = sorted(str(k) for k, v in data.items() if not isinstance(v, torch.Tensor))
    if bad:
        raise InputError(f"state dict entries that are not tensors: {', '.join(bad[:5])}", path=path)
    return dict(data)


class _Keys:
    """The source state dict, consumed key by key: missing and left-over keys are errors."""

    def __init__(self, state: dict, source: Path):
        self.state = dict(state)
        self.source = source
        self.used: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self.state

    def take(self, key: str, shape: tuple | None = None):
        if key not in self.state:
            raise InputError(f"missing key {key!r} in the checkpoint weights", path=self.source)
        tensor = self.state[key]
        if shape is not None and tuple(tensor.shape) != tuple(shape):
            raise InputError(f"key {key!r} has shape {tuple(tensor.shape)}, the config implies "
                             f"{tuple(shape)}", path=self.source)
        self.used.add(key)
        return tensor.float() if tensor.is_floating_point() else tensor

    def optional(self, key: str):
        return self.take(key) if key in self.state else None

    def finish(self) -> None:
        left = sorted(set(self.state) - self.used)
        if left:
            shown = ", ".join(left[:6]) + (f" and {len(left) - 6} more" if len(left) > 6 else "")
            raise InputError(f"unexpected key(s) in the checkpoint weights, not part of the model the "
                             f"config describes: {shown}", path=self.source)


def _check_close(key: str, stored, expected, source: Path, atol: float, what: str) -> None:
    stored = stored.double().reshape(-1)
    expected = expected.double().reshape(-1)
    if stored.shape != expected.shape:
        raise InputError(f"key {key!r} has {stored.numel()} values, genossm's {what} has "
                         f"{expected.numel()}", path=source)
    error = float((stored - expected).abs().max()) if stored.numel() else 0.0
    if not math.isfinite(error) or error > atol:
        raise InputError(
            f"key {key!r} differs from genossm's {what} by up to {error:.3g} (tolerance {atol:g}): "
            "the checkpoint was trained or edited in a way genossm cannot represent exactly",
            path=source,
        )


def _unknown(config: dict, known: set[str], where: str, path: Path) -> None:
    unknown = sorted(set(config) - known - HF_GENERIC_KEYS)
    if unknown:
        raise InputError(f"config key(s) {', '.join(unknown)}{where} not known to genossm's converter; "
                         "it cannot tell whether they change the model's numbers", path=path)


def _require(condition: bool, key: str, value, expected: str, path: Path) -> None:
    if not condition:
        raise InputError(f"config key {key} = {value!r}: genossm can only represent {expected} exactly",
                         path=path)


def _padded(vocab_size: int, multiple: int) -> int:
    if multiple and vocab_size % multiple:
        vocab_size += multiple - vocab_size % multiple
    return vocab_size


def _int(config: dict, key: str, default, path: Path) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"config key {key} = {value!r}: expected a positive integer", path=path)
    return value


# ---------------------------------------------------------------------------------------- HyenaDNA
HYENA_HF_KEYS = {
    "d_model", "n_layer", "d_inner", "vocab_size", "max_seq_len", "emb_dim", "filter_order",
    "short_filter_order", "num_inner_mlps", "activation_freq", "train_freq", "hyena_order", "use_bias",
    "layer_norm_epsilon", "pad_vocab_size_multiple", "tie_word_embeddings", "embed_dropout",
    "hyena_dropout", "hyena_filter_dropout",
}
HYENA_LIGHTNING_KEYS = {
    "d_model", "n_layer", "d_inner", "vocab_size", "resid_dropout", "embed_dropout", "fused_mlp",
    "fused_dropout_add_ln", "residual_in_fp32", "pad_vocab_size_multiple", "layer", "checkpoint_mixer",
    "checkpoint_mlp", "return_hidden_state", "use_head", "n_classes", "layer_norm_epsilon",
    "attn_layer_idx", "attn_cfg", "max_position_embeddings", "process_group", "device",
}
HYENA_LAYER_KEYS = {
    "_name_", "emb_dim", "filter_order", "local_order", "short_filter_order", "l_max", "modulate", "w",
    "lr", "wd", "lr_pos_emb", "order", "shift", "fast_decay_pct", "slow_decay_pct", "target",
    "modulation_lr", "dropout", "filter_dropout", "num_inner_mlps", "train_freq", "bias", "normalized",
    "fused_fft_conv", "num_heads", "inner_factor", "num_blocks", "outer_mixing", "post_order_ffn",
    "jit_filter", "activation", "return_state", "filter_cls", "fused_bias_fc", "channels",
}


def hyenadna_config(config: dict, layout: str, path: Path):
    """(genossm ModelConfig, facts the weight mapping needs) of a HyenaDNA config.json."""
    from genossm.models.config import HyenaConfig, ModelConfig

    if layout == HUGGINGFACE:
        _unknown(config, HYENA_HF_KEYS, "", path)
        layer = {
            "l_max": config.get("max_seq_len", 1024), "emb_dim": config.get("emb_dim", 3),
            "filter_order": config.get("filter_order", 64), "order": config.get("hyena_order", 2),
            "short_filter_order": config.get("short_filter_order", 3),
            "num_inner_mlps": config.get("num_inner_mlps", 2), "w": config.get("activation_freq", 1),
            "train_freq": config.get("train_freq", True),
        }
        _require(layer["order"] == 2, "hyena_order", layer["order"], "2 (the Hugging Face port's modulation "
                 "has d_model channels)", path)
        shift = 0.05  # the port's HyenaExponentialModulation default
        eps = config.get("layer_norm_epsilon", 1e-5)
        # The port's block norms use LayerNorm's default eps, only ln_f reads layer_norm_epsilon.
        _require(eps == 1e-5, "layer_norm_epsilon", eps, "1e-5 (the blocks' LayerNorms use 1e-5)", path)
        tie = bool(config.get("tie_word_embeddings", False))
        fast, slow, target, modulate = 0.3, 1.5, 1e-2, True
    else:
        _unknown(config, HYENA_LIGHTNING_KEYS, "", path)
        layer = config.get("layer")
        if not isinstance(layer, dict):
            raise InputError("config key layer: expected the original HyenaDNA 'layer' section", path=path)
        _unknown(layer, HYENA_LAYER_KEYS, " (in 'layer')", path)
        if "l_max" not in layer:
            raise InputError("config key layer.l_max is missing (the filter length HyenaDNA was built with)", path=path)
        layer = dict(layer)
        layer.setdefault("emb_dim", 3)
        layer.setdefault("filter_order", 64)
        layer.setdefault("order", 2)
        layer.setdefault("num_inner_mlps", 2)
        layer.setdefault("w", 1)
        layer.setdefault("train_freq", True)
        layer["short_filter_order"] = layer.get("short_filter_order", layer.get("local_order", 3))
        for key, expected in (("normalized", False), ("num_heads", 1), ("inner_factor", 1), ("num_blocks", 1),
                              ("outer_mixing", False), ("post_order_ffn", False), ("return_state", False)):
            if key in layer:
                _require(layer[key] == expected, f"layer.{key}", layer[key], repr(expected), path)
        if "activation" in layer:
            _require(layer["activation"] in ("id", None), "layer.activation", layer["activation"], "'id'", path)
        if "filter_cls" in layer:
            _require(layer["filter_cls"] == "hyena-filter", "layer.filter_cls", layer["filter_cls"],
                     "'hyena-filter'", path)
        if layer.get("_name_", "hyena") != "hyena":
            _require(False, "layer._name_", layer["_name_"], "'hyena'", path)
        if config.get("attn_layer_idx"):
            _require(False, "attn_layer_idx", config["attn_layer_idx"], "pure Hyena models (no attention layers)", path)
        if config.get("max_position_embeddings"):
            _require(False, "max_position_embeddings", config["max_position_embeddings"], "0", path)
        # standalone_hyenadna.py (the original repo's inference model): ExponentialModulation's
        # shift defaults to 0.05, as in the Hugging Face port.
        shift = float(layer.get("shift", 0.05))
        eps = config.get("layer_norm_epsilon", 1e-5)
        tie = True
        fast = float(layer.get("fast_decay_pct", 0.3))
        slow = float(layer.get("slow_decay_pct", 1.5))
        target = float(layer.get("target", 1e-2))
        modulate = bool(layer.get("modulate", True))
    short = layer["short_filter_order"]
    _require(short == 3, "short_filter_order" if layout == HUGGINGFACE else "layer.local_order", short,
             "3 (HyenaDNA's short filter pads by 2: only width 3 is causal)", path)
    d_model = _int(config, "d_model", 256, path)
    d_inner = config.get("d_inner") or 4 * d_model
    _require(isinstance(d_inner, int) and d_inner % d_model == 0, "d_inner", d_inner,
             f"a multiple of d_model ({d_model})", path)
    vocab_size = _int(config, "vocab_size", 12, path)
    _require(vocab_size == len(PEER_VOCAB), "vocab_size", vocab_size,
             f"{len(PEER_VOCAB)} (the character tokenizer's vocabulary)", path)
    padded = _padded(vocab_size, config.get("pad_vocab_size_multiple", 8) or 1)
    emb_dim = layer["emb_dim"]
    _require(isinstance(emb_dim, int) and emb_dim >= 3 and emb_dim % 2 == 1, "emb_dim", emb_dim, "an odd number >= 3", path)
    l_max = layer["l_max"]
    _require(isinstance(l_max, int) and l_max >= 2, "max_seq_len" if layout == HUGGINGFACE else "layer.l_max",
             l_max, "an integer >= 2", path)
    model_config = ModelConfig(
        arch="hyena", objective="causal", d_model=d_model, n_layers=_int(config, "n_layer", 12, path),
        vocab_size=padded, max_length=l_max, dropout=0.0, norm="layernorm", norm_eps=float(eps),
        mlp_ratio=d_inner // d_model, tie_embeddings=tie,
        hyena=HyenaConfig(
            order=layer["order"], expand=1, short_filter_width=3, filter_emb_dim=emb_dim,
            filter_order=layer["filter_order"], filter_inner_layers=layer["num_inner_mlps"],
            filter_sine_freq=float(layer["w"]), decay_fast_pct=fast, decay_slow_pct=slow,
            decay_target=target, decay_shift=shift, modulate=modulate, filter_features="hyenadna",
        ),
        tokenizer=dict(PEER_TOKENIZER),
    )
    return model_config, {"train_freq": bool(layer["train_freq"]), "w": float(layer["w"])}


def hyenadna_state(keys: _Keys, config, facts: dict, layout: str) -> dict:
    """genossm state dict from a HyenaDNA state dict (keys consumed from `keys`)."""
    import torch

    from genossm.models.hyena import ImplicitFilter

    if layout == LIGHTNING:
        # Trained with checkpoint_mixer / checkpoint_mlp: `.mixer.layer.` and `.mlp.layer.`.
        renamed = {}
        for key, value in keys.state.items():
            new = re.sub(r"\.(mixer|mlp)\.layer\.", r".\1.", key)
            renamed[new] = value
        keys.state = renamed
        prefix, head_key = "model.backbone.", "model.lm_head.weight"
    else:
        prefix, head_key = "hyena.backbone.", "lm_head.weight"
    d, V = config.d_model, config.vocab_size
    h = config.hyena
    channels = (h.order + 1) * d
    state = {"embedding.weight": keys.take(prefix + "embeddings.word_embeddings.weight", (V, d))}
    reference_filter = ImplicitFilter((h.order - 1) * d, h, config.max_length)
    z_expected, t_expected = reference_filter.positional_features(0, config.max_length, "cpu")
    deltas_expected = torch.linspace(reference_filter.slowest_decay, reference_filter.fastest_decay,
                                     (h.order - 1) * d, dtype=torch.float64)
    last = 2 * (h.filter_inner_layers + 1)
    for i in range(config.n_layers):
        src, dst = f"{prefix}layers.{i}.", f"blocks.{i}."
        m = src + "mixer."
        state[dst + "norm.weight"] = keys.take(src + "norm1.weight", (d,))
        state[dst + "norm.bias"] = keys.take(src + "norm1.bias", (d,))
        state[dst + "mlp_norm.weight"] = keys.take(src + "norm2.weight", (d,))
        state[dst + "mlp_norm.bias"] = keys.take(src + "norm2.bias", (d,))
        hidden = config.mlp_ratio * d
        state[dst + "mlp.fc1.weight"] = keys.take(src + "mlp.fc1.weight", (hidden, d))
        state[dst + "mlp.fc1.bias"] = keys.take(src + "mlp.fc1.bias", (hidden,))
        state[dst + "mlp.fc2.weight"] = keys.take(src + "mlp.fc2.weight", (d, hidden))
        state[dst + "mlp.fc2.bias"] = keys.take(src + "mlp.fc2.bias", (d,))
        state[dst + "mixer.in_proj.weight"] = keys.take(m + "in_proj.weight", (channels, d))
        state[dst + "mixer.in_proj.bias"] = keys.take(m + "in_proj.bias", (channels,))
        state[dst + "mixer.out_proj.weight"] = keys.take(m + "out_proj.weight", (d, d))
        state[dst + "mixer.out_proj.bias"] = keys.take(m + "out_proj.bias", (d,))
        state[dst + "mixer.short_conv_weight"] = keys.take(m + "short_filter.weight", (channels, 1, 3))[:, 0]
        state[dst + "mixer.short_conv_bias"] = keys.take(m + "short_filter.bias", (channels,))
        f = m + "filter_fn."
        state[dst + "mixer.filter_bias"] = keys.take(f + "bias", ((h.order - 1) * d,))
        # Derived by genossm, checked: positional features (t, cos, -sin) and decay rates.
        _check_close(f + "pos_emb.z", keys.take(f + "pos_emb.z", (1, config.max_length, h.filter_emb_dim)),
                     z_expected, keys.source, 1e-6, "positional features")
        _check_close(f + "pos_emb.t", keys.take(f + "pos_emb.t", (1, config.max_length, 1)),
                     t_expected, keys.source, 1e-6, "filter time")
        if keys.has(f + "modulation.deltas"):
            _check_close(f + "modulation.deltas", keys.take(f + "modulation.deltas").abs(),
                         deltas_expected, keys.source, 1e-5 * float(deltas_expected.abs().max()), "decay rates")
        freq = None
        for j in range(last + 1):
            g = f"{f}implicit_filter.{j}."
            out = f"{dst}mixer.filter.mlp.{j}."
            if j % 2 == 0:
                fan_in = h.filter_emb_dim if j == 0 else h.filter_order
                fan_out = (h.order - 1) * d if j == last else h.filter_order
                state[out + "weight"] = keys.take(g + "weight", (fan_out, fan_in))
                if j != last:
                    state[out + "bias"] = keys.take(g + "bias", (fan_out,))
            else:
                # One Sin module shared by every activation of the filter: its frequency appears
                # under each index in a .bin, once in a safetensors file (which drops aliases).
                if keys.has(g + "freq"):
                    value = keys.take(g + "freq", (1, h.filter_order))
                    if freq is not None and not torch.equal(value, freq):
                        raise InputError(f"key {g}freq differs from the filter's first Sin frequency: "
                                         "HyenaDNA shares one", path=keys.source)
                    freq = value
                elif freq is None and not facts["train_freq"]:
                    freq = torch.full((1, h.filter_order), facts["w"])
                elif freq is None:
                    raise InputError(f"missing key {g}freq in the checkpoint weights", path=keys.source)
                state[out + "freq"] = freq.clone()
    state["final_norm.weight"] = keys.take(prefix + "ln_f.weight", (d,))
    state["final_norm.bias"] = keys.take(prefix + "ln_f.bias", (d,))
    head = keys.optional(head_key)
    if head is not None and tuple(head.shape) != (V, d):
        raise InputError(f"key {head_key!r} has shape {tuple(head.shape)}, expected {(V, d)}", path=keys.source)
    if config.tie_embeddings:
        if head is not None and not torch.equal(head, state["embedding.weight"]):
            # Stored separately and different: keep it as is (an untied head), numbers first.
            config.tie_embeddings = False
            state["lm_head.weight"] = head
    else:
        if head is None:
            raise InputError(f"missing key {head_key!r} (tie_word_embeddings is false)", path=keys.source)
        state["lm_head.weight"] = head
    return state


# ---------------------------------------------------------------------------------------- Caduceus
CADUCEUS_KEYS = {
    "d_model", "n_layer", "vocab_size", "ssm_cfg", "rms_norm", "residual_in_fp32", "fused_add_norm",
    "pad_vocab_size_multiple", "norm_epsilon", "bidirectional", "bidirectional_strategy",
    "bidirectional_weight_tie", "rcps", "complement_map", "tie_word_embeddings",
}
SSM_KEYS = {"d_state", "d_conv", "expand", "dt_rank", "dt_min", "dt_max", "dt_init", "dt_scale",
            "dt_init_floor", "conv_bias", "bias", "use_fast_path", "layer_idx", "device", "dtype"}


def caduceus_config(config: dict, path: Path, max_length: int):
    from genossm.models.config import MambaConfig, ModelConfig

    _unknown(config, CADUCEUS_KEYS, "", path)
    ssm = config.get("ssm_cfg") or {}
    if not isinstance(ssm, dict):
        raise InputError("config key ssm_cfg: expected a mapping", path=path)
    _unknown(ssm, SSM_KEYS, " (in 'ssm_cfg')", path)
    bidirectional = config.get("bidirectional", True)
    _require(bidirectional is True, "bidirectional", bidirectional,
             "bidirectional Caduceus (a masked model reading both directions)", path)
    strategy = config.get("bidirectional_strategy", "add") or "add"
    _require(strategy == "add", "bidirectional_strategy", strategy, "'add'", path)
    tie = config.get("bidirectional_weight_tie", True)
    _require(tie is True, "bidirectional_weight_tie", tie, "true (in/out projections shared by both directions)", path)
    d_model = _int(config, "d_model", 2560, path)
    vocab_size = _padded(_int(config, "vocab_size", 50277, path), config.get("pad_vocab_size_multiple", 8) or 1)
    _require(vocab_size >= len(PEER_VOCAB), "vocab_size", vocab_size,
             f">= {len(PEER_VOCAB)} (the character tokenizer's vocabulary)", path)
    rcps = bool(config.get("rcps", False))
    dt_rank = ssm.get("dt_rank", "auto")
    model_config = ModelConfig(
        arch="mamba", objective="masked", bidirectional=True, rc_equivariant=rcps,
        rc_swap_halves=rcps and bool(config.get("fused_add_norm", True)), rc_posthoc=not rcps,
        d_model=d_model, n_layers=_int(config, "n_layer", 64, path), vocab_size=vocab_size,
        max_length=max_length, dropout=0.0, norm="rmsnorm" if config.get("rms_norm", True) else "layernorm",
        norm_eps=float(config.get("norm_epsilon", 1e-5)), mlp_ratio=0, tie_embeddings=True,
        mamba=MambaConfig(
            d_state=ssm.get("d_state", 16), d_conv=ssm.get("d_conv", 4), expand=ssm.get("expand", 2),
            dt_rank=dt_rank, dt_min=ssm.get("dt_min", 0.001), dt_max=ssm.get("dt_max", 0.1),
            dt_init_floor=ssm.get("dt_init_floor", 1e-4), conv_bias=bool(ssm.get("conv_bias", True)),
            proj_bias=bool(ssm.get("bias", False)),
        ),
        tokenizer=dict(PEER_TOKENIZER),
    )
    complement = config.get("complement_map")
    if complement is not None:
        expected = model_config.tokenizer.vocabulary().complement(vocab_size)
        try:
            given = {int(k): int(v) for k, v in complement.items()}
        except (AttributeError, TypeError, ValueError):
            raise InputError("config key complement_map: expected a mapping of token ids", path=path) from None
        wrong = sorted(k for k, v in given.items() if k < vocab_size and v != expected[k])
        if wrong:
            raise InputError(f"config key complement_map maps id {wrong[0]} to {given[wrong[0]]}, the "
                             f"vocabulary's complement is {int(expected[wrong[0]])}", path=path)
    elif rcps:
        raise InputError("config key complement_map is missing (an RC-equivariant model needs it)", path=path)
    return model_config


def caduceus_state(keys: _Keys, config) -> dict:
    import torch

    d, V = config.d_model, config.vocab_size
    m = config.mamba
    di = m.expand * d
    r = m.resolved_dt_rank(d)
    rcps = config.rc_equivariant
    complement = torch.as_tensor(config.tokenizer.vocabulary().complement(V))
    p = "caduceus.backbone."
    if rcps:
        embedding = keys.take(p + "embeddings.word_embeddings.embedding.weight", (V, d))
        state = {"embedding.embedding.weight": embedding}
        for key in (p + "embeddings.word_embeddings.complement_map", "lm_head.complement_map"):
            if keys.has(key) and not torch.equal(keys.take(key).long(), complement):
                raise InputError(f"key {key!r} is not the vocabulary's complement map", path=keys.source)
        block, final, head_key = "blocks.{i}.module.", "final_norm.module.", "lm_head.lm_head.weight"
        mixer_src = p + "layers.{i}.mixer.submodule."
    else:
        embedding = keys.take(p + "embeddings.word_embeddings.weight", (V, d))
        state = {"embedding.weight": embedding}
        block, final, head_key = "blocks.{i}.", "final_norm.", "lm_head.weight"
        mixer_src = p + "layers.{i}.mixer."
    layernorm = config.norm == "layernorm"
    for i in range(config.n_layers):
        dst, src = block.format(i=i), mixer_src.format(i=i)
        state[dst + "norm.weight"] = keys.take(f"{p}layers.{i}.norm.weight", (d,))
        if layernorm:
            state[dst + "norm.bias"] = keys.take(f"{p}layers.{i}.norm.bias", (d,))
        fwd, rev = src + "mamba_fwd.", src + "mamba_rev."
        state[dst + "mixer.in_proj.weight"] = keys.take(fwd + "in_proj.weight", (2 * di, d))
        out_weight = keys.take(fwd + "out_proj.weight", (d, di))
        state[dst + "mixer.out_proj.weight"] = out_weight
        if m.proj_bias:
            state[dst + "mixer.in_proj.bias"] = keys.take(fwd + "in_proj.bias", (2 * di,))
            # Each direction adds the shared out_proj bias; genossm projects their sum once.
            state[dst + "mixer.out_proj.bias"] = 2 * keys.take(fwd + "out_proj.bias", (d,))
        for name in ("in_proj.weight", "out_proj.weight", "in_proj.bias", "out_proj.bias"):
            if keys.has(rev + name):  # tied at run time; stored only by torch.save
                if not torch.equal(keys.take(rev + name), keys.state[fwd + name].float()):
                    raise InputError(f"key {rev + name!r} differs from {fwd + name!r}: the projections are "
                                     "not tied (bidirectional_weight_tie)", path=keys.source)
        for direction, ssm in ((fwd, "forward_ssm."), (rev, "reverse_ssm.")):
            out = dst + "mixer." + ssm
            state[out + "conv_weight"] = keys.take(direction + "conv1d.weight", (di, 1, m.d_conv))[:, 0]
            if m.conv_bias:
                state[out + "conv_bias"] = keys.take(direction + "conv1d.bias", (di,))
            state[out + "x_proj.weight"] = keys.take(direction + "x_proj.weight", (r + 2 * m.d_state, di))
            state[out + "dt_proj.weight"] = keys.take(direction + "dt_proj.weight", (di, r))
            state[out + "dt_proj.bias"] = keys.take(direction + "dt_proj.bias", (di,))
            state[out + "A_log"] = keys.take(direction + "A_log", (di, m.d_state))
            state[out + "D"] = keys.take(direction + "D", (di,))
    state[final + "weight"] = keys.take(p + "norm_f.weight", (d,))
    if layernorm:
        state[final + "bias"] = keys.take(p + "norm_f.bias", (d,))
    head = keys.optional(head_key)
    if head is not None and not torch.equal(head, embedding):
        if tuple(head.shape) != (V, d):
            raise InputError(f"key {head_key!r} has shape {tuple(head.shape)}, expected {(V, d)}", path=keys.source)
        config.tie_embeddings = False
        state["lm_head.weight"] = head
    return state


def _max_length_from_name(directory: Path) -> int | None:
    match = re.search(r"seqlen[-_]?(\d+)(k?)", directory.resolve().name, flags=re.IGNORECASE)
    if not match:
        return None
    value = int(match.group(1)) * (1000 if match.group(2) else 1)
    power = 2 ** round(math.log2(value))  # "131k" is 2^17 = 131,072, "1k" 1,024
    return power if match.group(2) and abs(power - value) <= 0.05 * value else value


# ---------------------------------------------------------------------------------------- entry point
def convert_published(directory: str | os.PathLike, out_dir: str | os.PathLike, source: str = "auto",
                      weights_dtype: str | None = None, max_length: int | None = None) -> Path:
    """Convert a downloaded HyenaDNA / Caduceus checkpoint folder into a genossm checkpoint.

    `source`: "auto" (from config.json), "hyenadna" or "caduceus". `max_length`: Caduceus only
    (its config does not record it; default: the folder name's `seqlen-131k`, else 131072), the
    model's nominal context, which sets e.g. `genossm score`'s default window.
    """
    import genossm
    from genossm.models.checkpoint import load_state_dict_checked, save_model, sha256_file
    from genossm.models.lm import build_model

    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("expected a checkpoint folder (config.json + weights)", path=directory)
    config = read_peer_config(directory)
    project, layout, weights_path = detect_source(directory, config, source)
    config_path = directory / "config.json"
    keys = _Keys(read_weights(weights_path), weights_path)
    if project == "hyenadna":
        if max_length is not None:
            raise InputError("--max-length is for Caduceus; HyenaDNA's config records its l_max")
        model_config, facts = hyenadna_config(config, layout, config_path)
        state = hyenadna_state(keys, model_config, facts, layout)
    else:
        if max_length is None:
            max_length = _max_length_from_name(directory) or 131072
        model_config = caduceus_config(config, config_path, max_length)
        state = caduceus_state(keys, model_config)
    keys.finish()
    model = build_model(model_config)
    load_state_dict_checked(model, state, source=weights_path)
    provenance = {
        "project": {"hyenadna": "HyenaDNA", "caduceus": "Caduceus"}[project],
        "variant": _variant(project, model_config),
        "layout": layout,
        "directory": directory.resolve().name,
        "weights_file": weights_path.name,
        "weights_sha256": sha256_file(weights_path),
        "config_sha256": sha256_file(config_path),
        "original_config": config,
        "converted_by": f"genossm {genossm.__version__}",
    }
    log.info("converted %s (%s layout, %s)", provenance["project"], layout, weights_path.name)
    return save_model(model, out_dir, extra={}, weights_dtype=weights_dtype, provenance=provenance)


def _variant(project: str, config) -> str:
    if project == "hyenadna":
        return f"causal LM, d_model {config.d_model} x {config.n_layers} layers, l_max {config.max_length:,}"
    kind = "Caduceus-PS (RC-equivariant)" if config.rc_equivariant else "Caduceus-Ph (post-hoc RC averaging)"
    return f"{kind}, masked LM, d_model {config.d_model} x {config.n_layers} layers"
