"""DNA language model: embedding -> residual blocks -> final norm -> LM head.

`build_model(config)` makes a `DNALanguageModel` for any `ModelConfig`:
- causal models (Hyena, Mamba or Mamba-2): logits at position t predict token t + 1;
- masked models (bidirectional Mamba or Mamba-2, optionally RC-equivariant): logits at t predict
  token t.

Shapes: tokens `(B, L)` long; logits `(B, L, vocab_size)`; embeddings `(B, L, d_model)` (the
final-norm hidden state; for an RC-equivariant model the strand-averaged one, see
`genossm.models.rc`). Inference paths that give the same numbers as `forward` in bounded memory:
`forward_chunked` (every model) and, for causal Mamba and Mamba-2, `forward_with_state` and `step`.
Causal Hyena reuses a reference window's prefix instead: `prefix_cache` then `forward_suffix`
(positions from a start on, of windows equal to the reference before it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from genossm.errors import InputError
from genossm.models import rc
from genossm.models.blocks import Block, make_norm, map_chunks
from genossm.models.config import ModelConfig
from genossm.models.hyena import HyenaOperator, HyenaPrefixCache
from genossm.models.mamba import MambaMixer, MambaState
from genossm.models.mamba2 import Mamba2Mixer
from genossm.models.offload import offloaded_checkpoint


@dataclass
class SuffixCache:
    """Per layer, what `DNALanguageModel.forward_suffix` needs of reference windows `(B, W)`."""

    layers: list[HyenaPrefixCache]
    length: int  # W
    batch: int  # B


def build_model(config: ModelConfig) -> DNALanguageModel:
    return DNALanguageModel(config)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


MIXERS = {"hyena": HyenaOperator, "mamba": MambaMixer, "mamba2": Mamba2Mixer}
RECURRENT_ARCHS = ("mamba", "mamba2")  # mixers with a constant-size recurrent state


def _make_mixer(config: ModelConfig) -> nn.Module:
    return MIXERS[config.arch](config)


class DNALanguageModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        rc_eq = config.rc_equivariant
        strands = rc.RCEquivariantWrapper if rc_eq else (lambda module: module)
        vocabulary = config.tokenizer.vocabulary()
        if rc_eq:
            self.embedding = rc.RCEquivariantEmbedding(config.vocab_size, config.d_model, vocabulary)
        else:
            self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(strands(Block(config, _make_mixer(config))) for _ in range(config.n_layers))
        self.final_norm = strands(make_norm(config))
        # Tied head: no weight of its own, so no aliased tensors in the state dict.
        self.lm_head = None if config.tie_embeddings else nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.register_buffer("complement", rc.complement_permutation(config.vocab_size, vocabulary=vocabulary),
                             persistent=False)
        self._init_weights()

    # ------------------------------------------------------------------ construction
    def _init_weights(self) -> None:
        """HyenaDNA / mamba_ssm initialisation: embeddings N(0, 0.02); residual-branch output
        projections scaled down by sqrt(depth) so the residual stream's variance stays O(1)."""
        cfg = self.config
        nn.init.normal_(self.embedding.weight, std=0.02)
        if self.lm_head is not None:
            nn.init.normal_(self.lm_head.weight, std=0.02)
        for module in self.blocks.modules():
            if not isinstance(module, nn.Linear):
                continue
            if cfg.arch == "hyena":
                nn.init.normal_(module.weight, std=0.02)
            keep_bias = module.bias is None or getattr(module.bias, "_no_reinit", False)  # dt_proj
            if not keep_bias:
                nn.init.zeros_(module.bias)
        residual_outputs = 2 if cfg.mlp_ratio > 0 else 1
        for name, param in self.blocks.named_parameters():
            if name.endswith("mixer.out_proj.weight") or name.endswith("mlp.fc2.weight"):
                with torch.no_grad():
                    if cfg.arch == "hyena":
                        nn.init.normal_(param, std=0.02 / math.sqrt(residual_outputs * cfg.n_layers))
                    else:
                        nn.init.kaiming_uniform_(param, a=math.sqrt(5))
                        param /= math.sqrt(residual_outputs * cfg.n_layers)

    @property
    def head_weight(self) -> torch.Tensor:
        return self.embedding.weight if self.lm_head is None else self.lm_head.weight

    # ------------------------------------------------------------------ full pass
    def _check_tokens(self, tokens: torch.Tensor) -> None:
        if tokens.dim() != 2 or tokens.dtype not in (torch.long, torch.int32, torch.int64, torch.uint8):
            raise ValueError(f"tokens must be an integer tensor (B, L), got {tokens.dtype} {tuple(tokens.shape)}")

    def backbone(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens `(B, L)` -> final-norm hidden state `(B, L, hidden_size)`."""
        self._check_tokens(tokens)
        h = self.embedding(tokens.long())  # (B, L, hidden)
        use_checkpoint = self.config.checkpointing and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            if self.config.rc_swap_halves:
                h = rc.swap_halves(h)
            if not use_checkpoint:
                h = block(h)
            elif self.config.checkpoint_offload:
                h = offloaded_checkpoint(block, h)
            else:
                h = checkpoint(block, h, use_reentrant=False)
        return self.final_norm(h)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final-norm hidden `(B, L, hidden_size)` -> logits `(B, L, V)`."""
        if self.config.rc_equivariant:
            return rc.rc_equivariant_logits(hidden, self.head_weight, self.complement)
        return nn.functional.linear(hidden, self.head_weight)

    def embeddings_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final-norm hidden -> per-position embeddings `(B, L, d_model)`."""
        return rc.strand_embeddings(hidden) if self.config.rc_equivariant else hidden

    def forward(self, tokens: torch.Tensor, return_embeddings: bool = False):
        """tokens `(B, L)` -> logits `(B, L, V)`, or (logits, embeddings `(B, L, d_model)`)."""
        hidden = self.backbone(tokens)
        logits = self.head(hidden)
        if return_embeddings:
            return logits, self.embeddings_from_hidden(hidden)
        return logits

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per-position embeddings `(B, L, d_model)` (no LM head)."""
        return self.embeddings_from_hidden(self.backbone(tokens))

    # ------------------------------------------------------------------ chunked pass
    def forward_chunked(self, tokens: torch.Tensor, chunk_size: int, return_embeddings: bool = False):
        """Same outputs as `forward` (to fp32 rounding), computed `chunk_size` positions at a time.

        Causal Mamba: chunks pass through all layers with the recurrent state carried, so memory
        is O(chunk_size) per layer. Hyena and bidirectional Mamba: layer by layer over the whole
        sequence, each layer exact in chunks (overlap-add long convolution; two-direction state
        carry), so memory is O(L * d_model) plus one chunk's worth of mixer internals.
        """
        self._check_tokens(tokens)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if self.supports_recurrent_state:
            logits_pieces, hidden_pieces = [], []
            state = None
            for chunk in tokens.split(chunk_size, dim=1):
                logits, hidden, state = self.forward_with_state(chunk, state)
                logits_pieces.append(logits)
                hidden_pieces.append(hidden)
            logits = torch.cat(logits_pieces, dim=1)
            return (logits, torch.cat(hidden_pieces, dim=1)) if return_embeddings else logits
        h = self.embedding(tokens.long())  # (B, L, hidden)
        for block in self.blocks:
            if self.config.rc_swap_halves:
                h = rc.swap_halves(h)
            h = block.forward_chunked(h, chunk_size)
        hidden = map_chunks(self.final_norm, h, chunk_size)
        logits = map_chunks(self.head, hidden, chunk_size)
        if return_embeddings:
            return logits, self.embeddings_from_hidden(hidden)
        return logits

    # ------------------------------------------------------------------ recurrent (causal Mamba, Mamba-2)
    @property
    def supports_recurrent_state(self) -> bool:
        return self.config.arch in RECURRENT_ARCHS and not self.config.bidirectional

    def _require_recurrent(self, what: str) -> None:
        if not self.supports_recurrent_state:
            kind = (f"bidirectional {self.config.arch}" if self.config.arch in RECURRENT_ARCHS
                    else self.config.arch)
            raise InputError(
                f"{what} needs a causal Mamba or Mamba-2 model, this one is {kind}; use "
                "forward_chunked for exact bounded-memory inference instead"
            )

    def allocate_inference_state(self, batch: int, device=None, dtype=None) -> MambaState:
        """The state before the first token: zeros, one (conv, ssm) pair per layer."""
        self._require_recurrent("allocate_inference_state")
        device = self.head_weight.device if device is None else device
        dtype = self.head_weight.dtype if dtype is None else dtype
        return MambaState([block.mixer.empty_state(batch, device, dtype) for block in self.blocks])

    def forward_with_state(self, tokens: torch.Tensor, state: MambaState | None = None):
        """Continue from `state` (None: sequence start) over tokens `(B, T)`.

        Returns (logits `(B, T, V)`, embeddings `(B, T, d_model)`, state after the last token);
        the state passed in is left unchanged, so a prefix state can be reused.
        """
        self._require_recurrent("forward_with_state")
        self._check_tokens(tokens)
        h = self.embedding(tokens.long())  # (B, T, d)
        layer_states = [None] * len(self.blocks) if state is None else state.layers
        new_states = []
        for block, layer_state in zip(self.blocks, layer_states):
            h, layer_state = block.forward_with_state(h, layer_state)
            new_states.append(layer_state)
        hidden = self.final_norm(h)
        return self.head(hidden), hidden, MambaState(new_states)

    def step(self, token: torch.Tensor, state: MambaState):
        """One token per sequence `(B,)` -> (logits `(B, V)`, embedding `(B, d_model)`, new state)."""
        self._require_recurrent("step")
        h = self.embedding(token.long())  # (B, d)
        new_states = []
        for block, layer_state in zip(self.blocks, state.layers):
            h, layer_state = block.step(h, layer_state)
            new_states.append(layer_state)
        hidden = self.final_norm(h)
        return self.head(hidden), hidden, MambaState(new_states)

    # ------------------------------------------------------------------ suffix reuse (causal Hyena)
    @property
    def supports_suffix_cache(self) -> bool:
        return self.config.arch == "hyena" and self.config.objective == "causal" and not self.config.rc_equivariant

    def _require_suffix_cache(self, what: str) -> None:
        if not self.supports_suffix_cache:
            raise InputError(f"{what} needs a causal Hyena model, this one is {self.config.arch} "
                             f"({self.config.objective}); use forward or forward_chunked instead")

    def prefix_cache(self, tokens: torch.Tensor):
        """One pass over reference windows tokens `(B, W)`.

        Returns (logits `(B, W, V)`, hidden `(B, W, d_model)`, `SuffixCache`): the outputs of
        `forward(tokens, return_embeddings=True)` (to fp32 rounding) and what `forward_suffix`
        needs to compute other windows from where they leave these ones.
        """
        self._require_suffix_cache("prefix_cache")
        self._check_tokens(tokens)
        h = self.embedding(tokens.long())  # (B, W, d)
        layers = []
        for block in self.blocks:
            h, layer_cache = block.forward_with_cache(h)
            layers.append(layer_cache)
        hidden = self.final_norm(h)
        return self.head(hidden), hidden, SuffixCache(layers, tokens.shape[1], tokens.shape[0])

    def forward_suffix(self, cache: SuffixCache, tokens: torch.Tensor, starts, rows=None):
        """Logits and hidden states `(B, T, ...)` at positions [starts[i], starts[i] + T) of windows
        that equal cached reference row rows[i] before starts[i] and hold tokens[i] from there.

        tokens `(B, T)`: each row's suffix, right-padded with anything to the longest (causal:
        padding changes no earlier position; row i is exact up to position W - starts[i]).
        starts: B window positions in [0, W). rows: B cached rows (None: row i, or row 0 for all
        when the cache holds one window). Same numbers as `forward` on the whole other window,
        to fp32 rounding.
        """
        self._require_suffix_cache("forward_suffix")
        self._check_tokens(tokens)
        batch, length = tokens.shape
        starts = [int(s) for s in starts]
        if rows is None:
            rows = [0] * batch if cache.batch == 1 else list(range(batch))
        rows = [int(r) for r in rows]
        if len(starts) != batch or len(rows) != batch:
            raise ValueError(f"forward_suffix: {batch} suffixes but {len(starts)} starts and {len(rows)} rows")
        if any(not 0 <= s < cache.length for s in starts) or any(not 0 <= r < cache.batch for r in rows):
            raise ValueError(f"forward_suffix: starts must lie in [0, {cache.length}) and rows in "
                             f"[0, {cache.batch}), got starts {starts} and rows {rows}")
        if length > cache.length:
            raise ValueError(f"forward_suffix: suffixes of {length} tokens exceed the {cache.length}-token window")
        h = self.embedding(tokens.long())  # (B, T, d)
        for block, layer_cache in zip(self.blocks, cache.layers):
            h = block.forward_suffix(h, layer_cache, starts, rows)
        hidden = self.final_norm(h)
        return self.head(hidden), hidden
