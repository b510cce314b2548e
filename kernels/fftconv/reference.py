"""PyTorch references for the long causal convolution of Hyena (`fftconv`).

Math (shared by every implementation, reference and Triton):
    v = u * pregate                      (if pregate is given)
    y[b, h, t] = sum_{s <= t} k[h, s] * v[b, h, t - s] + D[h] * v[b, h, t]
    y = y * postgate                     (if postgate is given)
Shapes: u, pregate, postgate, y `(B, H, L)`; k `(H, Lk)` with Lk <= L (a shorter filter is
zero-padded; taps past L can never reach an output, so longer filters are truncated to L);
D `(H,)`. Computation in fp32 (fp64 when u is fp64); the output has u's dtype.
"""

from __future__ import annotations

import torch

from .._checks import compute_dtype


def fast_fft_size(n: int) -> int:
    """Smallest 2^a * 3^b * 5^c >= n: sizes pocketfft/cuFFT transform fastest.

    Next power of two would do, but can cost up to 2x the work; 5-smooth sizes stay within ~7%.
    """
    n = max(int(n), 1)
    best = 1 << (n - 1).bit_length()
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            size = power35
            while size < n:
                size *= 2
            best = min(best, size)
            power35 *= 3
        power5 *= 5
    return best



def _check_shapes(u, k, D, pregate, postgate) -> None:
    if u.dim() != 3:
        raise ValueError(f"fftconv: u must be (B, H, L), got shape {tuple(u.shape)}")
    _, H, L = u.shape
    if k.dim() != 2 or k.shape[0] != H:
        raise ValueError(f"fftconv: k must be (H={H}, Lk), got shape {tuple(k.shape)}")
    if k.shape[1] < 1:
        raise ValueError("fftconv: the filter k has no taps (Lk = 0)")
    if D is not None and tuple(D.shape) != (H,):
        raise ValueError(f"fftconv: D must be (H={H},), got shape {tuple(D.shape)}")
    for name, gate in (("pregate", pregate), ("postgate", postgate)):
        if gate is not None and gate.shape != u.shape:
            raise ValueError(
                f"fftconv: {name} must have u's shape {tuple(u.shape)}, got {tuple(gate.shape)}"
            )


def _gate_input(u, pregate, dtype):
    v = u.to(dtype)  # (B, H, L)
    if pregate is not None:
        v = v * pregate.to(dtype)
    return v


def _finish(y, v, D, postgate, out_dtype):
    """Add the D skip, apply the post-gate, cast back to u's dtype."""
    if D is not None:
        y = y + v * D.to(y.dtype)[:, None]  # (B, H, L)
    if postgate is not None:
        y = y * postgate.to(y.dtype)
    return y.to(out_dtype)


def fftconv_ref(
    u: torch.Tensor,
    k: torch.Tensor,
    D: torch.Tensor | None = None,
    pregate: torch.Tensor | None = None,
    postgate: torch.Tensor | None = None,
) -> torch.Tensor:
    """Exact causal linear convolution through one rfft of size >= L + Lk - 1 (no circular wrap).

    The filter's spectrum is computed once per call and broadcast over the batch.
    """
    _check_shapes(u, k, D, pregate, postgate)
    L = u.shape[-1]
    dtype = compute_dtype(u)
    k = k[:, :L].to(dtype)  # (H, Lk)
    n_fft = fast_fft_size(L + k.shape[-1] - 1)
    v = _gate_input(u, pregate, dtype)  # (B, H, L)
    k_spectrum = torch.fft.rfft(k, n=n_fft)  # (H, n_fft // 2 + 1), shared by the batch
    v_spectrum = torch.fft.rfft(v, n=n_fft)  # (B, H, n_fft // 2 + 1)
    y = torch.fft.irfft(v_spectrum * k_spectrum, n=n_fft)[..., :L]  # (B, H, L)
    return _finish(y, v, D, postgate, u.dtype)


def fftconv_chunked(
    u: torch.Tensor,
    k: torch.Tensor,
    D: torch.Tensor | None = None,
    pregate: torch.Tensor | None = None,
    postgate: torch.Tensor | None = None,
    chunk_size: int = 4096,
) -> torch.Tensor:
    """Block (uniformly partitioned overlap-add) convolution; equals `fftconv_ref`.

    Input and filter are cut into blocks of `chunk_size`; input block i convolved with filter
    block j (FFT size 2 * chunk_size, so no wrap) lands at output block i + j and spills into
    i + j + 1. Only pairs with i + j inside the sequence are formed (causality). Products are
    summed in the frequency domain and transformed back once. Only one filter block's spectrum
    exists at a time, so the filter's full spectrum is never formed and the peak stays at two
    block spectra of the input, whatever the filter's length (measured at H=64, L=2^17 on CPU:
    +168 MB against fftconv_ref's +232 MB). The work is O(L^2 / chunk_size).
    """
    _check_shapes(u, k, D, pregate, postgate)
    if chunk_size < 1:
        raise ValueError(f"fftconv_chunked: chunk_size must be >= 1, got {chunk_size}")
    B, H, L = u.shape
    dtype = compute_dtype(u)
    T = min(int(chunk_size), L)
    n_blocks = -(-L // T)
    padded = n_blocks * T
    v = _gate_input(u, pregate, dtype)  # (B, H, L)
    k = k[:, :L].to(dtype)  # (H, Lk)
    n_filter_blocks = -(-k.shape[-1] // T)

    v_blocks = torch.nn.functional.pad(v, (0, padded - L)).view(B, H, n_blocks, T)
    v_spectra = torch.fft.rfft(v_blocks, n=2 * T)  # (B, H, n_blocks, T + 1)
    y_spectra = torch.zeros_like(v_spectra)  # (B, H, n_blocks, T + 1)
    for j in range(min(n_filter_blocks, n_blocks)):
        k_block = k[:, j * T : (j + 1) * T]  # (H, <= T)
        k_spectrum = torch.fft.rfft(k_block, n=2 * T)[:, None, :]  # (H, 1, T + 1)
        # Input block i reaches output block i + j: only i < n_blocks - j matter. addcmul_
        # accumulates in place, with no temporary as large as the input's spectra.
        y_spectra[:, :, j:].addcmul_(v_spectra[:, :, : n_blocks - j], k_spectrum)
    del v_spectra  # freed here when no gradient needs it: the peak holds two spectra, not three
    y_blocks = torch.fft.irfft(y_spectra, n=2 * T)  # (B, H, n_blocks, 2T)
    del y_spectra
    y = y_blocks[..., :T].clone()  # (B, H, n_blocks, T): each block's own part
    y[:, :, 1:] += y_blocks[:, :, :-1, T:]  # the part spilling into the next block
    y = y.view(B, H, padded)[..., :L]  # (B, H, L)
    return _finish(y, v, D, postgate, u.dtype)


def direct_causal_conv(
    u: torch.Tensor,
    k: torch.Tensor,
    D: torch.Tensor | None = None,
    pregate: torch.Tensor | None = None,
    postgate: torch.Tensor | None = None,
) -> torch.Tensor:
    """Test oracle: the convolution sum itself, tap by tap, in fp64. O(L * Lk): small L only."""
    _check_shapes(u, k, D, pregate, postgate)
    L = u.shape[-1]
    v = _gate_input(u, pregate, torch.float64)  # (B, H, L)
    k = k[:, :L].to(torch.float64)  # (H, Lk)
    y = torch.zeros_like(v)
    for s in range(k.shape[-1]):
        # tap s moves v right by s positions
        y[..., s:] += k[:, s, None] * v[..., : L - s]
    return _finish(y, v, D, postgate, torch.float64)
