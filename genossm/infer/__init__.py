"""Inference: variant scoring, embeddings, saturation mutagenesis, and their writers."""
