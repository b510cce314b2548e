"""Triton kernels of the chunked SSD (Mamba-2), forward and backward.

Shapes follow `genossm.kernels.ssd.reference` (mamba_ssm's time-major layouts, read through
their strides, so the model's transposed views need no copy); the launcher, the chunk table and
the autograd Function live in `chunk_ssd.py`. Per (row, head), with chunks of Q positions,
a = dt A, cs = the chunk-local cumulative sum of a, `last` = position Q - 1 of the chunk:

    S_c      = sum_s exp(cs_last - cs_s) dt_s x_s B_s^T          chunk state from zero (P, N)
    h_c      = exp(cs_last) h_{c-1} + S_c                          state passing
    y_t      = sum_{s<=t} (C_t . B_s) exp(cs_t - cs_s) dt_s x_s    intra-chunk, two tl.dot
             + exp(cs_t) h_{c-1} C_t + D x_t                       from the entering state

Forward, in segments of K chunks so that no per-chunk state ever reaches HBM: one program per
(head, segment, row) walks its chunks with the (P, N) state in registers.
`_segment_state` (pass 1) from zero gives the segment's own contribution and decay,
`_segment_passing` links the segments in order, and `_segment_scan_fwd` walks each segment
again from its true entering state, writing y and the final states. HBM traffic: x, dt, B read
twice, C once, y written once, plus one fp32 state per segment.

Backward, with g_c = dL/dh_c the adjoint after chunk c:
    g_{c-1} = exp(cs_last) g_c + sum_t exp(cs_t) dy_t C_t^T
Every chunk needs both h_{c-1} and g_c, which run in opposite directions, so both are written
once per chunk (in the input dtype for half inputs): `_segment_state` with STORE_CHUNKS walks
each segment from the forward's entering state; `_segment_adjoint` walks each segment from its
end (from zero, then `_segment_passing` REVERSE links them, then again from what arrives),
writing g_c, kappa_c = exp(cs_last) <g_c, h_{c-1}> (the entering state's share of d cs_last)
and the initial states' gradients; d final states enter at sequence ends. Then per chunk, with
CBL[t, s] = (C_t . B_s) exp(cs_t - cs_s) for s <= t, G = dy x^T and W = G o decay o dt_s:
    dx   = dt o (CBL^T dy + exp(cs_last - cs) B g^T) + D dy             `_chunk_scan_bwd_dx`
    dC   = W B + exp(cs) o (dy h_{c-1})                                  `_chunk_scan_bwd_dC`
    dB   = W^T C + (exp(cs_last - cs) dt) o (x g)                        `_chunk_scan_bwd_dB`
    d cs = rowsum(F) - colsum(F) (F = CB o W, strictly below the diagonal)
           + exp(cs) sum_n C o (dy h_{c-1})  - the chunk-state terms, whose sum and kappa_c
           go to cs_last
    da   = reverse cumsum of d cs,  d dt = x . (CBL^T dy + ...) + da A,  dA = sum da dt
then through softplus and the bias (`_chunk_scan_bwd_dB`, which also reduces dA, d dt_bias
and dD per chunk). Three kernels, not one: one kernel holding every tile spilled 2.4 KB per
thread and needed 226 KB of shared memory in bf16 (296 KB in fp32, over sm_90's 227 KB).
The diagonal of the decay and the last position's decay-to-end are the constant 1, as in the
reference, so their zero log-differences add no rounding to dA.

The three chunk kernels run one program per (chunk, row, group) looping over the group's heads,
so C B^T is computed and B, C read once per group and dB, dC need no atomics; dt and cs are
recomputed wherever they are needed (cheaper than a buffer). Each sequence starts a chunk (the
launcher's chunk table gives every chunk's first position and length); positions past a
chunk's length are masked (dt = 0: decay 1, no input). Offsets are int64 (B * L * H * P passes
2^31 at real sizes) up to each tile's base; inside a tile they are int32. Matmul operands are in
the input dtype (bf16 / fp16 tensor cores; tf32x3 for fp32), accumulation in fp32; states
carried in registers are fp32.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _softplus(x):
    # torch's threshold of 20; exp(x) alone below -20 where log(1 + exp(x)) rounds to 0
    return tl.where(x > 20.0, x, tl.where(x < -20.0, tl.exp(x), tl.log(1.0 + tl.exp(x))))


@triton.jit
def _chunk_coordinates(chunk_start_ptr, chunk_len_ptr, G):
    """This program's chunk, batch row and group, the chunk's first position (int64) and length."""
    chunk = tl.program_id(0)
    row = (tl.program_id(1) // G).to(tl.int64)
    group = tl.program_id(1) % G
    start = tl.load(chunk_start_ptr + chunk).to(tl.int64)
    length = tl.load(chunk_len_ptr + chunk)
    return chunk, row, group, start, length


@triton.jit
def _load_rows(ptr, row, start, t, valid, stride_b, stride_l, head, stride_h, cols, n_cols,
               stride_c):
    """(Q, BLOCK) tile of a (B, L, heads, cols) tensor, zeros outside. The tile's own offsets are
    int32 (the launcher checks they fit), only its base is int64: a (Q, BLOCK) tensor of int64
    offsets would cost a register pair per element."""
    base = row * stride_b + start * stride_l + head.to(tl.int64) * stride_h
    tile = t[:, None] * stride_l + cols[None, :] * stride_c
    return tl.load(ptr + base + tile, mask=valid[:, None] & (cols[None, :] < n_cols), other=0.0)


@triton.jit
def _store_rows(ptr, value, row, start, t, valid, stride_b, stride_l, head, stride_h, cols,
                n_cols, stride_c):
    base = row * stride_b + start * stride_l + head.to(tl.int64) * stride_h
    tile = t[:, None] * stride_l + cols[None, :] * stride_c
    tl.store(ptr + base + tile, value.to(ptr.dtype.element_ty),
             mask=valid[:, None] & (cols[None, :] < n_cols))


@triton.jit
def _chunk_offset(row, head, H, chunk, n_chunks, Q: tl.constexpr):
    """Offset of a chunk's Q positions in the (rows, H, chunks, Q) fp32 buffers of dt and cs."""
    return ((row * H + head) * n_chunks + chunk) * Q


@triton.jit
def _state_offset(row, chunk, n_chunks, head, H, P, N):
    """Offset of a (P, N) state in the (rows, chunks, H, P, N) fp32 buffers."""
    return ((row * n_chunks + chunk) * H + head) * P * N


@triton.jit
def _last_of(values, t, Q: tl.constexpr):
    """values[Q - 1] as a scalar (the chunk's total decay when values is cs)."""
    return tl.sum(tl.where(t == Q - 1, values, 0.0), axis=0)


@triton.jit
def _decay_to_end(cs, cs_last, t, Q: tl.constexpr):
    """exp(cs_last - cs_s), the constant 1 at the last position (see the module docstring)."""
    return tl.where(t == Q - 1, 1.0, tl.exp(cs_last - cs))


@triton.jit
def _intra_decay(cs, t, Q: tl.constexpr):
    """(Q_t, Q_s): exp(cs_t - cs_s) below the diagonal, 1 on it, 0 above."""
    below = t[:, None] > t[None, :]
    diff = tl.where(below, cs[:, None] - cs[None, :], float("-inf"))
    return tl.where(t[:, None] == t[None, :], 1.0, tl.exp(diff))


@triton.jit
def _flag(ptr, BLOCK: tl.constexpr):
    """A chunk's flag as a (BLOCK,) bool vector: a scalar mask broadcast inside `tl.load`'s mask
    is rejected by the interpreter (triton 3.9)."""
    return (tl.zeros([BLOCK], dtype=tl.int32) + tl.load(ptr)) != 0


@triton.jit
def _chunk_decays(dt_ptr, dt_bias_ptr, A_ptr, row, start, t, valid, head, sdt_b, sdt_l, sdt_h,
                  HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """dt after bias and softplus (0 past the chunk's length: decay 1, no input) and the
    chunk-local cumulative sum cs of dt A, both (Q,) fp32."""
    dt = tl.load(dt_ptr + row * sdt_b + (start + t) * sdt_l + head.to(tl.int64) * sdt_h,
                 mask=valid, other=0.0).to(tl.float32)
    if HAS_BIAS:
        dt = dt + tl.load(dt_bias_ptr + head).to(tl.float32)
    if SOFTPLUS:
        dt = _softplus(dt)
    dt = tl.where(valid, dt, 0.0)
    return dt, tl.cumsum(dt * tl.load(A_ptr + head).to(tl.float32), axis=0)


@triton.jit
def _segment_coordinates(K, n_chunks):
    """This program's head, segment, batch row, and its chunks [first, end)."""
    head = tl.program_id(0)
    segment = tl.program_id(1)
    row = tl.program_id(2).to(tl.int64)
    first_chunk = segment * K
    return head, segment, row, first_chunk, tl.minimum(first_chunk + K, n_chunks)


@triton.jit
def _restart(state, init_ptr, chunk, chunk_first_ptr, chunk_seq_ptr, row, head, H, p, n, P, N,
             HAS_INIT: tl.constexpr, VARLEN: tl.constexpr, BLOCK_P: tl.constexpr,
             BLOCK_N: tl.constexpr):
    """The state entering `chunk`: its sequence's initial state (or 0) where the chunk starts a
    sequence, `state` elsewhere."""
    first = (tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.int32) + tl.load(chunk_first_ptr + chunk)) != 0
    sequence = row
    if VARLEN:
        sequence = tl.load(chunk_seq_ptr + chunk).to(tl.int64)
    if HAS_INIT:
        offsets = (sequence * H + head) * P * N + p[:, None] * N + n[None, :]
        restart = tl.load(init_ptr + offsets, mask=first & (p[:, None] < P) & (n[None, :] < N),
                          other=0.0)
    else:
        restart = tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.float32)
    return tl.where(first, restart, state), sequence


@triton.jit
def _segment_state_kernel(
    x_ptr, dt_ptr, A_ptr, dt_bias_ptr, B_ptr, init_ptr,
    chunk_start_ptr, chunk_len_ptr, chunk_first_ptr, chunk_seq_ptr,
    segment_states_ptr,  # (rows, segments, H, P, N) fp32: out (local) or in (entering)
    decay_ptr,  # (rows, segments, H) fp32: factor of the entering state (0 past a restart)
    chunk_states_ptr,  # (rows, chunks, H, P, N): the state entering every chunk (STORE_CHUNKS)
    H, G, P, N, n_chunks, n_segments, K,
    sx_b, sx_l, sx_h, sx_p, sdt_b, sdt_l, sdt_h, sB_b, sB_l, sB_g, sB_n,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_INIT: tl.constexpr, VARLEN: tl.constexpr,
    STORE_CHUNKS: tl.constexpr, Q: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr,
    DOT_PRECISION: tl.constexpr, DOT_DTYPE: tl.constexpr,
):
    """One program per (head, segment of K chunks, row) walks its chunks with the state in
    registers. Forward pass 1 (STORE_CHUNKS off): from zero (restarted sequences from their
    initial state), writing the segment's state and total decay. For the backward (STORE_CHUNKS
    on): from the segment's entering state, writing the state entering every chunk."""
    head, segment, row, chunk_begin, chunk_end = _segment_coordinates(K, n_chunks)
    group = head // (H // G)
    t = tl.arange(0, Q)
    p = tl.arange(0, BLOCK_P)
    n = tl.arange(0, BLOCK_N)
    state_mask = (p[:, None] < P) & (n[None, :] < N)
    in_segment = ((row * n_segments + segment) * H + head) * P * N + p[:, None] * N + n[None, :]
    if STORE_CHUNKS:
        state = tl.load(segment_states_ptr + in_segment, mask=state_mask, other=0.0)
    else:
        state = tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.float32)
    decay = tl.full([], 1.0, dtype=tl.float32)
    for chunk in range(chunk_begin, chunk_end):
        start = tl.load(chunk_start_ptr + chunk).to(tl.int64)
        valid = t < tl.load(chunk_len_ptr + chunk)
        state, _ = _restart(state, init_ptr, chunk, chunk_first_ptr, chunk_seq_ptr, row, head, H,
                            p, n, P, N, HAS_INIT, VARLEN, BLOCK_P, BLOCK_N)
        if STORE_CHUNKS:
            offsets = _state_offset(row, chunk, n_chunks, head, H, P, N) + p[:, None] * N + n[None, :]
            tl.store(chunk_states_ptr + offsets, state.to(chunk_states_ptr.dtype.element_ty),
                     mask=state_mask)
        decay = tl.where(tl.load(chunk_first_ptr + chunk) != 0, 0.0, decay)
        dt, cs = _chunk_decays(dt_ptr, dt_bias_ptr, A_ptr, row, start, t, valid, head,
                               sdt_b, sdt_l, sdt_h, HAS_BIAS, SOFTPLUS)
        cs_last = _last_of(cs, t, Q)
        x = _load_rows(x_ptr, row, start, t, valid, sx_b, sx_l, head, sx_h, p, P, sx_p)
        Bm = _load_rows(B_ptr, row, start, t, valid, sB_b, sB_l, group, sB_g, n, N, sB_n)
        xw = (x.to(tl.float32) * (_decay_to_end(cs, cs_last, t, Q) * dt)[:, None]).to(DOT_DTYPE)
        state = tl.exp(cs_last) * state + tl.dot(tl.trans(xw), Bm.to(DOT_DTYPE),
                                                 input_precision=DOT_PRECISION)
        decay = decay * tl.exp(cs_last)
    if not STORE_CHUNKS:
        tl.store(segment_states_ptr + in_segment, state, mask=state_mask)
        tl.store(decay_ptr + (row * n_segments + segment) * H + head, decay)


@triton.jit
def _segment_passing_kernel(
    states_ptr,  # (rows, segments, H, P, N) fp32: local states in, entering states out
    decay_ptr,  # (rows, segments, H) fp32
    H, P, N, n_segments, REVERSE: tl.constexpr, BLOCK: tl.constexpr,
):
    """entering_{k+1} = decay_k entering_k + local_k, sequential over segments; REVERSE: the
    adjoints, from the last segment (what arrives at each segment's end from the right)."""
    row = (tl.program_id(1) // H).to(tl.int64)
    head = tl.program_id(1) % H
    entries = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    in_state = entries < P * N
    state = tl.zeros([BLOCK], dtype=tl.float32)
    for step in range(n_segments):
        segment = step
        if REVERSE:
            segment = n_segments - 1 - step
        where = (row * n_segments + segment) * H + head
        local = tl.load(states_ptr + where * P * N + entries, mask=in_state, other=0.0)
        tl.store(states_ptr + where * P * N + entries, state, mask=in_state)
        state = tl.load(decay_ptr + where) * state + local


@triton.jit
def _segment_scan_fwd_kernel(
    x_ptr, dt_ptr, A_ptr, dt_bias_ptr, B_ptr, C_ptr, D_ptr, init_ptr,
    entering_ptr,  # (rows, segments, H, P, N) fp32
    chunk_start_ptr, chunk_len_ptr, chunk_first_ptr, chunk_last_ptr, chunk_seq_ptr,
    y_ptr, final_ptr,  # like x; (sequences, H, P, N) fp32
    H, G, P, N, n_chunks, n_segments, K,
    sx_b, sx_l, sx_h, sx_p, sdt_b, sdt_l, sdt_h, sB_b, sB_l, sB_g, sB_n, sC_b, sC_l, sC_g, sC_n,
    sy_b, sy_l, sy_h, sy_p,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr, D_PER_P: tl.constexpr,
    HAS_INIT: tl.constexpr, STORE_FINAL: tl.constexpr, VARLEN: tl.constexpr,
    Q: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr, DOT_PRECISION: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
):
    """Pass 3: each program walks its segment again from the true entering state, writing y
    (intra-chunk C B^T product plus the entering state's contribution) and final states."""
    head, segment, row, chunk_begin, chunk_end = _segment_coordinates(K, n_chunks)
    group = head // (H // G)
    t = tl.arange(0, Q)
    p = tl.arange(0, BLOCK_P)
    n = tl.arange(0, BLOCK_N)
    state_mask = (p[:, None] < P) & (n[None, :] < N)
    where = (row * n_segments + segment) * H + head
    state = tl.load(entering_ptr + where * P * N + p[:, None] * N + n[None, :], mask=state_mask,
                    other=0.0)
    if HAS_D:
        if D_PER_P:
            D = tl.load(D_ptr + head * P + p, mask=p < P, other=0.0).to(tl.float32)[None, :]
        else:
            D = tl.load(D_ptr + head).to(tl.float32)
    for chunk in range(chunk_begin, chunk_end):
        start = tl.load(chunk_start_ptr + chunk).to(tl.int64)
        valid = t < tl.load(chunk_len_ptr + chunk)
        state, sequence = _restart(state, init_ptr, chunk, chunk_first_ptr, chunk_seq_ptr, row,
                                   head, H, p, n, P, N, HAS_INIT, VARLEN, BLOCK_P, BLOCK_N)
        dt, cs = _chunk_decays(dt_ptr, dt_bias_ptr, A_ptr, row, start, t, valid, head,
                               sdt_b, sdt_l, sdt_h, HAS_BIAS, SOFTPLUS)
        cs_last = _last_of(cs, t, Q)
        x = _load_rows(x_ptr, row, start, t, valid, sx_b, sx_l, head, sx_h, p, P, sx_p).to(DOT_DTYPE)
        Bm = _load_rows(B_ptr, row, start, t, valid, sB_b, sB_l, group, sB_g, n, N, sB_n).to(DOT_DTYPE)
        Cm = _load_rows(C_ptr, row, start, t, valid, sC_b, sC_l, group, sC_g, n, N, sC_n).to(DOT_DTYPE)
        CB = tl.dot(Cm, tl.trans(Bm), input_precision=DOT_PRECISION)  # (Q_t, Q_s) fp32
        scores = (CB * _intra_decay(cs, t, Q) * dt[None, :]).to(DOT_DTYPE)
        y = tl.dot(scores, x, input_precision=DOT_PRECISION)  # (Q, BP) fp32
        y += tl.exp(cs)[:, None] * tl.dot(Cm, tl.trans(state.to(DOT_DTYPE)),
                                          input_precision=DOT_PRECISION)
        if HAS_D:
            y += D * x.to(tl.float32)
        _store_rows(y_ptr, y, row, start, t, valid, sy_b, sy_l, head, sy_h, p, P, sy_p)
        xw = (x.to(tl.float32) * (_decay_to_end(cs, cs_last, t, Q) * dt)[:, None]).to(DOT_DTYPE)
        state = tl.exp(cs_last) * state + tl.dot(tl.trans(xw), Bm, input_precision=DOT_PRECISION)
        if STORE_FINAL:
            last = (tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.int32) + tl.load(chunk_last_ptr + chunk)) != 0
            tl.store(final_ptr + (sequence * H + head) * P * N + p[:, None] * N + n[None, :], state,
                     mask=state_mask & last)


@triton.jit
def _segment_adjoint_kernel(
    dy_ptr, dt_ptr, A_ptr, dt_bias_ptr, C_ptr, dfinal_ptr,
    segment_adjoints_ptr,  # (rows, segments, H, P, N) fp32: out (local) or in (arriving)
    decay_ptr,  # (rows, segments, H) fp32
    chunk_states_ptr,  # (rows, chunks, H, P, N): h_{c-1} (STORE_CHUNKS)
    chunk_adjoints_ptr,  # (rows, chunks, H, P, N): g_c out (STORE_CHUNKS)
    kappa_ptr,  # (rows, H, chunks) fp32: exp(cs_last) <g_c, h_{c-1}> (STORE_CHUNKS)
    dinit_ptr,  # (sequences, H, P, N) fp32 (STORE_CHUNKS and STORE_DINIT)
    chunk_start_ptr, chunk_len_ptr, chunk_first_ptr, chunk_last_ptr, chunk_seq_ptr,
    H, G, P, N, n_chunks, n_segments, K,
    sdy_b, sdy_l, sdy_h, sdy_p, sdt_b, sdt_l, sdt_h, sC_b, sC_l, sC_g, sC_n,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_DFINAL: tl.constexpr,
    STORE_DINIT: tl.constexpr, VARLEN: tl.constexpr, STORE_CHUNKS: tl.constexpr,
    Q: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr, DOT_PRECISION: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
):
    """The adjoint recurrence g_{c-1} = exp(cs_last) g_c + sum_t exp(cs_t) dy_t C_t^T, one
    program per (head, segment, row) walking its chunks from the last with g in registers.
    STORE_CHUNKS off: from zero at the segment's end (d final states entering at sequence ends),
    writing what leaves the segment's start and the segment's decay. On: from the adjoint
    arriving at the segment's end, writing every g_c, kappa_c and the initial states' gradients."""
    head, segment, row, chunk_begin, chunk_end = _segment_coordinates(K, n_chunks)
    group = head // (H // G)
    t = tl.arange(0, Q)
    p = tl.arange(0, BLOCK_P)
    n = tl.arange(0, BLOCK_N)
    state_mask = (p[:, None] < P) & (n[None, :] < N)
    in_segment = ((row * n_segments + segment) * H + head) * P * N + p[:, None] * N + n[None, :]
    if STORE_CHUNKS:
        adjoint = tl.load(segment_adjoints_ptr + in_segment, mask=state_mask, other=0.0)
    else:
        adjoint = tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.float32)
    decay = tl.full([], 1.0, dtype=tl.float32)
    for step in range(chunk_end - chunk_begin):
        chunk = chunk_end - 1 - step
        start = tl.load(chunk_start_ptr + chunk).to(tl.int64)
        valid = t < tl.load(chunk_len_ptr + chunk)
        sequence = row
        if VARLEN:
            sequence = tl.load(chunk_seq_ptr + chunk).to(tl.int64)
        own = (sequence * H + head) * P * N + p[:, None] * N + n[None, :]
        # the adjoint after a sequence's last chunk is that of its final state
        last = (tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.int32) + tl.load(chunk_last_ptr + chunk)) != 0
        if HAS_DFINAL:
            restart = tl.load(dfinal_ptr + own, mask=state_mask & last, other=0.0)
        else:
            restart = tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.float32)
        adjoint = tl.where(last, restart, adjoint)
        decay = tl.where(tl.load(chunk_last_ptr + chunk) != 0, 0.0, decay)
        dt, cs = _chunk_decays(dt_ptr, dt_bias_ptr, A_ptr, row, start, t, valid, head,
                               sdt_b, sdt_l, sdt_h, HAS_BIAS, SOFTPLUS)
        chunk_decay = tl.exp(_last_of(cs, t, Q))
        if STORE_CHUNKS:
            offsets = _state_offset(row, chunk, n_chunks, head, H, P, N) + p[:, None] * N + n[None, :]
            tl.store(chunk_adjoints_ptr + offsets, adjoint.to(chunk_adjoints_ptr.dtype.element_ty),
                     mask=state_mask)
            state_in = tl.load(chunk_states_ptr + offsets, mask=state_mask, other=0.0).to(tl.float32)
            tl.store(kappa_ptr + (row * H + head) * n_chunks + chunk,
                     chunk_decay * tl.sum(tl.sum(adjoint * state_in, axis=1), axis=0))
        dy = _load_rows(dy_ptr, row, start, t, valid, sdy_b, sdy_l, head, sdy_h, p, P, sdy_p)
        Cm = _load_rows(C_ptr, row, start, t, valid, sC_b, sC_l, group, sC_g, n, N, sC_n)
        scaled = (dy.to(tl.float32) * tl.exp(cs)[:, None]).to(DOT_DTYPE)
        adjoint = chunk_decay * adjoint + tl.dot(tl.trans(scaled), Cm.to(DOT_DTYPE),
                                                 input_precision=DOT_PRECISION)
        decay = decay * chunk_decay
        if STORE_CHUNKS:
            if STORE_DINIT:
                first = (tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.int32)
                         + tl.load(chunk_first_ptr + chunk)) != 0
                tl.store(dinit_ptr + own, adjoint, mask=state_mask & first)
    if not STORE_CHUNKS:
        tl.store(segment_adjoints_ptr + in_segment, adjoint, mask=state_mask)
        tl.store(decay_ptr + (row * n_segments + segment) * H + head, decay)


@triton.jit
def _chunk_scan_bwd_dx_kernel(
    dt_ptr, A_ptr, dt_bias_ptr, B_ptr, C_ptr, D_ptr, dy_ptr,
    adjoints_ptr,  # (rows, chunks, H, P, N): g_c
    chunk_start_ptr, chunk_len_ptr,
    dx_ptr,  # like x
    H, G, P, N, n_chunks,
    sdt_b, sdt_l, sdt_h, sB_b, sB_l, sB_g, sB_n, sC_b, sC_l, sC_g, sC_n, sdy_b, sdy_l, sdy_h, sdy_p,
    sdx_b, sdx_l, sdx_h, sdx_p,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr, D_PER_P: tl.constexpr,
    Q: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr, DOT_PRECISION: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
):
    """dx = dt o (CBL^T dy + exp(cs_last - cs) B g^T) + D dy."""
    chunk, row, group, start, length = _chunk_coordinates(chunk_start_ptr, chunk_len_ptr, G)
    t = tl.arange(0, Q)
    valid = t < length
    p = tl.arange(0, BLOCK_P)
    n = tl.arange(0, BLOCK_N)
    state_mask = (p[:, None] < P) & (n[None, :] < N)
    Bm = _load_rows(B_ptr, row, start, t, valid, sB_b, sB_l, group, sB_g, n, N, sB_n).to(DOT_DTYPE)
    Cm = _load_rows(C_ptr, row, start, t, valid, sC_b, sC_l, group, sC_g, n, N, sC_n).to(DOT_DTYPE)
    CB = tl.dot(Cm, tl.trans(Bm), input_precision=DOT_PRECISION)  # (Q_t, Q_s) fp32
    heads_per_group = H // G
    for i in range(heads_per_group):
        head = group * heads_per_group + i
        dt, cs = _chunk_decays(dt_ptr, dt_bias_ptr, A_ptr, row, start, t, valid, head,
                               sdt_b, sdt_l, sdt_h, HAS_BIAS, SOFTPLUS)
        dy = _load_rows(dy_ptr, row, start, t, valid, sdy_b, sdy_l, head, sdy_h, p, P,
                        sdy_p).to(DOT_DTYPE)
        adjoint = tl.load(adjoints_ptr + _state_offset(row, chunk, n_chunks, head, H, P, N)
                          + p[:, None] * N + n[None, :], mask=state_mask, other=0.0)
        CBL = (CB * _intra_decay(cs, t, Q)).to(DOT_DTYPE)
        inner = tl.dot(tl.trans(CBL), dy, input_precision=DOT_PRECISION)  # (Q_s, BP)
        inner += _decay_to_end(cs, _last_of(cs, t, Q), t, Q)[:, None] * tl.dot(
            Bm, tl.trans(adjoint.to(DOT_DTYPE)), input_precision=DOT_PRECISION)
        dx = dt[:, None] * inner
        if HAS_D:
            if D_PER_P:
                D = tl.load(D_ptr + head * P + p, mask=p < P, other=0.0).to(tl.float32)[None, :]
            else:
                D = tl.load(D_ptr + head).to(tl.float32)
            dx += D * dy.to(tl.float32)
        _store_rows(dx_ptr, dx, row, start, t, valid, sdx_b, sdx_l, head, sdx_h, p, P, sdx_p)


@triton.jit
def _chunk_scan_bwd_dC_kernel(
    x_ptr, dt_ptr, A_ptr, dt_bias_ptr, B_ptr, C_ptr, dy_ptr,
    states_ptr,  # (rows, chunks, H, P, N): h_{c-1}
    chunk_start_ptr, chunk_len_ptr,
    dC_ptr,  # like C
    dcs_ptr, ddt_ptr,  # (rows, H, chunks, Q) fp32: the parts of d cs and d dt computed here
    H, G, P, N, n_chunks,
    sx_b, sx_l, sx_h, sx_p, sdt_b, sdt_l, sdt_h, sB_b, sB_l, sB_g, sB_n, sC_b, sC_l, sC_g, sC_n,
    sdy_b, sdy_l, sdy_h, sdy_p, sdC_b, sdC_l, sdC_g, sdC_n,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    Q: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr, DOT_PRECISION: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
):
    """dC = sum over the group's heads of W B + exp(cs) o (dy h^T); per head the parts of
    d cs (intra-chunk and entering-state terms) and of d dt (x_s . (CBL^T dy)_s)."""
    chunk, row, group, start, length = _chunk_coordinates(chunk_start_ptr, chunk_len_ptr, G)
    t = tl.arange(0, Q)
    valid = t < length
    p = tl.arange(0, BLOCK_P)
    n = tl.arange(0, BLOCK_N)
    state_mask = (p[:, None] < P) & (n[None, :] < N)
    Bm = _load_rows(B_ptr, row, start, t, valid, sB_b, sB_l, group, sB_g, n, N, sB_n).to(DOT_DTYPE)
    Cm = _load_rows(C_ptr, row, start, t, valid, sC_b, sC_l, group, sC_g, n, N, sC_n).to(DOT_DTYPE)
    CB = tl.dot(Cm, tl.trans(Bm), input_precision=DOT_PRECISION)  # (Q_t, Q_s) fp32
    below = t[:, None] > t[None, :]
    dC = tl.zeros([Q, BLOCK_N], dtype=tl.float32)
    heads_per_group = H // G
    for i in range(heads_per_group):
        head = group * heads_per_group + i
        buffer = _chunk_offset(row, head, H, chunk, n_chunks, Q)
        dt, cs = _chunk_decays(dt_ptr, dt_bias_ptr, A_ptr, row, start, t, valid, head,
                               sdt_b, sdt_l, sdt_h, HAS_BIAS, SOFTPLUS)
        x = _load_rows(x_ptr, row, start, t, valid, sx_b, sx_l, head, sx_h, p, P, sx_p).to(DOT_DTYPE)
        dy = _load_rows(dy_ptr, row, start, t, valid, sdy_b, sdy_l, head, sdy_h, p, P,
                        sdy_p).to(DOT_DTYPE)
        state_in = tl.load(states_ptr + _state_offset(row, chunk, n_chunks, head, H, P, N)
                           + p[:, None] * N + n[None, :], mask=state_mask, other=0.0)
        decay = _intra_decay(cs, t, Q)
        dy_x = tl.dot(dy, tl.trans(x), input_precision=DOT_PRECISION)  # G (Q_t, Q_s)
        W = dy_x * decay * dt[None, :]
        dC_state = tl.exp(cs)[:, None] * tl.dot(dy, state_in.to(DOT_DTYPE),
                                                input_precision=DOT_PRECISION)  # (Q, BN)
        dC += tl.dot(W.to(DOT_DTYPE), Bm, input_precision=DOT_PRECISION) + dC_state
        F = tl.where(below, CB * W, 0.0)
        dcs = tl.sum(F, axis=1) - tl.sum(F, axis=0) + tl.sum(Cm.to(tl.float32) * dC_state, axis=1)
        tl.store(dcs_ptr + buffer + t, dcs)
        tl.store(ddt_ptr + buffer + t, tl.sum(CB * decay * dy_x, axis=0))
    _store_rows(dC_ptr, dC, row, start, t, valid, sdC_b, sdC_l, group, sdC_g, n, N, sdC_n)


@triton.jit
def _chunk_scan_bwd_dB_kernel(
    x_ptr, dt_ptr, dt_bias_ptr, A_ptr, B_ptr, C_ptr, dy_ptr,
    adjoints_ptr,  # (rows, chunks, H, P, N): g_c
    dcs_ptr, ddt_part_ptr,  # (rows, H, chunks, Q) fp32
    kappa_ptr,  # (rows, H, chunks) fp32
    chunk_start_ptr, chunk_len_ptr,
    dB_ptr, ddt_ptr,  # like B, dt
    dA_ptr, dbias_ptr,  # (rows, H, chunks) fp32 partial sums
    dD_ptr,  # (rows, H, chunks, P) fp32 partial sums
    H, G, P, N, n_chunks,
    sx_b, sx_l, sx_h, sx_p, sdt_b, sdt_l, sdt_h, sB_b, sB_l, sB_g, sB_n, sC_b, sC_l, sC_g, sC_n,
    sdy_b, sdy_l, sdy_h, sdy_p, sddt_b, sddt_l, sddt_h, sdB_b, sdB_l, sdB_g, sdB_n,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr, Q: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr, DOT_PRECISION: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
):
    """dB = sum over the group's heads of W^T C + (exp(cs_last - cs) dt) o (x g); per head the
    chunk-state terms of d cs, then d a (reverse cumulative sum), d dt through the softplus,
    and the partial sums of dA, d dt_bias and dD."""
    chunk, row, group, start, length = _chunk_coordinates(chunk_start_ptr, chunk_len_ptr, G)
    t = tl.arange(0, Q)
    valid = t < length
    p = tl.arange(0, BLOCK_P)
    n = tl.arange(0, BLOCK_N)
    state_mask = (p[:, None] < P) & (n[None, :] < N)
    Bm = _load_rows(B_ptr, row, start, t, valid, sB_b, sB_l, group, sB_g, n, N, sB_n).to(tl.float32)
    Cm = _load_rows(C_ptr, row, start, t, valid, sC_b, sC_l, group, sC_g, n, N, sC_n).to(DOT_DTYPE)
    # the chunk-state terms of d cs cancel exactly between cs_s and cs_last at s = length - 1
    # (and the last position's decay is the constant 1): leave them out, as the reference's
    # autograd does
    inside = t < length - 1
    dB = tl.zeros([Q, BLOCK_N], dtype=tl.float32)
    heads_per_group = H // G
    for i in range(heads_per_group):
        head = group * heads_per_group + i
        buffer = _chunk_offset(row, head, H, chunk, n_chunks, Q)
        dt, cs = _chunk_decays(dt_ptr, dt_bias_ptr, A_ptr, row, start, t, valid, head,
                               sdt_b, sdt_l, sdt_h, HAS_BIAS, SOFTPLUS)
        to_end = _decay_to_end(cs, _last_of(cs, t, Q), t, Q)
        x = _load_rows(x_ptr, row, start, t, valid, sx_b, sx_l, head, sx_h, p, P, sx_p).to(DOT_DTYPE)
        dy = _load_rows(dy_ptr, row, start, t, valid, sdy_b, sdy_l, head, sdy_h, p, P,
                        sdy_p).to(DOT_DTYPE)
        adjoint = tl.load(adjoints_ptr + _state_offset(row, chunk, n_chunks, head, H, P, N)
                          + p[:, None] * N + n[None, :], mask=state_mask, other=0.0)
        W = tl.dot(dy, tl.trans(x), input_precision=DOT_PRECISION) * _intra_decay(cs, t, Q) * dt[None, :]
        x_g = tl.dot(x, adjoint.to(DOT_DTYPE), input_precision=DOT_PRECISION)  # (Q, BN)
        dB += tl.dot(tl.trans(W.to(DOT_DTYPE)), Cm, input_precision=DOT_PRECISION)
        dB += (to_end * dt)[:, None] * x_g
        through_state = to_end * tl.sum(Bm * x_g, axis=1)  # x_s . (exp(cs_last - cs_s) B_s g^T)
        chunk_state_terms = tl.where(inside, dt * through_state, 0.0)
        dcs = tl.load(dcs_ptr + buffer + t) - chunk_state_terms
        to_last = tl.sum(chunk_state_terms, axis=0) + tl.load(kappa_ptr + (row * H + head) * n_chunks + chunk)
        da = tl.cumsum(dcs, axis=0, reverse=True) + to_last
        ddt = tl.load(ddt_part_ptr + buffer + t) + through_state + da * tl.load(A_ptr + head).to(tl.float32)
        tl.store(dA_ptr + (row * H + head) * n_chunks + chunk, tl.sum(da * dt, axis=0))
        if HAS_D:
            tl.store(dD_ptr + ((row * H + head) * n_chunks + chunk) * P + p,
                     tl.sum(dy.to(tl.float32) * x.to(tl.float32), axis=0), mask=p < P)
        if SOFTPLUS:  # through the softplus (and the bias inside it)
            raw = tl.load(dt_ptr + row * sdt_b + (start + t) * sdt_l + head.to(tl.int64) * sdt_h,
                          mask=valid, other=0.0).to(tl.float32)
            if HAS_BIAS:
                raw += tl.load(dt_bias_ptr + head).to(tl.float32)
            ddt = ddt * tl.sigmoid(raw)
        ddt = tl.where(valid, ddt, 0.0)
        tl.store(ddt_ptr + row * sddt_b + (start + t) * sddt_l + head.to(tl.int64) * sddt_h,
                 ddt.to(ddt_ptr.dtype.element_ty), mask=valid)
        if HAS_BIAS:
            tl.store(dbias_ptr + (row * H + head) * n_chunks + chunk, tl.sum(ddt, axis=0))
    _store_rows(dB_ptr, dB, row, start, t, valid, sdB_b, sdB_l, group, sdB_g, n, N, sdB_n)
