"""PyTorch references for Mamba's selective scan (S6), with mamba_ssm's layouts.

Shared docstring of shapes (every implementation, reference and Triton, keeps it):
    u, delta, z           (B, H, L)
    A                     (H, N) fp32, negative for a decaying state
    B, C                  (B, G, N, L) input-dependent, G groups dividing H (channel h uses group
                          h // (H // G), as mamba_ssm), or (H, N) time-invariant
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


def _compute_dtype(u: torch.Tensor) -> torch.dtype:
    return torch.float64 if u.dtype == torch.float64 else torch.float32


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
                raise ValueError(f"selective_scan: time-invariant {name} must be (H={H}, N={N}), got {tuple(m.shape)}")
        elif m.dim() == 4:
            G = m.shape[1]
            if m.shape[0] != batch or m.shape[2] != N or m.shape[3] != L or G < 1 or H % G:
                raise ValueError(
                    f"selective_scan: {name} must be (B={batch}, G, N={N}, L={L}) with G dividing "
                    f"H={H}, got {tuple(m.shape)}"
                )
        else:
            raise ValueError(f"selective_scan: {name} must be (B, G, N, L) or (H, N), got {tuple(m.shape)}")
    for name, vec in (("D", D), ("delta_bias", delta_bias)):
        if vec is not None and tuple(vec.shape) != (H,):
            raise ValueError(f"selective_scan: {name} must be (H={H},), got {tuple(vec.shape)}")
    if cu_seqlens is None:
        if initial_state is not None and tuple(initial_state.shape) != (batch, H, N):
            raise ValueError(
                f"selective_scan: initial_state must be (B={batch}, H={H}, N={N}), got {tuple(initial_state.shape)}"
            )
        return
    if batch != 1:
        raise ValueError(f"selective_scan: cu_seqlens needs a packed batch of 1, got batch {batch}")
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2 or cu_seqlens.is_floating_point():
        raise ValueError("selective_scan: cu_seqlens must be a 1-D integer tensor [0, l1, l1 + l2, ..., L]")
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
    check_scan_shapes(u, delta, A, B, C, D, z, delta_bias, initial_state, cu_seqlens)
    batch, H, L = u.shape
    N = A.shape[1]
    dtype = _compute_dtype(u)
    u_c = u.to(dtype)  # (B, H, L)
    delta = _prepare_delta(delta, delta_bias, delta_softplus, dtype)  # (B, H, L)
    A = A.to(dtype)  # (H, N)
    B_c = B.to(dtype) if B.dim() == 2 else _expand_groups(B.to(dtype), H)  # (H, N) | (B, H, N, L)
    C_c = C.to(dtype) if C.dim() == 2 else _expand_groups(C.to(dtype), H)

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
            dt = delta[:, :, t, None]  # (B, H, 1)
            b_t = B_c if B_c.dim() == 2 else B_c[..., t]  # (H, N) | (B, H, N)
            c_t = C_c if C_c.dim() == 2 else C_c[..., t]
            x = torch.exp(dt * A) * x + dt * b_t * u_c[:, :, t, None]  # (B, H, N)
            outputs.append((x * c_t).sum(-1))  # (B, H)
        last_states.append(x)
    y = torch.stack(outputs, dim=-1) if outputs else u_c.new_zeros(batch, H, 0)  # (B, H, L)
    y = _finish_output(y, u_c, D, z, u.dtype)
    if not return_last_state:
        return y
    last_state = torch.cat(last_states, dim=0)  # (B | S, H, N)
    return y, last_state  # fp32 (fp64 for fp64 inputs)


def _scan_chunk(u, delta, A, B, C, state):
    """One chunk of the parallel scan, from `state` entering it.

    u, delta (b, H, T); A (H, N); B, C (b, H, N, T) or (H, N); state (b, H, N).
    Returns y (b, H, T) without D/z, and the state after the chunk (b, H, N).
    """
    T = u.shape[-1]
    dA = delta[:, :, None, :] * A[:, :, None]  # (b, H, N, T), <= 0 when A < 0
    dA_cumsum = torch.cumsum(dA, dim=-1)  # (b, H, N, T)
    Bx = B[None, :, :, None] if B.dim() == 2 else B
    Cx = C[None, :, :, None] if C.dim() == 2 else C
    X = (delta * u)[:, :, None, :] * Bx  # (b, H, N, T): input injected at each step
    # decay from step s to step t: exp(cumsum_t - cumsum_s), s <= t. The difference is <= 0 for
    # s <= t (never overflows); the upper triangle is masked to -inf BEFORE exp, since there the
    # difference is positive and could overflow to inf (and inf * 0 = nan in the backward).
    segsum = dA_cumsum[..., :, None] - dA_cumsum[..., None, :]  # (b, H, N, T_t, T_s)
    causal = torch.ones(T, T, dtype=torch.bool, device=u.device).tril()
    decay = torch.exp(segsum.masked_fill(~causal, float("-inf")))  # (b, H, N, T, T)
    states = torch.einsum("bhnts,bhns->bhnt", decay, X)  # (b, H, N, T): intra-chunk part
    states = states + torch.exp(dA_cumsum) * state[..., None]  # carried-in part
    y = (states * Cx).sum(dim=2)  # (b, H, T)
    return y, states[..., -1]


def _scan_chunks(u, delta, A, B, C, state, chunk_size):
    """Scan one sequence (no cu_seqlens) chunk by chunk, carrying the state across chunks."""
    L = u.shape[-1]
    H = u.shape[1]
    # Recompute each chunk in the backward instead of keeping its (b, H, N, T, T) decay matrix:
    # memory saved for the backward is then one state per chunk, not O(L * N * T).
    recompute = torch.is_grad_enabled() and any(
        t.requires_grad for t in (u, delta, A, B, C, state)
    )
    ys = []
    for start in range(0, L, chunk_size):
        end = min(start + chunk_size, L)
        B_chunk = B if B.dim() == 2 else _expand_groups(B[..., start:end], H)
        C_chunk = C if C.dim() == 2 else _expand_groups(C[..., start:end], H)
        args = (u[..., start:end], delta[..., start:end], A, B_chunk, C_chunk, state)
        if recompute:
            y, state = checkpoint(_scan_chunk, *args, use_reentrant=False)
        else:
            y, state = _scan_chunk(*args)
        ys.append(y)
    y = torch.cat(ys, dim=-1) if ys else u.new_zeros(u.shape)
    return y, state


def selective_scan_chunked(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    return_last_state=False, initial_state=None, cu_seqlens=None, chunk_size=64,
):
    """Chunked parallel scan in PyTorch: same results as `selective_scan_ref`, usable on CPU at
    tens of thousands of positions and differentiable by autograd.

    Within a chunk of T = chunk_size steps every state is a decay-weighted sum of the chunk's
    inputs (a (T, T) lower-triangular decay matrix per channel and state, from differences of
    the cumulative sum of delta * A) plus the decayed state carried in from the previous chunk.
    Working memory per chunk is O(B * H * N * T^2) and the backward recomputes chunk by chunk.
    """
    check_scan_shapes(u, delta, A, B, C, D, z, delta_bias, initial_state, cu_seqlens)
    if chunk_size < 1:
        raise ValueError(f"selective_scan_chunked: chunk_size must be >= 1, got {chunk_size}")
    batch, H, L = u.shape
    N = A.shape[1]
    dtype = _compute_dtype(u)
    u_c = u.to(dtype)  # (B, H, L)
    delta = _prepare_delta(delta, delta_bias, delta_softplus, dtype)  # (B, H, L)
    A_c, B_c, C_c = A.to(dtype), B.to(dtype), C.to(dtype)

    segments = _segments(cu_seqlens) if cu_seqlens is not None else [(0, L)]
    ys, last_states = [], []
    for seg, (start, end) in enumerate(segments):
        if initial_state is None:
            state = u_c.new_zeros(batch, H, N)
        elif cu_seqlens is None:
            state = initial_state.to(dtype)
        else:
            state = initial_state[seg : seg + 1].to(dtype)
        B_seg = B_c if B_c.dim() == 2 else B_c[..., start:end]
        C_seg = C_c if C_c.dim() == 2 else C_c[..., start:end]
        y, state = _scan_chunks(
            u_c[..., start:end], delta[..., start:end], A_c, B_seg, C_seg, state, chunk_size
        )
        ys.append(y)
        last_states.append(state)
    y = torch.cat(ys, dim=-1)  # (B, H, L)
    y = _finish_output(y, u_c, D, z, u.dtype)
    if not return_last_state:
        return y
    last_state = torch.cat(last_states, dim=0)  # (B | S, H, N)
    return y, last_state  # fp32 (fp64 for fp64 inputs)
