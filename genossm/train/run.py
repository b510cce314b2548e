"""`genossm pretrain` as a library call: build the recipe's model, data and trainer, then fit,
test, and write the final model (genossm checkpoint) and a metrics JSON."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from genossm.atomic import atomic_path
from genossm.train.recipe import Recipe

log = logging.getLogger("genossm.train")


def resolve_model_config(recipe: Recipe):
    """The recipe's model config with its overrides (and the checkpointing flag) applied."""
    from genossm.models.config import ModelConfig, load_model_config

    data = load_model_config(recipe.model).to_dict()
    data.update(recipe.model_overrides)
    if recipe.trainer.activation_checkpointing:
        data["checkpointing"] = True
    return ModelConfig.from_dict(data)


def resolve_precision(trainer_config) -> str:
    if trainer_config.precision != "auto":
        return trainer_config.precision
    on_gpu = torch.cuda.is_available() and trainer_config.accelerator in ("auto", "gpu", "cuda")
    return "bf16-mixed" if on_gpu else "32-true"


class _NoAdverts(logging.Filter):
    """Drops Lightning's advertisement for its logging service."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage().lower()


def quiet_lightning() -> None:
    """Lightning's messages once, as genossm's: Lightning adds its own stderr handler to its
    loggers, and they also propagate to genossm's handler, so every INFO line came out twice."""
    # A logger's filters see only what is logged on it, not what its children pass up: every
    # Lightning logger that exists once Lightning is imported gets the filter.
    names = [name for name in logging.root.manager.loggerDict
             if name.split(".")[0] in ("lightning", "pytorch_lightning", "lightning_fabric")]
    for name in names:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler):
                logger.removeHandler(handler)
        logger.propagate = True
        if not any(isinstance(f, _NoAdverts) for f in logger.filters):
            logger.addFilter(_NoAdverts())


@contextlib.contextmanager
def lightning_warnings_filtered():
    """Warnings about Lightning's own internals (deprecations inside Lightning, the length of
    our IterableDataset, whose workers are sharded on purpose) are not the user's to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*IterableDataset.*has `__len__` defined")
        warnings.filterwarnings("ignore", message=".*is deprecated.*", module="lightning")
        yield


def build_trainer(recipe: Recipe, out_dir: Path, callbacks: list, *, stop_after: int | None = None):
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import ModelCheckpoint

    from genossm.errors import UsageError

    t = recipe.trainer
    checkpoints = ModelCheckpoint(
        dirpath=out_dir / "checkpoints", filename="step{step:07d}", auto_insert_metric_name=False,
        every_n_train_steps=t.checkpoint_every, save_last=True, save_top_k=1,
        save_on_train_epoch_end=False,
    )
    try:
        return _trainer(L, t, out_dir, callbacks, checkpoints, stop_after)
    except (MisconfigurationException, ValueError) as err:  # e.g. --strategy fsdp on a CPU
        raise UsageError(f"the trainer cannot run as configured: {err}") from None


def _trainer(L, t, out_dir: Path, callbacks: list, checkpoints, stop_after: int | None):
    from lightning.pytorch.loggers import CSVLogger

    from genossm.train.distributed import build_strategy

    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes,
        strategy=build_strategy(t.strategy, t.accelerator),
        precision=resolve_precision(t), max_steps=stop_after or t.max_steps, max_epochs=-1,
        accumulate_grad_batches=t.accumulate, gradient_clip_val=t.gradient_clip,
        val_check_interval=t.val_every * t.accumulate, check_val_every_n_epoch=None,
        num_sanity_val_steps=0, log_every_n_steps=t.log_every,
        callbacks=[*callbacks, checkpoints], logger=CSVLogger(out_dir, name="logs"),
        enable_model_summary=False, default_root_dir=out_dir,
        max_time=None if t.max_time_s is None else {"seconds": t.max_time_s},
    )


def pretrain(recipe: Recipe, out_dir: str | os.PathLike, *, resume: bool = False,
             stop_after: int | None = None, run_test: bool = True) -> dict[str, Any]:
    """Train per `recipe` into `out_dir`; returns the metrics also written to out_dir/metrics.json.

    `resume` continues from out_dir/checkpoints/last.ckpt when there is one. `stop_after` ends
    the run at that step without changing the schedule (as if killed there; used by tests).
    """
    import lightning as L

    out_dir = Path(out_dir)
    last = out_dir / "checkpoints" / "last.ckpt"
    if resume and last.exists():
        check_resume_checkpoint(last)
    out_dir.mkdir(parents=True, exist_ok=True)
    quiet_lightning()
    with lightning_warnings_filtered():
        return _pretrain(L, recipe, out_dir, last, resume, stop_after, run_test)


def check_resume_checkpoint(last: Path) -> None:
    """A one-line error for a last.ckpt that is corrupt, truncated or hostile (read safely)."""
    from genossm.errors import InputError
    from genossm.models.checkpoint import read_lightning_checkpoint

    try:
        read_lightning_checkpoint(last)
    except InputError as err:
        raise InputError(f"{err.message}; cannot resume from it: delete it (the step*.ckpt beside it may be "
                         "intact: copy one to last.ckpt) or drop --resume to start over", path=err.path) from None


def _pretrain(L, recipe: Recipe, out_dir: Path, last: Path, resume: bool, stop_after: int | None,
              run_test: bool) -> dict[str, Any]:
    from genossm.data.datamodule import GenomeDataModule
    from genossm.models.checkpoint import convert_lightning_checkpoint
    from genossm.train.callbacks import (SequenceLengthWarmup, StderrProgressBar,
                                         ThroughputMonitor, length_stages)
    from genossm.progress import log_from_rank_zero_only
    from genossm.train.distributed import GlobalBatchRecord
    from genossm.train.module import LanguageModelTask

    L.seed_everything(recipe.seed, workers=True, verbose=False)
    model_config = resolve_model_config(recipe)
    t, d = recipe.trainer, recipe.data
    if model_config.checkpoint_offload and (str(t.devices) != "1" or t.num_nodes != 1
                                           or int(os.environ.get("WORLD_SIZE", "1")) > 1):
        from genossm.errors import InputError

        raise InputError("model_overrides.checkpoint_offload works in a single process (its backward "
                         "produces parameter gradients that DDP/FSDP hooks do not expect); train on "
                         "one device, or leave it off and use checkpointing alone")
    datamodule = GenomeDataModule(d, objective=model_config.objective, seed=recipe.seed, max_steps=t.max_steps)
    module = LanguageModelTask(model_config.to_dict(), dataclasses.asdict(recipe.optim),
                               max_steps=t.max_steps, seed=recipe.seed)
    throughput = ThroughputMonitor()
    stages = length_stages(recipe.length_warmup, d.window_length, d.batch_size)
    trainer = build_trainer(recipe, out_dir, [SequenceLengthWarmup(stages), throughput,
                                              GlobalBatchRecord(d.batch_size), StderrProgressBar()],
                            stop_after=stop_after)
    # Lightning loads a resumed run's weights into the module before its precision plugin casts
    # the module (e.g. to float64 under "64-true"): weights held in float32 meanwhile would round
    # the checkpoint and the resumed run would drift from the uninterrupted one. Casting first
    # (what the plugin itself does at setup, so fresh runs are unchanged) keeps resume exact.
    module = trainer.precision_plugin.convert_module(module)
    if t.compile:
        module.model = torch.compile(module.model)
    log_from_rank_zero_only(trainer.global_rank)
    ckpt_path = str(last) if resume and last.exists() else None
    if resume and ckpt_path is None:
        log.info("no checkpoint in %s; starting from scratch", last.parent)
    n_parameters = sum(p.numel() for p in module.model.parameters())
    log.info("model %s: %s, %.2f M parameters, objective %s", recipe.model, model_config.arch,
             n_parameters / 1e6, model_config.objective)
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    train_seconds = time.perf_counter() - started
    trainer.save_checkpoint(last)
    metrics: dict[str, Any] = {
        "model": recipe.model,
        "parameters": n_parameters,
        "steps": int(trainer.global_step),
        "train_seconds_this_run": round(train_seconds, 2),
        "tokens_per_second": round(throughput.tokens_per_second, 1),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "precision": resolve_precision(t),
        "val": _prefixed(trainer.callback_metrics, "val/"),
    }
    if run_test and datamodule.splits.test:
        trainer.test(module, datamodule=datamodule, ckpt_path=str(last), verbose=False, weights_only=True)
        metrics["test"] = _prefixed(trainer.callback_metrics, "test/")
    metrics["recipe"] = recipe.to_dict()
    if trainer.is_global_zero:
        # "window": the length the model was trained on last (after any length warm-up), which
        # `genossm score` takes as its default window (genossm.infer.score.settings.training_window).
        extra = {"window": d.window_length,
                 "training": {key: metrics[key] for key in ("steps", "tokens_per_second", "val")}
                 | {"test": metrics.get("test"), "recipe": metrics["recipe"]}}
        # From the saved file, not the live module: full weights under every strategy (FSDP
        # shards them in memory), and proof that the checkpoint loads safely.
        convert_lightning_checkpoint(last, out_dir / "model", training=extra)
        with atomic_path(out_dir / "metrics.json") as tmp:
            Path(tmp).write_text(json.dumps(metrics, indent=2, default=str) + "\n")
        log.info("wrote %s and %s", out_dir / "model", out_dir / "metrics.json")
    return metrics


def _prefixed(metrics, prefix: str) -> dict[str, float | None]:
    """The metrics under `prefix`, NaN as None (JSON null: an empty evaluation set, a diverged loss)."""
    values = {key[len(prefix):]: float(value) for key, value in metrics.items() if key.startswith(prefix)}
    return {key: (value if math.isfinite(value) else None) for key, value in values.items()}
