"""Fine-tuning benchmark on the example task (gene start vs intergenic, split by genome).

Compares, on the same split (test = held-out genomes NTUH-K2044 and N315):
- the bundled model fine-tuned (full fine-tuning, `genossm.finetune`),
- the same architecture trained from scratch with the same recipe (the value of pretraining),
- a k-mer (k = 1..4) logistic regression, L2 strength chosen on the validation split.
Prints JSON and writes it to --out. Needs data/gene_starts/regions.tsv
(scripts/make_gene_start_task.sh) and data/genomes (scripts/fetch_genomes.sh).

    python benchmarks/finetune_gene_starts.py --train 5000 --val 500 --test 1000 \
        --out benchmarks/results/finetune_gene_starts_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent


def kmer_features(tokens: list[np.ndarray], k_max: int = 4) -> np.ndarray:
    columns = []
    for k in range(1, k_max + 1):
        codes = np.zeros((len(tokens), 4 ** k), dtype=np.float32)
        for row, seq in enumerate(tokens):
            seq = seq[seq < 4].astype(np.int64)
            if len(seq) < k:
                continue
            index = sum(seq[i:len(seq) - k + 1 + i] * 4 ** (k - 1 - i) for i in range(k))
            np.add.at(codes[row], index, 1.0)
        columns.append(codes / max(1, len(tokens[0]) - k + 1))
    return np.concatenate(columns, axis=1)


def logistic_regression(x, y, l2: float, steps: int = 300):
    x, y = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + l2 * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    return lambda z: torch.sigmoid(torch.from_numpy(z).double() @ w + b).detach().numpy()


def kmer_baseline(sets) -> dict:
    from genossm.finetune.metrics import task_metrics

    feats = {name: kmer_features(s.tokens) for name, s in sets.items()}
    mean, std = feats["train"].mean(0), feats["train"].std(0) + 1e-6
    feats = {name: (f - mean) / std for name, f in feats.items()}
    labels = {name: np.stack(s.targets)[:, 0] for name, s in sets.items()}
    best = None
    for l2 in (1e-4, 1e-3, 1e-2, 1e-1):
        predict = logistic_regression(feats["train"], labels["train"], l2)
        val = task_metrics("binary", predict(feats["val"])[:, None], labels["val"][:, None])["auroc"]
        if best is None or val > best[0]:
            best = (val, l2, predict)
    test = task_metrics("binary", best[2](feats["test"])[:, None], labels["test"][:, None])
    return {"model": "k-mer (k=1..4) logistic regression", "l2": best[1], "val_auroc": best[0], "test": test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regions", default=str(REPO / "data/gene_starts/regions.tsv"))
    parser.add_argument("--genomes", default=str(REPO / "data/genomes"))
    parser.add_argument("--train", type=int, default=5000, help="windows per label")
    parser.add_argument("--val", type=int, default=500)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--work", default="/tmp/genossm-finetune-bench")
    parser.add_argument("--skip-scratch", action="store_true")
    parser.add_argument("--skip-finetuned", action="store_true", help="only the from-scratch run (and k-mers)")
    parser.add_argument("--precision", default="auto", help="auto (32-true on CPU), bf16-mixed, 32-true")
    parser.add_argument("--mode", default="full", choices=("full", "frozen", "lora"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from genossm.finetune.job import FinetuneJob, finetune, prepare_data
    from genossm.finetune.recipe import FinetuneRecipe

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sample = work / "sample.tsv"
    subprocess.run([sys.executable, str(REPO / "scripts/sample_gene_starts.py"), args.regions, "--train",
                    str(args.train), "--val", str(args.val), "--test", str(args.test), "--out", str(sample)],
                   check=True)
    fasta = tuple(sorted(str(p) for p in Path(args.genomes).glob("*.fa.gz")))
    recipe = FinetuneRecipe(max_epochs=args.epochs, batch_size=args.batch_size, lr=3e-4, head_lr=1e-3,
                            warmup_steps=20, checkpoint_every_steps=1000, precision=args.precision, mode=args.mode)
    job = FinetuneJob(data=(str(sample),), fasta=fasta, out_dir="", split_column="split", recipe=recipe,
                      command="benchmarks/finetune_gene_starts.py")
    spec, sets, *_ = prepare_data(job)
    results = {"task": "200 bases upstream of a prodigal gene start vs 200 intergenic bases; split by genome "
                       "(test: NTUH-K2044, N315; val: MGH78578, COL)",
               "windows": {name: len(s) for name, s in sets.items()},
               "host": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                        "cores": os.cpu_count(), "torch": torch.__version__,
                        "load_average_at_start": os.getloadavg()[0]},
               "command": " ".join(["python", *sys.argv]),
               "gpu_windows_per_second": "not measured (no GPU available to this run)"}
    results["kmer_logistic_regression"] = kmer_baseline(sets)
    print(json.dumps(results["kmer_logistic_regression"]), flush=True)
    runs = (([] if args.skip_finetuned else [("finetuned_bundled", False)])
            + ([] if args.skip_scratch else [("scratch_same_architecture", True)]))
    for name, scratch in runs:
        out_dir = work / name
        import shutil

        shutil.rmtree(out_dir, ignore_errors=True)
        started = time.perf_counter()
        metrics = finetune(FinetuneJob(**{**job.__dict__, "out_dir": str(out_dir),
                                          "recipe": FinetuneRecipe(**{**recipe.to_dict(), "from_scratch": scratch})}))
        results[name] = {"wall_seconds": round(time.perf_counter() - started, 1), "steps": metrics["steps"],
                         "train_seconds": metrics["train_seconds_this_run"],
                         "train_windows_per_second": metrics["train_windows_per_second"],
                         "train_cpu_seconds_per_window": metrics["train_cpu_seconds_per_window"],
                         "precision": metrics["precision"],
                         "best_val": metrics["best"], "test": metrics["test"], "recipe": metrics["recipe"]}
        print(json.dumps({name: results[name]["test"], "wall_seconds": results[name]["wall_seconds"]}), flush=True)
        Path(args.out).write_text(json.dumps(results, indent=2, default=lambda v: None) + "\n")  # after each run
    Path(args.out).write_text(json.dumps(results, indent=2, default=lambda v: None) + "\n")
    print(json.dumps(results, indent=2, default=lambda v: None))


if __name__ == "__main__":
    main()
