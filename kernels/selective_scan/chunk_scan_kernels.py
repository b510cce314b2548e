"""Triton kernels of the selective scan (Mamba-1 S6): forward, backward carries, backward.

Shapes follow `genossm.kernels.selective_scan.reference` (mamba_ssm's layouts); the launcher and
autograd Function live in `chunk_scan.py`. Every program owns a tile of BLOCK_H channels (all in
one B/C group) of one batch row and walks the positions in chunks of CHUNK:

    a_t = exp(delta_t * A)      b_t = delta_t * u_t * B_t        (tile (BLOCK_H, CHUNK, BLOCK_N))
    x_t = a_t * x_{t-1} + b_t   by `tl.associative_scan` inside the chunk, the state carried
                                 between chunks in registers.

Sequence starts (t = 0, or a `cu_seqlens` boundary) set a_t = 0 so the state restarts; the
initial state of that sequence enters through b_t += exp(delta_t * A) * h0. The forward saves
the state at every chunk end (fp32, (B, n_chunks, H, N)) so the backward recomputes each chunk's
states from there instead of storing them.

Backward, per chunk in reverse: with the adjoint g_t = dL/dx_t,
    g_t = a_{t+1} g_{t+1} + dy_t C_t (+ d last_state at sequence ends)   (reverse scan)
    a_t x_{t-1} = x_t - b_t   (no shifted copy of the states is needed)
    d delta_t = sum_n g_t (u_t B_t + A (x_t - b_t)),  du_t = delta_t sum_n g_t B_t + D dy_t,
    dB_t = sum_h g_t delta_t u_t,  dC_t = sum_h dy_t x_t,  dA = sum_t g_t (x_t - b_t) delta_t.
dB/dC are reduced over the channel tile in registers, so one fp32 atomic add per (n, t) and tile
reaches memory instead of one per channel. a_{t+1} comes from a second exp of the shifted delta
(cheaper than shuffling a register tile by one position in Triton).

The sequence is cut into segments of whole chunks run by separate programs so that batch-1
inputs with few channels still fill the GPU: a first backward kernel scans each segment's
adjoint with zero carry (local adjoint at its start and the product of its decays), a tiny
kernel chains those from the last segment back, and the main backward starts each segment from
its true carry.

The tiles are (BLOCK_H, CHUNK, BLOCK_N): of the two orientations timed on an H100 this one gave
the faster forward + backward (docs/kernels/selective_scan.md has the figures and what limits
them). Offsets are int64 wherever batch * channels * length can pass 2^31.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _affine_combine(a_left, b_left, a_right, b_right):
    """Compose x -> a_left x + b_left, then x -> a_right x + b_right (left comes first)."""
    return a_left * a_right, a_right * b_left + b_right


@triton.jit
def _softplus(x):
    # torch's threshold of 20; exp(x) alone below -20 where log(1 + exp(x)) rounds to 0
    return tl.where(x > 20.0, x, tl.where(x < -20.0, tl.exp(x), tl.log(1.0 + tl.exp(x))))


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
def _chunk_adjoint_terms(delta_ptr, z_ptr, dout_ptr, dlast_ptr, seq_ptr, offs, t, mask_t, L,
                         A2, Cv, bias, seq, is_end, offs_h, offs_n, mask_n, H, N,
                         HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
                         HAS_DLAST: tl.constexpr, VARLEN: tl.constexpr):
    """The reverse scan's pairs (a_{t+1}, dy_t C_t + d last_state) and dy, silu(z), z."""
    mask = mask_t[None, :]
    dout = tl.load(dout_ptr + offs, mask=mask, other=0.0).to(tl.float32)  # (BLOCK_H, CHUNK)
    z = dout
    gate = dout
    dy = dout
    if HAS_Z:
        z = tl.load(z_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        gate = tl.sigmoid(z)
        dy = dout * z * gate
    next_delta, _ = _load_delta(delta_ptr, offs + 1, (t + 1 < L)[None, :], bias, HAS_BIAS, SOFTPLUS)
    a_next = tl.exp2(next_delta[:, :, None] * A2[:, None, :])  # (BLOCK_H, CHUNK, BLOCK_N)
    stop = _next_is_start(seq_ptr, t, L, VARLEN)
    a_next = tl.where(stop[None, :, None], 0.0, a_next)
    c = dy[:, :, None] * Cv  # (BLOCK_H, CHUNK, BLOCK_N)
    if HAS_DLAST:
        c += tl.load(
            dlast_ptr + (seq[None, :, None] * H + offs_h[:, None, None]) * N + offs_n[None, None, :],
            mask=is_end[None, :, None] & mask_n[None, None, :],
            other=0.0,
        )
    return a_next, c, dy, dout, z, gate


@triton.jit
def _scan_bwd_carry_kernel(
    delta_ptr, A2_ptr, C_ptr, z_ptr, bias_ptr, seq_ptr, dout_ptr, dlast_ptr,
    local_ptr, decay_ptr,
    H, L, N, heads_per_group, n_groups, n_chunks, seg_chunks, n_segs,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_DLAST: tl.constexpr,
    VARLEN: tl.constexpr, C_VARIES: tl.constexpr,
    BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr,
):
    """Per segment: adjoint at its first position with zero carry in, and its total decay."""
    pid_h = tl.program_id(0)
    seg = tl.program_id(1)
    batch = tl.program_id(2)
    offs_h = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    offs_n = tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    offs_c = tl.arange(0, CHUNK)
    group = (pid_h * BLOCK_H) // heads_per_group
    rows = (batch.to(tl.int64) * H + offs_h) * L
    A2 = tl.load(A2_ptr + offs_h[:, None] * N + offs_n[None, :], mask=mask_n[None, :], other=0.0)
    bias = tl.zeros([BLOCK_H], dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_h).to(tl.float32)

    first = seg * seg_chunks
    last = tl.minimum(first + seg_chunks, n_chunks)
    adjoint = tl.zeros([BLOCK_H, BLOCK_N], dtype=tl.float32)
    decay = tl.zeros([BLOCK_H, BLOCK_N], dtype=tl.float32) + 1.0
    for step in range(0, last - first):
        chunk = last - 1 - step
        t = chunk * CHUNK + offs_c
        mask_t = t < L
        offs = rows[:, None] + t[None, :]
        seq, is_start, is_end = _sequence_bounds(seq_ptr, t, mask_t, L, batch, VARLEN)
        Cv = _load_bc(C_ptr, batch, group, n_groups, L, offs_h, offs_n, t, mask_n, mask_t, N, C_VARIES)
        a_next, c, _, _, _, _ = _chunk_adjoint_terms(
            delta_ptr, z_ptr, dout_ptr, dlast_ptr, seq_ptr, offs, t, mask_t, L, A2, Cv, bias, seq,
            is_end, offs_h, offs_n, mask_n, H, N, HAS_Z, HAS_BIAS, SOFTPLUS, HAS_DLAST, VARLEN)
        a_cum, c_cum = tl.associative_scan((a_next, c), 1, _affine_combine, reverse=True)
        first_slot = offs_c[None, :, None] == 0
        adjoint = tl.sum(tl.where(first_slot, c_cum + a_cum * adjoint[:, None, :], 0.0), axis=1)
        decay = decay * tl.sum(tl.where(first_slot, a_cum, 0.0), axis=1)
    out = ((batch.to(tl.int64) * n_segs + seg) * H + offs_h[:, None]) * N + offs_n[None, :]
    tl.store(local_ptr + out, adjoint, mask=mask_n[None, :])
    tl.store(decay_ptr + out, decay, mask=mask_n[None, :])


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
    u_ptr, delta_ptr, A_ptr, A2_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, init_ptr, seq_ptr,
    ckpt_ptr, carry_ptr, dout_ptr, dlast_ptr,
    du_ptr, ddelta_ptr, dz_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr, dinit_ptr,
    H, L, N, heads_per_group, n_groups, n_chunks, seg_chunks, n_segs,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_INIT: tl.constexpr, HAS_DLAST: tl.constexpr, HAS_CARRY: tl.constexpr,
    VARLEN: tl.constexpr, B_VARIES: tl.constexpr, C_VARIES: tl.constexpr,
    BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr,
):
    pid_h = tl.program_id(0)
    seg = tl.program_id(1)
    batch = tl.program_id(2)
    offs_h = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    offs_n = tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    mask_hn = mask_n[None, :]
    offs_c = tl.arange(0, CHUNK)
    group = (pid_h * BLOCK_H) // heads_per_group
    rows = (batch.to(tl.int64) * H + offs_h) * L
    hn = offs_h[:, None] * N + offs_n[None, :]  # (BLOCK_H, BLOCK_N) offsets into (H, N)
    A = tl.load(A_ptr + hn, mask=mask_hn, other=0.0)
    A2 = tl.load(A2_ptr + hn, mask=mask_hn, other=0.0)
    bias = tl.zeros([BLOCK_H], dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_h).to(tl.float32)
    Dv = tl.zeros([BLOCK_H], dtype=tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + offs_h).to(tl.float32)
    BC_rows = (batch.to(tl.int64) * n_groups + group) * N * L  # start of this group's B/C rows
    bc_offs = BC_rows + offs_n[None, :].to(tl.int64) * L  # (1, BLOCK_N)

    first = seg * seg_chunks
    last = tl.minimum(first + seg_chunks, n_chunks)
    adjoint = tl.zeros([BLOCK_H, BLOCK_N], dtype=tl.float32)
    if HAS_CARRY:
        seg_hn = (batch.to(tl.int64) * n_segs + seg) * H * N + hn
        adjoint = tl.load(carry_ptr + seg_hn, mask=mask_hn, other=0.0)
    dA_acc = tl.zeros([BLOCK_H, BLOCK_N], dtype=tl.float32)
    dB_acc = tl.zeros([BLOCK_H, BLOCK_N], dtype=tl.float32)  # time-invariant B only
    dC_acc = tl.zeros([BLOCK_H, BLOCK_N], dtype=tl.float32)  # time-invariant C only
    dD_acc = tl.zeros([BLOCK_H], dtype=tl.float32)
    dbias_acc = tl.zeros([BLOCK_H], dtype=tl.float32)
    for step in range(0, last - first):
        chunk = last - 1 - step
        t = chunk * CHUNK + offs_c
        mask_t = t < L
        mask = mask_t[None, :]
        offs = rows[:, None] + t[None, :]
        seq, is_start, is_end = _sequence_bounds(seq_ptr, t, mask_t, L, batch, VARLEN)
        Bv = _load_bc(B_ptr, batch, group, n_groups, L, offs_h, offs_n, t, mask_n, mask_t, N, B_VARIES)
        Cv = _load_bc(C_ptr, batch, group, n_groups, L, offs_h, offs_n, t, mask_n, mask_t, N, C_VARIES)
        u = tl.load(u_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        delta, delta_raw = _load_delta(delta_ptr, offs, mask, bias, HAS_BIAS, SOFTPLUS)

        # recompute the chunk's states from the checkpoint at its start
        prev = tl.maximum(chunk - 1, 0)  # chunk 0 starts from zero (h0 enters through b)
        ckpt = ckpt_ptr + ((batch.to(tl.int64) * n_chunks + prev) * H + offs_h[:, None]) * N
        x0 = tl.load(ckpt + offs_n[None, :], mask=mask_hn, other=0.0)
        x0 = tl.where(chunk > 0, x0, 0.0)
        x, a, b = _chunk_states(u, delta, A2, Bv, x0, init_ptr, seq, is_start, mask_t, offs_h,
                                offs_n, mask_n, H, N, HAS_INIT)

        a_next, c, dy, dout, z, gate = _chunk_adjoint_terms(
            delta_ptr, z_ptr, dout_ptr, dlast_ptr, seq_ptr, offs, t, mask_t, L, A2, Cv, bias, seq,
            is_end, offs_h, offs_n, mask_n, H, N, HAS_Z, HAS_BIAS, SOFTPLUS, HAS_DLAST, VARLEN)
        a_cum, c_cum = tl.associative_scan((a_next, c), 1, _affine_combine, reverse=True)
        g = c_cum + a_cum * adjoint[:, None, :]  # (BLOCK_H, CHUNK, BLOCK_N) adjoint of x
        adjoint = tl.sum(tl.where(offs_c[None, :, None] == 0, g, 0.0), axis=1)

        if HAS_Z:
            y = tl.sum(x * Cv, axis=2)  # (BLOCK_H, CHUNK) before the gate
            if HAS_D:
                y += Dv[:, None] * u
            dz = dout * y * gate * (1.0 + z * (1.0 - gate))
            tl.store(dz_ptr + offs, dz.to(dz_ptr.dtype.element_ty), mask=mask)

        decayed = x - b  # a_t * x_{t-1}, the initial state's share included
        gB = tl.sum(g * Bv, axis=2)  # (BLOCK_H, CHUNK)
        du = delta * gB
        if HAS_D:
            du += Dv[:, None] * dy
            dD_acc += tl.sum(dy * u, axis=1)
        ddelta = u * gB + tl.sum(g * decayed * A[:, None, :], axis=2)  # (BLOCK_H, CHUNK)
        if SOFTPLUS:
            ddelta = ddelta * tl.sigmoid(delta_raw)
        ddelta = tl.where(mask, ddelta, 0.0)
        dbias_acc += tl.sum(ddelta, axis=1)
        dA_acc += tl.sum(g * decayed * delta[:, :, None], axis=1)
        tl.store(du_ptr + offs, du.to(du_ptr.dtype.element_ty), mask=mask)
        tl.store(ddelta_ptr + offs, ddelta.to(ddelta_ptr.dtype.element_ty), mask=mask)

        g_du = g * (delta * u)[:, :, None]  # (BLOCK_H, CHUNK, BLOCK_N)
        dy_x = dy[:, :, None] * x
        mask_tn = mask_t[:, None] & mask_n[None, :]
        if B_VARIES:
            tl.atomic_add(dB_ptr + bc_offs + t[:, None], tl.sum(g_du, axis=0), mask=mask_tn)
        else:
            dB_acc += tl.sum(g_du, axis=1)
        if C_VARIES:
            tl.atomic_add(dC_ptr + bc_offs + t[:, None], tl.sum(dy_x, axis=0), mask=mask_tn)
        else:
            dC_acc += tl.sum(dy_x, axis=1)
        if HAS_INIT:
            tl.store(
                dinit_ptr + (seq[None, :, None] * H + offs_h[:, None, None]) * N + offs_n[None, None, :],
                g * a,
                mask=is_start[None, :, None] & mask_n[None, None, :],
            )

    tl.atomic_add(dA_ptr + hn, dA_acc, mask=mask_hn)
    if not B_VARIES:
        tl.atomic_add(dB_ptr + hn, dB_acc, mask=mask_hn)
    if not C_VARIES:
        tl.atomic_add(dC_ptr + hn, dC_acc, mask=mask_hn)
    if HAS_D:
        tl.atomic_add(dD_ptr + offs_h, dD_acc)
    if HAS_BIAS:
        tl.atomic_add(dbias_ptr + offs_h, dbias_acc)
