"""Mamba-2's split of the conv output into x, B, C (`_SplitXBC`) and the SSD gradients laid out
as its inputs (`_zero_grads_like`): the Triton path hands xBC's gradient on as the SSD's own
buffer (no cat, no transpose copy), the PyTorch path's gradients are gathered, and both equal
autograd's plain split."""

from __future__ import annotations

import pytest
import torch

from genossm.kernels.ssd import chunk_ssd, ssd_chunked, ssd_triton
from genossm.models.mamba2 import _SplitXBC
from tensor_checks import assert_close

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: the Triton interpreter (conftest.py)
H, P, G, N = 2, 16, 1, 16
SIZES = [H * P, G * N, G * N]


def projection(batch, length, seed=0):
    """A channels-first in_proj output (z | xBC | dt) and its xBC slice, as the mixer makes them."""
    gen = torch.Generator().manual_seed(seed)
    conv_dim = sum(SIZES)
    zxbcdt = torch.randn(batch, 8 + conv_dim + H, length, generator=gen).to(DEVICE).requires_grad_()
    return zxbcdt, zxbcdt[:, 8:8 + conv_dim]


def split_plain(xBC):
    batch, _, length = xBC.shape
    x, B, C = xBC.transpose(1, 2).split(SIZES, dim=-1)
    return (x.reshape(batch, length, H, P), B.reshape(batch, length, G, N), C.reshape(batch, length, G, N))


def split_fast(xBC):
    batch, _, length = xBC.shape
    return _SplitXBC.apply(xBC, SIZES, [(batch, length, H, P), (batch, length, G, N), (batch, length, G, N)])


def ssd_loss(split, ssd, zxbcdt, xBC, seed=1):
    x, B, C = split(xBC)
    batch, length = x.shape[:2]
    gen = torch.Generator().manual_seed(seed)
    dt = torch.rand(batch, length, H, generator=gen).to(DEVICE)
    A = -torch.rand(H, generator=gen).to(DEVICE) - 0.5
    y = ssd(x, dt, A, B, C, torch.ones(H, device=DEVICE), None, None, False, None, False, None,
            chunk_size=16)
    weights = torch.randn(y.shape, generator=gen).to(DEVICE)
    return (y * weights).sum()


@pytest.mark.parametrize("batch", [1, 2])
def test_split_views_equal_autograd_split(batch):
    _, xBC = projection(batch, 5)
    for fast, plain in zip(split_fast(xBC), split_plain(xBC)):
        assert fast.shape == plain.shape and fast.stride() == plain.stride()
        assert torch.equal(fast, plain)


@pytest.mark.parametrize("batch", [1, 2])
def test_triton_gradient_is_the_ssd_buffer_and_equals_the_plain_split(monkeypatch, batch):
    buffers = []
    original = chunk_ssd._zero_grads_like

    def recording(*views):
        grads = original(*views)
        if len(views) == 3:  # x, B, C (dt's gradient is allocated alone)
            buffers.append({g.untyped_storage().data_ptr() for g in grads})
        return grads

    monkeypatch.setattr(chunk_ssd, "_zero_grads_like", recording)
    zxbcdt, xBC = projection(batch, 37)
    seen = []
    xBC.register_hook(lambda g: seen.append(g))
    ssd_loss(split_fast, ssd_triton, zxbcdt, xBC).backward()
    assert len(buffers) == 1 and len(buffers[0]) == 1, "dx, dB, dC must be slices of one buffer"
    assert seen[0].untyped_storage().data_ptr() in buffers[0], "xBC's gradient must be that buffer, not a copy"
    fast_grad = zxbcdt.grad.clone()

    zxbcdt2, xBC2 = projection(batch, 37)
    ssd_loss(split_plain, ssd_chunked, zxbcdt2, xBC2).backward()
    assert_close(fast_grad, zxbcdt2.grad, 1e-4, "d zxbcdt", floor=1e-6)


def test_gathered_gradients_of_the_reference_path_equal_the_plain_split():
    zxbcdt, xBC = projection(2, 21)
    ssd_loss(split_fast, ssd_chunked, zxbcdt, xBC).backward()
    zxbcdt2, xBC2 = projection(2, 21)
    ssd_loss(split_plain, ssd_chunked, zxbcdt2, xBC2).backward()
    assert torch.equal(zxbcdt.grad, zxbcdt2.grad)


def test_gradients_share_a_buffer_only_for_disjoint_slices():
    base = torch.zeros(1, 3 * 32, 10)
    x = base[:, :32].transpose(1, 2).reshape(1, 10, 2, 16)
    B = base[:, 32:64].transpose(1, 2).reshape(1, 10, 1, 32)
    dx, dB = chunk_ssd._zero_grads_like(x, B)
    assert dx.untyped_storage().data_ptr() == dB.untyped_storage().data_ptr()
    assert dx.stride() == x.stride() and dB.stride() == B.stride()
    # the same tensor twice (B is C) or separate tensors: separate zeroed gradients
    for pair in ((B, B), (x, torch.zeros(1, 10, 1, 32))):
        g1, g2 = chunk_ssd._zero_grads_like(*pair)
        assert g1.untyped_storage().data_ptr() != g2.untyped_storage().data_ptr()
        assert g1.stride(1) == 1 and not g1.any() and not g2.any()  # time-major, as the input
    # batch rows closer together than a row's span (batch stride 64, position stride 128): the
    # check cannot rule out that rows interleave, so no sharing
    wide = torch.zeros(10, 2, 64).permute(1, 0, 2)
    halves = (wide[..., :32].reshape(2, 10, 2, 16), wide[..., 32:].reshape(2, 10, 2, 16))
    g1, g2 = chunk_ssd._zero_grads_like(*halves)
    assert g1.untyped_storage().data_ptr() != g2.untyped_storage().data_ptr()


def test_a_lone_gradient_takes_its_inputs_dimension_order():
    """dt `(B, T, H)` as a time-major view of the channels-first projection: its gradient is
    time-major too (so the projection's backward cat reads dense rows)."""
    dt = torch.zeros(2, 12, 10)[:, 9:].transpose(1, 2)  # (2, 10, 3), strides (120, 1, 10)
    (ddt,) = chunk_ssd._zero_grads_like(dt)
    assert ddt.shape == dt.shape and ddt.stride() == (30, 1, 10) and not ddt.any()
    (plain,) = chunk_ssd._zero_grads_like(torch.zeros(2, 3, 4))
    assert plain.is_contiguous()
