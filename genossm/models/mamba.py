"""Mamba-1 mixer (mamba_ssm's `Mamba`) and Caduceus' bidirectional BiMamba.

One direction (`SelectiveSSM`) is mamba_ssm's block after its input projection: depthwise causal
conv + SiLU on x, `x_proj` to (dt_rank + 2 * d_state), `dt_proj` (its bias enters the scan as
`delta_bias`, softplus inside the scan), A = -exp(A_log) with the S4D-real init A_n = n, a D skip
and z gating y * silu(z). `MambaMixer` adds the shared `in_proj` (to x and z) and `out_proj`; a
bidirectional mixer (Caduceus BiMamba, "add" strategy, in/out projections tied) runs a second
direction on the flipped sequence and adds the two outputs before `out_proj`.

Inference that never holds the whole sequence at once:
- causal: `forward_with_state` runs a chunk from a given `MambaState` and returns the state after
  it, `step` advances one position; both equal the full pass.
- bidirectional: `forward_chunked` is exact in two passes per layer, the forward direction
  carrying its (conv, ssm) state left to right, the reverse direction right to left. The layer's
  input and output, O(L * d_model), are held whole; the scan's O(L * d_inner * d_state) work
  exists only one chunk at a time.
All kernels are reached through `genossm.kernels`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genossm import kernels
from genossm.models.blocks import at_least_fp32
from genossm.models.config import ModelConfig
from genossm.models.layout import linear_channels_first, linear_from_channels_first, linear_to_channels_first
from genossm.models.optim_hints import set_optim_hints


@dataclass
class DirectionState:
    """Recurrent state of one mixer direction: the last inputs of the conv and the SSM state."""

    conv: torch.Tensor  # (B, d_inner, d_conv - 1), the input dtype
    ssm: torch.Tensor  # (B, d_inner, d_state), fp32


@dataclass
class MambaState:
    """Per-layer states of a causal Mamba model after some prefix; immutable by convention.

    `forward_with_state` and `step` return new states and never modify the one passed in, so a
    prefix state can be reused for many continuations (the scorer does this for variants).
    """

    layers: list[DirectionState]

    def clone(self) -> MambaState:
        return MambaState([DirectionState(s.conv.clone(), s.ssm.clone()) for s in self.layers])

    def repeat(self, copies: int) -> MambaState:
        """Each batch row repeated `copies` times (row b -> rows b*copies .. b*copies+copies-1)."""
        return MambaState([
            DirectionState(s.conv.repeat_interleave(copies, 0), s.ssm.repeat_interleave(copies, 0))
            for s in self.layers
        ])


class SelectiveSSM(nn.Module):
    """One direction of a Mamba mixer on `(B, d_inner, L)` inputs x and gates z."""

    def __init__(self, config: ModelConfig, d_inner: int):
        super().__init__()
        cfg = config.mamba
        self.d_state = cfg.d_state
        self.dt_rank = cfg.resolved_dt_rank(config.d_model)
        bound = 1 / math.sqrt(cfg.d_conv)  # nn.Conv1d's default init, fan_in = width
        self.conv_weight = nn.Parameter(torch.empty(d_inner, cfg.d_conv).uniform_(-bound, bound))
        self.conv_bias = nn.Parameter(torch.empty(d_inner).uniform_(-bound, bound)) if cfg.conv_bias else None
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * cfg.d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner, bias=True)
        self._init_dt(cfg)
        # S4D-real init: A_n = -(n + 1); kept as log so A stays negative under any update.
        A = torch.arange(1, cfg.d_state + 1, dtype=torch.float32).repeat(d_inner, 1)  # (Di, N)
        self.A_log = nn.Parameter(torch.log(A))
        self.D = nn.Parameter(torch.ones(d_inner))
        # mamba_ssm's `_no_weight_decay`: decay rates and the skip gain, not weights to shrink
        # (decay would pull every A_n towards -1 and D towards 0).
        set_optim_hints([self.A_log, self.D], weight_decay=0.0)

    def _init_dt(self, cfg) -> None:
        # mamba_ssm: dt_proj weight uniform(+-dt_rank^-0.5); bias = softplus^-1(dt) with dt
        # log-uniform in [dt_min, dt_max], so the initial step sizes span the chosen range.
        std = self.dt_rank ** -0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        d_inner = self.dt_proj.out_features
        dt = torch.exp(
            torch.rand(d_inner) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min)
        ).clamp(min=cfg.dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.dt_proj.bias._no_reinit = True

    def _scan_inputs(self, x: torch.Tensor):
        """x `(B, Di, L)` after the conv -> delta `(B, Di, L)`, B and C `(B, 1, N, L)`."""
        # Channels first throughout (genossm.models.layout): no (B, L, .) copies of x or delta.
        x_dbl = linear_channels_first(self.x_proj, x)  # (B, r + 2N, L)
        dt, B, C = x_dbl.split([self.dt_rank, self.d_state, self.d_state], dim=1)
        delta = torch.bmm(self.dt_proj.weight.expand(x.shape[0], -1, -1), dt)  # (B, Di, L); bias goes to the scan
        B = B.unsqueeze(1)  # (B, 1, N, L)
        C = C.unsqueeze(1)  # (B, 1, N, L)
        return delta, B, C

    def forward(self, x: torch.Tensor, z: torch.Tensor, state: DirectionState | None = None,
                return_state: bool = False):
        """x, z `(B, Di, L)` -> y `(B, Di, L)`, or (y, state after the last position)."""
        conv_state = None if state is None else state.conv
        ssm_state = None if state is None else state.ssm
        conv_out = kernels.causal_conv1d(
            x, self.conv_weight, self.conv_bias, activation="silu",
            initial_state=conv_state, return_final_state=return_state,
        )
        x, conv_state = conv_out if return_state else (conv_out, None)
        delta, B, C = self._scan_inputs(x)
        A = -torch.exp(at_least_fp32(self.A_log))  # (Di, N)
        out = kernels.selective_scan(
            x, delta, A, B, C, at_least_fp32(self.D), z=z, delta_bias=at_least_fp32(self.dt_proj.bias),
            delta_softplus=True, return_last_state=return_state, initial_state=ssm_state,
        )
        if not return_state:
            return out
        y, ssm_state = out
        return y, DirectionState(conv_state, ssm_state)

    def step(self, x_t: torch.Tensor, z_t: torch.Tensor, state: DirectionState):
        """One position: x_t, z_t `(B, Di)` -> y_t `(B, Di)`, new state."""
        x_t, conv_state = kernels.causal_conv1d_step(
            x_t, state.conv, self.conv_weight, self.conv_bias, activation="silu"
        )
        delta, B, C = self._scan_inputs(x_t[..., None])  # length-1 scan: the exact recurrence
        A = -torch.exp(at_least_fp32(self.A_log))
        y, ssm_state = kernels.selective_scan(
            x_t[..., None], delta, A, B, C, at_least_fp32(self.D), z=z_t[..., None],
            delta_bias=at_least_fp32(self.dt_proj.bias), delta_softplus=True,
            return_last_state=True, initial_state=state.ssm,
        )
        return y[..., 0], DirectionState(conv_state, ssm_state)

    def empty_state(self, batch: int, device, dtype) -> DirectionState:
        d_inner, width = self.conv_weight.shape
        return DirectionState(
            torch.zeros(batch, d_inner, width - 1, device=device, dtype=dtype),
            torch.zeros(batch, d_inner, self.d_state, device=device, dtype=torch.float32),
        )


class MambaMixer(nn.Module):
    """`(B, L, d_model) -> (B, L, d_model)`: causal Mamba, or BiMamba when bidirectional."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        cfg = config.mamba
        self.bidirectional = config.bidirectional
        self.d_inner = cfg.expand * config.d_model
        self.in_proj = nn.Linear(config.d_model, 2 * self.d_inner, bias=cfg.proj_bias)
        self.forward_ssm = SelectiveSSM(config, self.d_inner)
        self.reverse_ssm = SelectiveSSM(config, self.d_inner) if self.bidirectional else None
        self.out_proj = nn.Linear(self.d_inner, config.d_model, bias=cfg.proj_bias)

    def _project(self, h: torch.Tensor):
        xz = linear_to_channels_first(self.in_proj, h)  # (B, 2*Di, L)
        return xz.chunk(2, dim=1)  # x, z: (B, Di, L) each

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x, z = self._project(h)
        y = self.forward_ssm(x, z)  # (B, Di, L)
        if self.bidirectional:
            y = y + self.reverse_ssm(x.flip(-1), z.flip(-1)).flip(-1)
        return linear_from_channels_first(self.out_proj, y)  # (B, L, d_model)

    def _require_causal(self, what: str) -> None:
        if self.bidirectional:
            raise ValueError(
                f"{what} needs a causal (one-direction) Mamba; a bidirectional mixer reads the "
                "whole sequence, use forward_chunked instead"
            )

    def empty_state(self, batch: int, device, dtype) -> DirectionState:
        self._require_causal("a recurrent state")
        return self.forward_ssm.empty_state(batch, device, dtype)

    def forward_with_state(self, h: torch.Tensor, state: DirectionState | None):
        """Causal chunk from `state` (None: start of sequence) -> (output, state after it)."""
        self._require_causal("forward_with_state")
        x, z = self._project(h)
        y, state = self.forward_ssm(x, z, state, return_state=True)
        return linear_from_channels_first(self.out_proj, y), state

    def step(self, h_t: torch.Tensor, state: DirectionState):
        """h_t `(B, d_model)` -> `(B, d_model)`, new state."""
        self._require_causal("step")
        x_t, z_t = self.in_proj(h_t).chunk(2, dim=-1)  # (B, Di) each
        y_t, state = self.forward_ssm.step(x_t, z_t, state)
        return self.out_proj(y_t), state

    def forward_chunked(self, h: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """Exact: forward direction left to right, then (bidirectional) reverse right to left."""
        starts = range(0, h.shape[1], chunk_size)
        y_pieces = []
        state = None
        for start in starts:
            x, z = self._project(h[:, start:start + chunk_size])
            y, state = self.forward_ssm(x, z, state, return_state=True)  # (B, Di, T)
            y_pieces.append(y)
        if self.bidirectional:
            # Chunks of the flipped sequence are the original chunks, right to left, each flipped.
            state = None
            for index in reversed(range(len(y_pieces))):
                start = starts[index]
                x, z = self._project(h[:, start:start + chunk_size])
                y_rev, state = self.reverse_ssm(x.flip(-1), z.flip(-1), state, return_state=True)
                y_pieces[index] = y_pieces[index] + y_rev.flip(-1)
        return torch.cat([linear_from_channels_first(self.out_proj, y) for y in y_pieces], dim=1)  # (B, L, d)
