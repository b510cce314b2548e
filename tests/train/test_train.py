"""genossm.train: the loss goes down, a killed run resumes to the same weights, recipes parse."""

from __future__ import annotations

import math

import pytest
import torch

from genossm.errors import InputError, UsageError
from genossm.train.recipe import apply_overrides, load_recipe, recipe_from_dict
from genossm.train.schedule import warmup_cosine


def tiny_recipe(data_dir, **trainer):
    return recipe_from_dict({
        "model": "tiny",
        "model_overrides": {"max_length": 64, "d_model": 32, "n_layers": 2},
        "seed": 7,
        "data": {"fasta": [str(data_dir / "lambda_virus.fa")], "window_length": 64, "batch_size": 4,
                 "num_workers": 0, "val_windows": 4, "test_windows": 4},
        "optim": {"lr": 3e-3, "warmup_steps": 2},
        "trainer": {"max_steps": 4, "val_every": 2, "checkpoint_every": 2, "log_every": 1} | trainer,
    })


def final_weights(out_dir):
    state = torch.load(out_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return state["state_dict"], state["global_step"]


def test_killed_run_resumes_to_the_same_weights(data_dir, tmp_path):
    from genossm.train.run import pretrain

    # float64: a checkpoint restored through float32 weights (Lightning loads it before the
    # precision plugin casts the module) would differ by ~1e-7; exact equality catches that.
    recipe = tiny_recipe(data_dir, precision="64-true")
    pretrain(recipe, tmp_path / "whole", run_test=False)
    pretrain(recipe, tmp_path / "killed", stop_after=2, run_test=False)
    stopped, stopped_step = final_weights(tmp_path / "killed")
    assert stopped_step == 2
    pretrain(recipe, tmp_path / "killed", resume=True, run_test=False)
    whole, whole_step = final_weights(tmp_path / "whole")
    resumed, resumed_step = final_weights(tmp_path / "killed")
    assert whole_step == resumed_step == 4
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert resumed[name].dtype == torch.float64, name
        torch.testing.assert_close(resumed[name], whole[name], rtol=0, atol=0, msg=name)
    assert any(not torch.equal(stopped[name], whole[name]) for name in whole)  # it did train on


def test_a_few_steps_reduce_the_loss(data_dir, tmp_path):
    from genossm.train.run import pretrain

    recipe = tiny_recipe(data_dir, max_steps=25, val_every=25, checkpoint_every=25)
    recipe.data.window_length, recipe.data.batch_size = 128, 8
    recipe.model_overrides["max_length"] = 128
    metrics = pretrain(recipe, tmp_path / "run")
    import csv

    rows = list(csv.DictReader(open(next((tmp_path / "run" / "logs").glob("*/metrics.csv")))))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.05
    assert metrics["test"]["bits_per_base"] < 2.0  # better than uniform on held-out lambda
    assert {"loss", "perplexity", "bits_per_base", "accuracy"} <= metrics["val"].keys()
    assert math.isclose(metrics["val"]["perplexity"], math.exp(metrics["val"]["loss"]), rel_tol=1e-5)
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()


def test_an_empty_evaluation_set_reports_no_numbers_not_zero_bits():
    """No bases scored: NaN metrics (JSON null in metrics.json), never 0 bits per base."""
    from genossm.train.metrics import summarise
    from genossm.train.run import _prefixed

    stats = summarise(torch.zeros(4, dtype=torch.float64))
    assert stats["bases"] == 0
    assert all(math.isnan(stats[name]) for name in ("loss", "perplexity", "bits_per_base", "accuracy"))
    logged = {f"test/{name}": torch.tensor(value) for name, value in stats.items()} | {"val/loss": torch.tensor(1.5)}
    assert _prefixed(logged, "test/") == {"loss": None, "perplexity": None, "bits_per_base": None,
                                          "accuracy": None, "bases": 0.0}
    assert _prefixed(logged, "val/") == {"loss": 1.5}
    full = summarise(torch.tensor([2.0 * math.log(2), 4.0 * math.log(2), 1.0, 2.0], dtype=torch.float64))
    assert full["bits_per_base"] == pytest.approx(2.0) and full["accuracy"] == 0.5 and full["bases"] == 2


def test_warmup_cosine_schedule():
    kwargs = dict(warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert warmup_cosine(0, **kwargs) == pytest.approx(0.1)
    assert warmup_cosine(9, **kwargs) == pytest.approx(1.0)
    assert warmup_cosine(10, **kwargs) == pytest.approx(1.0)
    assert warmup_cosine(60, **kwargs) == pytest.approx(0.55)
    assert warmup_cosine(110, **kwargs) == pytest.approx(0.1)
    assert warmup_cosine(500, **kwargs) == pytest.approx(0.1)


def test_overrides_are_dotted_and_yaml_typed():
    data = apply_overrides({"optim": {"lr": 1.0}}, ["optim.lr=3e-4", "data.reverse_complement=false",
                                                    "length_warmup=[{steps: 5, window_length: 32}]",
                                                    "model=tiny-mamba"])
    assert data["optim"]["lr"] == 3e-4 and data["data"]["reverse_complement"] is False
    assert data["model"] == "tiny-mamba"
    recipe = recipe_from_dict(data)
    assert recipe.length_warmup[0].window_length == 32
    with pytest.raises(InputError, match="key=value"):
        apply_overrides({}, ["optim.lr"])


def test_shipped_recipes_load_and_typos_are_errors():
    for name in ("tiny-cpu", "bacteria", "hyena-1m"):
        recipe = load_recipe(name)
        assert recipe.trainer.max_steps > 0
    assert load_recipe("hyena-1m").trainer.activation_checkpointing
    with pytest.raises(UsageError, match="--set trainer.max_step: no such recipe field; did you mean trainer.max_steps"):
        load_recipe("tiny-cpu", ["trainer.max_step=3"])  # a usage error: exit 2
    with pytest.raises(UsageError, match="no training recipe named"):
        load_recipe("nope")


def test_masked_objective_trains_a_bidirectional_model(data_dir, tmp_path):
    from genossm.train.run import pretrain

    recipe = tiny_recipe(data_dir, max_steps=2, val_every=2, checkpoint_every=2)
    recipe.model = "tiny-mamba"
    recipe.model_overrides = {"objective": "masked", "bidirectional": True, "d_model": 32, "n_layers": 2}
    metrics = pretrain(recipe, tmp_path / "masked")
    assert metrics["steps"] == 2 and 0 < metrics["test"]["bases"] < 4 * 64  # ~15% of the bases
    from genossm.models.checkpoint import load_model

    assert load_model(tmp_path / "masked" / "model").config.objective == "masked"


def test_activation_checkpointing_flag_reaches_the_model_config(data_dir):
    from genossm.train.run import resolve_model_config

    recipe = tiny_recipe(data_dir, activation_checkpointing=True)
    assert resolve_model_config(recipe).checkpointing
    assert not resolve_model_config(tiny_recipe(data_dir)).checkpointing


def test_a_compiled_run_exports_a_model_that_loads(data_dir, tmp_path, monkeypatch):
    """trainer.compile: the Lightning checkpoint holds `model._orig_mod.*` keys; the export at
    the end of training (the converter `genossm convert` uses) strips them."""
    import functools

    from genossm.models.checkpoint import load_model
    from genossm.train.run import pretrain

    # Dynamo's wrapper (what renames the keys) without Inductor's C++ code generation: seconds,
    # not minutes, on a CPU.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    recipe = tiny_recipe(data_dir, max_steps=2, val_every=1000, checkpoint_every=1000, compile=True)
    pretrain(recipe, tmp_path / "run", run_test=False)
    trained, step = final_weights(tmp_path / "run")
    assert step == 2 and all(name.startswith("model._orig_mod.") for name in trained)
    exported = load_model(tmp_path / "run" / "model").state_dict()
    assert exported.keys() == {name.removeprefix("model._orig_mod.") for name in trained}
    for name, tensor in exported.items():
        torch.testing.assert_close(tensor, trained[f"model._orig_mod.{name}"], rtol=0, atol=0, msg=name)
