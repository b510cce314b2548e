"""Scaling of `genossm pretrain` from 1 to 2 GPUs: hyena-1m at 131,072 and 1,048,576 bases,
DDP and FSDP, training tokens/s (all GPUs, first step excluded) and peak memory per GPU; JSON.

Every run is a real `pretrain` call in its own process tree (Lightning launches the second
rank by re-running the job script), on a synthetic random genome (the speed of a step does not
depend on the bases). Per-device batch 1, no accumulation, bf16, activation checkpointing (the
hyena-1m recipe), so 2 GPUs train a global batch of 2 windows per step against 1.

    python benchmarks/distributed.py --out results.json          # defaults: < 8 min on 2 H200
    python benchmarks/distributed.py --lengths 131072 --strategies ddp --steps 30
    python benchmarks/distributed.py --gpu-counts 1 2 4 8 --out scaling-h200x8.json --plot scaling-h200x8.png

Every multi-GPU row gets its speed-up and scaling efficiency (speed-up / GPUs) against the
one-GPU row of the same length (`scaling` in the JSON); `--plot` draws throughput against GPU count.

Scoring row: `genossm score` with the bundled model over a synthetic VCF of SNVs on the same
genome, on 1 and on 2 GPUs (`--devices 2`): records/s end to end (process start and model load
included), the steady rate once started (a one-chunk run measures the start-up), and whether the
two outputs are the same bytes. `--no-pretrain` runs only this row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

# Run inside each rank: train, then write this rank's peak memory next to the metrics.
JOB = textwrap.dedent("""
    import json, logging, sys, torch
    logging.basicConfig(level=logging.WARNING, format="genossm: %(message)s")
    from genossm.train.recipe import load_recipe
    from genossm.train.run import pretrain
    overrides = json.loads(sys.argv[2])
    recipe = load_recipe("hyena-1m", overrides)
    pretrain(recipe, sys.argv[1], run_test=False)
    rank = int(__import__("os").environ.get("LOCAL_RANK", 0))
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    open(f"{sys.argv[1]}/peak_memory_rank{rank}.json", "w").write(json.dumps({"rank": rank, "peak_gib": peak}))
""")


def write_random_genome(path: Path, contigs: int, length: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "w") as handle:
        for index in range(contigs):
            bases = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, length)].tobytes().decode()
            handle.write(f">synthetic{index}\n")
            for start in range(0, length, 80):
                handle.write(bases[start:start + 80] + "\n")


def run_pretrain(work: Path, fasta: Path, *, length: int, devices: int, strategy: str,
                 steps: int, timeout_s: int) -> dict:
    out = work / f"L{length}_{strategy}_{devices}gpu"
    overrides = [
        f"data.fasta=[{fasta}]", f"data.window_length={length}", "data.batch_size=1",
        "data.val_fraction=0.01", "data.test_fraction=0.0", "data.val_windows=1",
        "trainer.accumulate=1", f"trainer.max_steps={steps}", "trainer.val_every=1000000",
        "trainer.checkpoint_every=1000000", f"trainer.devices={devices}",
        f"trainer.strategy={strategy}", "length_warmup=[]", "optim.warmup_steps=1",
    ]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(work / "job.py"), str(out), json.dumps(overrides)],
                          capture_output=True, text=True, timeout=timeout_s)
    record = {"length": length, "devices": devices, "strategy": strategy, "steps": steps,
              "wall_s": round(time.perf_counter() - started, 1)}
    if done.returncode != 0:
        record["error"] = done.stderr[-2000:]
        return record
    metrics = json.loads((out / "metrics.json").read_text())
    peaks = [json.loads(p.read_text())["peak_gib"] for p in sorted(out.glob("peak_memory_rank*.json"))]
    record.update(tokens_per_second=metrics["tokens_per_second"], precision=metrics["precision"],
                  peak_memory_gib_per_gpu=[round(p, 2) for p in peaks],
                  train_seconds=metrics["train_seconds_this_run"])
    return record


def write_snv_vcf(path: Path, fasta: Path, records: int, seed: int = 1) -> None:
    """`records` sorted SNVs on the first contig of `fasta`, REF from the genome."""
    lines = fasta.read_text().split(">")[1].split("\n")
    name, sequence = lines[0], "".join(lines[1:])
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.choice(np.arange(1000, len(sequence) - 1000), size=records, replace=False))
    with open(path, "w") as out:
        out.write(f"##fileformat=VCFv4.2\n##contig=<ID={name},length={len(sequence)}>\n")
        out.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for index, position in enumerate(positions):
            ref = sequence[position - 1]
            alt = "ACGT"[("ACGT".index(ref) + 1 + index % 3) % 4]
            out.write(f"{name}\t{position}\tv{index}\t{ref}\t{alt}\t.\tPASS\t.\n")


def run_scoring(work: Path, fasta: Path, vcf: Path, records: int, *, devices: int, timeout_s: int) -> dict:
    out = work / f"score_{devices}_{records}" / "scored.vcf"
    out.parent.mkdir(exist_ok=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "genossm.cli.main", "-q", "score", str(vcf), "--fasta", str(fasta),
                           "-o", out.name, "--devices", str(devices)],
                          capture_output=True, text=True, timeout=timeout_s, cwd=out.parent)
    wall = time.perf_counter() - started
    record = {"task": "score", "devices": devices, "records": records, "wall_s": round(wall, 1)}
    if done.returncode != 0:
        record["error"] = done.stderr[-2000:]
        return record
    record["records_per_second"] = round(records / wall, 1)
    return record


def scoring_rows(work: Path, fasta: Path, records: int, counts: list[int], timeout_s: int,
                 startup_records: int = 256) -> list[dict]:
    """End-to-end records/s per device count, and the steady rate once started: a run of
    `startup_records` (one chunk) measures what does not scale (process start, imports, model
    load, NCCL set-up), and (records - startup_records) / (wall - startup wall) is the rest."""
    vcf, small = work / "snvs.vcf", work / "snvs_startup.vcf"
    write_snv_vcf(vcf, fasta, records)
    lines = vcf.read_text().splitlines(keepends=True)
    header = sum(line.startswith("#") for line in lines)
    small.write_text("".join(lines[:header + startup_records]))
    rows = []
    for devices in counts:
        startup = run_scoring(work, fasta, small, startup_records, devices=devices, timeout_s=timeout_s)
        full = run_scoring(work, fasta, vcf, records, devices=devices, timeout_s=timeout_s)
        if "records_per_second" in full and "records_per_second" in startup:
            full["startup_wall_s"] = startup["wall_s"]
            full["steady_records_per_second"] = round(
                (records - startup_records) / max(full["wall_s"] - startup["wall_s"], 1e-9), 1)
            full["same_bytes_as_1"] = ((work / f"score_{devices}_{records}/scored.vcf").read_bytes()
                                       == (work / f"score_1_{records}/scored.vcf").read_bytes())
        rows.append(full)
        print(json.dumps(full), file=sys.stderr)
    return rows


def scaling_table(runs: list[dict]) -> list[dict]:
    """Speed-up and efficiency (speed-up / devices) of every run against its one-device run."""
    table = []
    for run in runs:
        if run.get("task") == "score":
            base = next((r for r in runs if r.get("task") == "score" and r["devices"] == 1), None)
            key = "steady_records_per_second"
        else:
            base = next((r for r in runs if r.get("task") is None and r["devices"] == 1
                         and r["length"] == run["length"]), None)
            key = "tokens_per_second"
        if base is None or key not in run or key not in base:
            continue
        speedup = run[key] / base[key]
        row = {"task": run.get("task", "pretrain"), "length": run.get("length"),
               "strategy": run.get("strategy"), "devices": run["devices"], key: run[key],
               "speedup": round(speedup, 3), "efficiency": round(speedup / run["devices"], 3)}
        if run.get("task") == "score":
            row["speedup_end_to_end"] = round(run["records_per_second"] / base["records_per_second"], 3)
            row["same_bytes_as_1"] = run.get("same_bytes_as_1")
        table.append(row)
    return table


def plot_scaling(table: list[dict], path: Path, device: str) -> None:
    """Throughput against device count, with the linear ideal (dotted), one panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (train_axis, score_axis) = plt.subplots(1, 2, figsize=(10, 4))
    pretrain = [row for row in table if row["task"] == "pretrain"]
    for length in sorted({row["length"] for row in pretrain}):
        base = [row for row in pretrain if row["length"] == length and row["devices"] == 1]
        for strategy in sorted({row["strategy"] for row in pretrain if row["length"] == length and row["devices"] > 1}):
            points = base + [row for row in pretrain if row["length"] == length and row["strategy"] == strategy]
            xs = [row["devices"] for row in points]
            ys = [row["tokens_per_second"] for row in points]
            train_axis.plot(xs, ys, marker="o", label=f"{strategy}, {length:,} bases")
            train_axis.plot(xs, [ys[0] * x for x in xs], linestyle=":", color="grey")
    score = [row for row in table if row["task"] == "score"]
    if score:
        xs = [row["devices"] for row in score]
        ys = [row["steady_records_per_second"] for row in score]
        score_axis.plot(xs, ys, marker="o", label="genossm score (steady rate)")
        score_axis.plot(xs, [ys[0] * x for x in xs], linestyle=":", color="grey")
    for axis, label, title in ((train_axis, "training tokens/s", "hyena-1m pretraining"),
                               (score_axis, "records/s", "variant scoring")):
        axis.set_xlabel("GPUs")
        axis.set_ylabel(label)
        axis.set_title(f"{title} ({device}); dotted: linear", fontsize=9)
        if axis.lines:
            axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--lengths", type=int, nargs="+", default=[131072, 1048576])
    parser.add_argument("--strategies", nargs="+", default=["ddp", "fsdp"])
    parser.add_argument("--gpu-counts", type=int, nargs="+", default=[1, 2],
                        help="device counts to run (1 is always run: every speed-up is against it); "
                             "counts above the GPUs present are skipped")
    parser.add_argument("--steps", type=int, nargs="+", default=None,
                        help="optimizer steps per run, one per length (default: 24 at 131K, 8 at 1M)")
    parser.add_argument("--timeout", type=int, default=240, help="seconds per run")
    parser.add_argument("--scoring-records", type=int, default=20000,
                        help="SNVs in the scoring row (0: no scoring row)")
    parser.add_argument("--no-pretrain", action="store_true", help="only the scoring row")
    parser.add_argument("--plot", help="also draw throughput against GPU count into this PNG")
    args = parser.parse_args()
    steps = args.steps or [24 if length <= 262144 else 8 for length in args.lengths]
    gpus = torch.cuda.device_count()
    counts = sorted({1, *args.gpu_counts})
    skipped = [n for n in counts if n > max(gpus, 1)]
    counts = [n for n in counts if n not in skipped]
    results = {"device": torch.cuda.get_device_name() if gpus else "cpu", "gpus": gpus,
               "torch": torch.__version__, "NCCL_NVLS_ENABLE": os.environ.get("NCCL_NVLS_ENABLE"),
               "gpu_counts": counts, "skipped_gpu_counts": skipped, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "job.py").write_text(JOB)
        fasta = work / "genome.fa"
        write_random_genome(fasta, contigs=2, length=max(args.lengths) * 3)
        for length, n_steps in zip([] if args.no_pretrain else args.lengths, steps):
            for devices in counts:
                for strategy in ["auto"] if devices == 1 else args.strategies:
                    run = run_pretrain(work, fasta, length=length, devices=devices, strategy=strategy,
                                       steps=n_steps, timeout_s=args.timeout)
                    results["runs"].append(run)
                    print(json.dumps(run), file=sys.stderr)
        if args.scoring_records > 0:
            results["runs"] += scoring_rows(work, fasta, args.scoring_records, counts, args.timeout)
    results["scaling"] = scaling_table(results["runs"])
    # The two-GPU summaries docs/distributed.md quotes.
    results["speedup_2_over_1"] = {f"{row['strategy']}_{row['length']}": row["speedup"] for row in results["scaling"]
                                   if row["task"] == "pretrain" and row["devices"] == 2}
    results["scoring_2_over_1"] = next(
        ({"speedup_steady": row["speedup"], "speedup_end_to_end": row["speedup_end_to_end"],
          "same_bytes": row["same_bytes_as_1"]}
         for row in results["scaling"] if row["task"] == "score" and row["devices"] == 2), {})
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    if args.plot:
        plot_scaling(results["scaling"], Path(args.plot), results["device"])
    print(json.dumps(results["scaling"]))


if __name__ == "__main__":
    main()
