"""`genossm finetune` as a library call: read labelled data, split it, train, export.

    metrics = finetune(FinetuneJob(data=["regions.tsv"], fasta=["genome.fa"], out_dir="runs/x",
                                   split_column="split", recipe=FinetuneRecipe(pooling="attention")))

Writes OUT/checkpoints/{last,best}.ckpt (Lightning training state; `resume=True` continues from
last.ckpt after a kill, mid-epoch, with the batches the uninterrupted run would have drawn),
OUT/model (the fine-tuned checkpoint directory: genossm.finetune.checkpoint) and
OUT/metrics.json (rewritten after every validation: per-epoch history, best, and at the end the
test metrics of the best checkpoint and the training throughput).
Every option is checked before any data or weights are read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from genossm.atomic import atomic_path
from genossm.errors import InputError, UsageError
from genossm.finetune.recipe import FinetuneRecipe
from genossm.progress import progress

log = logging.getLogger("genossm.finetune")


@dataclasses.dataclass(frozen=True)
class FinetuneJob:
    data: tuple[str, ...]  # labelled files (TSV/BED of regions or sequences, labelled FASTA)
    out_dir: str
    fasta: tuple[str, ...] = ()  # genomes that region rows are read from
    model: str | None = None  # backbone checkpoint directory (None: the bundled model)
    labels: tuple[str, ...] = ("label",)
    positions: tuple[str, ...] = ()  # BED of positive intervals: per-position labels (labels unused)
    task: str | None = None  # binary, multiclass, multilabel, regression, token (None: from the labels)
    classes: tuple[str, ...] | None = None  # class order (binary: the second is positive)
    split_column: str | None = None
    val_chroms: tuple[str, ...] = ()
    test_chroms: tuple[str, ...] = ()
    recipe: FinetuneRecipe = dataclasses.field(default_factory=FinetuneRecipe)
    resume: bool = False
    stop_after_steps: int | None = None  # end the run there, as a kill would (tests)
    command: str = ""


def backbone_dir(model: str | None) -> Path:
    if model is None:
        from genossm.resources import RESOURCES

        return RESOURCES / "model"
    return Path(model)


def check_job(job: FinetuneJob) -> None:
    from genossm.models.checkpoint import read_checkpoint_config

    if not job.data:
        raise UsageError("give the labelled data: --data FILE [FILE ...]")
    for path in [*job.data, *job.fasta, *job.positions]:
        if not Path(path).is_file():
            raise InputError("file not found; check the path", path=path)
    if job.positions and job.task not in (None, "token"):
        raise UsageError(f"--positions labels every base (a per-position task), not --task {job.task}")
    read_checkpoint_config(backbone_dir(job.model))
    if not job.split_column and not job.val_chroms:
        raise UsageError("no validation split: give --val-chroms (and --test-chroms), or --split-column")
    out = Path(job.out_dir)
    if out.exists() and any(out.iterdir()) and not job.resume and not (out / "checkpoints").exists():
        raise UsageError(f"output directory {out} exists and is not a genossm finetune run; choose a new one")
    if out.exists() and (out / "checkpoints" / "last.ckpt").exists() and not job.resume:
        raise UsageError(f"{out} holds an earlier run; add --resume to continue it, or choose a new --out")


class LabelledData(L.LightningDataModule):
    """Train/val/test loaders; the training batches know their rank once the trainer exists."""

    def __init__(self, sets: dict, recipe: FinetuneRecipe, token_task: bool, pad_to: int | None):
        super().__init__()
        self.sets, self.recipe, self.token_task, self.pad_to = sets, recipe, token_task, pad_to
        self.train_batches = None

    def setup(self, stage: str) -> None:
        from genossm.finetune.data import EpochBatches

        if self.train_batches is None:
            self.train_batches = EpochBatches(len(self.sets["train"]), self.recipe.batch_size, shuffle=True,
                                              rc_augment=self.recipe.rc_augment, seed=self.recipe.seed,
                                              rank=self.trainer.global_rank, world=self.trainer.world_size)

    def _loader(self, split: str, batches):
        from functools import partial

        from genossm.finetune.data import ExampleDataset, collate

        return torch.utils.data.DataLoader(
            ExampleDataset(self.sets[split], self.token_task), batch_sampler=batches,
            collate_fn=partial(collate, token_task=self.token_task, pad_to=self.pad_to))

    def train_dataloader(self):
        return self._loader("train", self.train_batches)

    def _held_out(self, split: str):
        from genossm.finetune.data import EpochBatches

        return self._loader(split, EpochBatches(len(self.sets[split]), self.recipe.batch_size, shuffle=False,
                                                rc_augment=False, seed=0, rank=self.trainer.global_rank,
                                                world=self.trainer.world_size))

    def val_dataloader(self):
        return self._held_out("val")

    def test_dataloader(self):
        return self._held_out("test")


class RunRecord(L.Callback):
    """Progress on stderr, the data position on resume, metrics.json after every validation."""

    def __init__(self, out_dir: Path, base: dict[str, Any], monitor: tuple[str, str]):
        self.out_dir, self.base, self.monitor = out_dir, base, monitor
        self.windows, self.seconds, self._last = 0, 0.0, None
        # CPU seconds of this process (all its threads) in training batches: on a shared machine
        # the steadier figure, since other processes stretch the wall clock, not the work
        self.cpu_seconds, self._last_cpu = 0.0, None
        self._bar = None
        self._positioned = False

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        batches = trainer.datamodule.train_batches
        if not self._positioned:  # first epoch of this process: a resumed run skips what it trained
            self._positioned = True
            done = trainer.global_step * trainer.accumulate_grad_batches - trainer.current_epoch * len(batches)
            if 0 < done < len(batches):
                batches.skip = done
                log.info("resuming epoch %d at batch %d of %d", trainer.current_epoch, done, len(batches))
        if self._bar is None and trainer.is_global_zero:
            total = trainer.max_epochs * len(batches)
            if trainer.max_steps > 0:
                total = min(total, trainer.max_steps)
            self._bar = progress(total=total, initial=trainer.global_step, desc="finetune", unit="step")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._last, self._last_cpu = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._last is not None:
            self.seconds += time.perf_counter() - self._last
            self.cpu_seconds += time.process_time() - self._last_cpu
            self.windows += len(batch["tokens"]) * trainer.world_size
        if self._bar is not None:
            self._bar.update(trainer.global_step - self._bar.n)
            loss = trainer.callback_metrics.get("train/loss")
            if loss is not None:
                self._bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not pl_module.history:
            return
        name, _ = self.monitor
        latest = pl_module.history[-1]
        log.info("epoch %d step %d: val %s", latest["epoch"], latest["step"], ", ".join(
            f"{k[4:]} {v:.4f}" for k, v in latest.items() if k.startswith("val_") and isinstance(v, float)))
        self.write(pl_module.history)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    @property
    def windows_per_second(self) -> float:
        return self.windows / self.seconds if self.seconds else 0.0

    def write(self, history: list[dict], **extra) -> dict[str, Any]:
        name, mode = self.monitor
        key = f"val_{name}"
        scored = [h for h in history if key in h and h[key] == h[key]]
        best = (max if mode == "max" else min)(scored, key=lambda h: h[key]) if scored else None
        record = {**self.base, "monitor": {"metric": name, "mode": mode}, "epochs": history, "best": best,
                  "train_windows_per_second": round(self.windows_per_second, 1),
                  "train_cpu_seconds_per_window": round(self.cpu_seconds / max(1, self.windows), 4), **extra}
        with atomic_path(self.out_dir / "metrics.json") as tmp:
            Path(tmp).write_text(json.dumps(record, indent=2, default=_json_default) + "\n")
        return record


def _json_default(value):
    return None if value != value else float(value)


def _precision(recipe: FinetuneRecipe) -> str:
    if recipe.precision != "auto":
        return recipe.precision
    gpu = torch.cuda.is_available() and recipe.accelerator in ("auto", "gpu", "cuda")
    return "bf16-mixed" if gpu else "32-true"


def prepare_data(job: FinetuneJob):
    """(spec, {split: EncodedSet}, length, pad_to, counts) from the job's files."""
    from genossm.finetune.data import SequenceSource, encode_split, read_examples, split_examples
    from genossm.finetune.task import build_spec
    from genossm.models.checkpoint import read_checkpoint_config

    labels = () if job.positions else job.labels
    examples = [e for path in job.data for e in read_examples(path, labels, job.split_column)]
    if not examples:
        raise InputError("no labelled rows in " + ", ".join(job.data))
    if job.positions:
        from genossm.finetune import positions

        examples = positions.label_examples(examples, positions.read_intervals_files(job.positions))
        labels = ("positions",)
    splits = split_examples(examples, val_chroms=job.val_chroms, test_chroms=job.test_chroms,
                            split_column=job.split_column)
    if job.positions:
        positions.check_some_positive(splits["train"], job.positions)
        spec = build_spec("token", labels, [e.labels for e in splits["train"]], job.classes or positions.CLASSES)
    else:
        spec = build_spec(job.task, labels, [e.labels for e in splits["train"]], job.classes)
    config = read_checkpoint_config(backbone_dir(job.model))["model"]
    source = SequenceSource(job.fasta)
    try:
        recipe = job.recipe
        length = recipe.length
        if length is None:
            # from the coordinates: reading every training region twice costs a pass over the genome
            length = max(len(e.sequence) if e.sequence is not None else e.end - e.start for e in splits["train"])
        if length > config["max_length"]:
            log.info("input length %d cropped to the model's max_length %d (%s)", length, config["max_length"],
                     recipe.crop)
            length = config["max_length"]
        sets = {name: encode_split(rows, source, spec, length, recipe.crop) for name, rows in splits.items()}
    finally:
        source.close()
    pad_to = None if config.get("objective", "causal") == "causal" else length
    counts = {name: len(rows) for name, rows in splits.items()}
    return spec, sets, length, pad_to, counts


def finetune(job: FinetuneJob) -> dict[str, Any]:
    """Run the job; returns the metrics also written to OUT/metrics.json."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from genossm.finetune.checkpoint import save_finetuned
    from genossm.finetune.lora import merge_lora
    from genossm.finetune.module import FinetuneTask
    from genossm.progress import log_from_rank_zero_only

    check_job(job)
    recipe = job.recipe
    out_dir = Path(job.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(recipe.seed, workers=True, verbose=False)
    spec, sets, length, pad_to, counts = prepare_data(job)
    log.info("task: %s; %s examples (train/val/test), input length %d (crop %s)", spec.summary(),
             "/".join(str(counts[s]) for s in ("train", "val", "test")), length, recipe.crop)
    backbone = str(backbone_dir(job.model))
    module = FinetuneTask(backbone, spec.to_dict(), recipe.to_dict())
    monitor = recipe.monitor_metric(spec.kind)
    checkpoints = out_dir / "checkpoints"
    last = ModelCheckpoint(dirpath=checkpoints, filename="step{step:07d}", auto_insert_metric_name=False,
                           every_n_train_steps=recipe.checkpoint_every_steps, save_last=True, save_top_k=1)
    best = ModelCheckpoint(dirpath=checkpoints, filename="best", monitor=f"val/{monitor[0]}", mode=monitor[1],
                           save_top_k=1, enable_version_counter=False)
    # strict=False: a run that max_steps ends before its first validation has no metric to check
    stop = EarlyStopping(monitor=f"val/{monitor[0]}", mode=monitor[1], patience=recipe.patience,
                         check_finite=False, strict=False)
    base = {"task": spec.to_dict(), "summary": spec.summary(), "backbone": backbone, "examples": counts,
            "length": length, "recipe": recipe.to_dict(), "command": job.command}
    record = RunRecord(out_dir, base, monitor)
    try:
        trainer = L.Trainer(
            accelerator=recipe.accelerator, devices=recipe.devices, num_nodes=recipe.num_nodes,
            strategy=recipe.strategy, precision=_precision(recipe), max_epochs=recipe.max_epochs,
            max_steps=job.stop_after_steps or recipe.max_steps, gradient_clip_val=recipe.gradient_clip,
            val_check_interval=recipe.val_every_steps, check_val_every_n_epoch=None if recipe.val_every_steps else 1,
            num_sanity_val_steps=0, callbacks=[record, last, best, stop], logger=CSVLogger(out_dir, name="logs"),
            enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
            default_root_dir=out_dir, log_every_n_steps=10)
    except (ValueError, RuntimeError) as err:
        raise UsageError(f"the trainer cannot run as configured: {err}") from None
    log_from_rank_zero_only(trainer.global_rank)
    datamodule = LabelledData(sets, recipe, spec.kind == "token", pad_to)
    resume_from = checkpoints / "last.ckpt"
    ckpt_path = str(resume_from) if job.resume and resume_from.exists() else None
    if ckpt_path:
        log.info("resuming from %s", resume_from)
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    train_seconds = time.perf_counter() - started
    if job.stop_after_steps is not None:
        trainer.save_checkpoint(resume_from)
        return {"steps": int(trainer.global_step)}
    trainer.save_checkpoint(resume_from)
    best_path = Path(best.best_model_path or resume_from)
    state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    extra: dict[str, Any] = {"steps": int(trainer.global_step), "train_seconds_this_run": round(train_seconds, 2),
                             "best_checkpoint": best_path.name, "stopped_early": bool(stop.stopped_epoch),
                             "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                             "precision": _precision(recipe)}
    if counts["test"]:
        trainer.test(module, datamodule=datamodule, verbose=False, weights_only=True)
        extra["test"] = dict(module.last_metrics)
    if trainer.is_global_zero:
        metrics = record.write(module.history, **extra)
        model = module.model
        merge_lora(model.backbone)
        save_finetuned(model, out_dir / "model", length=length, crop=recipe.crop,
                       record={"labels": list(spec.label_columns), "positions": list(job.positions), "examples": counts, "best": metrics["best"],
                               "test": extra.get("test"), "recipe": recipe.to_dict()})
        log.info("wrote %s and %s", out_dir / "model", out_dir / "metrics.json")
        return metrics
    return extra
