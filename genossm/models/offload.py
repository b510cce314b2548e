"""Activation checkpointing with the checkpointed input kept in host memory.

`torch.utils.checkpoint` keeps each block's input on the GPU until the backward: for hyena-1m at
4M bases that is 8 fp32 (L, 256) tensors, 32 GiB, before any block is recomputed. Here the input
goes to pinned host memory right after the block's forward (an asynchronous copy on the current
stream) and comes back when the backward reaches the block; the block is then recomputed with
grad enabled and back-propagated (the reentrant scheme of `checkpoint(use_reentrant=True)`), so
the GPU holds one block's activations and no saved inputs. The price is one host round trip of
each input per step.

Like torch's checkpoint, the recompute runs under the autocast state and the RNG state of the
forward, so dropout masks and bf16 casts are the same both times. Single-process training only:
parameter gradients are produced inside this function's backward, which DDP's and FSDP's
gradient hooks do not expect (genossm's distributed runs use `torch.utils.checkpoint`).
"""

from __future__ import annotations

import torch


def _to_host(x: torch.Tensor) -> torch.Tensor:
    if x.device.type != "cuda":
        return x.detach()  # CPU runs: nothing to move (keeps the tests device-agnostic)
    host = torch.empty(x.shape, dtype=x.dtype, device="cpu", pin_memory=True)
    host.copy_(x.detach(), non_blocking=True)  # ordered on the stream before any reuse of x's memory
    return host


class _OffloadedCheckpoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, run, x, *params):
        ctx.run, ctx.device = run, x.device
        ctx.autocast = (torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")) \
            if x.device.type == "cuda" else (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
        ctx.cpu_rng = torch.get_rng_state()
        ctx.cuda_rng = torch.cuda.get_rng_state(x.device) if x.device.type == "cuda" else None
        ctx.host_input = _to_host(x)
        with torch.no_grad():
            return run(x)

    @staticmethod
    def backward(ctx, grad_output):
        x = ctx.host_input.to(ctx.device, non_blocking=True).requires_grad_(True)
        ctx.host_input = None
        enabled, dtype = ctx.autocast
        devices = [ctx.device] if ctx.cuda_rng is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(ctx.cpu_rng)
            if ctx.cuda_rng is not None:
                torch.cuda.set_rng_state(ctx.cuda_rng, ctx.device)
            with torch.enable_grad(), torch.autocast(ctx.device.type, dtype=dtype, enabled=enabled):
                out = ctx.run(x)
        torch.autograd.backward(out, grad_output)  # accumulates the parameters' .grad
        return (None, x.grad) + (None,) * (len(ctx.needs_input_grad) - 2)


def offloaded_checkpoint(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`block(x)` whose input waits in host memory for the backward, which recomputes the block."""
    params = tuple(p for p in block.parameters() if p.requires_grad)
    # The parameters are passed only so that autograd calls backward when they need gradients
    # even if x does not (the first block's input is an embedding output, which does).
    return _OffloadedCheckpoint.apply(block, x, *params)
