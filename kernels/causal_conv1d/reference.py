"""PyTorch references for the short depthwise causal convolution in front of Mamba's scan.

Shapes: x `(B, H, L)`, weight `(H, W)` with W in 2..4, bias `(H,)`, state `(B, H, W-1)` (the
last W-1 inputs before the chunk, oldest first). Math, per channel h:
    y[t] = act(bias[h] + sum_{w < W} weight[h, w] * x[t - (W - 1) + w])
with x at negative times read from initial_state (zeros without one); act is None or "silu".
Computation in fp32 (fp64 for fp64 inputs); outputs and states have x's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import compute_dtype

ACTIVATIONS = (None, "silu")



def _check_weight(weight, bias, activation, H, op) -> int:
    if weight.dim() != 2 or weight.shape[0] != H or not 2 <= weight.shape[1] <= 4:
        raise ValueError(f"{op}: weight must be (H={H}, W) with W in 2..4, got {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (H,):
        raise ValueError(f"{op}: bias must be (H={H},), got {tuple(bias.shape)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{op}: activation must be None or 'silu', got {activation!r}")
    return weight.shape[1]


def _activate(y, activation):
    return F.silu(y) if activation == "silu" else y


def causal_conv1d_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
    initial_state: torch.Tensor | None = None,
    return_final_state: bool = False,
):
    """Depthwise causal conv via F.conv1d(groups=H) on the state-prefixed input.

    Returns y `(B, H, L)`, or `(y, final_state)` with final_state = the last W-1 inputs
    `(B, H, W-1)` of initial_state followed by x (so it is right even when L < W-1).
    """
    if x.dim() != 3:
        raise ValueError(f"causal_conv1d: x must be (B, H, L), got {tuple(x.shape)}")
    batch, H, L = x.shape
    W = _check_weight(weight, bias, activation, H, "causal_conv1d")
    if initial_state is not None and tuple(initial_state.shape) != (batch, H, W - 1):
        raise ValueError(
            f"causal_conv1d: initial_state must be (B={batch}, H={H}, W-1={W - 1}), "
            f"got {tuple(initial_state.shape)}"
        )
    dtype = compute_dtype(x)
    if initial_state is None:
        history = x.new_zeros(batch, H, W - 1, dtype=dtype)
    else:
        history = initial_state.to(dtype)
    x_full = torch.cat([history, x.to(dtype)], dim=-1)  # (B, H, W - 1 + L)
    y = F.conv1d(
        x_full,
        weight.to(dtype)[:, None, :],  # (H, 1, W): conv1d correlates, so weight[-1] meets x[t]
        None if bias is None else bias.to(dtype),
        groups=H,
    )  # (B, H, L)
    y = _activate(y, activation).to(x.dtype)
    if not return_final_state:
        return y
    final_state = x_full[..., x_full.shape[-1] - (W - 1) :].to(x.dtype)  # (B, H, W - 1)
    return y, final_state


def causal_conv1d_step(
    x_t: torch.Tensor,
    state: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
):
    """One step of recurrent inference: x_t `(B, H)`, state `(B, H, W-1)` -> (y_t, new_state).

    Pure function (the state is not updated in place); repeated steps equal `causal_conv1d_ref`.
    """
    if x_t.dim() != 2:
        raise ValueError(f"causal_conv1d_step: x_t must be (B, H), got {tuple(x_t.shape)}")
    batch, H = x_t.shape
    W = _check_weight(weight, bias, activation, H, "causal_conv1d_step")
    if tuple(state.shape) != (batch, H, W - 1):
        raise ValueError(
            f"causal_conv1d_step: state must be (B={batch}, H={H}, W-1={W - 1}), "
            f"got {tuple(state.shape)}"
        )
    dtype = compute_dtype(x_t)
    window = torch.cat([state.to(dtype), x_t.to(dtype)[..., None]], dim=-1)  # (B, H, W)
    y = (window * weight.to(dtype)).sum(-1)  # (B, H)
    if bias is not None:
        y = y + bias.to(dtype)
    y = _activate(y, activation).to(x_t.dtype)
    return y, window[..., 1:].to(state.dtype)
