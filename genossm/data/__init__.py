"""Streaming training data: FASTA windows and BAM reads, and the Lightning DataModule."""
