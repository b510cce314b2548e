"""Mamba-2 through the commands: variant scores with prefix-state reuse equal full passes, and
`genossm pretrain / score / embed / mutagenesis / info` run a Mamba-2 model end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genossm.cli.main import main
from genossm.infer.score.scorer import VariantScorer, score_pairs_naive
from genossm.io.fasta import open_fasta
from genossm.models.checkpoint import load_model, save_model
from genossm.models.config import ModelConfig
from genossm.models.lm import build_model
from infer_helpers import LAMBDA, LAMBDA_CONTIG, random_allele_pairs, write_vcf

WINDOW = 64
TINY = dict(arch="mamba2", d_model=16, n_layers=2, max_length=64,
            mamba2={"d_state": 8, "headdim": 8, "ngroups": 2, "chunk_size": 16})


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(**TINY)).eval()
    with torch.no_grad():  # larger than the 0.02 init so the scores are not all rounding
        model.embedding.weight.normal_(0, 1.0)
    return model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models") / "mamba2"
    save_model(tiny_model(), directory)
    return directory


def test_prefix_state_scores_equal_full_passes():
    model = tiny_model()
    pairs = random_allele_pairs(1, 10, WINDOW)
    calls = []
    original = model.forward_with_state

    def counting(tokens, state=None):
        calls.append(tokens.shape)
        return original(tokens, state)

    model.forward_with_state = counting
    scorer = VariantScorer(model, both_strands=True, batch_size=4, reuse_prefix_state=True)
    assert scorer.reuse_prefix_state
    fast = scorer.score(pairs)
    assert calls, "the scorer did not resume from prefix states"
    del model.forward_with_state
    naive = score_pairs_naive(model, pairs, both_strands=True)
    np.testing.assert_allclose([s.llr for s in fast], [s.llr for s in naive], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose([s.embdist for s in fast], [s.embdist for s in naive], atol=1e-5, rtol=1e-4)
    assert any(abs(s.llr) > 1e-3 for s in naive)


def test_score_embed_mutagenesis_info(model_dir, tmp_path, capsys):
    with open_fasta(LAMBDA) as genome:
        snv_ref, deleted = genome.fetch(LAMBDA_CONTIG, 199, 200).upper(), genome.fetch(LAMBDA_CONTIG, 499, 501).upper()
    snv_alt = "A" if snv_ref != "A" else "C"
    vcf = write_vcf(tmp_path / "in.vcf", {LAMBDA_CONTIG: 48502},
                    [(LAMBDA_CONTIG, 200, "snv", snv_ref, snv_alt), (LAMBDA_CONTIG, 500, "del", deleted, deleted[0])])
    fasta = LAMBDA
    scored = tmp_path / "out.tsv"
    assert main(["-q", "score", str(vcf), "--fasta", str(fasta), "--model", str(model_dir),
                 "-o", str(tmp_path / "out.vcf.gz"), "--tsv", str(scored)]) == 0
    rows = scored.read_text().strip().split("\n")
    assert len(rows) == 3 and "GENOSSM" not in rows[1]  # header + two scored ALTs
    assert main(["-q", "embed", "--regions", f"{LAMBDA_CONTIG}:101-180", "--fasta", str(fasta), "--model", str(model_dir),
                 "-o", str(tmp_path / "e.h5")]) == 0
    assert main(["-q", "mutagenesis", "--region", f"{LAMBDA_CONTIG}:301-305", "--fasta", str(fasta),
                 "--model", str(model_dir), "--out-prefix", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert main(["info", "--json", str(model_dir)]) == 0
    described = json.loads(capsys.readouterr().out)
    described = described[0] if isinstance(described, list) else described
    assert "mamba2" in json.dumps(described)


def test_pretrain_tiny_mamba2(data_dir, tmp_path):
    out = tmp_path / "run"
    code = main(["-q", "pretrain", "--config", "tiny-cpu", "--fasta", str(data_dir / "lambda_virus.fa"),
                 "--out", str(out), "--set", "model=tiny-mamba2", "--set", "trainer.max_steps=2",
                 "--set", "trainer.val_every=2",
                 "--set", "model_overrides={d_model: 32, n_layers: 1, max_length: 128}",
                 "--set", "data.window_length=128", "--set", "data.val_windows=2",
                 "--set", "data.test_windows=2", "--test-fraction", "0.1"])
    assert code == 0
    model = load_model(out / "model")
    assert model.config.arch == "mamba2" and model.supports_recurrent_state
    assert model(torch.zeros(1, 9, dtype=torch.long)).shape == (1, 9, model.config.vocab_size)
