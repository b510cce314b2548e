"""benchmarks/published_models.py at CI size on the CPU: the goldens reproduced in float32, the
peer-style baseline equal to genossm's reference scorer, every timed path gated against it, the
Caduceus embedding timed, and the whole script running with pysam, pyfaidx and biopython
unimportable (they are not installed on the GPU machine)."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "published_models.py"
GOLDEN = ROOT / "tests" / "fixtures" / "published"
# Runs the script as `python benchmarks/published_models.py ...` would, with the packages the GPU
# machine lacks made unimportable (a None entry in sys.modules makes `import` raise).
LAUNCHER = (
    "import runpy, sys; sys.modules.update(pysam=None, pyfaidx=None, Bio=None); "
    "sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("published") / "report.json"
    command = [sys.executable, "-c", LAUNCHER, str(SCRIPT.parent), str(SCRIPT), "--device", "cpu", "--threads", "1",
               "--golden", str(GOLDEN), "--shape", "golden", "--context", "256", "--snvs", "40", "--spacing", "30",
               "--gate-snvs", "24", "--seconds-per-path", "1", "--embed-shape", "golden", "--region", "300",
               "--max-pass-length", "128", "--embed-forward-only", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pysam" not in result.stderr
    return json.loads(out.read_text())


def test_goldens_in_float32_and_bf16(report):
    cases = {row["case"]: row for row in report["golden"]}
    assert set(cases) == {"hyenadna-hf-safetensors", "hyenadna-hf-bin", "hyenadna-lightning", "caduceus-ph",
                          "caduceus-ps"}
    for row in cases.values():
        assert row["fp32_relative_l2"] <= 1e-5  # the converter's float32 target against the peers' logits
        # bf16 moves the logits by about its rounding unit (2^-8 relative), no more than a few of them.
        for key in ("bf16_autocast_relative_l2", "bf16_weights_fp32_compute_relative_l2"):
            assert 1e-4 < row[key] < 3e-2
        assert row["bf16_meets_target"] == (row["bf16_autocast_relative_l2"] <= 2e-3)


def test_scoring_paths_gated_and_timed(report):
    scoring = report["scoring"]
    assert (scoring["d_model"], scoring["n_layers"], scoring["l_max"]) == (64, 2, 1026)
    assert all(error <= 1e-3 for error in scoring["gate_max_abs_difference"].values())
    assert set(scoring["paths"]) == {"baseline", "product", "suffix_reuse", "product_site"}
    for row in scoring["paths"].values():
        assert 0 < row["snvs"] <= 40
        # seconds are rounded to 1 ms in the report: on tiny CPU runs that alone moves the rate
        low, high = row["snvs"] / (row["seconds"] + 5e-4), row["snvs"] / max(row["seconds"] - 5e-4, 1e-9)
        assert low * 0.99 <= row["snvs_per_s"] <= high * 1.01
    baseline = scoring["paths"]["baseline"]["snvs_per_s"]
    product = scoring["paths"]["product"]
    assert product["speedup_vs_baseline"] == pytest.approx(product["snvs_per_s"] / baseline, abs=0.01)


def test_embed_rows(report):
    rows = {row["model"].split()[0]: row for row in report["embed"]}
    assert set(rows) == {"Caduceus-PH", "Caduceus-PS"}
    for row in rows.values():
        assert row["region_bp"] == 300 and row["seconds"] > 0
    # The appended [SEP] breaks the strand symmetry: the forward pass alone is not the average.
    assert 0 < rows["Caduceus-PS"]["forward_only_max_abs_difference"] < 0.1


@pytest.fixture(scope="module")
def benchmark():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        yield runpy.run_path(str(SCRIPT))
    finally:
        sys.path.remove(str(SCRIPT.parent))


@pytest.mark.parametrize("both_strands", [False, True], ids=["forward", "both-strands"])
def test_baseline_equals_genossm_reference_scorer(benchmark, tmp_path, both_strands):
    """The peer-style loop's LLR is genossm's naive scorer's (two full passes per ALT and strand),
    and its log-ratio at the SNV is the alt pass's minus the ref pass's log P at the SNV."""
    from genossm.infer.score.likelihood import causal_token_log_likelihood
    from genossm.infer.score.scorer import score_pairs_naive
    from genossm.infer.score.tiles import TileLayout, allele_pair
    from genossm.models.published import hyenadna_config

    hf_config = benchmark["shaped_config"](GOLDEN, "hyenadna", "golden", {})
    config, _ = hyenadna_config(hf_config, "huggingface", GOLDEN / "hyenadna" / "config.json")
    device = torch.device("cpu")
    model = benchmark["saved_random_model"](config, tmp_path / "model", device)
    window = 64
    genome = benchmark["SyntheticGenome"](2000, seed=3)
    records = benchmark["synthetic_snvs"](genome, 6, 20.0, window, seed=4)
    ours = benchmark["baseline_scores"](model, genome, records, window, 4, both_strands=both_strands, device=device)
    layout = TileLayout(window)
    pairs = []
    for record in records:
        position0 = record.record.pos - 1
        start = layout.tile_start(position0)
        alt = np.array(["ACGT".index(record.variants[0].alt)], dtype=np.uint8)
        pairs.append(allele_pair(genome.fetch_tokens("chrS", start, start + window + 1), position0 - start, 1,
                                 alt, window))
    naive = score_pairs_naive(model, pairs, both_strands=both_strands)
    np.testing.assert_allclose([llr for llr, _ in ours], [s.llr for s in naive], rtol=1e-4, atol=1e-4)
    pair = pairs[0]
    with torch.no_grad():
        lls = [causal_token_log_likelihood(model(torch.from_numpy(w.astype(np.int64))[None]),
                                           torch.from_numpy(w.astype(np.int64))[None])[0, pair.offset]
               for w in (pair.ref, pair.alt)]
    if not both_strands:
        assert ours[0][1] == pytest.approx(float(lls[1] - lls[0]), abs=1e-5)
