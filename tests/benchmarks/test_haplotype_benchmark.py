"""benchmarks/haplotype.py runs without pysam (the GPU machine has none), passes its correctness
gates, and with --write-calibration stores a calibration that `genossm score` reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from genossm.infer.calibration import load_calibration
from infer_helpers import save_tiny_model

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
# pysam and pyfaidx made unimportable: any import of them, direct or through genossm, fails the run.
RUN = ("import runpy, sys; sys.modules['pysam'] = None; sys.modules['pyfaidx'] = None; "
       "sys.path.insert(0, {bench!r}); sys.argv = ['haplotype.py'] + {args!r}; "
       "runpy.run_path({bench!r} + '/haplotype.py', run_name='__main__')")


def test_benchmark_runs_without_pysam_and_writes_a_calibration(tmp_path):
    model_dir = save_tiny_model("hyena", tmp_path / "tiny")
    genome = tmp_path / "g.fa"
    genome.write_text(">a\n" + "ACGTTGCAAGGCTTAC" * 400 + "\n>b\n" + "TTGACCAGT" * 300 + "\n")
    out = tmp_path / "report.json"
    args = ["--device", "cpu", "--model", str(model_dir), "--genomes", str(genome), "--background-snvs", "120",
            "--background-indels", "0", "--samples", "3", "--variants", "30", "--region-length", "2000",
            "--write-calibration", str(model_dir), "--out", str(out)]
    subprocess.run([sys.executable, "-c", RUN.format(bench=str(BENCHMARKS), args=args)], check=True,
                   capture_output=True)
    report = json.loads(out.read_text())
    assert report["background"]["gate_max_abs_llr_error"] < 1e-4
    assert report["haplotypes"]["gate_max_abs_llr_error"] < 1e-4
    assert report["haplotypes"]["haplotype_windows"] == 2 * 3 * report["haplotypes"]["tiles"]
    calibration = load_calibration(model_dir, json.loads((model_dir / "config.json").read_text()))
    assert calibration.classes["snv"]["count"] == 120 and calibration.window == 64
