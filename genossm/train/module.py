"""The LightningModule of `genossm pretrain`: a genossm language model and its objective.

The model lives in attribute `model` and its config dict in `hyper_parameters["model_config"]`,
the layout `genossm convert` reads to turn a Lightning checkpoint into a genossm checkpoint.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from torch.optim.lr_scheduler import LambdaLR

from genossm.train.distributed import global_token_mean
from genossm.train.metrics import metric_sums, summarise
from genossm.train.optim import check_groups_cover, parameter_groups
from genossm.train.schedule import warmup_cosine

log = logging.getLogger("genossm.train")


class LanguageModelTask(L.LightningModule):
    """Causal (next base) or masked (BERT-style) language modelling of DNA windows.

    Batches are `{"inputs": (B, L) long, "targets": (B, L) long}` (genossm.data); the objective
    is fixed by how the data made the targets, and must match `model_config["objective"]`.
    """

    def __init__(self, model_config: dict[str, Any], optim: dict[str, Any], max_steps: int, seed: int = 0):
        super().__init__()
        from genossm.models.config import ModelConfig
        from genossm.models.lm import build_model

        self.save_hyperparameters()
        self.model = build_model(ModelConfig.from_dict(model_config))
        # Planned now, on the bare model: a strategy may reshape parameters before
        # configure_optimizers runs (genossm.train.optim).
        self.parameter_groups = parameter_groups(self.model, optim["weight_decay"])
        self._eval_sums: torch.Tensor | None = None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model(tokens)  # (B, L, V)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Dropout draws from the global generator; seeding it by step makes a resumed run draw
        # what the uninterrupted run drew.
        torch.manual_seed(self.hparams.seed * 1_000_003 + self.global_step)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self.model(batch["inputs"])  # (B, L, V)
        sums = metric_sums(logits, batch["targets"])
        # Token mean over the global micro-batch (all ranks), so metrics are global too.
        loss, global_sums = global_token_mean(sums, self._trainer)
        stats = summarise(global_sums)
        self.log("train/loss", stats["loss"], prog_bar=True)
        self.log("train/bits_per_base", stats["bits_per_base"])
        self.log("train/accuracy", stats["accuracy"])
        self.log("train/lr", self.optimizers().param_groups[0]["lr"])
        self.log("train/window_length", float(batch["inputs"].shape[1]))
        return loss

    def _accumulate(self, batch: dict[str, torch.Tensor]) -> None:
        logits = self.model(batch["inputs"])  # (B, L, V)
        vector = metric_sums(logits, batch["targets"]).as_vector()
        self._eval_sums = vector if self._eval_sums is None else self._eval_sums + vector

    def _finish_eval(self, prefix: str) -> dict[str, float]:
        sums = self._eval_sums
        if sums is None:
            sums = torch.zeros(4, dtype=torch.float64, device=self.device)
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum")  # every rank's windows
        self._eval_sums = None
        stats = summarise(sums.cpu())
        if not stats["bases"] and self.trainer.is_global_zero:
            log.warning("%s: no bases to score (every window empty or all N): no %s metrics",
                        prefix, prefix)
        for name, value in stats.items():
            # Every rank holds the same, already summed, value: the mean over ranks is a no-op
            # (sync_dist only keeps Lightning from warning about unsynchronised epoch metrics).
            self.log(f"{prefix}/{name}", value, sync_dist=True, prog_bar=name == "bits_per_base")
        return stats

    def on_validation_epoch_start(self) -> None:
        self._eval_sums = None

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._accumulate(batch)

    def on_validation_epoch_end(self) -> None:
        self._finish_eval("val")

    def on_test_epoch_start(self) -> None:
        self._eval_sums = None

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._accumulate(batch)

    def on_test_epoch_end(self) -> None:
        self._finish_eval("test")

    def configure_optimizers(self):
        optim = self.hparams.optim
        check_groups_cover(self.parameter_groups, self.model.parameters())
        optimizer = torch.optim.AdamW(
            [group.as_optimizer_group() for group in self.parameter_groups],
            lr=optim["lr"], betas=tuple(optim["betas"]), eps=optim["eps"],
        )
        schedule = LambdaLR(optimizer, lambda step: warmup_cosine(
            step, warmup_steps=optim["warmup_steps"], max_steps=self.hparams.max_steps,
            min_lr_ratio=optim["min_lr_ratio"]))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Norm clipping under every strategy. Lightning's FSDP precision plugin refuses
        `gradient_clip_algorithm="norm"`; FSDP's own `clip_grad_norm_` computes the norm over all
        shards (the same global norm DDP clips by), so under FSDP it does the clipping."""
        from torch.distributed.fsdp import FullyShardedDataParallel

        wrapped = self.trainer.strategy.model
        if gradient_clip_val and isinstance(wrapped, FullyShardedDataParallel):
            wrapped.clip_grad_norm_(gradient_clip_val)
            return
        self.clip_gradients(optimizer, gradient_clip_val=gradient_clip_val,
                            gradient_clip_algorithm=gradient_clip_algorithm)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The data position is the step itself (genossm.data.training_windows); recorded for humans.
        checkpoint["genossm_data_position"] = {"global_step": int(self.global_step)}
