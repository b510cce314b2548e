"""Which PyTorch ops a training step runs besides genossm's kernels, and the bytes each moves.

    python benchmarks/op_census.py --config mamba2-1m [--layers 2] [--length 4096] [--scale-to 1048576]
    python benchmarks/op_census.py --config mamba-small --set rc_equivariant=false --out census.json

Runs one forward + backward of a model built from a shipped config (on the CPU, bf16 autocast as
training on a GPU runs) with the ops that have a Triton path on CUDA replaced by stubs (`--stub`:
by default every one of them), and records every other aten op through a dispatch mode: its
count, and the bytes of its tensor inputs and outputs (views cost nothing and are left out). The
totals are scaled linearly from --length to --scale-to positions. On a GPU each such op is at
least one pass over memory, so this is the traffic the step spends outside the kernels, and where.
RMSNorm runs as torch's fused op (`aten._fused_rms_norm`, what `F.rms_norm` runs on CUDA; on the
CPU it would decompose into a dozen ops). It counts, it does not time: what the bytes cost
depends on the device's bandwidth.
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from common import emit_report

from genossm import kernels
from genossm.models.config import ModelConfig, load_model_config
from genossm.models.lm import build_model

log = logging.getLogger("genossm.benchmarks.op_census")

# genossm.kernels ops with a Triton path on CUDA: stubbed so that only the rest is counted
KERNEL_OPS = ("ssd", "selective_scan", "causal_conv1d", "fftconv", "gated_rms_norm")
# ops that make views or allocate without touching memory
FREE = {"view", "_unsafe_view", "t", "transpose", "split", "split_with_sizes", "slice", "expand",
        "as_strided", "permute", "unsqueeze", "squeeze", "detach", "alias", "unflatten", "select",
        "chunk", "unbind", "empty_like", "empty", "lift_fresh", "new_empty", "empty_strided",
        "view_as", "_reshape_alias", "expand_as", "unsafe_split", "unsafe_chunk"}


class _Counting(TorchDispatchMode):
    """Counts each aten op not in FREE, keyed by (op, first output shape); pauses inside stubs."""

    def __init__(self):
        super().__init__()
        self.stats = collections.defaultdict(lambda: [0, 0])
        self.paused = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.__name__.split(".")[0]
        if self.paused or name in FREE:
            return out
        leaves = torch.utils._pytree.tree_leaves((args, kwargs, out))
        moved = sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))
        outputs = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        self.count(name, outputs[0].shape if outputs else (), moved)
        return out

    def count(self, name: str, shape, moved: int) -> None:
        key = (name, tuple(shape))
        self.stats[key][0] += 1
        self.stats[key][1] += moved


class _Stub(torch.autograd.Function):
    """Output like the first input, gradient like each tensor input; the work is not counted."""

    @staticmethod
    def forward(ctx, first, *rest):
        ctx.likes = [(t.shape, t.dtype) for t in rest]
        return torch.empty_like(first)

    @staticmethod
    def backward(ctx, grad):
        return (torch.empty_like(grad), *(torch.empty(shape, dtype=dtype) for shape, dtype in ctx.likes))


def _stub(mode: _Counting, name: str, calls: collections.Counter):
    def stubbed(*args, **kwargs):
        if any(kwargs.get(key) for key in ("return_state", "return_last_state", "return_final_state",
                                           "return_final_states")):
            raise RuntimeError(f"op_census: {name} asked for a state; only the training forward is stubbed")
        calls[name] += 1
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        mode.paused += 1
        try:
            return _Stub.apply(tensors[0], *tensors[1:])
        finally:
            mode.paused -= 1
    return stubbed


def _nbytes(*tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


class _FusedRMSNorm(torch.autograd.Function):
    """F.rms_norm counted as CUDA runs it, one fused op each way (on the CPU even
    `aten._fused_rms_norm` decomposes into a dozen ops before a dispatch mode sees it): the
    forward moves x, weight and y; the backward dy, x, weight, the per-row rstd, dx and dweight."""

    @staticmethod
    def forward(ctx, x, weight, normalized_shape, eps, mode, original):
        mode.paused += 1
        try:
            with torch.enable_grad():
                x_ = x.detach().requires_grad_()
                w_ = weight.detach().requires_grad_() if weight is not None else None
                y = original(x_, normalized_shape, w_, eps)
        finally:
            mode.paused -= 1
        ctx.graph = (x_, w_, y, mode)
        mode.count("rms_norm (fused)", y.shape, _nbytes(x, weight, y))
        return y.detach()

    @staticmethod
    def backward(ctx, dy):
        x_, w_, y, mode = ctx.graph
        leaves = [t for t in (x_, w_) if t is not None]
        mode.paused += 1
        try:
            grads = torch.autograd.grad(y, leaves, dy)
        finally:
            mode.paused -= 1
        rows = x_.numel() // x_.shape[-1]
        mode.count("rms_norm_backward (fused)", x_.shape, _nbytes(dy, x_, w_, *grads) + 4 * rows)
        return grads[0], (grads[1] if w_ is not None else None), None, None, None, None


def census(config, length: int, stubs: tuple[str, ...]) -> tuple[dict, collections.Counter]:
    model = build_model(config)
    tokens = torch.randint(0, 4, (1, length))
    mode = _Counting()
    calls: collections.Counter = collections.Counter()
    saved = {name: getattr(kernels, name) for name in stubs}
    rms_norm = torch.nn.functional.rms_norm
    try:
        torch.nn.functional.rms_norm = lambda x, shape, weight=None, eps=None: _FusedRMSNorm.apply(
            x, weight, shape, eps, mode, rms_norm)
        for name in stubs:
            setattr(kernels, name, _stub(mode, name, calls))
        with torch.autocast("cpu", dtype=torch.bfloat16), mode:
            logits = model(tokens)
            loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), tokens.flatten())
            loss.backward()
    finally:
        torch.nn.functional.rms_norm = rms_norm
        for name, op in saved.items():
            setattr(kernels, name, op)
    return mode.stats, calls


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="a shipped model config (genossm info --configs)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (numbers, true/false, words; section.field)")
    parser.add_argument("--layers", type=int, default=2, help="layers to build (the totals are per this many)")
    parser.add_argument("--length", type=int, default=4096)
    parser.add_argument("--scale-to", type=int, default=1 << 20)
    parser.add_argument("--stub", nargs="*", default=list(KERNEL_OPS), choices=KERNEL_OPS)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", help="write the JSON here as well as to stdout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    if args.layers < 1 or args.length < 2 or args.scale_to < 1:
        parser.error("--layers >= 1, --length >= 2 and --scale-to >= 1")
    overrides = {"n_layers": args.layers, "checkpointing": False}
    for item in args.set:
        key, _, value = item.partition("=")
        low = value.lower()
        overrides[key] = (True if low == "true" else False if low == "false"
                          else int(value) if value.lstrip("-").isdigit() else value)
    data = load_model_config(args.config).to_dict()
    for key, value in overrides.items():  # dotted keys reach a section: mamba2.chunk_size=128
        section, _, field = key.rpartition(".")
        (data[section] if section else data)[field] = value
    config = ModelConfig.from_dict(data)
    log.info("%s, %d layers, %d positions", args.config, args.layers, args.length)
    stats, calls = census(config, args.length, tuple(args.stub))
    scale = args.scale_to / args.length
    rows = [{"op": name, "shape": list(shape), "calls": n, "bytes_scaled": round(moved * scale),
             "gb_scaled": round(moved * scale / 1e9, 3)}
            for (name, shape), (n, moved) in sorted(stats.items(), key=lambda kv: -kv[1][1])]
    total = sum(r["bytes_scaled"] for r in rows) / 1e9
    report = {"benchmark": "op_census", "config": args.config, "overrides": overrides,
              "length": args.length, "scaled_to": args.scale_to, "stubbed_kernel_calls": dict(calls),
              "total_bytes_scaled": sum(r["bytes_scaled"] for r in rows), "total_gb_scaled": round(total, 2), "gb_per_layer_scaled": round(total / args.layers, 2),
              "rows": rows[: args.top]}
    if not calls:
        log.warning("no stubbed kernel ran: is --config the family you meant?")
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
