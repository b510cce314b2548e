"""Pretraining with Lightning: the LightningModule, callbacks and the `pretrain` entry point."""
