"""benchmarks/haplotype.py runs without pysam (the GPU machine may have none), passes its
correctness gate, reports every section, and with --max-seconds stops early leaving a partial
report whose rate is over the tiles it scored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from infer_helpers import save_tiny_model

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
# pysam and pyfaidx made unimportable: any import of them, direct or through genossm, fails the run.
RUN = ("import runpy, sys; sys.modules['pysam'] = None; sys.modules['pyfaidx'] = None; "
       "sys.path.insert(0, {bench!r}); sys.argv = ['haplotype.py'] + {args!r}; "
       "runpy.run_path({bench!r} + '/haplotype.py', run_name='__main__')")


def run_benchmark(tmp_path, *extra: str):
    model_dir = tmp_path / "tiny"
    if not model_dir.exists():
        save_tiny_model("hyena", model_dir)
    genome = tmp_path / "g.fa"
    genome.write_text(">a\n" + "ACGTTGCAAGGCTTAC" * 400 + "\n>b\n" + "TTGACCAGT" * 300 + "\n")
    out = tmp_path / "report.json"
    args = ["--device", "cpu", "--model", str(model_dir), "--genome", str(genome), "--samples", "3",
            "--variants", "30", "--region-length", "2000", "--tiles-per-chunk", "4", "--out", str(out), *extra]
    done = subprocess.run([sys.executable, "-c", RUN.format(bench=str(BENCHMARKS), args=args)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()), done.stderr


def test_benchmark_runs_without_pysam_and_reports_every_section(tmp_path):
    report, stderr = run_benchmark(tmp_path)
    assert report["setup"]["window"] == 64 and report["setup"]["tiles"] > 4
    assert report["gate"]["max_abs_llr_error"] < 1e-4 and report["gate"]["windows"] == 12
    assert report["warmup"]["tiles"] == 1
    haplotypes = report["haplotypes"]
    assert haplotypes["complete"] and haplotypes["tiles_scored"] == report["setup"]["tiles"]
    assert haplotypes["haplotype_windows"] == haplotypes["haplotype_windows_scored"] == 2 * 3 * haplotypes["tiles"]
    assert 0 < haplotypes["model_passes"] <= 2 * (haplotypes["haplotype_windows"] + haplotypes["tiles"])
    assert haplotypes["haplotype_windows_per_second"] > 0 and report["wall_seconds"] > 0
    progress = [line for line in stderr.splitlines() if "haplotype-windows/s, ETA" in line]
    assert len(progress) == -(-haplotypes["tiles"] // 4)  # a line per chunk of 4 tiles


def test_max_seconds_stops_after_a_chunk_and_keeps_the_partial_report(tmp_path):
    report, stderr = run_benchmark(tmp_path, "--max-seconds", "0")
    haplotypes = report["haplotypes"]
    assert not haplotypes["complete"] and haplotypes["tiles_scored"] == 4
    assert haplotypes["haplotype_windows_scored"] == 2 * 3 * 4 < haplotypes["haplotype_windows"]
    # the rate is over what was scored; score_seconds is rounded to 1 ms, which at 4 ms of
    # scoring moves rate x seconds by up to rate x 0.5 ms
    rate, seconds = haplotypes["haplotype_windows_per_second"], haplotypes["score_seconds"]
    assert abs(rate * seconds - 24) <= rate * 0.0005 + 0.05
    assert "stopping after" in stderr
