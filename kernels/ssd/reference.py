"""PyTorch references for Mamba-2's state-space duality (SSD) layer, mamba_ssm's layouts.

Shared docstring of shapes (every implementation, reference and Triton, keeps it; the layouts
are those of mamba_ssm's `mamba_chunk_scan_combined`, time before heads):
    x, z                  (B, L, H, P)   P = head dim
    dt                    (B, L, H)
    A                     (H,) fp32, one scalar per head, negative for a decaying state
    B, C                  (B, L, G, N)   G groups dividing H: head h reads group h // (H // G)
    D                     (H,) or (H, P)
    dt_bias               (H,)
    initial_states        (B, H, P, N) fp32; with cu_seqlens: (S, H, P, N), one per sequence
    returns y (B, L, H, P) in x's dtype, and with return_final_states the state after the last
    position, (B, H, P, N) fp32 (with cu_seqlens: (S, H, P, N), one per sequence)

Math, per batch row and head (h_t is a (P, N) matrix):
    dt = softplus(dt + dt_bias)                                   (bias and softplus optional)
    h_t = exp(dt_t * A) * h_{t-1} + dt_t * x_t B_t^T             h_{-1} = initial state or 0
    y_t = h_t C_t + D * x_t;   y_t = y_t * silu(z_t)             (D and z optional)

Packed variable-length batches: with batch 1 and `cu_seqlens` = [0, l1, l1 + l2, ..., L] (int),
each segment is an independent sequence: its state starts from zero (or its row of
initial_states), and the final states hold one row per sequence (an empty sequence's is its
initial state).

Three implementations with one signature (the chunked one also takes `chunk_size`):
- `ssd_ref`: the recurrence above, one position after the other in fp32: the test oracle.
- `ssd_quadratic`: the "attention form" y = (L o C B^T) (dt x) with the decay mask
  L[t, s] = exp(sum_{r=s+1..t} dt_r A), O(L^2) per head: for short sequences.
- `ssd_chunked`: the chunked algorithm of the SSD paper, the backend the Triton kernels follow.
  Inside a chunk of Q positions the decays are differences of a chunk-local cumulative sum, the
  output is two matmuls (C B^T masked by the decays, times dt x); each chunk's contribution to
  the state is a third; the chunk states are passed from chunk to chunk by a log-depth scan; the
  state entering a chunk reaches its outputs through a fourth matmul with C. Autograd
  differentiates it; memory O(B * L * H * Q) for the masks.

Computation in fp32 (fp64 when x is fp64); y is cast to x's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import compute_dtype


def check_ssd_shapes(x, dt, A, B, C, D, z, dt_bias, initial_states, cu_seqlens) -> None:
    """Raise ValueError naming the first argument whose shape breaks the layout above."""
    if x.dim() != 4:
        raise ValueError(f"ssd: x must be (B, L, H, P), got shape {tuple(x.shape)}")
    batch, L, H, P = x.shape
    if tuple(dt.shape) != (batch, L, H):
        raise ValueError(f"ssd: dt must be (B={batch}, L={L}, H={H}), got {tuple(dt.shape)}")
    if z is not None and z.shape != x.shape:
        raise ValueError(f"ssd: z must be {tuple(x.shape)}, got {tuple(z.shape)}")
    if tuple(A.shape) != (H,):
        raise ValueError(f"ssd: A must be (H={H},), one scalar per head, got {tuple(A.shape)}")
    if B.dim() != 4 or B.shape[:2] != (batch, L) or B.shape[2] < 1 or H % B.shape[2]:
        raise ValueError(
            f"ssd: B must be (B={batch}, L={L}, G, N) with G dividing H={H}, got {tuple(B.shape)}"
        )
    if C.shape != B.shape:
        raise ValueError(f"ssd: C must have B's shape {tuple(B.shape)}, got {tuple(C.shape)}")
    N = B.shape[3]
    if D is not None and tuple(D.shape) not in ((H,), (H, P)):
        raise ValueError(f"ssd: D must be (H={H},) or (H={H}, P={P}), got {tuple(D.shape)}")
    if dt_bias is not None and tuple(dt_bias.shape) != (H,):
        raise ValueError(f"ssd: dt_bias must be (H={H},), got {tuple(dt_bias.shape)}")
    rows = batch
    if cu_seqlens is not None:
        if batch != 1:
            raise ValueError(f"ssd: cu_seqlens needs a packed batch of 1, got batch {batch}")
        if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2 or cu_seqlens.is_floating_point():
            raise ValueError("ssd: cu_seqlens must be a 1-D integer tensor [0, l1, l1 + l2, ..., L]")
        bounds = cu_seqlens.tolist()
        if bounds[0] != 0 or bounds[-1] != L or any(b < a for a, b in zip(bounds, bounds[1:])):
            raise ValueError(f"ssd: cu_seqlens must rise from 0 to L={L} without going down, got {bounds}")
        rows = len(bounds) - 1
    if initial_states is not None and tuple(initial_states.shape) != (rows, H, P, N):
        which = "S" if cu_seqlens is not None else "B"
        raise ValueError(
            f"ssd: initial_states must be ({which}={rows}, H={H}, P={P}, N={N}), got "
            f"{tuple(initial_states.shape)}"
        )


def prepare_dt(dt, dt_bias, dt_softplus, dtype):
    """dt `(B, L, H)` -> softplus(dt + dt_bias) in `dtype` (bias and softplus optional)."""
    dt = dt.to(dtype)
    if dt_bias is not None:
        dt = dt + dt_bias.to(dtype)
    return F.softplus(dt) if dt_softplus else dt


def expand_groups(m: torch.Tensor, H: int) -> torch.Tensor:
    """(B, L, G, N) -> (B, L, H, N): head h reads group h // (H // G)."""
    return m.repeat_interleave(H // m.shape[2], dim=2)


def finish_output(y, x, D, z, out_dtype):
    """y + D x, then y * silu(z); cast to the output dtype. y, x, z `(B, L, H, P)`."""
    if D is not None:
        D = D.to(y.dtype)
        y = y + x * (D[:, None] if D.dim() == 1 else D)
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y.to(out_dtype)


def segments(cu_seqlens, L: int) -> list[tuple[int, int]]:
    bounds = [0, L] if cu_seqlens is None else cu_seqlens.tolist()
    return list(zip(bounds[:-1], bounds[1:]))


def _per_sequence(core, x, dt, A, B, C, D, z, dt_bias, dt_softplus, initial_states,
                  return_final_states, cu_seqlens):
    """Run `core(x, dt, A, B, C, h0) -> (y, h_last)` (prepared fp inputs, no D/z) on every row
    or packed sequence and assemble the public outputs."""
    check_ssd_shapes(x, dt, A, B, C, D, z, dt_bias, initial_states, cu_seqlens)
    batch, L, H, P = x.shape
    N = B.shape[3]
    dtype = compute_dtype(x)
    x_c = x.to(dtype)
    dt_c = prepare_dt(dt, dt_bias, dt_softplus, dtype)
    A_c = A.to(dtype)
    B_c, C_c = expand_groups(B.to(dtype), H), expand_groups(C.to(dtype), H)  # (B, L, H, N)
    if cu_seqlens is None:
        h0 = initial_states.to(dtype) if initial_states is not None else x_c.new_zeros(batch, H, P, N)
        y, final = core(x_c, dt_c, A_c, B_c, C_c, h0)
    else:
        pieces, finals = [], []
        for index, (start, end) in enumerate(segments(cu_seqlens, L)):
            h0 = (initial_states[index : index + 1].to(dtype) if initial_states is not None
                  else x_c.new_zeros(1, H, P, N))
            piece = slice(start, end)
            y_seq, h_seq = core(x_c[:, piece], dt_c[:, piece], A_c, B_c[:, piece], C_c[:, piece], h0)
            pieces.append(y_seq)
            finals.append(h_seq)
        y, final = torch.cat(pieces, dim=1), torch.cat(finals, dim=0)
    y = finish_output(y, x_c, D, z, x.dtype)
    return (y, final) if return_final_states else y


def _recurrent_core(x, dt, A, B, C, h):
    """x `(b, T, H, P)`, dt `(b, T, H)`, B/C `(b, T, H, N)`, h `(b, H, P, N)` -> y, h after."""
    outputs = []
    # unbind, not indexing: its backward stacks the steps' gradients once instead of writing T
    # zero tensors of the full length
    for x_t, dt_t, B_t, C_t in zip(x.unbind(1), dt.unbind(1), B.unbind(1), C.unbind(1)):
        decay = torch.exp(dt_t * A)[..., None, None]  # (b, H, 1, 1)
        h = decay * h + (dt_t[..., None] * x_t)[..., None] * B_t[:, :, None, :]  # (b, H, P, N)
        outputs.append(torch.einsum("bhpn,bhn->bhp", h, C_t))
    y = torch.stack(outputs, dim=1) if outputs else x.new_zeros(x.shape)  # (b, T, H, P)
    return y, h


def ssd_ref(x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False, initial_states=None,
            return_final_states=False, cu_seqlens=None):
    """Sequential recurrence, one position after the other: the obviously-correct oracle for
    tests. O(L) Python steps, so keep L small. Shapes: the module docstring."""
    return _per_sequence(_recurrent_core, x, dt, A, B, C, D, z, dt_bias, dt_softplus,
                         initial_states, return_final_states, cu_seqlens)


def segsum(a: torch.Tensor) -> torch.Tensor:
    """a `(..., T)` -> `(..., T, T)`: [t, s] = sum of a over (s, t] for s <= t, -inf above the
    diagonal. Summed directly, not as a difference of cumulative sums, so it stays exact for
    steep decays (the cumsum difference loses digits when the cumsums grow large)."""
    T = a.shape[-1]
    lower = torch.ones(T, T, dtype=torch.bool, device=a.device).tril(-1)
    terms = a[..., :, None].expand(*a.shape, T).masked_fill(~lower, 0)  # [r, s] = a_r for r > s
    sums = terms.cumsum(dim=-2)  # [t, s] = sum over r in (s, t]
    return sums.masked_fill(~lower.logical_or(torch.eye(T, dtype=torch.bool, device=a.device)), float("-inf"))


def _quadratic_core(x, dt, A, B, C, h0):
    """The attention form on one stretch: x `(b, T, H, P)` ... -> y, state after it."""
    a = (dt * A).transpose(1, 2)  # (b, H, T)
    decay = torch.exp(segsum(a))  # (b, H, T, T)
    scores = torch.einsum("bthn,bshn->bhts", C, B) * decay  # (b, H, T, T)
    y = torch.einsum("bhts,bsh,bshp->bthp", scores, dt, x)
    decay_in = torch.exp(torch.cumsum(a, dim=-1))  # (b, H, T): from the initial state to t
    y = y + torch.einsum("bthn,bhpn,bht->bthp", C, h0, decay_in)
    if x.shape[1] == 0:
        return y, h0
    to_end = decay[:, :, -1, :]  # (b, H, T): from s to the last position
    h = torch.einsum("bhs,bsh,bshp,bshn->bhpn", to_end, dt, x, B) + decay_in[:, :, -1, None, None] * h0
    return y, h


def ssd_quadratic(x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False,
                  initial_states=None, return_final_states=False, cu_seqlens=None):
    """The quadratic "attention form" (SSD's dual): O(L^2) memory per head, for short L."""
    return _per_sequence(_quadratic_core, x, dt, A, B, C, D, z, dt_bias, dt_softplus,
                         initial_states, return_final_states, cu_seqlens)


def chunk_layout(cu_seqlens, batch: int, L: int, chunk_size: int, device):
    """Where each sequence's positions go when every sequence starts on a chunk boundary.

    Returns (rows, padded_length, positions, first_chunk, sequence_of_chunk):
    - without cu_seqlens: each batch row is one sequence padded at its end to whole chunks;
      `positions` is None.
    - with cu_seqlens (batch 1): the sequences are laid end to end in one row, each padded at
      its end to a whole number of chunks; `positions` (L,) long gives the padded position of
      every packed position, so no chunk straddles two sequences.
    `first_chunk` (chunks,) bool marks the chunks where a sequence starts (its state restarts);
    `sequence_of_chunk` (chunks,) long the sequence a chunk belongs to (its initial-state row);
    `last_chunk` (S,) long the chunk holding each sequence's last position, -1 for an empty one.
    """
    if cu_seqlens is None:
        chunks = max(1, -(-L // chunk_size))
        first = torch.zeros(chunks, dtype=torch.bool, device=device)
        first[0] = True
        return (batch, chunks * chunk_size, None, first,
                torch.zeros(chunks, dtype=torch.long, device=device),
                torch.full((batch,), chunks - 1, dtype=torch.long, device=device))
    bounds = cu_seqlens.tolist()
    positions, first, owner, last = [], [], [], []
    padded = 0
    for index, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        length = end - start
        positions.append(torch.arange(padded, padded + length, device=device))
        chunks = -(-length // chunk_size)
        first.extend([True] + [False] * (chunks - 1) if chunks else [])
        owner.extend([index] * chunks)
        padded += chunks * chunk_size
        last.append(padded // chunk_size - 1 if chunks else -1)
    if padded == 0:  # only empty sequences: one idle chunk keeps every shape non-empty
        first, owner, padded = [True], [0], chunk_size
    positions = torch.cat(positions) if positions else torch.zeros(0, dtype=torch.long, device=device)
    return (1, padded, positions, torch.tensor(first, device=device),
            torch.tensor(owner, dtype=torch.long, device=device),
            torch.tensor(last, dtype=torch.long, device=device))


def to_chunk_layout(t: torch.Tensor, padded_length: int, positions) -> torch.Tensor:
    """(b, L, ...) -> (b, padded_length, ...), zeros in the padding (dt = 0 there: decay 1 and no
    input, so padding leaves the state as it was)."""
    out = t.new_zeros(t.shape[0], padded_length, *t.shape[2:])
    if positions is None:
        out[:, : t.shape[1]] = t
    else:
        out = out.index_copy(1, positions, t)
    return out


def from_chunk_layout(t: torch.Tensor, L: int, positions) -> torch.Tensor:
    return t[:, :L] if positions is None else t.index_select(1, positions)


def _shift_chunks(t: torch.Tensor, offset: int) -> torch.Tensor:
    """t[:, c - offset] at chunk c along dim 1, zeros where c < offset."""
    shifted = torch.zeros_like(t)
    shifted[:, offset:] = t[:, : t.shape[1] - offset]
    return shifted


def pass_states(chunk_states, chunk_decay, first_chunk, entering):
    """The state entering every chunk.

    chunk_states `(b, c, H, P, N)`: each chunk's contribution from zero; chunk_decay `(b, c, H)`:
    exp of the chunk's summed dt * A; first_chunk `(c,)` bool; entering `(b, c, H, P, N)`: the
    initial state of the sequence a first chunk starts (ignored elsewhere). The recurrence
    exit_c = decay_c * exit_{c-1} + states_c (exit_{c-1} replaced by `entering` at a first chunk)
    is composed by a log-depth (Hillis-Steele) scan over chunks: O(c log c) work, no Python loop
    over chunks, and decays in (0, 1] so nothing overflows.
    """
    restart = first_chunk[None, :, None]  # (1, c, 1)
    states = chunk_states + torch.where(restart, chunk_decay, 0)[..., None, None] * entering
    decay = torch.where(restart, 0, chunk_decay)
    offset = 1
    while offset < states.shape[1]:
        states = states + decay[..., None, None] * _shift_chunks(states, offset)
        decay = decay * _shift_chunks(decay, offset)
        offset *= 2
    exits = states  # (b, c, H, P, N): state after each chunk
    before = _shift_chunks(exits, 1)
    return torch.where(first_chunk[None, :, None, None, None], entering, before), exits


def ssd_chunked(x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False,
                initial_states=None, return_final_states=False, cu_seqlens=None, *, chunk_size=64):
    """The chunked SSD algorithm in PyTorch (the reference backend; autograd gives the backward).

    Shapes: the module docstring. Every sequence is padded at its end to whole chunks of
    `chunk_size` positions (packed sequences each start a chunk), with dt = 0 in the padding.
    """
    check_ssd_shapes(x, dt, A, B, C, D, z, dt_bias, initial_states, cu_seqlens)
    if chunk_size < 1:
        raise ValueError(f"ssd: chunk_size must be >= 1, got {chunk_size}")
    batch, L, H, P = x.shape
    G, N = B.shape[2:]
    Q = chunk_size
    dtype = compute_dtype(x)
    rows, padded, positions, first, owner, last = chunk_layout(cu_seqlens, batch, L, Q, x.device)
    chunks = padded // Q
    x_c = x.to(dtype)
    dt_c = prepare_dt(dt, dt_bias, dt_softplus, dtype)

    def chunked(t):  # (rows, L, ...) -> (rows, chunks, Q, ...)
        t = to_chunk_layout(t, padded, positions)
        return t.reshape(rows, chunks, Q, *t.shape[2:])

    xq, dtq = chunked(x_c), chunked(dt_c)  # (r, c, Q, H, P), (r, c, Q, H)
    Bq = chunked(B.to(dtype)).repeat_interleave(H // G, dim=3)  # (r, c, Q, H, N)
    Cq = chunked(C.to(dtype)).repeat_interleave(H // G, dim=3)
    a = dtq * A.to(dtype)  # (r, c, Q, H)
    a_cs = torch.cumsum(a, dim=2)  # chunk-local cumulative decay, <= 0
    eye = torch.eye(Q, dtype=torch.bool, device=x.device)
    below = torch.ones(Q, Q, dtype=torch.bool, device=x.device).tril(-1)
    # decay[t, s] = exp(a_cs[t] - a_cs[s]) for s < t, 1 on the diagonal: the difference stays
    # within one chunk, so its rounding is bounded by Q * |dt * A| (the form mamba_ssm's kernels
    # use). The diagonal is the constant 1, not exp(a_cs[t] - a_cs[t]): that difference's two
    # gradient paths cancel only to rounding, which leaves dA ~1e-7 where it should be ~0 once
    # every decay underflows.
    diff = a_cs[:, :, :, None, :] - a_cs[:, :, None, :, :]  # (r, c, Qt, Qs, H)
    decay = torch.exp(diff.masked_fill(~below[:, :, None], float("-inf"))) + eye[:, :, None]
    scores = torch.einsum("rcthn,rcshn->rctsh", Cq, Bq) * decay  # (r, c, Qt, Qs, H)
    dtx = dtq[..., None] * xq  # (r, c, Q, H, P)
    y = torch.einsum("rctsh,rcshp->rcthp", scores, dtx)  # intra-chunk output

    last_position = torch.arange(Q, device=x.device)[:, None] == Q - 1  # (Q, 1): exactly 1 there, as above
    to_end = torch.exp((a_cs[:, :, -1:] - a_cs).masked_fill(last_position, 0))  # (r, c, Q, H): s to the chunk's end
    chunk_states = torch.einsum("rcsh,rcshp,rcshn->rchpn", to_end, dtx, Bq)
    chunk_decay = torch.exp(a_cs[:, :, -1])  # (r, c, H)
    if initial_states is None:
        h0 = x_c.new_zeros(rows if cu_seqlens is None else len(last), H, P, N)
    else:
        h0 = initial_states.to(dtype)
    if cu_seqlens is None:
        entering = h0[:, None].expand(rows, chunks, H, P, N)
    else:
        entering = h0[owner][None]  # (1, c, H, P, N)
    states_in, states_out = pass_states(chunk_states, chunk_decay, first, entering)
    y = y + torch.einsum("rcthn,rchpn,rcth->rcthp", Cq, states_in, torch.exp(a_cs))  # from the state entering
    y = from_chunk_layout(y.reshape(rows, padded, H, P), L, positions)
    y = finish_output(y, x_c, D, z, x.dtype)
    if not return_final_states:
        return y
    if cu_seqlens is None:
        final = states_out[:, -1]  # (B, H, P, N)
    else:
        # an empty sequence never ran: its final state is its initial state
        has_chunks = (last >= 0)[:, None, None, None]
        final = torch.where(has_chunks, states_out[0, last.clamp(min=0)], h0[: len(last)])
    return y, final
