"""HyenaDNA's Hyena operator: gated long convolution with an implicit, decaying filter.

Follows HyenaDNA's standalone code (Nguyen et al. 2023): `in_proj` to (order + 1) * d_inner
channels, a short depthwise causal conv (width 3), split into gates x_0..x_{order-1} and a value
v, then `order - 1` long convolutions, each gated before (x_i) and the last gated after (x_0):

    v <- fftconv(v * x_{order-1}, k_0) ... ; y = out_proj(fftconv(v * x_1, k_{order-2}) * x_0)

The long filters are generated, never stored: positional features of each position n (t and sin/cos
bands of `n / max_length`) go through an MLP with Sin activations (learnable frequencies) and are
windowed by an exponential decay exp(-|delta_c| t). Because a filter tap depends only on its own
position (not on the input length), the filter for length L is a prefix of the filter for any
longer input: the model runs at any length, 8x `max_length` included, stays causal, and chunked
inference sees exactly the taps of the full pass. (HyenaDNA scales t by the configured length
too; its (L, emb_dim) feature table is a stored buffer, ours is computed per call.)

All kernels are reached through `genossm.kernels` so the Triton fast paths swap in on CUDA.

Suffix reuse (causal scoring of variants): a window that equals a cached reference window before
position p has the same activations before p, and the long convolution is linear in its input w,
so for t >= p: conv(w_alt)[t] = conv(w_ref)[t] + conv(w_alt[p:] - w_ref[p:])[t - p]. With the
reference's pre-short-conv projections and each stage's w and conv(w) cached
(`forward_with_cache`), `forward_suffix` recomputes only positions [p, W) of the other window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genossm import kernels
from genossm.models.blocks import at_least_fp32
from genossm.models.config import HyenaConfig, ModelConfig
from genossm.models.layout import linear_from_channels_first, linear_to_channels_first
from genossm.models.optim_hints import set_optim_hints


class Sin(nn.Module):
    """sin(freq * x) with a learnable per-channel frequency (HyenaDNA's filter activation)."""

    def __init__(self, width: int, freq: float):
        super().__init__()
        self.freq = nn.Parameter(torch.full((1, width), float(freq)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


class ImplicitFilter(nn.Module):
    """Position -> filter taps for `channels` channels, in fp32 (the kernels expect fp32 filters).

    The MLP runs in fp32 even in a bf16 model or under autocast: filter taps far down a 1M-long
    window are tiny products of decay and MLP output, and bf16's 8 mantissa bits would drown them.
    """

    def __init__(self, channels: int, cfg: HyenaConfig, max_length: int):
        super().__init__()
        self.channels = channels
        self.max_length = max_length
        # "hyenadna": t = n / (max_length - 1) (its linspace(0, 1, l_max)), from its float32 table.
        self.hyenadna_features = cfg.filter_features == "hyenadna"
        self.time_scale = max_length - 1 if self.hyenadna_features else max_length
        self._hyenadna_table: tuple[torch.Tensor, torch.Tensor] | None = None
        self.bands = (cfg.filter_emb_dim - 1) // 2
        width = cfg.filter_order
        layers: list[nn.Module] = [nn.Linear(cfg.filter_emb_dim, width), Sin(width, cfg.filter_sine_freq)]
        for _ in range(cfg.filter_inner_layers):
            layers += [nn.Linear(width, width), Sin(width, cfg.filter_sine_freq)]
        layers.append(nn.Linear(width, channels, bias=False))
        self.mlp = nn.Sequential(*layers)
        # HyenaDNA's per-parameter `_optim` (weight decay 0 on the implicit filter): the MLP and
        # its Sin frequencies shape the filter, and decay would flatten it, not regularise it.
        set_optim_hints(self.mlp.parameters(), weight_decay=0.0)
        self.modulate = cfg.modulate
        self.decay_shift = cfg.decay_shift
        # Decay rates, fixed (HyenaDNA trains them with lr 0): derived from the config, neither
        # saved nor stored, so casting the model to bf16 cannot round them.
        self.fastest_decay = abs(math.log(cfg.decay_target) / cfg.decay_fast_pct)
        self.slowest_decay = abs(math.log(cfg.decay_target) / cfg.decay_slow_pct)

    def positional_features(self, start: int, stop: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Features `(n, emb_dim)` and times `(n, 1)` of positions start..stop-1, float64."""
        if self.hyenadna_features and start < self.max_length:
            z, t = self.hyenadna_table()
            end = min(stop, self.max_length)
            z, t = z[start:end].to(device, torch.float64), t[start:end].to(device, torch.float64)
            if end == stop:
                return z, t
            z_more, t_more = self.positional_features(end, stop, device)  # past l_max: same formulas
            return torch.cat([z, z_more]), torch.cat([t, t_more])
        # float64 positions: n / max_length must stay exact to ~1e-9 at millions of positions.
        n = torch.arange(start, stop, dtype=torch.float64, device=device)[:, None]  # (n, 1)
        t = n / self.time_scale
        angle = 2 * math.pi * (n / self.max_length)  # one turn per max_length, as HyenaDNA's w
        freqs = torch.linspace(1e-4, self.bands - 1, self.bands, dtype=torch.float64, device=device)
        z = torch.cat([t, torch.cos(freqs * angle), -torch.sin(freqs * angle)], dim=-1)  # (n, emb_dim)
        return z, t

    def hyenadna_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """HyenaDNA's feature table `(max_length, emb_dim)` and times `(max_length, 1)`, float32 on
        the CPU, built as its code builds the `pos_emb` buffers its checkpoints store (bitwise the
        same): the filter MLP amplifies the table's float32 rounding (Sin frequencies near 10), so
        the float64 features would move a converted model's taps by ~1e-5. Built once (24 MB at
        2^20 positions, as the peer's)."""
        if self._hyenadna_table is None:
            length = self.max_length
            t = torch.linspace(0, 1, length)[:, None]  # (L, 1)
            w = 2 * math.pi * torch.linspace(0, length - 1, length)[:, None] / length  # (L, 1)
            f = torch.linspace(1e-4, self.bands - 1, self.bands)[None]  # (1, bands)
            self._hyenadna_table = (torch.cat([t, torch.cos(-f * w), torch.sin(-f * w)], dim=-1), t)
        return self._hyenadna_table

    def forward(self, length: int, start: int = 0, chunk_size: int | None = None) -> torch.Tensor:
        """Filter taps of positions start..start+length-1: `(channels, length)` fp32 (fp64 in a
        float64 model)."""
        device = self.mlp[0].weight.device
        dtype = at_least_fp32(self.mlp[0].weight).dtype  # fp32, or fp64 for a float64 model
        deltas = torch.linspace(
            self.slowest_decay, self.fastest_decay, self.channels, device=device, dtype=dtype
        )
        step = length if chunk_size is None else max(1, chunk_size)
        pieces = []
        with torch.autocast(device_type=device.type, enabled=False):
            for begin in range(start, start + length, step):
                z, t = self.positional_features(begin, min(begin + step, start + length), device)
                z, t = z.to(dtype), t.to(dtype)
                h = self._mlp(z)  # (channels, n)
                if self.modulate:
                    # exp(-delta_c t), built in place: at 2^20 positions each (channels, n) temporary
                    # is a GiB per layer.
                    decay = torch.outer(deltas, t[:, 0]).neg_().exp_()  # (channels, n)
                    if self.decay_shift:
                        decay.add_(self.decay_shift)
                    h = h * decay
                pieces.append(h)
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)  # (channels, length)

    def _mlp(self, z: torch.Tensor) -> torch.Tensor:
        """The filter MLP, features z `(n, emb_dim)` -> taps `(channels, n)`, in z's dtype whatever
        the weights' dtype (bf16 weights are upcast).

        The last layer is computed as W @ z^T so that the taps come out channels first, the layout
        the convolutions read: transposing an (n, channels) result would be a strided copy of the
        layer's largest filter tensor."""
        *hidden, last = self.mlp
        for layer in hidden:
            if isinstance(layer, nn.Linear):
                bias = None if layer.bias is None else layer.bias.to(z.dtype)
                z = nn.functional.linear(z, layer.weight.to(z.dtype), bias)
            else:
                z = torch.sin(layer.freq.to(z.dtype) * z)
        return torch.matmul(last.weight.to(z.dtype), z.t())  # (channels, n); the last layer has no bias


@dataclass
class HyenaPrefixCache:
    """What `HyenaOperator.forward_suffix` needs of one layer's pass over reference windows.

    `projections` `(B, (order+1)*Di, W)`: in_proj outputs before the short conv (the conv's history
    at a cut); `filters` `(order-1, Di, W)`: the long filters; per long-convolution stage
    (`order - 1` of them, in application order) `gated` = its input w = v * pregate and
    `convolved` = causal_conv(w, k) without the D skip, each `(B, Di, W)`, fp32 (fp64 in a
    float64 model).
    """

    projections: torch.Tensor
    filters: torch.Tensor
    gated: list[torch.Tensor]
    convolved: list[torch.Tensor]


def rows_at(cached: torch.Tensor, rows: list[int], starts: list[int], length: int) -> torch.Tensor:
    """cached `(Bc, C, W)` -> `(len(rows), C, length)`: row rows[i], positions starts[i] onwards,
    zeros where a slice runs past either end of the window (a start may be negative)."""
    width = cached.shape[-1]
    pieces = []
    for row, start in zip(rows, starts):
        begin, end = max(start, 0), min(start + length, width)
        piece = cached[row, :, begin:end] if end > begin else cached[row, :, :0]  # (C, <= length)
        pieces.append(nn.functional.pad(piece, (begin - start, length - (begin - start) - piece.shape[-1])))
    return torch.stack(pieces)  # (len(rows), C, length)


class HyenaOperator(nn.Module):
    """Order-N Hyena mixer: `(B, L, d_model) -> (B, L, d_model)`, causal."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        cfg = config.hyena
        self.order = cfg.order
        self.d_inner = cfg.expand * config.d_model
        channels = (cfg.order + 1) * self.d_inner
        self.in_proj = nn.Linear(config.d_model, channels)
        # Depthwise short filter as (channels, width) weights for genossm.kernels.causal_conv1d;
        # init as nn.Conv1d's default (uniform, bound 1/sqrt(fan_in = width)).
        bound = 1 / math.sqrt(cfg.short_filter_width)
        width = cfg.short_filter_width
        self.short_conv_weight = nn.Parameter(torch.empty(channels, width).uniform_(-bound, bound))
        self.short_conv_bias = nn.Parameter(torch.empty(channels).uniform_(-bound, bound))
        self.filter = ImplicitFilter((cfg.order - 1) * self.d_inner, cfg, config.max_length)
        # The long convolution's skip term D (HyenaDNA's `filter_fn.bias`).
        self.filter_bias = nn.Parameter(torch.randn((cfg.order - 1) * self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, config.d_model)

    def _long_convolutions(self, projected: torch.Tensor, filters: torch.Tensor, conv) -> torch.Tensor:
        """Gates and long convolutions on the short-convolved projections `(B, (order+1)*Di, L)`."""
        *gates, v = projected.split(self.d_inner, dim=1)  # order gates + value, each (B, Di, L)
        length = projected.shape[-1]
        k = filters.view(self.order - 1, self.d_inner, length)  # (order-1, Di, L) fp32
        D = at_least_fp32(self.filter_bias).view(self.order - 1, self.d_inner)
        later_gates = list(reversed(gates[1:]))
        for i, gate in enumerate(later_gates):
            last = i == len(later_gates) - 1
            v = conv(v, k[i], D[i], pregate=gate, postgate=gates[0] if last else None)  # (B, Di, L)
        return v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        projected = linear_to_channels_first(self.in_proj, x)  # (B, (order+1)*Di, L)
        projected = kernels.causal_conv1d(projected, self.short_conv_weight, self.short_conv_bias)
        y = self._long_convolutions(projected, self.filter(length), kernels.fftconv)  # (B, Di, L)
        return linear_from_channels_first(self.out_proj, y)  # (B, L, d_model)

    def forward_chunked(self, x: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """Exact chunked pass: projections and short conv chunk by chunk (conv state carried),
        long convolutions by overlap-add against the full filter (`fftconv_chunked`).

        Holds the (B, (order+1)*Di, L) projections and the (C, L) filter of the whole layer:
        O(L * d) memory, never the O(L * d) spectra at FFT size 2L that one full pass needs.
        """
        length = x.shape[1]
        state = None
        pieces = []
        for chunk in x.split(chunk_size, dim=1):
            projected = linear_to_channels_first(self.in_proj, chunk)  # (B, (order+1)*Di, T)
            projected, state = kernels.causal_conv1d(
                projected, self.short_conv_weight, self.short_conv_bias,
                initial_state=state, return_final_state=True,
            )
            pieces.append(projected)
        projected = torch.cat(pieces, dim=-1)  # (B, (order+1)*Di, L)
        filters = self.filter(length, chunk_size=chunk_size)  # (C, L)

        def chunked_conv(v, k, D, pregate=None, postgate=None):
            return kernels.fftconv_chunked(v, k, D, pregate, postgate, chunk_size=chunk_size)

        y = self._long_convolutions(projected, filters, chunked_conv)  # (B, Di, L)
        return torch.cat([linear_from_channels_first(self.out_proj, piece)
                          for piece in y.split(chunk_size, dim=-1)], dim=1)  # (B, L, d_model)

    # ------------------------------------------------------------------ suffix reuse (scoring)
    def _finish_stage(self, convolved, gated, D, postgate, dtype):
        """conv(w) + D * w, times the post-gate on the last stage; back in the model's dtype."""
        y = convolved + gated * D[:, None]  # (B, Di, L)
        if postgate is not None:
            y = y * postgate.to(y.dtype)
        return y.to(dtype)

    def _stages(self, projected: torch.Tensor):
        """(gates in application order, post-gate, value, D `(order-1, Di)`) of short-convolved
        projections `(B, (order+1)*Di, L)`."""
        *gates, v = projected.split(self.d_inner, dim=1)  # each (B, Di, L)
        D = at_least_fp32(self.filter_bias).view(self.order - 1, self.d_inner)
        return list(reversed(gates[1:])), gates[0], v, D

    def forward_with_cache(self, x: torch.Tensor) -> tuple[torch.Tensor, HyenaPrefixCache]:
        """`forward` (same math, D term added outside the FFT conv) that also returns the cache."""
        length = x.shape[1]
        raw = linear_to_channels_first(self.in_proj, x)  # (B, (order+1)*Di, L)
        projected = kernels.causal_conv1d(raw, self.short_conv_weight, self.short_conv_bias)
        filters = self.filter(length).view(self.order - 1, self.d_inner, length)  # (order-1, Di, L)
        later_gates, postgate, v, D = self._stages(projected)
        gated, convolved = [], []
        for i, gate in enumerate(later_gates):
            w = at_least_fp32(v) * at_least_fp32(gate)  # (B, Di, L)
            conv = kernels.fftconv(w, filters[i])  # (B, Di, L), no D
            gated.append(w)
            convolved.append(conv)
            last = i == len(later_gates) - 1
            v = self._finish_stage(conv, w, D[i], postgate if last else None, x.dtype)
        out = linear_from_channels_first(self.out_proj, v)  # (B, L, d_model)
        return out, HyenaPrefixCache(raw, filters, gated, convolved)

    def forward_suffix(self, x: torch.Tensor, cache: HyenaPrefixCache, starts: list[int],
                       rows: list[int]) -> torch.Tensor:
        """Positions [starts[i], starts[i] + T) of a window equal to cached row rows[i] before
        starts[i], from that window's inputs there, x `(B, T, d_model)` -> `(B, T, d_model)`.

        Exact (to fp32 rounding) where the suffix lies inside the window; positions a row is padded
        with past the window end are garbage that nothing earlier depends on (causal).
        """
        length = x.shape[1]
        raw = linear_to_channels_first(self.in_proj, x)  # (B, (order+1)*Di, T)
        history_length = self.short_conv_weight.shape[1] - 1
        history = rows_at(cache.projections, rows, [s - history_length for s in starts], history_length)
        projected = kernels.causal_conv1d(raw, self.short_conv_weight, self.short_conv_bias,
                                          initial_state=history.to(raw.dtype))  # (B, (order+1)*Di, T)
        filters = cache.filters[..., :length]  # (order-1, Di, T): taps depend on the lag only
        later_gates, postgate, v, D = self._stages(projected)
        for i, gate in enumerate(later_gates):
            w = at_least_fp32(v) * at_least_fp32(gate)  # (B, Di, T)
            w_ref = rows_at(cache.gated[i], rows, starts, length)  # (B, Di, T)
            conv_ref = rows_at(cache.convolved[i], rows, starts, length)  # (B, Di, T)
            # Linear: conv(w)[t] = conv(w_ref)[t] + conv(w - w_ref)[t - start], w - w_ref = 0 before start.
            conv = conv_ref + kernels.fftconv(w - w_ref, filters[i])  # (B, Di, T)
            last = i == len(later_gates) - 1
            v = self._finish_stage(conv, w, D[i], postgate if last else None, x.dtype)
        return linear_from_channels_first(self.out_proj, v)  # (B, T, d_model)
