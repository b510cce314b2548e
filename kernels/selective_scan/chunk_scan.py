"""Triton selective scan: launcher, autograd Function and `selective_scan_triton`.

Same signature, shapes and math as `selective_scan_ref` (see `reference.py`). Without a gradient
the sequential-chunk forward of `recurrent_scan.py` runs alone; with one, the same forward also
saves the state every `ScanConfig.chunk` positions (N > 16: the associative-scan forward of
`chunk_scan_kernels.py` does) and the backward recomputes each chunk from there: the
sequential-time kernel of `recurrent_scan_bwd_kernels.py` for 16-bit inputs without cu_seqlens
(N <= 16), the associative-scan kernels of `chunk_scan_kernels.py` otherwise. Design notes and measured figures: docs/kernels/selective_scan.md. Gradients
flow to u, delta, A, B, C, D, z, delta_bias and initial_state.
"""

from __future__ import annotations

import dataclasses
import math
import os

import torch
import torch.nn.functional as F
import triton

from .._launch_config import overridden_config
from .._checks import FAST_DTYPES, check_fast_dtype
from .reference import as_grouped, check_scan_shapes
from . import recurrent_scan
from .recurrent_scan import recurrent_forward, selective_scan_seq, seq_scan_supports
from .recurrent_scan_kernels import MAX_STATES as MAX_SEQ_STATES
from .recurrent_scan_bwd_kernels import CHUNK_POSITIONS as SEQ_BWD_CHUNK
from .recurrent_scan_bwd_kernels import _seq_bwd_kernel_ti4, _seq_bwd_kernel_ti8
from .chunk_scan_kernels import (
    _scan_bwd_carry_kernel,
    _scan_bwd_chain_kernel,
    _scan_bwd_kernel,
    _scan_fwd_kernel,
)

LOG2E = 1.4426950408889634


@dataclasses.dataclass
class ScanConfig:
    """Launch shape of the training path. `chunk` positions is both the backward's tile length
    and the spacing of the states the forward saves for it (fp32, (B, L / chunk, H, N))."""

    # defaults: fastest fwd+bwd of benchmarks/mamba_training.py's sweep on an H200 at
    # (1, 512, 16, 2^20, bf16), see docs/kernels/selective_scan.md
    chunk: int = 16  # positions per backward tile (and per saved state), and per forward scan
    fwd_block_h: int = 1  # channels per associative-scan forward program (N > 16 only)
    # channels per backward tile (more: fewer dB/dC atomics, more registers); 16 channels on one
    # warp keep every reduction inside the warp (no barrier): 78 ms against 85 for 64 channels
    # on four warps
    bwd_block_c: int = 16
    fwd_warps: int = 2
    bwd_warps: int = 1
    # register cap of the main backward: 128 lets twice the warps share an SM, which won 17%
    # over the uncapped 255 registers despite the spills
    bwd_maxnreg: int | None = 128
    # backward programs to aim for: the sequence is cut into segments until there are this many
    # (with one-warp programs, enough for 16 per SM); 0 disables the cut
    bwd_target_programs: int = 4096
    bwd_segment_chunks: int | None = None  # force a segment length (tests), in chunks
    # "seq": the sequential-time backward (recurrent_scan_bwd_kernels.py, one channel per
    # thread) wherever it applies (no cu_seqlens, N <= 16, chunk 16, 16-bit inputs), else the
    # associative-scan "chunk" one; "seq!" forces "seq" for fp32 too (tests). H200 fwd+bwd at
    # (1, 512, 16, 2^20): bf16 60.9 ms against 64.3, fp32 74.4 against 66.2 (so fp32 keeps
    # "chunk"); (8, 1536, 16, 4096) bf16 5.94 against 6.61 (scan_sweep_seq_bwd_h200.json)
    bwd_kernel: str = "seq"
    bwd_seq_warps: int = 1  # sequential backward: channels per program = 32 * warps
    # 128 registers (a few spills) give 16 warps per SM; uncapped (183) ran 70.6 ms, not 62.1
    bwd_seq_maxnreg: int | None = 128
    bwd_seq_target_programs: int = 8192  # 60.9 ms against 62.1 at 4096
    # dB/dC of the sequential backward summed across a warp by a shuffle reduce-scatter (inline
    # PTX, so compiled code only) instead of one tree reduction per position
    bwd_seq_shfl: bool = True


CONFIG = ScanConfig()


def scan_config(**overrides):
    """Temporarily change the launch shape (tests force segments; benchmarks sweep tiles)."""
    return overridden_config(__name__, **overrides)


def _block_h(wanted: int, heads_per_group: int) -> int:
    """Largest power of two <= wanted dividing H/G, so a tile never straddles two B/C groups."""
    block = 1
    while block * 2 <= wanted and heads_per_group % (block * 2) == 0:
        block *= 2
    return block


def _sequence_index(cu_seqlens: torch.Tensor, L: int, device) -> torch.Tensor:
    """(L,) int32: which packed sequence each position belongs to."""
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).to(device=device, dtype=torch.long)
    ids = torch.arange(lengths.numel(), device=device, dtype=torch.int32)
    return torch.repeat_interleave(ids, lengths, output_size=L)


class _Layout:
    """Sizes and flags shared by the forward and backward launches."""

    def __init__(self, u, A, B, C, cu_seqlens, initial_state, config: ScanConfig):
        self.batch, self.H, self.L = u.shape
        self.N = A.shape[1]
        self.block_n = triton.next_power_of_2(self.N)
        self.b_varies = B.dim() == 4
        self.c_varies = C.dim() == 4
        groups = [m.shape[1] for m in (B, C) if m.dim() == 4]
        self.n_groups = groups[0] if groups else 1
        if len(groups) == 2 and groups[0] != groups[1]:
            raise ValueError(f"selective_scan_triton: B and C need the same groups, got {groups}")
        self.heads_per_group = self.H // self.n_groups
        self.chunk = config.chunk
        self.n_chunks = max(1, math.ceil(self.L / self.chunk))
        self.varlen = cu_seqlens is not None
        self.n_states = cu_seqlens.numel() - 1 if self.varlen else self.batch
        self.has_init = initial_state is not None
        self.config = config

    def kernel_flags(self):
        return dict(VARLEN=self.varlen, B_VARIES=self.b_varies, C_VARIES=self.c_varies,
                    BLOCK_N=self.block_n, CHUNK=self.chunk)


def _scan_forward(u, delta, A2, B, C, D, z, delta_bias, delta_softplus, initial_state, seq_idx,
                  layout: _Layout, want_last: bool, want_ckpt: bool):
    out = torch.empty_like(u)  # (B, H, L)
    last = None
    if want_last:
        last = torch.zeros(layout.n_states, layout.H, layout.N, device=u.device, dtype=torch.float32)
    ckpt = None
    if want_ckpt:
        ckpt = torch.empty(layout.batch, layout.n_chunks, layout.H, layout.N, device=u.device,
                           dtype=torch.float32)  # state at each chunk's end
    block_h = _block_h(layout.config.fwd_block_h, layout.heads_per_group)
    grid = (layout.H // block_h, layout.batch)
    dummy = u  # stands in for absent optional tensors; never read (the constexpr flag is off)
    _scan_fwd_kernel[grid](
        u, delta, A2, B, C,
        D if D is not None else dummy, z if z is not None else dummy,
        delta_bias if delta_bias is not None else dummy,
        initial_state if initial_state is not None else dummy,
        seq_idx if seq_idx is not None else dummy,
        out, last if last is not None else dummy, ckpt if ckpt is not None else dummy,
        layout.H, layout.L, layout.N, layout.heads_per_group, layout.n_groups, layout.n_chunks,
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
        SOFTPLUS=delta_softplus, HAS_INIT=initial_state is not None, STORE_LAST=want_last,
        STORE_CKPT=want_ckpt, BLOCK_H=block_h, num_warps=layout.config.fwd_warps,
        **layout.kernel_flags(),
    )
    return out, last, ckpt


def associative_forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state,
                        initial_state, cu_seqlens, save_states: bool = False):
    """The associative-scan forward (any N <= 64): (y, last states or None, states saved for the
    backward or None). Contiguous inputs, B/C as (B, G, N, L) or (H, N), fp32 initial state."""
    A2 = A.float().contiguous() * LOG2E
    layout = _Layout(u, A, B, C, cu_seqlens, initial_state, CONFIG)
    seq_idx = _sequence_index(cu_seqlens, layout.L, u.device) if cu_seqlens is not None else None
    out, last, ckpt = _scan_forward(
        u, delta, A2, B, C, D, z, delta_bias, delta_softplus, initial_state, seq_idx, layout,
        want_last=return_last_state, want_ckpt=save_states,
    )
    if last is not None and initial_state is not None and cu_seqlens is not None:
        # an empty packed sequence never reaches the kernels: its last state is its initial one
        empty = (cu_seqlens[1:] == cu_seqlens[:-1]).to(u.device)
        last = torch.where(empty[:, None, None], initial_state, last)
    return out, last, ckpt


def _segment_chunks(layout: _Layout, block_c: int, target_programs: int | None = None) -> int:
    config = layout.config
    if config.bwd_segment_chunks is not None:
        return max(1, min(config.bwd_segment_chunks, layout.n_chunks))
    target = config.bwd_target_programs if target_programs is None else target_programs
    programs = layout.batch * triton.cdiv(layout.H, block_c)
    if target <= 0 or programs >= target:
        return layout.n_chunks
    n_segs = min(layout.n_chunks, math.ceil(target / programs))
    return math.ceil(layout.n_chunks / n_segs)


def _bwd_block_c(layout: _Layout) -> int:
    """Channels per backward tile: the configured count, or a power of two dividing H/G when
    there are several B/C groups (a tile's dB/dC rows must belong to one group)."""
    if layout.n_groups == 1:
        return min(layout.config.bwd_block_c, triton.next_power_of_2(layout.H))
    return _block_h(layout.config.bwd_block_c, layout.heads_per_group)


def _seq_backward_block(layout: _Layout, *tensors) -> int:
    """Channels per program of the sequential backward, or 0 where it does not apply."""
    config = layout.config
    block = 32 * config.bwd_seq_warps
    if (config.bwd_kernel not in ("seq", "seq!") or layout.varlen or layout.N > MAX_SEQ_STATES
            or layout.chunk != SEQ_BWD_CHUNK
            or any(t is not None and t.dtype not in FAST_DTYPES for t in tensors)):
        return 0
    if not _forced_seq(config) and any(t is not None and t.dim() >= 3 and t.element_size() > 2
                                       for t in tensors):
        return 0  # fp32 inputs: the chunk kernel measured faster (66.2 against 74.4 ms)
    if layout.n_groups > 1 and layout.heads_per_group % block:
        return 0  # a program's scalar B/C loads need all its channels in one group
    return block


def _interpreting() -> bool:
    """True under the Triton interpreter (CPU tests), which runs no inline PTX."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _forced_seq(config: ScanConfig) -> bool:
    """True when a caller asked for the sequential backward explicitly (tests, sweeps): then
    fp32 inputs take it too."""
    return config.bwd_kernel == "seq!"


def _segment_carry(delta, A2, C, z, delta_bias, delta_softplus, seq_idx, dout, dlast,
                   layout: _Layout, seg_chunks: int, n_segs: int):
    """(B, S, H, N) fp32: the adjoint at the first position after each segment (zeros for the
    last), from the carry kernel (each segment alone) and the chain kernel (right to left)."""
    H, N, config = layout.H, layout.N, layout.config
    f32 = dict(device=delta.device, dtype=torch.float32)
    carry = torch.zeros(layout.batch, n_segs, H, N, **f32)
    if n_segs == 1:
        return carry
    dummy = delta
    opt = lambda t: t if t is not None else dummy  # noqa: E731 - absent tensors are never read
    block_c = _bwd_block_c(layout)
    local = torch.empty_like(carry)
    decay = torch.empty_like(carry)
    _scan_bwd_carry_kernel[(triton.cdiv(H, block_c), n_segs, layout.batch)](
        delta, A2, C, opt(z), opt(delta_bias), opt(seq_idx), dout, opt(dlast), local, decay,
        H, layout.L, N, layout.heads_per_group, layout.n_groups, layout.n_chunks, seg_chunks,
        n_segs, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=delta_softplus,
        HAS_DLAST=dlast is not None, VARLEN=layout.varlen, C_VARIES=layout.c_varies,
        BLOCK_C=block_c, BLOCK_N=layout.block_n, T=layout.chunk, num_warps=config.bwd_warps,
    )
    chain_block = 256
    _scan_bwd_chain_kernel[(triton.cdiv(H * N, chain_block), layout.batch)](
        local, decay, carry, H * N, n_segs, BLOCK=chain_block,
    )
    return carry


def _seq_scan_backward(dout, dlast, u, delta, A2, B, C, D, z, delta_bias, delta_softplus,
                       initial_state, ckpt, layout: _Layout, block_h: int):
    """The sequential-time backward (recurrent_scan_bwd_kernels.py): same outputs as
    `_scan_backward`'s chunk kernels."""
    H, N, config = layout.H, layout.N, layout.config
    seg_chunks = _segment_chunks(layout, block_h, config.bwd_seq_target_programs)
    n_segs = math.ceil(layout.n_chunks / seg_chunks)
    flow = _segment_carry(delta, A2, C, z, delta_bias, delta_softplus, None, dout, dlast, layout,
                          seg_chunks, n_segs)  # the kernel reuses it as per-state scratch
    parts_shape = (layout.batch, n_segs, H, N)
    f32 = dict(device=u.device, dtype=torch.float32)
    dummy = u
    opt = lambda t: t if t is not None else dummy  # noqa: E731 - absent tensors are never read
    du = torch.empty_like(u)
    ddelta = torch.empty_like(delta)
    dz = torch.empty_like(z) if z is not None else None
    dA_parts = torch.zeros(parts_shape, **f32)
    dB = torch.zeros(B.shape, **f32) if layout.b_varies else torch.zeros_like(dA_parts)
    dC = torch.zeros(C.shape, **f32) if layout.c_varies else torch.zeros_like(dA_parts)
    dD_parts = torch.zeros(layout.batch, n_segs, H, **f32) if D is not None else None
    dbias_parts = torch.zeros(layout.batch, n_segs, H, **f32) if delta_bias is not None else None
    dinit = torch.zeros(initial_state.shape, **f32) if initial_state is not None else None
    widest = max(t.element_size() for t in (u, delta, dout, z, B, C) if t is not None and t.dim() >= 3)
    kernel = _seq_bwd_kernel_ti8 if widest <= 2 else _seq_bwd_kernel_ti4
    kernel[(triton.cdiv(H, block_h), n_segs, layout.batch)](
        u, delta, A2, B, C, opt(D), opt(z), opt(delta_bias), opt(initial_state), ckpt, flow,
        dout, opt(dlast),
        du, ddelta, opt(dz), dA_parts, dB, dC, opt(dD_parts), opt(dbias_parts), opt(dinit),
        H, layout.L, N, layout.heads_per_group, layout.n_groups, layout.n_chunks, seg_chunks, n_segs,
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
        SOFTPLUS=delta_softplus, HAS_INIT=initial_state is not None, HAS_DLAST=dlast is not None,
        B_VARIES=layout.b_varies, C_VARIES=layout.c_varies, BLOCK_H=block_h,
        USE_SHFL=bool(config.bwd_seq_shfl) and not _interpreting(),
        EVEN_L=layout.L % SEQ_BWD_CHUNK == 0, num_warps=config.bwd_seq_warps,
        **({"maxnreg": config.bwd_seq_maxnreg} if config.bwd_seq_maxnreg else {}),
    )
    return _reduced(du, ddelta, dA_parts, dB, dC, dD_parts, dz, dbias_parts, dinit, layout)


def _reduced(du, ddelta, dA_parts, dB, dC, dD_parts, dz, dbias_parts, dinit, layout: _Layout):
    """Sum the per-(batch, segment) partials the backward kernels leave, (B, S, H, N), into (H, N)."""
    dA = dA_parts.sum((0, 1))
    if not layout.b_varies:
        dB = dB.sum((0, 1))
    if not layout.c_varies:
        dC = dC.sum((0, 1))
    dD = dD_parts.sum((0, 1)) if dD_parts is not None else None
    dbias = dbias_parts.sum((0, 1)) if dbias_parts is not None else None
    return du, ddelta, dA, dB, dC, dD, dz, dbias, dinit


def _scan_backward(dout, dlast, u, delta, A2, B, C, D, z, delta_bias, delta_softplus,
                   initial_state, seq_idx, ckpt, layout: _Layout):
    seq_block = _seq_backward_block(layout, u, delta, dout, z, B, C)
    if seq_block:
        return _seq_scan_backward(dout, dlast, u, delta, A2, B, C, D, z, delta_bias,
                                  delta_softplus, initial_state, ckpt, layout, seq_block)
    H, N, config = layout.H, layout.N, layout.config
    block_c = _bwd_block_c(layout)
    seg_chunks = _segment_chunks(layout, block_c)
    n_segs = math.ceil(layout.n_chunks / seg_chunks)
    f32 = dict(device=u.device, dtype=torch.float32)
    dummy = u
    opt = lambda t: t if t is not None else dummy  # noqa: E731 - absent tensors are never read
    flags = dict(HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=delta_softplus,
                 HAS_DLAST=dlast is not None, VARLEN=layout.varlen, C_VARIES=layout.c_varies,
                 BLOCK_C=block_c, BLOCK_N=layout.block_n, T=layout.chunk, num_warps=config.bwd_warps)
    grid = (triton.cdiv(H, block_c), n_segs, layout.batch)
    carry = _segment_carry(delta, A2, C, z, delta_bias, delta_softplus, seq_idx, dout, dlast,
                           layout, seg_chunks, n_segs)

    du = torch.empty_like(u)
    ddelta = torch.empty_like(delta)
    dz = torch.empty_like(z) if z is not None else None
    parts = torch.zeros(layout.batch, n_segs, H, N, **f32)  # per (batch, segment) sums, reduced below
    dA_parts = parts
    dB = torch.zeros(B.shape, **f32) if layout.b_varies else torch.zeros_like(parts)
    dC = torch.zeros(C.shape, **f32) if layout.c_varies else torch.zeros_like(parts)
    dD_parts = torch.zeros(layout.batch, n_segs, H, **f32) if D is not None else None
    dbias_parts = torch.zeros(layout.batch, n_segs, H, **f32) if delta_bias is not None else None
    dinit = torch.zeros(initial_state.shape, **f32) if initial_state is not None else None
    _scan_bwd_kernel[grid](
        u, delta, A2, B, C, opt(D), opt(z), opt(delta_bias), opt(initial_state), opt(seq_idx),
        ckpt, carry, dout, opt(dlast),
        du, ddelta, opt(dz), dA_parts, dB, dC, opt(dD_parts), opt(dbias_parts), opt(dinit),
        H, layout.L, N, layout.heads_per_group, layout.n_groups, layout.n_chunks, seg_chunks, n_segs,
        HAS_D=D is not None, HAS_INIT=initial_state is not None, B_VARIES=layout.b_varies, **flags,
        **({"maxnreg": config.bwd_maxnreg} if config.bwd_maxnreg else {}),
    )
    return _reduced(du, ddelta, dA_parts, dB, dC, dD_parts, dz, dbias_parts, dinit, layout)


def _contiguous(t):
    return t.contiguous() if t is not None else None


class SelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state,
                initial_state, cu_seqlens):
        u, delta, B, C, D, z, delta_bias = map(_contiguous, (u, delta, B, C, D, z, delta_bias))
        A32 = A.float().contiguous()  # (H, N)
        A2 = A32 * LOG2E  # exp(delta A) = exp2(delta A log2 e): one MUFU.EX2, no extra multiply
        init = initial_state.float().contiguous() if initial_state is not None else None
        layout = _Layout(u, A, B, C, cu_seqlens, init, CONFIG)
        seq_idx = _sequence_index(cu_seqlens, layout.L, u.device) if cu_seqlens is not None else None
        needs_grad = any(ctx.needs_input_grad[:8]) or ctx.needs_input_grad[10]
        empty = (cu_seqlens[1:] == cu_seqlens[:-1]).to(u.device) if cu_seqlens is not None else None
        if seq_scan_supports(A, u, delta, B, C, z):
            # the sequential-time forward (recurrent_scan.py), saving the state at every chunk end
            out, last, ckpt = recurrent_forward(
                u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, init,
                cu_seqlens, recurrent_scan.CONFIG, save_every=layout.chunk if needs_grad else 0,
            )
        else:  # N > 16: the associative-scan forward
            out, last, ckpt = associative_forward(
                u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, init,
                cu_seqlens, save_states=needs_grad,
            )
        if needs_grad:
            ctx.save_for_backward(u, delta, A2, B, C, D, z, delta_bias, init, seq_idx, ckpt, empty)
        ctx.layout = layout
        ctx.delta_softplus = delta_softplus
        ctx.dtypes = (A.dtype, B.dtype, C.dtype, None if D is None else D.dtype,
                      None if delta_bias is None else delta_bias.dtype,
                      None if initial_state is None else initial_state.dtype)
        if return_last_state:
            return out, last
        return out

    @staticmethod
    def backward(ctx, dout, dlast=None):
        u, delta, A2, B, C, D, z, delta_bias, init, seq_idx, ckpt, empty = ctx.saved_tensors
        dlast = dlast.float().contiguous() if dlast is not None else None
        du, ddelta, dA, dB, dC, dD, dz, dbias, dinit = _scan_backward(
            dout.contiguous(), dlast, u, delta, A2, B, C, D, z, delta_bias,
            ctx.delta_softplus, init, seq_idx, ckpt, ctx.layout,
        )
        if dinit is not None and dlast is not None and empty is not None:
            dinit = torch.where(empty[:, None, None], dlast, dinit)
        A_dtype, B_dtype, C_dtype, D_dtype, bias_dtype, init_dtype = ctx.dtypes
        cast = lambda g, dtype: g.to(dtype) if g is not None else None  # noqa: E731
        return (du, ddelta, dA.to(A_dtype), dB.to(B_dtype), dC.to(C_dtype), cast(dD, D_dtype), dz,
                cast(dbias, bias_dtype), None, None, cast(dinit, init_dtype), None)


def selective_scan_triton(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    return_last_state=False, initial_state=None, cu_seqlens=None,
):
    """Selective scan on the GPU (or the Triton interpreter): see `selective_scan_ref`.

    bf16/fp16/fp32 inputs; states and accumulation in fp32; y in u's dtype, last_state fp32.
    """
    B, C = as_grouped(B), as_grouped(C)
    check_scan_shapes(u, delta, A, B, C, D, z, delta_bias, initial_state, cu_seqlens)
    check_fast_dtype("selective_scan_triton", "u", u)
    if A.shape[1] > 64:
        raise ValueError(f"selective_scan_triton: N (A.shape[1]) must be <= 64, got {A.shape[1]}")
    if u.shape[-1] == 0:
        raise ValueError("selective_scan_triton: length 0 input; nothing to scan")
    L = u.shape[-1]
    pad = (-L) % ALIGN_POSITIONS if delta_softplus and cu_seqlens is None else 0
    if pad:
        u, delta, z, B, C = _pad_time(pad, u, delta, z, B, C)
    tensors = (u, delta, A, B, C, D, z, delta_bias, initial_state)
    wants_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    if not wants_grad and seq_scan_supports(A, u, delta, B, C, z):
        # inference: the sequential-time forward (recurrent_scan.py) is faster, see
        # docs/kernels/selective_scan.md
        result = selective_scan_seq(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                    return_last_state, initial_state, cu_seqlens)
    else:
        result = SelectiveScanFn.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                       return_last_state, initial_state, cu_seqlens)
    if not pad:
        return result
    if return_last_state:
        return result[0][..., :L], result[1]
    return result[..., :L]


# Rows of (B, H, L) tensors start 16-byte aligned only when L is a multiple of 8 (bf16) or 4
# (fp32); Triton specialises on that and otherwise loads one element at a time. An odd L (a
# causal model sees windows of L - 1 tokens) ran the training forward 8x slower per call in a
# model (benchmarks/results/profiles/caduceus_ph_131k_train_h200.txt, L = 131071, against
# selective_scan_131k_train_h200.json at L = 131072), so such inputs are padded to a multiple of
# 16 positions first: a copy per input, cheap next to the scan.
ALIGN_POSITIONS = 16


def _pad_time(pad: int, u, delta, z, B, C):
    """Extend the sequence by `pad` positions that change nothing: delta_raw = -inf gives
    delta = softplus(-inf) = 0 there (a = 1, b = 0: the state, and so last_state, stays put, and
    the adjoint d last_state flows back through them unchanged), u = z = B = C = 0. F.pad is
    differentiable, so autograd drops the padded positions' gradients."""
    def extend(t, value=0.0):
        return F.pad(t, (0, pad), value=value) if t is not None and t.dim() >= 3 else t
    return extend(u), extend(delta, float("-inf")), extend(z), extend(B), extend(C)
