"""genossm finetune / predict on tiny data: every head type, pooling and training mode, metrics
against hand-computed values, kill-and-resume, predict's strands and resume, the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genossm.finetune import metrics
from genossm.finetune.job import FinetuneJob, finetune
from genossm.finetune.recipe import FinetuneRecipe

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "finetune" / "gene_starts.tsv"
BASES = np.array(list("ACGT"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 1-layer, 16-channel causal Hyena checkpoint (fast enough for many runs)."""
    from genossm.models.checkpoint import save_model
    from genossm.models.config import ModelConfig, load_model_config
    from genossm.models.lm import build_model

    config = load_model_config("tiny").to_dict() | {"d_model": 16, "n_layers": 1, "max_length": 64}
    torch.manual_seed(0)
    return save_model(build_model(ModelConfig.from_dict(config)), tmp_path_factory.mktemp("m") / "tiny")


def synthetic_table(path: Path, kind: str, rows: int = 48, seed: int = 0) -> Path:
    """Sequences whose labels depend on their GC content (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    header = {"binary": "label", "multiclass": "label", "multilabel": "a\tb", "regression": "y1\ty2",
              "token": "label"}[kind]
    lines = [f"name\tsequence\t{header}\tsplit"]
    for i in range(rows):
        gc = rng.random()
        length = int(rng.integers(20, 40))
        seq = "".join(rng.choice(BASES, length, p=[(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]))
        split = ("train", "train", "val", "test")[i % 4]
        if kind == "binary":
            label = "high" if gc > 0.5 else "low"
        elif kind == "multiclass":
            label = "abc"[min(2, int(gc * 3))]
        elif kind == "multilabel":
            label = f"{int(gc > 0.5)}\t{'NA' if i % 7 == 0 else int(gc > 0.3)}"
        elif kind == "regression":
            label = f"{gc:.4f}\t{seq.count('A') / length:.4f}"
        else:
            label = "".join("1" if b in "GC" else "0" for b in seq)
        lines.append(f"s{i}\t{seq}\t{label}\t{split}")
    path.write_text("\n".join(lines) + "\n")
    return path


LABELS = {"binary": ("label",), "multiclass": ("label",), "multilabel": ("a", "b"), "regression": ("y1", "y2"),
          "token": ("label",)}
CASES = [("binary", "attention", "lora"), ("multiclass", "last", "frozen"), ("multilabel", "mean", "full"),
         ("regression", "attention", "full"), ("token", "mean", "full")]


@pytest.mark.parametrize("kind, pooling, mode", CASES, ids=[f"{k}-{p}-{m}" for k, p, m in CASES])
def test_every_head_trains_exports_and_predicts(tmp_path, tiny_model, kind, pooling, mode):
    from genossm.finetune.checkpoint import load_finetuned
    from genossm.finetune.predict import PredictJob, predict

    table = synthetic_table(tmp_path / "data.tsv", kind)
    recipe = FinetuneRecipe(pooling=pooling, mode=mode, max_epochs=2, batch_size=8, lr=1e-3, warmup_steps=1)
    result = finetune(FinetuneJob(data=(str(table),), out_dir=str(tmp_path / "run"), model=str(tiny_model),
                                  labels=LABELS[kind], task=kind if kind == "token" else None,
                                  split_column="split", recipe=recipe))
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["task"]["kind"] == kind and len(written["epochs"]) == 2
    expected = {"mse", "pearson", "spearman"} if kind == "regression" else {"auroc", "auprc", "accuracy", "mcc"}
    assert expected <= set(result["test"])
    model, record = load_finetuned(tmp_path / "run" / "model")
    assert record.spec.kind == kind
    # the backbone alone is an ordinary genossm checkpoint
    import genossm

    assert genossm.load_model(tmp_path / "run" / "model").config.d_model == 16
    out = tmp_path / ("preds.bedgraph" if kind == "token" else "preds.tsv")
    assert predict(PredictJob(model=str(tmp_path / "run" / "model"), regions=(str(table),), output=str(out))) == 48
    lines = [line for line in out.read_text().splitlines() if not line.startswith("#")]
    if kind == "token":
        assert len(lines) == sum(len(line.split("\t")[1]) for line in table.read_text().splitlines()[1:])
    else:
        assert len(lines) == 48 and len(lines[0].split("\t")) == 5 + len(record.spec.output_names)


def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path, tiny_model):
    from safetensors.torch import load_file

    table = synthetic_table(tmp_path / "data.tsv", "binary", rows=64)
    recipe = FinetuneRecipe(max_epochs=2, batch_size=8, checkpoint_every_steps=3, warmup_steps=2, dropout=0.2)

    def job(out, **kwargs):
        return FinetuneJob(data=(str(table),), out_dir=str(tmp_path / out), model=str(tiny_model),
                           split_column="split", recipe=recipe, **kwargs)

    finetune(job("whole"))
    finetune(job("killed", stop_after_steps=5))  # mid-epoch 0 (4 steps per epoch... 32 rows / 8)
    finetune(job("killed", resume=True))
    whole, resumed = (load_file(tmp_path / out / "model" / "head.safetensors") for out in ("whole", "killed"))
    for name in whole:
        torch.testing.assert_close(resumed[name], whole[name], rtol=1e-5, atol=1e-6)
    first, second = (json.loads((tmp_path / out / "metrics.json").read_text()) for out in ("whole", "killed"))
    assert second["test"]["auroc"] == pytest.approx(first["test"]["auroc"])


def test_predict_averages_strands_and_resumes(tmp_path, tiny_model):
    from genossm.finetune.predict import PredictJob, partial_path, predict
    from genossm.tokenizer import reverse_complement

    table = synthetic_table(tmp_path / "data.tsv", "binary")
    finetune(FinetuneJob(data=(str(table),), out_dir=str(tmp_path / "run"), model=str(tiny_model),
                         split_column="split", recipe=FinetuneRecipe(max_epochs=1, batch_size=8)))
    rows = [line.split("\t") for line in table.read_text().splitlines()[1:]]
    flipped = tmp_path / "flipped.tsv"
    flipped.write_text("name\tsequence\n" + "".join(f"{r[0]}\t{reverse_complement(r[1])}\n" for r in rows))
    model = str(tmp_path / "run" / "model")
    out, out_rc = tmp_path / "a.tsv", tmp_path / "b.tsv"
    predict(PredictJob(model=model, regions=(str(table),), output=str(out), batch_size=5))
    predict(PredictJob(model=model, regions=(str(flipped),), output=str(out_rc), batch_size=7))
    forward = np.array([float(line.split("\t")[-1]) for line in out.read_text().splitlines()[1:]])
    reverse = np.array([float(line.split("\t")[-1]) for line in out_rc.read_text().splitlines()[1:]])
    np.testing.assert_allclose(forward, reverse, rtol=1e-4)
    # an interrupted run: 10 complete rows and a torn one in the partial file
    lines = out.read_text().splitlines(keepends=True)
    target = tmp_path / "c.tsv"
    partial_path(str(target)).write_text("".join(lines[:11]) + lines[11][:7])
    assert predict(PredictJob(model=model, regions=(str(table),), output=str(target), resume=True)) == 38
    assert target.read_text() == out.read_text()


def test_predict_resume_checks_its_input_and_never_writes_through_a_symlink(tmp_path, tiny_model):
    """The reliability rules of `genossm score` hold for predict too: --resume refuses a partial
    file written for other inputs, and a symlink planted at the partial name is replaced, never
    written through."""
    from genossm.errors import InputError
    from genossm.finetune.predict import PredictJob, partial_path, predict

    table = synthetic_table(tmp_path / "data.tsv", "binary")
    finetune(FinetuneJob(data=(str(table),), out_dir=str(tmp_path / "run"), model=str(tiny_model),
                         split_column="split", recipe=FinetuneRecipe(max_epochs=1, batch_size=8)))
    model = str(tmp_path / "run" / "model")
    whole = tmp_path / "whole.tsv"
    predict(PredictJob(model=model, regions=(str(table),), output=str(whole)))
    lines = whole.read_text().splitlines(keepends=True)
    # the interrupted run's partial file, then the input changes under the same name
    target = tmp_path / "out.tsv"
    partial_path(str(target)).write_text("".join(lines[:6]))
    rows = table.read_text().splitlines(keepends=True)
    changed = tmp_path / "changed.tsv"
    changed.write_text(rows[0] + "".join(reversed(rows[1:])))
    with pytest.raises(InputError, match="input changed since the interrupted run"):
        predict(PredictJob(model=model, regions=(str(changed),), output=str(target), resume=True))
    assert partial_path(str(target)).read_text() == "".join(lines[:6])  # left as it was
    # the same input resumes to the uninterrupted bytes
    predict(PredictJob(model=model, regions=(str(table),), output=str(target), resume=True))
    assert target.read_text() == whole.read_text()
    # a symlink planted where the partial file goes: its target stays untouched
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    fresh = tmp_path / "fresh.tsv"
    partial_path(str(fresh)).symlink_to(victim)
    predict(PredictJob(model=model, regions=(str(table),), output=str(fresh)))
    assert victim.read_text() == "keep me\n" and fresh.read_text() == whole.read_text()


def test_regions_split_by_chromosome_and_strand(tmp_path, tiny_model):
    from genossm.finetune.data import SequenceSource, read_examples, split_examples

    rng = np.random.default_rng(1)
    contigs = {name: "".join(rng.choice(BASES, 400)) for name in ("c1", "c2", "c3")}
    (tmp_path / "g.fa").write_text("".join(f">{n}\n{s}\n" for n, s in contigs.items()))
    lines = ["#chrom\tstart\tend\tname\tstrand\tlabel"]
    for i in range(30):
        chrom = f"c{i % 3 + 1}"
        lines.append(f"{chrom}\t{i * 10}\t{i * 10 + 25}\tr{i}\t{'+-'[i % 2]}\t{i % 2}")
    (tmp_path / "r.tsv").write_text("\n".join(lines) + "\n")
    examples = list(read_examples(tmp_path / "r.tsv", ("label",)))
    splits = split_examples(examples, val_chroms=["c2"], test_chroms=["c3*"])
    assert {e.chrom for e in splits["val"]} == {"c2"} and {e.chrom for e in splits["test"]} == {"c3"}
    source = SequenceSource([tmp_path / "g.fa"])
    minus = next(e for e in examples if e.strand == "-")
    from genossm.tokenizer import decode, reverse_complement

    assert decode(source.tokens(minus)) == reverse_complement(contigs[minus.chrom][minus.start:minus.end])
    with pytest.raises(Exception, match="never splits random rows"):
        split_examples(examples)
    result = finetune(FinetuneJob(data=(str(tmp_path / "r.tsv"),), fasta=(str(tmp_path / "g.fa"),),
                                  out_dir=str(tmp_path / "run"), model=str(tiny_model), val_chroms=("c2",),
                                  test_chroms=("c3",), recipe=FinetuneRecipe(max_epochs=1, batch_size=4)))
    assert result["examples"] == {"train": 10, "val": 10, "test": 10}


def test_metrics_against_hand_values():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1])
    assert metrics.auroc(scores, labels) == pytest.approx(0.75)  # sklearn.roc_auc_score
    assert metrics.auprc(scores, labels) == pytest.approx(0.8333333)  # sklearn.average_precision_score
    assert metrics.mcc(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1]), 2) == pytest.approx(0.5773503)
    assert metrics.spearman(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 25, 100])) == pytest.approx(1.0)
    assert metrics.auroc(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)


def test_cli_finetune_predict_info(tmp_path, tiny_model, capsys):
    from genossm.cli.main import main

    out = tmp_path / "run"
    assert main(["finetune", "--data", str(FIXTURE), "--split-column", "split", "--model", str(tiny_model),
                 "--out", str(out), "--set", "max_epochs=1", "--set", "pooling=last", "-q"]) == 0
    assert main(["info", str(out / "model")]) == 0
    assert "binary classification of background/start" in capsys.readouterr().out
    assert main(["predict", "--model", str(out / "model"), "--regions", str(FIXTURE), "-o", "-", "-q"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("#chrom") and len(printed) == 201
    assert main(["finetune", "--data", str(FIXTURE), "--model", str(tiny_model), "--out", str(tmp_path / "x")]) == 2
