"""Triton kernels of the chunked SSD (Mamba-2), forward and backward.

Shapes follow `genossm.kernels.ssd.reference` (mamba_ssm's time-major layouts, read through
their strides, so the model's transposed views need no copy); the launcher, the chunk table and
the autograd Function live in `chunk_ssd.py`. Per (row, head), with chunks of Q positions,
a = dt A, cs = the chunk-local cumulative sum of a, `last` = position Q - 1 of the chunk:

    S_c      = sum_s exp(cs_last - cs_s) dt_s x_s B_s^T          chunk state from zero (P, N)
    h_c      = exp(cs_last) h_{c-1} + S_c                          state passing
    y_t      = sum_{s<=t} (C_t . B_s) exp(cs_t - cs_s) dt_s x_s    intra-chunk, two tl.dot
             + exp(cs_t) h_{c-1} C_t + D x_t                       from the entering state

The SSD paper's chunked algorithm, as three launches with every chunk in flight at once, only
the (P, N) states walked in order:
`_chunk_state` (one program per chunk and head) writes S_c and cs_last (the log decay);
`_state_passing_fwd` (one program per block of state entries and head) turns them, in place,
into h_c, a tile of chunks at a time combined by one matmul (`_walk_tile`), and writes the
final states; `_chunk_scan_fwd` (one program per chunk and
group) writes y, reading h_{c-1} from slot c - 1 (or the initial state where c starts a
sequence: `_entering_state`).

Backward, with g_c = dL/dh_c the adjoint of the state after chunk c:
    u_c = exp(cs_last) g_c + A_c,   A_c = sum_t exp(cs_t) dy_t C_t^T,   g_c = u_{c+1}
(g_c = d final state where chunk c ends its sequence; u at a sequence's first chunk is the
initial state's gradient). The states h_c are the forward's (or recomputed by the same two
launches), `_chunk_state` with ADJOINT writes A_c and `_adjoint_passing` turns them in place
into u_c, walking from the last chunk, and writes d initial states. Then per chunk, with
kappa_c = exp(cs_last) <g_c, h_{c-1}> (the entering state's share of d cs_last, in
`_chunk_scan_bwd_dx`, which loads g_c anyway) and
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

The chunk kernels with C B^T run one program per (chunk, row, group) looping over the group's
heads, so C B^T is computed and B, C read once per group and dB, dC need no atomics; dt and cs
are recomputed wherever they are needed (cheaper than a buffer). Each sequence starts a chunk
(the launcher's chunk table gives every chunk's first position and length); positions past a
chunk's length are masked (dt = 0: decay 1, no input). Offsets are int64 (B * L * H * P passes
2^31 at real sizes) up to each tile's base; inside a tile they are int32. Matmul operands are in
the input dtype (bf16 / fp16 tensor cores; tf32x3 for fp32), accumulation in fp32; the passing
kernels combine in fp32 and store the per-chunk states in the buffer's dtype.
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
def _chunk_flag(ptr, chunk, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr):
    """A chunk's flag as a (BLOCK_P, BLOCK_N) bool tile: a scalar mask broadcast inside
    `tl.load`'s mask is rejected by the interpreter (triton 3.9)."""
    return (tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.int32) + tl.load(ptr + chunk)) != 0


@triton.jit
def _sequence_of(chunk_seq_ptr, chunk, row, VARLEN: tl.constexpr):
    """The row of the initial / final states a chunk belongs to (int64)."""
    if VARLEN:
        return tl.load(chunk_seq_ptr + chunk).to(tl.int64)
    return row


@triton.jit
def _entering_state(states_ptr, init_ptr, chunk_first_ptr, chunk_seq_ptr, chunk, row, head,
                    H, P, N, n_chunks, p, n, HAS_INIT: tl.constexpr, VARLEN: tl.constexpr,
                    BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr):
    """h_{c-1} (BLOCK_P, BLOCK_N) fp32: the state after chunk c - 1 (`_state_passing_fwd`
    wrote it over that chunk's local state), or the sequence's initial state (or 0) where chunk
    c starts a sequence."""
    first = _chunk_flag(chunk_first_ptr, chunk, BLOCK_P, BLOCK_N)
    in_state = (p[:, None] < P) & (n[None, :] < N)
    tile = p[:, None] * N + n[None, :]
    # chunk 0 always starts its row's first sequence: chunk - 1 is only read when it exists
    state = tl.load(states_ptr + _state_offset(row, chunk - 1, n_chunks, head, H, P, N) + tile,
                    mask=in_state & ~first, other=0.0).to(tl.float32)
    if HAS_INIT:
        sequence = _sequence_of(chunk_seq_ptr, chunk, row, VARLEN)
        state += tl.load(init_ptr + (sequence * H + head) * P * N + tile, mask=in_state & first,
                         other=0.0)
    return state


@triton.jit
def _leaving_adjoint(adjoints_ptr, dfinal_ptr, chunk_last_ptr, chunk_seq_ptr, chunk, row, head,
                     H, P, N, n_chunks, p, n, HAS_DFINAL: tl.constexpr, VARLEN: tl.constexpr,
                     BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr):
    """g_c (BLOCK_P, BLOCK_N) fp32, the adjoint of the state after chunk c: what
    `_adjoint_passing` left at chunk c + 1, or the sequence's d final state (or 0) where chunk c
    ends a sequence."""
    last = _chunk_flag(chunk_last_ptr, chunk, BLOCK_P, BLOCK_N)
    in_state = (p[:, None] < P) & (n[None, :] < N)
    tile = p[:, None] * N + n[None, :]
    # the row's last chunk always ends a sequence: chunk + 1 is only read when it exists
    adjoint = tl.load(adjoints_ptr + _state_offset(row, chunk + 1, n_chunks, head, H, P, N) + tile,
                      mask=in_state & ~last, other=0.0).to(tl.float32)
    if HAS_DFINAL:
        sequence = _sequence_of(chunk_seq_ptr, chunk, row, VARLEN)
        adjoint += tl.load(dfinal_ptr + (sequence * H + head) * P * N + tile,
                           mask=in_state & last, other=0.0)
    return adjoint


@triton.jit
def _chunk_state_kernel(
    a_ptr, dt_ptr, A_ptr, dt_bias_ptr, b_ptr, chunk_start_ptr, chunk_len_ptr,
    states_ptr,  # (rows, chunks, H, P, N) out: the chunk's local state (or adjoint)
    decay_ptr,  # (rows, H, chunks) fp32 out: cs_last, the log of the chunk's total decay
    H, G, P, N, n_chunks,
    sa_b, sa_l, sa_h, sa_p, sdt_b, sdt_l, sdt_h, sb_b, sb_l, sb_g, sb_n,
    ADJOINT: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, Q: tl.constexpr,
    SUB: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr,
    DOT_PRECISION: tl.constexpr, DOT_DTYPE: tl.constexpr,
):
    """One program per (chunk, row x head), all chunks at once: the chunk's own state from zero,
    S_c = (x o exp(cs_last - cs) dt)^T B (a = x, b = B), and its total decay; ADJOINT: what the
    chunk adds to the adjoint arriving at its start, sum_t exp(cs_t) dy_t C_t^T (a = dy, b = C).
    The chunk is read SUB positions at a time (tiles of the backward's size: a chunk of Q > SUB
    is the forward's, fewer states to pass), the state carried from sub-block to sub-block."""
    chunk = tl.program_id(0)
    row = (tl.program_id(1) // H).to(tl.int64)
    head = tl.program_id(1) % H
    group = head // (H // G)
    start = tl.load(chunk_start_ptr + chunk).to(tl.int64)
    length = tl.load(chunk_len_ptr + chunk)
    p = tl.arange(0, BLOCK_P)
    n = tl.arange(0, BLOCK_N)
    inner = tl.arange(0, SUB)
    state = tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.float32)
    cs_before = tl.full([], 0.0, dtype=tl.float32)  # cs at the end of the sub-blocks before
    for sub in range(Q // SUB):
        t = sub * SUB + inner
        valid = t < length
        dt, cs = _chunk_decays(dt_ptr, dt_bias_ptr, A_ptr, row, start, t, valid, head,
                               sdt_b, sdt_l, sdt_h, HAS_BIAS, SOFTPLUS)  # cs from the sub-block's start
        cs_last = _last_of(cs, inner, SUB)
        if ADJOINT:
            weight = tl.exp(cs_before + cs)
        else:
            weight = _decay_to_end(cs, cs_last, inner, SUB) * dt
            state = tl.exp(cs_last) * state
        a = _load_rows(a_ptr, row, start, t, valid, sa_b, sa_l, head, sa_h, p, P, sa_p)
        b = _load_rows(b_ptr, row, start, t, valid, sb_b, sb_l, group, sb_g, n, N, sb_n)
        weighted = (a.to(tl.float32) * weight[:, None]).to(DOT_DTYPE)
        state += tl.dot(tl.trans(weighted), b.to(DOT_DTYPE), input_precision=DOT_PRECISION)
        cs_before += cs_last
    if not ADJOINT:
        tl.store(decay_ptr + (row * H + head) * n_chunks + chunk, cs_before)
    offsets = _state_offset(row, chunk, n_chunks, head, H, P, N) + p[:, None] * N + n[None, :]
    tl.store(states_ptr + offsets, state.to(states_ptr.dtype.element_ty),
             mask=(p[:, None] < P) & (n[None, :] < N))


@triton.jit
def _passing_tile(states_ptr, decay_ptr, row, head, H, PN, n_chunks, first_chunk, rel, entries):
    """A tile of CHUNKS chunks (first_chunk + rel) x BLOCK state entries for the walks: its int64
    base and int32 (CHUNKS, BLOCK) offsets (a tile of int64 offsets would cost a register pair
    per element), mask, values in the buffer's dtype (straight into the tile's matmul), and each
    chunk's log decay (0 past the last chunk: the walk passes through)."""
    chunks = first_chunk + rel
    live = chunks < n_chunks
    base = ((row * n_chunks + first_chunk) * H + head) * PN
    offsets = (rel * (H * PN))[:, None] + entries[None, :]
    mask = live[:, None] & (entries < PN)[None, :]
    values = tl.load(states_ptr + base + offsets, mask=mask, other=0.0)
    log_decay = tl.load(decay_ptr + (row * H + head) * n_chunks + chunks, mask=live, other=0.0)
    return base, offsets, mask, values, log_decay, chunks, live


@triton.jit
def _sequence_restarts(flag_ptr, chunk_seq_ptr, chunks, live, head, H, PN, entries):
    """Packed sequences: the chunks' flags (start or end a sequence) and the offsets of their
    sequences' rows in the (sequences, H, P, N) initial / final states."""
    flag = tl.load(flag_ptr + chunks, mask=live, other=0) != 0
    sequence = tl.load(chunk_seq_ptr + chunks, mask=live, other=0).to(tl.int64)
    return flag, (sequence * H + head)[:, None] * PN + entries[None, :]


@triton.jit
def _walk_tile(values, log_decay, restart, carry, CHUNKS: tl.constexpr, VARLEN: tl.constexpr,
               DOT_PRECISION: tl.constexpr, DOT_DTYPE: tl.constexpr):
    """h_k = a_k h_{k-1} + b_k over a tile's rows k (b = values (CHUNKS, BLOCK), a_k =
    exp(log_decay_k), 0 where `restart`), from h = carry before row 0, as one matmul:
    h = M b + exp(L) carry, L the cumulative log decay, M[k, j] = exp(L_k - L_j) for j <= k
    with no restart in (j, k] (exponents <= 0). A matmul, not `tl.associative_scan`: its operand
    comes straight from memory (Triton pipelines such loads through shared memory) and it holds
    few registers per element (the scan held ~7.6), so more of the serial walks run at once."""
    k = tl.arange(0, CHUNKS)
    cumulative = tl.cumsum(log_decay, axis=0)
    reach = k[:, None] >= k[None, :]
    carry_weight = tl.exp(cumulative)
    if VARLEN:
        segment = tl.cumsum(restart.to(tl.int32), axis=0)  # restarts up to and including k
        reach = reach & (segment[:, None] == segment[None, :])
        carry_weight = tl.where(segment == 0, carry_weight, 0.0)
    weights = tl.exp(tl.where(reach, cumulative[:, None] - cumulative[None, :], float("-inf")))
    h = tl.dot(weights.to(DOT_DTYPE), values.to(DOT_DTYPE), input_precision=DOT_PRECISION)
    return h + carry_weight[:, None] * carry[None, :]


@triton.jit
def _state_passing_fwd_kernel(
    states_ptr,  # (rows, chunks, H, P, N): local states in, states after each chunk out
    decay_ptr,  # (rows, H, chunks) fp32: cs_last, the chunks' log decays
    init_ptr, final_ptr,  # (sequences, H, P, N) fp32
    chunk_first_ptr, chunk_last_ptr, chunk_seq_ptr,
    H, PN, n_chunks,
    HAS_INIT: tl.constexpr, STORE_FINAL: tl.constexpr, VARLEN: tl.constexpr,
    CHUNKS: tl.constexpr, BLOCK: tl.constexpr, DOT_PRECISION: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
):
    """h_c = exp(cs_last_c) h_{c-1} + S_c (h_{c-1} the initial state or 0 where chunk c starts a
    sequence), in place over the local states; one program per (BLOCK state entries, row x
    head) walks the chunks CHUNKS at a time (`_walk_tile`), so the walk waits for memory once
    per tile, not per chunk. Without packed sequences only chunk 0 starts one: the walk starts
    from the initial state and ends at the final one, no per-chunk restarts."""
    row = (tl.program_id(1) // H).to(tl.int64)
    head = tl.program_id(1) % H
    entries = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    in_state = entries < PN
    own_row = (row * H + head) * PN + entries  # this row's initial / final state
    step = tl.arange(0, CHUNKS)
    carry = tl.zeros([BLOCK], dtype=tl.float32)  # the state after the previous tile
    if HAS_INIT and not VARLEN:
        carry = tl.load(init_ptr + own_row, mask=in_state, other=0.0)
    for tile in range(0, tl.cdiv(n_chunks, CHUNKS)):
        base, offsets, mask, local, log_decay, chunks, live = _passing_tile(
            states_ptr, decay_ptr, row, head, H, PN, n_chunks, tile * CHUNKS, step, entries)
        first = chunks < 0  # no restart inside the tiles of a row without packed sequences
        if VARLEN:
            first, own = _sequence_restarts(chunk_first_ptr, chunk_seq_ptr, chunks, live, head,
                                            H, PN, entries)
            if HAS_INIT:
                local = local.to(tl.float32) + tl.exp(log_decay)[:, None] * tl.load(
                    init_ptr + own, mask=mask & first[:, None], other=0.0)
        state = _walk_tile(local, log_decay, first, carry, CHUNKS, VARLEN, DOT_PRECISION,
                           DOT_DTYPE)
        tl.store(states_ptr + base + offsets, state.to(states_ptr.dtype.element_ty), mask=mask)
        if STORE_FINAL and VARLEN:
            last = tl.load(chunk_last_ptr + chunks, mask=live, other=0) != 0
            tl.store(final_ptr + own, state, mask=mask & last[:, None])
        carry = tl.sum(tl.where(step[:, None] == CHUNKS - 1, state, 0.0), axis=0)
    if STORE_FINAL and not VARLEN:
        tl.store(final_ptr + own_row, carry, mask=in_state)


@triton.jit
def _adjoint_passing_kernel(
    adjoints_ptr,  # (rows, chunks, H, P, N): each chunk's own adjoint in, u_c out (see below)
    decay_ptr,  # (rows, H, chunks) fp32: cs_last, the chunks' log decays
    dfinal_ptr, dinit_ptr,  # (sequences, H, P, N) fp32
    chunk_first_ptr, chunk_last_ptr, chunk_seq_ptr,
    H, PN, n_chunks,
    HAS_DFINAL: tl.constexpr, STORE_DINIT: tl.constexpr, VARLEN: tl.constexpr,
    CHUNKS: tl.constexpr, BLOCK: tl.constexpr, DOT_PRECISION: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
):
    """u_c = exp(cs_last_c) g_c + A_c, the adjoint arriving at chunk c's start (g_c = u_{c+1},
    or the sequence's d final state where chunk c ends it), in place over the chunks' own parts
    A_c; walked from the last chunk, CHUNKS at a time as `_state_passing_fwd` (a tile's rows in
    descending chunk order). Also d initial states: u at a sequence's first chunk."""
    row = (tl.program_id(1) // H).to(tl.int64)
    head = tl.program_id(1) % H
    entries = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    in_state = entries < PN
    own_row = (row * H + head) * PN + entries
    descending = CHUNKS - 1 - tl.arange(0, CHUNKS)  # scan order inside a tile
    carry = tl.zeros([BLOCK], dtype=tl.float32)  # u at the first chunk of the tile after
    if HAS_DFINAL and not VARLEN:
        carry = tl.load(dfinal_ptr + own_row, mask=in_state, other=0.0)
    tiles = tl.cdiv(n_chunks, CHUNKS)
    for back in range(0, tiles):
        base, offsets, mask, own_part, log_decay, chunks, live = _passing_tile(
            adjoints_ptr, decay_ptr, row, head, H, PN, n_chunks, (tiles - 1 - back) * CHUNKS,
            descending, entries)
        last = chunks < 0  # no sequence end inside the tiles of a row without packed sequences
        if VARLEN:
            last, own = _sequence_restarts(chunk_last_ptr, chunk_seq_ptr, chunks, live, head, H,
                                           PN, entries)
            if HAS_DFINAL:
                own_part = own_part.to(tl.float32) + tl.exp(log_decay)[:, None] * tl.load(
                    dfinal_ptr + own, mask=mask & last[:, None], other=0.0)
        adjoint = _walk_tile(own_part, log_decay, last, carry, CHUNKS, VARLEN, DOT_PRECISION,
                             DOT_DTYPE)
        tl.store(adjoints_ptr + base + offsets, adjoint.to(adjoints_ptr.dtype.element_ty),
                 mask=mask)
        if STORE_DINIT and VARLEN:
            first = tl.load(chunk_first_ptr + chunks, mask=live, other=0) != 0
            tl.store(dinit_ptr + own, adjoint, mask=mask & first[:, None])
        carry = tl.sum(tl.where(descending[:, None] == 0, adjoint, 0.0), axis=0)
    if STORE_DINIT and not VARLEN:
        tl.store(dinit_ptr + own_row, carry, mask=in_state)


@triton.jit
def _cs_before(dt_ptr, dt_bias_ptr, A_ptr, row, start, length, head, sdt_b, sdt_l, sdt_h,
               sub_blocks, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, SUB: tl.constexpr):
    """cs at the end of a chunk's first `sub_blocks` sub-blocks (the sum of dt A there)."""
    inner = tl.arange(0, SUB)
    total = tl.full([], 0.0, dtype=tl.float32)
    for sub in range(sub_blocks):
        t = sub * SUB + inner
        _, cs = _chunk_decays(dt_ptr, dt_bias_ptr, A_ptr, row, start, t, t < length, head,
                              sdt_b, sdt_l, sdt_h, HAS_BIAS, SOFTPLUS)
        total += _last_of(cs, inner, SUB)
    return total


@triton.jit
def _chunk_scan_fwd_kernel(
    x_ptr, dt_ptr, A_ptr, dt_bias_ptr, B_ptr, C_ptr, D_ptr, init_ptr,
    states_ptr,  # (rows, chunks, H, P, N): the states after each chunk
    chunk_start_ptr, chunk_len_ptr, chunk_first_ptr, chunk_seq_ptr,
    y_ptr,  # like x
    H, G, P, N, n_chunks,
    sx_b, sx_l, sx_h, sx_p, sdt_b, sdt_l, sdt_h, sB_b, sB_l, sB_g, sB_n, sC_b, sC_l, sC_g, sC_n,
    sy_b, sy_l, sy_h, sy_p,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr, D_PER_P: tl.constexpr,
    HAS_INIT: tl.constexpr, VARLEN: tl.constexpr, Q: tl.constexpr, SUB: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr, DOT_PRECISION: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
):
    """y = (C B^T o decay o dt_s) x + exp(cs) o (C h_{c-1}^T) + D x for the SUB output positions
    of one sub-block of a chunk: one program per (chunk x sub-block, row x group), all chunks at
    once, looping over the group's heads and, per head, over the chunk's sub-blocks up to its
    own (C B^T of a sub-block pair once per head; with SUB = Q, once per group)."""
    sub_blocks = Q // SUB
    chunk = tl.program_id(0) // sub_blocks
    own_sub = tl.program_id(0) % sub_blocks
    row = (tl.program_id(1) // G).to(tl.int64)
    group = tl.program_id(1) % G
    start = tl.load(chunk_start_ptr + chunk).to(tl.int64)
    length = tl.load(chunk_len_ptr + chunk)
    inner = tl.arange(0, SUB)
    t = own_sub * SUB + inner
    valid = t < length
    p = tl.arange(0, BLOCK_P)
    n = tl.arange(0, BLOCK_N)
    Cm = _load_rows(C_ptr, row, start, t, valid, sC_b, sC_l, group, sC_g, n, N, sC_n).to(DOT_DTYPE)
    if Q == SUB:
        Bm = _load_rows(B_ptr, row, start, t, valid, sB_b, sB_l, group, sB_g, n, N,
                        sB_n).to(DOT_DTYPE)
        CB_own = tl.dot(Cm, tl.trans(Bm), input_precision=DOT_PRECISION)  # (SUB_t, SUB_s) fp32
    heads_per_group = H // G
    for i in range(heads_per_group):
        head = group * heads_per_group + i
        dt, cs = _chunk_decays(dt_ptr, dt_bias_ptr, A_ptr, row, start, t, valid, head,
                               sdt_b, sdt_l, sdt_h, HAS_BIAS, SOFTPLUS)
        if Q == SUB:
            x = _load_rows(x_ptr, row, start, t, valid, sx_b, sx_l, head, sx_h, p, P,
                           sx_p).to(DOT_DTYPE)
            entering = _entering_state(states_ptr, init_ptr, chunk_first_ptr, chunk_seq_ptr,
                                       chunk, row, head, H, P, N, n_chunks, p, n, HAS_INIT,
                                       VARLEN, BLOCK_P, BLOCK_N)
            scores = (CB_own * _intra_decay(cs, inner, SUB) * dt[None, :]).to(DOT_DTYPE)
            y = tl.dot(scores, x, input_precision=DOT_PRECISION)  # (SUB, BP) fp32
        else:
            # cs from the chunk's start; the earlier sub-blocks' decays are differences of it
            cs_t = cs + _cs_before(dt_ptr, dt_bias_ptr, A_ptr, row, start, length, head, sdt_b,
                                   sdt_l, sdt_h, own_sub, HAS_BIAS, SOFTPLUS, SUB)
            y = tl.zeros([SUB, BLOCK_P], dtype=tl.float32)
            cs_s_before = tl.full([], 0.0, dtype=tl.float32)
            for sub in range(own_sub):
                s = sub * SUB + inner
                valid_s = s < length
                dt_s, cs_s = _chunk_decays(dt_ptr, dt_bias_ptr, A_ptr, row, start, s, valid_s,
                                           head, sdt_b, sdt_l, sdt_h, HAS_BIAS, SOFTPLUS)
                Bs = _load_rows(B_ptr, row, start, s, valid_s, sB_b, sB_l, group, sB_g, n, N,
                                sB_n).to(DOT_DTYPE)
                xs = _load_rows(x_ptr, row, start, s, valid_s, sx_b, sx_l, head, sx_h, p, P,
                                sx_p).to(DOT_DTYPE)
                # every s of an earlier sub-block precedes every t: the full block, exponents <= 0
                decay = tl.exp(cs_t[:, None] - (cs_s_before + cs_s)[None, :])
                CB = tl.dot(Cm, tl.trans(Bs), input_precision=DOT_PRECISION)
                y = tl.dot((CB * decay * dt_s[None, :]).to(DOT_DTYPE), xs, y,
                           input_precision=DOT_PRECISION)
                cs_s_before += _last_of(cs_s, inner, SUB)
            Bm = _load_rows(B_ptr, row, start, t, valid, sB_b, sB_l, group, sB_g, n, N,
                            sB_n).to(DOT_DTYPE)
            x = _load_rows(x_ptr, row, start, t, valid, sx_b, sx_l, head, sx_h, p, P,
                           sx_p).to(DOT_DTYPE)
            CB = tl.dot(Cm, tl.trans(Bm), input_precision=DOT_PRECISION)
            scores = (CB * _intra_decay(cs, inner, SUB) * dt[None, :]).to(DOT_DTYPE)
            y = tl.dot(scores, x, y, input_precision=DOT_PRECISION)
            cs = cs_t
            # loaded last: a (P, N) fp32 tile live across the loop above spills more
            entering = _entering_state(states_ptr, init_ptr, chunk_first_ptr, chunk_seq_ptr,
                                       chunk, row, head, H, P, N, n_chunks, p, n, HAS_INIT,
                                       VARLEN, BLOCK_P, BLOCK_N)
        y += tl.exp(cs)[:, None] * tl.dot(Cm, tl.trans(entering.to(DOT_DTYPE)),
                                          input_precision=DOT_PRECISION)
        if HAS_D:
            if D_PER_P:
                D = tl.load(D_ptr + head * P + p, mask=p < P, other=0.0).to(tl.float32)[None, :]
            else:
                D = tl.load(D_ptr + head).to(tl.float32)
            y += D * x.to(tl.float32)
        _store_rows(y_ptr, y, row, start, t, valid, sy_b, sy_l, head, sy_h, p, P, sy_p)


@triton.jit
def _chunk_scan_bwd_dx_kernel(
    dt_ptr, A_ptr, dt_bias_ptr, B_ptr, C_ptr, D_ptr, dy_ptr,
    adjoints_ptr, dfinal_ptr,  # u_c (`_adjoint_passing`), (sequences, H, P, N) fp32
    states_ptr, init_ptr,  # states after each chunk (`_state_passing_fwd`), (sequences, H, P, N)
    chunk_start_ptr, chunk_len_ptr, chunk_first_ptr, chunk_last_ptr, chunk_seq_ptr,
    dx_ptr,  # like x
    kappa_ptr,  # (rows, H, chunks) fp32 out: exp(cs_last) <g_c, h_{c-1}>
    H, G, P, N, n_chunks,
    sdt_b, sdt_l, sdt_h, sB_b, sB_l, sB_g, sB_n, sC_b, sC_l, sC_g, sC_n, sdy_b, sdy_l, sdy_h, sdy_p,
    sdx_b, sdx_l, sdx_h, sdx_p,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr, D_PER_P: tl.constexpr,
    HAS_DFINAL: tl.constexpr, HAS_INIT: tl.constexpr, VARLEN: tl.constexpr, Q: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr, DOT_PRECISION: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
):
    """dx = dt o (CBL^T dy + exp(cs_last - cs) B g^T) + D dy, and kappa_c, the entering state's
    share of d cs_last (here, where g_c is loaded anyway: in the serial adjoint walk the extra
    tile of states cost registers, i.e. resident walkers)."""
    chunk, row, group, start, length = _chunk_coordinates(chunk_start_ptr, chunk_len_ptr, G)
    t = tl.arange(0, Q)
    valid = t < length
    p = tl.arange(0, BLOCK_P)
    n = tl.arange(0, BLOCK_N)
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
        adjoint = _leaving_adjoint(adjoints_ptr, dfinal_ptr, chunk_last_ptr, chunk_seq_ptr, chunk,
                                   row, head, H, P, N, n_chunks, p, n, HAS_DFINAL, VARLEN,
                                   BLOCK_P, BLOCK_N)
        cs_last = _last_of(cs, t, Q)
        CBL = (CB * _intra_decay(cs, t, Q)).to(DOT_DTYPE)
        inner = tl.dot(tl.trans(CBL), dy, input_precision=DOT_PRECISION)  # (Q_s, BP)
        inner += _decay_to_end(cs, cs_last, t, Q)[:, None] * tl.dot(
            Bm, tl.trans(adjoint.to(DOT_DTYPE)), input_precision=DOT_PRECISION)
        dx = dt[:, None] * inner
        if HAS_D:
            if D_PER_P:
                D = tl.load(D_ptr + head * P + p, mask=p < P, other=0.0).to(tl.float32)[None, :]
            else:
                D = tl.load(D_ptr + head).to(tl.float32)
            dx += D * dy.to(tl.float32)
        _store_rows(dx_ptr, dx, row, start, t, valid, sdx_b, sdx_l, head, sdx_h, p, P, sdx_p)
        # last: loaded before the matmuls it spilled 592 B per thread on sm_90, here 448 B
        entering = _entering_state(states_ptr, init_ptr, chunk_first_ptr, chunk_seq_ptr, chunk,
                                   row, head, H, P, N, n_chunks, p, n, HAS_INIT, VARLEN,
                                   BLOCK_P, BLOCK_N)
        tl.store(kappa_ptr + (row * H + head) * n_chunks + chunk,
                 tl.exp(cs_last) * tl.sum(tl.sum(adjoint * entering, axis=1), axis=0))


@triton.jit
def _chunk_scan_bwd_dC_kernel(
    x_ptr, dt_ptr, A_ptr, dt_bias_ptr, B_ptr, C_ptr, dy_ptr,
    states_ptr, init_ptr,  # states after each chunk (`_state_passing_fwd`), (sequences, H, P, N)
    chunk_start_ptr, chunk_len_ptr, chunk_first_ptr, chunk_seq_ptr,
    dC_ptr,  # like C
    dcs_ptr, ddt_ptr,  # (rows, H, chunks, Q) fp32: the parts of d cs and d dt computed here
    H, G, P, N, n_chunks,
    sx_b, sx_l, sx_h, sx_p, sdt_b, sdt_l, sdt_h, sB_b, sB_l, sB_g, sB_n, sC_b, sC_l, sC_g, sC_n,
    sdy_b, sdy_l, sdy_h, sdy_p, sdC_b, sdC_l, sdC_g, sdC_n,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_INIT: tl.constexpr, VARLEN: tl.constexpr,
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
        state_in = _entering_state(states_ptr, init_ptr, chunk_first_ptr, chunk_seq_ptr, chunk,
                                   row, head, H, P, N, n_chunks, p, n, HAS_INIT, VARLEN,
                                   BLOCK_P, BLOCK_N)
        decay = _intra_decay(cs, t, Q)
        dy_x = tl.dot(dy, tl.trans(x), input_precision=DOT_PRECISION)  # G (Q_t, Q_s)
        W = dy_x * decay * dt[None, :]
        dC_state = tl.exp(cs)[:, None] * tl.dot(dy, state_in.to(DOT_DTYPE),
                                                input_precision=DOT_PRECISION)  # (Q, BN)
        dC = tl.dot(W.to(DOT_DTYPE), Bm, dC, input_precision=DOT_PRECISION) + dC_state
        F = tl.where(below, CB * W, 0.0)
        dcs = tl.sum(F, axis=1) - tl.sum(F, axis=0) + tl.sum(Cm.to(tl.float32) * dC_state, axis=1)
        tl.store(dcs_ptr + buffer + t, dcs)
        tl.store(ddt_ptr + buffer + t, tl.sum(CB * decay * dy_x, axis=0))
    _store_rows(dC_ptr, dC, row, start, t, valid, sdC_b, sdC_l, group, sdC_g, n, N, sdC_n)


@triton.jit
def _chunk_scan_bwd_dB_kernel(
    x_ptr, dt_ptr, dt_bias_ptr, A_ptr, B_ptr, C_ptr, dy_ptr,
    adjoints_ptr, dfinal_ptr,  # u_c (`_adjoint_passing`), (sequences, H, P, N) fp32
    dcs_ptr, ddt_part_ptr,  # (rows, H, chunks, Q) fp32
    kappa_ptr,  # (rows, H, chunks) fp32
    chunk_start_ptr, chunk_len_ptr, chunk_last_ptr, chunk_seq_ptr,
    dB_ptr, ddt_ptr,  # like B, dt
    dA_ptr, dbias_ptr,  # (rows, H, chunks) fp32 partial sums
    dD_ptr,  # (rows, H, chunks, P) fp32 partial sums
    H, G, P, N, n_chunks,
    sx_b, sx_l, sx_h, sx_p, sdt_b, sdt_l, sdt_h, sB_b, sB_l, sB_g, sB_n, sC_b, sC_l, sC_g, sC_n,
    sdy_b, sdy_l, sdy_h, sdy_p, sddt_b, sddt_l, sddt_h, sdB_b, sdB_l, sdB_g, sdB_n,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr,
    HAS_DFINAL: tl.constexpr, VARLEN: tl.constexpr, Q: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr, DOT_PRECISION: tl.constexpr,
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
        adjoint = _leaving_adjoint(adjoints_ptr, dfinal_ptr, chunk_last_ptr, chunk_seq_ptr, chunk,
                                   row, head, H, P, N, n_chunks, p, n, HAS_DFINAL, VARLEN,
                                   BLOCK_P, BLOCK_N)
        W = tl.dot(dy, tl.trans(x), input_precision=DOT_PRECISION) * _intra_decay(cs, t, Q) * dt[None, :]
        x_g = tl.dot(x, adjoint.to(DOT_DTYPE), input_precision=DOT_PRECISION)  # (Q, BN)
        dB = tl.dot(tl.trans(W.to(DOT_DTYPE)), Cm, dB, input_precision=DOT_PRECISION)
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
