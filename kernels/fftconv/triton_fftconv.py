"""Fast path of `fftconv`: cuFFT transforms with every pass around them fused in Triton.

Same math and signature as `fftconv_ref` (see kernels/fftconv/reference.py):
    v = u * pregate;  y = causal_conv(v, k) + v * D;  y = y * postgate
u, gates `(B, H, L)` in bf16/fp16/fp32/fp64, k `(H, Lk)`, D `(H,)`; y in u's dtype.

Why this shape (measured figures in docs/kernels/fftconv.md):
- The transforms are cuFFT's R2C/C2R of a fast size n >= L + Lk - 1 (exact linear convolution,
  any length). Everything torch would run as separate HBM passes around them (cast, gate, pad,
  spectral product, crop, skip, post-gate, cast back; in the backward the two spectral products
  and the dD reduction) is one Triton pass each.
- The filter spectrum is computed once per call for the whole batch, and the product kernels
  loop over the batch so it is read from HBM once.
- Work runs in chunks of channels so that the FFT-sized fp32 buffers stay under a fixed budget:
  memory no longer grows with B * H * 2L spectra (torch.fft needs ~6 of those and runs out of
  memory at (1, 256, 2^22) on 80 GB).
- Nothing FFT-sized is kept for the backward: it saves the inputs (and, with a post-gate, the
  pre-gate output in u's dtype) and recomputes the two forward spectra.
"""

from __future__ import annotations

import torch
import triton

from .reference import _check_shapes, fast_fft_size
from .triton_fftconv_kernels import (
    finish_backward_kernel,
    finish_forward_kernel,
    gate_pad_kernel,
    spectrum_backward_kernel,
    spectrum_product_kernel,
)

__all__ = ["fftconv_triton"]

# Largest FFT-sized buffer of one channel chunk; a call holds about four of them at its peak
# (two spectra, the inverse transform's input copy and its output).
CHUNK_BUDGET_BYTES = 1 << 30
_ELEMENTWISE_BLOCK = 1024
_SPECTRUM_BLOCK = 512


def _compute_dtype(u: torch.Tensor) -> torch.dtype:
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def _channel_chunks(B: int, H: int, n: int, compute_dtype: torch.dtype):
    """Yield (h0, hc): channel ranges whose (B * hc, n) buffer fits CHUNK_BUDGET_BYTES."""
    row_bytes = n * torch.finfo(compute_dtype).bits // 8
    per_chunk = max(1, min(H, CHUNK_BUDGET_BYTES // max(1, B * row_bytes)))
    for h0 in range(0, H, per_chunk):
        yield h0, min(per_chunk, H - h0)


def _gate_pad(x, gate, B, h0, hc, n, compute_dtype, aux=None, aux_out=None):
    """(B * hc, n) buffer of `x * gate` for channels h0..h0+hc, zero past L."""
    H, L = x.shape[1], x.shape[2]
    out = torch.empty(B * hc, n, device=x.device, dtype=compute_dtype)
    grid = (B * hc, triton.cdiv(n, _ELEMENTWISE_BLOCK))
    gate_pad_kernel[grid](
        x, gate if gate is not None else x, out,
        aux if aux is not None else x, aux_out if aux_out is not None else x,
        hc, h0, H, L, n,
        HAS_GATE=gate is not None, HAS_AUX=aux is not None, BLOCK=_ELEMENTWISE_BLOCK,
    )  # fmt: skip
    return out


def _filter_spectrum(k, h0, hc, Lk, n, compute_dtype):
    """rfft of the chunk's filters, zero-padded to n: (hc, n // 2 + 1), once for the batch."""
    return torch.fft.rfft(k[h0 : h0 + hc, :Lk].to(compute_dtype), n=n)


def _forward(u, k, D, pregate, postgate, Lk, n):
    """Output y (B, H, L) in u's dtype and, with a post-gate, y before it (for the backward)."""
    B, H, L = u.shape
    compute_dtype = _compute_dtype(u)
    y = torch.empty_like(u)
    pre_postgate = torch.empty_like(u) if postgate is not None else None
    for h0, hc in _channel_chunks(B, H, n, compute_dtype):
        filter_spectrum = _filter_spectrum(k, h0, hc, Lk, n, compute_dtype)  # (hc, F)
        padded = _gate_pad(u, pregate, B, h0, hc, n, compute_dtype)  # (B*hc, n)
        spectrum = torch.fft.rfft(padded)  # (B*hc, F)
        del padded
        F = spectrum.shape[-1]
        grid = (hc, triton.cdiv(F, _SPECTRUM_BLOCK))
        spectrum_product_kernel[grid](
            torch.view_as_real(spectrum), torch.view_as_real(filter_spectrum), B, hc, F,
            BLOCK=_SPECTRUM_BLOCK,
        )  # fmt: skip
        del filter_spectrum
        circular = torch.fft.irfft(spectrum, n=n)  # (B*hc, n)
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
    """Gradients (du, dk (H, Lk), dD, dpregate, dpostgate); None for absent inputs."""
    B, H, L = u.shape
    compute_dtype = _compute_dtype(u)
    du = torch.empty_like(u)
    dk = torch.empty(H, Lk, device=u.device, dtype=compute_dtype)
    dpregate = torch.empty_like(pregate) if pregate is not None else None
    dpostgate = torch.empty_like(postgate) if postgate is not None else None
    n_col_blocks = triton.cdiv(L, _ELEMENTWISE_BLOCK)
    dD = torch.empty(H, device=u.device, dtype=compute_dtype) if D is not None else None
    for h0, hc in _channel_chunks(B, H, n, compute_dtype):
        filter_spectrum = _filter_spectrum(k, h0, hc, Lk, n, compute_dtype)  # (hc, F)
        padded = _gate_pad(u, pregate, B, h0, hc, n, compute_dtype)
        input_spectrum = torch.fft.rfft(padded)  # (B*hc, F)
        # The post-gate's gradient (dy * y before the gate) is written in the same pass.
        padded = _gate_pad(dy, postgate, B, h0, hc, n, compute_dtype, pre_postgate, dpostgate)
        grad_spectrum = torch.fft.rfft(padded)  # (B*hc, F)
        del padded
        F = grad_spectrum.shape[-1]
        grid = (hc, triton.cdiv(F, _SPECTRUM_BLOCK))
        spectrum_backward_kernel[grid](
            torch.view_as_real(grad_spectrum), torch.view_as_real(input_spectrum),
            torch.view_as_real(filter_spectrum), B, hc, F, BLOCK=_SPECTRUM_BLOCK,
        )  # fmt: skip
        del input_spectrum
        # filter_spectrum now holds sum_b G * conj(V): the filter gradient's spectrum.
        dk[h0 : h0 + hc] = torch.fft.irfft(filter_spectrum, n=n)[:, :Lk]
        del filter_spectrum
        conv_grad = torch.fft.irfft(grad_spectrum, n=n)  # (B*hc, n)
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
        n = fast_fft_size(L + Lk - 1)
        y, pre_postgate = _forward(u, k, D, pregate, postgate, Lk, n)
        ctx.save_for_backward(u, k, D, pregate, postgate, pre_postgate)
        ctx.Lk, ctx.n = Lk, n
        return y

    @staticmethod
    def backward(ctx, dy):
        u, k, D, pregate, postgate, pre_postgate = ctx.saved_tensors
        du, dk_head, dD, dpregate, dpostgate = _backward(
            dy.contiguous(), u, k, D, pregate, postgate, pre_postgate, ctx.Lk, ctx.n
        )
        dk = torch.zeros_like(k)
        dk[:, : ctx.Lk] = dk_head  # taps past L get zero gradient
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
    u = u.contiguous()
    pregate = pregate.contiguous() if pregate is not None else None
    postgate = postgate.contiguous() if postgate is not None else None
    D = D.contiguous() if D is not None else None
    return _FFTConvFunction.apply(u, k, D, pregate, postgate)
