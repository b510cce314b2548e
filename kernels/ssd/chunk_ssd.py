"""Triton chunked SSD: chunk table, launchers, autograd Function and `ssd_triton`.

Same signature, shapes and math as `ssd_ref` (kernels/ssd/reference.py) plus `chunk_size`. The
kernels (`chunk_ssd_kernels.py`) read x, dt, B, C through their strides, so the model's
transposed views are not copied. Every sequence starts a chunk: the chunk table lists each
chunk's first position and length, whether it starts or ends its sequence, and which sequence
it belongs to (for packed batches); empty sequences have no chunk, and their final state is
their initial state.

Memory: each pass materialises one (P, N) state per chunk and head, (rows, chunks, H, P, N)
in the input dtype for half inputs (the matmuls read them in that dtype anyway; mamba_ssm keeps
its passed states in C's dtype too), fp32 otherwise: 2 GiB at L = 2^20, 8 heads of 64 x 128,
Q = 64, bf16. Under autograd the forward keeps that buffer for the backward
(`SSDConfig.save_states`; otherwise the backward recomputes it), and the backward holds it with
the adjoints (a second such buffer). The gate z is applied outside the kernels
(y * silu(z), autograd); dt, A, the bias, D and the initial states are differentiated by the
kernels.
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from .._launch_config import overridden_config
from .._checks import check_fast_dtype
from .chunk_ssd_kernels import (
    _adjoint_passing_kernel,
    _chunk_scan_bwd_dB_kernel,
    _chunk_scan_bwd_dC_kernel,
    _chunk_scan_bwd_dx_kernel,
    _chunk_scan_fwd_kernel,
    _chunk_state_kernel,
    _state_passing_fwd_kernel,
)
from .reference import check_ssd_shapes

__all__ = ["SSDConfig", "kernel_chunk_size", "ssd_config", "ssd_triton"]


@dataclasses.dataclass
class SSDConfig:
    """Launch shape of the kernels. Not yet measured on a GPU: the warps are mamba_ssm's usual
    choices for tiles of this size, to be swept with `benchmarks/ssd.py --set key=value`."""

    chunk_size: int | None = None  # overrides the caller's chunk_size when set (benchmark sweeps)
    # the chunks of a forward that keeps no states for a backward (inference, or
    # save_states off; None: the caller's), never below the caller's: longer chunks, fewer
    # states to write, pass and read (the forward's HBM traffic is mostly states: 8.6 GB at the
    # target shape in chunks of 64, 4.3 GB in chunks of 128). 16-bit inputs read chunks of up
    # to `whole_tile_chunk` as one tile (C B^T once per group); longer chunks, and fp32 ones
    # (shared memory), in tiles of the caller's chunk (C B^T once per head and tile pair). On
    # the H200 at the target shape (bf16) the forward of chunks of 128 took 12.9 ms in tiles
    # of 64 and 7.3 ms as one tile (`benchmarks/results/ssd_h200_chunk128.json`), despite
    # sm_90's 304 B of spills per thread in the one-tile scan. A forward under autograd runs
    # the caller's chunks and keeps its states: recomputing them in the backward would cost
    # more than the longer chunks save.
    forward_chunk: int | None = 128
    whole_tile_chunk: int = 128
    # keep the forward's states for the backward when it runs the same chunks (under autograd
    # only): one buffer of (rows, chunks, H, P, N) per call until its backward (2 GiB at the
    # target shape; a checkpointed block holds it only while it is recomputed) saves the
    # backward a chunk-state pass and a state walk (~8 GB of HBM traffic there)
    save_states: bool = True
    state_warps: int = 4  # chunk states and adjoints: one (P, Q) x (Q, N) matmul per program
    scan_warps: int = 8  # forward chunk scan: C B^T, (Q, Q) x (Q, P), (Q, N) x (N, P) per head
    scan_bwd_warps: int = 8  # backward dx, dC and dB kernels: three or four matmuls per head
    # state walks: programs of this many state entries (8 heads x 64 x 128 at 64 give 1024
    # programs at batch 1) take the chunks this many at a time, one matmul per tile whose
    # loads Triton pipelines through shared memory: at 32 x 64 (sm_90) 82 registers and 10 KB,
    # 5 walkers an SM, 40 KB of tiles in flight; 32 x 32: 71 registers, 7 walkers, 28 KB;
    # 32 x 128: 140 registers, 3 walkers, 48 KB. Every walk is serial (512 tiles at the
    # target), so what bounds it is tiles per walk x time per tile x waves of walkers.
    passing_block: int = 64
    passing_chunks: int = 32
    passing_warps: int = 4
    # fp32 inputs run chunks of at most this many positions: at 64 the backward kernels need
    # ~230 KB of shared memory on sm_90 (the limit is 227 KB), at 32 about 140 KB
    fp32_max_chunk: int = 32


CONFIG = SSDConfig()


def ssd_config(**overrides):
    """Temporarily change the launch shape (tests and benchmark sweeps)."""
    return overridden_config(__name__, **overrides)


@dataclasses.dataclass
class ChunkTable:
    """Where the chunks lie: (chunks,) tensors on the device, and the counts the launches need."""

    start: torch.Tensor  # int64: first position of the chunk in its row
    length: torch.Tensor  # int32: positions of the chunk inside its sequence (<= Q)
    first: torch.Tensor  # int32: the chunk starts a sequence (its state restarts)
    last: torch.Tensor  # int32: the chunk ends a sequence (its state is that sequence's final one)
    sequence: torch.Tensor  # int32: the packed sequence of the chunk (cu_seqlens only)
    rows: int  # batch rows of the chunk grid (1 with cu_seqlens)
    sequences: int  # rows of the initial / final states
    empty: torch.Tensor | None  # (sequences,) bool: packed sequences of length 0

    @property
    def n_chunks(self) -> int:
        return self.start.numel()


def chunk_table(batch: int, L: int, Q: int, cu_seqlens, device) -> ChunkTable:
    """Chunks of Q positions per row, or per packed sequence (each starting a chunk)."""
    if cu_seqlens is None:
        chunks = -(-L // Q)
        start = torch.arange(chunks, device=device, dtype=torch.int64) * Q
        flags = torch.zeros(chunks, device=device, dtype=torch.int32)
        first, last = flags.clone(), flags.clone()
        if chunks:
            first[0], last[-1] = 1, 1
        return ChunkTable(start, (L - start).clamp(max=Q).to(torch.int32), first, last,
                          torch.zeros(chunks, device=device, dtype=torch.int32), batch, batch, None)
    bounds = cu_seqlens.tolist()
    starts, lengths, first, last, sequence = [], [], [], [], []
    for index, (begin, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        chunks = -(-(end - begin) // Q)
        for k in range(chunks):
            starts.append(begin + k * Q)
            lengths.append(min(Q, end - begin - k * Q))
            first.append(k == 0)
            last.append(k == chunks - 1)
            sequence.append(index)

    def on_device(values, dtype):
        return torch.tensor(values, device=device, dtype=dtype)

    lengths_of_sequences = torch.tensor(bounds[1:]) - torch.tensor(bounds[:-1])
    return ChunkTable(on_device(starts, torch.int64), on_device(lengths, torch.int32),
                      on_device(first, torch.int32), on_device(last, torch.int32),
                      on_device(sequence, torch.int32), 1, len(bounds) - 1,
                      (lengths_of_sequences == 0).to(device))


def kernel_chunk_size(chunk_size: int) -> int:
    """The chunk length the kernels run: `chunk_size` rounded up to a power of two >= 16 (tile
    sizes are powers of two and tl.dot needs 16). The result depends on it only by rounding, so
    a model configured with chunks of 8 for the reference still runs here."""
    if chunk_size < 1:
        raise ValueError(f"ssd_triton: chunk_size must be >= 1, got {chunk_size}")
    return max(16, triton.next_power_of_2(chunk_size))


def _with_int32_tiles(t: torch.Tensor, Q: int) -> torch.Tensor:
    """`t` (B, L, heads, cols), or a contiguous copy when offsets inside one (Q, cols) tile would
    pass 2^31: the kernels add int32 tile offsets to an int64 base (`_load_rows`)."""
    block = max(16, triton.next_power_of_2(t.shape[3]))
    extent = (Q - 1) * abs(t.stride(1)) + (block - 1) * abs(t.stride(3))
    return t if extent < 2**31 else t.contiguous()


def _extent(t: torch.Tensor, dims: range) -> int:
    """Elements spanned by t's indices along `dims` (1 + the largest offset they reach)."""
    return 1 + sum((t.shape[d] - 1) * t.stride(d) for d in dims)


def _shared_channel_slices(views) -> bool:
    """True when the (B, L, ...) tensors are disjoint channel slices of one buffer: one storage and
    dtype, the same batch and position strides, every stride positive, and their offsets inside
    one batch row cover disjoint ranges that fit in that row (so no two share an element in any
    row). Mamba-2's x, B and C are that: slices of the conv's channels-first output."""
    first = views[0]
    if any(t.untyped_storage().data_ptr() != first.untyped_storage().data_ptr()
           or t.dtype != first.dtype or t.stride()[:2] != first.stride()[:2]
           or min(t.stride()) <= 0 or t.numel() == 0 for t in views):
        return False
    spans = sorted((t.storage_offset(), t.storage_offset() + _extent(t, range(1, t.dim())))
                   for t in views)
    disjoint = all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))
    fits_in_a_row = first.shape[0] == 1 or spans[-1][1] - spans[0][0] <= first.stride(0)
    return disjoint and fits_in_a_row


def _zero_grads_like(*views):
    """Zeroed gradients with their inputs' shapes and strides. When the inputs are disjoint
    channel slices of one buffer (`_shared_channel_slices`), the gradients are the same slices of
    one new buffer: a caller that split that buffer hands the whole gradient on without a cat or
    a transpose copy (`genossm.models.mamba2`'s split of the conv output; at 2^20 positions the
    cat and the conv backward's transpose cost ~26 ms per layer). Otherwise each is its own
    dense tensor laid out in its input's dimension order (`_zeros_in_layout`)."""
    if len(views) > 1 and _shared_channel_slices(views):
        low = min(t.storage_offset() for t in views)
        high = max(t.storage_offset() + _extent(t, range(t.dim())) for t in views)
        buffer = torch.zeros(high - low, device=views[0].device, dtype=views[0].dtype)
        return tuple(buffer.as_strided(t.shape, t.stride(), t.storage_offset() - low) for t in views)
    return tuple(_zeros_in_layout(t) for t in views)


def _zeros_in_layout(t: torch.Tensor) -> torch.Tensor:
    """A dense zero tensor of t's shape whose dimensions lie in memory in t's order (by stride):
    the gradient of Mamba-2's dt, a time-major view of the channels-first projection, is then
    time-major too, and the projection's backward concatenates it without a strided copy."""
    order = sorted(range(t.dim()), key=lambda d: (-t.stride(d), d))
    dense = torch.zeros([t.shape[d] for d in order], device=t.device, dtype=t.dtype)
    return dense.permute([order.index(d) for d in range(t.dim())])


def _blocks(P: int, N: int) -> dict:
    # tl.dot needs every dimension >= 16
    return dict(BLOCK_P=max(16, triton.next_power_of_2(P)), BLOCK_N=max(16, triton.next_power_of_2(N)))


def _dot_precision(x: torch.Tensor) -> str:
    # fp32 inputs: three tf32 products per matmul (tf32x3), fp32-level accuracy on the tensor
    # cores; plain tf32 would cost ~1e-3 relative error, and "ieee" compiled (sm_90, triton 3.9)
    # to kernels of 32 registers and 8 KB of spills per thread. Half inputs are multiplied in
    # their own precision either way.
    return "tf32x3" if x.dtype == torch.float32 else "tf32"


def _dot_dtype(x: torch.Tensor):
    """Operand dtype of the matmuls: the input's. The interpreter (triton 3.9) multiplies bf16
    operands as raw integers, so there they go in as fp32 (same products, exact)."""
    if x.dtype == torch.bfloat16 and os.environ.get("TRITON_INTERPRET") == "1":
        return tl.float32
    return {torch.float16: tl.float16, torch.bfloat16: tl.bfloat16, torch.float32: tl.float32}[x.dtype]


def _strides(t: torch.Tensor, dims: int) -> tuple:
    return tuple(t.stride())[:dims]


class _Launch:
    """What every kernel launch of one call shares: sizes, the chunk table, the grids."""

    def __init__(self, x, B, table: ChunkTable, Q: int, config: SSDConfig, sub: int | None = None):
        self.batch, self.L, self.H, self.P = x.shape
        self.G, self.N = B.shape[2], B.shape[3]
        self.table, self.Q, self.config = table, Q, config
        self.sub = sub or Q  # positions per tile inside a chunk (the forward's long chunks)
        self.rows = table.rows
        self.blocks = _blocks(self.P, self.N)
        self.precision = _dot_precision(x)
        self.dot_dtype = _dot_dtype(x)
        self.state_dtype = x.dtype if x.dtype in (torch.float16, torch.bfloat16) else torch.float32
        self.head_grid = (table.n_chunks, self.rows * self.H)  # chunk states
        self.chunk_grid = (table.n_chunks, self.rows * self.G)  # chunk scans: heads looped
        self.scan_fwd_grid = (table.n_chunks * (Q // self.sub), self.rows * self.G)
        self.entry_blocks = triton.cdiv(self.P * self.N, config.passing_block)
        self.passing_grid = (self.entry_blocks, self.rows * self.H)
        self.varlen = table.empty is not None

    def f32(self, *shape, device):
        return torch.empty(*shape, device=device, dtype=torch.float32)

    def chunk_states(self, device):
        """(rows, chunks, H, P, N): one state (or adjoint) per chunk and head."""
        return torch.empty(self.rows, self.table.n_chunks, self.H, self.P, self.N, device=device,
                           dtype=self.state_dtype)

    def tile_flags(self, dt_bias, dt_softplus) -> dict:
        return dict(HAS_BIAS=dt_bias is not None, SOFTPLUS=dt_softplus, Q=self.Q,
                    DOT_PRECISION=self.precision, DOT_DTYPE=self.dot_dtype, **self.blocks)

    def passing_shape(self) -> dict:
        config = self.config
        return dict(VARLEN=self.varlen, CHUNKS=config.passing_chunks, BLOCK=config.passing_block,
                    DOT_PRECISION=self.precision, DOT_DTYPE=self.dot_dtype,
                    num_warps=config.passing_warps)


def _chunk_local(a, b, dt, A, dt_bias, out, decay, adjoint: bool, flags: dict, run: _Launch):
    """Every chunk's own state from zero (a = x, b = B), with the chunks' decays into `decay`;
    or (adjoint) what every chunk adds to the adjoint arriving at its start (a = dy, b = C)."""
    table = run.table
    _chunk_state_kernel[run.head_grid](
        a, dt, A, dt_bias if dt_bias is not None else A, b, table.start, table.length, out, decay,
        run.H, run.G, run.P, run.N, table.n_chunks, *_strides(a, 4), *_strides(dt, 3),
        *_strides(b, 4), ADJOINT=adjoint, SUB=run.sub, num_warps=run.config.state_warps, **flags,
    )


def _states_after_chunks(x, dt, A, B, dt_bias, initial_states, want_final, flags: dict,
                         run: _Launch):
    """(states after every chunk, (rows, H, chunks) fp32 decays, final states or None)."""
    table, device = run.table, x.device
    states = run.chunk_states(device)
    decay = run.f32(run.rows, run.H, table.n_chunks, device=device)
    _chunk_local(x, B, dt, A, dt_bias, states, decay, False, flags, run)
    final = (torch.zeros(table.sequences, run.H, run.P, run.N, device=device, dtype=torch.float32)
             if want_final else None)
    _state_passing_fwd_kernel[run.passing_grid](
        states, decay, initial_states if initial_states is not None else decay,
        final if final is not None else decay, table.first, table.last, table.sequence,
        run.H, run.P * run.N, table.n_chunks, HAS_INIT=initial_states is not None,
        STORE_FINAL=want_final, **run.passing_shape(),
    )
    return states, decay, final


def _forward(x, dt, A, B, C, D, dt_bias, dt_softplus, initial_states, want_final, run: _Launch):
    """y, the final states (or None), the states after every chunk and the chunks' decays:
    chunk states, state passing, chunk scan."""
    table, device = run.table, x.device
    flags = run.tile_flags(dt_bias, dt_softplus)
    states, decay, final = _states_after_chunks(x, dt, A, B, dt_bias, initial_states, want_final,
                                                flags, run)
    y = torch.empty(x.shape, device=device, dtype=x.dtype)
    _chunk_scan_fwd_kernel[run.scan_fwd_grid](
        x, dt, A, dt_bias if dt_bias is not None else A, B, C, D if D is not None else A,
        initial_states if initial_states is not None else states, states,
        table.start, table.length, table.first, table.sequence, y,
        run.H, run.G, run.P, run.N, table.n_chunks,
        *_strides(x, 4), *_strides(dt, 3), *_strides(B, 4), *_strides(C, 4), *_strides(y, 4),
        HAS_D=D is not None, D_PER_P=D is not None and D.dim() == 2,
        HAS_INIT=initial_states is not None, VARLEN=run.varlen, SUB=run.sub,
        num_warps=run.config.scan_warps, **flags,
    )
    if final is not None and initial_states is not None and table.empty is not None:
        final = torch.where(table.empty[:, None, None, None], initial_states, final)
    return y, final, states, decay


def _backward(dy, dfinal, x, dt, A, B, C, D, dt_bias, dt_softplus, initial_states, run: _Launch,
              forward_states=None):
    """Gradients of x, dt, A, B, C, D, dt_bias, initial_states (None for absent inputs).

    `forward_states`: the forward's (states, decays) in this call's chunks, or None to
    recompute them."""
    table, c, device = run.table, run.table.n_chunks, x.device
    flags = run.tile_flags(dt_bias, dt_softplus)
    bias = dt_bias if dt_bias is not None else A
    init = initial_states if initial_states is not None else A
    if forward_states is not None:
        states, decay = forward_states  # h_c
    else:
        states, decay, _ = _states_after_chunks(x, dt, A, B, dt_bias, initial_states, False,
                                                flags, run)
    adjoints = run.chunk_states(device)
    _chunk_local(dy, C, dt, A, dt_bias, adjoints, decay, True, flags, run)
    dinit = (torch.zeros(table.sequences, run.H, run.P, run.N, device=device, dtype=torch.float32)
             if initial_states is not None else None)
    _adjoint_passing_kernel[run.passing_grid](
        adjoints, decay, dfinal if dfinal is not None else A, dinit if dinit is not None else A,
        table.first, table.last, table.sequence, run.H, run.P * run.N, c,
        HAS_DFINAL=dfinal is not None, STORE_DINIT=dinit is not None, **run.passing_shape(),
    )  # adjoints: u_c
    adjoint_flags = dict(HAS_DFINAL=dfinal is not None, VARLEN=run.varlen)
    dfinal_ptr = dfinal if dfinal is not None else A

    dx, dB, dC = _zero_grads_like(x, B, C)  # zeros: packed empty spans stay 0
    ddt = _zeros_in_layout(dt)
    kappa = run.f32(run.rows, run.H, c, device=device)  # exp(cs_last) <g_c, h_{c-1}>
    _chunk_scan_bwd_dx_kernel[run.chunk_grid](
        dt, A, bias, B, C, D if D is not None else A, dy, adjoints, dfinal_ptr, states, init,
        table.start, table.length, table.first, table.last, table.sequence, dx, kappa,
        run.H, run.G, run.P, run.N, c,
        *_strides(dt, 3), *_strides(B, 4), *_strides(C, 4), *_strides(dy, 4), *_strides(dx, 4),
        HAS_D=D is not None, D_PER_P=D is not None and D.dim() == 2,
        HAS_INIT=initial_states is not None, num_warps=run.config.scan_bwd_warps,
        **adjoint_flags, **flags,
    )
    dcs_part = run.f32(run.rows, run.H, c, run.Q, device=device)
    ddt_part = torch.empty_like(dcs_part)
    _chunk_scan_bwd_dC_kernel[run.chunk_grid](
        x, dt, A, bias, B, C, dy, states, init, table.start, table.length, table.first,
        table.sequence, dC, dcs_part, ddt_part, run.H, run.G, run.P, run.N, c,
        *_strides(x, 4), *_strides(dt, 3), *_strides(B, 4), *_strides(C, 4), *_strides(dy, 4),
        *_strides(dC, 4), HAS_INIT=initial_states is not None, VARLEN=run.varlen,
        num_warps=run.config.scan_bwd_warps, **flags,
    )
    del states
    dA_parts = run.f32(run.rows, run.H, c, device=device)
    dbias_parts = run.f32(run.rows, run.H, c, device=device) if dt_bias is not None else dA_parts
    dD_parts = run.f32(run.rows, run.H, c, run.P, device=device) if D is not None else dA_parts
    _chunk_scan_bwd_dB_kernel[run.chunk_grid](
        x, dt, bias, A, B, C, dy, adjoints, dfinal_ptr, dcs_part, ddt_part, kappa,
        table.start, table.length, table.last, table.sequence,
        dB, ddt, dA_parts, dbias_parts, dD_parts, run.H, run.G, run.P, run.N, c,
        *_strides(x, 4), *_strides(dt, 3), *_strides(B, 4), *_strides(C, 4), *_strides(dy, 4),
        *_strides(ddt, 3), *_strides(dB, 4),
        HAS_D=D is not None, num_warps=run.config.scan_bwd_warps, **adjoint_flags, **flags,
    )
    dA = dA_parts.sum((0, 2))
    dbias = dbias_parts.sum((0, 2)) if dt_bias is not None else None
    dD = None
    if D is not None:
        dD = dD_parts.sum((0, 2))  # (H, P)
        if D.dim() == 1:
            dD = dD.sum(-1)
    if dinit is not None and table.empty is not None and dfinal is not None:
        # an empty sequence's final state is its initial state
        dinit = torch.where(table.empty[:, None, None, None], dfinal, dinit)
    return dx, ddt, dA, dB, dC, dD, dbias, dinit


class SSDFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dt, A, B, C, D, dt_bias, initial_states, dt_softplus, want_final,
                cu_seqlens, Q, forward_Q):
        A32 = A.float().contiguous()
        init = initial_states.float().contiguous() if initial_states is not None else None
        table = chunk_table(x.shape[0], x.shape[1], forward_Q, cu_seqlens, x.device)
        one_tile = x.element_size() == 2 and forward_Q <= CONFIG.whole_tile_chunk
        run = _Launch(x, B, table, forward_Q, CONFIG, sub=forward_Q if one_tile else Q)
        y, final, states, decay = _forward(x, dt, A32, B, C, D, dt_bias, dt_softplus, init,
                                           want_final, run)
        keep = CONFIG.save_states and forward_Q == Q and any(ctx.needs_input_grad)
        ctx.kept_states = keep
        ctx.save_for_backward(x, dt, A32, B, C, D, dt_bias, init, states if keep else None,
                              decay if keep else None)
        ctx.forward_table = table if keep else None
        ctx.Q, ctx.config, ctx.cu_seqlens, ctx.dt_softplus = Q, CONFIG, cu_seqlens, dt_softplus
        ctx.dtypes = (A.dtype, None if D is None else D.dtype,
                      None if dt_bias is None else dt_bias.dtype,
                      None if initial_states is None else initial_states.dtype)
        return (y, final) if want_final else y

    @staticmethod
    def backward(ctx, dy, dfinal=None):
        x, dt, A32, B, C, D, dt_bias, init, states, decay = ctx.saved_tensors
        dfinal = dfinal.float().contiguous() if dfinal is not None else None
        dy = _with_int32_tiles(dy, ctx.Q)
        table = ctx.forward_table
        if table is None:
            table = chunk_table(x.shape[0], x.shape[1], ctx.Q, ctx.cu_seqlens, x.device)
        run = _Launch(x, B, table, ctx.Q, ctx.config)
        dx, ddt, dA, dB, dC, dD, dbias, dinit = _backward(
            dy, dfinal, x, dt, A32, B, C, D, dt_bias, ctx.dt_softplus, init, run,
            (states, decay) if ctx.kept_states else None)
        A_dtype, D_dtype, bias_dtype, init_dtype = ctx.dtypes
        cast = lambda g, dtype: g.to(dtype) if g is not None else None  # noqa: E731
        return (dx, ddt, dA.to(A_dtype), dB, dC, cast(dD, D_dtype), cast(dbias, bias_dtype),
                cast(dinit, init_dtype), None, None, None, None, None)


def _empty_call(x, B, initial_states, return_final_states, cu_seqlens):
    """L = 0: no chunk to run; y is empty and every final state is the initial one."""
    H, P, N = x.shape[2], x.shape[3], B.shape[3]
    rows = x.shape[0] if cu_seqlens is None else cu_seqlens.numel() - 1
    y = x.new_empty(x.shape)
    if not return_final_states:
        return y
    final = (initial_states.float() if initial_states is not None
             else torch.zeros(rows, H, P, N, device=x.device, dtype=torch.float32))
    return y, final


def ssd_triton(x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False,
               initial_states=None, return_final_states=False, cu_seqlens=None, *, chunk_size=64):
    """SSD on the GPU (or the Triton interpreter): see `ssd_ref` for shapes and math.

    bf16/fp16/fp32 inputs (x, B, C in one dtype), fp32 states and accumulation; y in x's dtype,
    final states fp32. `chunk_size` is rounded up to a power of two >= 16 (`kernel_chunk_size`;
    `CONFIG.chunk_size` overrides it). Differentiable in x, dt, A, B, C, D, z, dt_bias and initial_states.
    """
    check_ssd_shapes(x, dt, A, B, C, D, z, dt_bias, initial_states, cu_seqlens)
    for name, tensor in (("x", x), ("dt", dt), ("B", B), ("C", C)):
        check_fast_dtype("ssd_triton", name, tensor)
    if B.dtype != x.dtype or C.dtype != x.dtype:
        raise TypeError(f"ssd_triton: B and C must have x's dtype {x.dtype}, got {B.dtype} and "
                        f"{C.dtype}; cast them, or use backend='reference'")
    Q = kernel_chunk_size(CONFIG.chunk_size or chunk_size)
    if x.dtype == torch.float32:
        Q = min(Q, CONFIG.fp32_max_chunk)
    # the forward keeps its states for a backward in the backward's chunks; else it may run longer ones
    backward_follows = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, dt, A, B, C, D, dt_bias, initial_states))
    forward_Q = Q if backward_follows and CONFIG.save_states else max(
        Q, kernel_chunk_size(CONFIG.forward_chunk or Q))
    B, C = (_with_int32_tiles(t, forward_Q) for t in (B, C))
    x = _with_int32_tiles(x, forward_Q)
    if x.shape[1] == 0:
        return _empty_call(x, B, initial_states, return_final_states, cu_seqlens)
    result = SSDFunction.apply(x, dt, A, B, C, D, dt_bias, initial_states, dt_softplus,
                               return_final_states, cu_seqlens, Q, forward_Q)
    if z is None:
        return result
    if return_final_states:
        y, final = result
        return (y * F.silu(z.float())).to(x.dtype), final
    return (result * F.silu(z.float())).to(x.dtype)
