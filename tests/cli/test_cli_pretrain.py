"""`genossm pretrain` end to end on the lambda phage genome."""

from __future__ import annotations

import json

import torch

from genossm.cli.main import main


def test_pretrain_writes_a_loadable_model(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["-q", "pretrain", "--config", "tiny-cpu", "--fasta", str(data_dir / "lambda_virus.fa"),
                 "--out", str(out), "--set", "trainer.max_steps=3", "--set", "trainer.val_every=3",
                 "--set", "model_overrides={d_model: 32, n_layers: 2, max_length: 128}",
                 "--set", "data.window_length=128", "--set", "data.val_windows=4",
                 "--set", "data.test_windows=4", "--test-fraction", "0.1"])
    assert code == 0
    assert capsys.readouterr().out == ""  # data to stdout only; this command writes none
    from genossm.models.checkpoint import load_model

    model = load_model(out / "model")
    logits = model(torch.zeros(1, 16, dtype=torch.long))
    assert logits.shape == (1, 16, model.config.vocab_size)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["test"]["bases"] > 0
    assert (out / "checkpoints" / "last.ckpt").exists()
    assert metrics["recipe"]["data"]["test_fraction"] == 0.1
    # The Lightning checkpoint has the layout `genossm convert` reads (weights_only loading).
    from genossm.models.checkpoint import convert_lightning_checkpoint

    converted = load_model(convert_lightning_checkpoint(out / "checkpoints" / "last.ckpt", tmp_path / "converted"))
    for name, value in model.state_dict().items():
        assert torch.equal(converted.state_dict()[name], value)


def test_pretrain_reports_bad_input_in_one_line(data_dir, tmp_path, capsys):
    code = main(["pretrain", "--config", "tiny-cpu", "--fasta", str(tmp_path / "missing.fa"),
                 "--out", str(tmp_path / "run")])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("genossm pretrain: error:") and "missing.fa" in err
    code = main(["pretrain", "--config", "tiny-cpu", "--fasta", str(data_dir / "lambda_virus.fa"),
                 "--out", str(tmp_path / "run"), "--set", "trainer.max_stepz=3"])
    assert code == 1 and "max_stepz" in capsys.readouterr().err
    code = main(["pretrain", "--config", "tiny-cpu", "--fasta", str(data_dir / "lambda_virus.fa"),
                 "--out", str(tmp_path / "run"), "--strategy", "fsdp", "--set", "trainer.accelerator=cpu"])
    assert code == 2 and "fsdp" in capsys.readouterr().err  # FSDP needs GPUs: a usage error
