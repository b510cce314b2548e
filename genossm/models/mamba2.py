"""Mamba-2 mixer (mamba_ssm's `Mamba2`): the SSD layer, causal or bidirectional.

One `in_proj` gives, per position, the gate z (d_inner), the SSD inputs xBC (x: d_inner, then
B and C: ngroups * d_state each) and dt (one per head). One direction (`SSDDirection`) owns what
mamba_ssm's module applies to xBC and dt: a short depthwise causal conv + SiLU over xBC, the dt
bias (softplus inside the op), A = -exp(A_log) (one scalar per head, -A drawn from
[A_init_min, A_init_max]), the D skip, and the SSD itself (`genossm.kernels.ssd`: the Triton
chunked kernels on CUDA, the chunked PyTorch path elsewhere or with GENOSSM_KERNELS=reference) on
x viewed as heads `(B, L, H, P)`; the kernels read that transposed view through its strides. The mixer then applies the gated RMSNorm norm(y * silu(z)) (normalised per
group of d_inner / ngroups channels, mamba_ssm's `RMSNormGated` with norm_before_gate=False) and
`out_proj`. Bidirectional (Caduceus' BiMamba "add" strategy, as `genossm.models.mamba`): a second
direction with its own conv, dt bias, A and D runs on the flipped xBC and dt; the two outputs are
added before the gated norm; in_proj, the norm and out_proj are shared.

States reuse `genossm.models.mamba`'s containers: `DirectionState(conv (B, conv_dim, d_conv - 1)
in the input dtype, ssm (B, H, P, N) fp32)` per layer, in a `MambaState`; never modified in place.
Exact bounded-memory inference as for Mamba-1: causal `forward_with_state` / `step`, and
`forward_chunked` (two passes per layer when bidirectional).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genossm import kernels
from genossm.models.blocks import at_least_fp32
from genossm.models.config import ModelConfig
from genossm.models.layout import linear_to_channels_first
from genossm.models.mamba import DirectionState
from genossm.models.optim_hints import set_optim_hints


class _SplitXBC(torch.autograd.Function):
    """The conv output xBC `(B, conv_dim, T)` -> x `(B, T, H, P)`, B and C `(B, T, G, N)`: views
    (transposed channel slices). Autograd's own split would gather the three gradients with a cat
    into a new `(B, T, conv_dim)` tensor, which the conv's backward then copies back to
    channels-first: two passes over the whole gradient (~26 ms per mamba2-1m layer at 2^20 on an
    H200). The Triton SSD's backward writes dx, dB and dC as the same slices of one buffer
    (`kernels/ssd/chunk_ssd.py`, `_zero_grads_like`), so here that buffer is xBC's gradient as
    it stands; any other gradients (the PyTorch path's) are gathered."""

    @staticmethod
    def forward(ctx, xBC, sizes, shapes):
        views = [part.reshape(shape) for part, shape in zip(xBC.transpose(1, 2).split(sizes, dim=-1), shapes)]
        ctx.base = (xBC.shape, xBC.stride(), xBC.storage_offset())
        ctx.views = [(v.stride(), v.storage_offset()) for v in views]
        ctx.sizes = sizes
        return tuple(views)

    @staticmethod
    def backward(ctx, *grads):
        shape, stride, offset = ctx.base
        first = grads[0]
        in_place = all(
            g.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()
            and g.stride() == view_stride
            and g.storage_offset() - first.storage_offset() == view_offset - ctx.views[0][1]
            for g, (view_stride, view_offset) in zip(grads, ctx.views))
        if in_place:
            return first.as_strided(shape, stride, first.storage_offset() - (ctx.views[0][1] - offset)), None, None
        batch, _, length = shape
        gathered = torch.cat([g.reshape(batch, length, size) for g, size in zip(grads, ctx.sizes)], dim=-1)
        return gathered.transpose(1, 2), None, None


class SSDDirection(nn.Module):
    """One direction: conv + SiLU over xBC `(B, conv_dim, L)`, then the SSD with dt `(B, L, H)`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        cfg = config.mamba2
        self.nheads = cfg.nheads(config.d_model)
        self.headdim = cfg.headdim
        self.ngroups = cfg.ngroups
        self.d_state = cfg.d_state
        self.chunk_size = cfg.chunk_size
        self.d_inner = cfg.d_inner(config.d_model)
        conv_dim = self.d_inner + 2 * cfg.ngroups * cfg.d_state
        bound = 1 / math.sqrt(cfg.d_conv)  # nn.Conv1d's default init, fan_in = width
        self.conv_weight = nn.Parameter(torch.empty(conv_dim, cfg.d_conv).uniform_(-bound, bound))
        self.conv_bias = nn.Parameter(torch.empty(conv_dim).uniform_(-bound, bound)) if cfg.conv_bias else None
        # mamba_ssm: dt log-uniform in [dt_min, dt_max] at init, stored as softplus^-1(dt)
        dt = torch.exp(
            torch.rand(self.nheads) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min)
        ).clamp(min=cfg.dt_init_floor)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        A = torch.empty(self.nheads).uniform_(cfg.A_init_min, cfg.A_init_max)
        self.A_log = nn.Parameter(torch.log(A))  # A = -exp(A_log) stays negative under any update
        self.D = nn.Parameter(torch.ones(self.nheads))
        # mamba_ssm's `_no_weight_decay` on all three: rates and gains, not weights to shrink
        set_optim_hints([self.A_log, self.D, self.dt_bias], weight_decay=0.0)

    def _split(self, xBC: torch.Tensor):
        """xBC after the conv, `(B, conv_dim, T)` -> x `(B, T, H, P)`, B and C `(B, T, G, N)`."""
        batch, _, length = xBC.shape
        groups = self.ngroups * self.d_state
        # time-major views of the channels-first buffer, the op's layout
        return _SplitXBC.apply(xBC, [self.d_inner, groups, groups],
                               [(batch, length, self.nheads, self.headdim),
                                (batch, length, self.ngroups, self.d_state),
                                (batch, length, self.ngroups, self.d_state)])

    def _ssd_parameters(self):
        return -torch.exp(at_least_fp32(self.A_log)), at_least_fp32(self.D), at_least_fp32(self.dt_bias)

    def forward(self, xBC: torch.Tensor, dt: torch.Tensor, state: DirectionState | None = None,
                return_state: bool = False):
        """xBC `(B, conv_dim, L)`, dt `(B, L, H)` -> y `(B, L, H, P)`, or (y, state after it)."""
        conv_out = kernels.causal_conv1d(
            xBC, self.conv_weight, self.conv_bias, activation="silu",
            initial_state=None if state is None else state.conv, return_final_state=return_state,
        )
        xBC, conv_state = conv_out if return_state else (conv_out, None)
        x, B, C = self._split(xBC)
        A, D, dt_bias = self._ssd_parameters()
        out = kernels.ssd(
            x, dt, A, B, C, D, dt_bias=dt_bias, dt_softplus=True,
            initial_states=None if state is None else state.ssm, return_final_states=return_state,
            chunk_size=self.chunk_size,
        )
        if not return_state:
            return out
        y, ssm_state = out
        return y, DirectionState(conv_state, ssm_state)

    def step(self, xBC_t: torch.Tensor, dt_t: torch.Tensor, state: DirectionState):
        """One position: xBC_t `(B, conv_dim)`, dt_t `(B, H)` -> y_t `(B, H, P)`, new state."""
        xBC_t, conv_state = kernels.causal_conv1d_step(
            xBC_t, state.conv, self.conv_weight, self.conv_bias, activation="silu"
        )
        x, B, C = self._split(xBC_t[..., None])
        A, D, dt_bias = self._ssd_parameters()
        # one step of the recurrence itself: a length-1 call of the sequential reference
        y, ssm_state = kernels.ssd_ref(x, dt_t[:, None], A, B, C, D, None, dt_bias, True, state.ssm, True)
        return y[:, 0], DirectionState(conv_state, ssm_state)

    def empty_state(self, batch: int, device, dtype) -> DirectionState:
        conv_dim, width = self.conv_weight.shape
        return DirectionState(
            torch.zeros(batch, conv_dim, width - 1, device=device, dtype=dtype),
            torch.zeros(batch, self.nheads, self.headdim, self.d_state, device=device, dtype=torch.float32),
        )


class GatedRMSNorm(nn.Module):
    """norm(y * silu(z)) * weight, the RMS taken over groups of `group_size` channels."""

    def __init__(self, width: int, group_size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.group_size = group_size
        self.eps = eps

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """y, z `(..., width)` -> `(..., width)` in y's dtype (statistics in fp32 or fp64).

        `kernels.gated_rms_norm`: one Triton pass each way on CUDA (in PyTorch the formula is a
        dozen elementwise passes, ~110 GB of traffic per mamba2-1m layer and step at 2^20)."""
        return kernels.gated_rms_norm(y, z, self.weight, self.group_size, self.eps)


class Mamba2Mixer(nn.Module):
    """`(B, L, d_model) -> (B, L, d_model)`: causal Mamba-2, or bidirectional when configured."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        cfg = config.mamba2
        self.bidirectional = config.bidirectional
        self.d_inner = cfg.d_inner(config.d_model)
        self.nheads = cfg.nheads(config.d_model)
        self.conv_dim = self.d_inner + 2 * cfg.ngroups * cfg.d_state
        self.in_proj = nn.Linear(config.d_model, self.d_inner + self.conv_dim + self.nheads, bias=cfg.proj_bias)
        self.forward_ssd = SSDDirection(config)
        self.reverse_ssd = SSDDirection(config) if self.bidirectional else None
        self.norm = GatedRMSNorm(self.d_inner, self.d_inner // cfg.ngroups, config.norm_eps)
        self.out_proj = nn.Linear(self.d_inner, config.d_model, bias=cfg.proj_bias)

    def _project(self, h: torch.Tensor):
        """h `(B, T, d_model)` -> z `(B, T, d_inner)`, xBC `(B, conv_dim, T)`, dt `(B, T, H)`."""
        zxbcdt = linear_to_channels_first(self.in_proj, h)  # (B, d_in_proj, T): the conv's layout
        z, xBC, dt = zxbcdt.split([self.d_inner, self.conv_dim, self.nheads], dim=1)
        return z.transpose(1, 2), xBC, dt.transpose(1, 2)

    def _output(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """y `(B, T, H, P)`, z `(B, T, d_inner)` -> `(B, T, d_model)`."""
        return self.out_proj(self.norm(y.flatten(-2), z))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z, xBC, dt = self._project(h)
        y = self.forward_ssd(xBC, dt)  # (B, L, H, P)
        if self.bidirectional:
            y = y + self.reverse_ssd(xBC.flip(-1), dt.flip(1)).flip(1)
        return self._output(y, z)

    def _require_causal(self, what: str) -> None:
        if self.bidirectional:
            raise ValueError(
                f"{what} needs a causal (one-direction) Mamba-2; a bidirectional mixer reads the "
                "whole sequence, use forward_chunked instead"
            )

    def empty_state(self, batch: int, device, dtype) -> DirectionState:
        self._require_causal("a recurrent state")
        return self.forward_ssd.empty_state(batch, device, dtype)

    def forward_with_state(self, h: torch.Tensor, state: DirectionState | None):
        """Causal chunk from `state` (None: start of sequence) -> (output, state after it)."""
        self._require_causal("forward_with_state")
        z, xBC, dt = self._project(h)
        y, state = self.forward_ssd(xBC, dt, state, return_state=True)
        return self._output(y, z), state

    def step(self, h_t: torch.Tensor, state: DirectionState):
        """h_t `(B, d_model)` -> `(B, d_model)`, new state."""
        self._require_causal("step")
        z_t, xBC_t, dt_t = self.in_proj(h_t).split([self.d_inner, self.conv_dim, self.nheads], dim=-1)
        y_t, state = self.forward_ssd.step(xBC_t, dt_t, state)  # (B, H, P)
        return self._output(y_t, z_t), state

    def forward_chunked(self, h: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """Exact: forward direction left to right, then (bidirectional) reverse right to left."""
        starts = range(0, h.shape[1], chunk_size)
        y_pieces, z_pieces = [], []
        state = None
        for start in starts:
            z, xBC, dt = self._project(h[:, start:start + chunk_size])
            y, state = self.forward_ssd(xBC, dt, state, return_state=True)  # (B, T, H, P)
            y_pieces.append(y)
            z_pieces.append(z)
        if self.bidirectional:
            # Chunks of the flipped sequence are the original chunks, right to left, each flipped.
            state = None
            for index in reversed(range(len(y_pieces))):
                start = starts[index]
                _, xBC, dt = self._project(h[:, start:start + chunk_size])
                y_rev, state = self.reverse_ssd(xBC.flip(-1), dt.flip(1), state, return_state=True)
                y_pieces[index] = y_pieces[index] + y_rev.flip(1)
        return torch.cat([self._output(y, z) for y, z in zip(y_pieces, z_pieces)], dim=1)  # (B, L, d)
