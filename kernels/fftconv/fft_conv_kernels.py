"""Triton kernels of the fused FFT convolution: every pass around cuFFT's transforms.

The transforms themselves run in cuFFT (through torch.fft); these kernels fuse what torch would
do as separate elementwise passes over HBM:

- `gate_pad`: cast to the compute dtype, gate, and zero-pad a row to the FFT size in one write
  (torch: `.float()`, `* gate`, `F.pad` = three passes).
- `spectrum_product` / `spectrum_backward`: the real-to-complex post-processing, the pointwise
  products in the frequency domain and the complex-to-real pre-processing in one pass. A real
  signal of length n = 2M is transformed as the complex FFT of size M of its packed sample
  pairs (x[2m] + i x[2m+1]), which cuFFT runs about twice as fast as its own R2C/C2R at these
  sizes; the half-spectrum is unpacked here, multiplied, and packed again for the inverse.
  One program per (channel, frequency block) loops over the batch, so the filter's spectrum is
  read from HBM once per call and not once per batch row.
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
def _row_coordinates(hc, h0, H, row_stride):
    """Offset of this program's (batch, channel) row in a (B, H, *) tensor, and the channel."""
    row = tl.program_id(0).to(tl.int64)
    batch = row // hc
    channel = h0 + row % hc
    return row, channel, (batch * H + channel) * row_stride


@triton.jit
def gate_pad_kernel(
    x_ptr,  # (B, H, L): u in the forward, dy in the backward; (1, H, Lk) for the filter
    gate_ptr,  # (B, H, L): pregate (forward) or postgate (backward)
    out_ptr,  # (B * hc, n): compute dtype, zero past L
    aux_ptr,  # (B, H, L): pre-post-gate output saved by the forward (backward only)
    aux_out_ptr,  # (B, H, L): d postgate = dy * aux
    hc,
    h0,
    H,
    L,
    row_stride,
    n,
    HAS_GATE: tl.constexpr,
    HAS_AUX: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row, channel, seq_base = _row_coordinates(hc, h0, H, row_stride)
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
def _load_complex(ptr, offsets, mask):
    return tl.split(tl.load(ptr + offsets, mask=mask, other=0.0))


@triton.jit
def _complex_mul(a_re, a_im, b_re, b_im):
    return a_re * b_re - a_im * b_im, a_re * b_im + a_im * b_re


@triton.jit
def _half_spectrum_pair(za_re, za_im, zb_re, zb_im, t_re, t_im):
    """X[k], X[M-k] of a real length-2M signal from Z = FFT_M(x[2m] + i x[2m+1]) at k, M-k.

    With E = (Z[k] + conj Z[M-k]) / 2 and O = (Z[k] - conj Z[M-k]) / 2i (the spectra of the even
    and odd samples) and t = exp(-2 pi i k / 2M): X[k] = E + t O, X[M-k] = conj(E - t O).
    """
    e_re = 0.5 * (za_re + zb_re)
    e_im = 0.5 * (za_im - zb_im)
    o_re = 0.5 * (za_im + zb_im)
    o_im = -0.5 * (za_re - zb_re)
    to_re, to_im = _complex_mul(t_re, t_im, o_re, o_im)
    return e_re + to_re, e_im + to_im, e_re - to_re, to_im - e_im


@triton.jit
def _pack_inverse_pair(yk_re, yk_im, yp_re, yp_im, t_re, t_im, scale):
    """W[k], W[M-k] whose inverse FFT_M is y[2m] + i y[2m+1], y = irfft_2M(Y), scaled.

    S = (Y[k] + conj Y[M-k]) / 2, Dd = (Y[k] - conj Y[M-k]) / 2, c = i conj(t):
    W[k] = S + c Dd, W[M-k] = conj(S - c Dd). `scale` folds in the inverse's 1/M.
    """
    s_re = 0.5 * (yk_re + yp_re)
    s_im = 0.5 * (yk_im - yp_im)
    d_re = 0.5 * (yk_re - yp_re)
    d_im = 0.5 * (yk_im + yp_im)
    cd_re, cd_im = _complex_mul(t_im, t_re, d_re, d_im)  # i * conj(t) = t_im + i t_re
    return (
        (s_re + cd_re) * scale,
        (s_im + cd_im) * scale,
        (s_re - cd_re) * scale,
        (cd_im - s_im) * scale,
    )


@triton.jit
def _frequency_pairs(M, n, BLOCK: tl.constexpr, dtype: tl.constexpr):
    """This program's frequencies k <= M // 2, their partners (M - k) mod M, twiddles, masks.

    A program owns both members of each pair, so it may overwrite its inputs in place.
    """
    freqs = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    partners = (M - freqs) % M
    pair = tl.arange(0, 2)[None, :]
    own_offsets = freqs[:, None] * 2 + pair  # (BLOCK, 2): real and imaginary parts
    partner_offsets = partners[:, None] * 2 + pair
    own_mask = (freqs <= M // 2)[:, None]
    # k = 0 pairs with the Nyquist bin M, which the length-M buffer does not hold.
    partner_mask = own_mask & (freqs > 0)[:, None]
    angle = (freqs.to(dtype) / n) * -6.283185307179586
    inverse_scale = 1.0 / (freqs * 0 + M).to(dtype)  # the inverse FFT's 1/M, in dtype
    return own_offsets, partner_offsets, own_mask, partner_mask, tl.cos(angle), tl.sin(angle), inverse_scale


@triton.jit
def spectrum_product_kernel(
    x_ptr,  # (B * hc, M) complex as reals: FFT_M of the packed signal; becomes the packed product
    k_ptr,  # (hc, M) complex as reals: FFT_M of the packed filter
    B,
    hc,
    M,
    n,
    BLOCK: tl.constexpr,
):
    channel = tl.program_id(0).to(tl.int64)
    dtype = x_ptr.dtype.element_ty
    own, partner, own_mask, partner_mask, t_re, t_im, scale = _frequency_pairs(M, n, BLOCK, dtype)
    k_row = k_ptr + channel * 2 * M
    za_re, za_im = _load_complex(k_row, own, own_mask)
    zb_re, zb_im = _load_complex(k_row, partner, own_mask)
    kk_re, kk_im, kp_re, kp_im = _half_spectrum_pair(za_re, za_im, zb_re, zb_im, t_re, t_im)
    for batch in range(B):
        row = x_ptr + (batch * hc + channel) * 2 * M
        za_re, za_im = _load_complex(row, own, own_mask)
        zb_re, zb_im = _load_complex(row, partner, own_mask)
        xk_re, xk_im, xp_re, xp_im = _half_spectrum_pair(za_re, za_im, zb_re, zb_im, t_re, t_im)
        yk_re, yk_im = _complex_mul(xk_re, xk_im, kk_re, kk_im)
        yp_re, yp_im = _complex_mul(xp_re, xp_im, kp_re, kp_im)
        wk_re, wk_im, wp_re, wp_im = _pack_inverse_pair(yk_re, yk_im, yp_re, yp_im, t_re, t_im, scale)
        tl.store(row + own, tl.join(wk_re, wk_im), mask=own_mask)
        tl.store(row + partner, tl.join(wp_re, wp_im), mask=partner_mask)


@triton.jit
def spectrum_backward_kernel(
    g_ptr,  # (B * hc, M): FFT_M of the packed output gradient; becomes packed G * conj(K)
    v_ptr,  # (B * hc, M): FFT_M of the packed (gated) input
    k_ptr,  # (hc, M): FFT_M of the packed filter; becomes packed sum_b G * conj(V)
    B,
    hc,
    M,
    n,
    BLOCK: tl.constexpr,
):
    channel = tl.program_id(0).to(tl.int64)
    dtype = g_ptr.dtype.element_ty
    own, partner, own_mask, partner_mask, t_re, t_im, scale = _frequency_pairs(M, n, BLOCK, dtype)
    k_row = k_ptr + channel * 2 * M
    za_re, za_im = _load_complex(k_row, own, own_mask)
    zb_re, zb_im = _load_complex(k_row, partner, own_mask)
    kk_re, kk_im, kp_re, kp_im = _half_spectrum_pair(za_re, za_im, zb_re, zb_im, t_re, t_im)
    dkk_re = tl.zeros_like(kk_re)
    dkk_im = tl.zeros_like(kk_re)
    dkp_re = tl.zeros_like(kk_re)
    dkp_im = tl.zeros_like(kk_re)
    for batch in range(B):
        row_offset = (batch * hc + channel) * 2 * M
        za_re, za_im = _load_complex(g_ptr + row_offset, own, own_mask)
        zb_re, zb_im = _load_complex(g_ptr + row_offset, partner, own_mask)
        gk_re, gk_im, gp_re, gp_im = _half_spectrum_pair(za_re, za_im, zb_re, zb_im, t_re, t_im)
        za_re, za_im = _load_complex(v_ptr + row_offset, own, own_mask)
        zb_re, zb_im = _load_complex(v_ptr + row_offset, partner, own_mask)
        vk_re, vk_im, vp_re, vp_im = _half_spectrum_pair(za_re, za_im, zb_re, zb_im, t_re, t_im)
        # Cross-correlations are products with the conjugate spectrum.
        re, im = _complex_mul(gk_re, gk_im, vk_re, -vk_im)
        dkk_re += re
        dkk_im += im
        re, im = _complex_mul(gp_re, gp_im, vp_re, -vp_im)
        dkp_re += re
        dkp_im += im
        yk_re, yk_im = _complex_mul(gk_re, gk_im, kk_re, -kk_im)
        yp_re, yp_im = _complex_mul(gp_re, gp_im, kp_re, -kp_im)
        wk_re, wk_im, wp_re, wp_im = _pack_inverse_pair(yk_re, yk_im, yp_re, yp_im, t_re, t_im, scale)
        tl.store(g_ptr + row_offset + own, tl.join(wk_re, wk_im), mask=own_mask)
        tl.store(g_ptr + row_offset + partner, tl.join(wp_re, wp_im), mask=partner_mask)
    wk_re, wk_im, wp_re, wp_im = _pack_inverse_pair(dkk_re, dkk_im, dkp_re, dkp_im, t_re, t_im, scale)
    tl.store(k_row + own, tl.join(wk_re, wk_im), mask=own_mask)
    tl.store(k_row + partner, tl.join(wp_re, wp_im), mask=partner_mask)


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
