"""Streaming datasets of genome windows and sequencing reads, and the pretraining DataModule."""
