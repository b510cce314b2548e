"""Training tokens per second of a recipe's model on this machine, measured in seconds.

Forward, backward and AdamW on random windows of the recipe's length and batch size, under the
precision `genossm pretrain` would use (bf16-mixed on a GPU), after warm-up steps that absorb the
kernels' compilation (Triton caches them, so the real run that follows starts warm). Data loading
and Lightning are not in it: its callers (scripts/vep_recipe_gpu.sh, benchmarks/family_comparison.py)
discount the figure before they size the run (the cosine schedule needs its step count up front,
so the budget is turned into steps).

    python scripts/training_probe.py --config plant --seconds 10 [--set KEY=VALUE ...]

Prints one JSON object: tokens_per_second, step_seconds, steps timed, warm-up seconds, device.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="training recipe (name in configs/train or YAML)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override")
    parser.add_argument("--seconds", type=float, default=10.0, help="time the steps for this long")
    parser.add_argument("--warmup-steps", type=int, default=3)
    args = parser.parse_args(argv)

    from genossm.models.lm import build_model
    from genossm.train.recipe import load_recipe
    from genossm.train.run import resolve_model_config, resolve_precision

    recipe = load_recipe(args.config, args.set)
    config = resolve_model_config(recipe)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.optim.lr)
    batch, length = recipe.data.batch_size, recipe.data.window_length
    generator = torch.Generator(device="cpu").manual_seed(0)
    tokens = torch.randint(0, 4, (batch, length + 1), generator=generator).to(device)  # (B, L + 1)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]  # the loss's cost does not depend on the objective
    precision = resolve_precision(recipe.trainer)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision.startswith("bf16")
                else contextlib.nullcontext())

    def step() -> None:
        with autocast:
            logits = model(inputs)  # (B, L, V)
            loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    started = time.perf_counter()
    for _ in range(args.warmup_steps):
        step()
    synchronize()
    warmup_seconds = time.perf_counter() - started
    steps, started = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - started < args.seconds:
        step()
        steps += 1
        if steps % 5 == 0:
            synchronize()
    synchronize()
    elapsed = time.perf_counter() - started
    print(json.dumps({"config": args.config, "overrides": args.set, "device": str(device),
                      "device_name": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                      "precision": precision, "batch_size": batch, "window_length": length,
                      "parameters": sum(p.numel() for p in model.parameters()),
                      "warmup_seconds": round(warmup_seconds, 2), "steps": steps,
                      "step_seconds": round(elapsed / steps, 5),
                      "tokens_per_second": round(steps * batch * length / elapsed, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
