"""What GENOSSM_PCT costs `genossm score`: the same VCF scored with and without the model's calibration.

Two copies of a model directory (default: the bundled model): one as it is, one with the
"calibration" entry removed from its config.json. `genossm score` runs on each, alternating, `--repeats`
times, each a fresh process as a user runs it (model loading included); the report gives the median
wall and CPU seconds (the CPU seconds of the child, steadier than wall time on a shared machine) of
both and their difference, with the spread of the runs, which is what a difference must exceed to
be measurable. Gate first: the calibrated output has GENOSSM_PCT on every SNV, the other none, and
their GENOSSM_LLR values are the same. The work the calibration adds is also timed alone: reading
calibration.json, and the percentile of `--rows` ALTs (`Calibration.info`).

    python benchmarks/calibration_overhead.py --out benchmarks/results/calibration_overhead_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import emit_report

from genossm.infer.calibration.distribution import load_calibration
from genossm.infer.score.rows import ScoreRow
from genossm.resources import RESOURCES


def model_copies(model: Path, directory: Path) -> tuple[Path, Path]:
    calibrated, plain = directory / "calibrated", directory / "plain"
    shutil.copytree(model, calibrated)
    shutil.copytree(model, plain)
    config = json.loads((plain / "config.json").read_text())
    if "calibration" not in config:
        sys.exit(f"{model} has no calibration to compare against (run `genossm calibrate` on a copy first)")
    del config["calibration"]
    (plain / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (plain / "calibration.json").unlink()
    return calibrated, plain


def score_once(model: Path, args, out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `genossm score` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "genossm.cli.main", "-q", "score", args.vcf, "--fasta", args.fasta,
                    "--model", str(model), "--threads", str(args.threads), "-o", str(out)], check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def info_values(path: Path, key: str) -> list[str]:
    values = []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        fields = dict(item.split("=", 1) for item in line.split("\t")[7].split(";") if "=" in item)
        values.append(fields.get(key))
    return values


def gate(calibrated_out: Path, plain_out: Path) -> dict:
    pct = info_values(calibrated_out, "GENOSSM_PCT")
    if info_values(calibrated_out, "GENOSSM_LLR") != info_values(plain_out, "GENOSSM_LLR"):
        sys.exit("gate failed: GENOSSM_LLR differs between the calibrated and the plain run")
    if any(value is not None for value in info_values(plain_out, "GENOSSM_PCT")):
        sys.exit("gate failed: the model without calibration wrote GENOSSM_PCT")
    with_pct = sum(value is not None for value in pct)
    if with_pct == 0:
        sys.exit("gate failed: the calibrated run wrote no GENOSSM_PCT")
    return {"records": len(pct), "records_with_pct": with_pct}


def added_work(model: Path, rows: int) -> dict:
    """Seconds to read calibration.json and to compute `rows` percentiles, timed alone."""
    config = json.loads((model / "config.json").read_text())
    started = time.process_time()
    calibration = load_calibration(model, config)
    load_seconds = time.process_time() - started
    alleles = [("A", "G"), ("AT", "A"), ("A", "ACGTT")]
    score_rows = [ScoreRow(i, "c", 1, ".", *alleles[i % 3], {"llr": -0.001 * (i % 997)}, "ok") for i in range(rows)]
    started = time.process_time()
    for first in range(0, rows, 4):
        calibration.info(score_rows[first:first + 4])
    per_alt = (time.process_time() - started) / rows
    return {"load_calibration_seconds": round(load_seconds, 5), "percentile_seconds_per_alt": per_alt,
            "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(RESOURCES / "model"))
    parser.add_argument("--vcf", default="sample")
    parser.add_argument("--fasta", default="sample")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=100_000, help="ALTs in the percentile-only timing")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        calibrated, plain = model_copies(Path(args.model), tmp)
        runs = {"calibrated": [], "plain": []}
        for repeat in range(args.repeats):
            order = ("calibrated", "plain") if repeat % 2 == 0 else ("plain", "calibrated")
            for name in order:
                runs[name].append(score_once(calibrated if name == "calibrated" else plain, args,
                                             tmp / f"{name}.vcf"))
        checked = gate(tmp / "calibrated.vcf", tmp / "plain.vcf")
        work = added_work(calibrated, args.rows)

    def summary(pairs: list[tuple[float, float]]) -> dict:
        walls, cpus = [w for w, _ in pairs], [c for _, c in pairs]
        return {"wall_seconds": [round(w, 3) for w in walls], "cpu_seconds": [round(c, 3) for c in cpus],
                "median_wall_seconds": round(statistics.median(walls), 3),
                "median_cpu_seconds": round(statistics.median(cpus), 3),
                "cpu_spread_seconds": round(max(cpus) - min(cpus), 3)}

    with_pct, without = summary(runs["calibrated"]), summary(runs["plain"])
    difference = with_pct["median_cpu_seconds"] - without["median_cpu_seconds"]
    report = {
        "benchmark": "calibration overhead of genossm score", "model": Path(args.model).name,
        "command": " ".join(["python", "benchmarks/calibration_overhead.py", *sys.argv[1:]]),
        "machine": f"{os.cpu_count()}-core CPU, {args.threads} torch thread per run",
        "vcf": args.vcf, "repeats": args.repeats, "gate": checked,
        "calibrated": with_pct, "without_calibration": without,
        "median_cpu_difference_seconds": round(difference, 3),
        "median_cpu_difference_fraction": round(difference / without["median_cpu_seconds"], 4),
        "added_work_alone": work,
    }
    emit_report(report, args.out)


if __name__ == "__main__":
    main()
