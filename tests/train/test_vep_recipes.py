"""The VEP training recipes (configs/train/plant.yaml, bacteria-vep.yaml) and the throughput
probe scripts/vep_recipe_gpu.sh sizes its run with."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

from genossm.train.recipe import load_recipe
from genossm.train.run import resolve_model_config

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model_overrides.d_model=16", "model_overrides.n_layers=1", "data.batch_size=2", "data.window_length=32"]


@pytest.mark.parametrize("name", ["plant", "bacteria-vep"])
def test_vep_recipes_are_masked_bidirectional_at_their_scoring_window(name):
    recipe = load_recipe(name)
    config = resolve_model_config(recipe)
    assert (config.objective, config.bidirectional, config.rc_equivariant) == ("masked", True, False)
    # The checkpoint records data.window_length as the default scoring window: the model's
    # max_length must be the same, so nobody scores it in windows longer than it was trained on.
    assert recipe.data.window_length == config.max_length == 512
    assert recipe.data.mask_fraction == 0.15 and recipe.length_warmup == []


def test_probe_reports_tokens_per_second(capsys, monkeypatch):
    argv = ["training_probe.py", "--config", "plant", "--seconds", "0.05", "--warmup-steps", "1"]
    for item in TINY:
        argv += ["--set", item]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "scripts" / "training_probe.py"), run_name="__main__")
    assert exit_info.value.code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["batch_size"] == 2 and record["window_length"] == 32 and record["steps"] >= 3
    assert record["tokens_per_second"] > 0 and record["precision"] == "32-true"
