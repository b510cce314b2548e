"""genossm.models.layout: the projections the mixers use instead of transposing a Linear's output."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genossm.models.layout import linear_channels_first, linear_from_channels_first, linear_to_channels_first


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [1, 3])
def test_projections_equal_linear_and_come_out_contiguous(bias, batch):
    torch.manual_seed(0)
    up, down = nn.Linear(8, 12, bias=bias), nn.Linear(12, 8, bias=bias)
    x, y = torch.randn(batch, 50, 8), torch.randn(batch, 12, 50)
    cases = [
        (linear_to_channels_first(up, x), up(x).transpose(1, 2)),
        (linear_channels_first(down, y), down(y.transpose(1, 2)).transpose(1, 2)),
        (linear_from_channels_first(down, y), down(y.transpose(1, 2))),
    ]
    for got, expected in cases:
        assert got.is_contiguous() and got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def test_projections_under_autocast_stay_in_the_autocast_dtype():
    """A float32 bias must not promote the bf16 GEMM output back to float32 (twice the memory)."""
    up, down = nn.Linear(8, 12), nn.Linear(12, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert linear_to_channels_first(up, torch.randn(2, 30, 8)).dtype == torch.bfloat16
        assert linear_from_channels_first(down, torch.randn(2, 12, 30)).dtype == torch.bfloat16


def test_projections_backpropagate_like_linear():
    torch.manual_seed(0)
    layer = nn.Linear(6, 10)
    x = torch.randn(2, 20, 6, requires_grad=True)
    linear_to_channels_first(layer, x).square().sum().backward()
    got = (x.grad.clone(), layer.weight.grad.clone(), layer.bias.grad.clone())
    x.grad = layer.weight.grad = layer.bias.grad = None
    layer(x).transpose(1, 2).square().sum().backward()
    for a, b in zip(got, (x.grad, layer.weight.grad, layer.bias.grad)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [1, 3])
def test_gradients_equal_linear_and_come_back_in_the_inputs_layout(bias, batch):
    """dx of linear_to_channels_first is (B, L, d_in) contiguous, dy of linear_from_channels_first
    (B, d_in, L) contiguous: no transposed view for the next kernel to copy."""
    torch.manual_seed(1)
    up, down = nn.Linear(8, 12, bias=bias), nn.Linear(12, 8, bias=bias)
    for fn, layer, make in ((linear_to_channels_first, up, lambda: torch.randn(batch, 50, 8)),
                            (linear_from_channels_first, down, lambda: torch.randn(batch, 12, 50))):
        x = make().requires_grad_()
        weights = torch.randn(fn(layer, x).shape)
        (fn(layer, x) * weights).sum().backward()
        got = [x.grad.clone(), layer.weight.grad.clone()] + ([layer.bias.grad.clone()] if bias else [])
        assert x.grad.is_contiguous()
        x.grad = None
        layer.zero_grad()
        plain = layer(x) if fn is linear_to_channels_first else layer(x.transpose(1, 2))
        if fn is linear_to_channels_first:
            plain = plain.transpose(1, 2)
        (plain * weights).sum().backward()
        want = [x.grad, layer.weight.grad] + ([layer.bias.grad] if bias else [])
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        layer.zero_grad()


def test_gradients_under_autocast_reach_float32_parameters():
    up = nn.Linear(8, 12)
    x = torch.randn(2, 30, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = linear_to_channels_first(up, x)
    out.float().sum().backward()
    assert x.grad.dtype == torch.float32 and x.grad.is_contiguous()
    assert up.weight.grad.dtype == torch.float32 and up.bias.grad.dtype == torch.float32
    torch.testing.assert_close(up.bias.grad, torch.full((12,), 60.0))
