"""Triton kernels of the selective scan (Mamba-1 S6) for training: backward, and a forward for N > 16.

Shapes follow `genossm.kernels.selective_scan.reference` (mamba_ssm's layouts); the launcher and
autograd Function live in `chunk_scan.py`. Both directions use

    a_t = exp(delta_t * A)      b_t = delta_t * u_t * B_t
    x_t = a_t * x_{t-1} + b_t   (a_t = 0 at a sequence start, whose initial state enters
                                 through b_t += a_t * h0)

`_scan_fwd_kernel` (used only when N > 16, where the generated sequential forward of
`recurrent_scan_kernels.py` stops) scans (BLOCK_H, CHUNK, BLOCK_N) tiles with
`tl.associative_scan` and saves the state at every chunk end, (B, n_chunks, H, N) fp32 — the
layout the sequential forward saves too.

Backward, per chunk of T positions from the last, one state n at a time (`_scan_bwd_kernel`):
with the adjoint g_t = dL/dx_t,
    g_t = a_{t+1} g_{t+1} + dy_t C_t (+ d last_state at sequence ends)   (reverse scan)
    a_t x_{t-1} = x_t - b_t   (no shifted copy of the states is needed)
    d delta_t = sum_n g_t (u_t B_t + A (x_t - b_t)),  du_t = delta_t sum_n g_t B_t + D dy_t,
    dB_t = sum_h g_t delta_t u_t,  dC_t = sum_h dy_t x_t,  dA = sum_t g_t (x_t - b_t) delta_t.
The tiles are (BLOCK_C channels, T positions), time the fast axis, so each thread scans a run of
consecutive positions in registers; sums over n are register accumulations over the loop. The
sequence is cut into segments of whole chunks run by separate programs so that batch-1 inputs
fill the GPU: `_scan_bwd_carry_kernel` gives each segment's adjoint at its start with nothing
flowing in and the product of its decays, `_scan_bwd_chain_kernel` links them from the last
segment back. Offsets are int64 wherever batch * channels * length can pass 2^31. Figures and
what bounds these kernels: docs/kernels/selective_scan.md.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .recurrent_scan_kernels import _per_channel, _softplus  # shared with the sequential kernels

LN2 = tl.constexpr(0.6931471805599453)


@triton.jit
def _affine_combine(a_left, b_left, a_right, b_right):
    """Compose x -> a_left x + b_left, then x -> a_right x + b_right (left comes first)."""
    return a_left * a_right, a_right * b_left + b_right


@triton.jit
def _load_delta(delta_ptr, offs, mask, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """delta after bias and softplus (BLOCK_H, CHUNK) fp32, and the pre-softplus value."""
    # one return per helper: Triton compiles the code after an early return even when the
    # branch is a constexpr, and rejects returns of different shapes
    raw = tl.load(delta_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        raw = raw + bias[:, None]
    delta = raw
    if SOFTPLUS:
        delta = _softplus(raw)
    return delta, raw


@triton.jit
def _load_bc(ptr, batch, group, n_groups, L, offs_h, offs_n, t, mask_n, mask_t, N,
             VARIES: tl.constexpr):
    """B or C as (BLOCK_H | 1, CHUNK | 1, BLOCK_N) fp32: the group's rows, or the (H, N) matrix."""
    if VARIES:
        row = (batch.to(tl.int64) * n_groups + group) * N * L  # int64: B*G*N*L can pass 2^31
        vals = tl.load(
            ptr + row + t[:, None] + offs_n[None, :].to(tl.int64) * L,
            mask=mask_t[:, None] & mask_n[None, :],
            other=0.0,
        ).to(tl.float32)[None, :, :]  # (1, CHUNK, BLOCK_N)
    else:
        vals = tl.load(
            ptr + offs_h[:, None] * N + offs_n[None, :], mask=mask_n[None, :], other=0.0
        ).to(tl.float32)[:, None, :]  # (BLOCK_H, 1, BLOCK_N)
    return vals


@triton.jit
def _sequence_bounds(seq_ptr, t, mask_t, L, batch, VARLEN: tl.constexpr):
    """Per position: its sequence's row in the state tensors, is it a start, is it an end."""
    if VARLEN:
        seq = tl.load(seq_ptr + t, mask=mask_t, other=-1)
        prev = tl.load(seq_ptr + t - 1, mask=mask_t & (t > 0), other=-1)
        nxt = tl.load(seq_ptr + t + 1, mask=mask_t & (t + 1 < L), other=-1)
        is_start = mask_t & (seq != prev)
        is_end = mask_t & (seq != nxt)
        seq = seq.to(tl.int64)
    else:
        seq = tl.zeros_like(t).to(tl.int64) + batch
        is_start = mask_t & (t == 0)
        is_end = mask_t & (t == L - 1)
    return seq, is_start, is_end


@triton.jit
def _next_is_start(seq_ptr, t, L, VARLEN: tl.constexpr):
    """True where position t + 1 starts a sequence or lies past the end: no adjoint flows back."""
    stop = t + 1 >= L
    if VARLEN:
        here = tl.load(seq_ptr + t, mask=t < L, other=-1)
        nxt = tl.load(seq_ptr + t + 1, mask=t + 1 < L, other=-2)
        stop = stop | (here != nxt)
    return stop


@triton.jit
def _chunk_states(u, delta, A2, Bv, t0_state, init_ptr, seq, is_start, mask_t, offs_h, offs_n,
                  mask_n, H, N, HAS_INIT: tl.constexpr):
    """States x (BLOCK_H, CHUNK, BLOCK_N) of one chunk, the exps a and inputs b used for them."""
    a = tl.exp2(delta[:, :, None] * A2[:, None, :])  # (BLOCK_H, CHUNK, BLOCK_N)
    b = (delta * u)[:, :, None] * Bv  # (BLOCK_H, CHUNK, BLOCK_N)
    start3 = is_start[None, :, None]
    b_scan = b
    if HAS_INIT:
        h0 = tl.load(
            init_ptr + (seq[None, :, None] * H + offs_h[:, None, None]) * N + offs_n[None, None, :],
            mask=start3 & mask_n[None, None, :],
            other=0.0,
        ).to(tl.float32)  # (BLOCK_H, CHUNK, BLOCK_N), non-zero only at sequence starts
        b_scan = b + a * h0
    # a = 0 restarts the state; a = 1 past the end keeps the last state in the final slot
    a_scan = tl.where(start3, 0.0, tl.where(mask_t[None, :, None], a, 1.0))
    a_cum, b_cum = tl.associative_scan((a_scan, b_scan), 1, _affine_combine)
    x = b_cum + a_cum * t0_state[:, None, :]
    return x, a, b


@triton.jit
def _scan_fwd_kernel(
    u_ptr, delta_ptr, A2_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, init_ptr, seq_ptr,
    out_ptr, last_ptr, ckpt_ptr,
    H, L, N, heads_per_group, n_groups, n_chunks,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_INIT: tl.constexpr, STORE_LAST: tl.constexpr, STORE_CKPT: tl.constexpr,
    VARLEN: tl.constexpr, B_VARIES: tl.constexpr, C_VARIES: tl.constexpr,
    BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr,
):
    pid_h = tl.program_id(0)
    batch = tl.program_id(1)
    offs_h = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)  # BLOCK_H divides H/G: no mask needed
    offs_n = tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    offs_c = tl.arange(0, CHUNK)
    group = (pid_h * BLOCK_H) // heads_per_group
    rows = (batch.to(tl.int64) * H + offs_h) * L  # (BLOCK_H,) int64 start of each channel's row
    A2 = tl.load(A2_ptr + offs_h[:, None] * N + offs_n[None, :], mask=mask_n[None, :], other=0.0)
    bias = tl.zeros([BLOCK_H], dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_h).to(tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + offs_h).to(tl.float32)

    state = tl.zeros([BLOCK_H, BLOCK_N], dtype=tl.float32)
    for chunk in range(0, n_chunks):
        t = chunk * CHUNK + offs_c  # (CHUNK,) positions
        mask_t = t < L
        offs = rows[:, None] + t[None, :]  # (BLOCK_H, CHUNK) int64
        mask = mask_t[None, :]
        u = tl.load(u_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        delta, _ = _load_delta(delta_ptr, offs, mask, bias, HAS_BIAS, SOFTPLUS)
        seq, is_start, is_end = _sequence_bounds(seq_ptr, t, mask_t, L, batch, VARLEN)
        Bv = _load_bc(B_ptr, batch, group, n_groups, L, offs_h, offs_n, t, mask_n, mask_t, N, B_VARIES)
        x, _, _ = _chunk_states(u, delta, A2, Bv, state, init_ptr, seq, is_start, mask_t, offs_h,
                                offs_n, mask_n, H, N, HAS_INIT)
        Cv = _load_bc(C_ptr, batch, group, n_groups, L, offs_h, offs_n, t, mask_n, mask_t, N, C_VARIES)
        y = tl.sum(x * Cv, axis=2)  # (BLOCK_H, CHUNK)
        if HAS_D:
            y += Dv[:, None] * u
        if HAS_Z:
            z = tl.load(z_ptr + offs, mask=mask, other=0.0).to(tl.float32)
            y = y * z * tl.sigmoid(z)
        tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)
        state = tl.sum(tl.where(offs_c[None, :, None] == CHUNK - 1, x, 0.0), axis=1)
        if STORE_CKPT:
            ckpt = ckpt_ptr + ((batch.to(tl.int64) * n_chunks + chunk) * H + offs_h[:, None]) * N
            tl.store(ckpt + offs_n[None, :], state, mask=mask_n[None, :])
        if STORE_LAST:
            tl.store(
                last_ptr + (seq[None, :, None] * H + offs_h[:, None, None]) * N + offs_n[None, None, :],
                x,
                mask=is_end[None, :, None] & mask_n[None, None, :],
            )


@triton.jit
def _adjoint_inputs(delta_ptr, z_ptr, dout_ptr, offs, mask, mask_c, t, L, bias,
                    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """dy = dL/d(y before the gate), dout, z, sigmoid(z), and delta at t + 1, as (BLOCK_C, T) fp32."""
    dout = tl.load(dout_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    z = dout
    gate = dout
    dy = dout
    if HAS_Z:
        z = tl.load(z_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        gate = tl.sigmoid(z)
        dy = dout * z * gate
    next_mask = mask_c[:, None] & (t + 1 < L)[None, :]
    next_delta, _ = _load_delta(delta_ptr, offs + 1, next_mask, bias, HAS_BIAS, SOFTPLUS)
    next_delta = tl.where(next_mask, next_delta, 0.0)
    return dy, dout, z, gate, next_delta


@triton.jit
def _state_row(ptr, bc_row, offs_c, mask_c, n, t, mask_t, L, N, VARIES: tl.constexpr):
    """B or C of state n: (1, T) from the group's row when input-dependent, else (BLOCK_C, 1);
    zeros once n reaches N (the prefetch past the last state)."""
    if VARIES:
        row = tl.load(ptr + bc_row + n * L + t, mask=mask_t & (t * 0 + n < N), other=0.0)
        out = row.to(tl.float32)[None, :]
    else:
        col = tl.load(ptr + offs_c * N + n, mask=mask_c & (offs_c * 0 + n < N), other=0.0)
        out = col.to(tl.float32)[:, None]
    return out


@triton.jit
def _pick(tile, offs_n, n):
    """Column n of a (BLOCK_C, BLOCK_N) register tile as (BLOCK_C,)."""
    return tl.sum(tl.where(offs_n[None, :] == n, tile, 0.0), axis=1)


@triton.jit
def _put(tile, offs_n, n, values):
    """The tile with column n replaced by values (BLOCK_C,)."""
    return tl.where(offs_n[None, :] == n, values[:, None], tile)


@triton.jit
def _scan_bwd_carry_kernel(
    delta_ptr, A2_ptr, C_ptr, z_ptr, bias_ptr, seq_ptr, dout_ptr, dlast_ptr,
    local_ptr, decay_ptr,
    H, L, N, heads_per_group, n_groups, n_chunks, seg_chunks, n_segs,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_DLAST: tl.constexpr,
    VARLEN: tl.constexpr, C_VARIES: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_N: tl.constexpr,
    T: tl.constexpr,
):
    """Per segment: the adjoint at its first position with nothing flowing in from its right
    (`local`) and the factor that multiplies what does flow in (`decay`), both (B, S, H, N).

    g_start = sum_t w_t (dy_t C_t + d last_state_t) with w_t = prod_{r=start}^{t-1} alpha_r,
    alpha_r = exp(delta_{r+1} A) (0 where r + 1 starts a sequence). The weights are a running
    sum of delta in the exponent, so the segment is walked forward with no scan at all; past the
    first sequence boundary nothing reaches the start (w = 0).
    """
    pid_c = tl.program_id(0)
    seg = tl.program_id(1)
    batch = tl.program_id(2)
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < H
    offs_t = tl.arange(0, T)
    offs_n = tl.arange(0, BLOCK_N)
    mask_cn = mask_c[:, None] & (offs_n < N)[None, :]
    group = (pid_c * BLOCK_C) // heads_per_group
    rows = (batch.to(tl.int64) * H + offs_c) * L
    bc_row = (batch.to(tl.int64) * n_groups + group) * N * L
    bias = _per_channel(bias_ptr, offs_c, mask_c, HAS_BIAS)
    A2 = tl.load(A2_ptr + offs_c[:, None] * N + offs_n[None, :], mask=mask_cn, other=0.0)
    first = seg * seg_chunks
    last = tl.minimum(first + seg_chunks, n_chunks)
    exponent = tl.zeros([BLOCK_C], dtype=tl.float32)  # sum of delta from start + 1 to the chunk's start
    dead = tl.zeros([1], dtype=tl.int32)  # 1 once a sequence boundary has been passed
    local = tl.zeros([BLOCK_C, BLOCK_N], dtype=tl.float32)
    for chunk in range(first, last):
        t = chunk * T + offs_t
        mask_t = t < L
        mask = mask_c[:, None] & mask_t[None, :]
        offs = rows[:, None] + t[None, :]
        seq, is_start, is_end = _sequence_bounds(seq_ptr, t, mask_t, L, batch, VARLEN)
        stop = _next_is_start(seq_ptr, t, L, VARLEN).to(tl.int32)  # (T,)
        dy, _, _, _, next_delta = _adjoint_inputs(delta_ptr, z_ptr, dout_ptr, offs, mask, mask_c, t,
                                                  L, bias, HAS_Z, HAS_BIAS, SOFTPLUS)
        # exclusive prefix sums: what lies between the segment start and position t
        before = exponent[:, None] + tl.cumsum(next_delta, axis=1) - next_delta  # (BLOCK_C, T)
        alive = (dead + tl.cumsum(stop, axis=0) - stop) == 0  # (T,)
        c_next = _state_row(C_ptr, bc_row, offs_c, mask_c, 0, t, mask_t, L, N, C_VARIES)
        for n in range(0, N):
            c_n = c_next  # loads run one state ahead so their latency hides behind the math
            c_next = _state_row(C_ptr, bc_row, offs_c, mask_c, n + 1, t, mask_t, L, N, C_VARIES)
            beta = dy * c_n
            if HAS_DLAST:
                beta += tl.load(dlast_ptr + (seq[None, :] * H + offs_c[:, None]) * N + n,
                                mask=is_end[None, :] & mask_c[:, None], other=0.0)
            a2 = _pick(A2, offs_n, n)
            weight = tl.where(alive[None, :], tl.exp2(before * a2[:, None]), 0.0)
            local = _put(local, offs_n, n, _pick(local, offs_n, n) + tl.sum(weight * beta, axis=1))
        exponent += tl.sum(next_delta, axis=1)
        dead += tl.sum(stop, axis=0)
    out = ((batch.to(tl.int64) * n_segs + seg) * H + offs_c[:, None]) * N + offs_n[None, :]
    tl.store(local_ptr + out, local, mask=mask_cn)
    decay = tl.where(dead == 0, tl.exp2(exponent[:, None] * A2), 0.0)
    tl.store(decay_ptr + out, decay, mask=mask_cn)


@triton.jit
def _scan_bwd_chain_kernel(local_ptr, decay_ptr, carry_ptr, HN, n_segs, BLOCK: tl.constexpr):
    """carry[s] = adjoint at the first position after segment s, chained from the last segment."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < HN
    batch = tl.program_id(1).to(tl.int64)
    running = tl.zeros([BLOCK], dtype=tl.float32)
    for step in range(0, n_segs):
        base = (batch * n_segs + n_segs - 1 - step) * HN
        tl.store(carry_ptr + base + offs, running, mask=mask)
        local = tl.load(local_ptr + base + offs, mask=mask, other=0.0)
        decay = tl.load(decay_ptr + base + offs, mask=mask, other=0.0)
        running = local + decay * running


@triton.jit
def _scan_bwd_kernel(
    u_ptr, delta_ptr, A2_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, init_ptr, seq_ptr,
    ckpt_ptr, carry_ptr, dout_ptr, dlast_ptr,
    du_ptr, ddelta_ptr, dz_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr, dinit_ptr,
    H, L, N, heads_per_group, n_groups, n_chunks, seg_chunks, n_segs,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_INIT: tl.constexpr, HAS_DLAST: tl.constexpr,
    VARLEN: tl.constexpr, B_VARIES: tl.constexpr, C_VARIES: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
):
    """Backward of one segment of chunks, last chunk first, one state n at a time.

    Tiles are (BLOCK_C channels, T positions) with time the fast axis, so each thread holds a run
    of consecutive positions of one channel: both scans (states forward, adjoint in reverse) run
    mostly inside a thread and the sums over states are plain register sums over the n loop.
    Per-state values that live across chunks (the adjoint at the first position after the
    chunk, dA, time-invariant dB/dC) are (BLOCK_C, BLOCK_N) register tiles; B/C rows are loaded
    one state ahead. dB/dC of input-dependent B/C are summed over the channel tile, then one
    atomic add per (position, state) and tile; the other sums leave as per-(batch, segment)
    partials reduced by the launcher.
    """
    pid_c = tl.program_id(0)
    seg = tl.program_id(1)
    batch = tl.program_id(2)
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < H
    offs_t = tl.arange(0, T)
    offs_n = tl.arange(0, BLOCK_N)
    mask_cn = mask_c[:, None] & (offs_n < N)[None, :]
    group = (pid_c * BLOCK_C) // heads_per_group  # tiles never straddle groups (launcher)
    rows = (batch.to(tl.int64) * H + offs_c) * L  # (BLOCK_C,) int64
    bc_row = (batch.to(tl.int64) * n_groups + group) * N * L  # int64: B*G*N*L can pass 2^31
    cn = ((batch.to(tl.int64) * n_segs + seg) * H + offs_c[:, None]) * N + offs_n[None, :]
    bias = _per_channel(bias_ptr, offs_c, mask_c, HAS_BIAS)
    d_skip = _per_channel(D_ptr, offs_c, mask_c, HAS_D)
    dD_acc = tl.zeros([BLOCK_C], dtype=tl.float32)
    dbias_acc = tl.zeros([BLOCK_C], dtype=tl.float32)
    carry = tl.load(carry_ptr + cn, mask=mask_cn, other=0.0)  # adjoint after the segment, per state
    dA_acc = tl.zeros([BLOCK_C, BLOCK_N], dtype=tl.float32)
    dB_acc = tl.zeros([BLOCK_C, BLOCK_N], dtype=tl.float32)  # time-invariant B only
    dC_acc = tl.zeros([BLOCK_C, BLOCK_N], dtype=tl.float32)  # time-invariant C only

    first = seg * seg_chunks
    last = tl.minimum(first + seg_chunks, n_chunks)
    for step in range(0, last - first):
        chunk = last - 1 - step
        t = chunk * T + offs_t  # (T,)
        mask_t = t < L
        mask = mask_c[:, None] & mask_t[None, :]
        offs = rows[:, None] + t[None, :]  # (BLOCK_C, T) int64
        seq, is_start, is_end = _sequence_bounds(seq_ptr, t, mask_t, L, batch, VARLEN)
        stop = _next_is_start(seq_ptr, t, L, VARLEN)
        # only what the state loop needs stays live across it; u, dout, z are read again after it
        # (cache hits) to keep the kernel under the register budget
        u = tl.load(u_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        delta, _ = _load_delta(delta_ptr, offs, mask, bias, HAS_BIAS, SOFTPLUS)
        delta = tl.where(mask, delta, 0.0)  # past the end: a = 1, b = 0, the state stays put
        delta_u = delta * u
        dy, _, _, _, next_delta = _adjoint_inputs(delta_ptr, z_ptr, dout_ptr, offs, mask, mask_c, t,
                                                  L, bias, HAS_Z, HAS_BIAS, SOFTPLUS)
        y = tl.zeros([BLOCK_C, T], dtype=tl.float32)  # y before the gate, for dz
        g_B = tl.zeros([BLOCK_C, T], dtype=tl.float32)  # sum_n g B
        g_decayed_A = tl.zeros([BLOCK_C, T], dtype=tl.float32)  # sum_n g (x - b) A
        prev_chunk = tl.maximum(chunk - 1, 0)  # chunk 0 needs no saved state: a_0 = 0 restarts it
        # per-state columns (A log2(e), the state saved at the previous chunk's end) are loaded
        # one state ahead rather than picked out of register tiles: a pick is a reduction across
        # the lanes that hold the tile's columns, a load from L1 is off the dependent chain
        saved_rows = ((batch.to(tl.int64) * n_chunks + prev_chunk) * H + offs_c) * N
        saved_mask = mask_c & (offs_c * 0 + chunk > 0)
        b_next = _state_row(B_ptr, bc_row, offs_c, mask_c, 0, t, mask_t, L, N, B_VARIES)
        c_next = _state_row(C_ptr, bc_row, offs_c, mask_c, 0, t, mask_t, L, N, C_VARIES)
        a2_next = tl.load(A2_ptr + offs_c * N, mask=mask_c, other=0.0)
        saved_next = tl.load(ckpt_ptr + saved_rows, mask=saved_mask, other=0.0)
        for n in range(0, N):
            b_n = b_next  # loads run one state ahead so their latency hides behind the math
            c_n = c_next
            a2 = a2_next  # (BLOCK_C,) A log2(e)
            saved = saved_next  # (BLOCK_C,) the state at the previous chunk's end
            more = offs_c * 0 + n + 1 < N  # a tensor: the interpreter rejects a bool mask
            b_next = _state_row(B_ptr, bc_row, offs_c, mask_c, n + 1, t, mask_t, L, N, B_VARIES)
            c_next = _state_row(C_ptr, bc_row, offs_c, mask_c, n + 1, t, mask_t, L, N, C_VARIES)
            a2_next = tl.load(A2_ptr + offs_c * N + n + 1, mask=mask_c & more, other=0.0)
            saved_next = tl.load(ckpt_ptr + saved_rows + n + 1, mask=saved_mask & more, other=0.0)
            # states of this chunk, recomputed from the one saved at the previous chunk's end
            a = tl.exp2(delta * a2[:, None])
            b = delta_u * b_n
            b_scan = b
            if HAS_INIT:  # a sequence's initial state enters through b at its first position
                h0 = tl.load(init_ptr + (seq[None, :] * H + offs_c[:, None]) * N + n,
                             mask=is_start[None, :] & mask_c[:, None], other=0.0).to(tl.float32)
                b_scan = b + a * h0
            a_scan = tl.where(is_start[None, :], 0.0, a)
            # the saved state enters through b at the chunk's first position, so the scan's
            # second output is x itself (one tile fewer than adding a_cum * x_saved afterwards)
            x_in = a_scan * saved[:, None]
            b_scan += tl.where(offs_t[None, :] == 0, x_in, 0.0)
            _, x = tl.associative_scan((a_scan, b_scan), 1, _affine_combine)
            # the terms that need x itself come first, so that only x - b outlives the next scan
            if HAS_Z:
                y += x * c_n
            if C_VARIES:
                tl.atomic_add(dC_ptr + bc_row + n * L + t, tl.sum(dy * x, axis=0), mask=mask_t, sem="relaxed")
            else:
                dC_acc = _put(dC_acc, offs_n, n, _pick(dC_acc, offs_n, n) + tl.sum(dy * x, axis=1))
            decayed = x - b  # a_t x_{t-1}, the initial state's share included
            # adjoint g_t = a_{t+1} g_{t+1} + dy_t C_t (+ d last_state at sequence ends)
            a_next = tl.where(stop[None, :], 0.0, tl.exp2(next_delta * a2[:, None]))
            beta = dy * c_n
            if HAS_DLAST:
                beta += tl.load(dlast_ptr + (seq[None, :] * H + offs_c[:, None]) * N + n,
                                mask=is_end[None, :] & mask_c[:, None], other=0.0)
            # likewise the adjoint after the chunk enters at its last position
            g_in = a_next * _pick(carry, offs_n, n)[:, None]
            beta += tl.where(offs_t[None, :] == T - 1, g_in, 0.0)
            _, g = tl.associative_scan((a_next, beta), 1, _affine_combine, reverse=True)
            carry = _put(carry, offs_n, n, tl.sum(tl.where(offs_t[None, :] == 0, g, 0.0), axis=1))
            g_decayed = g * decayed
            g_B += g * b_n
            g_decayed_A += g_decayed * a2[:, None]
            dA_acc = _put(dA_acc, offs_n, n, _pick(dA_acc, offs_n, n) + tl.sum(g_decayed * delta, axis=1))
            if B_VARIES:
                tl.atomic_add(dB_ptr + bc_row + n * L + t, tl.sum(g * delta_u, axis=0), mask=mask_t, sem="relaxed")
            else:
                dB_acc = _put(dB_acc, offs_n, n, _pick(dB_acc, offs_n, n) + tl.sum(g * delta_u, axis=1))
            if HAS_INIT:
                tl.store(dinit_ptr + (seq[None, :] * H + offs_c[:, None]) * N + n, g * a,
                         mask=is_start[None, :] & mask_c[:, None])

        u = tl.load(u_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        du = delta * g_B
        if HAS_D:
            du += d_skip[:, None] * dy
            dD_acc += tl.sum(dy * u, axis=1)
        ddelta = u * g_B + g_decayed_A * LN2  # d exp2(delta A2) / d delta = a A2 ln 2 = a A
        if SOFTPLUS:
            _, delta_raw = _load_delta(delta_ptr, offs, mask, bias, HAS_BIAS, SOFTPLUS)
            ddelta = ddelta * tl.sigmoid(delta_raw)
        ddelta = tl.where(mask, ddelta, 0.0)
        dbias_acc += tl.sum(ddelta, axis=1)
        tl.store(du_ptr + offs, du.to(du_ptr.dtype.element_ty), mask=mask)
        tl.store(ddelta_ptr + offs, ddelta.to(ddelta_ptr.dtype.element_ty), mask=mask)
        if HAS_Z:
            if HAS_D:
                y += d_skip[:, None] * u
            dout = tl.load(dout_ptr + offs, mask=mask, other=0.0).to(tl.float32)
            z = tl.load(z_ptr + offs, mask=mask, other=0.0).to(tl.float32)
            gate = tl.sigmoid(z)
            dz = dout * y * gate * (1.0 + z * (1.0 - gate))
            tl.store(dz_ptr + offs, dz.to(dz_ptr.dtype.element_ty), mask=mask)

    tl.store(dA_ptr + cn, dA_acc, mask=mask_cn)
    if not B_VARIES:
        tl.store(dB_ptr + cn, dB_acc, mask=mask_cn)
    if not C_VARIES:
        tl.store(dC_ptr + cn, dC_acc, mask=mask_cn)
    part_rows = (batch.to(tl.int64) * n_segs + seg) * H + offs_c
    if HAS_D:
        tl.store(dD_ptr + part_rows, dD_acc, mask=mask_c)
    if HAS_BIAS:
        tl.store(dbias_ptr + part_rows, dbias_acc, mask=mask_c)
