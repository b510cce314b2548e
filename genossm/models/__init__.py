"""DNA language models: Hyena and Mamba mixers, LM heads, RC equivariance, checkpoints."""
