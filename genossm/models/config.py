"""Model configuration: one dataclass per model, serialisable to YAML and JSON.

A model is fully described by a `ModelConfig`: `build_model(config)` constructs it and a
checkpoint stores `config.to_dict()` beside the weights. The architecture-specific fields live in
sub-sections, `hyena`, `mamba` and `mamba2`, so a YAML file reads the way the model is built:

    arch: hyena
    d_model: 256
    n_layers: 8
    hyena: {order: 2, filter_order: 64}

Fields left out take the defaults below; `mlp_ratio` and `norm` default per architecture
(HyenaDNA: LayerNorm and a 4x GELU MLP in every block; mamba_ssm and Caduceus, Mamba-1 and
Mamba-2 alike: RMSNorm and no MLP).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genossm.errors import InputError
from genossm.tokenizer import VOCAB, VOCAB_SIZE, Vocabulary

ARCHS = ("hyena", "mamba", "mamba2")
SECTIONS = {"hyena": "hyena", "mamba": "mamba", "mamba2": "mamba2"}  # arch -> its config section
OBJECTIVES = ("causal", "masked")
NORMS = ("layernorm", "rmsnorm")
# Hyena filter positional features: "genossm" (t = n / max_length, float64 per position) or
# "hyenadna" (t = n / (max_length - 1), its torch.linspace(0, 1, l_max), from its float32 table).
FILTER_FEATURES = ("genossm", "hyenadna")


@dataclass
class HyenaConfig:
    """HyenaDNA's operator (Poli et al. 2023; Nguyen et al. 2023), same defaults as its code."""

    order: int = 2  # number of gates; order 2 = two gates around one long convolution
    expand: int = 1  # operator width d_inner = expand * d_model (HyenaDNA: 1)
    short_filter_width: int = 3  # depthwise causal conv on the projections (HyenaDNA: 3)
    filter_emb_dim: int = 5  # positional features: t plus (emb_dim - 1) / 2 sin/cos bands
    filter_order: int = 64  # width of the implicit filter's MLP
    filter_inner_layers: int = 2  # hidden Linear+Sin layers of that MLP (HyenaDNA: 2)
    filter_sine_freq: float = 1.0  # initial (learnable) frequency of the Sin activations
    # Exponential decay window exp(-|delta| t) on the filter, t = position / max_length; the
    # channels' decay rates spread from log(target)/slow_pct (slow) to log(target)/fast_pct.
    decay_fast_pct: float = 0.3
    decay_slow_pct: float = 1.5
    decay_target: float = 0.01
    decay_shift: float = 0.0  # added to the decay window (HyenaDNA's published code: 0.05)
    modulate: bool = True
    # "genossm": t = n / max_length, computed in float64 per position. "hyenadna": HyenaDNA's
    # table, t = n / (max_length - 1) (its linspace(0, 1, l_max)) built in float32 as its code
    # does, bitwise what its checkpoints store; past max_length the same formulas continue. The
    # sin/cos bands turn once per max_length either way.
    filter_features: str = "genossm"


@dataclass
class MambaConfig:
    """Mamba-1 (Gu and Dao 2023) mixer, same defaults as mamba_ssm's `Mamba` module."""

    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int | str = "auto"  # "auto" = ceil(d_model / 16)
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    conv_bias: bool = True
    proj_bias: bool = False

    def resolved_dt_rank(self, d_model: int) -> int:
        return math.ceil(d_model / 16) if self.dt_rank == "auto" else int(self.dt_rank)


@dataclass
class Mamba2Config:
    """Mamba-2 (Dao and Gu 2024) SSD mixer, mamba_ssm's `Mamba2` defaults unless noted.

    Heads: d_inner = expand * d_model channels in heads of `headdim` (H = d_inner / headdim),
    one scalar decay A per head; B and C shared by the heads of each of `ngroups` groups.
    """

    d_state: int = 128
    d_conv: int = 4  # causal conv over x, B and C (the causal_conv1d kernel: 2..4)
    expand: int = 2
    headdim: int = 64
    ngroups: int = 1
    A_init_min: float = 1.0  # A = -exp(A_log), -A drawn uniformly from [A_init_min, A_init_max]
    A_init_max: float = 16.0
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    conv_bias: bool = True
    proj_bias: bool = False
    # chunk length of the chunked SSD (mamba_ssm: 256). Results do not depend on it beyond
    # rounding; 64 keeps the CPU reference's (chunk x chunk) masks small. To be tuned on the GPU.
    chunk_size: int = 64

    def d_inner(self, d_model: int) -> int:
        return self.expand * d_model

    def nheads(self, d_model: int) -> int:
        return self.d_inner(d_model) // self.headdim


@dataclass
class TokenizerConfig:
    """The model's vocabulary and how a sequence becomes its ids (`genossm.tokenizer.Vocabulary`).

    `vocab` lists the tokens in id order: single characters are bases (matched case-insensitively),
    bracketed names are specials. The default is genossm's own (A C G T N [MASK] [PAD], IUPAC
    codes read as N); a converted model keeps its peer's, e.g. HyenaDNA's and Caduceus' [CLS]
    [SEP] [BOS] [MASK] [PAD] [RESERVED] [UNK] A C G T N, where any other character is `unknown`
    ([UNK]) and every sequence ends with `append` ([SEP]).
    """

    vocab: list[str] = field(default_factory=lambda: list(VOCAB))
    unknown: str = "N"  # the token of characters outside the vocabulary
    append: list[str] = field(default_factory=list)  # tokens after every sequence, e.g. ["[SEP]"]

    def vocabulary(self) -> Vocabulary:
        return Vocabulary(self.vocab, unknown=self.unknown, append=self.append)


@dataclass
class ModelConfig:
    """Everything that fixes a model's shape and behaviour.

    `max_length` is the length the model was configured (and trained) for; it scales the Hyena
    filter's positional features, but every model runs at any length, 8x `max_length` included.
    For an RC-equivariant model `d_model` is the width of ONE strand (Caduceus' convention): the
    hidden state carries both strands, 2 * d_model channels, with every weight shared.
    """

    arch: str = "hyena"
    d_model: int = 128
    n_layers: int = 2
    vocab_size: int = VOCAB_SIZE
    objective: str = "causal"  # "causal": logits at t predict token t+1; "masked": token t
    bidirectional: bool = False  # Mamba / Mamba-2 only: Caduceus BiMamba (forward + reversed mixer)
    rc_equivariant: bool = False  # Caduceus-PS weight sharing across strands
    max_length: int = 1024
    dropout: float = 0.0
    norm: str | None = None  # None: "layernorm" for hyena, "rmsnorm" for mamba
    norm_eps: float = 1e-5
    mlp_ratio: int | None = None  # None: 4 for hyena, 0 (no MLP) for mamba
    tie_embeddings: bool = True
    checkpointing: bool = False  # activation checkpointing around each block while training
    # With checkpointing, for the longest inputs (docs/long_context.md): keep the checkpointed block
    # inputs in host memory until the backward (single process only), and recompute the block's
    # MLP in chunks of this many positions, each its own checkpoint (0: the whole length at once).
    checkpoint_offload: bool = False
    checkpoint_mlp_chunk: int = 0
    # RC-equivariant models only: the two strand halves of the residual stream are exchanged
    # before every block (Caduceus-PS with fused add+norm, the published checkpoints' code path).
    rc_swap_halves: bool = False
    # The model is meant to be used averaged over both strands at inference (Caduceus-Ph's
    # post-hoc RC averaging); `rc_average` and the inference commands' default both-strands mode
    # do so. Informational: forward() returns one strand's outputs either way.
    rc_posthoc: bool = False
    hyena: HyenaConfig = field(default_factory=HyenaConfig)
    mamba: MambaConfig = field(default_factory=MambaConfig)
    mamba2: Mamba2Config = field(default_factory=Mamba2Config)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)

    def __post_init__(self):
        if isinstance(self.hyena, dict):
            self.hyena = _section_from_dict(HyenaConfig, self.hyena, "hyena")
        if isinstance(self.mamba, dict):
            self.mamba = _section_from_dict(MambaConfig, self.mamba, "mamba")
        if isinstance(self.mamba2, dict):
            self.mamba2 = _section_from_dict(Mamba2Config, self.mamba2, "mamba2")
        if isinstance(self.tokenizer, dict):
            self.tokenizer = _section_from_dict(TokenizerConfig, self.tokenizer, "tokenizer")
        if self.norm is None:
            self.norm = "layernorm" if self.arch == "hyena" else "rmsnorm"
        if self.mlp_ratio is None:
            self.mlp_ratio = 4 if self.arch == "hyena" else 0
        self.validate()

    @property
    def hidden_size(self) -> int:
        """Channels of the residual stream: both strands for an RC-equivariant model."""
        return 2 * self.d_model if self.rc_equivariant else self.d_model

    def validate(self) -> None:
        """Raise InputError naming the first field that cannot work, and how to fix it."""
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("objective", self.objective, OBJECTIVES)
        _check_choice("norm", self.norm, NORMS)
        for name in ("d_model", "n_layers", "vocab_size", "max_length"):
            _check_positive_int(name, getattr(self, name))
        try:
            vocabulary = self.tokenizer.vocabulary()
        except (TypeError, ValueError) as err:
            raise InputError(f"model config: tokenizer: {err}") from None
        if self.vocab_size < len(vocabulary):
            raise InputError(
                f"model config: vocab_size {self.vocab_size} is smaller than the tokenizer's "
                f"{len(vocabulary)} ids; use vocab_size >= {len(vocabulary)}"
            )
        if self.objective == "masked" and vocabulary.mask_id is None:
            raise InputError("model config: a masked model needs a [MASK] token in tokenizer.vocab")
        if self.rc_swap_halves and not self.rc_equivariant:
            raise InputError("model config: rc_swap_halves applies to RC-equivariant models only; "
                             "set rc_equivariant: true or rc_swap_halves: false")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"model config: dropout must lie in [0, 1), found {self.dropout}")
        if not isinstance(self.mlp_ratio, int) or self.mlp_ratio < 0:
            raise InputError(f"model config: mlp_ratio must be an integer >= 0, found {self.mlp_ratio!r}")
        if not isinstance(self.checkpoint_mlp_chunk, int) or self.checkpoint_mlp_chunk < 0:
            raise InputError("model config: checkpoint_mlp_chunk must be an integer >= 0 (0: no "
                             f"chunking), found {self.checkpoint_mlp_chunk!r}")
        if self.bidirectional and self.arch not in ("mamba", "mamba2"):
            raise InputError(
                f"model config: bidirectional models are Mamba only (arch mamba or mamba2: Caduceus BiMamba), "
                f"found arch {self.arch!r}; set arch: mamba (or mamba2) or bidirectional: false"
            )
        if self.objective == "causal" and self.bidirectional:
            raise InputError(
                "model config: a causal (next-base) objective cannot be bidirectional: the model "
                "would see the base it predicts; set objective: masked or bidirectional: false"
            )
        if self.objective == "masked" and not self.bidirectional:
            raise InputError(
                "model config: a masked objective needs a bidirectional model (a one-directional "
                "model sees only the left context of a masked base); set bidirectional: true "
                "(arch: mamba or mamba2) or objective: causal"
            )
        if self.rc_equivariant and not self.bidirectional:
            raise InputError(
                "model config: rc_equivariant requires bidirectional: true (a causal model reads "
                "the two strands in opposite directions, so its outputs cannot be exchanged); "
                "use genossm.models.rc.rc_average to average strands at inference instead"
            )
        if self.arch == "hyena":
            h = self.hyena
            for name in ("order", "expand", "filter_order", "filter_inner_layers"):
                _check_positive_int(f"hyena.{name}", getattr(h, name))
            if h.order < 2:
                raise InputError(f"model config: hyena.order must be >= 2, found {h.order}")
            if not 2 <= h.short_filter_width <= 4:
                raise InputError(
                    f"model config: hyena.short_filter_width must lie in 2..4 (the causal_conv1d "
                    f"kernel's widths), found {h.short_filter_width}"
                )
            _check_choice("hyena.filter_features", h.filter_features, FILTER_FEATURES)
            if h.filter_features == "hyenadna" and self.max_length < 2:
                raise InputError("model config: hyena.filter_features hyenadna needs max_length >= 2")
            if h.filter_emb_dim < 3 or h.filter_emb_dim % 2 == 0:
                raise InputError(
                    f"model config: hyena.filter_emb_dim must be odd and >= 3 (t plus sin/cos "
                    f"pairs), found {h.filter_emb_dim}"
                )
        elif self.arch == "mamba2":
            self._validate_mamba2()
        else:
            m = self.mamba
            for name in ("d_state", "expand"):
                _check_positive_int(f"mamba.{name}", getattr(m, name))
            if not 2 <= m.d_conv <= 4:
                raise InputError(f"model config: mamba.d_conv must lie in 2..4, found {m.d_conv}")
            if m.dt_rank != "auto":
                _check_positive_int("mamba.dt_rank", m.dt_rank)
            if not 0 < m.dt_min <= m.dt_max:
                raise InputError(
                    f"model config: need 0 < mamba.dt_min <= mamba.dt_max, found {m.dt_min}, {m.dt_max}"
                )

    def _validate_mamba2(self) -> None:
        m = self.mamba2
        for name in ("d_state", "expand", "headdim", "ngroups", "chunk_size"):
            _check_positive_int(f"mamba2.{name}", getattr(m, name))
        if not 2 <= m.d_conv <= 4:
            raise InputError(f"model config: mamba2.d_conv must lie in 2..4, found {m.d_conv}")
        d_inner = m.d_inner(self.d_model)
        if d_inner % m.headdim:
            raise InputError(
                f"model config: mamba2.expand * d_model = {d_inner} must be a multiple of "
                f"mamba2.headdim = {m.headdim}; change headdim, expand or d_model"
            )
        if m.nheads(self.d_model) % m.ngroups:
            raise InputError(
                f"model config: mamba2.ngroups = {m.ngroups} must divide the {m.nheads(self.d_model)} "
                f"heads (expand * d_model / headdim)"
            )
        if not 0 < m.dt_min <= m.dt_max:
            raise InputError(
                f"model config: need 0 < mamba2.dt_min <= mamba2.dt_max, found {m.dt_min}, {m.dt_max}"
            )
        if not 0 < m.A_init_min <= m.A_init_max:
            raise InputError(
                f"model config: need 0 < mamba2.A_init_min <= mamba2.A_init_max, found "
                f"{m.A_init_min}, {m.A_init_max}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/YAML-ready); only the section of this model's architecture."""
        data = dataclasses.asdict(self)
        for arch, section in SECTIONS.items():
            if arch != self.arch:
                data.pop(section)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | os.PathLike | None = None) -> ModelConfig:
        """Inverse of `to_dict`; unknown keys are an error (a typo must not pass silently)."""
        if not isinstance(data, dict):
            raise InputError(
                f"model config: expected a mapping of fields, found {type(data).__name__}", path=source
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(
                f"model config: unknown field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(known))}",
                path=source,
            )
        try:
            return cls(**data)
        except InputError as err:
            if source is not None and err.path is None:
                raise InputError(err.message, path=source) from None
            raise
        except TypeError as err:
            raise InputError(f"model config: {err}", path=source) from None


def _section_from_dict(section_cls, data: dict[str, Any], name: str):
    known = {f.name for f in dataclasses.fields(section_cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(
            f"model config: unknown field(s) {', '.join(unknown)} in section {name!r}; "
            f"known fields: {', '.join(sorted(known))}"
        )
    return section_cls(**data)


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise InputError(f"model config: {name} must be one of {', '.join(choices)}, found {value!r}")


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"model config: {name} must be a positive integer, found {value!r}")


def available_model_configs() -> list[str]:
    """Names of the shipped model configs (configs/models/*.yaml)."""
    from genossm.configs import CONFIGS

    return sorted(p.stem for p in (CONFIGS / "models").glob("*.yaml"))


def load_model_config(name_or_path: str | os.PathLike) -> ModelConfig:
    """A shipped config by name (`"hyena-1m"`) or a YAML/JSON file by path."""
    import yaml

    text_path = Path(name_or_path)
    is_path = text_path.suffix in (".yaml", ".yml", ".json") or os.sep in str(name_or_path) or text_path.exists()
    if not is_path:
        from genossm.configs import CONFIGS

        text_path = CONFIGS / "models" / f"{name_or_path}.yaml"
        if not text_path.exists():
            raise InputError(
                f"no model config named {str(name_or_path)!r}; shipped configs: "
                f"{', '.join(available_model_configs())}, or give the path of a YAML file"
            )
    if not text_path.exists():
        raise InputError("model config file not found", path=text_path)
    try:
        data = yaml.safe_load(text_path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise InputError(
            f"not valid YAML: {getattr(err, 'problem', err)}", path=text_path,
            line=None if mark is None else mark.line + 1,
        ) from None
    return ModelConfig.from_dict(data, source=text_path)
