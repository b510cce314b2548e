"""PyTorch references for Mamba's selective scan (S6), with mamba_ssm's layouts.

Shared docstring of shapes (every implementation, reference and Triton, keeps it):
    u, delta, z           (B, H, L)
    A                     (H, N) fp32, negative for a decaying state
    B, C                  (B, G, N, L) input-dependent, G groups dividing H (channel h uses group
                          h // (H // G), as mamba_ssm), (B, N, L) for one group (mamba_ssm's
                          3-D layout, taken as G = 1), or (H, N) time-invariant
    D, delta_bias         (H,)
    initial_state         (B, H, N) fp32; with cu_seqlens: (S, H, N), one per sequence
    returns y (B, H, L) in u's dtype, and last_state (B, H, N) fp32 (with cu_seqlens: (S, H, N))

Math:
    delta = softplus(delta + delta_bias)          (bias and softplus optional)
    x_t = exp(delta_t * A) * x_{t-1} + delta_t * B_t * u_t      x_{-1} = initial_state or 0
    y_t = <x_t, C_t> + D * u_t;  y_t = y_t * silu(z_t)           (D and z optional)

Packed variable-length batches: with batch 1 and `cu_seqlens` = [0, l1, l1 + l2, ..., L] (int),
each segment is an independent sequence: the state restarts at every boundary from zero (or from
that sequence's row of initial_state), and last_state holds one final state per sequence.

Computation in fp32 (fp64 when u is fp64); y is cast to u's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .._checks import compute_dtype



def as_grouped(m: torch.Tensor) -> torch.Tensor:
    """mamba_ssm's single-group (B, N, L) B or C as (B, 1, N, L), a view (gradients flow back in
    the caller's shape); other layouts unchanged."""
    return m.unsqueeze(1) if m.dim() == 3 else m


def check_scan_shapes(u, delta, A, B, C, D, z, delta_bias, initial_state, cu_seqlens) -> None:
    """Raise ValueError naming the first argument whose shape breaks the layout above."""
    if u.dim() != 3:
        raise ValueError(f"selective_scan: u must be (B, H, L), got shape {tuple(u.shape)}")
    batch, H, L = u.shape
    if delta.shape != u.shape:
        raise ValueError(f"selective_scan: delta must be {tuple(u.shape)}, got {tuple(delta.shape)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"selective_scan: z must be {tuple(u.shape)}, got {tuple(z.shape)}")
    if A.dim() != 2 or A.shape[0] != H:
        raise ValueError(f"selective_scan: A must be (H={H}, N), got {tuple(A.shape)}")
    N = A.shape[1]
    for name, m in (("B", B), ("C", C)):
        if m.dim() == 2:
            if tuple(m.shape) != (H, N):
                raise ValueError(
                    f"selective_scan: time-invariant {name} must be (H={H}, N={N}), got {tuple(m.shape)}"
                )
        elif m.dim() == 4:
            G = m.shape[1]
            if m.shape[0] != batch or m.shape[2] != N or m.shape[3] != L or G < 1 or H % G:
                raise ValueError(
                    f"selective_scan: {name} must be (B={batch}, G, N={N}, L={L}) with G dividing "
                    f"H={H}, got {tuple(m.shape)}"
                )
        else:
            raise ValueError(
                f"selective_scan: {name} must be (B, G, N, L), (B, N, L) or (H, N), got {tuple(m.shape)}"
            )
    for name, vec in (("D", D), ("delta_bias", delta_bias)):
        if vec is not None and tuple(vec.shape) != (H,):
            raise ValueError(f"selective_scan: {name} must be (H={H},), got {tuple(vec.shape)}")
    if cu_seqlens is None:
        if initial_state is not None and tuple(initial_state.shape) != (batch, H, N):
            raise ValueError(
                f"selective_scan: initial_state must be (B={batch}, H={H}, N={N}), "
                f"got {tuple(initial_state.shape)}"
            )
        return
    if batch != 1:
        raise ValueError(f"selective_scan: cu_seqlens needs a packed batch of 1, got batch {batch}")
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2 or cu_seqlens.is_floating_point():
        raise ValueError(
            "selective_scan: cu_seqlens must be a 1-D integer tensor [0, l1, l1 + l2, ..., L]"
        )
    bounds = cu_seqlens.tolist()
    if bounds[0] != 0 or bounds[-1] != L or any(b < a for a, b in zip(bounds, bounds[1:])):
        raise ValueError(
            f"selective_scan: cu_seqlens must rise from 0 to L={L} without going down, got {bounds}"
        )
    n_seqs = len(bounds) - 1
    if initial_state is not None and tuple(initial_state.shape) != (n_seqs, H, N):
        raise ValueError(
            f"selective_scan: with cu_seqlens, initial_state must be (S={n_seqs}, H={H}, N={N}), "
            f"one row per sequence; got {tuple(initial_state.shape)}"
        )


def _prepare_delta(delta, delta_bias, delta_softplus, dtype):
    delta = delta.to(dtype)  # (B, H, L)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    return delta


def _expand_groups(m: torch.Tensor, H: int) -> torch.Tensor:
    """(B, G, N, T) -> (B, H, N, T): channel h reads group h // (H // G)."""
    batch, G, N, T = m.shape
    return m[:, :, None].expand(batch, G, H // G, N, T).reshape(batch, H, N, T)


def _finish_output(y, u, D, z, out_dtype):
    if D is not None:
        y = y + u * D.to(y.dtype)[:, None]
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y.to(out_dtype)


def _segments(cu_seqlens):
    bounds = cu_seqlens.tolist()
    return list(zip(bounds[:-1], bounds[1:]))


def selective_scan_ref(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    return_last_state=False, initial_state=None, cu_seqlens=None,
):
    """Sequential scan, one time step after the other: the obviously-correct oracle for tests.

    Mirrors mamba_ssm's `selective_scan_ref`; O(L) Python steps, so keep L small.
    """
    B, C = as_grouped(B), as_grouped(C)
    check_scan_shapes(u, delta, A, B, C, D, z, delta_bias, initial_state, cu_seqlens)
    batch, H, L = u.shape
    N = A.shape[1]
    dtype = compute_dtype(u)
    u_c = u.to(dtype)  # (B, H, L)
    delta = _prepare_delta(delta, delta_bias, delta_softplus, dtype)  # (B, H, L)
    A = A.to(dtype)  # (H, N)
    B_c = B.to(dtype) if B.dim() == 2 else _expand_groups(B.to(dtype), H)  # (H, N) | (B, H, N, L)
    C_c = C.to(dtype) if C.dim() == 2 else _expand_groups(C.to(dtype), H)

    # unbind, not indexing: its backward stacks the steps' gradients once, where L index
    # backwards would each write a zero tensor of the full length (O(L^2) for the oracle)
    u_steps, delta_steps = u_c.unbind(-1), delta.unbind(-1)  # L x (B, H)
    B_steps = [B_c] * L if B_c.dim() == 2 else B_c.unbind(-1)  # L x (H, N) | (B, H, N)
    C_steps = [C_c] * L if C_c.dim() == 2 else C_c.unbind(-1)

    segments = _segments(cu_seqlens) if cu_seqlens is not None else [(0, L)]
    outputs, last_states = [], []
    for seg, (start, end) in enumerate(segments):
        # every sequence starts from zero or its own initial state
        if initial_state is None:
            x = u_c.new_zeros(batch, H, N)
        elif cu_seqlens is None:
            x = initial_state.to(dtype)
        else:
            x = initial_state[seg : seg + 1].to(dtype)
        for t in range(start, end):
            dt = delta_steps[t][..., None]  # (B, H, 1)
            x = torch.exp(dt * A) * x + dt * B_steps[t] * u_steps[t][..., None]  # (B, H, N)
            outputs.append((x * C_steps[t]).sum(-1))  # (B, H)
        last_states.append(x)
    y = torch.stack(outputs, dim=-1) if outputs else u_c.new_zeros(batch, H, 0)  # (B, H, L)
    y = _finish_output(y, u_c, D, z, u.dtype)
    if not return_last_state:
        return y
    last_state = torch.cat(last_states, dim=0)  # (B | S, H, N)
    return y, last_state  # fp32 (fp64 for fp64 inputs)


def _shift_right(x: torch.Tensor, offset: int, fill: float) -> torch.Tensor:
    """x[..., t - offset] at position t along the last axis, `fill` where t < offset."""
    return F.pad(x[..., : x.shape[-1] - offset], (offset, 0), value=fill)


def _scan_chunk(u, delta, A, B, C, state):
    """One chunk of the parallel scan, from `state` entering it.

    u, delta (b, H, T); A (H, N); B, C (b, G, N, T) or (H, N); state (b, H, N).
    Returns y (b, H, T) without D/z, and the state after the chunk (b, H, N).

    Every step is an affine map x -> a_t * x + X_t. A log-depth (Hillis-Steele) scan composes
    them: after the pass with offset o, position t holds the composition of the steps
    (t - 2o, t], as (decay over the window, state reached from zero). Composing two maps
    multiplies decays in (0, 1], so nothing can overflow however steep the decay, and the work is
    O(T log T) multiply-adds with one exp per (channel, state, step), as in the sequential scan.
    """
    T = u.shape[-1]
    decay = torch.exp(delta[:, :, None, :] * A[:, :, None])  # (b, H, N, T), in (0, 1] for A <= 0
    H = u.shape[1]
    Bx = B[None, :, :, None] if B.dim() == 2 else _expand_groups(B, H)  # (1 | b, H, N, T)
    Cx = C[None, :, :, None] if C.dim() == 2 else _expand_groups(C, H)
    states = (delta * u)[:, :, None, :] * Bx  # (b, H, N, T): input injected at each step
    offset = 1
    while offset < T:
        states = states + decay * _shift_right(states, offset, 0.0)
        decay = decay * _shift_right(decay, offset, 1.0)
        offset *= 2
    # decay[..., t] is now the product of all decays of steps 0..t: the carried-in state's weight
    states = states + decay * state[..., None]  # (b, H, N, T)
    y = (states * Cx).sum(dim=2)  # (b, H, T)
    return y, states[..., -1]


def _split_time(x: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """Cut the last (time) axis into pieces; time-invariant (H, N) matrices are shared.

    torch.split rather than slicing: its backward concatenates the pieces' gradients once,
    where every slice's backward would write a zero tensor of the full length.
    """
    if x.dim() == 2:
        return [x] * len(sizes)
    return list(x.split(sizes, dim=-1))


def _scan_chunks(u, delta, A, B, C, state, chunk_size):
    """Scan one sequence (no cu_seqlens) chunk by chunk, carrying the state across chunks."""
    if u.shape[-1] == 0:
        return u.new_zeros(u.shape), state
    # Recompute each chunk in the backward instead of keeping its log2(T) intermediate
    # (b, H, N, T) tensors: memory saved for the backward is then one state per chunk.
    recompute = torch.is_grad_enabled() and any(
        t.requires_grad for t in (u, delta, A, B, C, state)
    )
    L = u.shape[-1]
    sizes = [min(chunk_size, L - start) for start in range(0, L, chunk_size)]
    pieces = zip(*(_split_time(t, sizes) for t in (u, delta, B, C)))
    ys = []
    for u_chunk, delta_chunk, B_chunk, C_chunk in pieces:
        args = (u_chunk, delta_chunk, A, B_chunk, C_chunk, state)
        if recompute:
            y, state = checkpoint(_scan_chunk, *args, use_reentrant=False)
        else:
            y, state = _scan_chunk(*args)
        ys.append(y)
    return torch.cat(ys, dim=-1), state


def selective_scan_chunked(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    return_last_state=False, initial_state=None, cu_seqlens=None, chunk_size=64,
):
    """Chunked parallel scan in PyTorch: same results as `selective_scan_ref`, usable on CPU at
    tens of thousands of positions and differentiable by autograd.

    Chunks of T = chunk_size steps are scanned one after the other, the state carried from each
    to the next; inside a chunk a log-depth scan computes all T states at once (see
    `_scan_chunk`). Working memory is O(B * H * N * T) per chunk, never O(B * H * N * L), and
    the backward recomputes chunk by chunk. Packed sequences (cu_seqlens) are scanned one
    segment at a time.
    """
    B, C = as_grouped(B), as_grouped(C)
    check_scan_shapes(u, delta, A, B, C, D, z, delta_bias, initial_state, cu_seqlens)
    if chunk_size < 1:
        raise ValueError(f"selective_scan_chunked: chunk_size must be >= 1, got {chunk_size}")
    batch, H, L = u.shape
    N = A.shape[1]
    dtype = compute_dtype(u)
    u_c = u.to(dtype)  # (B, H, L)
    delta = _prepare_delta(delta, delta_bias, delta_softplus, dtype)  # (B, H, L)
    A_c, B_c, C_c = A.to(dtype), B.to(dtype), C.to(dtype)

    lengths = [end - start for start, end in _segments(cu_seqlens)] if cu_seqlens is not None else [L]
    if initial_state is not None:
        starts = initial_state.to(dtype).split(1 if cu_seqlens is not None else batch, dim=0)
    else:
        starts = [u_c.new_zeros(batch, H, N)] * len(lengths)
    ys, last_states = [], []
    for u_seg, delta_seg, B_seg, C_seg, state in zip(
        _split_time(u_c, lengths), _split_time(delta, lengths),
        _split_time(B_c, lengths), _split_time(C_c, lengths), starts,
    ):
        y, state = _scan_chunks(u_seg, delta_seg, A_c, B_seg, C_seg, state, chunk_size)
        ys.append(y)
        last_states.append(state)
    y = torch.cat(ys, dim=-1)  # (B, H, L)
    y = _finish_output(y, u_c, D, z, u.dtype)
    if not return_last_state:
        return y
    last_state = torch.cat(last_states, dim=0)  # (B | S, H, N)
    return y, last_state  # fp32 (fp64 for fp64 inputs)
