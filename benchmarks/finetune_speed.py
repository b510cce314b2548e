"""Fine-tuning and prediction speed of the bundled model on synthetic windows (CPU or one GPU).

Synthetic task: random windows of --length bases, half of them carrying the motif TATAAT at a
random place (label 1). Sequences are given as a TSV (no genome files), so the GPU path imports
no pysam, pyfaidx or Biopython (the script refuses them). It runs the library calls that
`genossm finetune` and `genossm predict` run:

- for each --modes (full, frozen, lora): `finetune` for one epoch over --windows training
  windows (validation and test: --heldout windows each), reporting training windows/s (batches
  only, as metrics.json does), the whole run's wall time, and the validation AUROC (a gate: a
  run that learnt nothing is reported as failed);
- `predict` on --predict-windows windows with the full-mode model, both strands (windows/s);
- on a CPU, the projection for the CPU target of issue 18: 10,000 training windows + 3,000
  held-out (1,000 val + 2,000 test, as benchmarks/finetune_gene_starts.py) at the measured rates.

    python benchmarks/finetune_speed.py --device cuda --windows 20000 --heldout 2000 \
        --predict-windows 20000 --batch-size 128 --out benchmarks/results/finetune_speed_h200.json
    python benchmarks/finetune_speed.py --device cpu --windows 500 --heldout 200 \
        --predict-windows 200 --profile benchmarks/results/profiles/finetune_bundled_cpu_step.txt \
        --out benchmarks/results/finetune_speed_cpu.json
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import common

MOTIF = "TATAAT"
REFUSED = ("pysam", "pyfaidx", "Bio")  # not installed on the GPU machines


class _RefuseGenomeLibraries(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in REFUSED:
            raise ImportError(f"{name} imported on the synthetic-window path (not installed on GPU machines)")
        return None


def synthetic_windows(path: Path, counts: dict[str, int], length: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    bases = np.array(list("ACGT"))
    lines = ["name\tsequence\tlabel\tsplit"]
    for split, count in counts.items():
        for i in range(count):
            sequence = "".join(rng.choice(bases, length))
            label = i % 2
            if label:
                at = int(rng.integers(0, length - len(MOTIF)))
                sequence = sequence[:at] + MOTIF + sequence[at + len(MOTIF):]
            lines.append(f"{split}{i}\t{sequence}\t{label}\t{split}")
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--windows", type=int, default=500, help="training windows")
    parser.add_argument("--heldout", type=int, default=200, help="validation windows (and as many test windows)")
    parser.add_argument("--predict-windows", type=int, default=200)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--precision", default="auto", help="auto: bf16-mixed on GPU, 32-true on CPU")
    parser.add_argument("--modes", default="full,frozen,lora")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--model", default=None, help="backbone (default: the bundled model)")
    parser.add_argument("--profile", metavar="TXT", help="also write torch.profiler's op table of 2 training "
                        "steps (forward + backward, one batch) to this file")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    sys.meta_path.insert(0, _RefuseGenomeLibraries())

    import torch

    from genossm.finetune.job import FinetuneJob, finetune
    from genossm.finetune.predict import PredictJob, predict
    from genossm.finetune.recipe import FinetuneRecipe

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    work = Path(tempfile.mkdtemp(prefix="genossm-finetune-speed-"))
    table = synthetic_windows(work / "windows.tsv", {"train": args.windows, "val": args.heldout,
                                                     "test": args.heldout}, args.length, seed=0)
    to_predict = synthetic_windows(work / "predict.tsv", {"test": args.predict_windows}, args.length, seed=1)
    accelerator = "gpu" if args.device == "cuda" else "cpu"
    base = FinetuneRecipe(max_epochs=1, accelerator=accelerator, precision=args.precision, lr=3e-4,
                          head_lr=1e-3, warmup_steps=20, checkpoint_every_steps=100_000)
    if args.batch_size:
        base = FinetuneRecipe(**{**base.to_dict(), "batch_size": args.batch_size})
    device = torch.device("cuda" if args.device == "cuda" else "cpu")
    report: dict = {"machine": common.device_facts(device), "load_average_at_start": os.getloadavg()[0],
                    "windows": args.windows, "heldout": args.heldout,
                    "length": args.length, "batch_size": base.batch_size, "command": " ".join(sys.argv),
                    "modes": {}}

    def run(name: str, recipe: FinetuneRecipe, **job_options) -> dict:
        out = work / name
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        metrics = finetune(FinetuneJob(data=(str(table),), out_dir=str(out), model=args.model,
                                       split_column="split", recipe=recipe, **job_options))
        return {"metrics": metrics, "wall_seconds": time.perf_counter() - started, "dir": out}

    # warm-up (kernel compilation, allocator, first-call costs), not reported
    run("warmup", FinetuneRecipe(**{**base.to_dict(), "max_steps": 3}), stop_after_steps=3)
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        result = run(mode, FinetuneRecipe(**{**base.to_dict(), "mode": mode}))
        metrics = result["metrics"]
        val_auroc = metrics["best"]["val_auroc"] if metrics.get("best") else None
        report["modes"][mode] = {
            "train_windows_per_second": metrics["train_windows_per_second"],
            "train_cpu_seconds_per_window": metrics["train_cpu_seconds_per_window"],
            "train_seconds": metrics["train_seconds_this_run"], "wall_seconds": round(result["wall_seconds"], 2),
            "steps": metrics["steps"], "val_auroc": val_auroc, "test_auroc": metrics["test"]["auroc"],
            "learnt": bool(val_auroc is not None and val_auroc > 0.6), "precision": metrics["precision"]}
        if mode == "full" or "predict" not in report:
            output = work / "predictions.tsv"
            started = time.perf_counter()
            predict(PredictJob(model=str(result["dir"] / "model"), regions=(str(to_predict),), output=str(output),
                               device=args.device, batch_size=max(64, base.batch_size)))
            seconds = time.perf_counter() - started
            report["predict"] = {"model": mode, "windows": args.predict_windows, "both_strands": True,
                                 "seconds": round(seconds, 2),
                                 "windows_per_second": round(args.predict_windows / seconds, 1)}
        print(json.dumps({mode: report["modes"][mode]}), flush=True)
    report["load_average_at_end"] = os.getloadavg()[0]  # other processes stretch CPU wall times
    if args.device == "cpu":
        report["cpu_projection_10k"] = projection(report)
    if args.profile:
        report["profile"] = profile_training_step(args, device)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    shutil.rmtree(work, ignore_errors=True)


def profile_training_step(args, device) -> dict:
    """Forward and backward seconds of one batch, and the op table of 2 profiled steps (to --profile)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from genossm.finetune.heads import SequenceTaskModel, task_loss
    from genossm.finetune.job import backbone_dir
    from genossm.finetune.module import build_backbone
    from genossm.finetune.task import TaskSpec

    torch.manual_seed(0)
    model = SequenceTaskModel(build_backbone(str(backbone_dir(args.model)), False),
                              TaskSpec("binary", ("label",), classes=("0", "1"))).to(device)
    batch = args.batch_size or 32
    tokens = torch.randint(0, 4, (batch, args.length), device=device)
    mask = torch.ones_like(tokens, dtype=torch.bool)
    targets = torch.randint(0, 2, (batch, 1), device=device).float()

    def step() -> tuple[float, float]:
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        started = time.perf_counter()
        loss = task_loss("binary", model(tokens, mask), targets)
        sync()
        middle = time.perf_counter()
        loss.backward()
        sync()
        return middle - started, time.perf_counter() - middle

    step()  # warm-up
    timings = [step() for _ in range(3)]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        for _ in range(2):
            step()
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = profiler.key_averages().table(sort_by=sort, row_limit=25)
    Path(args.profile).write_text(f"# {' '.join(sys.argv)}\n# batch {batch} x {args.length} bases, "
                                  f"2 training steps (forward + backward) of the fine-tuning model\n{table}\n")
    forward, backward = (min(t[i] for t in timings) for i in (0, 1))
    return {"batch": batch, "forward_seconds": round(forward, 4), "backward_seconds": round(backward, 4),
            "table": args.profile}


def projection(report: dict) -> dict:
    """Minutes for 10,000 training windows + 1,000 val + 2,000 test at this run's rates: training
    at its measured windows/s, held-out windows at the rate of the run's time outside training
    batches (validation, test, loading, export) per held-out window (an upper bound: it also
    carries the fixed costs); and the CPU minutes of the 10,000 windows' training batches."""
    projected = {}
    heldout_now = 2 * report["heldout"]
    for mode, row in report["modes"].items():
        outside_training = max(0.0, row["wall_seconds"] - row["train_seconds"])
        seconds = 10_000 / row["train_windows_per_second"] + 3_000 * outside_training / heldout_now
        projected[mode] = {"minutes": round(seconds / 60, 1),
                           # CPU time of the training batches, all threads: what other jobs on a
                           # shared machine do not stretch (wall >= this / threads)
                           "training_cpu_minutes": round(10_000 * row["train_cpu_seconds_per_window"] / 60, 1)}
    return projected


if __name__ == "__main__":
    main()
