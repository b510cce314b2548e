"""Fast path of `fftconv`: cuFFT transforms with every pass around them fused in Triton.

Same math and signature as `fftconv_ref` (see kernels/fftconv/reference.py):
    v = u * pregate;  y = causal_conv(v, k) + v * D;  y = y * postgate
u, gates `(B, H, L)` in bf16/fp16/fp32/fp64, k `(H, Lk)`, D `(H,)`; y in u's dtype.

Why this shape (measured figures in docs/kernels/fftconv.md):
- Exact linear convolution at any length: a real FFT of even size n = 2M >= L + Lk - 1, M a
  5-smooth size. cuFFT's R2C/C2R at these sizes ran at half the speed of its complex transform
  on the same bytes (H100, (128, 2^21): R2C 3.0 ms, C2C of the packed pairs 1.6 ms), so each real
  transform is a complex FFT of size M of the packed pairs x[2m] + i x[2m+1], a free view of the
  zero-padded real buffer; unpacking the half-spectrum, the spectral product and packing for the
  inverse are one fused Triton pass, and the inverse's output is y itself viewed as reals.
- Everything torch would run as separate HBM passes around the transforms (cast, gate, pad,
  crop, skip, post-gate, cast back; the inverse's 1/M; in the backward the two spectral products
  and the dD reduction) is fused into the Triton passes of fft_conv_kernels.py.
- The filter's spectrum is computed once per call for the whole batch, and the product kernels
  loop over the batch so it is read from HBM once.
- Work runs in chunks of channels so that the FFT-sized buffers stay under a fixed budget: memory
  no longer grows with B * H * 2L spectra (torch.fft needs several of those and runs out of
  memory at (1, 256, 2^22) forward+backward on 80 GB). Chunk size barely moved the time.
- Nothing FFT-sized is kept for the backward: it saves the inputs (and, with a post-gate, the
  pre-gate output in u's dtype) and recomputes the two forward spectra.
"""

from __future__ import annotations

import torch
import triton

from .._checks import compute_dtype as compute_dtype_of
from .reference import _check_shapes, fast_fft_size
from .fft_conv_kernels import (
    finish_backward_kernel,
    finish_forward_kernel,
    gate_pad_kernel,
    spectrum_backward_kernel,
    spectrum_product_kernel,
)

__all__ = ["fftconv_triton"]

# Largest FFT-sized buffer of one channel chunk; a call holds about four of them at its peak.
# On the H100 the forward at (1, 256, 2^20) took 15.2 ms with 1/4 GiB and 14.6 ms with 2 GiB.
CHUNK_BUDGET_BYTES = 1 << 29
_ELEMENTWISE_BLOCK = 1024
_SPECTRUM_BLOCK = 512
# Column blocks of one row run on the grid's second axis, which CUDA caps at 65535 blocks: the
# FFT size n <= 2^26 fits (n / 1024 blocks); L <= 2^24 keeps n = 2 * fast_size(L) <= 2^25.
MAX_LENGTH = 1 << 24



def _channel_chunks(B: int, H: int, n: int, compute_dtype: torch.dtype):
    """Yield (h0, hc): channel ranges whose (B * hc, n) buffer fits CHUNK_BUDGET_BYTES."""
    row_bytes = n * torch.finfo(compute_dtype).bits // 8
    per_chunk = max(1, min(H, CHUNK_BUDGET_BYTES // max(1, B * row_bytes)))
    for h0 in range(0, H, per_chunk):
        yield h0, min(per_chunk, H - h0)


class _PaddedRows:
    """Reusable FFT input rows (rows, n) whose zero tails are written once per call.

    cuFFT reads the zero padding from memory; writing it for every chunk cost as much as writing
    the data. Later chunks write only the first L columns of a prefix of the rows.
    """

    def __init__(self, rows: int, n: int, like: torch.Tensor, dtype: torch.dtype):
        self.buffer = torch.empty(rows, n, device=like.device, dtype=dtype)
        self.zero_tail_length = None  # columns past this are zero in every row; None: unwritten

    def fill(self, x, gate, B, h0, hc, aux=None, aux_out=None):
        """Rows of `x * gate` for channels h0..h0+hc, zero past x's length.

        x is (B, H, L) or a filter (H, Lk) (then B = 1); its last dimension must be contiguous.
        """
        H, L, row_stride = x.shape[-2], x.shape[-1], x.stride(-2)
        out = self.buffer[: B * hc]
        n = out.shape[-1]
        columns = n if self.zero_tail_length is None or self.zero_tail_length > L else L
        grid = (B * hc, triton.cdiv(columns, _ELEMENTWISE_BLOCK))
        gate_pad_kernel[grid](
            x, gate if gate is not None else x, out,
            aux if aux is not None else x, aux_out if aux_out is not None else x,
            hc, h0, H, L, row_stride, n,
            HAS_GATE=gate is not None, HAS_AUX=aux is not None, BLOCK=_ELEMENTWISE_BLOCK,
        )  # fmt: skip
        # The first fill covers every row (the first chunk is the largest).
        previous = self.zero_tail_length
        self.zero_tail_length = L if previous is None else max(previous, L)
        return out


def _packed_fft(padded):
    """FFT_M of the packed pairs of real rows (R, 2M): (R, M) complex, the buffer reused as pairs."""
    return torch.fft.fft(torch.view_as_complex(padded.view(padded.shape[0], -1, 2)))


def _packed_inverse(packed):
    """Inverse of a packed spectrum (R, M) -> real rows (R, 2M); 1/M was folded in already."""
    return torch.view_as_real(torch.fft.ifft(packed, norm="forward")).view(packed.shape[0], -1)


def _product_grid(hc, M):
    return (hc, triton.cdiv(M // 2 + 1, _SPECTRUM_BLOCK))


def _forward(u, k, D, pregate, postgate, Lk, n):
    """Output y (B, H, L) in u's dtype and, with a post-gate, y before it (for the backward)."""
    B, H, L = u.shape
    M = n // 2
    compute_dtype = compute_dtype_of(u)
    y = torch.empty_like(u)
    pre_postgate = torch.empty_like(u) if postgate is not None else None
    chunks = list(_channel_chunks(B, H, n, compute_dtype))
    filter_rows = _PaddedRows(chunks[0][1], n, u, compute_dtype)
    input_rows = _PaddedRows(B * chunks[0][1], n, u, compute_dtype)
    for h0, hc in chunks:
        filter_spectrum = _packed_fft(filter_rows.fill(k[:, :Lk], None, 1, h0, hc))  # (hc, M)
        spectrum = _packed_fft(input_rows.fill(u, pregate, B, h0, hc))  # (B*hc, M)
        spectrum_product_kernel[_product_grid(hc, M)](
            torch.view_as_real(spectrum), torch.view_as_real(filter_spectrum), B, hc, M, n,
            BLOCK=_SPECTRUM_BLOCK,
        )  # fmt: skip
        del filter_spectrum
        circular = _packed_inverse(spectrum)  # (B*hc, n)
        del spectrum
        grid = (B * hc, triton.cdiv(L, _ELEMENTWISE_BLOCK))
        finish_forward_kernel[grid](
            circular, u, pregate if pregate is not None else u, D if D is not None else u,
            postgate if postgate is not None else u, y,
            pre_postgate if pre_postgate is not None else y,
            hc, h0, H, L, n,
            HAS_PREGATE=pregate is not None, HAS_D=D is not None,
            HAS_POSTGATE=postgate is not None, BLOCK=_ELEMENTWISE_BLOCK,
        )  # fmt: skip
    return y, pre_postgate


def _backward(dy, u, k, D, pregate, postgate, pre_postgate, Lk, n):
    """Gradients (du, dk, dD, dpregate, dpostgate) shaped like the inputs; None for absent ones."""
    B, H, L = u.shape
    M = n // 2
    compute_dtype = compute_dtype_of(u)
    du = torch.empty_like(u)
    # Taps past L never reach an output: their gradient is zero.
    dk = torch.empty_like(k) if k.shape[-1] == Lk else torch.zeros_like(k)
    dpregate = torch.empty_like(pregate) if pregate is not None else None
    dpostgate = torch.empty_like(postgate) if postgate is not None else None
    n_col_blocks = triton.cdiv(L, _ELEMENTWISE_BLOCK)
    dD = torch.empty(H, device=u.device, dtype=compute_dtype) if D is not None else None
    chunks = list(_channel_chunks(B, H, n, compute_dtype))
    filter_rows = _PaddedRows(chunks[0][1], n, u, compute_dtype)
    # u's and dy's rows share one buffer: each is consumed by its FFT before the next fill, in
    # stream order.
    input_rows = _PaddedRows(B * chunks[0][1], n, u, compute_dtype)
    for h0, hc in chunks:
        filter_spectrum = _packed_fft(filter_rows.fill(k[:, :Lk], None, 1, h0, hc))  # (hc, M)
        input_spectrum = _packed_fft(input_rows.fill(u, pregate, B, h0, hc))  # (B*hc, M)
        # The post-gate's gradient (dy * y before the gate) is written in the same pass.
        padded = input_rows.fill(dy, postgate, B, h0, hc, pre_postgate, dpostgate)
        grad_spectrum = _packed_fft(padded)  # (B*hc, M)
        spectrum_backward_kernel[_product_grid(hc, M)](
            torch.view_as_real(grad_spectrum), torch.view_as_real(input_spectrum),
            torch.view_as_real(filter_spectrum), B, hc, M, n, BLOCK=_SPECTRUM_BLOCK,
        )  # fmt: skip
        del input_spectrum
        # filter_spectrum now holds the packed sum_b G * conj(V): the filter gradient's spectrum.
        dk[h0 : h0 + hc, :Lk] = _packed_inverse(filter_spectrum)[:, :Lk]
        del filter_spectrum
        conv_grad = _packed_inverse(grad_spectrum)  # (B*hc, n)
        del grad_spectrum
        # Per-program partial sums, reduced below in a fixed order (deterministic, no atomics).
        dD_partials = (
            torch.empty(B * hc, n_col_blocks, device=u.device, dtype=compute_dtype)
            if D is not None
            else conv_grad
        )
        grid = (B * hc, n_col_blocks)
        finish_backward_kernel[grid](
            conv_grad, dy, postgate if postgate is not None else dy, u,
            pregate if pregate is not None else u, D if D is not None else u,
            du, dpregate if dpregate is not None else du,
            dD_partials,
            hc, h0, H, L, n, n_col_blocks,
            HAS_PREGATE=pregate is not None, HAS_D=D is not None,
            HAS_POSTGATE=postgate is not None, BLOCK=_ELEMENTWISE_BLOCK,
        )  # fmt: skip
        if D is not None:
            dD[h0 : h0 + hc] = dD_partials.view(B, hc, n_col_blocks).sum(dim=(0, 2))
    return du, dk, dD, dpregate, dpostgate


class _FFTConvFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, k, D, pregate, postgate):
        L = u.shape[-1]
        Lk = min(k.shape[-1], L)  # taps past L never reach an output
        # Even FFT size n = 2M >= L + Lk - 1 (no circular wrap), M a 5-smooth size.
        n = 2 * fast_fft_size((L + Lk) // 2)
        y, pre_postgate = _forward(u, k, D, pregate, postgate, Lk, n)
        ctx.save_for_backward(u, k, D, pregate, postgate, pre_postgate)
        ctx.Lk, ctx.n = Lk, n
        return y

    @staticmethod
    def backward(ctx, dy):
        u, k, D, pregate, postgate, pre_postgate = ctx.saved_tensors
        du, dk, dD, dpregate, dpostgate = _backward(
            dy.contiguous(), u, k, D, pregate, postgate, pre_postgate, ctx.Lk, ctx.n
        )
        if dD is not None:
            dD = dD.to(D.dtype)
        return du, dk, dD, dpregate, dpostgate


def fftconv_triton(
    u: torch.Tensor,
    k: torch.Tensor,
    D: torch.Tensor | None = None,
    pregate: torch.Tensor | None = None,
    postgate: torch.Tensor | None = None,
) -> torch.Tensor:
    """Causal convolution of u `(B, H, L)` with filters k `(H, Lk)` (see module docstring).

    Differentiable in every input. Runs on CUDA, or on CPU tensors under TRITON_INTERPRET=1.
    """
    _check_shapes(u, k, D, pregate, postgate)
    if u.shape[-1] > MAX_LENGTH:
        raise ValueError(
            f"fftconv_triton: length {u.shape[-1]} is over the fast path's limit of {MAX_LENGTH}; "
            "use backend='reference' or fftconv_chunked for longer sequences"
        )
    u = u.contiguous()
    pregate = pregate.contiguous() if pregate is not None else None
    postgate = postgate.contiguous() if postgate is not None else None
    D = D.contiguous() if D is not None else None
    if k.stride(-1) != 1:
        k = k.contiguous()
    return _FFTConvFunction.apply(u, k, D, pregate, postgate)
