"""Where a model's step spends its GPU time: torch.profiler's kernel table for one step.

    python benchmarks/profile_model.py --config hyena-1m --length 1048576 --mode inference
    python benchmarks/profile_model.py --config hyena-1m --length 1048576 --mode train --checkpointing
    python benchmarks/profile_model.py --config mamba-small --set rc_equivariant=false --length 131072 --mode train --checkpointing

Prints the top CUDA kernels by total time (and writes the table to --out when given); used to
explain the long-context figures in docs/long_context.md.
"""

from __future__ import annotations

import argparse
import sys

import torch
import yaml
from torch.profiler import ProfilerActivity, profile

from genossm.models.config import load_model_config
from genossm.models.lm import build_model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="hyena-1m")
    parser.add_argument("--length", type=int, default=1 << 20)
    parser.add_argument("--mode", choices=("train", "inference"), default="inference")
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a top-level model config field, e.g. --set rc_equivariant=false")
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    config = load_model_config(args.config)
    for item in args.set:
        field, _, value = item.partition("=")
        setattr(config, field, yaml.safe_load(value))
    config.checkpointing = args.checkpointing
    model = build_model(config).cuda()
    tokens = torch.randint(0, 4, (1, args.length), device="cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        if args.mode == "inference":
            model.eval()
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                model(tokens)
            return
        model.train()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(tokens)  # whole windows, as in benchmarks/long_context.py
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1),
                                                 tokens.roll(-1, dims=1).flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up: Triton compilation, cuFFT plans
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=args.rows, max_name_column_width=70)
    header = f"{args.config} {' '.join(args.set)} L={args.length} {args.mode} checkpointing={args.checkpointing}"
    print(header)
    print(table)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(header + "\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
