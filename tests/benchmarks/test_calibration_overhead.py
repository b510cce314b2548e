"""benchmarks/calibration_overhead.py: both runs are made, the gate compares their outputs, and
the report holds a figure per run and the work the calibration adds timed alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from genossm.cli.main import main
from infer_helpers import LAMBDA, LAMBDA_CONTIG, lambda_sequence, save_tiny_model, write_vcf

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_reports_both_settings_after_the_gate(tmp_path):
    model = save_tiny_model("hyena", tmp_path / "tiny")
    assert main(["-q", "calibrate", "--model", str(model), "--fasta", str(LAMBDA), "-n", "200", "--indels", "0",
                 "--device", "cpu"]) == 0
    sequence = lambda_sequence()
    rows = [(LAMBDA_CONTIG, pos, f"v{pos}", sequence[pos - 1], "A" if sequence[pos - 1] != "A" else "C")
            for pos in (500, 2000, 9000)] + [(LAMBDA_CONTIG, 12000, "mnv", sequence[11999:12001], "GG")]
    vcf = write_vcf(tmp_path / "calls.vcf", {LAMBDA_CONTIG: len(sequence)}, rows)
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "calibration_overhead.py"), "--model", str(model),
                           "--vcf", str(vcf), "--fasta", str(LAMBDA), "--repeats", "2", "--rows", "500",
                           "--out", str(out)], capture_output=True, text=True, cwd=BENCHMARKS)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["gate"] == {"records": 4, "records_with_pct": 3}  # the MNV gets no percentile
    for name in ("calibrated", "without_calibration"):
        assert len(report[name]["cpu_seconds"]) == 2 and report[name]["median_cpu_seconds"] > 0
    assert report["median_cpu_difference_seconds"] == round(
        report["calibrated"]["median_cpu_seconds"] - report["without_calibration"]["median_cpu_seconds"], 3)
    assert report["added_work_alone"]["rows"] == 500 and report["added_work_alone"]["percentile_seconds_per_alt"] > 0
    # the model given is left as it was: still calibrated
    assert "calibration" in json.loads((model / "config.json").read_text())
