"""`genossm pretrain` end to end on the lambda phage genome."""

from __future__ import annotations

import json

import pytest
import torch

from genossm.cli.main import main


def test_pretrain_writes_a_loadable_model(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["-q", "pretrain", "--config", "tiny-cpu", "--fasta", str(data_dir / "lambda_virus.fa"),
                 "--out", str(out), "--set", "trainer.max_steps=3", "--set", "trainer.val_every=3",
                 "--set", "model_overrides={d_model: 32, n_layers: 2, max_length: 128}",
                 "--set", "data.window_length=64", "--set", "data.val_windows=4",
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
    # The training window (64, below max_length 128) is recorded: `genossm score`'s default window.
    from genossm.infer.score.settings import training_window
    from genossm.models.checkpoint import read_checkpoint_config

    assert read_checkpoint_config(out / "model")["training"]["window"] == 64
    assert training_window(read_checkpoint_config(out / "model")) == 64
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
    err = capsys.readouterr().err
    assert code == 2 and "max_stepz" in err and "did you mean trainer.max_steps" in err
    code = main(["pretrain", "--config", "tiny-cpu", "--fasta", str(data_dir / "lambda_virus.fa"),
                 "--out", str(tmp_path / "run"), "--strategy", "fsdp", "--set", "trainer.accelerator=cpu"])
    assert code == 2 and "fsdp" in capsys.readouterr().err  # FSDP needs GPUs: a usage error


LAMBDA_ARGS = ["--set", "trainer.max_steps=2", "--set", "trainer.val_every=2", "--set", "trainer.checkpoint_every=2",
               "--set", "model_overrides={d_model: 16, n_layers: 1, max_length: 64}", "--set", "data.window_length=64",
               "--set", "data.val_windows=2", "--set", "data.num_workers=0"]


@pytest.mark.parametrize("case, code, words", [
    ("recipe-name", 2, ["no training recipe named 'tiny-cpuu'", "tiny-cpu"]),
    ("set-key", 2, ["--set optim.lrr", "did you mean optim.lr"]),
    ("set-section", 2, ["--set optimm.lr", "no such recipe field"]),
    ("set-type-float", 1, ["optim.lr must be float, found 'fast'"]),
    ("set-type-int", 1, ["trainer.max_steps must be int, found 'many'"]),
    ("set-type-bool", 1, ["data.reverse_complement must be bool, found 'maybe'"]),
])
def test_pretrain_recipe_mistakes_are_one_line_with_the_right_exit_code(data_dir, tmp_path, capsys, case, code, words):
    config, extra = "tiny-cpu", []
    if case == "recipe-name":
        config = "tiny-cpuu"
    else:
        extra = ["--set", {"set-key": "optim.lrr=1", "set-section": "optimm.lr=1", "set-type-float": "optim.lr=fast",
                           "set-type-int": "trainer.max_steps=many",
                           "set-type-bool": "data.reverse_complement=maybe"}[case]]
    result = main(["pretrain", "--config", config, "--fasta", str(data_dir / "lambda_virus.fa"),
                   "--out", str(tmp_path / "run"), *extra])
    err = capsys.readouterr().err.strip()
    assert result == code and len(err.splitlines()) == 1, err
    assert all(word in err for word in words), err


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("case", ["truncated", "garbage", "hostile"])
def test_pretrain_resume_over_a_bad_last_ckpt_is_one_line(data_dir, tmp_path, capsys, case):
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    if case == "truncated":
        torch.save({"state_dict": {"w": torch.zeros(1000)}}, last)
        last.write_bytes(last.read_bytes()[:200])
    elif case == "garbage":
        last.write_bytes(b"\x00garbage" * 50)
    else:
        torch.save({"state_dict": {}, "payload": Evil()}, last)
    code = main(["pretrain", "--config", "tiny-cpu", "--fasta", str(data_dir / "lambda_virus.fa"),
                 "--out", str(tmp_path / "run"), "--resume", *LAMBDA_ARGS])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "last.ckpt" in err and "drop --resume" in err and "weights_only=False" not in err


def test_pretrain_prints_lightning_messages_once_without_adverts_or_deprecations(data_dir, tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "genossm.cli.main", "pretrain", "--config", "tiny-cpu", "--fasta",
                             str(data_dir / "lambda_virus.fa"), "--out", str(tmp_path / "run"), *LAMBDA_ARGS],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert err.count("GPU available") == 1 and "INFO:" not in err
    assert "litlogger" not in err.lower() and "deprecated" not in err and "IterableDataset" not in err
