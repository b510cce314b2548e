"""Long-context training and inference: step time, tokens/s and peak memory against length.

For each model config and length L, one run measures, with batch 1:
- train: forward + causal-LM loss + backward + AdamW step (bf16 autocast on CUDA), activation
  checkpointing per block when `--checkpointing` says so (`auto`: on from 512K), and from
  `--offload-from` (4M) on with the block inputs in host memory and the MLP recomputed in chunks;
- inference: forward under no_grad (bf16 autocast on CUDA);
each on the fast kernels (`GENOSSM_KERNELS=auto`: Triton on CUDA) and, in the same run, on the
pure PyTorch path (`GENOSSM_KERNELS=reference`: torch.fft, chunked PyTorch scan), so every figure
comes with its ratio. Out-of-memory is recorded as such, never as a number.
`--embed-long` adds a constant-memory embedding of a long sequence through the causal Mamba
model's chunked recurrent inference (`forward_chunked`), reporting peak memory per chunk size.

    python benchmarks/long_context.py --configs hyena-1m mamba-1m \
        --lengths 32768 131072 524288 1048576 2097152 4194304 --out benchmarks/results/long_context.json
    python benchmarks/long_context.py --configs tiny --lengths 1024 --device cpu   # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import sys
import time

import torch

from common import emit_report

from genossm.models.config import load_model_config
from genossm.models.lm import build_model, count_parameters

GiB = 1024**3


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int, warmup: int) -> float:
    """Median wall time of `fn()` in ms after `warmup` calls (synchronised on CUDA)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / GiB if device.type == "cuda" else None


def is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def measure(model, tokens, device, *, train: bool, repeats: int, warmup: int) -> dict:
    """One (train or inference) measurement; returns ms, tokens/s and peak GiB, or oom."""
    length = tokens.shape[1]
    if train:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        # The model sees all `length` positions, as `genossm pretrain` feeds whole windows (a
        # window of length - 1 made every row misaligned and cost the Triton kernels 12%);
        # next-token targets, the last one wrapped round: the work is a real step's.
        targets = tokens.roll(-1, dims=1)

        def step():
            with autocast(device):
                logits = model(tokens)
            loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    else:
        model.eval()

        @torch.no_grad()
        def step():
            with autocast(device):
                model(tokens)

    reset_peak(device)
    try:
        ms = timed(step, device, repeats, warmup)
    except (torch.OutOfMemoryError, RuntimeError) as error:
        if not is_oom(error):
            raise
        return {"oom": True}
    finally:
        if train:
            model.zero_grad(set_to_none=True)
    return {"ms": round(ms, 3), "tokens_per_s": round(length / (ms / 1e3)), "peak_gib": peak_gib(device)}


def ratio(fast: dict, reference: dict, key: str = "tokens_per_s") -> float | None:
    if key in fast and key in reference:
        return round(fast[key] / reference[key], 3)
    return None


def embed_long(model, length: int, chunk_sizes: list[int], device) -> list[dict]:
    """Constant-memory embedding of `length` bases with chunked (recurrent) inference."""
    rows = []
    tokens = torch.randint(0, 4, (1, length), device=device)
    model.eval()
    def stream(sequence, chunk):
        with torch.no_grad(), autocast(device):
            pooled = torch.zeros(model.config.d_model, device=device)
            # Stream chunk by chunk with the recurrent state, pooling as we go: nothing of size L
            # but the input tokens stays alive, which is what `genossm embed` does for long regions.
            state = None
            for piece in sequence.split(chunk, dim=1):
                _, hidden, state = model.forward_with_state(piece, state)
                pooled += hidden.float().sum(dim=(0, 1))
        return pooled

    for chunk in chunk_sizes:
        stream(tokens[:, :2 * chunk], chunk)  # warm-up: kernel compilation (first chunk and with a state)
        reset_peak(device)
        synchronize(device)
        start = time.perf_counter()
        pooled = stream(tokens, chunk)
        synchronize(device)
        seconds = time.perf_counter() - start
        rows.append({
            "length": length, "chunk": chunk, "seconds": round(seconds, 3),
            "tokens_per_s": round(length / seconds), "peak_gib": peak_gib(device),
            "finite": bool(torch.isfinite(pooled).all()),
        })
    return rows


def run_config(name: str, lengths: list[int], device, args) -> list[dict]:
    config = load_model_config(name)
    rows = []
    for length in lengths:
        checkpointing = args.checkpointing == "on" or (args.checkpointing == "auto" and length >= 524288)
        config.checkpointing = checkpointing
        # The longest inputs: block inputs wait in host memory, the MLP is recomputed in chunks.
        offload = checkpointing and 0 < args.offload_from <= length
        config.checkpoint_offload = offload
        config.checkpoint_mlp_chunk = args.mlp_chunk if offload else 0
        torch.manual_seed(0)
        model = build_model(config).to(device)
        tokens = torch.randint(0, 4, (1, length), device=device)
        row = {"config": name, "parameters": count_parameters(model), "length": length,
               "checkpointing": checkpointing, "offload": offload,
               "mlp_chunk": config.checkpoint_mlp_chunk}
        for backend in ("auto", "reference"):
            if backend == "reference" and length > args.max_reference_length:
                row[backend] = {"skipped": f"longer than --max-reference-length {args.max_reference_length}"}
                continue
            os.environ["GENOSSM_KERNELS"] = backend
            row[backend] = {
                mode: measure(model, tokens, device, train=mode == "train", repeats=args.repeats, warmup=1)
                for mode in args.modes
            }
        os.environ.pop("GENOSSM_KERNELS", None)
        for mode in args.modes:
            if mode in row.get("reference", {}):
                row[f"speedup_{mode}"] = ratio(row["auto"][mode], row["reference"][mode])
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        del model, tokens
        reset_peak(device)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["hyena-1m", "mamba-1m"])
    parser.add_argument("--lengths", nargs="+", type=int,
                        default=[32768, 131072, 524288, 1048576, 2097152, 4194304])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--modes", nargs="+", choices=("train", "inference"), default=["train", "inference"])
    parser.add_argument("--checkpointing", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--offload-from", type=int, default=4194304,
                        help="from this length on, keep checkpointed block inputs in host memory and "
                             "recompute the MLP in chunks (0: never)")
    parser.add_argument("--mlp-chunk", type=int, default=262144,
                        help="MLP chunk (positions) with --offload-from")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-reference-length", type=int, default=1 << 20,
                        help="skip the PyTorch-reference comparison above this length")
    parser.add_argument("--embed-long", type=int, default=0,
                        help="also embed this many bases with the causal Mamba config (0: skip)")
    parser.add_argument("--embed-config", default="mamba-1m")
    parser.add_argument("--embed-chunks", nargs="+", type=int, default=[131072, 1048576])
    parser.add_argument("--out", help="write the JSON here as well as to stdout")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    result = {
        "benchmark": "long_context",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "batch": 1,
        "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
        "rows": [],
    }
    for name in args.configs:
        result["rows"].extend(run_config(name, args.lengths, device, args))
    if args.embed_long:
        torch.manual_seed(0)
        model = build_model(load_model_config(args.embed_config)).to(device)
        result["embed_long"] = embed_long(model, args.embed_long, args.embed_chunks, device)
    emit_report(result, args.out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
