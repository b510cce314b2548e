"""Pretraining on 2 CPU processes (gloo DDP, launched by Lightning) against one process.

float64 training makes the comparison tight: the two runs differ only in the order of sums
(the all-reduce), which float64 keeps below 1e-12 where float32 would let Adam amplify it.
One 2-process run serves three checks: it equals one process with the same global batch
(2 x 4 = 8 windows), it resumes on 1 process (2 -> 1), and a 1-process checkpoint resumes on
2 processes (1 -> 2), both ending where an uninterrupted 1-process run ends; a 1-process run
resumed on 1 process ends there bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import DATA
from genossm.train.recipe import recipe_from_dict
from genossm.train.run import pretrain

# Lightning's DDP launcher re-runs the command line of the process that calls fit() once per
# extra rank, so the 2-process runs are a small script, never this pytest process.
JOB = textwrap.dedent("""
    import json, logging, sys
    logging.basicConfig(level=logging.INFO, format="genossm: %(message)s")
    from genossm.train.recipe import recipe_from_dict
    from genossm.train.run import pretrain
    recipe = recipe_from_dict(json.loads(open(sys.argv[1]).read()))
    pretrain(recipe, sys.argv[2], resume=sys.argv[3] == "resume", stop_after=int(sys.argv[4]),
             run_test=False)
""")

MAX_STEPS, HALF = 4, 2


def recipe_dict(fasta: Path, devices: int, batch_size: int) -> dict:
    return {
        "model": "tiny",
        "model_overrides": {"d_model": 16, "n_layers": 2, "max_length": 64},
        "seed": 3,
        "data": {"fasta": [str(fasta)], "window_length": 64, "batch_size": batch_size,
                 "num_workers": 0, "val_windows": 5, "eval_batch_size": 2, "test_fraction": 0.0},
        "optim": {"lr": 1e-2, "warmup_steps": 1},
        # 5 validation windows in batches of 2: rank 0 gets 2 batches, rank 1 one (uneven).
        "trainer": {"max_steps": MAX_STEPS, "val_every": HALF, "checkpoint_every": 100,
                    "accelerator": "cpu", "devices": devices, "strategy": "ddp" if devices > 1 else "auto",
                    "precision": "64-true", "log_every": 1},
    }


def run_two_processes(tmp_path: Path, recipe: dict, out: Path, resume: bool, stop_after: int) -> str:
    job, recipe_file = tmp_path / "job.py", tmp_path / f"recipe_{out.name}.json"
    job.write_text(JOB)
    recipe_file.write_text(json.dumps(recipe))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, str(job), str(recipe_file), str(out),
                           "resume" if resume else "fresh", str(stop_after)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def run_one_process(recipe: dict, out: Path, resume: bool, stop_after: int) -> dict:
    return pretrain(recipe_from_dict(recipe), out, resume=resume, stop_after=stop_after, run_test=False)


def weights(out: Path) -> dict[str, torch.Tensor]:
    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return state["state_dict"]


def optimizer_moments(out: Path) -> list[torch.Tensor]:
    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    moments = state["optimizer_states"][0]["state"]
    return [moments[key]["exp_avg_sq"] for key in sorted(moments)]


def assert_same_training(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-9, atol=1e-10, msg=name)
    for ma, mb in zip(optimizer_moments(a), optimizer_moments(b), strict=True):
        torch.testing.assert_close(ma, mb, rtol=1e-7, atol=1e-16)
    assert torch.load(a / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == \
        torch.load(b / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One 2-process run to step 2 and its resumptions; 1-process runs with the same global batch."""
    tmp_path = tmp_path_factory.mktemp("distributed")
    fasta = DATA / "lambda_virus.fa"
    one, two = recipe_dict(fasta, 1, 8), recipe_dict(fasta, 2, 4)
    names = ("two_half", "one_half", "one_whole", "one_to_one", "two_to_one", "one_to_two")
    paths = {name: tmp_path / name for name in names}
    paths["two_half_log"] = run_two_processes(tmp_path, two, paths["two_half"], False, HALF)
    run_one_process(one, paths["one_half"], False, HALF)
    run_one_process(one, paths["one_whole"], False, MAX_STEPS)
    shutil.copytree(paths["one_half"], paths["one_to_one"])
    run_one_process(one, paths["one_to_one"], True, MAX_STEPS)
    shutil.copytree(paths["two_half"], paths["two_to_one"])
    run_one_process(one, paths["two_to_one"], True, MAX_STEPS)
    shutil.copytree(paths["one_half"], paths["one_to_two"])
    paths["one_to_two_log"] = run_two_processes(tmp_path, two, paths["one_to_two"], True, MAX_STEPS)
    return paths


def test_two_processes_train_like_one_with_the_same_global_batch(runs):
    assert_same_training(runs["two_half"], runs["one_half"])
    # Validation windows split unevenly over the ranks, reduced to the one-process figures.
    two = json.loads((runs["two_half"] / "metrics.json").read_text())
    one = json.loads((runs["one_half"] / "metrics.json").read_text())
    assert two["val"]["bases"] == one["val"]["bases"] > 0
    assert two["val"]["bits_per_base"] == pytest.approx(one["val"]["bits_per_base"], rel=1e-10)


def test_a_resumed_run_ends_where_the_uninterrupted_run_ends(runs):
    whole, resumed = weights(runs["one_whole"]), weights(runs["one_to_one"])
    assert whole.keys() == resumed.keys()
    for name in whole:
        torch.testing.assert_close(resumed[name], whole[name], rtol=0, atol=0, msg=name)


def test_checkpoints_resume_on_another_number_of_processes(runs):
    assert_same_training(runs["two_to_one"], runs["one_whole"])
    assert_same_training(runs["one_to_two"], runs["one_whole"])
    assert "resuming on 2 ranks (checkpoint written on 1), same global batch of 8" in runs["one_to_two_log"]


def test_only_rank_zero_logs(runs):
    log = runs["two_half_log"]
    assert log.count("data: 1 train segments") == 1
    assert log.count("model tiny: hyena") == 1
