"""The residual block shared by Hyena and Mamba models: prenorm, mixer, optional MLP.

`x + mixer(norm(x))`, then `x + mlp(norm2(x))` when the config has an MLP (HyenaDNA: 4x GELU;
mamba_ssm and Caduceus: none). Every block also runs `forward_chunked(x, chunk_size)`: the same
numbers with position-wise work done in chunks and the mixer's own exact chunked path, so the
memory of one layer grows as O(L * d_model) and never holds an (L, 4 d_model) MLP activation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from genossm.models.config import ModelConfig


def make_norm(config: ModelConfig, width: int | None = None) -> nn.Module:
    width = config.d_model if width is None else width
    if config.norm == "rmsnorm":
        return nn.RMSNorm(width, eps=config.norm_eps)
    return nn.LayerNorm(width, eps=config.norm_eps)


class MLP(nn.Module):
    """Position-wise feed-forward: Linear -> GELU -> Linear (HyenaDNA's block MLP)."""

    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(d_model, hidden)
        self.fc2 = nn.Linear(hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(nn.functional.gelu(self.fc1(x), approximate="tanh"))


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """fp32 for half-precision tensors (the kernels' A, D, filters and biases are fp32), fp64 kept
    (so float64 models, e.g. under gradcheck, stay float64 end to end)."""
    return t if t.dtype == torch.float64 else t.float()


def map_chunks(fn, x: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """Apply a position-wise `fn` to x `(B, L, d)` one chunk of positions at a time."""
    return torch.cat([fn(piece) for piece in x.split(chunk_size, dim=1)], dim=1)


class Block(nn.Module):
    """Prenorm residual block around one sequence mixer (Hyena operator or Mamba mixer)."""

    def __init__(self, config: ModelConfig, mixer: nn.Module):
        super().__init__()
        self.norm = make_norm(config)
        self.mixer = mixer
        self.dropout = nn.Dropout(config.dropout)
        self.mlp_chunk = config.checkpoint_mlp_chunk if config.checkpointing else 0
        if config.mlp_ratio > 0:
            self.mlp_norm = make_norm(config)
            self.mlp = MLP(config.d_model, config.mlp_ratio * config.d_model)
        else:
            self.mlp_norm = None
            self.mlp = None

    def _mlp_residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.mlp is None:
            return x
        return x + self.dropout(self.mlp(self.mlp_norm(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.mixer(self.norm(x)))  # (B, L, d)
        if self.mlp is not None and self.mlp_chunk and x.shape[1] > self.mlp_chunk and torch.is_grad_enabled():
            # Inside a checkpointed block's recompute: the MLP's (L, 4 d) hidden activations, before
            # and after GELU, and their gradients are the largest transients of the backward; as
            # chunks with their own checkpoints only one chunk's exist at a time (one more MLP
            # forward per step). Position-wise, so the numbers are those of the whole-length MLP.
            pieces = [checkpoint(self._mlp_residual, piece, use_reentrant=False)
                      for piece in x.split(self.mlp_chunk, dim=1)]
            return torch.cat(pieces, dim=1)
        return self._mlp_residual(x)

    def forward_chunked(self, x: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """Same as `forward`, exact, with bounded intermediates (see the module docstring)."""
        normed = map_chunks(self.norm, x, chunk_size)  # (B, L, d)
        x = x + self.dropout(self.mixer.forward_chunked(normed, chunk_size))
        return map_chunks(self._mlp_residual, x, chunk_size)

    # Recurrent inference (causal Mamba): the mixer carries a state, everything else is per position.
    def forward_with_state(self, x: torch.Tensor, state):
        mixed, state = self.mixer.forward_with_state(self.norm(x), state)
        return self._mlp_residual(x + self.dropout(mixed)), state

    def step(self, x_t: torch.Tensor, state):
        """x_t `(B, d)` one position -> `(B, d)`, new state."""
        mixed, state = self.mixer.step(self.norm(x_t), state)
        return self._mlp_residual(x_t + self.dropout(mixed)), state

    # Suffix reuse (causal Hyena scoring): the mixer reads the cached reference, the rest is per position.
    def forward_with_cache(self, x: torch.Tensor):
        """`forward` that also returns the mixer's prefix cache."""
        mixed, cache = self.mixer.forward_with_cache(self.norm(x))
        return self._mlp_residual(x + self.dropout(mixed)), cache

    def forward_suffix(self, x: torch.Tensor, cache, starts: list[int], rows: list[int]) -> torch.Tensor:
        """Block outputs at positions [starts[i], ...) from the block inputs there, x `(B, T, d)`."""
        mixed = self.mixer.forward_suffix(self.norm(x), cache, starts, rows)
        return self._mlp_residual(x + self.dropout(mixed))
