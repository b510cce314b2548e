"""Triton kernels of the fused FFT convolution: every pass around cuFFT's transforms.

The transforms themselves run in cuFFT (through torch.fft); these kernels fuse what torch would
do as separate elementwise passes over HBM:

- `gate_pad`: cast to the compute dtype, gate, and zero-pad a row to the FFT size in one write
  (torch: `.float()`, `* gate`, `F.pad` = three passes).
- `spectrum_product` / `spectrum_backward`: the pointwise products in the frequency domain, one
  program per (channel, frequency block) looping over the batch, so the filter spectrum is read
  from HBM once per call and not once per batch row.
- `finish_forward` / `finish_backward`: crop the linear part of the circular result, add the D
  skip, apply the gates, cast, and (backward) reduce dD, in one pass.

Row layout: a chunk of `hc` channels starting at `h0` is processed at a time; its FFT buffers are
`(B * hc, n)` with row `r` holding batch `r // hc`, channel `h0 + r % hc`. Tensors of shape
`(B, H, L)` are contiguous. Program ids are widened to int64 before any offset arithmetic:
B * H * n passes 2^31 at (1, 1024, 2^21) already.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _row_coordinates(hc, h0, H, L):
    """Batch row of the (B, H, L) tensors and channel for this program's FFT-buffer row."""
    row = tl.program_id(0).to(tl.int64)
    batch = row // hc
    channel = h0 + row % hc
    return row, channel, (batch * H + channel) * L


@triton.jit
def gate_pad_kernel(
    x_ptr,  # (B, H, L): u in the forward, dy in the backward
    gate_ptr,  # (B, H, L): pregate (forward) or postgate (backward)
    out_ptr,  # (B * hc, n): compute dtype, zero past L
    aux_ptr,  # (B, H, L): pre-post-gate output saved by the forward (backward only)
    aux_out_ptr,  # (B, H, L): d postgate = dy * aux
    hc,
    h0,
    H,
    L,
    n,
    HAS_GATE: tl.constexpr,
    HAS_AUX: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row, channel, seq_base = _row_coordinates(hc, h0, H, L)
    cols = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    in_seq = cols < L
    x = tl.load(x_ptr + seq_base + cols, mask=in_seq, other=0.0).to(out_ptr.dtype.element_ty)
    if HAS_AUX:
        aux = tl.load(aux_ptr + seq_base + cols, mask=in_seq, other=0.0)
        aux = aux.to(out_ptr.dtype.element_ty)
        tl.store(aux_out_ptr + seq_base + cols, (x * aux).to(aux_out_ptr.dtype.element_ty), mask=in_seq)
    if HAS_GATE:
        gate = tl.load(gate_ptr + seq_base + cols, mask=in_seq, other=0.0)
        x = x * gate.to(out_ptr.dtype.element_ty)
    tl.store(out_ptr + row * n + cols, x, mask=cols < n)


@triton.jit
def _complex_pair_offsets(freq_block, F, BLOCK: tl.constexpr):
    """Offsets of (BLOCK, 2) real/imaginary pairs of a complex row viewed as reals, and a mask."""
    freqs = freq_block * BLOCK + tl.arange(0, BLOCK)
    offsets = freqs[:, None] * 2 + tl.arange(0, 2)[None, :]  # (BLOCK, 2)
    return offsets, (freqs < F)[:, None]


@triton.jit
def spectrum_product_kernel(
    x_ptr,  # (B * hc, F) complex as reals: signal spectrum, overwritten by the product
    k_ptr,  # (hc, F) complex as reals: filter spectrum
    B,
    hc,
    F,
    BLOCK: tl.constexpr,
):
    channel = tl.program_id(0).to(tl.int64)
    offsets, mask = _complex_pair_offsets(tl.program_id(1).to(tl.int64), F, BLOCK)
    k_re, k_im = tl.split(tl.load(k_ptr + channel * 2 * F + offsets, mask=mask, other=0.0))
    for batch in range(B):
        row_ptr = x_ptr + (batch * hc + channel) * 2 * F + offsets
        x_re, x_im = tl.split(tl.load(row_ptr, mask=mask, other=0.0))
        product = tl.join(x_re * k_re - x_im * k_im, x_re * k_im + x_im * k_re)
        tl.store(row_ptr, product, mask=mask)


@triton.jit
def spectrum_backward_kernel(
    g_ptr,  # (B * hc, F): spectrum of the output gradient, overwritten by G * conj(K)
    v_ptr,  # (B * hc, F): spectrum of the (gated) input
    k_ptr,  # (hc, F): filter spectrum, overwritten by sum_b G * conj(V) (the filter gradient)
    B,
    hc,
    F,
    BLOCK: tl.constexpr,
):
    channel = tl.program_id(0).to(tl.int64)
    offsets, mask = _complex_pair_offsets(tl.program_id(1).to(tl.int64), F, BLOCK)
    k_row_ptr = k_ptr + channel * 2 * F + offsets
    k_re, k_im = tl.split(tl.load(k_row_ptr, mask=mask, other=0.0))
    grad_k_re = tl.zeros_like(k_re)
    grad_k_im = tl.zeros_like(k_im)
    for batch in range(B):
        row_offset = (batch * hc + channel) * 2 * F
        g_re, g_im = tl.split(tl.load(g_ptr + row_offset + offsets, mask=mask, other=0.0))
        v_re, v_im = tl.split(tl.load(v_ptr + row_offset + offsets, mask=mask, other=0.0))
        # Cross-correlations are products with the conjugate spectrum.
        grad_k_re += g_re * v_re + g_im * v_im
        grad_k_im += g_im * v_re - g_re * v_im
        grad_v = tl.join(g_re * k_re + g_im * k_im, g_im * k_re - g_re * k_im)
        tl.store(g_ptr + row_offset + offsets, grad_v, mask=mask)
    # Safe in place: this program alone read these filter-spectrum entries.
    tl.store(k_row_ptr, tl.join(grad_k_re, grad_k_im), mask=mask)


@triton.jit
def finish_forward_kernel(
    conv_ptr,  # (B * hc, n): circular convolution; its first L entries are the linear one
    u_ptr,
    pregate_ptr,
    D_ptr,  # (H,)
    postgate_ptr,
    y_ptr,  # (B, H, L) output
    pre_postgate_ptr,  # (B, H, L): y before the post-gate, saved for d postgate
    hc,
    h0,
    H,
    L,
    n,
    HAS_PREGATE: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_POSTGATE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row, channel, seq_base = _row_coordinates(hc, h0, H, L)
    cols = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < L
    y = tl.load(conv_ptr + row * n + cols, mask=mask, other=0.0)
    compute_dtype = conv_ptr.dtype.element_ty
    if HAS_D:
        v = tl.load(u_ptr + seq_base + cols, mask=mask, other=0.0).to(compute_dtype)
        if HAS_PREGATE:
            v = v * tl.load(pregate_ptr + seq_base + cols, mask=mask, other=0.0).to(compute_dtype)
        y = y + v * tl.load(D_ptr + channel).to(compute_dtype)
    if HAS_POSTGATE:
        tl.store(pre_postgate_ptr + seq_base + cols, y.to(pre_postgate_ptr.dtype.element_ty), mask=mask)
        y = y * tl.load(postgate_ptr + seq_base + cols, mask=mask, other=0.0).to(compute_dtype)
    tl.store(y_ptr + seq_base + cols, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def finish_backward_kernel(
    conv_grad_ptr,  # (B * hc, n): cross-correlation of the gated output gradient with k
    dy_ptr,
    postgate_ptr,
    u_ptr,
    pregate_ptr,
    D_ptr,
    du_ptr,  # (B, H, L)
    dpregate_ptr,  # (B, H, L)
    dD_partial_ptr,  # (B * hc, n_col_blocks): per-program partial sums of dD
    hc,
    h0,
    H,
    L,
    n,
    n_col_blocks,
    HAS_PREGATE: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_POSTGATE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row, channel, seq_base = _row_coordinates(hc, h0, H, L)
    col_block = tl.program_id(1).to(tl.int64)
    cols = col_block * BLOCK + tl.arange(0, BLOCK)
    mask = cols < L
    compute_dtype = conv_grad_ptr.dtype.element_ty
    dv = tl.load(conv_grad_ptr + row * n + cols, mask=mask, other=0.0)
    u = tl.load(u_ptr + seq_base + cols, mask=mask, other=0.0).to(compute_dtype)
    if HAS_PREGATE:
        pregate = tl.load(pregate_ptr + seq_base + cols, mask=mask, other=0.0).to(compute_dtype)
    if HAS_D:
        g = tl.load(dy_ptr + seq_base + cols, mask=mask, other=0.0).to(compute_dtype)
        if HAS_POSTGATE:
            g = g * tl.load(postgate_ptr + seq_base + cols, mask=mask, other=0.0).to(compute_dtype)
        v = u
        if HAS_PREGATE:
            v = u * pregate
        tl.store(dD_partial_ptr + row * n_col_blocks + col_block, tl.sum(g * v, axis=0))
        dv = dv + g * tl.load(D_ptr + channel).to(compute_dtype)
    if HAS_PREGATE:
        tl.store(dpregate_ptr + seq_base + cols, (dv * u).to(dpregate_ptr.dtype.element_ty), mask=mask)
        dv = dv * pregate
    tl.store(du_ptr + seq_base + cols, dv.to(du_ptr.dtype.element_ty), mask=mask)
